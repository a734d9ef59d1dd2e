//! The lottery flow's routes: activities (the rules prizes are paid by),
//! prizes granted to users, and their claims.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hongbao_core::model::Kind;
use hongbao_core::prize::{
    self, Activity, ActivityError, ActivitySpec, ClaimError, GrantError, Prize, PrizeFilter,
    PrizeInput, PrizeKind,
};
use hongbao_core::store::Idempotency;
use hongbao_wxpay::InvalidField;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{NoParams, Params, PathParam, QueryNames, RawBody};
use crate::json::{self, Meta, RecordJson, bad, rfc3339, string, type_name, whole};
use crate::routes::{self, AppState, Tenant, WaitQuery};

/// An activity as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityJson {
    /// `ac_` and a ULID.
    pub id: String,
    /// Its name, unique per tenant.
    pub name: String,
    /// The merchant paying its prizes.
    pub merchant: String,
    /// The red packets it pays: `normal` or `miniprogram`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The scene (`PRODUCT_1`…`PRODUCT_8`), if any.
    pub scene_id: Option<String>,
    /// The least a prize may be, in fen.
    pub min_amount: u64,
    /// The most a prize may be, in fen.
    pub max_amount: u64,
    /// The sender's name.
    pub send_name: String,
    /// The blessing.
    pub wishing: String,
    /// The activity's name as WeChat shows it.
    pub act_name: String,
    /// A remark.
    pub remark: String,
    /// The most its prizes may pay in all, in fen (`null`: no budget).
    pub budget: Option<u64>,
    /// Fen of prizes being paid or paid.
    pub committed: u64,
    /// What is left of the budget, in fen.
    pub budget_left: Option<u64>,
    /// The most prizes one openid may claim per day (`null`: no limit).
    pub per_user_daily: Option<u64>,
    /// Whether claimers must follow the official account.
    pub require_follow: bool,
    /// The rail its prizes are paid on: `redpack` or `transfer` (for a
    /// transfer, `remark` is the bill's transfer_remark, `act_name` its
    /// 活动名称 and `wishing` its 奖励说明).
    pub rail: String,
    /// Its cash prizes by status.
    pub prizes: BTreeMap<String, u64>,
    /// Their fen by status.
    pub prize_amounts: BTreeMap<String, u64>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

async fn activity_json(state: &AppState, a: &Activity) -> Result<ActivityJson, ApiError> {
    let totals = prize::activity_totals(state.payouts.ledger(), &a.id).await?;
    let d = &a.def;
    Ok(ActivityJson {
        id: a.id.clone(),
        name: d.name.clone(),
        merchant: d.merchant.clone(),
        kind: d.kind.as_str().to_owned(),
        scene_id: d.scene_id.clone(),
        min_amount: d.min_amount.get(),
        max_amount: d.max_amount.get(),
        send_name: d.send_name.clone(),
        wishing: d.wishing.clone(),
        act_name: d.act_name.clone(),
        remark: d.remark.clone(),
        budget: d.budget.map(|b| b.get()),
        committed: a.committed.get(),
        budget_left: a.budget_left().map(|b| b.get()),
        per_user_daily: d.per_user_daily,
        require_follow: d.require_follow,
        rail: d.rail.as_str().to_owned(),
        prizes: totals
            .iter()
            .map(|(s, n, _)| (s.as_str().to_owned(), *n))
            .collect(),
        prize_amounts: totals
            .iter()
            .map(|(s, _, fen)| (s.as_str().to_owned(), fen.get()))
            .collect(),
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    })
}

/// A page of activities.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityList {
    /// Paging.
    pub meta: Meta,
    /// Newest first.
    pub objects: Vec<ActivityJson>,
}

