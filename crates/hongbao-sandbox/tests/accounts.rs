//! The other APIs (mini program, Shake pre-order, WeCom), the official
//! account's token and user info, and the admin API over HTTP.

mod common;

use std::net::SocketAddr;

use common::{fail_code, openid, start};
use hongbao_sandbox::{Followers, LedgerEntry};
use hongbao_wxpay::transport::certificates_from_pem;
use hongbao_wxpay::*;
use secrecy::SecretString;

#[tokio::test]
async fn a_mini_program_packet_returns_a_package_for_send_biz_red_packet() {
    let env = start(|_| {}).await;
    let mini_appid = AppId::parse(&env.secrets().miniprogram_appid).unwrap();
    let request = SendMiniProgramHb {
        mch_billno: env.billno(1),
        wxappid: mini_appid.clone(),
        re_openid: OpenId::parse(&openid(1)).unwrap(),
        total_amount: Fen::new(100),
        send_name: "a".into(),
        wishing: "b".into(),
        act_name: "c".into(),
        remark: "d".into(),
        scene_id: None,
    };
    let SendOutcome::Sent(result) = env.client.send(&request).await.unwrap() else {
        panic!()
    };
    let package = result.package.unwrap();
    assert!(package.starts_with("sendid="), "{package}");
    assert!(package.contains(&format!(
        "&mchid={}&appid={mini_appid}",
        env.secrets().mch_id
    )));
    let packet = BizRedPacket::now(&mini_appid, &package, &env.key());
    assert!(packet.package.contains("%26ver%3D8%26"));
    assert_eq!(packet.pay_sign.len(), 32);
    // The official account's appid is not the mini program's.
    let mut wrong = request;
    wrong.mch_billno = env.billno(2);
    wrong.wxappid = AppId::parse(&env.secrets().appid).unwrap();
    assert_eq!(
        env.client.send(&wrong).await.unwrap(),
        SendOutcome::FailedForRecipient(ErrCode::ParamError)
    );
}

#[tokio::test]
async fn a_shake_preorder_returns_its_ticket() {
    let env = start(|_| {}).await;
    let request = HbPreorder {
        mch_billno: env.billno(1),
        send_name: "摇一摇".into(),
        hb_type: HbType::Normal,
        total_amount: Fen::new(100),
        total_num: 1,
        wishing: "恭喜发财".into(),
        act_name: "摇一摇".into(),
        remark: "摇一摇".into(),
        risk_cntl: RiskControl::Normal,
    };
    let SendOutcome::Sent(result) = env.client.send(&request).await.unwrap() else {
        panic!()
    };
    assert_eq!(result.sp_ticket.map(|t| t.len()), Some(64));
    assert!(result.detail_id.is_some());
}

#[tokio::test]
async fn wecom_packets_carry_workwx_sign_and_signed_answers() {
    let env = start(|_| {}).await;
    let corpid = AppId::parse(&env.secrets().workwx_corpid).unwrap();
    let mut request = SendWorkWxRedpack {
        mch_billno: env.billno(1),
        corpid: corpid.clone(),
        sender: WorkWxSender::Person("张三".into()),
        sender_header_media_id: None,
        re_openid: OpenId::parse(&openid(1)).unwrap(),
        total_amount: Fen::new(100),
        wishing: "b".into(),
        act_name: "c".into(),
        remark: "d".into(),
        scene_id: None,
        workwx_secret: ApiKey::any(&env.secrets().workwx_secret),
    };
    // The client verifies the answer's sign before calling it sent.
    assert!(matches!(
        env.client.send(&request).await.unwrap(),
        SendOutcome::Sent(_)
    ));
    let query = QueryWorkWxRedpack {
        mch_billno: env.billno(1),
        corpid,
    };
    let prepared = env.client.prepare(&query).unwrap();
    let reply = env.client.call(&prepared).await.unwrap();
    assert!(reply.doc.get("sign").is_some());
    assert!(matches!(classify_query(&Ok(reply)), QueryOutcome::Found(_)));
    request.mch_billno = env.billno(2);
    request.workwx_secret = ApiKey::any("not the wecom secret");
    let prepared = env.client.prepare(&request).unwrap();
    assert_eq!(fail_code(&env.client.call(&prepared).await), "SIGN_ERROR");
}

fn official_account(env: &common::Env, secret: &str) -> OfficialAccount {
    let mut config = OfficialAccountConfig::new(
        AppId::parse(&env.secrets().appid).unwrap(),
        SecretString::from(secret),
    );
    config.base_url = env.sandbox.api_base();
    config.extra_roots = certificates_from_pem(env.sandbox.identity().ca_pem.as_bytes()).unwrap();
    OfficialAccount::new(config).unwrap()
}

