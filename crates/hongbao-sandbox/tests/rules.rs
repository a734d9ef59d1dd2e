//! WeChat's rules as the sandbox enforces them: TLS, XML, signatures,
//! parameters, money, openids, idempotency and limits.

mod common;

use common::{fail_code, openid, start};
use hongbao_sandbox::Probability;
use hongbao_wxpay::outcome::CallError;
use hongbao_wxpay::*;

#[tokio::test]
async fn a_valid_red_packet_is_paid_once_and_replayed_after() {
    let env = start(|_| {}).await;
    let before = env.sandbox.with(|s| s.balance());
    let request = env.redpack(1, &openid(1), 188);
    let first = env.client.send(&request).await.unwrap();
    let SendOutcome::Sent(first) = first else {
        panic!("{first:?}")
    };
    let listid = first.send_listid.clone().unwrap();
    assert_eq!(listid.len(), 31);
    // The same mch_billno and parameters: the original outcome, no second debit.
    let SendOutcome::Sent(again) = env.client.send(&request).await.unwrap() else {
        panic!()
    };
    assert_eq!(again.send_listid.as_deref(), Some(listid.as_str()));
    assert_eq!(env.sandbox.with(|s| s.balance()), before - 188);
    let ledger = env.sandbox.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].times_requested, 2);
    assert_eq!(ledger[0].amount, 188);
    assert_eq!(ledger[0].openid, openid(1));
}

#[tokio::test]
async fn reusing_a_billno_with_other_parameters_is_refused() {
    let env = start(|_| {}).await;
    env.client
        .send(&env.redpack(1, &openid(1), 188))
        .await
        .unwrap();
    let other_openid = env
        .client
        .send(&env.redpack(1, &openid(2), 188))
        .await
        .unwrap();
    assert_eq!(
        other_openid,
        SendOutcome::ParametersChanged(ErrCode::FatalError)
    );
    let other_amount = env
        .raw(
            Api::SendRedpack,
            &env.raw_redpack(1, &openid(1), 200),
            &env.key(),
        )
        .await;
    let reply = other_amount.unwrap();
    assert_eq!(reply.err_code(), Some(ErrCode::FatalError));
    assert_eq!(reply.err_code_des(), Some("金额和原始单参数不一致"));
    assert_eq!(env.sandbox.ledger().len(), 1);
}

#[tokio::test]
async fn no_or_untrusted_certificate_is_ca_error() {
    let env = start(|_| {}).await;
    let (no_cert, _) = env.client_with(None);
    let outcome = no_cert
        .send(&env.redpack(1, &openid(1), 100))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        SendOutcome::PauseMerchant(PauseReason::Configuration, ErrCode::CaError)
    );
    // A certificate from another CA (the test fixtures') is refused the same way.
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../hongbao-wxpay/tests/data");
    let foreign = ClientIdentity::from_pem(
        &std::fs::read(format!("{fixtures}/apiclient_cert.pem")).unwrap(),
        &std::fs::read(format!("{fixtures}/apiclient_key.pem")).unwrap(),
    )
    .unwrap();
    let (untrusted, _) = env.client_with(Some(foreign));
    let outcome = untrusted
        .send(&env.redpack(2, &openid(1), 100))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        SendOutcome::PauseMerchant(PauseReason::Configuration, ErrCode::CaError)
    );
    assert!(env.sandbox.ledger().is_empty());
}

#[tokio::test]
async fn the_legacy_pkcs12_opens_with_the_mch_id() {
    let env = start(|_| {}).await;
    let id = env.sandbox.identity();
    let der = std::fs::read(id.path(hongbao_sandbox::files::CLIENT_P12)).unwrap();
    let identity = ClientIdentity::from_pkcs12(&der, &id.secrets.mch_id).unwrap();
    assert_eq!(identity.certificate_der(), env.identity().certificate_der());
    let (client, _) = env.client_with(Some(identity));
    assert!(matches!(
        client.send(&env.redpack(1, &openid(1), 100)).await.unwrap(),
        SendOutcome::Sent(_)
    ));
}

