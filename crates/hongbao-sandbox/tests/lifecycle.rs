//! What happens after sending (opening, refunds, fission shares), injected
//! faults and their reproducibility, and state that survives a restart.

mod common;

use std::time::Duration;

use common::{openid, start};
use hongbao_sandbox::{Faults, Probability};
use hongbao_wxpay::outcome::CallError;
use hongbao_wxpay::*;

async fn status(env: &common::Env, seq: u64) -> HbInfo {
    match env.client.query(&env.billno(seq)).await {
        QueryOutcome::Found(info) => *info,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_opened_packet_becomes_received_with_its_receiver() {
    let env = start(|c| {
        c.lifecycle.receive_probability = Probability::ALWAYS;
        c.lifecycle.receive_after = Duration::from_secs(60);
    })
    .await;
    env.client
        .send(&env.redpack(1, &openid(1), 188))
        .await
        .unwrap();
    assert_eq!(status(&env, 1).await.status, HbStatus::Sent);
    env.sandbox.with(|s| s.advance_clock(61));
    let info = status(&env, 1).await;
    assert_eq!(info.status, HbStatus::Received);
    assert_eq!(info.receivers.len(), 1);
    assert_eq!(
        info.receivers[0].openid.as_deref(),
        Some(openid(1).as_str())
    );
    assert_eq!(info.receivers[0].amount, Some(Fen::new(188)));
    assert!(
        info.receivers[0]
            .rcv_time
            .as_deref()
            .and_then(parse_beijing_time)
            .is_some()
    );
}

#[tokio::test]
async fn with_a_sending_period_a_packet_goes_sending_then_sent_then_received() {
    let env = start(|c| {
        c.lifecycle.sending_for = Duration::from_secs(10);
        c.lifecycle.receive_probability = Probability::ALWAYS;
        c.lifecycle.receive_after = Duration::from_secs(60);
    })
    .await;
    env.client
        .send(&env.redpack(1, &openid(1), 188))
        .await
        .unwrap();
    assert_eq!(status(&env, 1).await.status, HbStatus::Sending);
    env.sandbox.with(|s| s.advance_clock(11));
    assert_eq!(status(&env, 1).await.status, HbStatus::Sent);
    // The user opens it `receive_after` after it was issued.
    env.sandbox.with(|s| s.advance_clock(60));
    assert_eq!(status(&env, 1).await.status, HbStatus::Received);
}

#[tokio::test]
async fn an_unopened_packet_is_refunded_after_a_day_and_the_money_comes_back() {
    let env = start(|c| c.lifecycle.receive_probability = Probability::NEVER).await;
    let start_balance = env.sandbox.with(|s| s.balance());
    env.client
        .send(&env.redpack(1, &openid(1), 500))
        .await
        .unwrap();
    assert_eq!(env.sandbox.with(|s| s.balance()), start_balance - 500);
    env.sandbox.with(|s| s.advance_clock(23 * 3600));
    assert_eq!(status(&env, 1).await.status, HbStatus::Sent);
    env.sandbox.with(|s| s.advance_clock(3600));
    let refunding = status(&env, 1).await;
    assert_eq!(refunding.status, HbStatus::Refunding);
    assert_eq!(refunding.refund_amount, Some(Fen::new(500)));
    env.sandbox.with(|s| s.advance_clock(3600));
    let refunded = status(&env, 1).await;
    assert_eq!(refunded.status, HbStatus::Refund);
    assert_eq!(refunded.refund_amount, Some(Fen::new(500)));
    assert!(refunded.refund_time.is_some());
    assert_eq!(env.sandbox.with(|s| s.balance()), start_balance);
}

#[tokio::test]
async fn fission_shares_fill_hblist_as_users_open_them() {
    let env = start(|c| {
        c.lifecycle.receive_probability = Probability::ALWAYS;
        c.lifecycle.receive_after = Duration::from_secs(60);
        c.rules.legacy_fission = true;
    })
    .await;
    let group = SendGroupRedpack {
        mch_billno: env.billno(1),
        re_openid: OpenId::parse(&openid(1)).unwrap(),
        total_amount: Fen::new(2_000),
        total_num: 5,
        send_name: "a".into(),
        wishing: "b".into(),
        act_name: "c".into(),
        remark: "d".into(),
        scene_id: None,
        risk_info: None,
    };
    assert!(matches!(
        env.client.send(&group).await.unwrap(),
        SendOutcome::Sent(_)
    ));
    env.sandbox.with(|s| s.advance_clock(130));
    let partly = status(&env, 1).await;
    assert_eq!(partly.status, HbStatus::Sent);
    assert_eq!(partly.hb_type.as_deref(), Some("GROUP"));
    assert_eq!(partly.receivers.len(), 2);
    assert_eq!(
        partly.receivers[0].openid.as_deref(),
        Some(openid(1).as_str()),
        "the seed opens first"
    );
    env.sandbox.with(|s| s.advance_clock(300));
    let all = status(&env, 1).await;
    assert_eq!(all.status, HbStatus::Received);
    assert_eq!(all.receivers.len(), 5);
    let amounts: Vec<u64> = all
        .receivers
        .iter()
        .map(|r| r.amount.unwrap().get())
        .collect();
    assert_eq!(amounts.iter().sum::<u64>(), 2_000);
    assert!(amounts.iter().all(|a| *a >= 100), "{amounts:?}");
}

#[tokio::test]
async fn systemerror_after_commit_moved_the_money() {
    let env = start(|c| c.faults.systemerror_after = Probability::ALWAYS).await;
    let outcome = env
        .client
        .send(&env.redpack(1, &openid(1), 100))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        SendOutcome::QueryFirst {
            err_code: Some(ErrCode::SystemError),
            detail: "WeChat answered SYSTEMERROR".into()
        }
    );
    assert!(
        matches!(env.client.query(&env.billno(1)).await, QueryOutcome::Found(info) if info.status == HbStatus::Sent)
    );
    assert_eq!(env.sandbox.ledger().len(), 1);
}

#[tokio::test]
async fn systemerror_before_commit_moved_nothing() {
    let env = start(|c| c.faults.systemerror_before = Probability::ALWAYS).await;
    for seq in 1..=6 {
        let outcome = env
            .client
            .send(&env.redpack(seq, &openid(1), 100))
            .await
            .unwrap();
        assert!(
            matches!(outcome, SendOutcome::QueryFirst { .. }),
            "{outcome:?}"
        );
    }
    assert!(env.sandbox.ledger().is_empty());
}

#[tokio::test]
async fn a_dropped_answer_after_commit_is_no_answer_but_paid() {
    let env = start(|c| c.faults.drop_after = Probability::ALWAYS).await;
    let prepared = env
        .client
        .prepare(&env.redpack(1, &openid(1), 100))
        .unwrap();
    let result = env.client.call(&prepared).await;
    assert!(matches!(result, Err(CallError::NoAnswer(_))), "{result:?}");
    assert_eq!(env.sandbox.ledger().len(), 1);
    // Resending the same mch_billno never pays twice, whatever the answer.
    let _ = env.client.call(&prepared).await;
    let ledger = env.sandbox.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].times_requested, 2);
}

