//! What each outcome means for a record: pure rules, no I/O, in the words
//! every rail shares ([`crate::model::verdict`]).
//!
//! The invariant they serve: an order number whose outcome is unknown is
//! only ever resolved by a query or sent again unchanged; a new number is
//! used only when WeChat confirmed that the old one can never be paid
//! (failed after a merchant-level refusal, or held by another order), when
//! no money can have moved for this record.

use crate::model::{
    Awaiting, Claimed, Code, MerchantEffect, OrderState, PrizeEffect, QueryVerdict, SendVerdict,
    Status, Transition,
};

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

/// When to ask about an accepted order next, after `done` queries and
/// `age_ms` since it was created; `None`: it can change no more, or its
/// query window closed. An order WeChat is paying or cancelling (a
/// confirmed or cancelled transfer bill) settles within seconds: it is
/// asked about every few seconds; others follow [`reconcile_in_ms`].
pub fn follow_in_ms(state: &OrderState, done: i64, age_ms: i64) -> Option<i64> {
    if state.is_final() || age_ms >= QUERY_WINDOW_MS {
        return None;
    }
    match state.status {
        Status::Transferring | Status::Cancelling => {
            let step = u32::try_from(done).unwrap_or(u32::MAX).saturating_add(4);
            Some(backoff_ms(step).max(5_000))
        }
        _ => reconcile_in_ms(done, age_ms),
    }
}

/// What news of an accepted order (a follow-up query, a callback) does to
/// the prize it pays: a transfer bill closed unpaid (expired, refused,
/// cancelled) gives the prize back, as a refused red packet does.
pub fn news_prize_effect(state: &OrderState) -> Option<PrizeEffect> {
    match state.status {
        Status::Failed | Status::Cancelled => Some(PrizeEffect::Released {
            err_code: state
                .fail_reason
                .clone()
                .unwrap_or_else(|| state.wechat_status.clone()),
        }),
        _ => None,
    }
}

fn accepted(state: OrderState, age_ms: i64) -> Transition {
    let follow_in_ms = follow_in_ms(&state, 0, age_ms);
    Transition::Accepted {
        state,
        follow_in_ms,
    }
}

fn failed(code: Code, nothing_paid: bool) -> Transition {
    Transition::Failed { code, nothing_paid }
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

/// What happens after a query before sending.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a decision returned and matched at once, never stored"
)]
pub enum AfterQuery {
    /// WeChat does not have it: send (the same number, unchanged).
    Send,
    /// Settled or postponed without sending; and what the merchant must do.
    Done(Transition, MerchantEffect),
}

/// Decides after a query of a claimed record.
pub fn after_query(claimed: &Claimed, verdict: &QueryVerdict) -> AfterQuery {
    let retry = |needs_query: bool| Transition::Retry {
        status: retry_status(claimed, true),
        delay_ms: backoff_ms(claimed.retries),
        needs_query,
        merchant_refused: false,
        code: None,
    };
    let done = |t| AfterQuery::Done(t, MerchantEffect::None);
    match verdict {
        // Another order holds this number: the request stored here can
        // never have made it, and never will. Nothing of this record was
        // paid; it goes on under a new number.
        QueryVerdict::AnotherOrder => done(Transition::Reissue),
        QueryVerdict::Found(state) => done(accepted(state.clone(), claimed.age_ms())),
        QueryVerdict::FailedThere { .. } if claimed.merchant_refused => done(Transition::Reissue),
        QueryVerdict::FailedThere { code, reason } => {
            // The refusal being confirmed names what happened best.
            let code = match &claimed.awaiting {
                Awaiting::RefusalConfirmation(refusal) => refusal.clone(),
                _ => code.clone(),
            };
            let code = match reason.as_deref().filter(|r| !r.is_empty()) {
                Some(reason) => Code {
                    message: format!("{} (WeChat: {reason})", code.message),
                    zh_message: format!("{}（微信：{reason}）", code.zh_message),
                    code: code.code,
                },
                None => code,
            };
            done(failed(code, true))
        }
        // Still on its way at WeChat: ask again later, never send now.
        QueryVerdict::InProgress => done(retry(true)),
        // WeChat has it; the same request again is safe and tells more.
        QueryVerdict::SendAgain => AfterQuery::Send,
        QueryVerdict::NotFound => match &claimed.awaiting {
            // Refused for the recipient, and WeChat has no order: nothing
            // was paid, the failure is confirmed.
            Awaiting::RefusalConfirmation(code) => done(failed(code.clone(), true)),
            // The number was used with other parameters, yet no order is
            // there: nothing to reissue safely.
            Awaiting::ParametersChanged(code) => done(failed(
                Code {
                    code: code.code.clone(),
                    message: format!(
                        "{}: order number {} exists at WeChat with other parameters, and a query shows no order under it; another system may be using this merchant's numbers: give this database its own [database] billno_deployment",
                        code.message,
                        claimed.request.order_no()
                    ),
                    zh_message: format!(
                        "{}：单号 {} 已被使用（参数不同），但查询不到该单；可能有其他系统在使用同一商户号的单号：请为本数据库配置独立的 [database] billno_deployment",
                        code.zh_message,
                        claimed.request.order_no()
                    ),
                },
                false,
            )),
            Awaiting::Nothing => AfterQuery::Send,
        },
        QueryVerdict::RetryLater(_) | QueryVerdict::Invalid(_) => done(retry(true)),
        QueryVerdict::RateLimited => AfterQuery::Done(retry(true), MerchantEffect::SlowDown),
        QueryVerdict::Pause(kind, code) => {
            AfterQuery::Done(retry(true), MerchantEffect::Pause(*kind, code.clone()))
        }
    }
}

