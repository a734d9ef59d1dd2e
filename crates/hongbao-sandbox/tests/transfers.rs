//! APIv3 transfer bills as the sandbox simulates them, driven through the
//! SDK's client: signatures, signed answers, WeChat's field rules and
//! codes, idempotency, the operations account, the state machine on the
//! sandbox's clock, queries, cancel, faults, callbacks and the user.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{openid, start};
use hongbao_sandbox::{Probability, UserAction, V3Signer};
use hongbao_wxpay::v3::client::CREATE_PATH;
use hongbao_wxpay::v3::*;
use hongbao_wxpay::{PauseReason, v3};
use time::OffsetDateTime;

fn no_auto_confirm(c: &mut hongbao_sandbox::SandboxConfig) {
    c.transfers.confirm_probability = Probability::NEVER;
    c.transfers.callback_duplicate_probability = Probability::NEVER;
}

/// Sends `body` as a create, signed, bypassing the SDK's validation.
async fn raw_create(client: &TransferClient, body: &serde_json::Value) -> TransferOutcome {
    let request = client.sign(
        Method::Post,
        CREATE_PATH,
        &body.to_string(),
        OffsetDateTime::now_utc(),
    );
    classify(Operation::Create, &client.call(request).await)
}

fn valid_body(env: &common::Env, out_bill_no: &str) -> serde_json::Value {
    serde_json::json!({
        "appid": env.secrets().appid,
        "out_bill_no": out_bill_no,
        "transfer_scene_id": "1000",
        "openid": openid(1),
        "transfer_amount": 100,
        "transfer_remark": "新年抽奖",
        "transfer_scene_report_infos": [
            {"info_type": "活动名称", "info_content": "新年抽奖"},
            {"info_type": "奖励说明", "info_content": "抽奖现金奖励"}
        ]
    })
}

fn refused_with(outcome: &TransferOutcome) -> (String, String) {
    let e = outcome.error().unwrap_or_else(|| panic!("{outcome:?}"));
    (e.code.as_str().to_owned(), e.message.clone())
}

#[tokio::test]
async fn a_bill_is_created_awaiting_the_user_and_the_same_bill_is_replayed() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let before = env.sandbox.with(|s| s.operations_balance());
    let prepared = client
        .prepare(&env.transfer("T0001", &openid(1), 188))
        .unwrap();
    let TransferOutcome::AwaitingUser(first) = client.create(&prepared).await else {
        panic!()
    };
    let package = first.package_info.clone().unwrap();
    assert!(!package.is_empty());
    // The same out_bill_no and parameters: the same bill and package, one debit.
    let TransferOutcome::AwaitingUser(again) = client.create(&prepared).await else {
        panic!()
    };
    assert_eq!(again.transfer_bill_no, first.transfer_bill_no);
    assert_eq!(again.package_info.as_deref(), Some(package.as_str()));
    assert_eq!(env.sandbox.with(|s| s.operations_balance()), before - 188);
    let bills = env.sandbox.transfers();
    assert_eq!(bills.len(), 1);
    assert_eq!(bills[0].times_requested, 2);
    // Queries by either number see it waiting for the user.
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::AwaitingUser(_)
    ));
    let TransferOutcome::AwaitingUser(by_wechat_no) = client
        .query_by_transfer_bill_no(&first.transfer_bill_no)
        .await
    else {
        panic!()
    };
    assert_eq!(by_wechat_no.transfer_amount, Some(188));
    assert_eq!(by_wechat_no.openid.as_deref(), Some(openid(1).as_str()));
}

#[tokio::test]
async fn the_same_out_bill_no_with_other_parameters_is_invalid_request() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let first = client
        .prepare(&env.transfer("T0002", &openid(1), 100))
        .unwrap();
    assert!(matches!(
        client.create(&first).await,
        TransferOutcome::AwaitingUser(_)
    ));
    let other = client
        .prepare(&env.transfer("T0002", &openid(1), 101))
        .unwrap();
    let outcome = client.create(&other).await;
    assert!(matches!(outcome, TransferOutcome::ParametersChanged(_)));
    assert_eq!(
        refused_with(&outcome),
        (
            "INVALID_REQUEST".into(),
            "单号已存在但信息不一致，请查单后比较确认".into()
        )
    );
    assert_eq!(env.sandbox.transfers().len(), 1);
}

