//! The API's JSON: requests read field by field (so that every problem
//! names its field), records written in the shape of the product's contract.

use hongbao_core::model::{Attempt, Kind, Redpack, RedpackInput};
use hongbao_wxpay::{ApiKey, AppId, BizRedPacket, HbInfo, InvalidField};
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::macros::format_description;
use utoipa::ToSchema;

use crate::error::ApiError;

pub(crate) fn bad(field: &str, message: String, zh: String) -> ApiError {
    ApiError::BadField(InvalidField::new(field.to_owned(), message, zh))
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(
            field,
            format!("must be a string, not {}", type_name(other)),
            format!("必须是字符串，而不是{}", type_name(other)),
        )),
    }
}

/// A whole number of fen (or of shares): not fractional, not negative, not a string.
pub(crate) fn whole(
    object: &Map<String, Value>,
    field: &str,
    unit: &str,
) -> Result<Option<u64>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None if n.as_i64().is_some() => Err(ApiError::InvalidField(InvalidField::new(
                field.to_owned(),
                format!("must be positive, not {n}"),
                format!("必须为正数，当前为 {n}"),
            ))),
            None => Err(ApiError::InvalidField(InvalidField::new(
                field.to_owned(),
                format!("must be a whole number of {unit}, not {n} (100 fen is 1.00 yuan)"),
                format!("必须是整数（单位：{unit}），当前为 {n}（100 分即 1.00 元）"),
            ))),
        },
        Some(other) => Err(bad(
            field,
            format!("must be a number of {unit}, not {}", type_name(other)),
            format!("必须是数字（单位：{unit}），而不是{}", type_name(other)),
        )),
    }
}

// Documents the body; [`redpack_input`] reads it field by field, so that
// each problem names its field.
/// A red packet to pay: the body of `POST /v1/redpacks`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"re_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "total_amount": 188, "wishing": "恭喜发财"}))]
pub struct RedpackRequest {
    /// `normal` (default), `group` (fission) or `miniprogram`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The receiver: 28 letters, digits, `-` or `_`.
    pub re_openid: String,
    /// Fen, a whole positive number: 100–20000 without a `scene_id`,
    /// 30–499900 with one.
    #[schema(minimum = 1)]
    pub total_amount: u64,
    /// Shares: 1 (default); 3–20 for `group`.
    pub total_num: Option<u32>,
    /// At most 32 bytes in UTF-8; default the merchant's.
    pub send_name: Option<String>,
    /// At most 128 bytes; default the merchant's.
    pub wishing: Option<String>,
    /// At most 32 bytes; default the merchant's.
    pub act_name: Option<String>,
    /// At most 256 bytes; default the merchant's.
    pub remark: Option<String>,
    /// `PRODUCT_1` … `PRODUCT_8`.
    pub scene_id: Option<String>,
    /// URL-encoded, at most 128 bytes.
    pub risk_info: Option<String>,
    /// The merchant; required when the key may use several.
    pub merchant: Option<String>,
}

/// Nothing to say: an empty object (or no body at all).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// One call made to WeChat for a record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptJson {
    /// The API called: `sendredpack`, `sendgroupredpack`, `sendminiprogramhb`, `gethbinfo`.
    pub api: String,
    /// The order number it concerned.
    pub mch_billno: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    /// What it meant: `sent`, `query_first`, `retry`, `rate_limited`, `paused`, `failed`, ...
    pub outcome: String,
    /// WeChat's err_code, if any.
    pub err_code: Option<String>,
    /// More about it, for people.
    pub detail: Option<String>,
    /// WeChat's answer as received.
    pub answer: Option<String>,
}

/// An attempt as the API shows it.
pub fn attempt_json(a: &Attempt) -> AttemptJson {
    AttemptJson {
        api: a.api.clone(),
        mch_billno: a.mch_billno.clone(),
        started_at: a
            .started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        latency_ms: a.latency_ms,
        outcome: a.outcome.as_str().to_owned(),
        err_code: a.err_code.clone(),
        detail: a.detail.clone(),
        answer: a.answer.clone(),
    }
}

/// The fields of a red packet request.
pub const REDPACK_FIELDS: [&str; 11] = [
    "type",
    "merchant",
    "re_openid",
    "total_amount",
    "total_num",
    "send_name",
    "wishing",
    "act_name",
    "remark",
    "scene_id",
    "risk_info",
];