#[tokio::test]
async fn signatures_are_checked_over_the_documented_fields() {
    let env = start(|_| {}).await;
    let params = env.raw_redpack(1, &openid(1), 100);
    let wrong_key = ApiKey::parse("0123456789abcdef0123456789abcdef").unwrap();
    assert_eq!(
        fail_code(&env.raw(Api::SendRedpack, &params, &wrong_key).await),
        "SIGN_ERROR"
    );
    // sign_type is not documented for sendredpack: WeChat leaves it out, so
    // a client that signed it disagrees (WxJava #726).
    let mut with_sign_type = params.clone();
    with_sign_type.insert("sign_type", "MD5");
    assert_eq!(
        fail_code(&env.raw(Api::SendRedpack, &with_sign_type, &env.key()).await),
        "SIGN_ERROR"
    );
    // An amount written with decimals cannot sign the same (observed).
    let mut decimal = params.clone();
    decimal.insert("total_amount", "1.00");
    assert_eq!(
        fail_code(&env.raw(Api::SendRedpack, &decimal, &env.key()).await),
        "SIGN_ERROR"
    );
    // The same request, signed right, passes.
    assert_eq!(
        fail_code(&env.raw(Api::SendRedpack, &params, &env.key()).await),
        "SUCCESS"
    );
}

#[tokio::test]
async fn client_ip_on_a_fission_packet_gives_sign_error() {
    // EasyWeChat #306. Fission is retired: legacy mode.
    let env = start(|c| c.rules.legacy_fission = true).await;
    let mut params = Prepared::new(
        &SendGroupRedpack {
            mch_billno: env.billno(1),
            re_openid: OpenId::parse(&openid(1)).unwrap(),
            total_amount: Fen::new(600),
            total_num: 3,
            send_name: "a".into(),
            wishing: "b".into(),
            act_name: "c".into(),
            remark: "d".into(),
            scene_id: None,
            risk_info: None,
        },
        &env.merchant(),
    )
    .unwrap()
    .params()
    .clone();
    assert_eq!(
        fail_code(&env.raw(Api::SendGroupRedpack, &params, &env.key()).await),
        "SUCCESS"
    );
    params.insert("mch_billno", env.billno(2).as_str());
    params.insert("client_ip", "10.0.0.1");
    assert_eq!(
        fail_code(&env.raw(Api::SendGroupRedpack, &params, &env.key()).await),
        "SIGN_ERROR"
    );
}

#[tokio::test]
async fn a_fission_packet_is_refused_as_production_does_since_2024() {
    let env = start(|_| {}).await;
    let group = SendGroupRedpack {
        mch_billno: env.billno(1),
        re_openid: OpenId::parse(&openid(1)).unwrap(),
        total_amount: Fen::new(600),
        total_num: 3,
        send_name: "a".into(),
        wishing: "b".into(),
        act_name: "c".into(),
        remark: "d".into(),
        scene_id: None,
        risk_info: None,
    };
    let outcome = env.client.send(&group).await.unwrap();
    assert_eq!(
        outcome,
        SendOutcome::PauseMerchant(PauseReason::Configuration, ErrCode::NoAuth)
    );
    assert!(env.sandbox.ledger().is_empty(), "nothing paid");
    // A normal packet is unaffected.
    assert!(matches!(
        env.client
            .send(&env.redpack(2, &openid(1), 100))
            .await
            .unwrap(),
        SendOutcome::Sent(_)
    ));
}

#[tokio::test]
async fn bad_xml_is_xml_error() {
    let env = start(|_| {}).await;
    for body in [
        "".to_owned(),
        "not xml".to_owned(),
        "<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><a>&x;</a></xml>"
            .to_owned(),
        format!("<xml><remark>{}</remark></xml>", "x".repeat(70_000)),
    ] {
        let result = env.raw_body(Api::SendRedpack, body).await;
        assert_eq!(fail_code(&result), "XML_ERROR");
    }
}

