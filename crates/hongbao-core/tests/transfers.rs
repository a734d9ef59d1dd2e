//! The transfer rail against the sandbox: every bill created once under
//! the number stored before it, whatever the faults; NOT_ENOUGH paused and
//! resumed with the same bill; a bill followed to its end by queries alone
//! (no callback), its expiry included; cancels.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Env, openid, start};
use hongbao_core::model::{Rail, Redpack, Status, TransferInput};
use hongbao_core::store::ListFilter;
use hongbao_sandbox::{Faults, Probability, UserAction};

fn transfer(openid: &str, fen: u64) -> TransferInput {
    TransferInput {
        openid: openid.to_owned(),
        transfer_amount: fen,
        ..TransferInput::default()
    }
}

async fn create(env: &Env, openid: &str, fen: u64) -> Redpack {
    env.payouts
        .create_transfer(env.tenant(), &transfer(openid, fen), None, None, None)
        .await
        .unwrap()
        .record()
        .clone()
}

async fn transfers(env: &Env) -> Vec<Redpack> {
    let filter = ListFilter {
        rail: Some(Rail::Transfer),
        ..ListFilter::default()
    };
    env.payouts
        .list(env.tenant(), filter, 0, 100_000)
        .await
        .unwrap()
        .0
}

/// Waits (bounded) until `done` holds for every transfer; returns them.
async fn wait_all(env: &Env, timeout: Duration, done: impl Fn(&Redpack) -> bool) -> Vec<Redpack> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let records = transfers(env).await;
        let open: Vec<&Redpack> = records.iter().filter(|r| !done(r)).collect();
        if open.is_empty() {
            return records;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} transfers not there after {timeout:?}, e.g. {:?}",
            open.len(),
            records.len(),
            open.first().map(|r| (&r.id, r.status, &r.err_code))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Makes every followed bill due for its next query now (the schedule's
/// first query is a minute away).
async fn follow_now(env: &Env) {
    sqlx::query("UPDATE payouts SET reconcile_at = 0 WHERE reconcile_at IS NOT NULL")
        .execute(env.payouts.ledger().db().pool())
        .await
        .unwrap();
}

/// One bill per record at the sandbox, under the record's number, for its
/// amount and payee, and no other bill.
fn assert_one_bill_each(env: &Env, records: &[Redpack]) {
    let bills: BTreeMap<String, hongbao_sandbox::TransferEntry> = env
        .sandbox
        .transfers()
        .into_iter()
        .map(|b| (b.out_bill_no.clone(), b))
        .collect();
    let numbers: BTreeSet<&str> = records.iter().map(|r| r.mch_billno.as_str()).collect();
    assert_eq!(numbers.len(), records.len(), "every record its own number");
    for r in records {
        let bill = bills
            .get(&r.mch_billno)
            .unwrap_or_else(|| panic!("{} ({}) has no bill", r.id, r.mch_billno));
        assert_eq!(bill.transfer_amount, r.total_amount.get(), "{}", r.id);
        assert_eq!(bill.openid, r.re_openid, "{}", r.id);
        assert_eq!(
            r.send_listid.as_deref(),
            Some(bill.transfer_bill_no.as_str()),
            "{}",
            r.id
        );
    }
    assert_eq!(bills.len(), records.len(), "no bill beyond the records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_transfers_with_ambiguous_creates_make_one_bill_each() {
    let env = start(|c| {
        c.faults = Faults {
            systemerror_before: Probability::from_ppm(100_000),
            systemerror_after: Probability::from_ppm(100_000),
            drop_after: Probability::from_ppm(100_000),
            garbage: Probability::from_ppm(50_000),
            processing: Probability::from_ppm(50_000),
            ..Faults::default()
        };
        c.lifecycle.processing_for = Duration::from_secs(1);
        c.transfers.confirm_probability = Probability::NEVER;
        c.transfers.create_per_second = 0;
        c.transfers.query_per_second = 0;
    })
    .await;
    for n in 0..1000 {
        let r = create(&env, &openid(n), 10 + u64::from(n)).await;
        assert_eq!(r.status, Status::Pending);
        assert_eq!(r.rail, Rail::Transfer);
    }
    let records = wait_all(&env, Duration::from_secs(240), |r| {
        r.status == Status::AwaitingConfirmation
    })
    .await;
    assert_eq!(records.len(), 1000);
    assert_one_bill_each(&env, &records);
    for r in &records {
        assert!(
            r.package.as_deref().is_some_and(|p| !p.is_empty()),
            "{}",
            r.id
        );
        assert!(r.expires_at.is_some(), "{}", r.id);
    }
    let counters = env.sandbox.with(|s| s.counters());
    for kind in [
        "transfer_systemerror_before",
        "transfer_systemerror_after",
        "transfer_drop_after",
        "transfer_garbage",
        "transfer_processing",
    ] {
        assert!(
            counters.faults.get(kind).copied().unwrap_or(0) > 0,
            "{kind} was injected: {:?}",
            counters.faults
        );
    }
    // Doubt was resolved by queries and by the same bill sent again.
    let creates = counters
        .requests
        .get("transfer_create")
        .copied()
        .unwrap_or(0);
    let queries = counters
        .requests
        .get("transfer_query")
        .copied()
        .unwrap_or(0);
    assert!(creates > 1000, "creates {creates}");
    assert!(queries > 0, "queries {queries}");
    println!(
        "1000 transfers: {creates} creates, {queries} queries, faults {:?}",
        counters.faults
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_enough_pauses_the_merchant_and_resuming_sends_the_same_bill() {
    let env = start(|c| {
        c.operations_balance = hongbao_wxpay::Fen::new(50);
        c.transfers.confirm_probability = Probability::NEVER;
    })
    .await;
    let record = create(&env, &openid(1), 100).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let paused = loop {
        let pauses = env.payouts.ledger().pauses().await.unwrap();
        if let Some(p) = pauses.into_iter().next() {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "never paused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(paused.err_code.as_deref(), Some("NOT_ENOUGH"));
    let waiting = env.payouts.ledger().get(&record.id).await.unwrap().unwrap();
    assert!(!waiting.status.is_settled(), "{:?}", waiting.status);
    assert_eq!(waiting.err_code.as_deref(), Some("NOT_ENOUGH"));
    assert!(env.sandbox.transfers().is_empty(), "nothing created");

    env.sandbox.with(|s| s.top_up_operations(1_000_000));
    assert!(env.payouts.resume("main").await.unwrap());
    let records = wait_all(&env, Duration::from_secs(20), |r| {
        r.status == Status::AwaitingConfirmation
    })
    .await;
    assert_eq!(records[0].mch_billno, record.mch_billno, "the same bill");
    assert_one_bill_each(&env, &records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_callbacks_queries_follow_a_bill_to_its_end_and_to_its_expiry() {
    let env = start(|c| {
        c.transfers.confirm_probability = Probability::NEVER;
        c.transfers.transferring_for = Duration::from_secs(1);
    })
    .await;
    let paid = create(&env, &openid(1), 100).await;
    let expired = create(&env, &openid(2), 200).await;
    wait_all(&env, Duration::from_secs(20), |r| {
        r.status == Status::AwaitingConfirmation
    })
    .await;
    // No notify_url: WeChat calls nobody back. The user confirms one bill.
    env.sandbox
        .with(|s| s.user_acts(&paid.mch_billno, Some(UserAction::Confirm), None))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    follow_now(&env).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = env.payouts.ledger().get(&paid.id).await.unwrap().unwrap();
        if r.status == Status::Succeeded {
            assert_eq!(r.wechat_status.as_deref(), Some("SUCCESS"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{:?}", r.status);
        follow_now(&env).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The other is never confirmed: 24 hours later WeChat closes it.
    env.sandbox.with(|s| s.advance_clock(24 * 3600 + 60));
    follow_now(&env).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = env
            .payouts
            .ledger()
            .get(&expired.id)
            .await
            .unwrap()
            .unwrap();
        if r.status == Status::Failed {
            assert_eq!(r.fail_reason.as_deref(), Some("OVERDUE_CLOSE"));
            assert_eq!(r.err_code.as_deref(), Some("OVERDUE_CLOSE"));
            assert!(
                r.message
                    .as_deref()
                    .unwrap_or_default()
                    .contains("24 hours")
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{:?}", r.status);
        follow_now(&env).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let records = transfers(&env).await;
    assert_one_bill_each(&env, &records);
    let bills = env.sandbox.transfers();
    assert_eq!(bills.iter().filter(|b| b.paid).count(), 1, "one paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bill_is_cancelled_before_its_user_confirms_and_not_after() {
    let env = start(|c| {
        c.transfers.confirm_probability = Probability::NEVER;
        c.transfers.canceling_for = Duration::from_secs(1);
        c.transfers.transferring_for = Duration::from_secs(30);
    })
    .await;
    let first = create(&env, &openid(1), 100).await;
    let second = create(&env, &openid(2), 100).await;
    wait_all(&env, Duration::from_secs(20), |r| {
        r.status == Status::AwaitingConfirmation
    })
    .await;
    let cancelling = env
        .payouts
        .cancel_transfer(env.tenant(), &first.id)
        .await
        .unwrap();
    assert_eq!(cancelling.status, Status::Cancelling);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Cancelling again is safe, and tells the end.
    let cancelled = env
        .payouts
        .cancel_transfer(env.tenant(), &first.id)
        .await
        .unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    assert_eq!(cancelled.fail_reason.as_deref(), Some("MCH_CANCEL"));

    env.sandbox
        .with(|s| s.user_acts(&second.mch_billno, Some(UserAction::Confirm), None))
        .unwrap();
    let refused = env
        .payouts
        .cancel_transfer(env.tenant(), &second.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            hongbao_core::payouts::CancelError::Refused(_)
                | hongbao_core::payouts::CancelError::NotCancellable(_)
        ),
        "{refused:?}"
    );
    let bills = env.sandbox.transfers();
    assert_eq!(bills.len(), 2, "no bill was created again");
}
