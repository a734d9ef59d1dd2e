//! What the caller must do after a call: one pure classification of every
//! outcome (facts §9, reliability §2.2).
//!
//! The rule that everything here serves: an outcome that is not *known* to
//! be final is never a failure. Unknown codes, unreadable answers, timeouts
//! and connection errors after the request was written all mean "the money
//! may have moved": query, then resend with the same mch_billno.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ErrCode, HbInfo, Reply, SendResult};

/// A call that produced no readable answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request was never written (DNS, connection refused, TLS
    /// handshake, connect timeout): WeChat cannot have acted on it.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The request may have reached WeChat but no answer came back
    /// (timeout, connection reset or closed after writing).
    #[error("no answer: {0}")]
    NoAnswer(String),
    /// An HTTP status other than 200 (a proxy or gateway error).
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The answer could not be read (not XML, too large, no `return_code`).
    #[error("unreadable answer: {0}")]
    Unparseable(String),
    /// A signature was required on the answer and is missing or wrong.
    #[error("answer signature: {0}")]
    BadSignature(String),
}

impl CallError {
    /// Whether the request may have reached WeChat.
    pub fn may_have_reached_wechat(&self) -> bool {
        !matches!(self, CallError::NotSent(_))
    }
}

/// Why a merchant's payouts must stop until someone acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// `NOTENOUGH`: the balance must be topped up.
    InsufficientBalance,
    /// `SENDAMOUNT_LIMIT` / `DAY_OVER_LIMITED`: the merchant's daily cap; resume tomorrow.
    DailyCap,
    /// The key, certificate, permissions or appid binding are wrong.
    Configuration,
}

impl PauseReason {
    /// The reason in English.
    pub const fn message(self) -> &'static str {
        match self {
            PauseReason::InsufficientBalance => {
                "the merchant's balance is too low; top it up, then resume"
            }
            PauseReason::DailyCap => "the merchant reached its daily payout limit; resume tomorrow",
            PauseReason::Configuration => {
                "the merchant's configuration is wrong (key, certificate, permission or appid); fix it, then resume"
            }
        }
    }

    /// The reason in Chinese.
    pub const fn zh_message(self) -> &'static str {
        match self {
            PauseReason::InsufficientBalance => "商户余额不足，请充值后恢复",
            PauseReason::DailyCap => "商户今日发放已达上限，请明天恢复",
            PauseReason::Configuration => "商户配置错误（密钥、证书、权限或 appid），请修正后恢复",
        }
    }
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// What to do after calling a send API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// WeChat accepted the packet: record it as sent.
    Sent(SendResult),
    /// Nothing reached WeChat: send again with the same mch_billno and
    /// identical parameters after a back-off.
    RetrySameBillno(String),
    /// The money may have moved: ask `gethbinfo` first, then resend only
    /// with the same mch_billno and identical parameters.
    QueryFirst {
        /// The code, if WeChat gave one (`SYSTEMERROR`, `PROCESSING`, unknown).
        err_code: Option<ErrCode>,
        /// What happened, for the log.
        detail: String,
    },
    /// `FREQ_LIMIT`: slow the merchant down and retry with the same mch_billno.
    RateLimited(ErrCode),
    /// Stop the merchant's payouts, keep its records pending.
    PauseMerchant(PauseReason, ErrCode),
    /// Final for this recipient (and order): record the failure with its message.
    FailedForRecipient(ErrCode),
    /// `SEND_FAILED`: this mch_billno is dead; a new payout needs a new one.
    NewBillnoNeeded(ErrCode),
    /// `FATAL_ERROR`: the mch_billno was used with other parameters — a bug
    /// or a reused number; stop and look.
    ParametersChanged(ErrCode),
}

impl SendOutcome {
    /// The err_code behind the outcome, if any.
    pub fn err_code(&self) -> Option<&ErrCode> {
        match self {
            SendOutcome::Sent(_) | SendOutcome::RetrySameBillno(_) => None,
            SendOutcome::QueryFirst { err_code, .. } => err_code.as_ref(),
            SendOutcome::RateLimited(code)
            | SendOutcome::PauseMerchant(_, code)
            | SendOutcome::FailedForRecipient(code)
            | SendOutcome::NewBillnoNeeded(code)
            | SendOutcome::ParametersChanged(code) => Some(code),
        }
    }
}

