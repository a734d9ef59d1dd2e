//! Prize claims under contention, on SQLite (or PostgreSQL with
//! `TEST_POSTGRES_URL`): one claim per prize, the budget and the daily
//! count never exceeded however many claims race, and what a refused
//! payout gives back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_paid_exactly_once, openid, start};
use hongbao_core::prize::{
    self, Activity, ActivitySpec, ClaimError, Prize, PrizeInput, PrizeKind, PrizeStatus, Refusal,
};

async fn activity(env: &common::Env, spec: ActivitySpec) -> Activity {
    let merchant = &env.payouts.merchants()["main"];
    let def = prize::validate_activity(&spec, &merchant.config).unwrap();
    prize::create_activity(env.payouts.ledger(), "acme", &def)
        .await
        .unwrap()
        .0
}

async fn grant(env: &common::Env, activity: &Activity, user: &str, fen: u64) -> Prize {
    let input = PrizeInput {
        user: user.into(),
        kind: PrizeKind::CashRedpack,
        amount: Some(fen),
        openid: None,
    };
    prize::validate_grant(&input, activity).unwrap();
    prize::grant(env.payouts.ledger(), activity, &input, None)
        .await
        .unwrap()
        .0
}

/// Claims every (prize, openid) at once; returns the outcomes in order.
async fn claim_all(
    env: &common::Env,
    claims: Vec<(String, String)>,
) -> Vec<Result<Prize, ClaimError>> {
    let tenant = Arc::new(env.tenant().clone());
    let tasks = claims.into_iter().map(|(id, who)| {
        let (payouts, tenant) = (env.payouts.clone(), tenant.clone());
        tokio::spawn(async move { prize::claim(&payouts, &tenant, &id, &who).await })
    });
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

fn refusals(outcomes: &[Result<Prize, ClaimError>]) -> Vec<&'static str> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Err(ClaimError::Refused(r)) => Some(r.code()),
            Err(other) => panic!("{other}"),
            Ok(_) => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_of_one_prize_store_one_payout() {
    let env = start(|_| {}).await;
    let spring = activity(&env, ActivitySpec::named("spring")).await;
    let prize = grant(&env, &spring, "u-1", 188).await;
    let outcomes = claim_all(&env, vec![(prize.id.clone(), openid(1)); 50]).await;
    let won: Vec<&Prize> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(won.len(), 1);
    assert_eq!(won[0].status, PrizeStatus::Issuing);
    for code in refusals(&outcomes) {
        assert!(
            code == "prize_claim_in_progress" || code == "prize_already_claimed",
            "{code}"
        );
    }
    let records = env.settle_all(Duration::from_secs(30)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].prize_id.as_deref(), Some(prize.id.as_str()));
    assert_paid_exactly_once(&env, &records);
    let after = prize::get_prize(env.payouts.ledger(), "acme", &prize.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, PrizeStatus::Issued);
    assert_eq!(
        after.mch_billno.as_deref(),
        Some(records[0].mch_billno.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_never_exceed_the_budget_or_the_daily_count() {
    let env = start(|_| {}).await;
    let mut spec = ActivitySpec::named("capped");
    spec.budget = Some(500);
    let capped = activity(&env, spec).await;
    let mut claims = Vec::new();
    for n in 0..10 {
        let prize = grant(&env, &capped, &format!("u-{n}"), 100).await;
        claims.push((prize.id, openid(n)));
    }
    let outcomes = claim_all(&env, claims).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 5);
    assert!(
        refusals(&outcomes)
            .iter()
            .all(|c| *c == "activity_budget_exhausted")
    );
    let capped = prize::get_activity(env.payouts.ledger(), "acme", "capped")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(capped.committed.get(), 500);
    assert_eq!(capped.budget_left().map(|f| f.get()), Some(0));

    let mut spec = ActivitySpec::named("twice-a-day");
    spec.per_user_daily = Some(2);
    let daily = activity(&env, spec).await;
    let mut claims = Vec::new();
    for _ in 0..6 {
        let prize = grant(&env, &daily, "u-same", 100).await;
        claims.push((prize.id, openid(77)));
    }
    let outcomes = claim_all(&env, claims).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 2);
    assert!(
        refusals(&outcomes)
            .iter()
            .all(|c| *c == "daily_claim_limit")
    );

    let records = env.settle_all(Duration::from_secs(30)).await;
    assert_eq!(records.len(), 7);
    assert_paid_exactly_once(&env, &records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_payout_gives_back_the_budget_and_the_daily_count() {
    let env = start(|c| c.rules.sendnum_limit = 0).await;
    let mut spec = ActivitySpec::named("refused");
    spec.budget = Some(100);
    spec.per_user_daily = Some(1);
    let refused = activity(&env, spec).await;
    let prize = grant(&env, &refused, "u-1", 100).await;
    let claimed = prize::claim(&env.payouts, env.tenant(), &prize.id, &openid(1))
        .await
        .unwrap();
    let back = prize::wait(&env.payouts, claimed, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(back.status, PrizeStatus::Pending);
    assert_eq!(back.last_err_code.as_deref(), Some("SENDNUM_LIMIT"));
    assert_eq!(back.payout_id, None);
    let refused = prize::get_activity(env.payouts.ledger(), "acme", "refused")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refused.committed.get(), 0);
    // The daily count was given back too: once WeChat's limit allows it,
    // the same openid claims again, under a new mch_billno, and is paid.
    env.sandbox.with(|s| s.rules.sendnum_limit = 10);
    let again = prize::claim(&env.payouts, env.tenant(), &prize.id, &openid(1))
        .await
        .unwrap();
    let paid = prize::wait(&env.payouts, again, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(paid.status, PrizeStatus::Issued);
    assert_eq!(paid.claims, 2);
    // And the spent budget now refuses another prize.
    let other = grant(&env, &refused, "u-2", 100).await;
    match prize::claim(&env.payouts, env.tenant(), &other.id, &openid(2)).await {
        Err(ClaimError::Refused(Refusal::BudgetExhausted { .. })) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_check_that_cannot_be_made_refuses_without_storing_or_leaking() {
    let wrong = "0123456789abcdef0123456789abcdef";
    let env = common::start_with(
        |_| {},
        |toml| {
            let start = toml.find("app_secret = \"").unwrap() + "app_secret = \"".len();
            toml.replace_range(start..start + 32, wrong);
        },
    )
    .await;
    let draw = activity(&env, ActivitySpec::named("draw")).await;
    let prize = grant(&env, &draw, "u-1", 100).await;
    match prize::claim(&env.payouts, env.tenant(), &prize.id, &openid(1)).await {
        Err(ClaimError::Refused(refusal @ Refusal::FollowCheckFailed(_))) => {
            assert_eq!(refusal.code(), "follow_check_unavailable");
            let message = refusal.message();
            assert!(message.contains("40125"), "{message}");
            assert!(!message.contains(wrong), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let after = prize::get_prize(env.payouts.ledger(), "acme", &prize.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, PrizeStatus::Pending);
    assert_eq!(after.claims, 0);
    assert!(env.settle_all(Duration::from_secs(1)).await.is_empty());
}
