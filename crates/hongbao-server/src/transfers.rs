//! Transfer bills (APIv3 商家转账): create, list, look up, ask WeChat,
//! cancel; and WeChat's callback, which carries no API key and is verified
//! by its signature before anything else.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hongbao_core::model::{Rail, Redpack, Status, TransferInput};
use hongbao_core::payouts::{CancelError, CreateError, NotifyError};
use hongbao_core::store::{Idempotency, ListFilter, Noted, Stored};
use hongbao_wxpay::InvalidField;
use hongbao_wxpay::v3::{Bill, SignatureHeaders};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{NoParams, Params, PathParam, QueryNames, RawBody};
use crate::json::{self, Meta, bad, rfc3339, string, type_name, whole};
use crate::routes::{
    AppState, Tenant, WaitQuery, idempotency_key, known_merchant, meta, page_link, paging,
    parse_body, selector, status_error, time_ms, wait_seconds,
};

/// The fields of a transfer request.
pub const TRANSFER_FIELDS: &[&str] = &[
    "openid",
    "transfer_amount",
    "transfer_remark",
    "activity_name",
    "reward_description",
    "user_recv_perception",
    "user_name",
    "merchant",
];

/// A transfer to create (for the OpenAPI document; the body is read field
/// by field).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TransferRequest {
    /// The payee's openid, under the merchant's appid.
    pub openid: String,
    /// Fen, at least 10 (0.10 yuan).
    pub transfer_amount: u64,
    /// Shown to the user, at most 32 characters; the merchant's `transfer_remark` if left out.
    pub transfer_remark: Option<String>,
    /// Scene 1000's 活动名称; the merchant's `activity_name` if left out.
    pub activity_name: Option<String>,
    /// Scene 1000's 奖励说明; the merchant's `reward_description` if left out.
    pub reward_description: Option<String>,
    /// `现金奖励` or `活动奖励`.
    pub user_recv_perception: Option<String>,
    /// The payee's real name, plain text (hongbao encrypts it; never stored
    /// in clear); required from 200000 fen.
    pub user_name: Option<String>,
    /// The merchant; the API key's only merchant if left out.
    pub merchant: Option<String>,
}

/// What the front end passes to `requestMerchantTransfer`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConfirmJson {
    /// `mchId`.
    pub mch_id: String,
    /// `appId`.
    pub appid: String,
    /// `package`, unchanged.
    pub package: String,
}

/// A transfer record.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferJson {
    /// `tr_` and a ULID.
    pub id: String,
    /// The merchant's name.
    pub merchant: String,
    /// `pending`, `sending`, `awaiting_confirmation`, `transferring`,
    /// `succeeded`, `failed`, `cancelling` or `cancelled`.
    pub status: String,
    /// The bill's number at WeChat, fixed before the first attempt.
    pub out_bill_no: String,
    /// The payee.
    pub openid: String,
    /// Fen.
    pub transfer_amount: u64,
    /// Shown to the user.
    pub transfer_remark: String,
    /// 活动名称.
    pub activity_name: String,
    /// 奖励说明.
    pub reward_description: String,
    /// 现金奖励 or 活动奖励, if given.
    pub user_recv_perception: Option<String>,
    /// WeChat's number of the bill.
    pub transfer_bill_no: Option<String>,
    /// WeChat's state: `WAIT_USER_CONFIRM`, `TRANSFERING`, `SUCCESS`, `FAIL`, `CANCELING`, `CANCELLED`.
    pub wechat_state: Option<String>,
    /// While awaiting confirmation: what the front end passes to `requestMerchantTransfer`.
    pub confirm: Option<ConfirmJson>,
    /// When an unconfirmed bill closes (RFC 3339, UTC).
    pub expires_at: Option<String>,
    /// Why WeChat closed the bill unpaid (`OVERDUE_CLOSE`, `TRANSFER_RISK`, `MCH_CANCEL`, ...).
    pub fail_reason: Option<String>,
    /// The code of a failure.
    pub err_code: Option<String>,
    /// Its message in English.
    pub message: Option<String>,
    /// Its message in Chinese.
    pub zh_message: Option<String>,
    /// Calls to the create API so far.
    pub attempts: u32,
    /// The campaign it belongs to.
    pub campaign_id: Option<String>,
    /// The prize it pays.
    pub prize_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// Sandbox mode only, while awaiting confirmation: the sandbox's page
    /// where a person plays the user and confirms the bill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_confirm_url: Option<String>,
}