/// Decides after a send of a claimed record.
pub fn after_send(claimed: &Claimed, verdict: &SendVerdict) -> (Transition, MerchantEffect) {
    let delay_ms = backoff_ms(claimed.retries);
    let confirm_first = |code: &Code| Transition::Retry {
        status: Status::Sending,
        delay_ms,
        needs_query: true,
        merchant_refused: false,
        code: Some(code.clone()),
    };
    match verdict {
        SendVerdict::Accepted(state) => (
            accepted(state.clone(), claimed.age_ms()),
            MerchantEffect::None,
        ),
        SendVerdict::NotSent(_) => (
            Transition::Retry {
                status: retry_status(claimed, false),
                delay_ms,
                needs_query: claimed.needs_query,
                merchant_refused: false,
                code: None,
            },
            MerchantEffect::None,
        ),
        SendVerdict::Unknown { code, .. } => (
            Transition::Retry {
                status: Status::Sending,
                delay_ms,
                needs_query: true,
                merchant_refused: false,
                code: code.clone(),
            },
            MerchantEffect::None,
        ),
        // Refused before anything happened.
        SendVerdict::RateLimited => (
            Transition::Retry {
                status: retry_status(claimed, false),
                delay_ms,
                needs_query: claimed.needs_query,
                merchant_refused: false,
                code: None,
            },
            MerchantEffect::SlowDown,
        ),
        SendVerdict::Pause(kind, code) => {
            let merchant_level = kind.is_merchant_level();
            (
                Transition::Retry {
                    status: retry_status(claimed, false),
                    // Claimed again once the merchant is resumed.
                    delay_ms: 0,
                    // After a top-up, ask first: WeChat may have kept the
                    // order as failed, which then needs a new number.
                    needs_query: claimed.needs_query || merchant_level,
                    merchant_refused: merchant_level,
                    code: Some(code.clone()),
                },
                MerchantEffect::Pause(*kind, code.clone()),
            )
        }
        SendVerdict::OrderDead(_) if claimed.merchant_refused => {
            (Transition::Reissue, MerchantEffect::None)
        }
        // A prize becomes claimable again (with a new number) only once a
        // query confirms that nothing was paid.
        SendVerdict::Refused(code) | SendVerdict::OrderDead(code) if claimed.prize_id.is_some() => {
            (confirm_first(code), MerchantEffect::None)
        }
        SendVerdict::Refused(code) | SendVerdict::OrderDead(code) => {
            (failed(code.clone(), true), MerchantEffect::None)
        }
        // Another order may hold the number: a query tells whose it is.
        SendVerdict::ParametersChanged(code) => (
            Transition::Retry {
                status: Status::Sending,
                delay_ms: MIN_RETRY_MS,
                needs_query: true,
                merchant_refused: false,
                code: Some(code.clone()),
            },
            MerchantEffect::None,
        ),
    }
}

/// What an outcome recorded for a prize's payout does to the prize.
pub fn prize_effect(transition: &Transition) -> Option<PrizeEffect> {
    match transition {
        Transition::Accepted { .. } => Some(PrizeEffect::Issued),
        Transition::Failed {
            code,
            nothing_paid: true,
        } => Some(PrizeEffect::Released {
            err_code: code.code.clone(),
        }),
        Transition::Failed { code, .. } => Some(PrizeEffect::Failed {
            err_code: code.code.clone(),
        }),
        Transition::Retry { .. } | Transition::Reissue => None,
    }
}

/// What a query of an order already accepted (followed until it can
/// change no more) teaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowUp {
    /// The order's new state, if WeChat told it.
    pub state: Option<OrderState>,
    /// When to ask next (ms from now); `None`: never again.
    pub next_in_ms: Option<i64>,
    /// Whether the merchant must slow down.
    pub slow_down: bool,
}

