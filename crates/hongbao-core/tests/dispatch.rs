//! The dispatcher against the sandbox: paid exactly once, whatever the faults.

mod common;

use std::time::Duration;

use common::{assert_paid_exactly_once, openid, start};
use hongbao_core::model::Status;
use hongbao_sandbox::{Faults, Probability};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_is_stored_with_its_billno_then_sent() {
    let env = start(|_| {}).await;
    let record = env.send(&openid(1), 188).await;
    assert_eq!(record.status, Status::Pending);
    let mch_id = &env.sandbox.identity().secrets.mch_id;
    assert!(record.mch_billno.starts_with(mch_id.as_str()));
    assert_eq!(record.mch_billno.len(), mch_id.len() + 18);
    let settled = env
        .payouts
        .wait(&record.id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.status, Status::Sent, "{settled:?}");
    assert!(settled.send_listid.is_some());
    assert_eq!(settled.attempts, 1);
    assert_paid_exactly_once(&env, &[settled]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_kind_still_pays_exactly_once() {
    let env = start(|c| {
        c.faults = Faults {
            systemerror_before: Probability::from_ppm(200_000),
            systemerror_after: Probability::from_ppm(200_000),
            drop_after: Probability::from_ppm(200_000),
            processing: Probability::from_ppm(200_000),
            ..Faults::default()
        };
        c.lifecycle.processing_for = Duration::from_secs(2);
        c.rules.rate_per_minute = 0;
    })
    .await;
    for n in 0..60 {
        env.send(&openid(n), 100 + u64::from(n)).await;
    }
    let records = env.settle_all(Duration::from_secs(120)).await;
    assert_eq!(records.len(), 60);
    assert_paid_exactly_once(&env, &records);
    let faults = env.sandbox.with(|s| s.counters()).faults;
    for kind in [
        "systemerror_before",
        "systemerror_after",
        "drop_after",
        "processing",
    ] {
        assert!(
            faults.get(kind).copied().unwrap_or(0) > 0,
            "{kind} was injected: {faults:?}"
        );
    }
}
