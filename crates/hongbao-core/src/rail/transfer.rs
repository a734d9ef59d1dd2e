//! The transfer bill rail (APIv3 商家转账, user-confirmation mode): create
//! to pay, query by `out_bill_no` to ask, cancel before the user confirms.
//! Its answer parser turns `hongbao_wxpay::v3`'s outcomes into the verdicts
//! every rail shares, and its status map turns a bill's states into record
//! statuses. A bill waits up to 24 hours for its user: it is an accepted
//! order, followed until its state can change no more.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hongbao_wxpay::CallError;
use hongbao_wxpay::v3::{
    ApiError, Bill, Operation, OutBillNo, PreparedTransfer, TransferClient, TransferOutcome,
    TransferState, V3Code, V3Reply, classify,
};
use serde::{Deserialize, Serialize};

use crate::model::{
    AttemptOutcome, AttemptRow, Awaiting, Code, OrderState, QueryVerdict, SendVerdict, Status,
};

/// The API names kept with attempts.
pub const CREATE: &str = "transfer-bills";
/// A query by `out_bill_no`.
pub const QUERY: &str = "transfer-bills/query";
/// A cancel.
pub const CANCEL: &str = "transfer-bills/cancel";

/// A prepared bill as stored in the ledger's `request` column.
#[derive(Serialize, Deserialize)]
struct Stored {
    out_bill_no: String,
    body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wechatpay_serial: Option<String>,
}

/// The stored form of a prepared bill.
pub fn to_stored(prepared: &PreparedTransfer) -> String {
    serde_json::to_string(&Stored {
        out_bill_no: prepared.out_bill_no().as_str().to_owned(),
        body: prepared.body().to_owned(),
        wechatpay_serial: prepared.wechatpay_serial().map(str::to_owned),
    })
    .expect("a bill serialises")
}

/// Reads a stored bill back.
pub fn from_stored(text: &str) -> Result<PreparedTransfer, String> {
    let stored: Stored = serde_json::from_str(text).map_err(|e| format!("stored bill: {e}"))?;
    let out_bill_no = OutBillNo::parse(&stored.out_bill_no).map_err(|e| e.to_string())?;
    Ok(PreparedTransfer::from_parts(
        out_bill_no,
        stored.body,
        stored.wechatpay_serial,
    ))
}

/// The same bill under a new `out_bill_no`: every other field as stored
/// (`user_name`'s ciphertext included).
pub fn reissue(
    prepared: &PreparedTransfer,
    out_bill_no: &OutBillNo,
) -> Result<PreparedTransfer, String> {
    let mut body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(prepared.body()).map_err(|e| format!("stored bill body: {e}"))?;
    body.insert(
        "out_bill_no".into(),
        serde_json::Value::String(out_bill_no.as_str().to_owned()),
    );
    Ok(PreparedTransfer::from_parts(
        out_bill_no.clone(),
        serde_json::Value::Object(body).to_string(),
        prepared.wechatpay_serial().map(str::to_owned),
    ))
}

/// An APIv3 error's words.
pub fn code(e: &ApiError) -> Code {
    let code = e.code.as_str();
    if e.message.is_empty() {
        return Code::new(code, e.code.message(), e.code.zh_message());
    }
    Code::new(
        code,
        format!("{} (WeChat: {})", e.code.message(), e.message),
        format!("{}（微信：{}）", e.code.zh_message(), e.message),
    )
}

/// What a bill's `fail_reason` means, in words.
pub fn fail_code(fail_reason: Option<&str>, state: TransferState) -> Code {
    let reason = fail_reason.filter(|r| !r.is_empty());
    let (en, zh) = match (state, reason) {
        (TransferState::Cancelled, _) | (_, Some("MCH_CANCEL")) => (
            "the bill was cancelled before the user confirmed it; nothing was paid",
            "转账单已在用户确认前撤销，未付款",
        ),
        (_, Some("OVERDUE_CLOSE")) => (
            "the user did not confirm within 24 hours: WeChat closed the bill and the money went back; nothing was paid",
            "用户 24 小时内未确认收款，微信已关闭转账单并退回资金，未付款",
        ),
        (_, Some("TRANSFER_RISK")) => (
            "WeChat's risk control refused the transfer; nothing was paid",
            "微信风控拦截了本次转账，未付款",
        ),
        (_, Some("OPENID_INVALID")) => (
            "the openid does not belong to the merchant's appid; nothing was paid",
            "openid 与商户的 appid 不匹配，未付款",
        ),
        (_, Some("DAY_RECEIVED_QUOTA_EXCEED")) => (
            "the user reached WeChat's daily limit of transfers received; nothing was paid",
            "用户今日收款已达微信上限，未付款",
        ),
        _ => (
            "WeChat closed the bill unpaid; the money went back",
            "微信已关闭转账单，资金已退回，未付款",
        ),
    };
    let name = reason.unwrap_or(if state == TransferState::Cancelled {
        "MCH_CANCEL"
    } else {
        "TRANSFER_FAIL"
    });
    Code::new(name, en, zh)
}

