//! The cash red packet rail (WeChat Pay v2): `sendredpack`,
//! `sendgroupredpack` and `sendminiprogramhb` to pay, `gethbinfo` to ask.
//! Its answer parser turns `hongbao_wxpay`'s outcomes into the verdicts
//! every rail shares, and its status map turns WeChat's packet states
//! into record statuses.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hongbao_wxpay::{
    Api, CallError, Client, ErrCode, GetHbInfo, HbInfo, HbStatus, MchBillNo, PauseReason, Prepared,
    QueryOutcome, Reply, SendOutcome, classify_query, classify_send,
};

use crate::model::{
    AttemptOutcome, AttemptRow, Awaiting, Code, Kind, OrderState, QueryVerdict, SendVerdict, Status,
};

/// An err_code's words.
pub fn code(code: &ErrCode) -> Code {
    Code::new(code.as_str(), code.message(), code.zh_message())
}

/// The record status a packet's WeChat state means, for a packet that was sent.
pub fn status_of(status: HbStatus) -> Option<Status> {
    match status {
        HbStatus::Sent => Some(Status::Sent),
        HbStatus::Received => Some(Status::Received),
        HbStatus::Refunding => Some(Status::Refunding),
        HbStatus::Refund => Some(Status::Refunded),
        HbStatus::Sending | HbStatus::Failed => None,
    }
}

/// What the previous outcome's err_code waits to have confirmed.
pub fn awaiting(err_code: Option<&str>) -> Awaiting {
    let Some(err_code) = err_code else {
        return Awaiting::Nothing;
    };
    let parsed = ErrCode::parse(err_code);
    match hongbao_wxpay::send_action(&parsed) {
        SendOutcome::FailedForRecipient(c) | SendOutcome::NewBillnoNeeded(c) => {
            Awaiting::RefusalConfirmation(code(&c))
        }
        SendOutcome::ParametersChanged(c) => Awaiting::ParametersChanged(code(&c)),
        _ => Awaiting::Nothing,
    }
}

/// What a send's outcome means, for a packet of `kind`.
pub fn send_verdict(kind: Kind, outcome: &SendOutcome) -> SendVerdict {
    match outcome {
        SendOutcome::Sent(result) => SendVerdict::Accepted(OrderState {
            status: Status::Sent,
            external_id: result.send_listid.clone(),
            wechat_status: HbStatus::Sent.as_str().to_owned(),
            refund_amount: None,
            // The mini program's package, for `wx.sendBizRedPacket`.
            package: if kind == Kind::MiniProgram {
                result.package.clone()
            } else {
                None
            },
            fail_reason: None,
        }),
        SendOutcome::RetrySameBillno(detail) => SendVerdict::NotSent(detail.clone()),
        SendOutcome::QueryFirst { err_code, detail } => SendVerdict::Unknown {
            code: err_code.as_ref().map(code),
            detail: detail.clone(),
        },
        SendOutcome::RateLimited(_) => SendVerdict::RateLimited,
        // WeChat retired fission packets on 2024-06-05: a refusal of one
        // says nothing about the merchant's other payouts.
        SendOutcome::PauseMerchant(PauseReason::Configuration, c) if kind == Kind::Group => {
            SendVerdict::Refused(Code::new(
                c.as_str(),
                format!(
                    "WeChat refused the fission (group) red packet ({c}: {}): sendgroupredpack has been offline since 2024-06-05; send a normal red packet instead",
                    c.message()
                ),
                format!(
                    "微信拒绝了裂变红包（{c}：{}）：裂变红包已于 2024-06-05 下线，请改发普通红包",
                    c.zh_message()
                ),
            ))
        }
        SendOutcome::PauseMerchant(reason, c) => SendVerdict::Pause((*reason).into(), code(c)),
        SendOutcome::FailedForRecipient(c) => SendVerdict::Refused(code(c)),
        SendOutcome::NewBillnoNeeded(c) => SendVerdict::OrderDead(code(c)),
        SendOutcome::ParametersChanged(c) => SendVerdict::ParametersChanged(code(c)),
    }
}

/// The state of a packet WeChat has that was sent.
pub fn state_of(info: &HbInfo) -> OrderState {
    OrderState {
        status: status_of(info.status).unwrap_or(Status::Sent),
        external_id: info.detail_id.clone(),
        wechat_status: info.status.as_str().to_owned(),
        refund_amount: info.refund_amount,
        package: None,
        fail_reason: None,
    }
}