#[tokio::test]
async fn a_signature_from_another_key_or_serial_is_401_sign_error() {
    let env = start(no_auto_confirm).await;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../hongbao-wxpay/tests/data");
    let foreign = hongbao_wxpay::ClientIdentity::from_pem(
        &std::fs::read(format!("{fixtures}/apiclient_cert.pem")).unwrap(),
        &std::fs::read(format!("{fixtures}/apiclient_key.pem")).unwrap(),
    )
    .unwrap();
    let good = env.transfers(false);
    let signer = MerchantSigner::from_identity(env.merchant().mch_id, &foreign).unwrap();
    let bad = TransferClient::new(signer, good.keys().clone(), transport(&env));
    let prepared = bad
        .prepare(&env.transfer("T0003", &openid(1), 100))
        .unwrap();
    let outcome = bad.create(&prepared).await;
    assert!(
        matches!(
            outcome,
            TransferOutcome::PauseMerchant(PauseReason::Configuration, ref e)
                if e.status == 401 && e.code == V3Code::SignError
        ),
        "{outcome:?}"
    );
    // A stale timestamp is refused the same way.
    let stale = good.sign(
        Method::Get,
        "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/T0003",
        "",
        OffsetDateTime::now_utc() - time::Duration::minutes(6),
    );
    let outcome = classify(Operation::Query, &good.call(stale).await);
    assert_eq!(refused_with(&outcome).0, "SIGN_ERROR");
    assert!(env.sandbox.transfers().is_empty());
}

fn transport(env: &common::Env) -> Arc<dyn V3Transport> {
    let mut config = hongbao_wxpay::TransportConfig::new(env.sandbox.api_base());
    config.extra_roots =
        hongbao_wxpay::transport::certificates_from_pem(env.sandbox.identity().ca_pem.as_bytes())
            .unwrap();
    Arc::new(HttpV3Transport::new(&config).unwrap())
}

#[tokio::test]
async fn answers_signed_with_the_platform_certificate_need_it_configured() {
    let env = start(|c| {
        no_auto_confirm(c);
        c.transfers.signer = V3Signer::PlatformCertificate;
    })
    .await;
    let only_public_key = env.transfers(false);
    let prepared = only_public_key
        .prepare(&env.transfer("T0004", &openid(1), 100))
        .unwrap();
    // Unverifiable: never taken at its word, even though the bill exists.
    assert!(matches!(
        only_public_key.create(&prepared).await,
        TransferOutcome::Ambiguous { .. }
    ));
    // While switching, both keys are configured: accepted.
    let both = env.transfers(true);
    assert!(matches!(
        both.create(&prepared).await,
        TransferOutcome::AwaitingUser(_)
    ));
}

#[tokio::test]
async fn field_rules_are_checked_with_wechats_codes() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let mut null = valid_body(&env, "F1");
    null["notify_url"] = serde_json::Value::Null;
    let outcome = raw_create(&client, &null).await;
    assert!(
        matches!(outcome, TransferOutcome::Refused(_)),
        "{outcome:?}"
    );
    let (code, message) = refused_with(&outcome);
    assert_eq!(code, "PARAM_ERROR");
    assert!(
        message.contains("请求中含有未在API文档中定义的参数"),
        "{message}"
    );

    let mut one_report = valid_body(&env, "F2");
    one_report["transfer_scene_report_infos"] =
        serde_json::json!([{"info_type": "活动名称", "info_content": "x"}]);
    assert_eq!(
        refused_with(&raw_create(&client, &one_report).await).0,
        "PARAM_ERROR"
    );

    let mut as_string = valid_body(&env, "F3");
    as_string["transfer_scene_report_infos"] =
        as_string["transfer_scene_report_infos"].to_string().into();
    assert_eq!(
        refused_with(&raw_create(&client, &as_string).await).0,
        "PARAM_ERROR"
    );

    let mut perception = valid_body(&env, "F4");
    perception["user_recv_perception"] = "红包".into();
    let outcome = raw_create(&client, &perception).await;
    assert!(matches!(outcome, TransferOutcome::Refused(_)));
    assert_eq!(refused_with(&outcome).0, "INVALID_REQUEST");

    let mut too_small = valid_body(&env, "F5");
    too_small["transfer_amount"] = 9.into();
    assert_eq!(
        refused_with(&raw_create(&client, &too_small).await).0,
        "PARAM_ERROR"
    );

    let mut no_name = valid_body(&env, "F6");
    no_name["transfer_amount"] = 200_000.into();
    let (code, message) = refused_with(&raw_create(&client, &no_name).await);
    assert_eq!(code, "PARAM_ERROR");
    assert!(message.contains("user_name"), "{message}");

    let mut long_remark = valid_body(&env, "F7");
    long_remark["transfer_remark"] = "奖".repeat(33).into();
    assert_eq!(
        refused_with(&raw_create(&client, &long_remark).await).0,
        "PARAM_ERROR"
    );

    let mut query_url = valid_body(&env, "F8");
    query_url["notify_url"] = "https://pay.example.com/notify?m=1".into();
    assert_eq!(
        refused_with(&raw_create(&client, &query_url).await).0,
        "PARAM_ERROR"
    );

    // The merchant's set-up, the same for every bill: pause, don't fail row by row.
    let mut appid = valid_body(&env, "F9");
    appid["appid"] = "wx0000000000000000".into();
    assert!(matches!(
        raw_create(&client, &appid).await,
        TransferOutcome::PauseMerchant(PauseReason::Configuration, _)
    ));
    let mut scene = valid_body(&env, "F10");
    scene["transfer_scene_id"] = "1005".into();
    assert!(matches!(
        raw_create(&client, &scene).await,
        TransferOutcome::PauseMerchant(PauseReason::Configuration, _)
    ));
    assert!(env.sandbox.transfers().is_empty(), "nothing created");
    // The valid body itself is fine.
    assert!(matches!(
        raw_create(&client, &valid_body(&env, "F11")).await,
        TransferOutcome::AwaitingUser(_)
    ));
}