/// What the previous outcome's err_code waits to have confirmed: a
/// refusal of the bill (a field, the payee, a closed bill) is confirmed by
/// a query before a prize's payout gives the prize back.
pub fn awaiting(err_code: Option<&str>) -> Awaiting {
    match err_code {
        None
        | Some(
            "SYSTEM_ERROR"
            | "SERVICE_UNAVAILABLE"
            | "NOT_ENOUGH"
            | "FREQUENCY_LIMITED"
            | "RATELIMIT_EXCEEDED"
            | "SIGN_ERROR"
            | "NO_AUTH"
            | "NOT_FOUND"
            | "ORDER_NOT_EXIST",
        ) => Awaiting::Nothing,
        Some(code) => Awaiting::RefusalConfirmation(match V3Code::parse(code) {
            // A bill's fail_reason (the same bill created again was closed).
            V3Code::Other(_) => fail_code(Some(code), TransferState::Fail),
            known => Code::new(code, known.message(), known.zh_message()),
        }),
    }
}

/// The record status a bill's state means.
pub fn status_of(state: TransferState) -> Status {
    match state {
        TransferState::Accepted | TransferState::Processing => Status::Sending,
        TransferState::WaitUserConfirm => Status::AwaitingConfirmation,
        TransferState::Transfering => Status::Transferring,
        TransferState::Success => Status::Succeeded,
        TransferState::Fail => Status::Failed,
        TransferState::Canceling => Status::Cancelling,
        TransferState::Cancelled => Status::Cancelled,
    }
}

/// Where a bill WeChat has stands.
pub fn state_of(bill: &Bill) -> OrderState {
    OrderState {
        status: status_of(bill.state),
        external_id: Some(bill.transfer_bill_no.as_str().to_owned()),
        wechat_status: bill.state.as_str().to_owned(),
        refund_amount: None,
        package: bill.package_info.clone().filter(|p| !p.is_empty()),
        fail_reason: match bill.state {
            TransferState::Fail | TransferState::Cancelled => {
                Some(fail_code(bill.fail_reason.as_deref(), bill.state).code)
            }
            _ => None,
        },
    }
}

/// What a create's outcome means.
pub fn send_verdict(outcome: &TransferOutcome) -> SendVerdict {
    match outcome {
        TransferOutcome::AwaitingUser(bill) | TransferOutcome::Succeeded(bill) => {
            SendVerdict::Accepted(state_of(bill))
        }
        TransferOutcome::Pending(bill) => match bill.state {
            // Locking funds: the bill exists, its outcome is not known yet.
            TransferState::Accepted | TransferState::Processing => SendVerdict::Unknown {
                code: None,
                detail: format!("the bill is {}", bill.state),
            },
            _ => SendVerdict::Accepted(state_of(bill)),
        },
        // The same bill created again answers its state: closed unpaid.
        TransferOutcome::Closed(bill) => {
            SendVerdict::Refused(fail_code(bill.fail_reason.as_deref(), bill.state))
        }
        TransferOutcome::Refused(e) => SendVerdict::Refused(code(e)),
        TransferOutcome::ParametersChanged(e) => SendVerdict::ParametersChanged(code(e)),
        TransferOutcome::NotFound(e) => SendVerdict::Unknown {
            code: Some(code(e)),
            detail: e.to_string(),
        },
        TransferOutcome::Ambiguous { error, detail } => SendVerdict::Unknown {
            code: error.as_ref().map(code),
            detail: detail.clone(),
        },
        TransferOutcome::RetrySameBill(detail) => SendVerdict::NotSent(detail.clone()),
        TransferOutcome::RateLimited(_) => SendVerdict::RateLimited,
        TransferOutcome::PauseMerchant(reason, e) => SendVerdict::Pause((*reason).into(), code(e)),
    }
}

/// Whether the bill WeChat shows under the record's number is another's:
/// its amount or payee differ from the stored body. A field WeChat leaves
/// out never counts against the record.
fn another_bill(request: &PreparedTransfer, bill: &Bill) -> bool {
    let Ok(body) = serde_json::from_str::<serde_json::Value>(request.body()) else {
        return false;
    };
    let amount = body
        .get("transfer_amount")
        .and_then(serde_json::Value::as_u64);
    if let (Some(ours), Some(theirs)) = (amount, bill.transfer_amount)
        && ours != theirs
    {
        return true;
    }
    let openid = body.get("openid").and_then(serde_json::Value::as_str);
    matches!((openid, bill.openid.as_deref()), (Some(ours), Some(theirs)) if ours != theirs)
}

