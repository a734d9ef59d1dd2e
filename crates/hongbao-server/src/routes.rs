//! The HTTP routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hongbao_core::config::TenantConfig;
use hongbao_core::model::{Attempt, Redpack};
use hongbao_core::payouts::{CreateError, Health, Payouts, Selector, StatusError};
use hongbao_core::store::{Idempotency, ListFilter, Stored};
use hongbao_wxpay::InvalidField;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{NoParams, Params, PathParam, QueryNames, RawBody};
use crate::json::{self, AttemptJson, RecordJson, RecordList, StatusJson};
use crate::listener::HttpStats;

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The payout service.
    pub payouts: Arc<Payouts>,
    /// The listener's connection figures, for `/metrics`.
    pub http: Arc<HttpStats>,
    /// In sandbox mode, the sandbox's admin API (its confirm page lets a
    /// person play the user of a transfer).
    pub sandbox_admin: Option<String>,
}

/// The tenant of a request, from its bearer token.
#[derive(Clone, Debug)]
pub struct Tenant(pub TenantConfig);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        state
            .payouts
            .tenant_for_token(token)
            .cloned()
            .map(Tenant)
            .ok_or(ApiError::Unauthorized)
    }
}

pub(crate) fn record(state: &AppState, r: &Redpack) -> RecordJson {
    let merchant = state.payouts.merchants().get(&r.merchant);
    json::record_json(
        r,
        merchant.and_then(|m| m.config.api_key.as_ref()),
        merchant.and_then(|m| m.config.miniprogram_appid.as_ref()),
    )
}

pub(crate) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::BodyTooLarge(MAX_BODY));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// The `Idempotency-Key` header, checked.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    // Printable ASCII, the space included; spaces around the value are not
    // part of it (HTTP strips them).
    let key = std::str::from_utf8(value.as_bytes())
        .unwrap_or_default()
        .trim_matches(' ');
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| matches!(b, b' '..=b'~')) {
        return Err(ApiError::BadField(InvalidField::new(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters, spaces included (a UUID is a good key)",
            "必须是 1 到 255 个可打印 ASCII 字符（可含空格；建议使用 UUID）",
        )));
    }
    Ok(Some(key.to_owned()))
}

/// `?wait=SECONDS` on create.
#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    wait: Option<String>,
}

impl QueryNames for WaitQuery {
    const NAMES: &'static [&'static str] = &["wait"];
}

pub(crate) fn wait_seconds(query: &WaitQuery) -> Result<Option<Duration>, ApiError> {
    match query.wait.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => match text.parse::<u64>() {
            Ok(s) if s <= 60 => Ok(Some(Duration::from_secs(s))),
            _ => Err(ApiError::BadField(InvalidField::new(
                "wait",
                format!("{text:?} must be a whole number of seconds from 0 to 60"),
                format!("{text:?} 必须是 0 到 60 之间的整数秒"),
            ))),
        },
    }
}