/// What an err_code of a send API means for the caller.
pub fn send_action(code: &ErrCode) -> SendOutcome {
    use ErrCode as E;
    match code {
        E::FreqLimit | E::SecondOverLimited => SendOutcome::RateLimited(code.clone()),
        E::NotEnough => SendOutcome::PauseMerchant(PauseReason::InsufficientBalance, code.clone()),
        E::SendAmountLimit | E::DayOverLimited => {
            SendOutcome::PauseMerchant(PauseReason::DailyCap, code.clone())
        }
        // Wrong for every record of the merchant: pausing keeps a whole
        // campaign from failing row by row on a configuration mistake.
        E::SignError
        | E::CaError
        | E::NoAuth
        | E::ApiMethodClosed
        | E::IllegalAppId
        | E::MsgAppIdError
        | E::AcceptModeError
        | E::NoCompetence
        | E::PayerAccountAbnormal => {
            SendOutcome::PauseMerchant(PauseReason::Configuration, code.clone())
        }
        E::SendNumLimit
        | E::RcvdAmountLimit
        | E::MoneyLimit
        | E::OpenIdError
        | E::ParamError
        | E::XmlError => SendOutcome::FailedForRecipient(code.clone()),
        E::SendFailed => SendOutcome::NewBillnoNeeded(code.clone()),
        E::FatalError | E::AmountMismatch => SendOutcome::ParametersChanged(code.clone()),
        // SYSTEMERROR, PROCESSING, NOT_FOUND (meaningless on a send) and any
        // code not known here: the outcome is unknown.
        E::SystemError | E::Processing | E::NotFound | E::Other(_) => SendOutcome::QueryFirst {
            err_code: Some(code.clone()),
            detail: format!("WeChat answered {code}"),
        },
    }
}

/// Whether a `return_code=FAIL` answer says that the request's XML could
/// not be read: `XML_ERROR`, or only words such as "输入xml参数格式错误".
fn could_not_read_request(reply: &Reply) -> bool {
    match reply.err_code() {
        Some(code) => code == ErrCode::XmlError,
        None => reply.return_msg().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("xml") && (m.contains("格式") || m.contains("解析") || m.contains("format"))
        }),
    }
}

/// Classifies the result of a call to a send API.
pub fn classify_send(result: &Result<Reply, CallError>) -> SendOutcome {
    let reply = match result {
        Ok(reply) => reply,
        Err(CallError::NotSent(detail)) => return SendOutcome::RetrySameBillno(detail.clone()),
        Err(other) => {
            return SendOutcome::QueryFirst {
                err_code: None,
                detail: other.to_string(),
            };
        }
    };
    if reply.return_code() != "SUCCESS" {
        // WeChat could not read the request: no order can have been made
        // from it, and the same bytes would be refused again for ever.
        if could_not_read_request(reply) {
            return SendOutcome::FailedForRecipient(ErrCode::XmlError);
        }
        // Otherwise return_code=FAIL is "system busy" or a protocol-level
        // refusal; the facts say to treat it as unknown on a send.
        return SendOutcome::QueryFirst {
            err_code: reply.err_code(),
            detail: format!(
                "return_code={} {}",
                reply.return_code(),
                reply.return_msg().unwrap_or_default()
            ),
        };
    }
    match (reply.result_code(), reply.err_code()) {
        (Some("SUCCESS"), _) => SendOutcome::Sent(reply.send_result()),
        (Some("FAIL"), Some(code)) => send_action(&code),
        (result_code, _) => SendOutcome::QueryFirst {
            err_code: None,
            detail: format!(
                "result_code={} without an err_code",
                result_code.unwrap_or("(none)")
            ),
        },
    }
}

/// What to do after calling a query API (`gethbinfo`, `queryworkwxredpack`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryOutcome {
    /// WeChat has the packet; its status says what happened.
    Found(Box<HbInfo>),
    /// `NOT_FOUND`: not (yet) known to WeChat — never a failure. Query
    /// again later, or resend with the same mch_billno.
    NotFound,
    /// No usable answer this time; ask again after a back-off.
    RetryLater(String),
    /// `FREQ_LIMIT`.
    RateLimited,
    /// The merchant's key, certificate or permission is wrong.
    PauseMerchant(PauseReason, ErrCode),
    /// WeChat refused the query itself (`PARAM_ERROR`, `XML_ERROR`): a bug
    /// on our side, not an answer about the packet.
    Invalid(ErrCode),
}