/// Reads a create request. Structural problems (missing, wrong type,
/// unknown field) are 400; a value breaking a rule is 422.
pub fn redpack_input(value: &Value) -> Result<RedpackInput, ApiError> {
    let Value::Object(object) = value else {
        return Err(ApiError::InvalidJson(format!(
            "expected an object, found {}",
            type_name(value)
        )));
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| !REDPACK_FIELDS.contains(&k.as_str()))
    {
        return Err(bad(
            unknown,
            format!(
                "is not a field of a red packet; the fields are {}",
                REDPACK_FIELDS.join(", ")
            ),
            format!("不是红包的字段；可用字段为 {}", REDPACK_FIELDS.join(", ")),
        ));
    }
    let kind = match string(object, "type")? {
        None => Kind::Normal,
        Some(t) => t.parse().map_err(ApiError::InvalidField)?,
    };
    let re_openid = string(object, "re_openid")?.ok_or_else(|| {
        bad(
            "re_openid",
            "is required: the receiver's openid".into(),
            "必填：接收者的 openid".into(),
        )
    })?;
    let total_amount = whole(object, "total_amount", "fen")?.ok_or_else(|| {
        bad(
            "total_amount",
            "is required: the amount in fen (100 is 1.00 yuan)".into(),
            "必填：金额，单位为分（100 即 1.00 元）".into(),
        )
    })?;
    let total_num = whole(object, "total_num", "packets")?
        .map(|n| {
            u32::try_from(n).map_err(|_| {
                ApiError::InvalidField(InvalidField::new(
                    "total_num",
                    format!("{n} is too large"),
                    format!("{n} 过大"),
                ))
            })
        })
        .transpose()?;
    Ok(RedpackInput {
        kind,
        merchant: string(object, "merchant")?,
        re_openid,
        total_amount,
        total_num,
        send_name: string(object, "send_name")?,
        wishing: string(object, "wishing")?,
        act_name: string(object, "act_name")?,
        remark: string(object, "remark")?,
        scene_id: string(object, "scene_id")?,
        risk_info: string(object, "risk_info")?,
    })
}

/// A JSON value with object keys sorted, for hashing requests.
pub fn canonical(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

pub use hongbao_core::model::rfc3339;

/// A bound of the list's `created_from` / `created_to`: an RFC 3339 time, or
/// a date (`YYYY-MM-DD`: the start of that day in Beijing time). Unix
/// milliseconds.
pub fn parse_list_time_ms(text: &str) -> Option<i64> {
    let parsed = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .or_else(|_| {
            time::Date::parse(text, format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_offset(hongbao_wxpay::BEIJING))
        })
        .ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The arguments of `wx.sendBizRedPacket` for a mini program packet.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MiniProgramJson {
    /// Unix seconds, as a string.
    pub time_stamp: String,
    /// A random string.
    pub nonce_str: String,
    /// The URL-encoded package.
    pub package: String,
    /// `MD5`.
    pub sign_type: String,
    /// The signature.
    pub pay_sign: String,
}

/// A red packet record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordJson {
    /// `rp_` and a ULID.
    pub id: String,
    /// The merchant's name.
    pub merchant: String,
    /// `normal`, `group` or `miniprogram`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `sending`, `sent`, `received`, `refunding`, `refunded` or `failed`.
    pub status: String,
    /// The order number at WeChat, fixed before the first attempt.
    pub mch_billno: String,
    /// The receiver.
    pub re_openid: String,
    /// Fen.
    pub total_amount: u64,
    /// Shares.
    pub total_num: u32,
    /// The sender's name.
    pub send_name: String,
    /// The blessing.
    pub wishing: String,
    /// The activity's name.
    pub act_name: String,
    /// The remark.
    pub remark: String,
    /// The scene.
    pub scene_id: Option<String>,
    /// WeChat's order number.
    pub send_listid: Option<String>,
    /// WeChat's status: `SENT`, `RECEIVED`, `RFUND_ING`, `REFUND`.
    pub wechat_status: Option<String>,
    /// Refunded fen.
    pub refund_amount: Option<u64>,
    /// The err_code of a failure.
    pub err_code: Option<String>,
    /// Its message in English.
    pub message: Option<String>,
    /// Its message in Chinese.
    pub zh_message: Option<String>,
    /// Calls to the send API so far.
    pub attempts: u32,
    /// The campaign it belongs to.
    pub campaign_id: Option<String>,
    /// The prize it pays.
    pub prize_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// For `miniprogram` packets once sent: the arguments of `wx.sendBizRedPacket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mini_program: Option<MiniProgramJson>,
    /// What the caller should know: `group_offline` for a fission packet,
    /// which WeChat has refused since 2024-06-05. Absent when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<WarningJson>,
}

/// A warning on a record.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WarningJson {
    /// Stable, for programs.
    pub code: String,
    /// In English.
    pub message: String,
    /// In Chinese.
    pub zh_message: String,
}

