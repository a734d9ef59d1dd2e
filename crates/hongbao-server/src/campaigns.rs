//! The campaign routes: a list of payouts uploaded as CSV (or JSON rows),
//! validated whole with the command line's rules, stored, and paid by the
//! service's dispatcher.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hongbao_core::campaign::{self, Campaign, CampaignOptions, Checked, RowError, Totals};
use hongbao_wxpay::{Fen, InvalidField};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{NoParams, Params, PathParam, QueryNames, RawBody};
use crate::json::{self, rfc3339};
use crate::routes::{AppState, Tenant};

/// The largest upload: about 600,000 rows.
pub const MAX_UPLOAD: usize = 32 * 1024 * 1024;

/// How many bad rows an answer lists (all are counted).
const ROWS_SHOWN: usize = campaign::ROW_ERRORS_SHOWN;

/// A campaign as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignJson {
    /// `cp_` and a ULID.
    pub id: String,
    /// Its name, unique per API key's tenant.
    pub name: String,
    /// The merchant paying.
    pub merchant: String,
    /// `importing`, `running`, `paused` or `done`.
    pub status: String,
    /// Rows in the file.
    pub rows: u64,
    /// Their amount in fen.
    pub total_amount: u64,
    /// Rows stored so far.
    pub imported: u64,
    /// The file's SHA-256.
    pub file_sha256: String,
    /// Paused by an operator.
    pub paused: bool,
    /// Why the merchant is paused, if it is (e.g. its balance is too low).
    pub merchant_paused: Option<String>,
    /// Records by status.
    pub counts: BTreeMap<String, u64>,
    /// Fen by status.
    pub amounts: BTreeMap<String, u64>,
    /// Paid rows (sent, received, refunding, refunded).
    pub paid_count: u64,
    /// Their fen.
    pub paid_amount: u64,
    /// Failed rows.
    pub failed_count: u64,
    /// Their fen.
    pub failed_amount: u64,
    /// Transfer bills awaiting their users' confirmation (or being paid).
    pub awaiting_count: u64,
    /// Their fen.
    pub awaiting_amount: u64,
    /// Transfer bills their users did not confirm within 24 hours (among the failed).
    pub expired_count: u64,
    /// Rows still to pay.
    pub open_count: u64,
    /// Their fen: the balance the campaign still needs.
    pub open_amount: u64,
    /// Failed rows by err_code.
    pub err_codes: BTreeMap<String, u64>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

fn campaign_json(c: &Campaign, totals: &Totals, merchant_paused: Option<String>) -> CampaignJson {
    let (paid_count, paid_amount) = totals.paid();
    let (failed_count, failed_amount) = totals.failed();
    let (open_count, open_amount) = totals.open();
    let (awaiting_count, awaiting_amount) = totals.awaiting();
    let status = if c.imported < c.rows {
        "importing"
    } else if open_count == 0 {
        "done"
    } else if c.paused || merchant_paused.is_some() {
        "paused"
    } else {
        "running"
    };
    CampaignJson {
        id: c.id.clone(),
        name: c.name.clone(),
        merchant: c.merchant.clone(),
        status: status.into(),
        rows: c.rows,
        total_amount: c.total_amount.get(),
        imported: c.imported,
        file_sha256: c.file_sha256.clone(),
        paused: c.paused,
        merchant_paused,
        counts: totals
            .by_status
            .iter()
            .map(|(k, (n, _))| (k.clone(), *n))
            .collect(),
        amounts: totals
            .by_status
            .iter()
            .map(|(k, (_, a))| (k.clone(), *a))
            .collect(),
        paid_count,
        paid_amount: paid_amount.get(),
        awaiting_count,
        awaiting_amount: awaiting_amount.get(),
        expired_count: totals.expired(),
        failed_count,
        failed_amount: failed_amount.get(),
        open_count,
        open_amount: open_amount.get(),
        err_codes: totals.by_err_code.clone(),
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
    }
}