/// A prize as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrizeJson {
    /// `pz_` and a ULID.
    pub id: String,
    /// The activity's id.
    pub activity_id: String,
    /// The activity's name.
    pub activity: String,
    /// Your reference of the user.
    pub user: String,
    /// `cash_redpack`, `coupon`, `points`, `goods` or `other`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Fen.
    pub amount: u64,
    /// The only openid that may claim it, if bound when granted.
    pub openid: Option<String>,
    /// `pending` (claimable), `issuing`, `issued` or `failed`.
    pub status: String,
    /// What to tell the user now, in English: never a raw err_code.
    pub message: String,
    /// The same in Chinese.
    pub zh_message: String,
    /// WeChat's err_code when the last claim did not pay (for you, not the user).
    pub last_err_code: Option<String>,
    /// The red packet of the current (or paid) claim.
    pub redpack_id: Option<String>,
    /// Its mch_billno: one per claim, reused on every retry.
    pub mch_billno: Option<String>,
    /// Its status.
    pub redpack_status: Option<String>,
    /// The openid of the last claim.
    pub claimed_openid: Option<String>,
    /// Claims that got as far as a payout.
    pub claims: u64,
    /// The red packet itself (on single prizes): for a mini program
    /// packet, the arguments of `wx.sendBizRedPacket`.
    pub redpack: Option<RecordJson>,
    /// A transfer activity's bill (on single prizes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<crate::transfers::TransferJson>,
    /// While the bill awaits its user: what the page passes to
    /// `requestMerchantTransfer` (`mch_id`, `appid`, `package`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<crate::transfers::ConfirmJson>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

fn prize_json(p: &Prize, redpack: Option<RecordJson>) -> PrizeJson {
    prize_json_with(p, redpack, None)
}

fn prize_json_with(
    p: &Prize,
    redpack: Option<RecordJson>,
    transfer: Option<crate::transfers::TransferJson>,
) -> PrizeJson {
    let (message, zh_message) = p.user_message();
    PrizeJson {
        id: p.id.clone(),
        activity_id: p.activity_id.clone(),
        activity: p.activity.clone(),
        user: p.user.clone(),
        kind: p.kind.as_str().to_owned(),
        amount: p.amount.get(),
        openid: p.openid.clone(),
        status: p.status.as_str().to_owned(),
        message: message.to_owned(),
        zh_message: zh_message.to_owned(),
        last_err_code: p.last_err_code.clone(),
        redpack_id: p.payout_id.clone(),
        mch_billno: p.mch_billno.clone(),
        redpack_status: p.redpack_status.map(|s| s.as_str().to_owned()),
        claimed_openid: p.claimed_openid.clone(),
        claims: p.claims,
        redpack,
        confirm: transfer.as_ref().and_then(|t| t.confirm.clone()),
        transfer,
        created_at: rfc3339(p.created_at),
        updated_at: rfc3339(p.updated_at),
    }
}

/// A prize with its red packet.
async fn full_prize_json(state: &AppState, p: &Prize) -> Result<PrizeJson, ApiError> {
    let payout = match &p.payout_id {
        Some(id) => state.payouts.ledger().get(id).await?,
        None => None,
    };
    Ok(match payout {
        Some(r) if r.rail == hongbao_core::model::Rail::Transfer => {
            prize_json_with(p, None, Some(crate::transfers::transfer_json_of(state, &r)))
        }
        Some(r) => prize_json(p, Some(routes::record(state, &r))),
        None => prize_json(p, None),
    })
}

/// A page of prizes.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrizeList {
    /// Paging.
    pub meta: Meta,
    /// Newest first.
    pub objects: Vec<PrizeJson>,
}

fn object(value: &Value) -> Result<&Map<String, Value>, ApiError> {
    match value {
        Value::Object(o) => Ok(o),
        other => Err(ApiError::InvalidJson(format!(
            "expected an object, found {}",
            type_name(other)
        ))),
    }
}

