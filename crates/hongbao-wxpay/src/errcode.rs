//! WeChat's `err_code`s, each with a short message for users in English and Chinese.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! err_codes {
    ($($variant:ident = $wire:literal, $en:literal, $zh:literal;)*) => {
        /// An `err_code` of the red packet APIs (facts §9). Codes WeChat may
        /// add later arrive as [`ErrCode::Other`]: an unknown code is never
        /// taken for a failure.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrCode {
            $(
                #[doc = concat!("`", $wire, "`: ", $en)]
                $variant,
            )*
            /// A code this library does not know.
            Other(String),
        }

        impl ErrCode {
            /// Every known code.
            pub const KNOWN: &'static [ErrCode] = &[$(ErrCode::$variant,)*];

            /// Reads a wire code.
            pub fn parse(code: &str) -> ErrCode {
                match code {
                    $($wire => ErrCode::$variant,)*
                    other => ErrCode::Other(other.to_owned()),
                }
            }

            /// The wire code.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrCode::$variant => $wire,)*
                    ErrCode::Other(code) => code,
                }
            }

            /// A short message for users, in English.
            pub fn message(&self) -> &'static str {
                match self {
                    $(ErrCode::$variant => $en,)*
                    ErrCode::Other(_) => "WeChat answered with a code this version does not know; the outcome is being checked",
                }
            }

            /// The same message in Chinese.
            pub fn zh_message(&self) -> &'static str {
                match self {
                    $(ErrCode::$variant => $zh,)*
                    ErrCode::Other(_) => "微信返回了未知错误码，正在查询发放结果",
                }
            }
        }
    };
}

err_codes! {
    SystemError = "SYSTEMERROR", "WeChat is busy; the outcome is being checked with the same order number", "微信系统繁忙，正在用原单号查询发放结果";
    Processing = "PROCESSING", "WeChat is still processing this red packet", "红包发放处理中";
    FreqLimit = "FREQ_LIMIT", "Too many requests to WeChat; sending slows down and retries", "请求过于频繁，已降速重试";
    SecondOverLimited = "SECOND_OVER_LIMITED", "Too many fission red packets this minute; sending slows down and retries", "每分钟裂变红包数量超限，已降速重试";
    DayOverLimited = "DAY_OVER_LIMITED", "The merchant has sent the most fission red packets allowed today", "今日裂变红包发放数量已达上限";
    NotEnough = "NOTENOUGH", "The merchant's balance is too low; payouts are paused: top up the account, then resume the merchant", "商户账户余额不足，已暂停发放：请充值后恢复该商户";
    SendNumLimit = "SENDNUM_LIMIT", "You have received as many red packets as allowed today; please try again tomorrow", "您今日领取红包个数已达上限，请明天再试";
    RcvdAmountLimit = "RCVDAMOUNT_LIMIT", "You have received the most red packet money allowed today; please try again tomorrow", "您今日领取红包金额已达上限，请明天再试";
    SendAmountLimit = "SENDAMOUNT_LIMIT", "The merchant has reached today's payout limit; payouts are paused until tomorrow", "商户今日发放金额已达上限，已暂停发放";
    MoneyLimit = "MONEY_LIMIT", "The amount is outside what the merchant may send: send 1.00–200.00 yuan, or give a scene_id (PRODUCT_1 … PRODUCT_8) whose range the merchant has enabled on the merchant platform (产品中心 → 现金红包 → 产品设置)", "红包金额超出允许范围：请发放 1.00–200.00 元，或传入已在商户平台（产品中心 → 现金红包 → 产品设置）开通相应金额范围的 scene_id（PRODUCT_1 至 PRODUCT_8）";
    NoAuth = "NO_AUTH", "WeChat refused the payout as risky or not permitted; check the merchant's red packet permission", "微信判定本次发放有风险或无权限，请检查商户红包权限";
    OpenIdError = "OPENID_ERROR", "The openid does not belong to the merchant's official account", "openid 与商户绑定的公众号不匹配";
    IllegalAppId = "ILLEGAL_APPID", "The appid cannot send red packets (a mobile-app appid, or not bound to the merchant)", "appid 无法发放红包（移动应用 appid 或未与商户绑定）";
    MsgAppIdError = "MSGAPPID_ERROR", "msgappid is not bound to the merchant or sub-merchant", "msgappid 与主、子商户号的绑定关系不正确";
    AcceptModeError = "ACCEPTMODE_ERROR", "The service provider and sub-merchant relationship is not valid", "服务商与子商户的受理关系不正确";
    CaError = "CA_ERROR", "The merchant's API certificate is missing, wrong or expired", "商户 API 证书缺失、错误或已过期";
    SignError = "SIGN_ERROR", "WeChat could not verify the signature: check the merchant's API key", "签名错误，请检查商户 API 密钥";
    XmlError = "XML_ERROR", "WeChat could not read the request (a character or field it does not accept); nothing was paid", "微信无法解析请求 XML（含有不接受的字符或字段），未发放";
    ParamError = "PARAM_ERROR", "WeChat refused a parameter of the request", "请求参数错误";
    FatalError = "FATAL_ERROR", "This order number was already used with other parameters", "该订单号已使用不同的参数发放过";
    AmountMismatch = "金额和原始单参数不一致", "This order number was already used with another amount", "金额和原始单参数不一致";
    SendFailed = "SEND_FAILED", "This red packet failed; sending again needs a new order number", "该红包已发放失败，重新发放需使用新单号";
    ApiMethodClosed = "API_METHOD_CLOSED", "The merchant has turned off sending red packets by API on the merchant platform", "商户已在商户平台关闭 API 发放方式";
    NoCompetence = "NO_COMPETENCE", "The merchant is not enabled for WeCom red packets", "商户未开通企业微信红包";
    PayerAccountAbnormal = "PAYER_ACCOUNT_ABNORMAL", "The merchant's account is restricted", "商户账户异常，已被限制";
    NotFound = "NOT_FOUND", "WeChat has no record of this order number yet", "微信暂无该单号的记录";
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ErrCode::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_both_messages() {
        for code in ErrCode::KNOWN {
            assert_eq!(&ErrCode::parse(code.as_str()), code);
            assert!(!code.message().is_empty() && !code.zh_message().is_empty());
            assert!(!code.zh_message().is_ascii(), "{code}");
        }
        assert_eq!(
            ErrCode::parse("NEW_CODE_2027"),
            ErrCode::Other("NEW_CODE_2027".into())
        );
    }
}
