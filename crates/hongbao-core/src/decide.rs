//! What each outcome means for a record: pure rules, no I/O.
//!
//! The invariant they serve: a mch_billno whose outcome is unknown is only
//! ever resolved by gethbinfo or resent unchanged; a new mch_billno is used
//! only when WeChat confirmed the old one FAILED after a merchant-level
//! refusal (balance, daily cap), when no money can have moved.

use hongbao_wxpay::{
    ErrCode, HbInfo, HbStatus, PauseReason, QueryOutcome, SendOutcome, SendResult,
};

use crate::ledger::{Claimed, Transition};
use crate::model::{Kind, Status};

/// The shortest wait before the same order is tried again (WeChat's 1 s minimum).
pub const MIN_RETRY_MS: i64 = 1_000;
/// The longest wait between retries.
pub const MAX_RETRY_MS: i64 = 30_000;

/// The wait before retry number `retries` (0-based): 1 s growing by half
/// each time, at most 30 s.
pub fn backoff_ms(retries: u32) -> i64 {
    let mut delay = MIN_RETRY_MS;
    for _ in 0..retries.min(16) {
        delay = delay * 3 / 2;
        if delay >= MAX_RETRY_MS {
            return MAX_RETRY_MS;
        }
    }
    delay
}

/// When to ask gethbinfo about a sent packet next, after `done` queries and
/// `age_ms` since it was created: often at first (users open packets
/// within minutes), around WeChat's 24-hour refund, then daily until its
/// 30-day query window closes. `None`: stop.
pub fn reconcile_in_ms(done: i64, age_ms: i64) -> Option<i64> {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    if age_ms >= QUERY_WINDOW_MS {
        return None;
    }
    // Offsets from creation.
    const SCHEDULE: [i64; 9] = [
        MINUTE,
        5 * MINUTE,
        30 * MINUTE,
        2 * HOUR,
        6 * HOUR,
        12 * HOUR,
        24 * HOUR + 10 * MINUTE,
        25 * HOUR + 30 * MINUTE,
        27 * HOUR,
    ];
    let index = usize::try_from(done).unwrap_or(usize::MAX);
    let target = match SCHEDULE.get(index) {
        Some(at) => *at,
        None => 27 * HOUR + (done - 8) * DAY,
    };
    if target >= 30 * DAY {
        return None;
    }
    Some((target - age_ms).max(MINUTE))
}

/// WeChat answers gethbinfo for 30 days after the send.
pub const QUERY_WINDOW_MS: i64 = 30 * 24 * 3_600_000;

/// When to ask again after a query that gave no answer (an error, or
/// `FREQ_LIMIT`): at the next step of the schedule, or soon if the schedule
/// has run out while the query window is still open; `None` once it closed.
pub fn reconcile_again_ms(done: i64, age_ms: i64) -> Option<i64> {
    if age_ms >= QUERY_WINDOW_MS {
        return None;
    }
    reconcile_in_ms(done, age_ms).or(Some(MAX_RETRY_MS))
}

fn sent(
    status: Status,
    info: Option<&HbInfo>,
    result: Option<&SendResult>,
    age_ms: i64,
) -> Transition {
    let wechat_status = info.map_or(hongbao_wxpay::HbStatus::Sent, |i| i.status);
    let final_status = matches!(status, Status::Received | Status::Refunded);
    Transition::Sent {
        status,
        send_listid: result
            .and_then(|r| r.send_listid.clone())
            .or_else(|| info.and_then(|i| i.detail_id.clone())),
        wechat_status: wechat_status.as_str().to_owned(),
        refund_amount: info.and_then(|i| i.refund_amount),
        package: result.and_then(|r| r.package.clone()),
        reconcile_in_ms: if final_status {
            None
        } else {
            reconcile_in_ms(0, age_ms)
        },
    }
}