async fn view(state: &AppState, c: &Campaign) -> Result<CampaignJson, ApiError> {
    let totals = campaign::totals(state.payouts.ledger(), &c.id).await?;
    let pause = state
        .payouts
        .ledger()
        .pauses()
        .await?
        .into_iter()
        .find(|p| p.merchant == c.merchant)
        .map(|p| p.message);
    Ok(campaign_json(c, &totals, pause))
}

/// Options of an upload, in the query (CSV) or the body (JSON).
#[derive(Debug, Default, Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
    merchant: Option<String>,
    amount: Option<String>,
    send_name: Option<String>,
    wishing: Option<String>,
    act_name: Option<String>,
    remark: Option<String>,
    scene_id: Option<String>,
    budget: Option<String>,
    allow_repeat: Option<String>,
    per_openid_daily: Option<String>,
    rail: Option<String>,
    dry_run: Option<String>,
}

/// The options of an upload, by name (query parameters of a CSV upload,
/// fields of a JSON one besides `rows`).
pub const UPLOAD_OPTIONS: [&str; 13] = [
    "name",
    "merchant",
    "amount",
    "send_name",
    "wishing",
    "act_name",
    "remark",
    "scene_id",
    "budget",
    "allow_repeat",
    "per_openid_daily",
    "rail",
    "dry_run",
];

impl QueryNames for UploadQuery {
    const NAMES: &'static [&'static str] = &UPLOAD_OPTIONS;
}

/// `true`/`1` or `false`/`0`/empty, in a query.
fn flag(field: &'static str, text: Option<&str>) -> Result<bool, ApiError> {
    match text.map(str::trim) {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(bad(
            field,
            format!("{other:?} must be true or false"),
            format!("{other:?} 必须是 true 或 false"),
        )),
    }
}

/// A campaign uploaded as JSON: the body of `POST /v1/campaigns` with
/// `Content-Type: application/json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignRequest {
    /// The campaign's name, unique per API key's tenant (at most 128 bytes).
    pub name: String,
    /// The merchant; required when the key may use several.
    pub merchant: Option<String>,
    /// Yuan as a string (`"1.88"`), for rows without an amount.
    pub amount: Option<String>,
    /// Default texts of the rows (else the merchant's).
    pub send_name: Option<String>,
    /// The blessing.
    pub wishing: Option<String>,
    /// The activity's name.
    pub act_name: Option<String>,
    /// The remark.
    pub remark: Option<String>,
    /// `PRODUCT_1` … `PRODUCT_8`.
    pub scene_id: Option<String>,
    /// The most the rows may pay in all, in yuan as a string.
    pub budget: Option<String>,
    /// Allow an openid on several rows (default false).
    pub allow_repeat: Option<bool>,
    /// The most payouts an openid gets from the merchant's campaigns in a
    /// day (Beijing time), this one included; rows over it are stored
    /// `failed` (`CAMPAIGN_DAILY_CAP`) and never sent.
    pub per_openid_daily: Option<u64>,
    /// `redpack` (default) or `transfer`: every row a bill its user
    /// confirms (`remark` is its remark, `act_name` its 活动名称,
    /// `wishing` its 奖励说明).
    pub rail: Option<String>,
    /// Validate only: nothing is stored (default false).
    pub dry_run: Option<bool>,
    /// The payouts.
    pub rows: Vec<CampaignRowRequest>,
}

/// One payout of a JSON campaign: `amount` (yuan, a string) or
/// `total_amount` (fen), unless the campaign's `amount` applies.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignRowRequest {
    /// The receiver.
    pub openid: String,
    /// Yuan as a string, e.g. `"1.88"` (never a JSON number).
    pub amount: Option<String>,
    /// Or fen.
    pub total_amount: Option<u64>,
    /// This row's blessing.
    pub wishing: Option<String>,
    /// This row's activity name.
    pub act_name: Option<String>,
    /// This row's remark.
    pub remark: Option<String>,
    /// This row's scene.
    pub scene_id: Option<String>,
}

