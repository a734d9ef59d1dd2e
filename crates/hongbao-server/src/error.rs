//! Every error the API answers, once, with its HTTP status and its shape:
//! `{"error": {"code", "message", "zh_message", "field"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hongbao_wxpay::InvalidField;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code, e.g. `invalid_field`.
    pub code: &'static str,
    /// In English.
    pub message: String,
    /// In Chinese.
    pub zh_message: String,
    /// The field at fault, if one is.
    pub field: Option<String>,
}

/// An error answer.
#[derive(Debug)]
pub enum ApiError {
    /// 400 `invalid_json`: the body is not JSON, or not an object.
    InvalidJson(String),
    /// 400 `invalid_request`: a field is missing, of the wrong type or unknown.
    BadField(InvalidField),
    /// 422 `invalid_field`: a field breaks a rule.
    InvalidField(InvalidField),
    /// 401 `unauthorized`: no API key, or not a known one.
    Unauthorized,
    /// 404 `not_found`: what was not found, in English and Chinese.
    NotFound(&'static str),
    /// 404 `not_found`: a filter names something the tenant does not have
    /// (`?merchant=nope`), so nothing could ever match.
    UnknownFilter {
        /// The query parameter.
        field: &'static str,
        /// What it names (`merchant`, `activity`, `campaign`).
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// 405 `method_not_allowed`: the path exists, not with this method.
    MethodNotAllowed,
    /// 408 `body_timeout`: the request body did not arrive in time (seconds).
    BodyTimeout(u64),
    /// 409 `idempotency_key_reused`.
    IdempotencyConflict,
    /// 409 `campaign_exists`: the name is taken by another file or options.
    CampaignExists(String),
    /// 409 `activity_exists`: the name is taken by an activity with other rules.
    ActivityExists(String),
    /// A prize claim refused by one of its checks, with the refusal's own
    /// code: 403, 404, 409, 422 or 502.
    Refused(hongbao_core::prize::Refusal),
    /// 413 `body_too_large`.
    BodyTooLarge(usize),
    /// 414 `uri_too_long`: the path and query exceed this many bytes.
    UriTooLong(usize),
    /// 431 `headers_too_large`: the headers exceed this many bytes or fields.
    HeadersTooLarge {
        /// The most bytes.
        bytes: usize,
        /// The most fields.
        fields: usize,
    },
    /// 409 with its own code: the record's state allows no such action
    /// (`not_cancellable`, `cancel_refused`), in English and Chinese.
    Conflict {
        /// The stable code.
        code: &'static str,
        /// In English.
        message: String,
        /// In Chinese.
        zh_message: String,
    },
    /// 401 `invalid_signature`: a callback whose signature does not verify
    /// (or that cannot be read); nothing was stored.
    BadSignature(String),
    /// 502 `wechat_unavailable`: WeChat gave no usable answer.
    Wechat(String),
    /// 503 `database_unavailable`.
    Unavailable,
    /// 500 `internal`: details are logged, not answered.
    Internal(String),
}

impl ApiError {
    /// The HTTP status and the stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::BadField(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::InvalidField(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) | ApiError::UnknownFilter { .. } => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::IdempotencyConflict => (StatusCode::CONFLICT, "idempotency_key_reused"),
            ApiError::CampaignExists(_) => (StatusCode::CONFLICT, "campaign_exists"),
            ApiError::ActivityExists(_) => (StatusCode::CONFLICT, "activity_exists"),
            ApiError::Refused(r) => {
                use hongbao_core::prize::Refusal as R;
                let status = match r {
                    R::NotFound => StatusCode::NOT_FOUND,
                    R::NotYours | R::NotFollowing => StatusCode::FORBIDDEN,
                    R::AlreadyClaimed
                    | R::InProgress
                    | R::PrizeFailed
                    | R::BudgetExhausted { .. }
                    | R::DailyLimit { .. } => StatusCode::CONFLICT,
                    R::NotCash(_)
                    | R::AmountOutOfRange { .. }
                    | R::UnknownOpenId
                    | R::Misconfigured { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                    R::FollowCheckFailed(_) => StatusCode::BAD_GATEWAY,
                };
                (status, r.code())
            }
            ApiError::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            ApiError::HeadersTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::BadSignature(_) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            ApiError::Wechat(_) => (StatusCode::BAD_GATEWAY, "wechat_unavailable"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn detail(self) -> (Option<String>, String, String) {
        match self {
            ApiError::InvalidJson(e) => (
                None,
                format!("the body is not a JSON object: {e}"),
                format!("请求体不是 JSON 对象：{e}"),
            ),
            ApiError::BadField(f) | ApiError::InvalidField(f) => (Some(f.field.into_owned()), f.message, f.zh_message),
            ApiError::Unauthorized => (
                None,
                "give a valid API key as `Authorization: Bearer <key>`".into(),
                "请在 `Authorization: Bearer <key>` 中提供有效的 API 密钥".into(),
            ),
            ApiError::NotFound(what) => {
                let zh = match what {
                    "red packet" => "红包",
                    "transfer" => "转账",
                    "merchant" => "商户",
                    "campaign" => "批量发放",
                    "activity" => "活动",
                    "prize" => "奖品",
                    _ => "资源",
                };
                (None, format!("no such {what}"), format!("找不到该{zh}"))
            }
            ApiError::UnknownFilter { field, what, value } => {
                let zh = match what {
                    "merchant" => "商户",
                    "campaign" => "批量发放",
                    "activity" => "活动",
                    _ => "对象",
                };
                (
                    Some(field.to_owned()),
                    format!("this API key has no {what} {value:?}; nothing can match"),
                    format!("此 API 密钥下没有{zh} {value:?}，不会有任何匹配"),
                )
            }
            ApiError::MethodNotAllowed => (
                None,
                "this path does not take this method; the Allow header lists those it takes".into(),
                "此路径不支持该请求方法；可用的方法见 Allow 响应头".into(),
            ),
            ApiError::BodyTimeout(seconds) => (
                None,
                format!("the body did not arrive whole within {seconds} s; send it again"),
                format!("请求体未在 {seconds} 秒内完整送达，请重新发送"),
            ),
            ApiError::IdempotencyConflict => (
                Some("Idempotency-Key".into()),
                "this Idempotency-Key was already used with a different request; use a new key for a new payout".into(),
                "该 Idempotency-Key 已用于不同的请求；新的发放请使用新的 key".into(),
            ),
            ApiError::CampaignExists(name) => (
                Some("name".into()),
                format!("campaign {name:?} exists with another file or other options; use another name"),
                format!("批量发放 {name:?} 已存在（文件或选项不同），请使用其他名称"),
            ),
            ApiError::ActivityExists(name) => (
                Some("name".into()),
                format!("activity {name:?} exists with other rules; change it with PATCH /v1/activities/{{id}} or use another name"),
                format!("活动 {name:?} 已存在（规则不同）；请用 PATCH /v1/activities/{{id}} 修改，或使用其他名称"),
            ),
            ApiError::Refused(r) => {
                use hongbao_core::prize::Refusal as R;
                let field = matches!(r, R::NotYours | R::UnknownOpenId).then(|| "openid".to_owned());
                (field, r.message(), r.zh_message())
            }
            ApiError::BodyTooLarge(max) => (
                None,
                format!("the body is larger than {max} bytes"),
                format!("请求体超过 {max} 字节"),
            ),
            ApiError::UriTooLong(max) => (
                None,
                format!("the path and query are longer than {max} bytes"),
                format!("路径与查询参数超过 {max} 字节"),
            ),
            ApiError::HeadersTooLarge { bytes, fields } => (
                None,
                format!("the headers are larger than {bytes} bytes or more than {fields} fields"),
                format!("请求头超过 {bytes} 字节或多于 {fields} 个字段"),
            ),
            ApiError::Conflict {
                message, zh_message, ..
            } => (None, message, zh_message),
            ApiError::BadSignature(e) => (
                None,
                format!("the callback was refused and nothing was stored: {e}"),
                format!("回调已拒绝，未保存任何数据：{e}"),
            ),
            ApiError::Wechat(e) => (
                None,
                format!("WeChat gave no usable answer; try again shortly ({e})"),
                "微信暂无可用应答，请稍后再试".into(),
            ),
            ApiError::Unavailable => (
                None,
                "the database is unavailable; nothing was stored, try again shortly".into(),
                "数据库暂不可用，未保存任何数据，请稍后再试".into(),
            ),
            ApiError::Internal(_) => (
                None,
                "an internal error occurred; it was logged".into(),
                "内部错误，已记录日志".into(),
            ),
        }
    }
}

impl From<hongbao_core::store::db::DbError> for ApiError {
    fn from(e: hongbao_core::store::db::DbError) -> Self {
        if e.is_unavailable() {
            ApiError::Unavailable
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::Unavailable => tracing::warn!("answered 503: database unavailable"),
            _ => {}
        }
        let unauthorized = matches!(self, ApiError::Unauthorized);
        let (field, message, zh_message) = self.detail();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                zh_message,
                field,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