fn failed(code: &ErrCode) -> Transition {
    Transition::Failed {
        err_code: code.as_str().to_owned(),
        message: code.message().to_owned(),
        zh_message: code.zh_message().to_owned(),
    }
}

/// The status to keep while retrying: `sending` once anything may have
/// reached WeChat.
fn retry_status(claimed: &Claimed, may_have_reached: bool) -> Status {
    if may_have_reached || claimed.status == Status::Sending || claimed.needs_query {
        Status::Sending
    } else {
        Status::Pending
    }
}

/// What happens after a gethbinfo before sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterQuery {
    /// WeChat does not have it: send (the same mch_billno, unchanged).
    Send,
    /// Settled or postponed without sending.
    Done(Transition),
    /// As `Done`, and the merchant must stop.
    Pause(Transition, PauseReason, ErrCode),
    /// As `Done`, and the merchant's rate must slow.
    SlowDown(Transition),
}

/// Decides after a gethbinfo of a claimed record.
pub fn after_query(claimed: &Claimed, outcome: &QueryOutcome, age_ms: i64) -> AfterQuery {
    let retry = |needs_query: bool| Transition::Retry {
        status: retry_status(claimed, true),
        delay_ms: backoff_ms(claimed.retries),
        needs_query,
        merchant_refused: false,
        err_code: None,
    };
    match outcome {
        // Another order holds this mch_billno (another system, or another
        // database, numbering the same merchant's orders): the request
        // stored here can never have made it, and never will. Nothing of
        // this record was paid; it goes on under a new number.
        QueryOutcome::Found(info) if another_order(claimed, info) => {
            AfterQuery::Done(Transition::Reissue)
        }
        QueryOutcome::Found(info) => match info.status {
            status if status.was_sent() => {
                let status = Status::from_wechat(status).unwrap_or(Status::Sent);
                AfterQuery::Done(sent(status, Some(info), None, age_ms))
            }
            HbStatus::Failed if claimed.merchant_refused => AfterQuery::Done(Transition::Reissue),
            HbStatus::Failed => {
                let code = claimed
                    .err_code
                    .as_deref()
                    .map(ErrCode::parse)
                    .filter(|c| {
                        !matches!(
                            c,
                            ErrCode::SystemError | ErrCode::Processing | ErrCode::Other(_)
                        )
                    })
                    .unwrap_or(ErrCode::SendFailed);
                let reason = info.reason.clone().unwrap_or_default();
                AfterQuery::Done(Transition::Failed {
                    err_code: code.as_str().to_owned(),
                    message: if reason.is_empty() {
                        code.message().to_owned()
                    } else {
                        format!("{} (WeChat: {reason})", code.message())
                    },
                    zh_message: if reason.is_empty() {
                        code.zh_message().to_owned()
                    } else {
                        format!("{}（微信：{reason}）", code.zh_message())
                    },
                })
            }
            // SENDING: WeChat is still on it; ask again later, never resend now.
            _ => AfterQuery::Done(retry(true)),
        },
        // The send was refused for the recipient and WeChat has no order:
        // nothing was paid, the failure is confirmed.
        QueryOutcome::NotFound => match refused_for_recipient(claimed) {
            Some(code) => AfterQuery::Done(failed(&code)),
            None => match parameters_changed(claimed) {
                // WeChat said the number was used with other parameters, yet
                // shows no order under it: nothing to reissue safely.
                Some(code) => AfterQuery::Done(parameters_changed_failure(claimed, &code)),
                None => AfterQuery::Send,
            },
        },
        QueryOutcome::RetryLater(_) | QueryOutcome::Invalid(_) => AfterQuery::Done(retry(true)),
        QueryOutcome::RateLimited => AfterQuery::SlowDown(retry(true)),
        QueryOutcome::PauseMerchant(reason, code) => {
            AfterQuery::Pause(retry(true), *reason, code.clone())
        }
    }
}