/// Creates a red packet.
#[utoipa::path(
    post, path = "/v1/redpacks", tag = "redpacks",
    params(
        ("wait" = Option<u64>, Query, description = "Wait up to this many seconds (at most 60) for an outcome"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key and body return the same record; the same key with another body is 409"),
    ),
    request_body(content = json::RedpackRequest, description = "The red packet; texts left out take the merchant's defaults"),
    responses(
        (status = 201, description = "Stored (pending), or with ?wait its outcome", body = RecordJson),
        (status = 200, description = "An earlier request with the same Idempotency-Key and body", body = RecordJson),
        (status = 400, description = "Malformed body, field or query parameter", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with another body", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "Body too large (answered from Content-Length before it is sent)", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ErrorBody),
        (status = 503, description = "Database unavailable; nothing stored", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_redpack(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<WaitQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let wait = wait_seconds(&query)?;
    let key = idempotency_key(&headers)?;
    let value = parse_body(&body)?;
    let input = json::redpack_input(&value)?;
    let idempotency = key.map(|key| {
        use sha2::Digest;
        Idempotency {
            key,
            request_hash: hex::encode(sha2::Sha256::digest(json::canonical(&value).as_bytes())),
        }
    });
    let stored = state
        .payouts
        .create(&tenant.0, &input, idempotency, None, None)
        .await
        .map_err(|e| match e {
            CreateError::Invalid(f) => ApiError::InvalidField(f),
            CreateError::IdempotencyConflict => ApiError::IdempotencyConflict,
            CreateError::Unavailable(_) => ApiError::Unavailable,
            CreateError::Internal(e) => ApiError::Internal(e),
        })?;
    let status = match stored {
        Stored::Created(_) => StatusCode::CREATED,
        Stored::Replayed(_) => StatusCode::OK,
    };
    let mut current = stored.record().clone();
    if let Some(wait) = wait
        && let Some(updated) = state.payouts.wait(&current.id, wait).await?
    {
        current = updated;
    }
    let location = format!("/v1/redpacks/{}", current.id);
    let mut answer = (
        status,
        [(header::LOCATION, location)],
        Json(record(&state, &current)),
    )
        .into_response();
    if let Some(retired) = current.kind.retired() {
        // RFC 9111's miscellaneous persistent warning, for clients that
        // show headers; the body's `warnings` says the same.
        let text = format!("299 hongbao \"{}\"", retired.message);
        if let Ok(value) = header::HeaderValue::from_str(&text) {
            answer.headers_mut().insert(header::WARNING, value);
        }
    }
    Ok(answer)
}

/// Paging and filters of the list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    offset: Option<String>,
    limit: Option<String>,
    status: Option<String>,
    merchant: Option<String>,
    re_openid: Option<String>,
    mch_billno: Option<String>,
    campaign_id: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
}

impl QueryNames for ListQuery {
    const NAMES: &'static [&'static str] = &[
        "offset",
        "limit",
        "status",
        "merchant",
        "re_openid",
        "mch_billno",
        "campaign_id",
        "created_from",
        "created_to",
    ];
}

pub(crate) fn number(
    field: &'static str,
    text: Option<&str>,
    default: u64,
    max: u64,
) -> Result<u64, ApiError> {
    match text {
        None | Some("") => Ok(default),
        Some(t) => match t.parse::<u64>() {
            Ok(v) if v <= max => Ok(v),
            _ => Err(ApiError::BadField(InvalidField::new(
                field,
                format!("{t:?} must be a whole number from 0 to {max}"),
                format!("{t:?} 必须是 0 到 {max} 之间的整数"),
            ))),
        },
    }
}

pub(crate) fn time_ms(field: &'static str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    json::parse_list_time_ms(text).map(Some).ok_or_else(|| {
        ApiError::BadField(InvalidField::new(
            field,
            format!("{text:?} must be an RFC 3339 time or a date (YYYY-MM-DD, Beijing)"),
            format!("{text:?} 必须是 RFC 3339 时间或日期（YYYY-MM-DD，北京时间）"),
        ))
    })
}

fn page_url(query: &ListQuery, offset: u64, limit: u64) -> String {
    page_link(
        "/v1/redpacks",
        offset,
        limit,
        &[
            ("status", &query.status),
            ("merchant", &query.merchant),
            ("re_openid", &query.re_openid),
            ("mch_billno", &query.mch_billno),
            ("campaign_id", &query.campaign_id),
            ("created_from", &query.created_from),
            ("created_to", &query.created_to),
        ],
    )
}

/// The link of a page of `path`: its `limit` and `offset`, and the
/// filters given, URL-encoded.
pub(crate) fn page_link(
    path: &str,
    offset: u64,
    limit: u64,
    filters: &[(&str, &Option<String>)],
) -> String {
    let mut parts = vec![format!("limit={limit}"), format!("offset={offset}")];
    for (k, v) in filters {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", hongbao_wxpay::request::url_encode(v)));
        }
    }
    format!("{path}?{}", parts.join("&"))
}

/// A list's `offset` (default 0) and `limit` (1 to 1000, default 20).
pub(crate) fn paging(offset: Option<&str>, limit: Option<&str>) -> Result<(u64, u64), ApiError> {
    let offset = number("offset", offset, 0, u64::from(u32::MAX))?;
    let limit = number("limit", limit, 20, 1000)?;
    if limit == 0 {
        return Err(ApiError::BadField(InvalidField::new(
            "limit",
            "must be 1 to 1000",
            "必须在 1 到 1000 之间",
        )));
    }
    Ok((offset, limit))
}