/// What a query's outcome means for a record that was paid with `request`
/// (and whose previous outcome waits for `awaiting`); `request` is `None`
/// when only the order number is known (following an accepted packet).
pub fn query_verdict(
    request: Option<&Prepared>,
    awaiting: &Awaiting,
    outcome: &QueryOutcome,
) -> QueryVerdict {
    match outcome {
        QueryOutcome::Found(info) if request.is_some_and(|r| another_order(r, awaiting, info)) => {
            QueryVerdict::AnotherOrder
        }
        QueryOutcome::Found(info) => match info.status {
            status if status.was_sent() => QueryVerdict::Found(state_of(info)),
            HbStatus::Failed => QueryVerdict::FailedThere {
                code: code(&ErrCode::SendFailed),
                reason: info.reason.clone(),
            },
            _ => QueryVerdict::InProgress,
        },
        QueryOutcome::NotFound => QueryVerdict::NotFound,
        QueryOutcome::RetryLater(why) => QueryVerdict::RetryLater(why.clone()),
        QueryOutcome::RateLimited => QueryVerdict::RateLimited,
        QueryOutcome::PauseMerchant(reason, c) => QueryVerdict::Pause((*reason).into(), code(c)),
        QueryOutcome::Invalid(c) => QueryVerdict::Invalid(code(c)),
    }
}

/// Whether the order WeChat shows under the record's mch_billno is
/// another's: its amount, number of shares or receiver differ from the
/// stored request. Only fields WeChat reports as numbers and ids are
/// compared (texts may come back normalised), and a field WeChat leaves
/// out never counts against the record: taking its own order for
/// another's would pay it twice.
///
/// After `FATAL_ERROR` (WeChat saying the number was used with other
/// parameters, while hongbao only ever sends the request it stored) the
/// order is another's unless WeChat shows this record's receiver in it:
/// an unopened packet's receiver is not shown, and a receiver is what
/// another system's order differs in most.
fn another_order(request: &Prepared, awaiting: &Awaiting, info: &HbInfo) -> bool {
    let params = request.params();
    let amount = params
        .get("total_amount")
        .and_then(|a| a.parse::<u64>().ok());
    if let (Some(ours), Some(theirs)) = (amount, info.total_amount)
        && ours != theirs.get()
    {
        return true;
    }
    let shares = params.get("total_num").and_then(|n| n.parse::<u32>().ok());
    if let (Some(ours), Some(theirs)) = (shares, info.total_num)
        && ours != theirs
    {
        return true;
    }
    let Some(openid) = params.get("re_openid") else {
        return false;
    };
    let mut receivers = info.receivers.iter().filter_map(|r| r.openid.as_deref());
    if matches!(awaiting, Awaiting::ParametersChanged(_)) {
        return !receivers.any(|theirs| theirs == openid);
    }
    // The shares of a fission packet go to several people.
    shares.is_none_or(|n| n == 1) && receivers.any(|theirs| theirs != openid)
}

/// The same payout under a new order number (and nonce): every other
/// parameter exactly as stored.
pub fn reissue(prepared: &Prepared, mch_billno: &MchBillNo) -> Result<Prepared, String> {
    let mut params = prepared.params().clone();
    params.insert("mch_billno", mch_billno.as_str());
    params.insert("nonce_str", hongbao_wxpay::nonce_str());
    Prepared::from_parts(prepared.api(), params).map_err(|e| e.message)
}

/// One call made: its answer and how it went.
#[derive(Debug)]
pub struct Called {
    /// The answer.
    pub result: Result<Reply, CallError>,
    /// When it started.
    pub started: SystemTime,
    /// How long it took.
    pub latency: Duration,
}

/// Makes one call (the transport never retries on its own).
pub async fn call(client: &Client, prepared: &Prepared) -> Called {
    let started = SystemTime::now();
    let clock = Instant::now();
    let result = client.call(prepared).await;
    Called {
        result,
        started,
        latency: clock.elapsed(),
    }
}

/// The gethbinfo of `mch_billno`.
pub fn query_request(client: &Client, mch_billno: &str) -> Result<Prepared, String> {
    let mch_billno = MchBillNo::parse(mch_billno).map_err(|e| e.to_string())?;
    client
        .prepare(&GetHbInfo { mch_billno })
        .map_err(|e| e.to_string())
}