/// Whether the order WeChat shows under the claimed record's mch_billno
/// is another's: its amount, number of shares or receiver differ from the
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
pub fn another_order(claimed: &Claimed, info: &HbInfo) -> bool {
    let params = claimed.request.params();
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
    if parameters_changed(claimed).is_some() {
        return !receivers.any(|theirs| theirs == openid);
    }
    // The shares of a fission packet go to several people.
    shares.is_none_or(|n| n == 1) && receivers.any(|theirs| theirs != openid)
}

/// The `FATAL_ERROR` (the mch_billno used with other parameters) the
/// claimed record is waiting to look into with gethbinfo, if it is.
fn parameters_changed(claimed: &Claimed) -> Option<ErrCode> {
    let code = ErrCode::parse(claimed.err_code.as_deref()?);
    matches!(
        hongbao_wxpay::send_action(&code),
        SendOutcome::ParametersChanged(_)
    )
    .then_some(code)
}

fn parameters_changed_failure(claimed: &Claimed, code: &ErrCode) -> Transition {
    Transition::Failed {
        err_code: code.as_str().to_owned(),
        message: format!(
            "{}: mch_billno {} exists at WeChat with other parameters, and gethbinfo shows no order under it; another system may be using this merchant's numbers: give this database its own [database] billno_deployment",
            code.message(),
            claimed.request.mch_billno()
        ),
        zh_message: format!(
            "{}：商户单号 {} 已被使用（参数不同），但查询不到该单；可能有其他系统在使用同一商户号的单号：请为本数据库配置独立的 [database] billno_deployment",
            code.zh_message(),
            claimed.request.mch_billno()
        ),
    }
}

/// The recipient-level refusal a prize's payout is waiting to confirm
/// with gethbinfo, if it is.
fn refused_for_recipient(claimed: &Claimed) -> Option<ErrCode> {
    if claimed.prize_id.is_none() || claimed.merchant_refused {
        return None;
    }
    let code = ErrCode::parse(claimed.err_code.as_deref()?);
    matches!(
        hongbao_wxpay::send_action(&code),
        SendOutcome::FailedForRecipient(_) | SendOutcome::NewBillnoNeeded(_)
    )
    .then_some(code)
}

/// Whether a final failure of a prize's payout leaves the prize claimable
/// again: the refusal was about the recipient or the order (confirmed by
/// gethbinfo first), so nothing was paid and a new claim may use a new
/// mch_billno.
pub fn releases_prize(err_code: &str) -> bool {
    matches!(
        hongbao_wxpay::send_action(&ErrCode::parse(err_code)),
        SendOutcome::FailedForRecipient(_) | SendOutcome::NewBillnoNeeded(_)
    )
}

/// The words of a merchant's pause, in English and Chinese: why, and what
/// to do. `reason` is a stored pause reason (`insufficient_balance`,
/// `daily_cap`, `configuration`, `operator`); `None` for a reason this
/// version does not know.
pub fn pause_messages(reason: &str, err_code: Option<&str>) -> Option<(String, String)> {
    let resume = "resume with `hongbao merchant resume NAME` or POST /v1/merchants/NAME/resume";
    let resume_zh = "恢复请用 `hongbao merchant resume 商户名` 或 POST /v1/merchants/商户名/resume";
    let why = match reason {
        "operator" => {
            return Some((
                format!("paused by an operator; {resume}"),
                format!("已由操作员暂停；{resume_zh}"),
            ));
        }
        "insufficient_balance" => PauseReason::InsufficientBalance,
        "daily_cap" => PauseReason::DailyCap,
        "configuration" => PauseReason::Configuration,
        _ => return None,
    };
    let code = err_code.map(ErrCode::parse);
    let (detail, detail_zh) = code.as_ref().map_or_else(Default::default, |c| {
        (
            format!(" ({c}: {})", c.message()),
            format!("（{c}：{}）", c.zh_message()),
        )
    });
    Some((
        format!("{}{detail}; {resume}", why.message()),
        format!("{}{detail_zh}；{resume_zh}", why.zh_message()),
    ))
}