fn only_fields(object: &Map<String, Value>, fields: &[&str], what: &str) -> Result<(), ApiError> {
    match object.keys().find(|k| !fields.contains(&k.as_str())) {
        Some(unknown) => Err(bad(
            unknown,
            format!(
                "is not a field of {what}; the fields are {}",
                fields.join(", ")
            ),
            format!("不是{what}的字段；可用字段为 {}", fields.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A field that may be absent (keep), `null` (clear) or a value.
fn nullable<T>(
    object: &Map<String, Value>,
    field: &str,
    read: impl Fn(&Map<String, Value>, &str) -> Result<Option<T>, ApiError>,
) -> Result<Option<Option<T>>, ApiError> {
    match object.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(_) => Ok(Some(read(object, field)?)),
    }
}

fn boolean(object: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(bad(
            field,
            format!("must be true or false, not {}", type_name(other)),
            format!("必须是 true 或 false，而不是{}", type_name(other)),
        )),
    }
}

/// An activity: the body of `POST /v1/activities`; every field but `name`
/// may be left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityRequest {
    /// Its name, unique per API key.
    pub name: String,
    /// The merchant paying its prizes; required when the key may use several.
    pub merchant: Option<String>,
    /// `normal` (default) or `miniprogram`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `PRODUCT_1` … `PRODUCT_8`.
    pub scene_id: Option<String>,
    /// The least a prize may be, in fen (default 100).
    pub min_amount: Option<u64>,
    /// The most a prize may be, in fen (default 20000).
    pub max_amount: Option<u64>,
    /// Default the merchant's.
    pub send_name: Option<String>,
    /// Default the merchant's.
    pub wishing: Option<String>,
    /// Default the merchant's.
    pub act_name: Option<String>,
    /// Default the merchant's.
    pub remark: Option<String>,
    /// The most its prizes may pay in all, in fen (none by default).
    pub budget: Option<u64>,
    /// The most prizes one openid may claim per day (none by default).
    pub per_user_daily: Option<u64>,
    /// Whether claimers must follow the official account (default true
    /// for `normal` red packets, false for transfers).
    pub require_follow: Option<bool>,
    /// `redpack` (default) or `transfer`: a bill the user confirms.
    pub rail: Option<String>,
    /// For a transfer activity, the same as `remark`.
    pub transfer_remark: Option<String>,
    /// For a transfer activity, the same as `act_name` (活动名称).
    pub activity_name: Option<String>,
    /// For a transfer activity, the same as `wishing` (奖励说明).
    pub reward_description: Option<String>,
}

/// Changes to an activity: the body of `PATCH /v1/activities/{id}`. Only
/// the fields given change; `null` clears `budget`, `per_user_daily`,
/// `scene_id` and resets a text to the merchant's default.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityPatch {
    /// A new name.
    pub name: Option<String>,
    /// Another merchant of the key.
    pub merchant: Option<String>,
    /// `normal` or `miniprogram`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `PRODUCT_1` … `PRODUCT_8`, or `null`.
    pub scene_id: Option<String>,
    /// Fen.
    pub min_amount: Option<u64>,
    /// Fen.
    pub max_amount: Option<u64>,
    /// A text, or `null` for the merchant's.
    pub send_name: Option<String>,
    /// A text, or `null` for the merchant's.
    pub wishing: Option<String>,
    /// A text, or `null` for the merchant's.
    pub act_name: Option<String>,
    /// A text, or `null` for the merchant's.
    pub remark: Option<String>,
    /// Fen, or `null` for no budget.
    pub budget: Option<u64>,
    /// A count, or `null` for no limit.
    pub per_user_daily: Option<u64>,
    /// Whether claimers must follow the official account.
    pub require_follow: Option<bool>,
    /// `redpack` or `transfer`.
    pub rail: Option<String>,
    /// For a transfer activity, the same as `remark`.
    pub transfer_remark: Option<String>,
    /// For a transfer activity, the same as `act_name` (活动名称).
    pub activity_name: Option<String>,
    /// For a transfer activity, the same as `wishing` (奖励说明).
    pub reward_description: Option<String>,
}

/// A prize granted to a user: the body of `POST /v1/prizes`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrizeRequest {
    /// The activity's id or name.
    pub activity: String,
    /// Your reference of the user who won.
    pub user: String,
    /// `cash_redpack` (default), `coupon`, `points`, `goods` or `other`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Fen; required for `cash_redpack`, within the activity's range.
    pub amount: Option<u64>,
    /// If given, only this openid may claim it.
    pub openid: Option<String>,
}

/// A claim: the body of `POST /v1/prizes/{id}/claim`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimRequest {
    /// The claiming user's openid (of the official account, or of the mini
    /// program for a `miniprogram` activity).
    pub openid: String,
}