#[tokio::test]
async fn an_address_off_the_allow_list_stops_the_merchant() {
    let env = start(|c| {
        no_auto_confirm(c);
        c.transfers.ip_allowlist.insert("10.0.0.1".parse().unwrap());
    })
    .await;
    let client = env.transfers(false);
    let outcome = raw_create(&client, &valid_body(&env, "IP1")).await;
    assert!(matches!(
        outcome,
        TransferOutcome::PauseMerchant(PauseReason::Configuration, _)
    ));
    assert_eq!(refused_with(&outcome).1, "此IP地址不允许调用该接口");
}

#[tokio::test]
async fn not_enough_commits_nothing_and_the_same_bill_pays_after_a_top_up() {
    let env = start(|c| {
        no_auto_confirm(c);
        c.operations_balance = hongbao_wxpay::Fen::new(50);
    })
    .await;
    let client = env.transfers(false);
    let prepared = client
        .prepare(&env.transfer("NE1", &openid(1), 100))
        .unwrap();
    let outcome = client.create(&prepared).await;
    assert!(matches!(
        outcome,
        TransferOutcome::PauseMerchant(PauseReason::InsufficientBalance, _)
    ));
    assert_eq!(refused_with(&outcome).0, "NOT_ENOUGH");
    assert!(env.sandbox.transfers().is_empty());
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::NotFound(_)
    ));
    env.sandbox.with(|s| s.top_up_operations(100));
    assert!(matches!(
        client.create(&prepared).await,
        TransferOutcome::AwaitingUser(_)
    ));
    assert_eq!(env.sandbox.with(|s| s.operations_balance()), 50);
}

#[tokio::test]
async fn a_confirmed_bill_is_transfering_then_success() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let prepared = client
        .prepare(&env.transfer("SM1", &openid(1), 100))
        .unwrap();
    client.create(&prepared).await;
    // Only the payee can confirm.
    let other = env
        .sandbox
        .with(|s| s.user_acts("SM1", Some(UserAction::Confirm), Some(&openid(2))));
    assert!(other.unwrap_err().contains("不一致"));
    env.sandbox
        .with(|s| s.user_acts("SM1", Some(UserAction::Confirm), Some(&openid(1))))
        .unwrap();
    let TransferOutcome::Pending(bill) = client.query(prepared.out_bill_no()).await else {
        panic!()
    };
    assert_eq!(bill.state, TransferState::Transfering);
    // A confirmed bill can no longer be cancelled.
    assert!(matches!(
        client.cancel(prepared.out_bill_no()).await,
        TransferOutcome::Refused(_)
    ));
    env.sandbox.with(|s| s.advance_clock(5));
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::Succeeded(_)
    ));
    assert!(env.sandbox.transfers()[0].paid);
}