/// Decides after following an accepted order: `done` queries so far, the
/// record `age_ms` old.
pub fn after_follow(verdict: &QueryVerdict, done: i64, age_ms: i64) -> FollowUp {
    match verdict {
        QueryVerdict::Found(state) => FollowUp {
            next_in_ms: follow_in_ms(state, done + 1, age_ms),
            state: Some(state.clone()),
            slow_down: false,
        },
        QueryVerdict::RateLimited => FollowUp {
            state: None,
            next_in_ms: reconcile_again_ms(done, age_ms),
            slow_down: true,
        },
        _ => FollowUp {
            state: None,
            next_in_ms: reconcile_again_ms(done + 1, age_ms),
            slow_down: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, PauseKind, RailRequest};
    use hongbao_wxpay::{Api, Params, Prepared};

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
            status,
            request: RailRequest::Redpack {
                kind: Kind::Normal,
                prepared: Prepared::from_parts(Api::SendRedpack, params).unwrap(),
            },
            needs_query,
            merchant_refused,
            retries: 0,
            created_at_ms: 0,
            claimed_at_ms: 0,
            err_code: None,
            awaiting: Awaiting::Nothing,
            prize_id: None,
            campaign_id: None,
        }
    }

    fn code(c: &str) -> Code {
        Code::new(c, format!("{c} words"), format!("{c} 说明"))
    }

    fn state(status: Status) -> OrderState {
        OrderState {
            status,
            external_id: Some("D1".into()),
            wechat_status: "SENT".into(),
            refund_amount: None,
            package: None,
            fail_reason: None,
        }
    }

    fn failed_there(reason: Option<&str>) -> QueryVerdict {
        QueryVerdict::FailedThere {
            code: code("SEND_FAILED"),
            reason: reason.map(str::to_owned),
        }
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
        for verdict in [
            SendVerdict::Unknown {
                code: Some(code("SYSTEMERROR")),
                detail: String::new(),
            },
            SendVerdict::Unknown {
                code: None,
                detail: "timed out".into(),
            },
        ] {
            match after_send(&c, &verdict).0 {
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
            &SendVerdict::NotSent("refused".into()),
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
            &SendVerdict::NotSent("refused".into()),
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
            &SendVerdict::Pause(PauseKind::InsufficientBalance, code("NOTENOUGH")),
        );
        assert_eq!(
            effect,
            MerchantEffect::Pause(PauseKind::InsufficientBalance, code("NOTENOUGH"))
        );
        match t {
            Transition::Retry {
                status: Status::Pending,
                needs_query: true,
                merchant_refused: true,
                code: Some(c),
                ..
            } => assert_eq!(c.code, "NOTENOUGH"),
            other => panic!("{other:?}"),
        }
        let (t, effect) = after_send(
            &c,
            &SendVerdict::Pause(PauseKind::Configuration, code("SIGN_ERROR")),
        );
        assert!(matches!(
            effect,
            MerchantEffect::Pause(PauseKind::Configuration, _)
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
    fn recipient_failures_are_final_with_their_words() {
        let (t, _) = after_send(
            &claimed(Status::Pending, false, false),
            &SendVerdict::Refused(code("SENDNUM_LIMIT")),
        );
        assert_eq!(
            t,
            Transition::Failed {
                code: code("SENDNUM_LIMIT"),
                nothing_paid: true
            }
        );
        assert_eq!(
            prize_effect(&t),
            Some(PrizeEffect::Released {
                err_code: "SENDNUM_LIMIT".into()
            })
        );
    }

    #[test]
    fn a_prize_payout_refused_for_its_recipient_is_confirmed_by_a_query_first() {
        let mut prize = claimed(Status::Pending, false, false);
        prize.prize_id = Some("pz_1".into());
        for verdict in [
            SendVerdict::Refused(code("SENDNUM_LIMIT")),
            SendVerdict::OrderDead(code("SEND_FAILED")),
        ] {
            let (t, effect) = after_send(&prize, &verdict);
            assert_eq!(effect, MerchantEffect::None);
            assert!(
                matches!(
                    &t,
                    Transition::Retry {
                        status: Status::Sending,
                        needs_query: true,
                        code: Some(_),
                        ..
                    }
                ),
                "{t:?}"
            );
            assert_eq!(prize_effect(&t), None);
        }
        // Then: NOT_FOUND or FAILED confirm it; found means it paid after all.
        let mut waiting = claimed(Status::Sending, true, false);
        waiting.prize_id = Some("pz_1".into());
        waiting.awaiting = Awaiting::RefusalConfirmation(code("SENDNUM_LIMIT"));
        for verdict in [
            QueryVerdict::NotFound,
            failed_there(Some("该用户今日领取红包个数超过限制")),
        ] {
            match after_query(&waiting, &verdict) {
                AfterQuery::Done(Transition::Failed { code, nothing_paid }, _) => {
                    assert_eq!(code.code, "SENDNUM_LIMIT");
                    assert!(nothing_paid);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            after_query(&waiting, &QueryVerdict::Found(state(Status::Sent))),
            AfterQuery::Done(Transition::Accepted { .. }, _)
        ));
        // An ambiguous earlier answer is never taken for a refusal.
        waiting.awaiting = Awaiting::Nothing;
        assert_eq!(
            after_query(&waiting, &QueryVerdict::NotFound),
            AfterQuery::Send
        );
    }

    #[test]
    fn a_new_number_only_after_a_merchant_level_refusal_or_another_order() {
        let after_balance = claimed(Status::Pending, true, true);
        assert_eq!(
            after_query(&after_balance, &failed_there(None)),
            AfterQuery::Done(Transition::Reissue, MerchantEffect::None)
        );
        let (t, _) = after_send(&after_balance, &SendVerdict::OrderDead(code("SEND_FAILED")));
        assert_eq!(t, Transition::Reissue);
        let plain = claimed(Status::Sending, true, false);
        match after_query(
            &plain,
            &failed_there(Some("该用户今日领取红包个数超过限制")),
        ) {
            AfterQuery::Done(Transition::Failed { code, nothing_paid }, _) => {
                assert!(nothing_paid);
                assert!(code.message.contains("该用户今日领取红包个数超过限制"));
            }
            other => panic!("{other:?}"),
        }
        let (t, _) = after_send(&plain, &SendVerdict::OrderDead(code("SEND_FAILED")));
        assert!(matches!(t, Transition::Failed { .. }));
        assert_eq!(
            after_query(&plain, &QueryVerdict::AnotherOrder),
            AfterQuery::Done(Transition::Reissue, MerchantEffect::None)
        );
    }

    #[test]
    fn parameters_changed_is_looked_into_and_fails_only_without_an_order() {
        let mut fatal = claimed(Status::Pending, false, false);
        let (t, _) = after_send(&fatal, &SendVerdict::ParametersChanged(code("FATAL_ERROR")));
        assert!(matches!(
            t,
            Transition::Retry {
                needs_query: true,
                status: Status::Sending,
                delay_ms: MIN_RETRY_MS,
                ..
            }
        ));
        fatal.needs_query = true;
        fatal.awaiting = Awaiting::ParametersChanged(code("FATAL_ERROR"));
        match after_query(&fatal, &QueryVerdict::NotFound) {
            AfterQuery::Done(Transition::Failed { code, nothing_paid }, _) => {
                assert_eq!(code.code, "FATAL_ERROR");
                assert!(!nothing_paid);
                assert!(
                    code.message.contains("billno_deployment"),
                    "{}",
                    code.message
                );
                let t = Transition::Failed { code, nothing_paid };
                assert!(matches!(prize_effect(&t), Some(PrizeEffect::Failed { .. })));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn queries_settle_accepted_orders_and_send_only_when_not_found() {
        let c = claimed(Status::Sending, true, false);
        assert_eq!(after_query(&c, &QueryVerdict::NotFound), AfterQuery::Send);
        match after_query(&c, &QueryVerdict::Found(state(Status::Received))) {
            AfterQuery::Done(
                Transition::Accepted {
                    state,
                    follow_in_ms,
                },
                _,
            ) => {
                assert_eq!(state.status, Status::Received);
                assert_eq!(state.external_id.as_deref(), Some("D1"));
                assert_eq!(follow_in_ms, None);
            }
            other => panic!("{other:?}"),
        }
        // Still on its way at WeChat: wait and ask again, never resend.
        for verdict in [
            QueryVerdict::InProgress,
            QueryVerdict::RetryLater("x".into()),
        ] {
            assert!(matches!(
                after_query(&c, &verdict),
                AfterQuery::Done(
                    Transition::Retry {
                        needs_query: true,
                        ..
                    },
                    MerchantEffect::None
                )
            ));
        }
        assert!(matches!(
            after_query(&c, &QueryVerdict::RateLimited),
            AfterQuery::Done(_, MerchantEffect::SlowDown)
        ));
    }

    #[test]
    fn following_an_order_stops_when_it_can_change_no_more() {
        let up = after_follow(&QueryVerdict::Found(state(Status::Sent)), 0, 0);
        assert!(up.next_in_ms.is_some() && !up.slow_down);
        let up = after_follow(&QueryVerdict::Found(state(Status::Refunded)), 3, 0);
        assert_eq!(up.next_in_ms, None);
        let up = after_follow(&QueryVerdict::RateLimited, 3, 0);
        assert!(up.slow_down && up.state.is_none());
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