/// The fields of an activity.
pub const ACTIVITY_FIELDS: [&str; 17] = [
    "name",
    "merchant",
    "type",
    "scene_id",
    "min_amount",
    "max_amount",
    "send_name",
    "wishing",
    "act_name",
    "remark",
    "budget",
    "per_user_daily",
    "require_follow",
    "rail",
    "transfer_remark",
    "activity_name",
    "reward_description",
];

/// Applies the fields present in `object` to `spec`; returns the merchant
/// named, if one is.
fn apply_activity(
    object: &Map<String, Value>,
    spec: &mut ActivitySpec,
) -> Result<Option<String>, ApiError> {
    only_fields(object, &ACTIVITY_FIELDS, "an activity")?;
    if let Some(name) = string(object, "name")? {
        spec.name = name;
    }
    if let Some(kind) = string(object, "type")? {
        spec.kind = kind.parse::<Kind>().map_err(ApiError::InvalidField)?;
    }
    if let Some(scene) = nullable(object, "scene_id", string)? {
        spec.scene_id = scene;
    }
    if let Some(min) = whole(object, "min_amount", "fen")? {
        spec.min_amount = min;
    }
    if let Some(max) = whole(object, "max_amount", "fen")? {
        spec.max_amount = max;
    }
    if let Some(rail) = string(object, "rail")? {
        spec.rail = rail.parse().map_err(ApiError::InvalidField)?;
    }
    // A transfer's own names for the same texts come second.
    for (fields, slot) in [
        (["send_name", "send_name"], &mut spec.send_name),
        (["wishing", "reward_description"], &mut spec.wishing),
        (["act_name", "activity_name"], &mut spec.act_name),
        (["remark", "transfer_remark"], &mut spec.remark),
    ] {
        for field in fields {
            if let Some(text) = nullable(object, field, string)? {
                *slot = text;
            }
        }
    }
    if let Some(budget) = nullable(object, "budget", |o, f| whole(o, f, "fen"))? {
        spec.budget = budget;
    }
    if let Some(count) = nullable(object, "per_user_daily", |o, f| whole(o, f, "prizes"))? {
        spec.per_user_daily = count;
    }
    if let Some(follow) = nullable(object, "require_follow", boolean)? {
        spec.require_follow = follow;
    }
    string(object, "merchant")
}

fn activity_error(e: ActivityError) -> ApiError {
    match e {
        ActivityError::Exists(name) => ApiError::ActivityExists(name),
        ActivityError::Db(e) => e.into(),
    }
}

/// Creates an activity: the rules its prizes are paid by.
#[utoipa::path(
    post, path = "/v1/activities", tag = "prizes",
    request_body(content = ActivityRequest, description = "The activity's rules"),
    responses(
        (status = 201, description = "Created", body = ActivityJson),
        (status = 200, description = "The same name with the same rules: the existing activity", body = ActivityJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "The name is taken by an activity with other rules", body = ErrorBody),
        (status = 422, description = "A rule is broken (range, texts, follow check without app_secret)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_activity(
    State(state): State<AppState>,
    tenant: Tenant,
    _: Params<NoParams>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let value = routes::parse_body(&body)?;
    let object = object(&value)?;
    if string(object, "name")?.is_none() {
        return Err(bad(
            "name",
            "is required: the activity's name, unique per API key".into(),
            "必填：活动名称，每个 API 密钥下唯一".into(),
        ));
    }
    let mut spec = ActivitySpec::named("");
    let merchant = apply_activity(object, &mut spec)?;
    let merchant = state
        .payouts
        .resolve_merchant(&tenant.0, merchant.as_deref())
        .map_err(ApiError::InvalidField)?;
    let def = prize::validate_activity(&spec, &merchant.config).map_err(ApiError::InvalidField)?;
    let (activity, created) = prize::create_activity(state.payouts.ledger(), &tenant.0.name, &def)
        .await
        .map_err(activity_error)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [(header::LOCATION, format!("/v1/activities/{}", activity.id))],
        Json(activity_json(&state, &activity).await?),
    )
        .into_response())
}