/// The record as the API shows it. `key` signs the mini program's paySign.
pub fn record_json(
    record: &Redpack,
    key: Option<&ApiKey>,
    miniprogram_appid: Option<&AppId>,
) -> RecordJson {
    let mini_program = match (record.kind, &record.package, key, miniprogram_appid) {
        (Kind::MiniProgram, Some(package), Some(key), Some(appid)) => {
            // Stable for a record: the same arguments every time it is read.
            use sha2::Digest;
            let nonce = hex::encode(sha2::Sha256::digest(record.id.as_bytes()))[..32].to_owned();
            let stamp = u64::try_from(record.updated_at.unix_timestamp()).unwrap_or(0);
            let packet = BizRedPacket::new(appid, package, key, stamp, nonce);
            Some(MiniProgramJson {
                time_stamp: packet.time_stamp,
                nonce_str: packet.nonce_str,
                package: packet.package,
                sign_type: packet.sign_type.to_owned(),
                pay_sign: packet.pay_sign,
            })
        }
        _ => None,
    };
    RecordJson {
        id: record.id.clone(),
        merchant: record.merchant.clone(),
        kind: record.kind.as_str().to_owned(),
        status: record.status.as_str().to_owned(),
        mch_billno: record.mch_billno.clone(),
        re_openid: record.re_openid.clone(),
        total_amount: record.total_amount.get(),
        total_num: record.total_num,
        send_name: record.send_name.clone(),
        wishing: record.wishing.clone(),
        act_name: record.act_name.clone(),
        remark: record.remark.clone(),
        scene_id: record.scene_id.clone(),
        send_listid: record.send_listid.clone(),
        wechat_status: record.wechat_status.clone(),
        refund_amount: record.refund_amount.map(|f| f.get()),
        err_code: record.err_code.clone(),
        message: record.message.clone(),
        zh_message: record.zh_message.clone(),
        attempts: record.attempts,
        campaign_id: record.campaign_id.clone(),
        prize_id: record.prize_id.clone(),
        created_at: rfc3339(record.created_at),
        updated_at: rfc3339(record.updated_at),
        mini_program,
        warnings: record
            .kind
            .retired()
            .map(|r| WarningJson {
                code: r.code.to_owned(),
                message: r.message.to_owned(),
                zh_message: r.zh_message.to_owned(),
            })
            .into_iter()
            .collect(),
    }
}

/// Paging of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Meta {
    /// Page size.
    pub limit: u64,
    /// Records skipped.
    pub offset: u64,
    /// The next page, if any.
    pub next: Option<String>,
    /// The previous page, if any.
    pub previous: Option<String>,
    /// Records matching in all.
    pub total_count: u64,
}

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordList {
    /// Paging.
    pub meta: Meta,
    /// The records, newest first.
    pub objects: Vec<RecordJson>,
}

/// One opened share.
#[derive(Debug, Serialize, ToSchema)]
pub struct HbInfoJson {
    /// Who opened it.
    pub openid: Option<String>,
    /// Fen.
    pub amount: Option<u64>,
    /// When (Beijing time, as WeChat writes it).
    pub rcv_time: Option<String>,
}