/// The result of a dry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunJson {
    /// Rows.
    pub rows: u64,
    /// Their amount in fen.
    pub total_amount: u64,
    /// The file's SHA-256.
    pub file_sha256: String,
}

/// The answer to a file with bad rows: the error, and the rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct BadRowsJson {
    /// `invalid_rows`.
    pub error: crate::error::ErrorDetail,
    /// The bad rows (at most 1,000 listed).
    pub rows: Vec<RowErrorJson>,
    /// How many rows are bad in all.
    pub bad_rows: u64,
}

/// One bad row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowErrorJson {
    /// The CSV line (1 is the header); for JSON rows, the row's position plus one.
    pub line: u64,
    /// The column at fault.
    pub field: Option<String>,
    /// In English.
    pub message: String,
    /// In Chinese.
    pub zh_message: String,
}

impl UploadQuery {
    /// Which options are given, in the order of [`UPLOAD_OPTIONS`].
    fn given(&self) -> [bool; 13] {
        [
            &self.name,
            &self.merchant,
            &self.amount,
            &self.send_name,
            &self.wishing,
            &self.act_name,
            &self.remark,
            &self.scene_id,
            &self.budget,
            &self.allow_repeat,
            &self.per_openid_daily,
            &self.rail,
            &self.dry_run,
        ]
        .map(Option::is_some)
    }
}

/// A whole number or `null` in a JSON upload, kept as the query's text.
fn whole(object: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(other) => Err(json::bad(
            field,
            format!("must be a whole number from 1, not {other}"),
            format!("必须是不小于 1 的整数，而不是 {other}"),
        )),
    }
}

/// `per_openid_daily`: a whole number from 1, or absent.
fn daily_cap(text: Option<&str>) -> Result<Option<u64>, ApiError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(bad(
                "per_openid_daily",
                format!("{text:?} must be a whole number from 1 (payouts per openid per day)"),
                format!("{text:?} 必须是不小于 1 的整数（每个 openid 每日笔数）"),
            )),
        },
    }
}

/// `true`, `false` or `null` in a JSON upload, kept as the query's text.
fn boolean(object: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(json::bad(
            field,
            format!("must be true or false, not {}", json::type_name(other)),
            format!("必须是 true 或 false，而不是{}", json::type_name(other)),
        )),
    }
}

/// A bad row as the API shows it. The validator speaks of the command
/// line's `--allow-repeat`; through the API the option is `allow_repeat`.
fn row_error_json(e: RowError) -> RowErrorJson {
    let api = |text: String| {
        text.replace("use --allow-repeat", "set allow_repeat")
            .replace("请使用 --allow-repeat", "请设置 allow_repeat")
    };
    RowErrorJson {
        line: e.line,
        field: e.field,
        message: api(e.message),
        zh_message: api(e.zh_message),
    }
}

fn bad(field: &'static str, message: impl Into<String>, zh: impl Into<String>) -> ApiError {
    ApiError::BadField(InvalidField::new(field, message, zh))
}

fn yuan(field: &'static str, text: Option<&str>) -> Result<Option<Fen>, ApiError> {
    text.filter(|t| !t.is_empty())
        .map(|t| Fen::parse_yuan(t).map_err(|e| ApiError::InvalidField(e.for_field(field))))
        .transpose()
}