/// The send's verdict and its attempt row.
pub fn send_outcome(kind: Kind, prepared: &Prepared, called: &Called) -> (SendVerdict, AttemptRow) {
    let verdict = send_verdict(kind, &classify_send(&called.result));
    let row = attempt_row(
        prepared.api(),
        prepared.mch_billno(),
        called,
        AttemptOutcome::of_send(&verdict),
    );
    (verdict, row)
}

/// The query's verdict, its attempt row, and the packet WeChat showed.
pub fn query_outcome(
    mch_billno: &str,
    request: Option<&Prepared>,
    awaiting: &Awaiting,
    called: &Called,
) -> (QueryVerdict, AttemptRow, Option<HbInfo>) {
    let outcome = classify_query(&called.result);
    let verdict = query_verdict(request, awaiting, &outcome);
    let row = attempt_row(
        Api::GetHbInfo,
        mch_billno,
        called,
        AttemptOutcome::of_query(&verdict),
    );
    let info = match outcome {
        QueryOutcome::Found(info) => Some(*info),
        _ => None,
    };
    (verdict, row, info)
}

fn attempt_row(api: Api, billno: &str, called: &Called, outcome: AttemptOutcome) -> AttemptRow {
    let started_at_ms = called
        .started
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let (err_code, detail, answer) = match &called.result {
        Ok(reply) => (
            reply.err_code().map(|c| c.as_str().to_owned()),
            reply
                .err_code_des()
                .or(reply.return_msg())
                .map(str::to_owned),
            Some(super::kept_answer(&reply.raw)),
        ),
        Err(e) => (None, Some(e.to_string()), None),
    };
    AttemptRow {
        api: api.name(),
        sends: api != Api::GetHbInfo,
        order_no: billno.to_owned(),
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
    use crate::model::PauseKind;
    use hongbao_wxpay::{Fen, HbReceiver, Params};

    fn prepared(pairs: &[(&'static str, &str)]) -> Prepared {
        let mut params: Params = [
            ("mch_billno", "1900000109202611220000000001"),
            ("mch_id", "1900000109"),
            ("nonce_str", "n"),
        ]
        .into_iter()
        .collect();
        for (k, v) in pairs {
            params.insert(*k, *v);
        }
        Prepared::from_parts(Api::SendRedpack, params).unwrap()
    }

    fn info(status: HbStatus, amount: u64) -> HbInfo {
        HbInfo {
            mch_billno: "1".into(),
            detail_id: Some("D1".into()),
            status,
            send_type: None,
            hb_type: None,
            total_num: Some(1),
            total_amount: Some(Fen::new(amount)),
            reason: None,
            send_time: None,
            refund_time: None,
            refund_amount: None,
            wishing: None,
            remark: None,
            act_name: None,
            receivers: Vec::new(),
        }
    }

    fn found(info: HbInfo) -> QueryOutcome {
        QueryOutcome::Found(Box::new(info))
    }

    #[test]
    fn every_send_outcome_has_its_verdict() {
        let k = Kind::Normal;
        assert!(matches!(
            send_verdict(k, &SendOutcome::FailedForRecipient(ErrCode::SendNumLimit)),
            SendVerdict::Refused(c) if c.code == "SENDNUM_LIMIT" && c.zh_message.contains("今日")
        ));
        assert!(matches!(
            send_verdict(k, &SendOutcome::NewBillnoNeeded(ErrCode::SendFailed)),
            SendVerdict::OrderDead(_)
        ));
        assert!(matches!(
            send_verdict(
                k,
                &SendOutcome::PauseMerchant(PauseReason::InsufficientBalance, ErrCode::NotEnough)
            ),
            SendVerdict::Pause(PauseKind::InsufficientBalance, _)
        ));
        assert!(matches!(
            send_verdict(
                k,
                &SendOutcome::QueryFirst {
                    err_code: None,
                    detail: "timed out".into()
                }
            ),
            SendVerdict::Unknown { code: None, .. }
        ));
        assert_eq!(
            awaiting(Some("SENDNUM_LIMIT")),
            Awaiting::RefusalConfirmation(code(&ErrCode::SendNumLimit))
        );
        assert!(matches!(
            awaiting(Some("FATAL_ERROR")),
            Awaiting::ParametersChanged(_)
        ));
        assert_eq!(awaiting(Some("SYSTEMERROR")), Awaiting::Nothing);
        assert_eq!(awaiting(None), Awaiting::Nothing);
    }

    #[test]
    fn only_a_mini_program_packet_keeps_its_package() {
        let result = hongbao_wxpay::SendResult {
            mch_billno: None,
            re_openid: None,
            total_amount: None,
            send_listid: Some("L1".into()),
            send_time: None,
            package: Some("pkg".into()),
            sp_ticket: None,
            detail_id: None,
        };
        for (kind, package) in [(Kind::MiniProgram, Some("pkg")), (Kind::Normal, None)] {
            match send_verdict(kind, &SendOutcome::Sent(result.clone())) {
                SendVerdict::Accepted(state) => {
                    assert_eq!(state.package.as_deref(), package);
                    assert_eq!(state.external_id.as_deref(), Some("L1"));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_refused_fission_packet_fails_alone_and_never_pauses_the_merchant() {
        let refused = SendOutcome::PauseMerchant(PauseReason::Configuration, ErrCode::NoAuth);
        match send_verdict(Kind::Group, &refused) {
            SendVerdict::Refused(c) => {
                assert_eq!(c.code, "NO_AUTH");
                assert!(c.message.contains("2024-06-05") && c.zh_message.contains("下线"));
            }
            other => panic!("{other:?}"),
        }
        // A normal packet's NO_AUTH still pauses: it is the merchant's.
        assert!(matches!(
            send_verdict(Kind::Normal, &refused),
            SendVerdict::Pause(PauseKind::Configuration, _)
        ));
    }

    #[test]
    fn an_order_of_another_system_under_the_billno_is_never_taken_for_ours() {
        let ours = prepared(&[
            ("re_openid", "oOurs"),
            ("total_amount", "100"),
            ("total_num", "1"),
        ]);
        let fatal = Awaiting::ParametersChanged(code(&ErrCode::FatalError));
        // After FATAL_ERROR, the order there, unopened, of the same amount: another's.
        assert_eq!(
            query_verdict(Some(&ours), &fatal, &found(info(HbStatus::Sent, 100))),
            QueryVerdict::AnotherOrder
        );
        // Opened by someone else: another's.
        let mut opened = info(HbStatus::Received, 100);
        opened.receivers.push(HbReceiver {
            openid: Some("oTheirs".into()),
            amount: Some(Fen::new(100)),
            rcv_time: None,
        });
        assert_eq!(
            query_verdict(Some(&ours), &fatal, &found(opened.clone())),
            QueryVerdict::AnotherOrder
        );
        // Opened by this record's receiver: it was this record's.
        opened.receivers[0].openid = Some("oOurs".into());
        assert!(matches!(
            query_verdict(Some(&ours), &fatal, &found(opened)),
            QueryVerdict::Found(s) if s.status == Status::Received
        ));
        // Without FATAL_ERROR (a timeout), only a difference WeChat shows
        // makes the order another's: the same amount, unopened, is ours.
        let doubt = Awaiting::Nothing;
        assert!(matches!(
            query_verdict(Some(&ours), &doubt, &found(info(HbStatus::Sent, 100))),
            QueryVerdict::Found(_)
        ));
        assert_eq!(
            query_verdict(Some(&ours), &doubt, &found(info(HbStatus::Sent, 250))),
            QueryVerdict::AnotherOrder
        );
        // Following an accepted packet compares nothing.
        assert!(matches!(
            query_verdict(None, &doubt, &found(info(HbStatus::Sent, 250))),
            QueryVerdict::Found(_)
        ));
    }

    #[test]
    fn wechats_states_map_to_verdicts() {
        let ours = prepared(&[("total_amount", "100")]);
        let v = |status| query_verdict(Some(&ours), &Awaiting::Nothing, &found(info(status, 100)));
        assert!(matches!(v(HbStatus::Sending), QueryVerdict::InProgress));
        assert!(matches!(
            v(HbStatus::Failed),
            QueryVerdict::FailedThere { .. }
        ));
        assert!(
            matches!(v(HbStatus::Refund), QueryVerdict::Found(s) if s.status == Status::Refunded)
        );
        assert_eq!(
            query_verdict(Some(&ours), &Awaiting::Nothing, &QueryOutcome::NotFound),
            QueryVerdict::NotFound
        );
    }

    #[test]
    fn a_reissued_request_changes_only_the_number_and_nonce() {
        let old = prepared(&[("re_openid", "oOurs"), ("total_amount", "100")]);
        let billno = MchBillNo::parse("1900000109202611220000000002").unwrap();
        let new = reissue(&old, &billno).unwrap();
        assert_eq!(new.mch_billno(), billno.as_str());
        assert_eq!(new.params().get("re_openid"), Some("oOurs"));
        assert_ne!(new.params().get("nonce_str"), Some("n"));
    }
}