/// What a query's outcome means. With `request` (a record the dispatcher
/// holds, whose create may not have happened) a closed bill is a failure
/// there and a bill awaiting its user is created again for its package;
/// without it (following an accepted bill) every state is the bill's news.
pub fn query_verdict(
    request: Option<&PreparedTransfer>,
    _awaiting: &Awaiting,
    outcome: &TransferOutcome,
) -> QueryVerdict {
    match outcome {
        TransferOutcome::AwaitingUser(bill)
        | TransferOutcome::Pending(bill)
        | TransferOutcome::Succeeded(bill)
        | TransferOutcome::Closed(bill)
            if request.is_some_and(|r| another_bill(r, bill)) =>
        {
            QueryVerdict::AnotherOrder
        }
        TransferOutcome::AwaitingUser(_) if request.is_some() => QueryVerdict::SendAgain,
        TransferOutcome::Pending(bill)
            if matches!(
                bill.state,
                TransferState::Accepted | TransferState::Processing
            ) =>
        {
            QueryVerdict::InProgress
        }
        TransferOutcome::Closed(bill) if request.is_some() => QueryVerdict::FailedThere {
            code: fail_code(bill.fail_reason.as_deref(), bill.state),
            reason: None,
        },
        TransferOutcome::AwaitingUser(bill)
        | TransferOutcome::Pending(bill)
        | TransferOutcome::Succeeded(bill)
        | TransferOutcome::Closed(bill) => QueryVerdict::Found(state_of(bill)),
        TransferOutcome::NotFound(_) => QueryVerdict::NotFound,
        TransferOutcome::Refused(e) | TransferOutcome::ParametersChanged(e) => {
            QueryVerdict::Invalid(code(e))
        }
        TransferOutcome::Ambiguous { detail, .. } | TransferOutcome::RetrySameBill(detail) => {
            QueryVerdict::RetryLater(detail.clone())
        }
        TransferOutcome::RateLimited(_) => QueryVerdict::RateLimited,
        TransferOutcome::PauseMerchant(reason, e) => QueryVerdict::Pause((*reason).into(), code(e)),
    }
}

/// One call made: its answer and how it went.
#[derive(Debug)]
pub struct Called {
    /// The operation.
    pub operation: Operation,
    /// The answer.
    pub result: Result<V3Reply, CallError>,
    /// When it started.
    pub started: SystemTime,
    /// How long it took.
    pub latency: Duration,
}

impl Called {
    /// What the answer means.
    pub fn outcome(&self) -> TransferOutcome {
        classify(self.operation, &self.result)
    }
}

async fn timed(
    operation: Operation,
    call: impl std::future::Future<Output = Result<V3Reply, CallError>>,
) -> Called {
    let started = SystemTime::now();
    let clock = Instant::now();
    let result = call.await;
    Called {
        operation,
        result,
        started,
        latency: clock.elapsed(),
    }
}

/// Creates the bill once (the transport never retries on its own).
pub async fn create(client: &TransferClient, prepared: &PreparedTransfer) -> Called {
    timed(Operation::Create, client.call_create(prepared)).await
}

/// Asks WeChat about the bill `out_bill_no` once.
pub async fn query(client: &TransferClient, out_bill_no: &OutBillNo) -> Called {
    let request = client.sign(
        hongbao_wxpay::v3::Method::Get,
        &hongbao_wxpay::v3::client::query_path(out_bill_no),
        "",
        time::OffsetDateTime::now_utc(),
    );
    timed(Operation::Query, client.call(request)).await
}

/// Cancels the bill `out_bill_no` once.
pub async fn cancel(client: &TransferClient, out_bill_no: &OutBillNo) -> Called {
    let request = client.sign(
        hongbao_wxpay::v3::Method::Post,
        &hongbao_wxpay::v3::client::cancel_path(out_bill_no),
        "{}",
        time::OffsetDateTime::now_utc(),
    );
    timed(Operation::Cancel, client.call(request)).await
}