#[tokio::test]
async fn an_unconfirmed_bill_closes_after_24_hours_with_the_money_back() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let before = env.sandbox.with(|s| s.operations_balance());
    let prepared = client
        .prepare(&env.transfer("EX1", &openid(1), 300))
        .unwrap();
    client.create(&prepared).await;
    env.sandbox.with(|s| s.advance_clock(24 * 3600 - 10));
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::AwaitingUser(_)
    ));
    env.sandbox.with(|s| s.advance_clock(20));
    let TransferOutcome::Closed(bill) = client.query(prepared.out_bill_no()).await else {
        panic!()
    };
    assert_eq!(bill.state, TransferState::Fail);
    assert_eq!(bill.fail_reason.as_deref(), Some("OVERDUE_CLOSE"));
    assert_eq!(env.sandbox.with(|s| s.operations_balance()), before);
}

#[tokio::test]
async fn a_cancelled_bill_is_canceling_then_cancelled_with_the_money_back() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let before = env.sandbox.with(|s| s.operations_balance());
    let prepared = client
        .prepare(&env.transfer("CA1", &openid(1), 300))
        .unwrap();
    client.create(&prepared).await;
    let TransferOutcome::Pending(bill) = client.cancel(prepared.out_bill_no()).await else {
        panic!()
    };
    assert_eq!(bill.state, TransferState::Canceling);
    // The user is too late.
    assert!(
        env.sandbox
            .with(|s| s.user_acts("CA1", Some(UserAction::Confirm), None))
            .is_err()
    );
    env.sandbox.with(|s| s.advance_clock(5));
    let TransferOutcome::Closed(bill) = client.query(prepared.out_bill_no()).await else {
        panic!()
    };
    assert_eq!(bill.state, TransferState::Cancelled);
    assert_eq!(env.sandbox.with(|s| s.operations_balance()), before);
    // Cancelling again answers the same final state.
    assert!(matches!(
        client.cancel(prepared.out_bill_no()).await,
        TransferOutcome::Closed(_)
    ));
}

#[tokio::test]
async fn a_refused_transfer_fails_with_its_reason() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let prepared = client
        .prepare(&env.transfer("FR1", &openid(1), 100))
        .unwrap();
    client.create(&prepared).await;
    env.sandbox
        .with(|s| {
            s.user_acts(
                "FR1",
                Some(UserAction::Fail {
                    reason: "TRANSFER_RISK".into(),
                }),
                None,
            )
        })
        .unwrap();
    env.sandbox.with(|s| s.advance_clock(5));
    let TransferOutcome::Closed(bill) = client.query(prepared.out_bill_no()).await else {
        panic!()
    };
    assert_eq!(bill.fail_reason.as_deref(), Some("TRANSFER_RISK"));
}

#[tokio::test]
async fn a_foreign_openid_fails_openid_invalid_without_locking_money() {
    let env = start(no_auto_confirm).await;
    env.sandbox
        .with(|s| s.set_foreign([openid(9)].into_iter().collect()));
    let client = env.transfers(false);
    let before = env.sandbox.with(|s| s.operations_balance());
    let prepared = client
        .prepare(&env.transfer("OI1", &openid(9), 100))
        .unwrap();
    let TransferOutcome::Closed(bill) = client.create(&prepared).await else {
        panic!()
    };
    assert_eq!(bill.fail_reason.as_deref(), Some("OPENID_INVALID"));
    assert_eq!(env.sandbox.with(|s| s.operations_balance()), before);
}

#[tokio::test]
async fn queries_find_bills_of_the_last_30_days_only() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let prepared = client
        .prepare(&env.transfer("Q30", &openid(1), 100))
        .unwrap();
    client.create(&prepared).await;
    env.sandbox.with(|s| s.advance_clock(29 * 86_400));
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::Closed(_)
    ));
    env.sandbox.with(|s| s.advance_clock(2 * 86_400));
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::NotFound(_)
    ));
}

#[tokio::test]
async fn more_than_the_per_second_limit_is_frequency_limited() {
    let env = start(|c| {
        no_auto_confirm(c);
        c.transfers.create_per_second = 2;
    })
    .await;
    let client = env.transfers(false);
    let mut outcomes = Vec::new();
    for n in 0..3 {
        let prepared = client
            .prepare(&env.transfer(&format!("RL{n}"), &openid(1), 100))
            .unwrap();
        outcomes.push(client.create(&prepared).await);
    }
    // Three calls within one second (the second window restarts only after
    // a full second, far longer than three loopback calls).
    assert!(
        matches!(outcomes[2], TransferOutcome::RateLimited(_)),
        "{outcomes:?}"
    );
    assert_eq!(env.sandbox.transfers().len(), 2);
}