/// A page of transfers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferList {
    /// Paging.
    pub meta: Meta,
    /// The transfers, newest first.
    pub objects: Vec<TransferJson>,
}

/// What WeChat's query said of a bill.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillJson {
    /// The state, or `NOT_FOUND`.
    pub state: String,
    /// WeChat's number of the bill.
    pub transfer_bill_no: Option<String>,
    /// Why it failed.
    pub fail_reason: Option<String>,
    /// Fen.
    pub transfer_amount: Option<u64>,
    /// The payee.
    pub openid: Option<String>,
    /// When WeChat created it.
    pub create_time: Option<String>,
    /// When it last changed.
    pub update_time: Option<String>,
}

/// A transfer and what WeChat says of its bill now.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferStatusJson {
    /// The record, updated.
    pub record: TransferJson,
    /// WeChat's answer.
    pub wechat: BillJson,
}

/// The record as the API shows it, for the service's merchants.
pub fn json_of(payouts: &hongbao_core::payouts::Payouts, r: &Redpack) -> TransferJson {
    let appid = payouts
        .merchants()
        .get(&r.merchant)
        .map(|m| m.config.appid.as_str());
    transfer_json(r, appid)
}

pub(crate) fn transfer_json_of(state: &AppState, r: &Redpack) -> TransferJson {
    let mut json = json_of(&state.payouts, r);
    if let (Some(admin), Some(confirm)) = (
        state.sandbox_admin.as_deref().filter(|a| !a.is_empty()),
        &json.confirm,
    ) {
        json.sandbox_confirm_url = Some(format!(
            "{admin}/confirm?package={}",
            hongbao_wxpay::request::url_encode(&confirm.package)
        ));
    }
    json
}

/// The record as the API shows it; `appid` is the merchant's (the
/// `confirm` object names it).
pub fn transfer_json(r: &Redpack, appid: Option<&str>) -> TransferJson {
    let confirm = match (r.status, &r.package, appid) {
        (Status::AwaitingConfirmation, Some(package), Some(appid)) => Some(ConfirmJson {
            mch_id: r.mch_id.clone(),
            appid: appid.to_owned(),
            package: package.clone(),
        }),
        _ => None,
    };
    TransferJson {
        id: r.id.clone(),
        merchant: r.merchant.clone(),
        status: r.status.as_str().to_owned(),
        out_bill_no: r.mch_billno.clone(),
        openid: r.re_openid.clone(),
        transfer_amount: r.total_amount.get(),
        transfer_remark: r.remark.clone(),
        activity_name: r.act_name.clone(),
        reward_description: r.wishing.clone(),
        user_recv_perception: Some(r.send_name.clone()).filter(|p| !p.is_empty()),
        transfer_bill_no: r.send_listid.clone(),
        wechat_state: r.wechat_status.clone(),
        confirm,
        expires_at: r.expires_at.map(rfc3339),
        fail_reason: r.fail_reason.clone(),
        err_code: r.err_code.clone(),
        message: r.message.clone(),
        zh_message: r.zh_message.clone(),
        attempts: r.attempts,
        campaign_id: r.campaign_id.clone(),
        prize_id: r.prize_id.clone(),
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        sandbox_confirm_url: None,
    }
}

/// Reads a transfer request. Structural problems (missing, wrong type,
/// unknown field) are 400; a value breaking a rule is 422.
pub fn transfer_input(value: &Value) -> Result<TransferInput, ApiError> {
    let Value::Object(object) = value else {
        return Err(ApiError::InvalidJson(format!(
            "expected an object, found {}",
            type_name(value)
        )));
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| !TRANSFER_FIELDS.contains(&k.as_str()))
    {
        return Err(bad(
            unknown,
            format!(
                "is not a field of a transfer; the fields are {}",
                TRANSFER_FIELDS.join(", ")
            ),
            format!("不是转账的字段；可用字段为 {}", TRANSFER_FIELDS.join(", ")),
        ));
    }
    let openid = string(object, "openid")?.ok_or_else(|| {
        bad(
            "openid",
            "is required: the payee's openid".into(),
            "必填：收款用户的 openid".into(),
        )
    })?;
    let transfer_amount = whole(object, "transfer_amount", "fen")?.ok_or_else(|| {
        bad(
            "transfer_amount",
            "is required: the amount in fen, at least 10 (100 is 1.00 yuan)".into(),
            "必填：金额，单位为分，至少 10（100 即 1.00 元）".into(),
        )
    })?;
    Ok(TransferInput {
        merchant: string(object, "merchant")?,
        openid,
        transfer_amount,
        transfer_remark: string(object, "transfer_remark")?,
        activity_name: string(object, "activity_name")?,
        reward_description: string(object, "reward_description")?,
        user_recv_perception: string(object, "user_recv_perception")?,
        user_name: string(object, "user_name")?,
    })
}