/// The attempt to keep for `called`.
pub fn attempt_row(order_no: &str, called: &Called, outcome: AttemptOutcome) -> AttemptRow {
    let started_at_ms = called
        .started
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let (err_code, detail, answer) = match &called.result {
        Ok(reply) => {
            let error = ApiError::parse(reply.status, &reply.body);
            let body = String::from_utf8_lossy(&reply.body);
            let detail = match (&reply.verified, &error) {
                (Err(why), _) => Some(format!("HTTP {}; answer signature: {why}", reply.status)),
                (Ok(()), Some(e)) => Some(format!("HTTP {}: {}", reply.status, e.message)),
                (Ok(()), None) => Some(format!("HTTP {}", reply.status)),
            };
            (
                error.map(|e| e.code.as_str().to_owned()),
                detail,
                Some(super::kept_answer(&body)),
            )
        }
        Err(e) => (None, Some(e.to_string()), None),
    };
    let api = match called.operation {
        Operation::Create => CREATE,
        Operation::Query => QUERY,
        Operation::Cancel => CANCEL,
    };
    AttemptRow {
        api,
        sends: called.operation == Operation::Create,
        order_no: order_no.to_owned(),
        started_at_ms,
        latency_ms: i64::try_from(called.latency.as_millis()).unwrap_or(i64::MAX),
        outcome,
        err_code,
        detail,
        answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hongbao_wxpay::v3::TransferBillNo;

    fn bill(state: TransferState, amount: Option<u64>, package: Option<&str>) -> Bill {
        Bill {
            out_bill_no: OutBillNo::parse("B1").unwrap(),
            transfer_bill_no: TransferBillNo::parse("1330000071100999991182020050700019480001")
                .unwrap(),
            state,
            package_info: package.map(str::to_owned),
            fail_reason: (state == TransferState::Fail).then(|| "OVERDUE_CLOSE".to_owned()),
            mch_id: None,
            appid: None,
            transfer_amount: amount,
            transfer_remark: None,
            openid: None,
            user_name: None,
            create_time: None,
            update_time: None,
        }
    }

    fn prepared(amount: u64) -> PreparedTransfer {
        PreparedTransfer::from_parts(
            OutBillNo::parse("B1").unwrap(),
            format!(r#"{{"out_bill_no":"B1","openid":"o1","transfer_amount":{amount}}}"#),
            None,
        )
    }

    #[test]
    fn a_created_bill_is_accepted_awaiting_its_user_with_its_package() {
        let v = send_verdict(&TransferOutcome::AwaitingUser(bill(
            TransferState::WaitUserConfirm,
            None,
            Some("PKG"),
        )));
        let SendVerdict::Accepted(state) = v else {
            panic!("{v:?}")
        };
        assert_eq!(state.status, Status::AwaitingConfirmation);
        assert_eq!(state.package.as_deref(), Some("PKG"));
        assert!(!state.is_final());
    }

    #[test]
    fn doubt_is_never_a_failure() {
        let processing = send_verdict(&TransferOutcome::Pending(bill(
            TransferState::Processing,
            None,
            None,
        )));
        assert!(matches!(processing, SendVerdict::Unknown { .. }));
        let ambiguous = send_verdict(&TransferOutcome::Ambiguous {
            error: None,
            detail: "timed out".into(),
        });
        assert!(matches!(ambiguous, SendVerdict::Unknown { .. }));
        let not_enough = ApiError {
            status: 403,
            code: V3Code::NotEnough,
            message: "资金不足".into(),
        };
        assert!(matches!(
            send_verdict(&TransferOutcome::PauseMerchant(
                hongbao_wxpay::PauseReason::InsufficientBalance,
                not_enough
            )),
            SendVerdict::Pause(crate::model::PauseKind::InsufficientBalance, c) if c.code == "NOT_ENOUGH"
        ));
    }

    #[test]
    fn a_query_tells_the_dispatcher_and_the_follower_apart() {
        let closed = TransferOutcome::Closed(bill(TransferState::Fail, Some(188), None));
        let r = prepared(188);
        assert!(matches!(
            query_verdict(Some(&r), &Awaiting::Nothing, &closed),
            QueryVerdict::FailedThere { code, .. } if code.code == "OVERDUE_CLOSE"
        ));
        let QueryVerdict::Found(state) = query_verdict(None, &Awaiting::Nothing, &closed) else {
            panic!()
        };
        assert_eq!(state.status, Status::Failed);
        assert_eq!(state.fail_reason.as_deref(), Some("OVERDUE_CLOSE"));
        // Awaiting the user, found by a query (no package): create it again.
        let waiting =
            TransferOutcome::AwaitingUser(bill(TransferState::WaitUserConfirm, Some(188), None));
        assert_eq!(
            query_verdict(Some(&r), &Awaiting::Nothing, &waiting),
            QueryVerdict::SendAgain
        );
        // Another amount under our number is another's bill.
        assert_eq!(
            query_verdict(Some(&prepared(500)), &Awaiting::Nothing, &waiting),
            QueryVerdict::AnotherOrder
        );
    }

    #[test]
    fn a_reissued_bill_differs_in_its_number_alone() {
        let r = prepared(188);
        let again = reissue(&r, &OutBillNo::parse("B2").unwrap()).unwrap();
        assert_eq!(again.out_bill_no().as_str(), "B2");
        let a: serde_json::Value = serde_json::from_str(r.body()).unwrap();
        let mut b: serde_json::Value = serde_json::from_str(again.body()).unwrap();
        b["out_bill_no"] = "B1".into();
        assert_eq!(a, b);
        let stored = to_stored(&again);
        assert_eq!(from_stored(&stored).unwrap(), again);
    }
}