/// What a send's outcome asks of the merchant, besides the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MerchantEffect {
    /// Nothing.
    None,
    /// Slow down (FREQ_LIMIT).
    SlowDown,
    /// Stop the merchant.
    Pause(PauseReason, ErrCode),
}

/// Decides after a send of a claimed record.
pub fn after_send(
    claimed: &Claimed,
    outcome: &SendOutcome,
    age_ms: i64,
) -> (Transition, MerchantEffect) {
    let delay_ms = backoff_ms(claimed.retries);
    match outcome {
        SendOutcome::Sent(result) => (
            sent(Status::Sent, None, Some(result), age_ms),
            MerchantEffect::None,
        ),
        SendOutcome::RetrySameBillno(_) => (
            Transition::Retry {
                status: retry_status(claimed, false),
                delay_ms,
                needs_query: claimed.needs_query,
                merchant_refused: false,
                err_code: None,
            },
            MerchantEffect::None,
        ),
        SendOutcome::QueryFirst { err_code, .. } => (
            Transition::Retry {
                status: Status::Sending,
                delay_ms,
                needs_query: true,
                merchant_refused: false,
                err_code: err_code.as_ref().map(|c| c.as_str().to_owned()),
            },
            MerchantEffect::None,
        ),
        // FREQ_LIMIT: the call was refused before anything happened.
        SendOutcome::RateLimited(_) => (
            Transition::Retry {
                status: retry_status(claimed, false),
                delay_ms,
                needs_query: claimed.needs_query,
                merchant_refused: false,
                err_code: None,
            },
            MerchantEffect::SlowDown,
        ),
        // WeChat retired fission packets on 2024-06-05: a refusal of one
        // says nothing about the merchant's other payouts.
        SendOutcome::PauseMerchant(PauseReason::Configuration, code)
            if claimed.kind == Kind::Group =>
        {
            (
                Transition::Failed {
                    err_code: code.as_str().to_owned(),
                    message: format!(
                        "WeChat refused the fission (group) red packet ({code}: {}): sendgroupredpack has been offline since 2024-06-05; send a normal red packet instead",
                        code.message()
                    ),
                    zh_message: format!(
                        "微信拒绝了裂变红包（{code}：{}）：裂变红包已于 2024-06-05 下线，请改发普通红包",
                        code.zh_message()
                    ),
                },
                MerchantEffect::None,
            )
        }
        SendOutcome::PauseMerchant(reason, code) => {
            let merchant_level = matches!(
                reason,
                PauseReason::InsufficientBalance | PauseReason::DailyCap
            );
            (
                Transition::Retry {
                    status: retry_status(claimed, false),
                    // Claimed again once the merchant is resumed.
                    delay_ms: 0,
                    // After a top-up, ask first: WeChat may have kept the
                    // order as FAILED, which then needs a new mch_billno.
                    needs_query: claimed.needs_query || merchant_level,
                    merchant_refused: merchant_level,
                    err_code: Some(code.as_str().to_owned()),
                },
                MerchantEffect::Pause(*reason, code.clone()),
            )
        }
        SendOutcome::NewBillnoNeeded(_) if claimed.merchant_refused => {
            (Transition::Reissue, MerchantEffect::None)
        }
        // A prize becomes claimable again (with a new mch_billno) only once
        // gethbinfo confirms that nothing was paid.
        SendOutcome::FailedForRecipient(code) | SendOutcome::NewBillnoNeeded(code)
            if claimed.prize_id.is_some() =>
        {
            (
                Transition::Retry {
                    status: Status::Sending,
                    delay_ms,
                    needs_query: true,
                    merchant_refused: false,
                    err_code: Some(code.as_str().to_owned()),
                },
                MerchantEffect::None,
            )
        }
        SendOutcome::FailedForRecipient(code) => (failed(code), MerchantEffect::None),
        SendOutcome::NewBillnoNeeded(code) => (failed(code), MerchantEffect::None),
        // Another order may hold the number: gethbinfo tells whose it is.
        SendOutcome::ParametersChanged(code) => (
            Transition::Retry {
                status: Status::Sending,
                delay_ms: MIN_RETRY_MS,
                needs_query: true,
                merchant_refused: false,
                err_code: Some(code.as_str().to_owned()),
            },
            MerchantEffect::None,
        ),
    }
}