fn create_error(e: CreateError) -> ApiError {
    match e {
        CreateError::Invalid(f) => ApiError::InvalidField(f),
        CreateError::IdempotencyConflict => ApiError::IdempotencyConflict,
        CreateError::Unavailable(_) => ApiError::Unavailable,
        CreateError::Internal(e) => ApiError::Internal(e),
    }
}

/// Creates a transfer bill.
#[utoipa::path(
    post, path = "/v1/transfers", tag = "transfers",
    params(
        ("wait" = Option<u64>, Query, description = "Wait up to this many seconds (at most 60) for the create's outcome (awaiting_confirmation or failed)"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key and body return the same record; the same key with another body is 409"),
    ),
    request_body(content = TransferRequest, description = "The transfer; texts left out take the merchant's defaults"),
    responses(
        (status = 201, description = "Stored (pending), or with ?wait its outcome", body = TransferJson),
        (status = 200, description = "An earlier request with the same Idempotency-Key and body", body = TransferJson),
        (status = 400, description = "Malformed body, field or query parameter", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with another body", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "A field breaks a rule (or the merchant has no APIv3 keys)", body = ErrorBody),
        (status = 503, description = "Database unavailable; nothing stored", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_transfer(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<WaitQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let wait = wait_seconds(&query)?;
    let key = idempotency_key(&headers)?;
    let value = parse_body(&body)?;
    let input = transfer_input(&value)?;
    let idempotency = key.map(|key| {
        use sha2::Digest;
        // Namespaced: the same key and body for a red packet is another request.
        let text = format!("transfer:{}", json::canonical(&value));
        Idempotency {
            key,
            request_hash: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        }
    });
    let stored = state
        .payouts
        .create_transfer(&tenant.0, &input, idempotency, None, None)
        .await
        .map_err(create_error)?;
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
    let location = format!("/v1/transfers/{}", current.id);
    Ok((
        status,
        [(header::LOCATION, location)],
        Json(transfer_json_of(&state, &current)),
    )
        .into_response())
}

/// Paging and filters of the list.
#[derive(Debug, Deserialize)]
pub struct TransferListQuery {
    offset: Option<String>,
    limit: Option<String>,
    status: Option<String>,
    merchant: Option<String>,
    openid: Option<String>,
    out_bill_no: Option<String>,
    campaign_id: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
}

impl QueryNames for TransferListQuery {
    const NAMES: &'static [&'static str] = &[
        "offset",
        "limit",
        "status",
        "merchant",
        "openid",
        "out_bill_no",
        "campaign_id",
        "created_from",
        "created_to",
    ];
}

fn page_url(query: &TransferListQuery, offset: u64, limit: u64) -> String {
    page_link(
        "/v1/transfers",
        offset,
        limit,
        &[
            ("status", &query.status),
            ("merchant", &query.merchant),
            ("openid", &query.openid),
            ("out_bill_no", &query.out_bill_no),
            ("campaign_id", &query.campaign_id),
            ("created_from", &query.created_from),
            ("created_to", &query.created_to),
        ],
    )
}

/// Lists transfers, newest first.
#[utoipa::path(
    get, path = "/v1/transfers", tag = "transfers",
    params(
        ("offset" = Option<u64>, Query, description = "Records to skip (default 0)"),
        ("limit" = Option<u64>, Query, description = "Page size, 1 to 1000 (default 20)"),
        ("status" = Option<String>, Query, description = "Only this status"),
        ("merchant" = Option<String>, Query, description = "Only this merchant (404 if the key has no such merchant)"),
        ("openid" = Option<String>, Query, description = "Only this payee"),
        ("out_bill_no" = Option<String>, Query, description = "Only this bill number"),
        ("campaign_id" = Option<String>, Query, description = "Only this campaign"),
        ("created_from" = Option<String>, Query, description = "Created at or after (RFC 3339, or YYYY-MM-DD in Beijing)"),
        ("created_to" = Option<String>, Query, description = "Created before"),
    ),
    responses(
        (status = 200, body = TransferList),
        (status = 400, description = "A bad value, or a parameter that is not one of these", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The merchant named is not the key's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_transfers(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<TransferListQuery>,
) -> Result<Json<TransferList>, ApiError> {
    let (offset, limit) = paging(query.offset.as_deref(), query.limit.as_deref())?;
    let merchant = query.merchant.clone().filter(|m| !m.is_empty());
    if let Some(m) = &merchant {
        known_merchant(&tenant.0, "merchant", m)?;
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
        re_openid: query.openid.clone().filter(|s| !s.is_empty()),
        mch_billno: query.out_bill_no.clone().filter(|s| !s.is_empty()),
        campaign_id: query.campaign_id.clone().filter(|s| !s.is_empty()),
        rail: Some(Rail::Transfer),
        created_from_ms: time_ms("created_from", query.created_from.as_deref())?,
        created_to_ms: time_ms("created_to", query.created_to.as_deref())?,
    };
    let (records, total) = state.payouts.list(&tenant.0, filter, offset, limit).await?;
    Ok(Json(TransferList {
        meta: meta(offset, limit, total, |o, l| page_url(&query, o, l)),
        objects: records
            .iter()
            .map(|r| transfer_json_of(&state, r))
            .collect(),
    }))
}

async fn own_transfer(state: &AppState, tenant: &Tenant, id: &str) -> Result<Redpack, ApiError> {
    state
        .payouts
        .get(&tenant.0, id)
        .await?
        .filter(|r| r.rail == Rail::Transfer)
        .ok_or(ApiError::NotFound("transfer"))
}

/// One transfer.
#[utoipa::path(
    get, path = "/v1/transfers/{id}", tag = "transfers",
    params(("id" = String, Path, description = "The record's id")),
    responses((status = 200, body = TransferJson), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_transfer(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Json<TransferJson>, ApiError> {
    let found = own_transfer(&state, &tenant, &id).await?;
    Ok(Json(transfer_json_of(&state, &found)))
}

/// Every call made to WeChat for a transfer.
#[utoipa::path(
    get, path = "/v1/transfers/{id}/attempts", tag = "transfers",
    params(("id" = String, Path, description = "The record's id")),
    responses((status = 200, description = "Oldest first", body = [json::AttemptJson]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_attempts(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Json<Vec<json::AttemptJson>>, ApiError> {
    own_transfer(&state, &tenant, &id).await?;
    let attempts = state.payouts.ledger().attempts(&id).await?;
    Ok(Json(attempts.iter().map(json::attempt_json).collect()))
}

/// Which transfer to ask WeChat about.
#[derive(Debug, Deserialize)]
pub struct TransferStatusQuery {
    id: Option<String>,
    out_bill_no: Option<String>,
}

impl QueryNames for TransferStatusQuery {
    const NAMES: &'static [&'static str] = &["id", "out_bill_no"];
}

fn bill_json(bill: Option<&Bill>) -> BillJson {
    match bill {
        None => BillJson {
            state: "NOT_FOUND".into(),
            transfer_bill_no: None,
            fail_reason: None,
            transfer_amount: None,
            openid: None,
            create_time: None,
            update_time: None,
        },
        Some(b) => BillJson {
            state: b.state.as_str().to_owned(),
            transfer_bill_no: Some(b.transfer_bill_no.as_str().to_owned()),
            fail_reason: b.fail_reason.clone(),
            transfer_amount: b.transfer_amount,
            openid: b.openid.clone(),
            create_time: b.create_time.clone(),
            update_time: b.update_time.clone(),
        },
    }
}

/// Asks WeChat about a transfer's bill now, and updates the record.
#[utoipa::path(
    get, path = "/v1/transfers/status", tag = "transfers",
    params(
        ("out_bill_no" = Option<String>, Query, description = "The bill number"),
        ("id" = Option<String>, Query, description = "Or the record's id"),
    ),
    responses((status = 200, body = TransferStatusJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn transfer_status(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<TransferStatusQuery>,
) -> Result<Json<TransferStatusJson>, ApiError> {
    let selector = selector(query.id, query.out_bill_no, "out_bill_no")?;
    let status = state
        .payouts
        .transfer_status(&tenant.0, &selector)
        .await
        .map_err(|e| status_error(e, "transfer"))?;
    Ok(Json(TransferStatusJson {
        record: transfer_json_of(&state, &status.record),
        wechat: bill_json(status.bill.as_ref()),
    }))
}

/// Cancels a transfer's bill, allowed until its user confirms it.
#[utoipa::path(
    post, path = "/v1/transfers/{id}/cancel", tag = "transfers",
    params(("id" = String, Path, description = "The record's id")),
    responses(
        (status = 200, description = "Cancelling or cancelled", body = TransferJson),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not cancellable (`not_cancellable`: the user confirmed, or it is settled; `cancel_refused`: WeChat refused)", body = ErrorBody),
        (status = 502, description = "WeChat gave no usable answer; cancelling again is safe", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_transfer(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
    RawBody(body): RawBody,
) -> Result<Json<TransferJson>, ApiError> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        match parse_body(&body)? {
            Value::Object(o) if o.is_empty() => {}
            _ => {
                return Err(ApiError::BadField(InvalidField::new(
                    "body",
                    "a cancel takes no body (or {})",
                    "撤销不需要请求体（或为 {}）",
                )));
            }
        }
    }
    let record = state
        .payouts
        .cancel_transfer(&tenant.0, &id)
        .await
        .map_err(|e| match e {
            CancelError::NotFound => ApiError::NotFound("transfer"),
            CancelError::NotCancellable(status) => ApiError::Conflict {
                code: "not_cancellable",
                message: format!(
                    "a transfer that is {status} cannot be cancelled: only one awaiting confirmation can"
                ),
                zh_message: format!("状态为 {status} 的转账无法撤销：只有待用户确认的可以撤销"),
            },
            CancelError::Refused(code) => ApiError::Conflict {
                code: "cancel_refused",
                message: format!("WeChat refused the cancel: {}", code.message),
                zh_message: format!("微信拒绝撤销：{}", code.zh_message),
            },
            CancelError::Wechat(e) => ApiError::Wechat(e),
            CancelError::Db(e) => e.into(),
        })?;
    tracing::info!(record = %record.id, status = %record.status, "transfer cancel asked through the API");
    Ok(Json(transfer_json_of(&state, &record)))
}

/// WeChat's callback for a transfer bill (`MCHTRANSFER.BILL.FINISHED`). No
/// API key: verified by WeChat's signature first (401, nothing stored, if
/// it fails), decrypted with the merchant's APIv3 key, stored with its
/// outcome; 204 only once that is durable, so that anything else makes
/// WeChat retry. A duplicate changes nothing; one for a bill no record has
/// is kept for the operator and acknowledged.
#[utoipa::path(
    post, path = "/v1/notify/transfers/{merchant}", tag = "transfers",
    params(("merchant" = String, Path, description = "The merchant whose notify_url this is")),
    responses(
        (status = 204, description = "Stored (or seen before)"),
        (status = 401, description = "The signature does not verify, or the body cannot be read: nothing stored", body = ErrorBody),
        (status = 404, description = "No such merchant paying by transfer", body = ErrorBody),
        (status = 503, description = "Database unavailable: nothing stored, WeChat retries", body = ErrorBody),
    ),
)]
pub async fn notify_transfer(
    State(state): State<AppState>,
    PathParam(merchant): PathParam,
    _: Params<NoParams>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let pairs = [
        "Wechatpay-Timestamp",
        "Wechatpay-Nonce",
        "Wechatpay-Signature",
        "Wechatpay-Serial",
    ]
    .into_iter()
    .filter_map(|name| header(name).map(|v| (name, v)));
    let signature = SignatureHeaders::from_pairs(pairs);
    match state
        .payouts
        .notify_transfer(&merchant, &signature, &body)
        .await
    {
        Ok(noted) => {
            if noted == Noted::Duplicate {
                tracing::debug!(%merchant, "a transfer callback seen before");
            }
            state
                .payouts
                .metrics()
                .callback(&merchant, noted_label(&noted));
            Ok(StatusCode::NO_CONTENT)
        }
        Err(NotifyError::UnknownMerchant(_)) => Err(ApiError::NotFound("merchant")),
        Err(NotifyError::Refused(e)) => {
            tracing::warn!(%merchant, "a transfer callback refused: {e}");
            state.payouts.metrics().callback(&merchant, "refused");
            Err(ApiError::BadSignature(e.to_string()))
        }
        Err(NotifyError::Db(e)) => Err(e.into()),
    }
}

fn noted_label(noted: &Noted) -> &'static str {
    match noted {
        Noted::Applied { .. } => "applied",
        Noted::Duplicate => "duplicate",
        Noted::Unknown => "unknown",
    }
}
