//! WeChat's APIv3 error answers: the HTTP status, a `code` and a `message`
//! (facts §3), each known code with a short message in English and Chinese.

use std::fmt;

use serde::Deserialize;

macro_rules! v3_codes {
    ($($variant:ident = $wire:literal, $en:literal, $zh:literal;)*) => {
        /// A `code` of an APIv3 error answer. Codes WeChat may add later
        /// arrive as [`V3Code::Other`]: an unknown code is never taken for a
        /// failure.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum V3Code {
            $(
                #[doc = concat!("`", $wire, "`: ", $en)]
                $variant,
            )*
            /// A code this library does not know.
            Other(String),
        }

        impl V3Code {
            /// Every known code.
            pub const KNOWN: &'static [V3Code] = &[$(V3Code::$variant,)*];

            /// Reads a wire code.
            pub fn parse(code: &str) -> V3Code {
                match code {
                    $($wire => V3Code::$variant,)*
                    other => V3Code::Other(other.to_owned()),
                }
            }

            /// The wire code.
            pub fn as_str(&self) -> &str {
                match self {
                    $(V3Code::$variant => $wire,)*
                    V3Code::Other(code) => code,
                }
            }

            /// A short message for users, in English.
            pub fn message(&self) -> &'static str {
                match self {
                    $(V3Code::$variant => $en,)*
                    V3Code::Other(_) => "WeChat answered with a code this version does not know; the bill is being checked",
                }
            }

            /// The same message in Chinese.
            pub fn zh_message(&self) -> &'static str {
                match self {
                    $(V3Code::$variant => $zh,)*
                    V3Code::Other(_) => "微信返回了未知错误码，正在查询转账单",
                }
            }
        }
    };
}

v3_codes! {
    ParamError = "PARAM_ERROR", "WeChat refused a parameter of the transfer", "转账参数错误";
    InvalidRequest = "INVALID_REQUEST", "WeChat refused the request (perception, appid, scene, IP or a bill number used with other parameters)", "请求不合法（收款感知、appid、转账场景、IP 或单号已存在但信息不一致）";
    SignError = "SIGN_ERROR", "WeChat could not verify the request signature: check the API certificate's private key and serial", "签名错误，请检查商户 API 证书私钥和序列号";
    NoAuth = "NO_AUTH", "The merchant may not use this API (not enabled, or the retired batch API)", "商户无权限调用该接口（未开通或使用了已下线的批量转账接口）";
    NotEnough = "NOT_ENOUGH", "The operations account's balance is too low; top it up, then retry the same bill", "商户运营账户资金不足，请充值后用原单号重试";
    NotFound = "NOT_FOUND", "WeChat has no such transfer bill", "转账单不存在";
    OrderNotExist = "ORDER_NOT_EXIST", "WeChat has no such transfer bill", "转账单不存在";
    FrequencyLimited = "FREQUENCY_LIMITED", "Too many requests to WeChat; calls slow down and retry", "请求过于频繁，已降速重试";
    RatelimitExceeded = "RATELIMIT_EXCEEDED", "Too many requests to WeChat; calls slow down and retry", "请求过于频繁，已降速重试";
    SystemError = "SYSTEM_ERROR", "WeChat is busy; the bill is being checked with the same number", "微信系统繁忙，正在用原单号查询";
    ServiceUnavailable = "SERVICE_UNAVAILABLE", "WeChat is unavailable; the bill is being checked with the same number", "微信服务不可用，正在用原单号查询";
}

impl fmt::Display for V3Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An APIv3 error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The `code`.
    pub code: V3Code,
    /// WeChat's `message`, in Chinese as WeChat writes it.
    pub message: String,
}

impl ApiError {
    /// Reads an error body (`{"code": "...", "message": "..."}`) answered
    /// with `status`. `None` when the body is not one (a proxy's page).
    pub fn parse(status: u16, body: &[u8]) -> Option<ApiError> {
        #[derive(Deserialize)]
        struct Wire {
            code: String,
            #[serde(default)]
            message: String,
        }
        let wire: Wire = serde_json::from_slice(body).ok()?;
        if wire.code.is_empty() {
            return None;
        }
        Some(ApiError {
            status,
            code: V3Code::parse(&wire.code),
            message: wire.message,
        })
    }

    /// Whether WeChat refused the caller's address ("此IP地址不允许调用该接口").
    pub fn is_ip_refused(&self) -> bool {
        self.code == V3Code::InvalidRequest
            && (self.message.contains("IP") || self.message.contains("ip地址"))
    }

    /// Whether the bill number exists with other parameters
    /// ("单号已存在但信息不一致").
    pub fn is_bill_mismatch(&self) -> bool {
        self.code == V3Code::InvalidRequest
            && (self.message.contains("不一致") || self.message.contains("单号已存在"))
    }

    /// Whether the refusal is about the merchant's set-up (an appid not
    /// bound to it, a scene it was not granted), the same for every bill.
    pub fn is_configuration(&self) -> bool {
        self.code == V3Code::InvalidRequest
            && (self.message.contains("APPID")
                || self.message.contains("appid")
                || self.message.contains("场景未开通")
                || self.message.contains("未开通"))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {} {}", self.status, self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_both_messages() {
        for code in V3Code::KNOWN {
            assert_eq!(&V3Code::parse(code.as_str()), code);
            assert!(!code.zh_message().is_ascii(), "{code}");
        }
        assert_eq!(V3Code::parse("NEW"), V3Code::Other("NEW".into()));
    }

    #[test]
    fn error_bodies_are_read_and_sorted() {
        let e = ApiError::parse(
            400,
            "{\"code\":\"INVALID_REQUEST\",\"message\":\"单号已存在但信息不一致，请查单后比较确认\"}"
                .as_bytes(),
        )
        .unwrap();
        assert!(e.is_bill_mismatch() && !e.is_ip_refused());
        let ip = ApiError::parse(
            400,
            "{\"code\":\"INVALID_REQUEST\",\"message\":\"此IP地址不允许调用该接口\"}".as_bytes(),
        )
        .unwrap();
        assert!(ip.is_ip_refused());
        assert_eq!(ApiError::parse(502, b"<html>bad gateway</html>"), None);
        assert_eq!(ApiError::parse(400, b"{\"code\":\"\"}"), None);
    }
}