async fn find_activity(state: &AppState, tenant: &Tenant, id: &str) -> Result<Activity, ApiError> {
    prize::get_activity(state.payouts.ledger(), &tenant.0.name, id)
        .await?
        .ok_or(ApiError::NotFound("activity"))
}

/// Changes an activity's rules: only the fields given (`null` clears
/// `budget`, `per_user_daily`, `scene_id`, and resets a text to the
/// merchant's default).
#[utoipa::path(
    patch, path = "/v1/activities/{id}", tag = "prizes",
    params(("id" = String, Path, description = "The activity's id or name")),
    request_body(content = ActivityPatch, description = "The fields to change"),
    responses(
        (status = 200, body = ActivityJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_activity(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
    RawBody(body): RawBody,
) -> Result<Json<ActivityJson>, ApiError> {
    let activity = find_activity(&state, &tenant, &id).await?;
    let value = routes::parse_body(&body)?;
    let object = object(&value)?;
    let mut spec = activity.def.spec();
    let merchant = apply_activity(object, &mut spec)?;
    let merchant = state
        .payouts
        .resolve_merchant(
            &tenant.0,
            Some(merchant.as_deref().unwrap_or(&activity.def.merchant)),
        )
        .map_err(ApiError::InvalidField)?;
    let def = prize::validate_activity(&spec, &merchant.config).map_err(ApiError::InvalidField)?;
    let updated = prize::update_activity(state.payouts.ledger(), &activity, &def)
        .await
        .map_err(activity_error)?;
    Ok(Json(activity_json(&state, &updated).await?))
}

/// Paging of a list.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    offset: Option<String>,
    limit: Option<String>,
}

impl QueryNames for PageQuery {
    const NAMES: &'static [&'static str] = &["offset", "limit"];
}

fn page(offset: Option<&str>, limit: Option<&str>) -> Result<(u64, u64), ApiError> {
    routes::paging(offset, limit)
}

fn meta(path: &str, extra: &str, offset: u64, limit: u64, total: u64) -> Meta {
    routes::meta(offset, limit, total, |o, l| {
        format!("{path}?limit={l}&offset={o}{extra}")
    })
}