#[tokio::test]
async fn processing_stays_sending_then_sent() {
    let env = start(|c| {
        c.faults.processing = Probability::ALWAYS;
        c.lifecycle.processing_for = Duration::from_secs(30);
    })
    .await;
    let outcome = env
        .client
        .send(&env.redpack(1, &openid(1), 100))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        SendOutcome::QueryFirst {
            err_code: Some(ErrCode::Processing),
            ..
        }
    ));
    assert_eq!(status(&env, 1).await.status, HbStatus::Sending);
    // A resend while it is still processing says so again, and pays nothing more.
    let again = env
        .client
        .send(&env.redpack(1, &openid(1), 100))
        .await
        .unwrap();
    assert!(matches!(
        again,
        SendOutcome::QueryFirst {
            err_code: Some(ErrCode::Processing),
            ..
        }
    ));
    env.sandbox.with(|s| s.advance_clock(31));
    assert_eq!(status(&env, 1).await.status, HbStatus::Sent);
    assert_eq!(env.sandbox.ledger().len(), 1);
}

#[tokio::test]
async fn latency_is_added() {
    let env = start(|c| {
        c.faults.latency = Probability::ALWAYS;
        c.faults.latency_ms = 300;
    })
    .await;
    let started = std::time::Instant::now();
    env.client
        .send(&env.redpack(1, &openid(1), 100))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

async fn outcomes_under_seed(seed: u64) -> Vec<String> {
    let env = start(|c| {
        c.seed = Some(seed);
        c.faults = Faults {
            systemerror_before: Probability::from_ppm(200_000),
            systemerror_after: Probability::from_ppm(200_000),
            processing: Probability::from_ppm(200_000),
            garbage: Probability::from_ppm(200_000),
            ..Faults::default()
        };
    })
    .await;
    let mut outcomes = Vec::new();
    for seq in 1..=40 {
        let prepared = env
            .client
            .prepare(&env.redpack(seq, &openid(1), 100))
            .unwrap();
        outcomes.push(match env.client.call(&prepared).await {
            Ok(reply) => format!("{}/{:?}", reply.return_code(), reply.err_code()),
            Err(e) => format!("{e:?}").chars().take(20).collect(),
        });
        if seq % 10 == 0 {
            env.sandbox.with(|s| s.reset());
        }
    }
    outcomes
}

#[tokio::test]
async fn faults_are_reproducible_with_a_seed() {
    let a = outcomes_under_seed(7).await;
    let b = outcomes_under_seed(7).await;
    let c = outcomes_under_seed(8).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    let distinct: std::collections::BTreeSet<&String> = a.iter().collect();
    assert!(
        distinct.len() >= 4,
        "every fault kind shows up: {distinct:?}"
    );
}

#[tokio::test]
async fn the_ledger_survives_a_restart_and_replays_stay_idempotent() {
    let env = start(|c| c.lifecycle.receive_probability = Probability::NEVER).await;
    for seq in 1..=3 {
        env.client
            .send(&env.redpack(seq, &openid(u32::try_from(seq).unwrap()), 100))
            .await
            .unwrap();
    }
    env.sandbox.with(|s| s.top_up(10_000));
    env.sandbox.with(|s| s.advance_clock(3600));
    let balance = env.sandbox.with(|s| s.balance());
    let ledger = env.sandbox.ledger();
    let request = env.redpack(2, &openid(2), 100);
    let dir = env.dir;
    drop(env.sandbox);

    let env = common::start_in(dir, |c| {
        c.lifecycle.receive_probability = Probability::NEVER
    })
    .await;
    assert_eq!(env.sandbox.ledger().len(), ledger.len());
    assert_eq!(env.sandbox.with(|s| s.balance()), balance);
    let SendOutcome::Sent(again) = env.client.send(&request).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        again.send_listid.as_deref(),
        Some(ledger[1].send_listid.as_str())
    );
    assert_eq!(
        env.sandbox.with(|s| s.balance()),
        balance,
        "a replay after restart debits nothing"
    );
    // The clock offset survived too: 23 more hours make 24.
    env.sandbox.with(|s| s.advance_clock(23 * 3600 + 3600));
    assert_eq!(status(&env, 1).await.status, HbStatus::Refund);
    // And a new packet gets a new, later send_listid.
    let SendOutcome::Sent(new) = env
        .client
        .send(&env.redpack(9, &openid(9), 100))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(new.send_listid.unwrap() > ledger[2].send_listid);
}