#[tokio::test]
async fn the_follow_check_follows_the_followers_setting() {
    let env = start(|c| c.followers = Followers::List([openid(1)].into_iter().collect())).await;
    let oa = official_account(&env, &env.secrets().app_secret);
    assert!(
        oa.is_follower(&OpenId::parse(&openid(1)).unwrap())
            .await
            .unwrap()
    );
    assert!(
        !oa.is_follower(&OpenId::parse(&openid(2)).unwrap())
            .await
            .unwrap()
    );
    env.sandbox.with(|s| s.set_followers(Followers::All));
    assert!(
        oa.is_follower(&OpenId::parse(&openid(2)).unwrap())
            .await
            .unwrap()
    );
    env.sandbox.with(|s| s.set_followers(Followers::None));
    assert!(
        !oa.is_follower(&OpenId::parse(&openid(1)).unwrap())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn revoked_tokens_are_refreshed_once_and_wrong_secrets_refused() {
    let env = start(|_| {}).await;
    let oa = official_account(&env, &env.secrets().app_secret);
    let user = OpenId::parse(&openid(1)).unwrap();
    assert!(oa.is_follower(&user).await.unwrap());
    env.sandbox.with(|s| s.revoke_tokens());
    assert!(oa.is_follower(&user).await.unwrap());
    assert_eq!(oa.refresh_count(), 2);
    let counters = env.sandbox.with(|s| s.counters());
    assert_eq!(counters.requests.get("token"), Some(&2));

    let wrong = official_account(&env, "0000000000000000000000000000000f");
    assert!(matches!(
        wrong.access_token().await,
        Err(OfficialAccountError::Api { errcode: 40125, .. })
    ));
}

#[tokio::test]
async fn expired_tokens_answer_42001_and_are_refreshed() {
    let env = start(|_| {}).await;
    let oa = official_account(&env, &env.secrets().app_secret);
    let user = OpenId::parse(&openid(1)).unwrap();
    assert!(oa.is_follower(&user).await.unwrap());
    // Two hours on the sandbox's clock: the token it issued has expired,
    // while the client (on real time) still thinks it is good.
    env.sandbox.with(|s| s.advance_clock(7201));
    assert!(oa.is_follower(&user).await.unwrap());
    assert_eq!(oa.refresh_count(), 2);
}

#[tokio::test]
async fn the_admin_api_shows_the_ledger_and_moves_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::start_in(dir, |c| {
        c.admin_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        c.lifecycle.receive_probability = hongbao_sandbox::Probability::NEVER;
    })
    .await;
    let admin = env.sandbox.admin_base().unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap())
        .build()
        .unwrap();
    env.client
        .send(&env.redpack(1, &openid(1), 188))
        .await
        .unwrap();

    let ledger: Vec<LedgerEntry> = http
        .get(format!("{admin}/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].mch_billno, env.billno(1).as_str());
    assert_eq!(
        (ledger[0].amount, ledger[0].status.as_str(), ledger[0].paid),
        (188, "SENT", true)
    );

    let state: serde_json::Value = http
        .get(format!("{admin}/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let balance = state["balance_fen"].as_u64().unwrap();
    let topped: serde_json::Value = http
        .post(format!("{admin}/balance/topup"))
        .json(&serde_json::json!({"fen": 1000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(topped["balance_fen"].as_u64(), Some(balance + 1000));

    let moved = http
        .post(format!("{admin}/clock/advance"))
        .json(&serde_json::json!({"seconds": 26 * 3600}))
        .send()
        .await
        .unwrap();
    assert!(moved.status().is_success());
    let entry: LedgerEntry = http
        .get(format!("{admin}/ledger/{}", env.billno(1)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (entry.status.as_str(), entry.refund_amount),
        ("REFUND", Some(188))
    );

    let bad = http
        .put(format!("{admin}/faults"))
        .json(&serde_json::json!({"systemerror_before": "0.6", "drop_after": "0.6"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let ok = http
        .put(format!("{admin}/faults"))
        .json(&serde_json::json!({"systemerror_before": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 204);
    assert!(matches!(
        env.client
            .send(&env.redpack(2, &openid(2), 100))
            .await
            .unwrap(),
        SendOutcome::QueryFirst { .. }
    ));
    assert_eq!(
        http.post(format!("{admin}/reset"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let ledger: Vec<LedgerEntry> = http
        .get(format!("{admin}/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ledger.is_empty());
    assert_eq!(
        http.get(format!("{admin}/ledger/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_its_keys_merchant_toml_and_journal_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("sandbox");
    let mut config = hongbao_sandbox::SandboxConfig::new(&dir);
    config.seed = Some(1);
    let sandbox = hongbao_sandbox::Sandbox::start(config).await.unwrap();
    sandbox.with(|s| s.top_up(1)); // a journal line
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    for name in [
        hongbao_sandbox::files::MERCHANT_TOML,
        hongbao_sandbox::files::JOURNAL,
        hongbao_sandbox::files::SECRETS,
        hongbao_sandbox::files::CLIENT_KEY,
        hongbao_sandbox::files::PUB_KEY_PRIVATE,
    ] {
        assert!(dir.join(name).exists(), "{name}");
    }
    assert!(files >= 14);
    // merchant.toml holds the v3 keys too.
    let toml = std::fs::read_to_string(dir.join(hongbao_sandbox::files::MERCHANT_TOML)).unwrap();
    for key in [
        "apiv3_key",
        "wechatpay_public_key",
        "wechatpay_public_key_id",
        "v3_base",
    ] {
        assert!(toml.contains(&format!("{key} = ")), "{key}: {toml}");
    }
}
