//! What the caller must do after a transfer call: one pure classification
//! of every outcome of create, query and cancel (facts §3).
//!
//! The rule it serves is WeChat's own (doc 4012716434): after any non-200
//! answer, a timeout or an unknown code, keep the `out_bill_no` and query;
//! only a query showing a definite failure allows a new `out_bill_no`.
//! An answer whose signature does not verify may have been altered on the
//! way, so it can only make the caller more careful (slow down, pause,
//! query): never a success, a failure or "not found".

use crate::PauseReason;
use crate::outcome::CallError;
use crate::v3::bill::{Bill, TransferState};
use crate::v3::code::{ApiError, V3Code};
use crate::v3::crypto::VerifyError;

/// Which call was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /v3/fund-app/mch-transfer/transfer-bills`.
    Create,
    /// `GET .../out-bill-no/{out_bill_no}` or `.../transfer-bill-no/{transfer_bill_no}`.
    Query,
    /// `POST .../out-bill-no/{out_bill_no}/cancel`.
    Cancel,
}

/// An answer as it came back: status, body, and whether its signature
/// verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V3Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The verification of `Wechatpay-Signature`.
    pub verified: Result<(), VerifyError>,
    /// WeChat's `Request-ID`, for its support.
    pub request_id: Option<String>,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferOutcome {
    /// `WAIT_USER_CONFIRM`: the bill exists and waits up to 24 h for the
    /// user. On a create, `package_info` is what the front end passes to
    /// `requestMerchantTransfer` (with mch_id and appid).
    AwaitingUser(Bill),
    /// The bill exists and is on its way (`ACCEPTED`, `PROCESSING`,
    /// `TRANSFERING`, `CANCELING`): query it later, never replace it.
    Pending(Bill),
    /// `SUCCESS`: paid.
    Succeeded(Bill),
    /// `FAIL` (with `fail_reason`) or `CANCELLED`: not paid, money back.
    /// Final: a new payout may use a new `out_bill_no`.
    Closed(Bill),
    /// A query: WeChat has no such bill. Never a failure by itself: a
    /// create may still be on its way; send the same bill again or query later.
    NotFound(ApiError),
    /// WeChat refused the request for good (`PARAM_ERROR`, most
    /// `INVALID_REQUEST`s). On a cancel: the bill cannot be cancelled (query it).
    Refused(ApiError),
    /// `INVALID_REQUEST` "单号已存在但信息不一致": this `out_bill_no` is
    /// WeChat's with other parameters. A bug or a reused number: stop and look.
    ParametersChanged(ApiError),
    /// Unknown: the bill may exist. Query the same `out_bill_no`; retry
    /// only with it and the same body.
    Ambiguous {
        /// WeChat's error, if there was a readable one.
        error: Option<ApiError>,
        /// What happened, for the log.
        detail: String,
    },
    /// Nothing reached WeChat: retry with the same `out_bill_no` and body.
    RetrySameBill(String),
    /// `FREQUENCY_LIMITED` / 429: slow down; retry the same bill.
    RateLimited(ApiError),
    /// Stop the merchant's transfers until someone acts; keep the bills.
    /// `NOT_ENOUGH`: top up, then retry the **same** bill.
    PauseMerchant(PauseReason, ApiError),
}

impl TransferOutcome {
    /// WeChat's error behind the outcome, if any.
    pub fn error(&self) -> Option<&ApiError> {
        match self {
            TransferOutcome::NotFound(e)
            | TransferOutcome::Refused(e)
            | TransferOutcome::ParametersChanged(e)
            | TransferOutcome::RateLimited(e)
            | TransferOutcome::PauseMerchant(_, e) => Some(e),
            TransferOutcome::Ambiguous { error, .. } => error.as_ref(),
            _ => None,
        }
    }

    /// The bill, when WeChat answered with one.
    pub fn bill(&self) -> Option<&Bill> {
        match self {
            TransferOutcome::AwaitingUser(b)
            | TransferOutcome::Pending(b)
            | TransferOutcome::Succeeded(b)
            | TransferOutcome::Closed(b) => Some(b),
            _ => None,
        }
    }
}

fn ambiguous(error: Option<ApiError>, detail: impl Into<String>) -> TransferOutcome {
    TransferOutcome::Ambiguous {
        error,
        detail: detail.into(),
    }
}

/// The outcome a bill's state means.
pub fn from_state(bill: Bill) -> TransferOutcome {
    match bill.state {
        TransferState::WaitUserConfirm => TransferOutcome::AwaitingUser(bill),
        TransferState::Accepted
        | TransferState::Processing
        | TransferState::Transfering
        | TransferState::Canceling => TransferOutcome::Pending(bill),
        TransferState::Success => TransferOutcome::Succeeded(bill),
        TransferState::Fail | TransferState::Cancelled => TransferOutcome::Closed(bill),
    }
}