/// A JSON upload turned into the CSV the validator reads, and its options.
fn json_upload(value: &Value) -> Result<(UploadQuery, String), ApiError> {
    let Value::Object(object) = value else {
        return Err(ApiError::InvalidJson(
            "expected an object with name and rows".into(),
        ));
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| *k != "rows" && !UPLOAD_OPTIONS.contains(&k.as_str()))
    {
        return Err(json::bad(
            unknown,
            format!(
                "is not a field of a campaign; the fields are {}, rows",
                UPLOAD_OPTIONS.join(", ")
            ),
            format!(
                "不是批量发放的字段；可用字段为 {}, rows",
                UPLOAD_OPTIONS.join(", ")
            ),
        ));
    }
    let text = |key: &str| json::string(object, key);
    let query = UploadQuery {
        name: text("name")?,
        merchant: text("merchant")?,
        amount: text("amount")?,
        send_name: text("send_name")?,
        wishing: text("wishing")?,
        act_name: text("act_name")?,
        remark: text("remark")?,
        scene_id: text("scene_id")?,
        budget: text("budget")?,
        allow_repeat: boolean(object, "allow_repeat")?,
        per_openid_daily: whole(object, "per_openid_daily")?,
        rail: text("rail")?,
        dry_run: boolean(object, "dry_run")?,
    };
    let Some(Value::Array(rows)) = object.get("rows") else {
        return Err(bad(
            "rows",
            "is required: an array of {openid, amount or total_amount, ...}",
            "必填：行数组",
        ));
    };
    const COLUMNS: [&str; 7] = [
        "openid",
        "amount",
        "total_amount",
        "wishing",
        "act_name",
        "remark",
        "scene_id",
    ];
    let mut used = [false; 7];
    for row in rows {
        let Value::Object(row) = row else {
            return Err(bad(
                "rows",
                "each row must be an object",
                "每一行都必须是对象",
            ));
        };
        for key in row.keys() {
            match COLUMNS.iter().position(|c| c == key) {
                Some(i) => used[i] = true,
                None => {
                    return Err(bad(
                        "rows",
                        format!(
                            "{key:?} is not a field of a row; use {}",
                            COLUMNS.join(", ")
                        ),
                        format!("{key:?} 不是行的字段"),
                    ));
                }
            }
        }
        if let Some(Value::Number(n)) = row.get("amount") {
            return Err(bad(
                "rows",
                format!(
                    "amount {n} must be a string in yuan such as \"1.88\" (never a JSON number), or give total_amount in fen"
                ),
                "amount 必须是以元为单位的字符串（例如 \"1.88\"），或使用以分为单位的 total_amount",
            ));
        }
    }
    let columns: Vec<&str> = COLUMNS
        .iter()
        .zip(used)
        .filter(|(_, u)| *u)
        .map(|(c, _)| *c)
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::Internal(e.to_string());
    writer.write_record(&columns).map_err(fail)?;
    for row in rows {
        let record: Vec<String> = columns
            .iter()
            .map(|c| match row.get(*c) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            })
            .collect();
        writer.write_record(&record).map_err(fail)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        query,
        String::from_utf8(bytes).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

/// Uploads a campaign: validated whole (nothing is stored if a row is
/// bad), stored, then paid by the service at the merchant's rate.
#[utoipa::path(
    post, path = "/v1/campaigns", tag = "campaigns",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "The same key and upload return the same campaign; the same key with another upload is 409"),
        ("name" = Option<String>, Query, description = "The campaign's name (CSV uploads; in the body for JSON)"),
        ("merchant" = Option<String>, Query, description = "The merchant"),
        ("amount" = Option<String>, Query, description = "Yuan, for rows without an amount"),
        ("send_name" = Option<String>, Query, description = "Default sender's name of the rows (else the merchant's)"),
        ("wishing" = Option<String>, Query, description = "Default blessing of the rows"),
        ("act_name" = Option<String>, Query, description = "Default activity name of the rows"),
        ("remark" = Option<String>, Query, description = "Default remark of the rows"),
        ("scene_id" = Option<String>, Query, description = "Default scene of the rows"),
        ("budget" = Option<String>, Query, description = "The most the file may pay, in yuan"),
        ("allow_repeat" = Option<bool>, Query, description = "Allow an openid on several rows"),
        ("rail" = Option<String>, Query, description = "redpack (default) or transfer: every row a transfer bill its user confirms"),
        ("per_openid_daily" = Option<u64>, Query, description = "The most payouts an openid gets from the merchant's campaigns in a day (Beijing time), this one included; rows over it are stored failed (CAMPAIGN_DAILY_CAP) and never sent"),
        ("dry_run" = Option<bool>, Query, description = "Validate only"),
    ),
    request_body(
        description = "CSV with a header (openid,amount or openid,total_amount; optional wishing, act_name, remark, scene_id) and the options in the query; or JSON with the options and the rows",
        content(
            (String = "text/csv"),
            (CampaignRequest = "application/json"),
        ),
    ),
    responses(
        (status = 201, description = "Stored; it is being paid", body = CampaignJson),
        (status = 200, description = "The same name and file as before: the existing campaign (or a dry run's totals)", body = CampaignJson),
        (status = 400, description = "A bad option, field or query parameter", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 408, description = "The file did not arrive in time", body = ErrorBody),
        (status = 409, description = "The name is taken by another file", body = ErrorBody),
        (status = 413, description = "Over 32 MiB (answered from Content-Length before it is sent)", body = ErrorBody),
        (status = 422, description = "Bad rows: nothing stored", body = BadRowsJson),
    ),
    security(("bearer" = []))
)]
pub async fn create_campaign(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<UploadQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let (query, csv_text) = if is_json {
        if let Some(given) = UPLOAD_OPTIONS
            .iter()
            .zip(query.given())
            .find_map(|(name, given)| given.then_some(*name))
        {
            return Err(bad(
                given,
                "belongs in the JSON body of a JSON upload, not in the query",
                "JSON 上传时应放在 JSON 请求体中，而不是查询参数中",
            ));
        }
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        json_upload(&value)?
    } else {
        let text = String::from_utf8(body.to_vec()).map_err(|_| {
            bad(
                "body",
                "is not UTF-8: save the file as CSV UTF-8",
                "不是 UTF-8 编码：请另存为 CSV UTF-8",
            )
        })?;
        (query, text)
    };
    let name = query
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            bad(
                "name",
                "is required: the campaign's name",
                "必填：批量发放的名称",
            )
        })?;
    if name.len() > 128 {
        return Err(bad("name", "is longer than 128 bytes", "超过 128 字节"));
    }
    let merchant = state
        .payouts
        .resolve_merchant(&tenant.0, query.merchant.as_deref())
        .map_err(ApiError::InvalidField)?;
    let options = CampaignOptions {
        merchant: merchant.name().to_owned(),
        amount: yuan("amount", query.amount.as_deref())?,
        send_name: query.send_name.clone(),
        wishing: query.wishing.clone(),
        act_name: query.act_name.clone(),
        remark: query.remark.clone(),
        scene_id: query.scene_id.clone(),
        budget: yuan("budget", query.budget.as_deref())?,
        allow_repeat: flag("allow_repeat", query.allow_repeat.as_deref())?,
        per_openid_daily: daily_cap(query.per_openid_daily.as_deref())?,
        rail: match query.rail.as_deref().filter(|r| !r.is_empty()) {
            None => hongbao_core::model::Rail::Redpack,
            Some(r) => r.parse().map_err(ApiError::BadField)?,
        },
    };
    let dry_run = flag("dry_run", query.dry_run.as_deref())?;
    let mut bad_rows: Vec<RowError> = Vec::new();
    let checked: Checked =
        campaign::validate(csv_text.as_bytes(), &options, &merchant.config, |e| {
            if bad_rows.len() < ROWS_SHOWN {
                bad_rows.push(e.clone());
            }
        })
        .map_err(|e| {
            ApiError::BadField(InvalidField::new("header", e.to_string(), e.zh_message))
        })?;
    if checked.errors > 0 {
        let answer = BadRowsJson {
            error: crate::error::ErrorDetail {
                code: "invalid_rows",
                message: format!(
                    "{} bad row(s) of {}: nothing was stored",
                    checked.errors, checked.rows
                ),
                zh_message: format!(
                    "{} 行有误（共 {} 行）：未保存任何数据",
                    checked.errors, checked.rows
                ),
                field: Some("rows".into()),
            },
            rows: bad_rows.into_iter().map(row_error_json).collect(),
            bad_rows: checked.errors,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(answer)).into_response());
    }
    if dry_run {
        let answer = DryRunJson {
            rows: checked.rows,
            total_amount: checked.total.get(),
            file_sha256: checked.sha256,
        };
        return Ok((StatusCode::OK, Json(answer)).into_response());
    }
    if checked.rows == 0 {
        return Err(bad("rows", "the file has no rows", "文件没有数据行"));
    }
    let ledger = state.payouts.ledger();
    let mut replayed = None;
    let idempotency = match crate::routes::idempotency_key(&headers)? {
        None => None,
        Some(key) => {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            hasher.update(name.as_bytes());
            hasher.update(serde_json::to_vec(&options).unwrap_or_default());
            hasher.update(checked.sha256.as_bytes());
            let request_hash = hex::encode(hasher.finalize());
            if let Some((existing, hash)) =
                campaign::find_by_key(ledger, &tenant.0.name, &key).await?
            {
                if hash.as_deref() != Some(request_hash.as_str()) {
                    return Err(ApiError::IdempotencyConflict);
                }
                replayed = Some(existing);
            }
            Some(hongbao_core::store::Idempotency { key, request_hash })
        }
    };
    let found_by_name = match replayed {
        Some(existing) => Some(existing),
        None => campaign::find(ledger, &tenant.0.name, &name).await?,
    };
    let (found, status) = match found_by_name {
        Some(existing)
            if existing.file_sha256 != checked.sha256
                || !existing.options.same_payouts(&options) =>
        {
            return Err(ApiError::CampaignExists(name));
        }
        Some(existing) => (existing, StatusCode::OK),
        None => match campaign::create_with_key(
            ledger,
            &tenant.0.name,
            &name,
            &options,
            &checked,
            idempotency.as_ref(),
        )
        .await
        {
            Ok(created) => (created, StatusCode::CREATED),
            // Two uploads of the same name or key at once: the other one won.
            Err(e) if e.is_unique_violation() => {
                if let Some(key) = &idempotency
                    && let Some((_, hash)) =
                        campaign::find_by_key(ledger, &tenant.0.name, &key.key).await?
                    && hash.as_deref() != Some(key.request_hash.as_str())
                {
                    return Err(ApiError::IdempotencyConflict);
                }
                match campaign::find(ledger, &tenant.0.name, &name).await? {
                    Some(existing) if existing.file_sha256 == checked.sha256 => {
                        (existing, StatusCode::OK)
                    }
                    _ => return Err(ApiError::CampaignExists(name)),
                }
            }
            Err(e) => return Err(e.into()),
        },
    };
    if found.imported < found.rows {
        campaign::import(
            ledger,
            &found,
            csv_text.as_bytes(),
            &merchant.config,
            |_| {},
        )
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        state.payouts.events().new_work();
    }
    let current = campaign::get(ledger, &found.id)
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
    Ok((
        status,
        [(header::LOCATION, format!("/v1/campaigns/{}", current.id))],
        Json(view(&state, &current).await?),
    )
        .into_response())
}