/// Classifies the result of a call to a query API.
pub fn classify_query(result: &Result<Reply, CallError>) -> QueryOutcome {
    use ErrCode as E;
    let reply = match result {
        Ok(reply) => reply,
        Err(e) => return QueryOutcome::RetryLater(e.to_string()),
    };
    if reply.is_success() {
        return match reply.hb_info() {
            Ok(info) => QueryOutcome::Found(Box::new(info)),
            Err(why) => QueryOutcome::RetryLater(why),
        };
    }
    // An old official example answers an unknown order with
    // `return_code=FAIL` and only the words "指定单号数据不存在": the same as
    // NOT_FOUND (safe either way: it only ever leads to a resend of the
    // same mch_billno).
    if reply.err_code().is_none()
        && reply.return_code() == "FAIL"
        && reply.return_msg().is_some_and(|m| m.contains("数据不存在"))
    {
        return QueryOutcome::NotFound;
    }
    match reply.err_code() {
        Some(E::NotFound) => QueryOutcome::NotFound,
        Some(E::FreqLimit) => QueryOutcome::RateLimited,
        Some(code @ (E::CaError | E::SignError | E::NoAuth)) => {
            QueryOutcome::PauseMerchant(PauseReason::Configuration, code)
        }
        Some(code @ (E::ParamError | E::XmlError)) => QueryOutcome::Invalid(code),
        Some(code) => QueryOutcome::RetryLater(format!("WeChat answered {code}")),
        None => QueryOutcome::RetryLater(format!(
            "return_code={} result_code={} without an err_code",
            reply.return_code(),
            reply.result_code().unwrap_or("(none)")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Api, ApiKey, HbStatus, Params, xml};

    fn reply(api: Api, pairs: &[(&'static str, &str)]) -> Result<Reply, CallError> {
        let params: Params = pairs.iter().copied().collect();
        Reply::parse(
            api,
            xml::to_xml(&params, None).as_bytes(),
            &ApiKey::any("k"),
        )
    }

    fn fail(code: &str) -> Result<Reply, CallError> {
        reply(
            Api::SendRedpack,
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "FAIL"),
                ("err_code", code),
                ("err_code_des", "x"),
            ],
        )
    }

    #[test]
    fn success_is_sent_with_the_listid() {
        let r = reply(
            Api::SendRedpack,
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "SUCCESS"),
                ("err_code", "SUCCESS"),
                ("send_listid", "100000000020150520314766074200"),
            ],
        );
        match classify_send(&r) {
            SendOutcome::Sent(result) => {
                assert_eq!(
                    result.send_listid.as_deref(),
                    Some("100000000020150520314766074200")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_known_send_code_has_its_action() {
        use SendOutcome as O;
        let expect = |code: &str| classify_send(&fail(code));
        assert!(matches!(expect("SYSTEMERROR"), O::QueryFirst { .. }));
        assert!(matches!(expect("PROCESSING"), O::QueryFirst { .. }));
        assert!(matches!(expect("FREQ_LIMIT"), O::RateLimited(_)));
        assert!(matches!(expect("SECOND_OVER_LIMITED"), O::RateLimited(_)));
        assert!(matches!(
            expect("NOTENOUGH"),
            O::PauseMerchant(PauseReason::InsufficientBalance, _)
        ));
        assert!(matches!(
            expect("SENDAMOUNT_LIMIT"),
            O::PauseMerchant(PauseReason::DailyCap, _)
        ));
        assert!(matches!(
            expect("DAY_OVER_LIMITED"),
            O::PauseMerchant(PauseReason::DailyCap, _)
        ));
        for code in [
            "SIGN_ERROR",
            "CA_ERROR",
            "NO_AUTH",
            "API_METHOD_CLOSED",
            "ILLEGAL_APPID",
            "MSGAPPID_ERROR",
        ] {
            assert!(
                matches!(
                    expect(code),
                    O::PauseMerchant(PauseReason::Configuration, _)
                ),
                "{code}"
            );
        }
        for code in [
            "SENDNUM_LIMIT",
            "RCVDAMOUNT_LIMIT",
            "MONEY_LIMIT",
            "OPENID_ERROR",
            "PARAM_ERROR",
        ] {
            assert!(matches!(expect(code), O::FailedForRecipient(_)), "{code}");
        }
        assert!(matches!(expect("SEND_FAILED"), O::NewBillnoNeeded(_)));
        assert!(matches!(expect("FATAL_ERROR"), O::ParametersChanged(_)));
        assert!(matches!(
            expect("金额和原始单参数不一致"),
            O::ParametersChanged(_)
        ));
        // Every code the library knows maps somewhere, and never by accident to Sent.
        for code in ErrCode::KNOWN {
            assert!(!matches!(
                send_action(code),
                O::Sent(_) | O::RetrySameBillno(_)
            ));
        }
    }

    #[test]
    fn unknown_is_never_failed() {
        let unknown = [
            fail("SOMETHING_NEW"),
            fail(""),
            reply(
                Api::SendRedpack,
                &[
                    ("return_code", "FAIL"),
                    ("return_msg", "系统繁忙,请稍后再试."),
                ],
            ),
            reply(
                Api::SendRedpack,
                &[("return_code", "FAIL"), ("err_code", "268458547")],
            ),
            reply(Api::SendRedpack, &[("return_code", "SUCCESS")]),
            reply(
                Api::SendRedpack,
                &[("return_code", "SUCCESS"), ("result_code", "MAYBE")],
            ),
            Err(CallError::NoAnswer("timed out".into())),
            Err(CallError::HttpStatus(502)),
            Err(CallError::Unparseable("not XML".into())),
            Err(CallError::BadSignature("missing".into())),
        ];
        for result in &unknown {
            assert!(
                matches!(classify_send(result), SendOutcome::QueryFirst { .. }),
                "{result:?} -> {:?}",
                classify_send(result)
            );
        }
    }

    #[test]
    fn a_request_wechat_could_not_read_is_refused_for_good() {
        for answer in [
            fail("XML_ERROR"),
            reply(
                Api::SendRedpack,
                &[("return_code", "FAIL"), ("err_code", "XML_ERROR")],
            ),
            reply(
                Api::SendRedpack,
                &[
                    ("return_code", "FAIL"),
                    ("return_msg", "输入xml参数格式错误"),
                ],
            ),
            reply(
                Api::SendRedpack,
                &[("return_code", "FAIL"), ("return_msg", "XML format error")],
            ),
        ] {
            assert_eq!(
                classify_send(&answer),
                SendOutcome::FailedForRecipient(ErrCode::XmlError),
                "{answer:?}"
            );
        }
    }

    #[test]
    fn a_request_never_written_is_retried_with_the_same_billno() {
        let result = Err(CallError::NotSent("connection refused".into()));
        assert!(matches!(
            classify_send(&result),
            SendOutcome::RetrySameBillno(_)
        ));
    }

    #[test]
    fn query_outcomes() {
        let found = reply(
            Api::GetHbInfo,
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "SUCCESS"),
                ("status", "SENT"),
                ("mch_billno", "1"),
            ],
        );
        match classify_query(&found) {
            QueryOutcome::Found(info) => assert_eq!(info.status, HbStatus::Sent),
            other => panic!("{other:?}"),
        }
        let q = |code: &str| {
            classify_query(&reply(
                Api::GetHbInfo,
                &[
                    ("return_code", "SUCCESS"),
                    ("result_code", "FAIL"),
                    ("err_code", code),
                ],
            ))
        };
        assert_eq!(q("NOT_FOUND"), QueryOutcome::NotFound);
        let no_data = reply(
            Api::GetHbInfo,
            &[
                ("return_code", "FAIL"),
                ("return_msg", "指定单号数据不存在"),
            ],
        );
        assert_eq!(classify_query(&no_data), QueryOutcome::NotFound);
        let busy = reply(
            Api::GetHbInfo,
            &[
                ("return_code", "FAIL"),
                ("return_msg", "系统繁忙,请稍后再试."),
            ],
        );
        assert!(matches!(classify_query(&busy), QueryOutcome::RetryLater(_)));
        assert_eq!(q("FREQ_LIMIT"), QueryOutcome::RateLimited);
        assert!(matches!(q("SIGN_ERROR"), QueryOutcome::PauseMerchant(..)));
        assert!(matches!(q("PARAM_ERROR"), QueryOutcome::Invalid(_)));
        assert!(matches!(q("SYSTEMERROR"), QueryOutcome::RetryLater(_)));
        assert!(matches!(q("BRAND_NEW"), QueryOutcome::RetryLater(_)));
        let strange = reply(
            Api::GetHbInfo,
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "SUCCESS"),
                ("status", "EXPLODED"),
            ],
        );
        assert!(matches!(
            classify_query(&strange),
            QueryOutcome::RetryLater(_)
        ));
        assert!(matches!(
            classify_query(&Err(CallError::NoAnswer("reset".into()))),
            QueryOutcome::RetryLater(_)
        ));
    }
}
