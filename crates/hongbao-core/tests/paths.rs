//! The dispatcher's other paths: pauses and resumes, final failures, a
//! record left mid-call by a vanished owner, re-issue after a confirmed
//! failure, and reconciliation of sent packets.

mod common;

use std::time::Duration;

use common::{assert_paid_exactly_once, openid, start, start_with};
use hongbao_core::dispatch::DispatchConfig;
use hongbao_core::model::Status;
use hongbao_core::model::{AttemptOutcome, AttemptRow, Scope, Transition};
use hongbao_sandbox::Probability;
use hongbao_wxpay::Fen;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notenough_pauses_the_merchant_and_a_top_up_and_resume_pay_exactly_once() {
    let env = start(|c| c.balance = Fen::new(250)).await;
    let first = env.send(&openid(1), 200).await;
    assert_eq!(
        env.payouts
            .wait(&first.id, Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Sent
    );
    let second = env.send(&openid(2), 200).await;
    let third = env.send(&openid(3), 150).await;
    let waited = env
        .payouts
        .wait(&second.id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waited.status, Status::Pending, "{waited:?}");
    let health = env.payouts.health().await;
    assert_eq!(health.status, "degraded");
    let pause = health.merchants[0].paused.clone().expect("paused");
    assert_eq!(
        (pause.reason.as_str(), pause.err_code.as_deref()),
        ("insufficient_balance", Some("NOTENOUGH"))
    );
    assert!(pause.message.contains("top it up"), "{}", pause.message);
    // Paused: nothing more is sent, even after waiting.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(env.sandbox.ledger().len(), 1);

    env.sandbox.with(|s| s.top_up(1_000));
    assert!(env.payouts.resume("main").await.unwrap());
    let records = env.settle_all(Duration::from_secs(20)).await;
    assert_paid_exactly_once(&env, &records);
    let second = env.payouts.ledger().get(&second.id).await.unwrap().unwrap();
    assert_eq!(
        second.mch_billno, waited.mch_billno,
        "the same mch_billno after the top-up"
    );
    // Whichever was refused with NOTENOUGH was asked about before it was
    // sent again; one not yet on the wire then was not called while paused
    // (both may have been on the wire at this test's fast pace).
    let mut refused = 0;
    for id in [&second.id, &third.id] {
        let attempts = env.payouts.ledger().attempts(id).await.unwrap();
        let apis: Vec<&str> = attempts.iter().map(|a| a.api.as_str()).collect();
        if attempts
            .iter()
            .any(|a| a.err_code.as_deref() == Some("NOTENOUGH"))
        {
            refused += 1;
            assert_eq!(
                apis,
                ["sendredpack", "gethbinfo", "sendredpack"],
                "asked WeChat before resending: {attempts:?}"
            );
        } else {
            assert_eq!(apis, ["sendredpack"], "called while paused: {attempts:?}");
        }
    }
    assert!(refused >= 1);
    assert_eq!(
        env.payouts
            .ledger()
            .get(&third.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Sent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_wechat_failed_after_notenough_is_reissued_under_a_new_billno() {
    let env = start(|c| {
        c.balance = Fen::new(100);
        c.rules.notenough_fails_order = true;
    })
    .await;
    let record = env.send(&openid(1), 200).await;
    let paused = env
        .payouts
        .wait(&record.id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paused.status, Status::Pending);
    env.sandbox.with(|s| s.top_up(1_000));
    env.payouts.resume("main").await.unwrap();
    let records = env.settle_all(Duration::from_secs(20)).await;
    assert_paid_exactly_once(&env, &records);
    let done = &records[0];
    assert_ne!(
        done.mch_billno, record.mch_billno,
        "the dead number was replaced"
    );
    // The old number is kept in the attempts; it was confirmed FAILED first.
    let attempts = env.payouts.ledger().attempts(&record.id).await.unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a.mch_billno == record.mch_billno && a.api == "gethbinfo")
    );
    let ledger = env.sandbox.ledger();
    assert_eq!(ledger.iter().filter(|e| e.paid).count(), 1);
    assert_eq!(
        ledger.iter().filter(|e| !e.paid).count(),
        1,
        "the FAILED order of the old number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_pauses_the_merchant_for_configuration() {
    let env = start_with(
        |_| {},
        |merchant| {
            let line = merchant
                .lines()
                .find(|l| l.starts_with("api_key"))
                .unwrap()
                .to_owned();
            *merchant = merchant.replace(&line, "api_key = \"0123456789abcdef0123456789abcdef\"");
        },
    )
    .await;
    let record = env.send(&openid(1), 188).await;
    let waited = env
        .payouts
        .wait(&record.id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waited.status, Status::Pending);
    let pause = env.payouts.health().await.merchants[0]
        .paused
        .clone()
        .unwrap();
    assert_eq!(
        (pause.reason.as_str(), pause.err_code.as_deref()),
        ("configuration", Some("SIGN_ERROR"))
    );
    assert!(env.sandbox.ledger().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipients_daily_limit_fails_the_record_with_its_messages() {
    let env = start(|c| c.rules.sendnum_limit = 1).await;
    let first = env.send(&openid(1), 100).await;
    env.payouts
        .wait(&first.id, Duration::from_secs(10))
        .await
        .unwrap();
    let second = env.send(&openid(1), 100).await;
    let failed = env
        .payouts
        .wait(&second.id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.err_code.as_deref(), Some("SENDNUM_LIMIT"));
    assert!(failed.message.as_deref().unwrap().contains("today"));
    assert!(failed.zh_message.as_deref().unwrap().contains("今日"));
    assert_eq!(
        env.payouts.health().await.status,
        "ok",
        "a recipient's limit pauses nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_left_mid_call_is_queried_before_anything_is_resent() {
    let mut env = start(|_| {}).await;
    env.stop_dispatcher().await;
    let record = env.send(&openid(1), 188).await;
    // A dispatcher claims it, sends it, and vanishes before recording.
    let ghost = env
        .payouts
        .ledger()
        .claim("ghost", "main", &Scope::All, 10, 300)
        .await
        .unwrap();
    assert_eq!(ghost.len(), 1);
    let merchant = env.payouts.merchants()["main"].clone();
    let sent = merchant.rails.send(&ghost[0]).await;
    assert!(
        matches!(sent.verdict, hongbao_core::model::SendVerdict::Accepted(_)),
        "{:?}",
        sent.verdict
    );
    assert_eq!(env.sandbox.ledger().len(), 1);

    tokio::time::sleep(Duration::from_millis(400)).await;
    env.start_dispatcher(DispatchConfig::new());
    let settled = env
        .payouts
        .wait(&record.id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.status, Status::Sent);
    let ledger = env.sandbox.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        ledger[0].times_requested, 1,
        "found by gethbinfo, not sent again"
    );
    let apis: Vec<String> = env
        .payouts
        .ledger()
        .attempts(&record.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.api)
        .collect();
    assert_eq!(apis, ["gethbinfo"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_outcome_after_the_lease_expired_is_not_recorded() {
    let mut env = start(|_| {}).await;
    env.stop_dispatcher().await;
    let record = env.send(&openid(1), 188).await;
    let ledger = env.payouts.ledger();
    let claimed = ledger
        .claim("slow", "main", &Scope::All, 10, 100)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Someone else took it over meanwhile.
    let taken = ledger
        .claim("fast", "main", &Scope::All, 10, 60_000)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert!(
        taken[0].needs_query,
        "a record left in flight is queried first"
    );
    let outcome = Transition::Failed {
        code: hongbao_core::model::Code::new("X", "late", "迟"),
        nothing_paid: true,
    };
    let applied = ledger
        .record(
            "slow",
            std::sync::Arc::new(vec![(claimed, outcome, Vec::new())]),
        )
        .await
        .unwrap();
    assert_eq!(applied, [false]);
    assert_eq!(
        ledger.get(&record.id).await.unwrap().unwrap().status,
        Status::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_started_in_the_same_millisecond_are_listed_in_the_order_they_were_made() {
    // A query answered at once and the send after it can start in the
    // same millisecond: the list of calls must still show the query first.
    let mut env = start(|_| {}).await;
    env.stop_dispatcher().await;
    let record = env.send(&openid(1), 188).await;
    let ledger = env.payouts.ledger();
    let claimed = ledger
        .claim("owner", "main", &Scope::All, 10, 60_000)
        .await
        .unwrap()
        .remove(0);
    let started_at_ms = 1_796_000_000_000;
    let calls: Vec<AttemptRow> = (0..12)
        .map(|i| AttemptRow {
            api: if i % 2 == 0 {
                "gethbinfo"
            } else {
                "sendredpack"
            },
            sends: i % 2 == 1,
            order_no: record.mch_billno.as_str().to_owned(),
            started_at_ms,
            latency_ms: 0,
            outcome: AttemptOutcome::Unknown,
            err_code: Some("SYSTEMERROR".into()),
            detail: Some(format!("call {i}")),
            answer: None,
        })
        .collect();
    let retry = Transition::Retry {
        status: Status::Sending,
        delay_ms: 60_000,
        needs_query: true,
        merchant_refused: false,
        code: None,
    };
    let applied = ledger
        .record("owner", std::sync::Arc::new(vec![(claimed, retry, calls)]))
        .await
        .unwrap();
    assert_eq!(applied, [true]);
    let listed: Vec<String> = ledger
        .attempts(&record.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.detail.unwrap_or_default())
        .collect();
    let made: Vec<String> = (0..12).map(|i| format!("call {i}")).collect();
    assert_eq!(listed, made);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_follows_sent_packets_until_opened_or_refunded() {
    let env = start(|c| {
        c.lifecycle.receive_probability = Probability::ALWAYS;
        c.lifecycle.receive_after = Duration::from_secs(1);
    })
    .await;
    let opened = env.send(&openid(1), 188).await;
    env.payouts
        .wait(&opened.id, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    make_reconcile_due(&env).await;
    let received = wait_status(&env, &opened.id, Status::Received).await;
    assert_eq!(received.wechat_status.as_deref(), Some("RECEIVED"));

    env.sandbox
        .with(|s| s.lifecycle.receive_probability = Probability::NEVER);
    let unopened = env.send(&openid(2), 300).await;
    env.payouts
        .wait(&unopened.id, Duration::from_secs(10))
        .await
        .unwrap();
    env.sandbox.with(|s| s.advance_clock(26 * 3600));
    make_reconcile_due(&env).await;
    let refunded = wait_status(&env, &unopened.id, Status::Refunded).await;
    assert_eq!(refunded.refund_amount, Some(Fen::new(300)));
    assert_eq!(refunded.wechat_status.as_deref(), Some("REFUND"));
}

async fn make_reconcile_due(env: &common::Env) {
    sqlx::query("UPDATE payouts SET reconcile_at = 0 WHERE reconcile_at IS NOT NULL")
        .execute(env.payouts.ledger().db().pool())
        .await
        .unwrap();
}

async fn wait_status(env: &common::Env, id: &str, status: Status) -> hongbao_core::model::Redpack {
    for _ in 0..100 {
        let record = env.payouts.ledger().get(id).await.unwrap().unwrap();
        if record.status == status {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never became {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_wechat_now_updates_the_record_and_keeps_the_call() {
    let env = start(|c| {
        c.lifecycle.receive_probability = Probability::ALWAYS;
        c.lifecycle.receive_after = Duration::from_secs(1);
    })
    .await;
    let record = env.send(&openid(3), 250).await;
    env.payouts
        .wait(&record.id, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let asked = env
        .payouts
        .wechat_status(
            env.tenant(),
            &hongbao_core::payouts::Selector::Id(record.id.clone()),
        )
        .await
        .unwrap();
    assert_eq!(asked.record.status, Status::Received);
    let attempts = env.payouts.ledger().attempts(&record.id).await.unwrap();
    let last = attempts.last().unwrap();
    assert_eq!(
        (last.api.as_str(), last.outcome.as_str()),
        ("gethbinfo", "found"),
        "{attempts:?}"
    );
    assert!(last.answer.as_deref().unwrap().contains("RECEIVED"));
}