/// Classifies the result of a transfer call.
pub fn classify(operation: Operation, result: &Result<V3Reply, CallError>) -> TransferOutcome {
    let reply = match result {
        Ok(reply) => reply,
        Err(CallError::NotSent(detail)) => return TransferOutcome::RetrySameBill(detail.clone()),
        Err(other) => return ambiguous(None, other.to_string()),
    };
    if reply.status == 200 || (operation == Operation::Cancel && reply.status == 204) {
        if let Err(why) = &reply.verified {
            return ambiguous(None, format!("answer signature: {why}"));
        }
        let bill = match Bill::parse(&reply.body) {
            Ok(bill) => bill,
            Err(why) => return ambiguous(None, why),
        };
        if operation == Operation::Create
            && bill.state == TransferState::WaitUserConfirm
            && bill.package_info.as_deref().is_none_or(str::is_empty)
        {
            // The same bill created again answers the same package_info.
            return ambiguous(
                None,
                "WAIT_USER_CONFIRM without package_info: create the same bill again",
            );
        }
        return from_state(bill);
    }
    let Some(error) = ApiError::parse(reply.status, &reply.body) else {
        return ambiguous(
            None,
            format!("HTTP status {} without an error code", reply.status),
        );
    };
    // These only slow down or stop the merchant: safe to act on even if
    // the answer's signature did not verify.
    match &error.code {
        V3Code::FrequencyLimited | V3Code::RatelimitExceeded => {
            return TransferOutcome::RateLimited(error);
        }
        _ if reply.status == 429 => return TransferOutcome::RateLimited(error),
        V3Code::NotEnough => {
            return TransferOutcome::PauseMerchant(PauseReason::InsufficientBalance, error);
        }
        V3Code::SignError | V3Code::NoAuth => {
            return TransferOutcome::PauseMerchant(PauseReason::Configuration, error);
        }
        V3Code::InvalidRequest if error.is_ip_refused() || error.is_configuration() => {
            return TransferOutcome::PauseMerchant(PauseReason::Configuration, error);
        }
        _ => {}
    }
    if let Err(why) = &reply.verified {
        return ambiguous(Some(error), format!("answer signature: {why}"));
    }
    match (&error.code, operation) {
        (V3Code::InvalidRequest, _) if error.is_bill_mismatch() => {
            TransferOutcome::ParametersChanged(error)
        }
        (V3Code::ParamError | V3Code::InvalidRequest, _) if reply.status == 400 => {
            TransferOutcome::Refused(error)
        }
        (V3Code::NotFound | V3Code::OrderNotExist, Operation::Query | Operation::Cancel) => {
            TransferOutcome::NotFound(error)
        }
        _ => {
            let detail = format!("WeChat answered {error}");
            ambiguous(Some(error), detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Result<V3Reply, CallError> {
        Ok(V3Reply {
            status,
            body: body.as_bytes().to_vec(),
            verified: Ok(()),
            request_id: None,
        })
    }

    fn unverified(status: u16, body: &str) -> Result<V3Reply, CallError> {
        Ok(V3Reply {
            status,
            body: body.as_bytes().to_vec(),
            verified: Err(VerifyError::BadSignature("PUB_KEY_ID_1".into())),
            request_id: None,
        })
    }

    fn error(code: &str, message: &str) -> String {
        serde_json::json!({"code": code, "message": message}).to_string()
    }

    fn bill(state: &str, package: Option<&str>) -> String {
        let mut v = serde_json::json!({
            "out_bill_no": "plfk2020042013",
            "transfer_bill_no": "1330000071100999991182020050700019480001",
            "create_time": "2015-05-20T13:29:35.120+08:00",
            "state": state,
        });
        if let Some(p) = package {
            v["package_info"] = p.into();
        }
        v.to_string()
    }

    use Operation::{Cancel, Create, Query};
    use TransferOutcome as O;

    #[test]
    fn wait_user_confirm_with_a_package_is_awaiting_the_user() {
        let o = classify(
            Create,
            &reply(200, &bill("WAIT_USER_CONFIRM", Some("ABBQ=="))),
        );
        let O::AwaitingUser(b) = o else {
            panic!("{o:?}")
        };
        assert_eq!(b.package_info.as_deref(), Some("ABBQ=="));
        assert!(matches!(
            classify(Create, &reply(200, &bill("WAIT_USER_CONFIRM", None))),
            O::Ambiguous { .. }
        ));
        assert!(matches!(
            classify(Query, &reply(200, &bill("WAIT_USER_CONFIRM", None))),
            O::AwaitingUser(_)
        ));
    }

    #[test]
    fn every_state_has_its_outcome() {
        let of = |s: &str| classify(Query, &reply(200, &bill(s, None)));
        assert!(matches!(of("ACCEPTED"), O::Pending(_)));
        assert!(matches!(of("PROCESSING"), O::Pending(_)));
        assert!(matches!(of("TRANSFERING"), O::Pending(_)));
        assert!(matches!(of("CANCELING"), O::Pending(_)));
        assert!(matches!(of("SUCCESS"), O::Succeeded(_)));
        assert!(matches!(of("FAIL"), O::Closed(_)));
        assert!(matches!(of("CANCELLED"), O::Closed(_)));
        assert!(matches!(of("SOMETHING_NEW"), O::Ambiguous { .. }));
    }

    #[test]
    fn an_unverified_answer_is_never_success_failure_or_not_found() {
        for body in [bill("SUCCESS", None), bill("FAIL", None)] {
            assert!(matches!(
                classify(Query, &unverified(200, &body)),
                O::Ambiguous { .. }
            ));
        }
        assert!(matches!(
            classify(Query, &unverified(404, &error("NOT_FOUND", "记录不存在"))),
            O::Ambiguous { .. }
        ));
        assert!(matches!(
            classify(Create, &unverified(400, &error("PARAM_ERROR", "x"))),
            O::Ambiguous { .. }
        ));
        // Slowing down or pausing moves no money: fine either way.
        assert!(matches!(
            classify(Create, &unverified(429, &error("FREQUENCY_LIMITED", "x"))),
            O::RateLimited(_)
        ));
        assert!(matches!(
            classify(Create, &unverified(401, &error("SIGN_ERROR", "签名错误"))),
            O::PauseMerchant(PauseReason::Configuration, _)
        ));
    }

    #[test]
    fn codes_map_to_the_dispatchers_vocabulary() {
        let of =
            |op, status, code: &str, msg: &str| classify(op, &reply(status, &error(code, msg)));
        assert!(matches!(
            of(
                Create,
                403,
                "NOT_ENOUGH",
                "商户运营账户资金不足，充值后可以原单号发起重试，请勿更换商户单号"
            ),
            O::PauseMerchant(PauseReason::InsufficientBalance, _)
        ));
        assert!(matches!(
            of(Create, 403, "NO_AUTH", "当前商户号接入升级版本功能"),
            O::PauseMerchant(PauseReason::Configuration, _)
        ));
        assert!(matches!(
            of(Create, 400, "INVALID_REQUEST", "此IP地址不允许调用该接口"),
            O::PauseMerchant(PauseReason::Configuration, _)
        ));
        assert!(matches!(
            of(Create, 400, "INVALID_REQUEST", "APPID不存在"),
            O::PauseMerchant(PauseReason::Configuration, _)
        ));
        assert!(matches!(
            of(
                Create,
                400,
                "INVALID_REQUEST",
                "单号已存在但信息不一致，请查单后比较确认"
            ),
            O::ParametersChanged(_)
        ));
        assert!(matches!(
            of(Create, 400, "INVALID_REQUEST", "用户收款感知不正确"),
            O::Refused(_)
        ));
        assert!(matches!(of(Create, 400, "PARAM_ERROR", "x"), O::Refused(_)));
        assert!(matches!(
            of(Create, 429, "RATELIMIT_EXCEEDED", "x"),
            O::RateLimited(_)
        ));
        assert!(matches!(
            of(Create, 429, "SOMETHING", "x"),
            O::RateLimited(_)
        ));
        assert!(matches!(of(Query, 404, "NOT_FOUND", "x"), O::NotFound(_)));
        assert!(matches!(
            of(Query, 404, "ORDER_NOT_EXIST", "x"),
            O::NotFound(_)
        ));
        assert!(matches!(of(Cancel, 404, "NOT_FOUND", "x"), O::NotFound(_)));
        // A create is never "not found": the bill may be on its way.
        assert!(matches!(
            of(Create, 404, "NOT_FOUND", "x"),
            O::Ambiguous { .. }
        ));
        for (status, code) in [
            (500, "SYSTEM_ERROR"),
            (502, "SERVICE_UNAVAILABLE"),
            (503, "SERVICE_UNAVAILABLE"),
            (400, "BRAND_NEW"),
            (418, "PARAM_ERROR"),
        ] {
            assert!(
                matches!(of(Create, status, code, "x"), O::Ambiguous { .. }),
                "{status} {code}"
            );
        }
    }

    #[test]
    fn transport_failures_never_fail_a_bill() {
        assert!(matches!(
            classify(Create, &Err(CallError::NotSent("refused".into()))),
            O::RetrySameBill(_)
        ));
        for e in [
            CallError::NoAnswer("timed out".into()),
            CallError::NoAnswer("connection reset".into()),
            CallError::Unparseable("too long".into()),
            CallError::HttpStatus(502),
        ] {
            assert!(matches!(classify(Create, &Err(e)), O::Ambiguous { .. }));
        }
        assert!(matches!(
            classify(Create, &reply(502, "<html>")),
            O::Ambiguous { .. }
        ));
        assert!(matches!(
            classify(Create, &reply(200, "not json")),
            O::Ambiguous { .. }
        ));
    }

    #[test]
    fn cancel_answers() {
        let canceling = r#"{"out_bill_no":"plfk2020042013","transfer_bill_no":"1330000071100999991182020050700019480001","state":"CANCELING","update_time":"2015-05-20T13:29:35.120+08:00"}"#;
        assert!(matches!(
            classify(Cancel, &reply(200, canceling)),
            O::Pending(_)
        ));
        let cancelled = canceling.replace("CANCELING", "CANCELLED");
        assert!(matches!(
            classify(Cancel, &reply(200, &cancelled)),
            O::Closed(_)
        ));
    }
}