/// The paging of a page of `total` records; `link(offset, limit)` makes
/// the links of the pages before and after.
pub(crate) fn meta(
    offset: u64,
    limit: u64,
    total: u64,
    link: impl Fn(u64, u64) -> String,
) -> json::Meta {
    json::Meta {
        limit,
        offset,
        next: (offset + limit < total).then(|| link(offset + limit, limit)),
        previous: (offset > 0).then(|| link(offset.saturating_sub(limit), limit)),
        total_count: total,
    }
}

/// Lists red packets, newest first.
#[utoipa::path(
    get, path = "/v1/redpacks", tag = "redpacks",
    params(
        ("offset" = Option<u64>, Query, description = "Records to skip (default 0)"),
        ("limit" = Option<u64>, Query, description = "Page size, 1 to 1000 (default 20)"),
        ("status" = Option<String>, Query, description = "Only this status"),
        ("merchant" = Option<String>, Query, description = "Only this merchant (404 if the key has no such merchant)"),
        ("re_openid" = Option<String>, Query, description = "Only this receiver"),
        ("mch_billno" = Option<String>, Query, description = "Only this order number"),
        ("campaign_id" = Option<String>, Query, description = "Only this campaign (404 if the key has no such campaign)"),
        ("created_from" = Option<String>, Query, description = "Created at or after (RFC 3339, or YYYY-MM-DD in Beijing)"),
        ("created_to" = Option<String>, Query, description = "Created before"),
    ),
    responses(
        (status = 200, body = RecordList),
        (status = 400, description = "A bad value, or a parameter that is not one of these (named in `field`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The merchant or campaign named is not the key's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_redpacks(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<ListQuery>,
) -> Result<Json<RecordList>, ApiError> {
    let (offset, limit) = paging(query.offset.as_deref(), query.limit.as_deref())?;
    let merchant = query.merchant.clone().filter(|m| !m.is_empty());
    if let Some(m) = &merchant {
        known_merchant(&tenant.0, "merchant", m)?;
    }
    let campaign_id = query.campaign_id.clone().filter(|s| !s.is_empty());
    if let Some(id) = &campaign_id {
        let found = hongbao_core::campaign::get(state.payouts.ledger(), id).await?;
        if !found.is_some_and(|c| tenant.0.merchants.contains(&c.merchant)) {
            return Err(ApiError::UnknownFilter {
                field: "campaign_id",
                what: "campaign",
                value: id.clone(),
            });
        }
    }
    let filter = ListFilter {
        merchants: merchant.into_iter().collect(),
        status: query
            .status
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .transpose()
            .map_err(ApiError::BadField)?,
        re_openid: query.re_openid.clone().filter(|s| !s.is_empty()),
        mch_billno: query.mch_billno.clone().filter(|s| !s.is_empty()),
        campaign_id,
        rail: Some(hongbao_core::model::Rail::Redpack),
        created_from_ms: time_ms("created_from", query.created_from.as_deref())?,
        created_to_ms: time_ms("created_to", query.created_to.as_deref())?,
    };
    let (records, total) = state.payouts.list(&tenant.0, filter, offset, limit).await?;
    Ok(Json(RecordList {
        meta: meta(offset, limit, total, |o, l| page_url(&query, o, l)),
        objects: records.iter().map(|r| record(&state, r)).collect(),
    }))
}

/// One red packet.
#[utoipa::path(
    get, path = "/v1/redpacks/{id}", tag = "redpacks",
    params(("id" = String, Path, description = "The record's id")),
    responses((status = 200, body = RecordJson), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_redpack(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Json<RecordJson>, ApiError> {
    let found = state
        .payouts
        .get(&tenant.0, &id)
        .await?
        .filter(|r| r.rail == hongbao_core::model::Rail::Redpack)
        .ok_or(ApiError::NotFound("red packet"))?;
    Ok(Json(record(&state, &found)))
}

/// Every call made to WeChat for a red packet.
#[utoipa::path(
    get, path = "/v1/redpacks/{id}/attempts", tag = "redpacks",
    params(("id" = String, Path, description = "The record's id")),
    responses((status = 200, description = "Oldest first", body = [AttemptJson]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_attempts(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Json<Vec<AttemptJson>>, ApiError> {
    state
        .payouts
        .get(&tenant.0, &id)
        .await?
        .filter(|r| r.rail == hongbao_core::model::Rail::Redpack)
        .ok_or(ApiError::NotFound("red packet"))?;
    let attempts: Vec<Attempt> = state.payouts.ledger().attempts(&id).await?;
    Ok(Json(attempts.iter().map(json::attempt_json).collect()))
}

/// Which record to ask WeChat about.
#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    id: Option<String>,
    mch_billno: Option<String>,
}

impl QueryNames for StatusQuery {
    const NAMES: &'static [&'static str] = &["id", "mch_billno"];
}

/// The record a status question names: its id, or its order number
/// (`number`, the query parameter naming it).
pub(crate) fn selector(
    id: Option<String>,
    order_no: Option<String>,
    number: &'static str,
) -> Result<Selector, ApiError> {
    match (
        id.filter(|s| !s.is_empty()),
        order_no.filter(|s| !s.is_empty()),
    ) {
        (Some(id), _) => Ok(Selector::Id(id)),
        (None, Some(b)) => Ok(Selector::Billno(b)),
        (None, None) => Err(ApiError::BadField(InvalidField::new(
            number,
            format!("give {number} or id"),
            format!("请提供 {number} 或 id"),
        ))),
    }
}

/// What a failed status question answers; `what` names the record's kind.
pub(crate) fn status_error(e: StatusError, what: &'static str) -> ApiError {
    match e {
        StatusError::NotFound => ApiError::NotFound(what),
        StatusError::Wechat(e) => ApiError::Wechat(e),
        StatusError::Db(e) => e.into(),
    }
}

/// Asks WeChat (gethbinfo) about a red packet now, and updates it.
#[utoipa::path(
    get, path = "/v1/redpacks/status", tag = "redpacks",
    params(
        ("mch_billno" = Option<String>, Query, description = "The order number"),
        ("id" = Option<String>, Query, description = "Or the record's id"),
    ),
    responses((status = 200, body = StatusJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn redpack_status(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<StatusQuery>,
) -> Result<Json<StatusJson>, ApiError> {
    let selector = selector(query.id, query.mch_billno, "mch_billno")?;
    let status = state
        .payouts
        .wechat_status(&tenant.0, &selector)
        .await
        .map_err(|e| status_error(e, "red packet"))?;
    Ok(Json(StatusJson {
        record: record(&state, &status.record),
        wechat: json::wechat_json(status.info.as_ref()),
    }))
}

/// A merchant as the API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MerchantJson {
    /// Its name.
    pub name: String,
    /// Its mch_id.
    pub mch_id: String,
    /// Whether its payouts are paused.
    pub paused: bool,
    /// Why (`insufficient_balance`, `daily_cap`, `configuration`, `operator`).
    pub pause_reason: Option<String>,
    /// The err_code that paused it.
    pub pause_err_code: Option<String>,
    /// What to do.
    pub pause_message: Option<String>,
    /// The same, in Chinese.
    pub pause_zh_message: Option<String>,
    /// Since when.
    pub paused_at: Option<String>,
}

fn tenant_merchants(health: Health, tenant: &TenantConfig) -> Vec<MerchantJson> {
    health
        .merchants
        .into_iter()
        .filter(|m| tenant.merchants.contains(&m.name))
        .map(|m| MerchantJson {
            paused: m.paused.is_some(),
            pause_reason: m.paused.as_ref().map(|p| p.reason.as_str().to_owned()),
            pause_err_code: m.paused.as_ref().and_then(|p| p.err_code.clone()),
            pause_message: m.paused.as_ref().map(|p| p.message.clone()),
            pause_zh_message: m.paused.as_ref().map(|p| p.zh_message.clone()),
            paused_at: m.paused.as_ref().map(|p| json::rfc3339(p.paused_at)),
            name: m.name,
            mch_id: m.mch_id,
        })
        .collect()
}

async fn merchants_of(
    state: &AppState,
    tenant: &TenantConfig,
) -> Result<Vec<MerchantJson>, ApiError> {
    let health = state.payouts.health().await;
    if health.database != "ok" {
        return Err(ApiError::Unavailable);
    }
    Ok(tenant_merchants(health, tenant))
}

/// The tenant's merchants and whether they are paused.
#[utoipa::path(
    get, path = "/v1/merchants", tag = "merchants",
    responses((status = 200, body = [MerchantJson]), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_merchants(
    State(state): State<AppState>,
    tenant: Tenant,
    _: Params<NoParams>,
) -> Result<Json<Vec<MerchantJson>>, ApiError> {
    Ok(Json(merchants_of(&state, &tenant.0).await?))
}

fn own_merchant(tenant: &TenantConfig, name: &str) -> Result<(), ApiError> {
    if tenant.merchants.iter().any(|m| m == name) {
        Ok(())
    } else {
        Err(ApiError::NotFound("merchant"))
    }
}

/// A `merchant` filter: 404 when the tenant has no such merchant.
pub(crate) fn known_merchant(
    tenant: &TenantConfig,
    field: &'static str,
    name: &str,
) -> Result<(), ApiError> {
    if tenant.merchants.iter().any(|m| m == name) {
        Ok(())
    } else {
        Err(ApiError::UnknownFilter {
            field,
            what: "merchant",
            value: name.to_owned(),
        })
    }
}

/// Pause and resume take no body; an empty object (or nothing) is fine.
fn no_body(body: &Bytes) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match parse_body(body)? {
        Value::Object(o) if o.is_empty() => Ok(()),
        Value::Object(o) => {
            let field = o.keys().next().cloned().unwrap_or_default();
            Err(ApiError::BadField(InvalidField::new(
                field,
                "is not a field here: this call takes no body (or {})",
                "不是此接口的字段：此接口不需要请求体（或 {}）",
            )))
        }
        other => Err(ApiError::InvalidJson(format!(
            "expected nothing or {{}}, found {}",
            json::type_name(&other)
        ))),
    }
}

/// Pauses a merchant's payouts.
#[utoipa::path(
    post, path = "/v1/merchants/{name}/pause", tag = "merchants",
    params(("name" = String, Path, description = "The merchant")),
    request_body(content = json::EmptyRequest, description = "Nothing, or `{}`"),
    responses((status = 200, body = [MerchantJson]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn pause_merchant(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(name): PathParam,
    _: Params<NoParams>,
    RawBody(body): RawBody,
) -> Result<Json<Vec<MerchantJson>>, ApiError> {
    own_merchant(&tenant.0, &name)?;
    no_body(&body)?;
    state.payouts.pause(&name).await?;
    tracing::info!(merchant = %name, "paused through the API");
    Ok(Json(merchants_of(&state, &tenant.0).await?))
}

/// Resumes a merchant's payouts (after a top-up, or once fixed).
#[utoipa::path(
    post, path = "/v1/merchants/{name}/resume", tag = "merchants",
    params(("name" = String, Path, description = "The merchant")),
    request_body(content = json::EmptyRequest, description = "Nothing, or `{}`"),
    responses((status = 200, body = [MerchantJson]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn resume_merchant(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(name): PathParam,
    _: Params<NoParams>,
    RawBody(body): RawBody,
) -> Result<Json<Vec<MerchantJson>>, ApiError> {
    own_merchant(&tenant.0, &name)?;
    no_body(&body)?;
    state.payouts.resume(&name).await?;
    tracing::info!(merchant = %name, "resumed through the API");
    Ok(Json(merchants_of(&state, &tenant.0).await?))
}

/// The service's health, as a load balancer needs it: no merchant is named.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HealthJson {
    /// `ok`; `degraded` while a merchant is paused; `unavailable` when the
    /// database cannot be used (then the answer is 503).
    pub status: &'static str,
    /// `ok` or `unavailable`.
    pub database: &'static str,
}

/// The health of the service and of the key's own merchants.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TenantHealthJson {
    /// `ok`; `degraded` while one of the key's merchants is paused;
    /// `unavailable` when the database cannot be used (then the answer is 503).
    pub status: &'static str,
    /// `ok` or `unavailable`.
    pub database: &'static str,
    /// The key's merchants and their pauses.
    pub merchants: Vec<MerchantJson>,
}

fn health_code(status: &str) -> StatusCode {
    if status == "unavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

fn database_word(health: &Health) -> &'static str {
    if health.status == "unavailable" || health.database != "ok" {
        "unavailable"
    } else {
        "ok"
    }
}

/// The service's health: for load balancers, no key needed.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "Usable: `ok`, or `degraded` while a merchant is paused", body = HealthJson),
        (status = 503, description = "The database cannot be used", body = HealthJson),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<HealthJson>) {
    let health = state.payouts.health().await;
    let answer = HealthJson {
        status: health.status,
        database: database_word(&health),
    };
    (health_code(answer.status), Json(answer))
}

/// The service's health with the key's own merchants and their pauses.
#[utoipa::path(
    get, path = "/v1/health", tag = "operations",
    responses(
        (status = 200, description = "Usable: `ok`, or `degraded` while one of the key's merchants is paused", body = TenantHealthJson),
        (status = 401, body = ErrorBody),
        (status = 503, description = "The database cannot be used", body = TenantHealthJson),
    ),
    security(("bearer" = []))
)]
pub async fn tenant_health(
    State(state): State<AppState>,
    tenant: Tenant,
    _: Params<NoParams>,
) -> (StatusCode, Json<TenantHealthJson>) {
    let health = state.payouts.health().await;
    let database = database_word(&health);
    let unavailable = database == "unavailable";
    let merchants = tenant_merchants(health, &tenant.0);
    let status = if unavailable {
        "unavailable"
    } else if merchants.iter().any(|m| m.paused) {
        "degraded"
    } else {
        "ok"
    };
    (
        health_code(status),
        Json(TenantHealthJson {
            status,
            database,
            merchants,
        }),
    )
}

/// The service's whole health (every merchant, the database's error):
/// the operator listener's `/healthz`.
pub async fn operator_health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let health = state.payouts.health().await;
    (health_code(health.status), Json(health))
}

/// Every figure in Prometheus' text format, the listener's included
/// (before the OpenMetrics `# EOF`).
async fn metrics_text(state: &AppState) -> Result<String, ApiError> {
    let mut text = state.payouts.metrics_text().await?;
    let http = state.http.render();
    match text.rfind("# EOF") {
        Some(at) => text.insert_str(at, &http),
        None => text.push_str(&http),
    }
    Ok(text)
}

fn prometheus(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The value of a sample line's `merchant` label, if it has one.
fn merchant_label(line: &str) -> Option<String> {
    let (_, labels) = line.split_once('{')?;
    let (at, _) = labels
        .match_indices("merchant=\"")
        .find(|(at, _)| *at == 0 || matches!(labels.as_bytes()[at - 1], b',' | b' '))?;
    let mut value = String::new();
    let mut chars = labels[at + "merchant=\"".len()..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            '"' => return Some(value),
            other => value.push(other),
        }
    }
    None
}

/// Keeps the samples of the tenant's merchants and those of no merchant.
pub fn tenant_metrics(text: &str, merchants: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let keep =
            line.starts_with('#') || merchant_label(line).is_none_or(|m| merchants.contains(&m));
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Prometheus metrics of the key's merchants (and of the service).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format: the service's figures and those of the key's merchants", content_type = "text/plain"),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn metrics(
    State(state): State<AppState>,
    tenant: Tenant,
    _: Params<NoParams>,
) -> Result<Response, ApiError> {
    let text = metrics_text(&state).await?;
    Ok(prometheus(tenant_metrics(&text, &tenant.0.merchants)))
}

/// Every merchant's metrics: the operator listener's `/metrics`.
pub async fn operator_metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(prometheus(metrics_text(&state).await?))
}

/// Answers unknown paths in the API's error shape.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_sees_the_samples_of_its_merchants_only() {
        let text = "# HELP hongbao_merchant_paused Paused.\n\
                    # TYPE hongbao_merchant_paused gauge\n\
                    hongbao_merchant_paused{merchant=\"main\"} 0\n\
                    hongbao_merchant_paused{merchant=\"second\"} 1\n\
                    hongbao_wechat_calls_total{merchant=\"second\",api=\"sendredpack\",outcome=\"sent\"} 3\n\
                    hongbao_payouts{status=\"sent\",merchant=\"ma\\\"in\"} 3\n\
                    hongbao_database_errors_total 0\n\
                    # EOF\n";
        let mine = tenant_metrics(text, &["main".to_owned()]);
        assert!(mine.contains("merchant=\"main\"} 0"));
        assert!(!mine.contains("second"), "{mine}");
        assert!(!mine.contains("ma\\\"in"), "{mine}");
        assert!(mine.contains("hongbao_database_errors_total 0"));
        assert!(mine.contains("# TYPE hongbao_merchant_paused gauge"));
        assert!(mine.ends_with("# EOF\n"));
        assert_eq!(
            merchant_label("x{merchant=\"ma\\\"in\"} 1").as_deref(),
            Some("ma\"in")
        );
        assert_eq!(merchant_label("x{submerchant=\"a\"} 1"), None);
    }
}
