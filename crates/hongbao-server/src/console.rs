//! The web console (`/console`): static files built into the binary (the
//! page, its style, and its script as native ES modules: nothing is fetched
//! from elsewhere at run time), and the figures of its overview
//! (`GET /v1/stats`).
//!
//! The console signs in with an API key and then uses the same API as any
//! client, so a tenant sees exactly its own merchants there too.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hongbao_wxpay::beijing_date;
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Params, QueryNames};
use crate::routes::{AppState, Tenant};

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/app.css");
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// A module of the console: its path under `/console/` and its content.
macro_rules! module {
    ($path:literal) => {
        ($path, include_str!(concat!("../console/", $path)))
    };
}

/// The modules that app.js imports.
const MODULES: &[(&str, &str)] = &[
    module!("i18n.js"),
    module!("state.js"),
    module!("lib/api.js"),
    module!("lib/dom.js"),
    module!("lib/format.js"),
    module!("lib/ui.js"),
    module!("views/sign-in.js"),
    module!("views/overview.js"),
    module!("views/payouts.js"),
    module!("views/payout-detail.js"),
    module!("views/transfers.js"),
    module!("views/transfer-detail.js"),
    module!("views/campaigns.js"),
    module!("views/campaign-detail.js"),
    module!("views/prizes.js"),
];

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The files change with the binary; a restart may bring new ones.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

/// `GET /console`: the page.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /console/app.js`.
pub async fn script() -> Response {
    asset(JAVASCRIPT, SCRIPT)
}

/// `GET /console/<path>` for each of `MODULES`, served as app.js is. Only
/// these paths are routed, so any other under `/console/` stays the
/// router's 404.
pub fn modules() -> Router<AppState> {
    MODULES.iter().fold(Router::new(), |router, &(path, body)| {
        router.route(
            &format!("/console/{path}"),
            get(move || async move { asset(JAVASCRIPT, body) }),
        )
    })
}

/// `GET /console/app.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// Counts and fen of one status.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CountJson {
    /// Records.
    pub count: u64,
    /// Their total, in fen.
    pub amount: u64,
}

/// A period's records by status.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct PeriodJson {
    /// Records created in the period.
    pub count: u64,
    /// Their total, in fen.
    pub amount: u64,
    /// The same, by status.
    pub by_status: BTreeMap<String, CountJson>,
    /// The same, by rail (`redpack`, `transfer`).
    pub by_rail: BTreeMap<String, CountJson>,
}

/// One bucket of the chart.
#[derive(Debug, Serialize, ToSchema)]
pub struct BucketJson {
    /// The bucket's start (RFC 3339, UTC).
    pub start: String,
    /// Records created in it.
    pub count: u64,
    /// Their total, in fen.
    pub amount: u64,
}

/// The console's overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsJson {
    /// The time zone of "today" and "this month": WeChat's, Beijing time.
    pub timezone: &'static str,
    /// Records created today.
    pub today: PeriodJson,
    /// Records created this month.
    pub month: PeriodJson,
    /// `hour` or `day`.
    pub bucket: &'static str,
    /// The last 48 hours or the last 30 days, oldest first, every bucket
    /// present.
    pub series: Vec<BucketJson>,
}

/// `?bucket=hour|day`.
#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    bucket: Option<String>,
}

impl QueryNames for StatsQuery {
    const NAMES: &'static [&'static str] = &["bucket"];
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn beijing() -> UtcOffset {
    UtcOffset::from_hms(8, 0, 0).expect("a valid offset")
}