/// Whether a kind's answer carries a package to keep.
pub fn keeps_package(kind: Kind) -> bool {
    kind == Kind::MiniProgram
}

#[cfg(test)]
mod tests {
    use super::*;
    use hongbao_wxpay::{Api, Fen, Params, Prepared};

    fn claimed(status: Status, needs_query: bool, merchant_refused: bool) -> Claimed {
        let params: Params = [
            ("mch_billno", "1900000109202611220000000001"),
            ("mch_id", "1900000109"),
            ("nonce_str", "n"),
        ]
        .into_iter()
        .collect();
        Claimed {
            id: "rp_1".into(),
            merchant: "main".into(),
            kind: Kind::Normal,
            status,
            request: Prepared::from_parts(Api::SendRedpack, params).unwrap(),
            needs_query,
            merchant_refused,
            retries: 0,
            created_at_ms: 0,
            err_code: None,
            prize_id: None,
            campaign_id: None,
        }
    }

    fn info(status: HbStatus, reason: Option<&str>) -> QueryOutcome {
        QueryOutcome::Found(Box::new(HbInfo {
            mch_billno: "1".into(),
            detail_id: Some("D1".into()),
            status,
            send_type: None,
            hb_type: None,
            total_num: Some(1),
            total_amount: Some(Fen::new(100)),
            reason: reason.map(str::to_owned),
            send_time: None,
            refund_time: None,
            refund_amount: None,
            wishing: None,
            remark: None,
            act_name: None,
            receivers: Vec::new(),
        }))
    }