#[tokio::test]
async fn user_name_is_decrypted_by_wechat_and_required_from_2000_yuan() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let mut transfer = env.transfer("UN1", &openid(1), 200_000);
    transfer.user_name = Some("张三".into());
    let prepared = client.prepare(&transfer).unwrap();
    assert!(matches!(
        client.create(&prepared).await,
        TransferOutcome::AwaitingUser(_)
    ));
    let stored = env
        .sandbox
        .with(|s| s.transfer_bill("UN1").unwrap().0.user_name);
    assert_eq!(stored.as_deref(), Some("张三"));
}

#[tokio::test]
async fn the_retired_batch_api_is_no_auth() {
    let env = start(no_auto_confirm).await;
    let client = env.transfers(false);
    let request = client.sign(
        Method::Post,
        "/v3/transfer/batches",
        "{}",
        OffsetDateTime::now_utc(),
    );
    let outcome = classify(Operation::Create, &client.call(request).await);
    let (code, message) = refused_with(&outcome);
    assert_eq!(code, "NO_AUTH");
    assert!(message.contains("升级版本功能"));
}

#[tokio::test]
async fn faults_never_hide_a_bill() {
    for (kind, committed) in [
        ("systemerror_before", false),
        ("systemerror_after", true),
        ("drop_after", true),
        ("garbage", true),
    ] {
        let env = start(|c| {
            no_auto_confirm(c);
            let p = Probability::ALWAYS;
            match kind {
                "systemerror_before" => c.faults.systemerror_before = p,
                "systemerror_after" => c.faults.systemerror_after = p,
                "drop_after" => c.faults.drop_after = p,
                _ => c.faults.garbage = p,
            }
        })
        .await;
        let client = env.transfers(false);
        let prepared = client
            .prepare(&env.transfer("FA1", &openid(1), 100))
            .unwrap();
        let outcome = client.create(&prepared).await;
        assert!(
            matches!(outcome, TransferOutcome::Ambiguous { .. }),
            "{kind}: {outcome:?}"
        );
        assert_eq!(
            env.sandbox.transfers().len(),
            usize::from(committed),
            "{kind}"
        );
        // The query decides (faults off).
        env.sandbox.with(|s| s.faults = Default::default());
        let answer = client.query(prepared.out_bill_no()).await;
        if committed {
            assert!(matches!(answer, TransferOutcome::AwaitingUser(_)), "{kind}");
        } else {
            assert!(matches!(answer, TransferOutcome::NotFound(_)), "{kind}");
        }
    }
}

#[tokio::test]
async fn a_processing_bill_is_pending_then_waits_for_the_user() {
    let env = start(|c| {
        no_auto_confirm(c);
        c.faults.processing = Probability::ALWAYS;
    })
    .await;
    let client = env.transfers(false);
    let prepared = client
        .prepare(&env.transfer("PR1", &openid(1), 100))
        .unwrap();
    let TransferOutcome::Pending(bill) = client.create(&prepared).await else {
        panic!()
    };
    assert_eq!(bill.state, TransferState::Processing);
    env.sandbox.with(|s| {
        s.faults = Default::default();
        s.advance_clock(5);
    });
    // The same bill again: now with its package.
    assert!(matches!(
        client.create(&prepared).await,
        TransferOutcome::AwaitingUser(_)
    ));
}

#[tokio::test]
async fn users_confirm_by_themselves_with_the_configured_chance_and_delay() {
    let env = start(|c| {
        c.transfers.confirm_probability = Probability::ALWAYS;
        c.transfers.confirm_after = Duration::from_secs(30);
    })
    .await;
    let client = env.transfers(false);
    let prepared = client
        .prepare(&env.transfer("AC1", &openid(1), 100))
        .unwrap();
    client.create(&prepared).await;
    env.sandbox.with(|s| s.advance_clock(20));
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::AwaitingUser(_)
    ));
    env.sandbox.with(|s| s.advance_clock(20));
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::Succeeded(_)
    ));
}