/// Lists activities, newest first.
#[utoipa::path(
    get, path = "/v1/activities", tag = "prizes",
    params(
        ("offset" = Option<u64>, Query, description = "Activities to skip"),
        ("limit" = Option<u64>, Query, description = "Page size, 1 to 1000 (default 20)"),
    ),
    responses(
        (status = 200, body = ActivityList),
        (status = 400, description = "A bad value, or a parameter that is not one of these (named in `field`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_activities(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<PageQuery>,
) -> Result<Json<ActivityList>, ApiError> {
    let (offset, limit) = page(query.offset.as_deref(), query.limit.as_deref())?;
    let (activities, total) =
        prize::list_activities(state.payouts.ledger(), &tenant.0.name, offset, limit).await?;
    let mut objects = Vec::with_capacity(activities.len());
    for a in &activities {
        objects.push(activity_json(&state, a).await?);
    }
    Ok(Json(ActivityList {
        meta: meta("/v1/activities", "", offset, limit, total),
        objects,
    }))
}

/// One activity, with its prizes by status and its budget.
#[utoipa::path(
    get, path = "/v1/activities/{id}", tag = "prizes",
    params(("id" = String, Path, description = "The activity's id or name")),
    responses((status = 200, body = ActivityJson), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_activity(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Json<ActivityJson>, ApiError> {
    let activity = find_activity(&state, &tenant, &id).await?;
    Ok(Json(activity_json(&state, &activity).await?))
}

/// The fields of a prize.
pub const PRIZE_FIELDS: [&str; 5] = ["activity", "user", "type", "amount", "openid"];

/// Grants a prize to a user: `pending`, claimable.
#[utoipa::path(
    post, path = "/v1/prizes", tag = "prizes",
    params(("Idempotency-Key" = Option<String>, Header, description = "The same key and body return the same prize; the same key with another body is 409")),
    request_body(content = PrizeRequest, description = "The prize and who won it"),
    responses(
        (status = 201, description = "Granted", body = PrizeJson),
        (status = 200, description = "An earlier request with the same Idempotency-Key and body", body = PrizeJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with another body", body = ErrorBody),
        (status = 422, description = "No such activity, or the amount is outside its range", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn grant_prize(
    State(state): State<AppState>,
    tenant: Tenant,
    _: Params<NoParams>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let key = routes::idempotency_key(&headers)?;
    let value = routes::parse_body(&body)?;
    let object = object(&value)?;
    only_fields(object, &PRIZE_FIELDS, "a prize")?;
    let activity_ref = string(object, "activity")?.ok_or_else(|| {
        bad(
            "activity",
            "is required: the activity's id or name".into(),
            "必填：活动的 id 或名称".into(),
        )
    })?;
    let user = string(object, "user")?.ok_or_else(|| {
        bad(
            "user",
            "is required: your reference of the user who won".into(),
            "必填：中奖用户在您系统中的标识".into(),
        )
    })?;
    let kind = match string(object, "type")? {
        None => PrizeKind::CashRedpack,
        Some(t) => t.parse().map_err(ApiError::InvalidField)?,
    };
    let input = PrizeInput {
        user,
        kind,
        amount: whole(object, "amount", "fen")?,
        openid: string(object, "openid")?,
    };
    let activity = prize::get_activity(state.payouts.ledger(), &tenant.0.name, &activity_ref)
        .await?
        .ok_or_else(|| {
            ApiError::InvalidField(InvalidField::new(
                "activity",
                format!("{activity_ref:?} is not an activity of this API key; create it with POST /v1/activities"),
                format!("{activity_ref:?} 不是此 API 密钥的活动；请先用 POST /v1/activities 创建"),
            ))
        })?;
    prize::validate_grant(&input, &activity).map_err(ApiError::InvalidField)?;
    let idempotency = key.map(|key| {
        use sha2::Digest;
        Idempotency {
            key,
            request_hash: hex::encode(sha2::Sha256::digest(json::canonical(&value).as_bytes())),
        }
    });
    let (granted, created) = prize::grant(
        state.payouts.ledger(),
        &activity,
        &input,
        idempotency.as_ref(),
    )
    .await
    .map_err(|e| match e {
        GrantError::IdempotencyConflict => ApiError::IdempotencyConflict,
        GrantError::Db(e) => e.into(),
    })?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [(header::LOCATION, format!("/v1/prizes/{}", granted.id))],
        Json(full_prize_json(&state, &granted).await?),
    )
        .into_response())
}

/// Filters of the prize list.
#[derive(Debug, Deserialize)]
pub struct PrizeQuery {
    offset: Option<String>,
    limit: Option<String>,
    user: Option<String>,
    activity: Option<String>,
    status: Option<String>,
}

impl QueryNames for PrizeQuery {
    const NAMES: &'static [&'static str] = &["offset", "limit", "user", "activity", "status"];
}

/// Lists prizes, newest first: a user's with `?user=`.
#[utoipa::path(
    get, path = "/v1/prizes", tag = "prizes",
    params(
        ("offset" = Option<u64>, Query, description = "Prizes to skip"),
        ("limit" = Option<u64>, Query, description = "Page size, 1 to 1000 (default 20)"),
        ("user" = Option<String>, Query, description = "Only this user's"),
        ("activity" = Option<String>, Query, description = "Only this activity's (id or name; 404 if the key has no such activity)"),
        ("status" = Option<String>, Query, description = "Only this status"),
    ),
    responses(
        (status = 200, body = PrizeList),
        (status = 400, description = "A bad value, or a parameter that is not one of these (named in `field`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The activity named is not the key's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_prizes(
    State(state): State<AppState>,
    tenant: Tenant,
    Params(query): Params<PrizeQuery>,
) -> Result<Json<PrizeList>, ApiError> {
    let (offset, limit) = page(query.offset.as_deref(), query.limit.as_deref())?;
    let ledger = state.payouts.ledger();
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let activity_id = match nonempty(&query.activity) {
        None => None,
        Some(a) => match prize::get_activity(ledger, &tenant.0.name, &a).await? {
            Some(found) => Some(found.id),
            None => {
                return Err(ApiError::UnknownFilter {
                    field: "activity",
                    what: "activity",
                    value: a,
                });
            }
        },
    };
    let filter = PrizeFilter {
        user: nonempty(&query.user),
        activity_id,
        status: nonempty(&query.status)
            .map(|s| s.parse())
            .transpose()
            .map_err(ApiError::BadField)?,
    };
    let (prizes, total) =
        prize::list_prizes(ledger, &tenant.0.name, &filter, offset, limit).await?;
    let mut extra = String::new();
    for (k, v) in [
        ("user", &query.user),
        ("activity", &query.activity),
        ("status", &query.status),
    ] {
        if let Some(v) = nonempty(v) {
            extra.push_str(&format!("&{k}={}", hongbao_wxpay::request::url_encode(&v)));
        }
    }
    Ok(Json(PrizeList {
        meta: meta("/v1/prizes", &extra, offset, limit, total),
        objects: prizes.iter().map(|p| prize_json(p, None)).collect(),
    }))
}

/// One prize, with its red packet.
#[utoipa::path(
    get, path = "/v1/prizes/{id}", tag = "prizes",
    params(("id" = String, Path, description = "The prize's id")),
    responses((status = 200, body = PrizeJson), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_prize(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    _: Params<NoParams>,
) -> Result<Json<PrizeJson>, ApiError> {
    let found = prize::get_prize(state.payouts.ledger(), &tenant.0.name, &id)
        .await?
        .ok_or(ApiError::Refused(prize::Refusal::NotFound))?;
    Ok(Json(full_prize_json(&state, &found).await?))
}

/// Claims a prize for the user's openid: checked, then paid once.
#[utoipa::path(
    post, path = "/v1/prizes/{id}/claim", tag = "prizes",
    params(
        ("id" = String, Path, description = "The prize's id"),
        ("wait" = Option<u64>, Query, description = "Wait up to this many seconds (at most 60) for the red packet's outcome"),
    ),
    request_body(content = ClaimRequest, description = "Who claims it"),
    responses(
        (status = 202, description = "Claimed: its red packet is being paid", body = PrizeJson),
        (status = 200, description = "With ?wait: the outcome (`issued`, or `pending` again with the reason in message)", body = PrizeJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "not_following, prize_not_yours", body = ErrorBody),
        (status = 404, description = "prize_not_found", body = ErrorBody),
        (status = 409, description = "prize_already_claimed, prize_claim_in_progress, prize_payout_failed, activity_budget_exhausted, daily_claim_limit", body = ErrorBody),
        (status = 422, description = "prize_not_cash, prize_amount_out_of_range, openid_not_of_account, activity_misconfigured, invalid_field", body = ErrorBody),
        (status = 502, description = "follow_check_unavailable", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn claim_prize(
    State(state): State<AppState>,
    tenant: Tenant,
    PathParam(id): PathParam,
    Params(query): Params<WaitQuery>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let wait = routes::wait_seconds(&query)?;
    let value = routes::parse_body(&body)?;
    let object = object(&value)?;
    only_fields(object, &["openid"], "a claim")?;
    let openid = string(object, "openid")?.ok_or_else(|| {
        bad(
            "openid",
            "is required: the claiming user's openid".into(),
            "必填：领取用户的 openid".into(),
        )
    })?;
    let mut claimed = prize::claim(&state.payouts, &tenant.0, &id, &openid)
        .await
        .map_err(|e| match e {
            ClaimError::Refused(r) => ApiError::Refused(r),
            ClaimError::Invalid(f) => ApiError::InvalidField(f),
            ClaimError::Db(e) => e.into(),
            ClaimError::Internal(e) => ApiError::Internal(e),
        })?;
    // Accepted: its red packet is being paid. With ?wait, the outcome if
    // it came in time.
    let mut status = StatusCode::ACCEPTED;
    if let Some(wait) = wait {
        claimed = prize::wait(&state.payouts, claimed, wait).await?;
        if claimed.status != prize::PrizeStatus::Issuing {
            status = StatusCode::OK;
        }
    }
    Ok((
        status,
        [(header::LOCATION, format!("/v1/prizes/{}", claimed.id))],
        Json(full_prize_json(&state, &claimed).await?),
    )
        .into_response())
}