async fn own(state: &AppState, tenant: &Tenant, id: &str) -> Result<Campaign, ApiError> {
    campaign::get(state.payouts.ledger(), id)
        .await?
        .filter(|c| tenant.0.merchants.contains(&c.merchant))
        .ok_or(ApiError::NotFound("campaign"))
}

/// Filters of the campaign list.
#[derive(Debug, Deserialize)]
pub struct CampaignListQuery {
    merchant: Option<String>,
}

impl QueryNames for CampaignListQuery {
    const NAMES: &'static [&'static str] = &["merchant"];
}

/// The tenant's campaigns, newest first (the latest 1,000).
#[utoipa::path(
    get, path = "/v1/campaigns", tag = "campaigns",
    params(("merchant" = Option<String>, Query, description = "Only this merchant's (404 if the key has no such merchant)")),
    responses(
        (status = 200, body = [CampaignJson]),
        (status = 400, description = "A parameter that is not one of these (named in `field`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The merchant named is not the key's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_campaigns(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<CampaignListQuery>,
) -> Result<Json<Vec<CampaignJson>>, ApiError> {
    let merchants = match query.merchant.filter(|m| !m.is_empty()) {
        Some(m) => {
            crate::routes::known_merchant(&tenant.0, "merchant", &m)?;
            vec![m]
        }
        None => tenant.0.merchants.clone(),
    };
    let campaigns = campaign::list(state.payouts.ledger(), &merchants, 0, 1_000).await?;
    let mut out = Vec::with_capacity(campaigns.len());
    for c in &campaigns {
        out.push(view(&state, c).await?);
    }
    Ok(Json(out))
}

/// A campaign: counts and sums by status.
#[utoipa::path(
    get, path = "/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, body = CampaignJson), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_campaign(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Json<CampaignJson>, ApiError> {
    let c = own(&state, &tenant, &id).await?;
    Ok(Json(view(&state, &c).await?))
}