#[tokio::test]
async fn every_field_rule_has_its_code_and_text() {
    let env = start(|_| {}).await;
    let (long_wishing, long_name) = ("福".repeat(129), "百".repeat(33));
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("total_num", "2", "PARAM_ERROR", "total_num必须等于1"),
        (
            "wishing",
            &long_wishing,
            "PARAM_ERROR",
            "wishing字段必填,并且少于128个字符",
        ),
        (
            "send_name",
            &long_name,
            "PARAM_ERROR",
            "send_name字段必填,并且少于32个字符",
        ),
        (
            "act_name",
            "",
            "PARAM_ERROR",
            "act_name字段必填,并且少于32个字符",
        ),
        (
            "client_ip",
            "300.1.1.1",
            "PARAM_ERROR",
            "client_ip必须是合法的IP字符串",
        ),
        (
            "wxappid",
            "wx0000000000000000",
            "PARAM_ERROR",
            "商户号和wxappid不匹配",
        ),
        ("mch_id", "1234567890", "PARAM_ERROR", "商户号不存在"),
        (
            "total_amount",
            "50",
            "MONEY_LIMIT",
            "每个红包的平均金额必须在1.00元到200.00元之间.",
        ),
        (
            "total_amount",
            "20001",
            "MONEY_LIMIT",
            "每个红包的平均金额必须在1.00元到200.00元之间.",
        ),
        ("re_openid", "short", "OPENID_ERROR", "openid和appid不匹配"),
        ("scene_id", "PRODUCT_9", "PARAM_ERROR", "scene_id参数错误"),
        (
            "mch_billno",
            "2026-11-22-1",
            "PARAM_ERROR",
            "mch_billno只能是数字和字母",
        ),
    ];
    for (i, (field, value, code, des)) in cases.into_iter().enumerate() {
        let mut params = env.raw_redpack(100 + u64::try_from(i).unwrap(), &openid(1), 100);
        params.insert(field, value);
        if value.is_empty() {
            params.remove(field);
        }
        let reply = env
            .raw(Api::SendRedpack, &params, &env.key())
            .await
            .unwrap();
        assert_eq!(
            reply.err_code().map(|c| c.as_str().to_owned()).as_deref(),
            Some(code),
            "{field}={value}"
        );
        assert_eq!(reply.err_code_des(), Some(des), "{field}={value}");
        assert_eq!(
            reply.return_msg(),
            Some(des),
            "return_msg repeats err_code_des"
        );
    }
    assert!(env.sandbox.ledger().is_empty(), "nothing was paid");
}

#[tokio::test]
async fn scenes_allow_amounts_outside_one_to_two_hundred_yuan() {
    let env = start(|_| {}).await;
    let mut lottery = env.redpack(1, &openid(1), 30);
    lottery.scene_id = Some(SceneId::Product2);
    assert!(matches!(
        env.client.send(&lottery).await.unwrap(),
        SendOutcome::Sent(_)
    ));
    // Above 200 yuan, within the default per-user daily limit of 1,000 yuan.
    let mut big = env.redpack(2, &openid(2), 90_000);
    big.scene_id = Some(SceneId::Product4);
    assert!(matches!(
        env.client.send(&big).await.unwrap(),
        SendOutcome::Sent(_)
    ));
}

#[tokio::test]
async fn foreign_openids_are_openid_error() {
    let env = start(|_| {}).await;
    env.sandbox
        .with(|s| s.set_foreign([openid(9)].into_iter().collect()));
    let outcome = env
        .client
        .send(&env.redpack(1, &openid(9), 100))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        SendOutcome::FailedForRecipient(ErrCode::OpenIdError)
    );
}

#[tokio::test]
async fn per_user_daily_count_and_amount_limits() {
    let env = start(|c| c.rules.sendnum_limit = 3).await;
    for seq in 1..=3 {
        assert!(matches!(
            env.client
                .send(&env.redpack(seq, &openid(1), 100))
                .await
                .unwrap(),
            SendOutcome::Sent(_)
        ));
    }
    let fourth = env
        .client
        .send(&env.redpack(4, &openid(1), 100))
        .await
        .unwrap();
    assert_eq!(
        fourth,
        SendOutcome::FailedForRecipient(ErrCode::SendNumLimit)
    );
    // WeChat keeps the refused order: gethbinfo confirms it FAILED, with the reason.
    match env.client.query(&env.billno(4)).await {
        QueryOutcome::Found(info) => {
            assert_eq!(info.status, HbStatus::Failed);
            assert_eq!(
                info.reason.as_deref(),
                Some("该用户今日领取红包个数超过限制")
            );
        }
        other => panic!("{other:?}"),
    }
    // And the billno is dead.
    assert_eq!(
        env.client
            .send(&env.redpack(4, &openid(1), 100))
            .await
            .unwrap(),
        SendOutcome::NewBillnoNeeded(ErrCode::SendFailed)
    );

    let env = start(|c| c.rules.rcvd_amount_limit = Fen::new(300)).await;
    assert!(matches!(
        env.client
            .send(&env.redpack(1, &openid(1), 200))
            .await
            .unwrap(),
        SendOutcome::Sent(_)
    ));
    assert_eq!(
        env.client
            .send(&env.redpack(2, &openid(1), 200))
            .await
            .unwrap(),
        SendOutcome::FailedForRecipient(ErrCode::RcvdAmountLimit)
    );
}