fn ms_of(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The starts (ms) of today and of this month in Beijing time, at `now_ms`.
pub fn period_starts(now_ms: i64) -> (i64, i64) {
    let now = hongbao_core::model::from_ms(now_ms);
    let today = beijing_date(now);
    let midnight = |date: time::Date| ms_of(date.midnight().assume_offset(beijing()));
    let month = today.replace_day(1).unwrap_or(today);
    (midnight(today), midnight(month))
}

fn rfc3339(ms: i64) -> String {
    hongbao_core::model::from_ms(ms)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn period(
    state: &AppState,
    merchants: &[String],
    since_ms: i64,
) -> Result<PeriodJson, ApiError> {
    let mut out = PeriodJson::default();
    for (status, count, amount) in state
        .payouts
        .ledger()
        .totals_since(merchants, since_ms)
        .await?
    {
        out.count += count;
        out.amount += amount.get();
        let entry = out.by_status.entry(status.as_str().to_owned()).or_default();
        entry.count += count;
        entry.amount += amount.get();
    }
    for (rail, count, amount) in state
        .payouts
        .ledger()
        .rails_since(merchants, since_ms)
        .await?
    {
        let entry = out.by_rail.entry(rail.as_str().to_owned()).or_default();
        entry.count += count;
        entry.amount += amount.get();
    }
    Ok(out)
}

/// Today's and this month's payouts by status, and amounts over time.
#[utoipa::path(
    get, path = "/v1/stats", tag = "redpacks",
    params(("bucket" = Option<String>, Query, description = "`hour` (the last 48 hours, the default) or `day` (the last 30 days)")),
    responses((status = 200, body = StatsJson), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn stats(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<StatsQuery>,
) -> Result<Json<StatsJson>, ApiError> {
    let (bucket, bucket_ms, buckets) = match query.bucket.as_deref() {
        None | Some("hour") => ("hour", HOUR_MS, 48),
        Some("day") => ("day", DAY_MS, 30),
        Some(_) => {
            return Err(ApiError::BadField(hongbao_wxpay::InvalidField::new(
                "bucket",
                "must be hour or day",
                "只能是 hour 或 day",
            )));
        }
    };
    let merchants = &tenant.0.merchants;
    let now = state.payouts.ledger().db().now_ms().await?;
    let (today_start, month_start) = period_starts(now);
    // Buckets end with the current one: hours on the hour, days at
    // Beijing midnight.
    let current = if bucket_ms == DAY_MS {
        today_start
    } else {
        now - now.rem_euclid(HOUR_MS)
    };
    let origin = current - (buckets - 1) * bucket_ms;
    let mut series: Vec<BucketJson> = (0..buckets)
        .map(|i| BucketJson {
            start: rfc3339(origin + i * bucket_ms),
            count: 0,
            amount: 0,
        })
        .collect();
    for (index, count, amount) in state
        .payouts
        .ledger()
        .series(merchants, origin, bucket_ms)
        .await?
    {
        if let Some(slot) = usize::try_from(index).ok().and_then(|i| series.get_mut(i)) {
            slot.count = count;
            slot.amount = amount.get();
        }
    }
    Ok(Json(StatsJson {
        timezone: "Asia/Shanghai",
        today: period(&state, merchants, today_start).await?,
        month: period(&state, merchants, month_start).await?,
        bucket,
        series,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `.js` files under `dir`, by their path below it.
    fn scripts(dir: &std::path::Path, under: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let path = format!("{under}{name}");
            if entry.file_type().unwrap().is_dir() {
                scripts(&entry.path(), &format!("{path}/"), out);
            } else if name.ends_with(".js") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_script_of_the_console_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut found = Vec::new();
        scripts(&dir, "", &mut found);
        found.retain(|path| path != "app.js");
        found.sort();
        let mut served: Vec<String> = MODULES.iter().map(|(path, _)| (*path).to_owned()).collect();
        served.sort();
        assert_eq!(
            found, served,
            "a module missing from MODULES would answer 404"
        );
    }

    #[test]
    fn today_and_this_month_begin_at_beijing_midnight() {
        // 2026-11-30T17:30:00Z is 2026-12-01 01:30 in Beijing.
        let now = ms_of(time::macros::datetime!(2026-11-30 17:30 UTC));
        let (today, month) = period_starts(now);
        assert_eq!(rfc3339(today), "2026-11-30T16:00:00Z");
        assert_eq!(rfc3339(month), "2026-11-30T16:00:00Z");
        // 2026-11-30T15:59:00Z is still November 30th there.
        let now = ms_of(time::macros::datetime!(2026-11-30 15:59 UTC));
        let (today, month) = period_starts(now);
        assert_eq!(rfc3339(today), "2026-11-29T16:00:00Z");
        assert_eq!(rfc3339(month), "2026-10-31T16:00:00Z");
    }
}