/// One line per row: line, openid, amount, mch_billno, status, err_code, message, send_listid, times.
#[utoipa::path(
    get, path = "/v1/campaigns/{id}/report.csv", tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, description = "text/csv", content_type = "text/csv"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn campaign_report(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Response, ApiError> {
    let c = own(&state, &tenant, &id).await?;
    let written = campaign::write_report(state.payouts.ledger(), &c.id, Vec::new()).await;
    csv_file(written, &format!("{}.csv", c.id))
}

/// A CSV written for download as `name`.
fn csv_file(
    written: Result<(Vec<u8>, u64), campaign::ReportError>,
    name: &str,
) -> Result<Response, ApiError> {
    let (bytes, _) = written.map_err(|e| match e {
        campaign::ReportError::Db(e) => ApiError::from(e),
        campaign::ReportError::Write(e) => ApiError::Internal(e.to_string()),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// A transfer campaign's bills awaiting their users, with what each
/// user's page passes to `requestMerchantTransfer`: line, openid, amount,
/// out_bill_no, mch_id, appid, package, expires_at.
#[utoipa::path(
    get, path = "/v1/campaigns/{id}/confirms.csv", tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, description = "text/csv", content_type = "text/csv"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn campaign_confirms(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Response, ApiError> {
    let c = own(&state, &tenant, &id).await?;
    let appid = state
        .payouts
        .merchants()
        .get(&c.merchant)
        .map(|m| m.config.appid.as_str().to_owned())
        .unwrap_or_default();
    let written = campaign::write_confirms(state.payouts.ledger(), &c.id, &appid, Vec::new()).await;
    csv_file(written, &format!("{}-confirms.csv", c.id))
}

/// Pauses a campaign: its pending rows wait.
#[utoipa::path(
    post, path = "/v1/campaigns/{id}/pause", tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, body = CampaignJson), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn pause_campaign(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Json<CampaignJson>, ApiError> {
    let c = own(&state, &tenant, &id).await?;
    campaign::set_paused(state.payouts.ledger(), &c.id, true).await?;
    // Its records already claimed stop before their call, too.
    state.payouts.events().campaign_pause(&c.id, true);
    let c = own(&state, &tenant, &id).await?;
    Ok(Json(view(&state, &c).await?))
}

/// Resumes a campaign, and its merchant if it was paused (e.g. after a top-up).
#[utoipa::path(
    post, path = "/v1/campaigns/{id}/resume", tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, body = CampaignJson), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn resume_campaign(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Json<CampaignJson>, ApiError> {
    let c = own(&state, &tenant, &id).await?;
    campaign::set_paused(state.payouts.ledger(), &c.id, false).await?;
    state.payouts.events().campaign_pause(&c.id, false);
    state.payouts.resume(&c.merchant).await?;
    let c = own(&state, &tenant, &id).await?;
    Ok(Json(view(&state, &c).await?))
}