    #[test]
    fn backoff_starts_at_one_second_and_is_capped() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(1), 1_500);
        assert_eq!(backoff_ms(2), 2_250);
        assert_eq!(backoff_ms(100), MAX_RETRY_MS);
        assert!((0..40).all(|n| backoff_ms(n) >= MIN_RETRY_MS));
    }

    #[test]
    fn ambiguous_sends_are_queried_first_and_never_failed() {
        let c = claimed(Status::Pending, false, false);
        for outcome in [
            SendOutcome::QueryFirst {
                err_code: Some(ErrCode::SystemError),
                detail: String::new(),
            },
            SendOutcome::QueryFirst {
                err_code: None,
                detail: "timed out".into(),
            },
            SendOutcome::QueryFirst {
                err_code: Some(ErrCode::Other("NEW".into())),
                detail: String::new(),
            },
        ] {
            match after_send(&c, &outcome, 0).0 {
                Transition::Retry {
                    status,
                    needs_query,
                    delay_ms,
                    ..
                } => {
                    assert_eq!(status, Status::Sending);
                    assert!(needs_query);
                    assert!(delay_ms >= MIN_RETRY_MS);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_request_that_never_left_stays_pending_and_is_resent_as_is() {
        let (t, _) = after_send(
            &claimed(Status::Pending, false, false),
            &SendOutcome::RetrySameBillno("refused".into()),
            0,
        );
        assert!(matches!(
            t,
            Transition::Retry {
                status: Status::Pending,
                needs_query: false,
                ..
            }
        ));
        // But once something may have reached WeChat, the doubt stays.
        let (t, _) = after_send(
            &claimed(Status::Sending, true, false),
            &SendOutcome::RetrySameBillno("refused".into()),
            0,
        );
        assert!(matches!(
            t,
            Transition::Retry {
                status: Status::Sending,
                needs_query: true,
                ..
            }
        ));
    }

    #[test]
    fn balance_and_config_errors_pause_the_merchant_and_keep_the_record() {
        let c = claimed(Status::Pending, false, false);
        let (t, effect) = after_send(
            &c,
            &SendOutcome::PauseMerchant(PauseReason::InsufficientBalance, ErrCode::NotEnough),
            0,
        );
        assert_eq!(
            effect,
            MerchantEffect::Pause(PauseReason::InsufficientBalance, ErrCode::NotEnough)
        );
        assert!(matches!(
            t,
            Transition::Retry {
                status: Status::Pending,
                needs_query: true,
                merchant_refused: true,
                ..
            }
        ));
        let (t, effect) = after_send(
            &c,
            &SendOutcome::PauseMerchant(PauseReason::Configuration, ErrCode::SignError),
            0,
        );
        assert!(matches!(
            effect,
            MerchantEffect::Pause(PauseReason::Configuration, _)
        ));
        assert!(matches!(
            t,
            Transition::Retry {
                needs_query: false,
                merchant_refused: false,
                ..
            }
        ));
    }

    #[test]
    fn a_refused_fission_packet_fails_alone_and_never_pauses_the_merchant() {
        let mut group = claimed(Status::Pending, false, false);
        group.kind = Kind::Group;
        let (t, effect) = after_send(
            &group,
            &SendOutcome::PauseMerchant(PauseReason::Configuration, ErrCode::NoAuth),
            0,
        );
        assert_eq!(effect, MerchantEffect::None);
        match t {
            Transition::Failed {
                err_code,
                message,
                zh_message,
            } => {
                assert_eq!(err_code, "NO_AUTH");
                assert!(message.contains("2024-06-05") && zh_message.contains("下线"));
            }
            other => panic!("{other:?}"),
        }
        // A normal packet's NO_AUTH still pauses: it is the merchant's.
        let (_, effect) = after_send(
            &claimed(Status::Pending, false, false),
            &SendOutcome::PauseMerchant(PauseReason::Configuration, ErrCode::NoAuth),
            0,
        );
        assert!(matches!(
            effect,
            MerchantEffect::Pause(PauseReason::Configuration, _)
        ));
    }

    #[test]
    fn recipient_failures_are_final_with_messages() {
        let (t, _) = after_send(
            &claimed(Status::Pending, false, false),
            &SendOutcome::FailedForRecipient(ErrCode::SendNumLimit),
            0,
        );
        match t {
            Transition::Failed {
                err_code,
                message,
                zh_message,
            } => {
                assert_eq!(err_code, "SENDNUM_LIMIT");
                assert!(message.contains("today") && zh_message.contains("今日"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_prize_payout_refused_for_its_recipient_is_confirmed_by_gethbinfo_first() {
        let mut prize = claimed(Status::Pending, false, false);
        prize.prize_id = Some("pz_1".into());
        for outcome in [
            SendOutcome::FailedForRecipient(ErrCode::SendNumLimit),
            SendOutcome::NewBillnoNeeded(ErrCode::SendFailed),
        ] {
            let (t, effect) = after_send(&prize, &outcome, 0);
            assert_eq!(effect, MerchantEffect::None);
            match t {
                Transition::Retry {
                    status,
                    needs_query,
                    err_code,
                    ..
                } => {
                    assert_eq!(status, Status::Sending);
                    assert!(needs_query);
                    assert_eq!(err_code.as_deref(), outcome.err_code().map(ErrCode::as_str));
                }
                other => panic!("{other:?}"),
            }
        }
        // Then: NOT_FOUND or FAILED confirm it; SENT means it paid after all.
        let mut waiting = claimed(Status::Sending, true, false);
        waiting.prize_id = Some("pz_1".into());
        waiting.err_code = Some("SENDNUM_LIMIT".into());
        for outcome in [
            QueryOutcome::NotFound,
            info(HbStatus::Failed, Some("该用户今日领取红包个数超过限制")),
        ] {
            match after_query(&waiting, &outcome, 0) {
                AfterQuery::Done(Transition::Failed { err_code, .. }) => {
                    assert_eq!(err_code, "SENDNUM_LIMIT");
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            after_query(&waiting, &info(HbStatus::Sent, None), 0),
            AfterQuery::Done(Transition::Sent { .. })
        ));
        // An ambiguous earlier answer is never taken for a refusal.
        waiting.err_code = Some("SYSTEMERROR".into());
        assert_eq!(
            after_query(&waiting, &QueryOutcome::NotFound, 0),
            AfterQuery::Send
        );
        // Without a prize, NOT_FOUND means send (the same number) as before.
        let mut plain = claimed(Status::Sending, true, false);
        plain.err_code = Some("SENDNUM_LIMIT".into());
        assert_eq!(
            after_query(&plain, &QueryOutcome::NotFound, 0),
            AfterQuery::Send
        );
        assert!(releases_prize("SENDNUM_LIMIT") && releases_prize("SEND_FAILED"));
        assert!(!releases_prize("FATAL_ERROR") && !releases_prize("SYSTEMERROR"));
    }

    #[test]
    fn a_new_billno_only_after_a_merchant_level_refusal() {
        let after_balance = claimed(Status::Pending, true, true);
        assert_eq!(
            after_query(&after_balance, &info(HbStatus::Failed, None), 0),
            AfterQuery::Done(Transition::Reissue)
        );
        let (t, _) = after_send(
            &after_balance,
            &SendOutcome::NewBillnoNeeded(ErrCode::SendFailed),
            0,
        );
        assert_eq!(t, Transition::Reissue);
        let plain = claimed(Status::Sending, true, false);
        assert!(matches!(
            after_query(
                &plain,
                &info(HbStatus::Failed, Some("该用户今日领取红包个数超过限制")),
                0
            ),
            AfterQuery::Done(Transition::Failed { .. })
        ));
        let (t, _) = after_send(
            &plain,
            &SendOutcome::NewBillnoNeeded(ErrCode::SendFailed),
            0,
        );
        assert!(matches!(t, Transition::Failed { .. }));
    }

    #[test]
    fn an_order_of_another_system_under_the_billno_is_reissued_never_taken_for_ours() {
        let mut fatal = claimed(Status::Pending, false, false);
        fatal.request = Prepared::from_parts(
            Api::SendRedpack,
            [
                ("mch_billno", "1900000109202611220000000001"),
                ("mch_id", "1900000109"),
                ("nonce_str", "n"),
                ("re_openid", "oOurs"),
                ("total_amount", "100"),
                ("total_num", "1"),
            ]
            .into_iter()
            .collect(),
        )
        .unwrap();
        // FATAL_ERROR: ask gethbinfo first, never fail at once.
        let (t, _) = after_send(
            &fatal,
            &SendOutcome::ParametersChanged(ErrCode::FatalError),
            0,
        );
        assert!(matches!(
            t,
            Transition::Retry {
                needs_query: true,
                status: Status::Sending,
                ..
            }
        ));
        fatal.needs_query = true;
        fatal.err_code = Some("FATAL_ERROR".into());
        // The order there, unopened, of the same amount: another's.
        assert_eq!(
            after_query(&fatal, &info(HbStatus::Sent, None), 0),
            AfterQuery::Done(Transition::Reissue)
        );
        // Opened by someone else: another's.
        let mut opened = info(HbStatus::Received, None);
        if let QueryOutcome::Found(i) = &mut opened {
            i.receivers.push(hongbao_wxpay::HbReceiver {
                openid: Some("oTheirs".into()),
                amount: Some(Fen::new(100)),
                rcv_time: None,
            });
        }
        assert_eq!(
            after_query(&fatal, &opened, 0),
            AfterQuery::Done(Transition::Reissue)
        );
        // Opened by this record's receiver: it was this record's.
        if let QueryOutcome::Found(i) = &mut opened {
            i.receivers[0].openid = Some("oOurs".into());
        }
        assert!(matches!(
            after_query(&fatal, &opened, 0),
            AfterQuery::Done(Transition::Sent { .. })
        ));
        // No order at all: fail, with what to do.
        match after_query(&fatal, &QueryOutcome::NotFound, 0) {
            AfterQuery::Done(Transition::Failed {
                err_code, message, ..
            }) => {
                assert_eq!(err_code, "FATAL_ERROR");
                assert!(message.contains("billno_deployment"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Without FATAL_ERROR (a timeout), only a difference WeChat shows
        // makes the order another's: the same amount, unopened, is ours.
        let mut timed_out = fatal;
        timed_out.err_code = None;
        assert!(matches!(
            after_query(&timed_out, &info(HbStatus::Sent, None), 0),
            AfterQuery::Done(Transition::Sent { .. })
        ));
        let mut other_amount = info(HbStatus::Sent, None);
        if let QueryOutcome::Found(i) = &mut other_amount {
            i.total_amount = Some(Fen::new(250));
        }
        assert_eq!(
            after_query(&timed_out, &other_amount, 0),
            AfterQuery::Done(Transition::Reissue)
        );
    }

    #[test]
    fn queries_settle_sent_packets_and_send_only_when_not_found() {
        let c = claimed(Status::Sending, true, false);
        assert_eq!(
            after_query(&c, &QueryOutcome::NotFound, 0),
            AfterQuery::Send
        );
        match after_query(&c, &info(HbStatus::Received, None), 0) {
            AfterQuery::Done(Transition::Sent {
                status,
                send_listid,
                reconcile_in_ms,
                ..
            }) => {
                assert_eq!(status, Status::Received);
                assert_eq!(send_listid.as_deref(), Some("D1"));
                assert_eq!(reconcile_in_ms, None);
            }
            other => panic!("{other:?}"),
        }
        // Still SENDING at WeChat: wait and ask again, never resend.
        assert!(matches!(
            after_query(&c, &info(HbStatus::Sending, None), 0),
            AfterQuery::Done(Transition::Retry {
                needs_query: true,
                ..
            })
        ));
        assert!(matches!(
            after_query(&c, &QueryOutcome::RetryLater("x".into()), 0),
            AfterQuery::Done(Transition::Retry {
                needs_query: true,
                ..
            })
        ));
        assert!(matches!(
            after_query(&c, &QueryOutcome::RateLimited, 0),
            AfterQuery::SlowDown(_)
        ));
    }

    #[test]
    fn reconciliation_follows_the_day_and_stops_at_thirty_days() {
        assert_eq!(reconcile_in_ms(0, 0), Some(60_000));
        // Overdue steps still wait a minute.
        assert_eq!(reconcile_in_ms(1, 10 * 60_000), Some(60_000));
        let day = 24 * 3_600_000;
        assert!(reconcile_in_ms(6, 12 * 3_600_000).unwrap() > 12 * 3_600_000);
        assert_eq!(reconcile_in_ms(40, 29 * day), None);
        // Every schedule ends: at most one query a day after the first day.
        let mut age = 0;
        let mut done = 0;
        while let Some(wait) = reconcile_in_ms(done, age) {
            age += wait;
            done += 1;
            assert!(done < 50);
        }
        assert!(age <= 30 * day);
        // A packet past the window is never asked about again, however
        // the last query went.
        assert_eq!(reconcile_in_ms(3, 30 * day), None);
        assert_eq!(reconcile_again_ms(3, 30 * day + 1), None);
        assert_eq!(reconcile_again_ms(40, 29 * day), Some(MAX_RETRY_MS));
        assert_eq!(reconcile_again_ms(1, 0), reconcile_in_ms(1, 0));
    }
}