#[tokio::test]
async fn bills_and_the_operations_account_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::start_in(dir, no_auto_confirm).await;
    let client = env.transfers(false);
    let prepared = client
        .prepare(&env.transfer("RS1", &openid(1), 100))
        .unwrap();
    client.create(&prepared).await;
    let balance = env.sandbox.with(|s| s.operations_balance());
    let common::Env { sandbox, dir, .. } = env;
    drop(sandbox);
    let env = common::start_in(dir, no_auto_confirm).await;
    assert_eq!(env.sandbox.with(|s| s.operations_balance()), balance);
    let client = env.transfers(false);
    assert!(matches!(
        client.create(&prepared).await,
        TransferOutcome::AwaitingUser(_)
    ));
    assert_eq!(env.sandbox.transfers().len(), 1);
}

/// Callbacks received: headers and body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A merchant's callback endpoint that refuses the first `refuse` calls.
async fn receiver(refuse: usize) -> (String, Received) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Received = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let mut seen = record.lock().unwrap();
                let pairs = headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            v.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                seen.push((pairs, body));
                if seen.len() <= refuse {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn callbacks_are_signed_encrypted_and_retried_until_acknowledged() {
    let env = start(|c| {
        no_auto_confirm(c);
        c.transfers.callback_retry_after = Duration::from_millis(50);
    })
    .await;
    let (url, seen) = receiver(1).await;
    let client = env.transfers(false);
    let mut transfer = env.transfer("CB1", &openid(1), 100);
    transfer.notify_url = Some(url);
    let prepared = client.prepare(&transfer).unwrap();
    client.create(&prepared).await;
    env.sandbox
        .with(|s| s.user_acts("CB1", Some(UserAction::Confirm), None))
        .unwrap();
    env.sandbox.with(|s| s.advance_clock(5));
    // Bounded wait for two deliveries (refused, then acknowledged).
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let id = env.sandbox.identity();
    let key = ApiV3Key::parse(&id.secrets.apiv3_key).unwrap();
    let mut ids = Vec::new();
    for (headers, body) in &seen {
        let headers =
            SignatureHeaders::from_pairs(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let n = parse_callback(
            client.keys(),
            &key,
            &headers,
            body.as_bytes(),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(n.bill.state, TransferState::Success);
        assert_eq!(n.bill.out_bill_no.as_str(), "CB1");
        ids.push(n.id);
    }
    assert_eq!(ids[0], ids[1], "a retry is the same notification");
    assert!(env.sandbox.transfers()[0].callback_delivered);
    let _ = v3::callback::EVENT_TYPE;
}

#[tokio::test]
async fn the_confirm_page_shows_the_bill_and_its_button_confirms() {
    let env = start(|c| {
        no_auto_confirm(c);
        c.admin_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let client = env.transfers(false);
    let prepared = client
        .prepare(&env.transfer("CP1", &openid(1), 188))
        .unwrap();
    let TransferOutcome::AwaitingUser(bill) = client.create(&prepared).await else {
        panic!()
    };
    let package = bill.package_info.unwrap();
    let admin = env.sandbox.admin_base().unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap())
        .build()
        .unwrap();
    let page = http
        .get(format!("{admin}/confirm"))
        .query(&[("package", package.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("确认收款") && page.contains("¥1.88"),
        "{page}"
    );
    let done = http
        .post(format!("{admin}/confirm"))
        .form(&[("package", package.as_str())])
        .send()
        .await
        .unwrap();
    assert!(done.status().is_success());
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::Pending(ref b) if b.state == TransferState::Transfering
    ));
    // An altered package shows what WeChat shows.
    let wrong = http
        .get(format!("{admin}/confirm?package=AAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    assert!(wrong.text().await.unwrap().contains("package信息有误"));
    // The admin calls: ignore a bill, and a misspelt setting is refused.
    let refused = http
        .put(format!("{admin}/transfers/settings"))
        .json(&serde_json::json!({"confirm_probabilty": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("confirm_probabilty"));
}

#[tokio::test]
async fn an_acknowledged_callback_may_come_twice_with_the_same_id() {
    let env = start(|c| {
        no_auto_confirm(c);
        c.transfers.callback_duplicate_probability = Probability::ALWAYS;
    })
    .await;
    let (url, seen) = receiver(0).await;
    let client = env.transfers(false);
    let mut transfer = env.transfer("DU1", &openid(1), 100);
    transfer.notify_url = Some(url);
    let prepared = client.prepare(&transfer).unwrap();
    client.create(&prepared).await;
    client.cancel(prepared.out_bill_no()).await;
    env.sandbox.with(|s| s.advance_clock(5));
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Once more would be a third: give it the time of a few ticks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "sent twice, not more");
    let id = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["id"].clone();
    assert_eq!(id(&seen[0].1), id(&seen[1].1));
}