#[tokio::test]
async fn balance_and_merchant_daily_cap() {
    let env = start(|c| c.balance = Fen::new(250)).await;
    assert!(matches!(
        env.client
            .send(&env.redpack(1, &openid(1), 200))
            .await
            .unwrap(),
        SendOutcome::Sent(_)
    ));
    let refused = env
        .client
        .send(&env.redpack(2, &openid(2), 100))
        .await
        .unwrap();
    assert_eq!(
        refused,
        SendOutcome::PauseMerchant(PauseReason::InsufficientBalance, ErrCode::NotEnough)
    );
    // NOTENOUGH creates no order: after a top-up the same billno pays.
    assert_eq!(
        env.client.query(&env.billno(2)).await,
        QueryOutcome::NotFound
    );
    env.sandbox.with(|s| s.top_up(1_000));
    assert!(matches!(
        env.client
            .send(&env.redpack(2, &openid(2), 100))
            .await
            .unwrap(),
        SendOutcome::Sent(_)
    ));
    assert_eq!(env.sandbox.with(|s| s.balance()), 950);

    let env = start(|c| c.rules.send_amount_limit = Fen::new(300)).await;
    assert!(matches!(
        env.client
            .send(&env.redpack(1, &openid(1), 200))
            .await
            .unwrap(),
        SendOutcome::Sent(_)
    ));
    assert_eq!(
        env.client
            .send(&env.redpack(2, &openid(2), 200))
            .await
            .unwrap(),
        SendOutcome::PauseMerchant(PauseReason::DailyCap, ErrCode::SendAmountLimit)
    );
}

#[tokio::test]
async fn calls_beyond_the_rate_are_freq_limit() {
    let env = start(|c| c.rules.rate_per_minute = 5).await;
    let mut codes = Vec::new();
    for seq in 1..=7 {
        codes.push(
            match env
                .client
                .send(&env.redpack(seq, &openid(seq.try_into().unwrap()), 100))
                .await
                .unwrap()
            {
                SendOutcome::Sent(_) => "SUCCESS".to_owned(),
                other => other.err_code().unwrap().as_str().to_owned(),
            },
        );
    }
    assert_eq!(
        codes,
        [
            "SUCCESS",
            "SUCCESS",
            "SUCCESS",
            "SUCCESS",
            "SUCCESS",
            "FREQ_LIMIT",
            "FREQ_LIMIT"
        ]
    );
    assert_eq!(env.sandbox.ledger().len(), 5);
}

#[tokio::test]
async fn gethbinfo_of_an_unknown_billno_is_not_found() {
    let env = start(|_| {}).await;
    assert_eq!(
        env.client.query(&env.billno(77)).await,
        QueryOutcome::NotFound
    );
}

#[tokio::test]
async fn the_identity_is_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let first = common::start_in(dir, |_| {}).await;
    let secrets = first.secrets().clone();
    let cert = first.sandbox.identity().client_cert_pem.clone();
    let toml = std::fs::read_to_string(path.join("merchant.toml")).unwrap();
    assert!(toml.contains(&format!("mch_id = \"{}\"", secrets.mch_id)));
    assert!(toml.contains(&first.sandbox.api_base()));
    let dir = first.dir;
    drop(first.sandbox);
    let second = common::start_in(dir, |_| {}).await;
    assert_eq!(second.secrets().api_key, secrets.api_key);
    assert_eq!(second.sandbox.identity().client_cert_pem, cert);
    for file in [
        "ca.pem",
        "apiclient_cert.pem",
        "apiclient_key.pem",
        "apiclient_cert.p12",
        "sandbox.json",
    ] {
        assert!(path.join(file).exists(), "{file}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path.join("apiclient_key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "private keys are readable by their owner only"
        );
    }
}

#[tokio::test]
async fn an_unparseable_answer_never_hides_a_payment() {
    let env = start(|c| c.faults.garbage = Probability::ALWAYS).await;
    let prepared = env
        .client
        .prepare(&env.redpack(1, &openid(1), 100))
        .unwrap();
    let result = env.client.call(&prepared).await;
    assert!(
        matches!(result, Err(CallError::Unparseable(_))),
        "{result:?}"
    );
    assert!(matches!(
        classify_send(&result),
        SendOutcome::QueryFirst { .. }
    ));
    // The garbage came after WeChat committed: the money moved.
    assert_eq!(env.sandbox.ledger().len(), 1);
}