/// What gethbinfo said.
#[derive(Debug, Serialize, ToSchema)]
pub struct WechatJson {
    /// `SENDING`, `SENT`, `FAILED`, `RECEIVED`, `RFUND_ING`, `REFUND`, or `NOT_FOUND`.
    pub status: String,
    /// WeChat's id of the packet.
    pub detail_id: Option<String>,
    /// `API`, `UPLOAD`, `ACTIVITY`.
    pub send_type: Option<String>,
    /// `NORMAL` or `GROUP`.
    pub hb_type: Option<String>,
    /// Shares.
    pub total_num: Option<u32>,
    /// Fen.
    pub total_amount: Option<u64>,
    /// Why it failed.
    pub reason: Option<String>,
    /// When it was sent (Beijing time).
    pub send_time: Option<String>,
    /// When it was refunded (Beijing time).
    pub refund_time: Option<String>,
    /// Refunded fen.
    pub refund_amount: Option<u64>,
    /// Opened shares.
    pub hblist: Vec<HbInfoJson>,
}

/// A record and what WeChat says of it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusJson {
    /// The record, updated.
    pub record: RecordJson,
    /// WeChat's answer.
    pub wechat: WechatJson,
}

/// gethbinfo's answer, or NOT_FOUND.
pub fn wechat_json(info: Option<&HbInfo>) -> WechatJson {
    match info {
        None => WechatJson {
            status: "NOT_FOUND".into(),
            detail_id: None,
            send_type: None,
            hb_type: None,
            total_num: None,
            total_amount: None,
            reason: None,
            send_time: None,
            refund_time: None,
            refund_amount: None,
            hblist: Vec::new(),
        },
        Some(info) => WechatJson {
            status: info.status.as_str().to_owned(),
            detail_id: info.detail_id.clone(),
            send_type: info.send_type.clone(),
            hb_type: info.hb_type.clone(),
            total_num: info.total_num,
            total_amount: info.total_amount.map(|f| f.get()),
            reason: info.reason.clone(),
            send_time: info.send_time.clone(),
            refund_time: info.refund_time.clone(),
            refund_amount: info.refund_amount.map(|f| f.get()),
            hblist: info
                .receivers
                .iter()
                .map(|r| HbInfoJson {
                    openid: r.openid.clone(),
                    amount: r.amount.map(|f| f.get()),
                    rcv_time: r.rcv_time.clone(),
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<RedpackInput, ApiError>) -> (String, &'static str) {
        match result.unwrap_err() {
            ApiError::BadField(f) => (f.field.into_owned(), "400"),
            ApiError::InvalidField(f) => (f.field.into_owned(), "422"),
            ApiError::InvalidJson(_) => ("(body)".into(), "400"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_structural_problem_names_its_field() {
        let ok = serde_json::json!({"re_openid": "o", "total_amount": 188});
        assert!(redpack_input(&ok).is_ok());
        let cases = [
            (
                serde_json::json!({"total_amount": 188}),
                ("re_openid", "400"),
            ),
            (
                serde_json::json!({"re_openid": "o"}),
                ("total_amount", "400"),
            ),
            (
                serde_json::json!({"re_openid": "o", "total_amount": "188"}),
                ("total_amount", "400"),
            ),
            (
                serde_json::json!({"re_openid": "o", "total_amount": 1.5}),
                ("total_amount", "422"),
            ),
            (
                serde_json::json!({"re_openid": "o", "total_amount": -5}),
                ("total_amount", "422"),
            ),
            (
                serde_json::json!({"re_openid": 5, "total_amount": 188}),
                ("re_openid", "400"),
            ),
            (
                serde_json::json!({"re_openid": "o", "total_amount": 188, "type": "gift"}),
                ("type", "422"),
            ),
            (
                serde_json::json!({"re_openid": "o", "total_amount": 188, "total_ammount": 1}),
                ("total_ammount", "400"),
            ),
            (
                serde_json::json!({"re_openid": "o", "total_amount": 188, "wishing": ["x"]}),
                ("wishing", "400"),
            ),
        ];
        for (body, (field, status)) in cases {
            let (got_field, got_status) = field_of(redpack_input(&body));
            assert_eq!((got_field.as_str(), got_status), (field, status), "{body}");
        }
        assert_eq!(
            field_of(redpack_input(&serde_json::json!([1, 2]))).0,
            "(body)"
        );
    }

    #[test]
    fn canonical_json_ignores_key_order_and_spacing() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
    }
}
