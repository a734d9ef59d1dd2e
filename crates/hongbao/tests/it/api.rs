//! The HTTP API of the real `hongbao serve`: idempotency, tenancy, bad
//! input, secrets, and the merchant's rate.

use std::time::Duration;

use crate::support::{OTHER_TOKEN, Options, TOKEN, World, body, openid, post_many};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_and_refuse_reuse() {
    let mut world = World::new(|_| {}, Options::default()).await;
    world.start_serve().await;

    // Sequential repeat: the same record, once.
    let request = body(&openid(1), 188);
    let (first_status, first) = world
        .post(Some(TOKEN), "/v1/redpacks", &request, Some("order-1"))
        .await;
    let (again_status, again) = world
        .post(Some(TOKEN), "/v1/redpacks", &request, Some("order-1"))
        .await;
    assert_eq!((first_status, again_status), (201, 200));
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["mch_billno"], again["mch_billno"]);

    // The same key with another body: 409, nothing created.
    let (conflict, error) = world
        .post(
            Some(TOKEN),
            "/v1/redpacks",
            &body(&openid(1), 200),
            Some("order-1"),
        )
        .await;
    assert_eq!(conflict, 409, "{error}");
    assert_eq!(error["error"]["code"], "idempotency_key_reused");
    assert!(
        error["error"]["zh_message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );

    // Concurrent repeats: one record, one payment.
    let request = body(&openid(2), 288);
    let posts = (0..20).map(|_| world.post(Some(TOKEN), "/v1/redpacks", &request, Some("order-2")));
    let answers = futures_util::future::join_all(posts).await;
    let ids: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|(_, r)| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 1);
    assert!(answers.iter().all(|(s, _)| *s == 201 || *s == 200));

    let records = world.wait_settled(TOKEN, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 2);
    world.assert_exactly_once(&records);

    // Keys are per tenant: the other tenant may use the same key.
    let (status, other) = world
        .post(
            Some(OTHER_TOKEN),
            "/v1/redpacks",
            &body(&openid(3), 100),
            Some("order-1"),
        )
        .await;
    assert_eq!(status, 201);
    assert_ne!(other["id"], first["id"]);
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_sees_only_its_own_merchants() {
    let mut world = World::new(|_| {}, Options::default()).await;
    world.start_serve().await;
    let (status, mine) = world
        .post(
            Some(TOKEN),
            "/v1/redpacks?wait=10",
            &body(&openid(1), 188),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let id = mine["id"].as_str().unwrap();

    for token in [None, Some("not-a-key")] {
        let (status, error) = world.get(token, "/v1/redpacks").await;
        assert_eq!(status, 401, "{error}");
        assert_eq!(error["error"]["code"], "unauthorized");
        let (status, _) = world
            .post(token, "/v1/redpacks", &body(&openid(2), 100), None)
            .await;
        assert_eq!(status, 401);
    }
    let response = world
        .http
        .get(format!("{}/v1/redpacks", world.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );

    let (status, _) = world
        .get(Some(OTHER_TOKEN), &format!("/v1/redpacks/{id}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = world
        .get(Some(OTHER_TOKEN), &format!("/v1/redpacks/{id}/attempts"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = world
        .get(Some(OTHER_TOKEN), &format!("/v1/redpacks/status?id={id}"))
        .await;
    assert_eq!(status, 404);
    let (_, list) = world.get(Some(OTHER_TOKEN), "/v1/redpacks").await;
    assert_eq!(list["meta"]["total_count"], 0);
    let (status, error) = world
        .post(
            Some(OTHER_TOKEN),
            "/v1/redpacks",
            &json!({"merchant": "main", "re_openid": openid(3), "total_amount": 100}),
            None,
        )
        .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (422, Some("merchant")),
        "{error}"
    );
    let (status, _) = world
        .post(
            Some(OTHER_TOKEN),
            "/v1/merchants/main/pause",
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 404);

    let (status, found) = world.get(Some(TOKEN), &format!("/v1/redpacks/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(found["status"], "sent");
    let (_, list) = world.get(Some(TOKEN), "/v1/redpacks").await;
    assert_eq!(list["meta"]["total_count"], 1);
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_the_operators_address_and_it_answers_there() {
    let mut world = World::new(|_| {}, Options::default()).await;
    world
        .start_serve_with(&[("HONGBAO_SERVER__METRICS_LISTEN", "127.0.0.1:0")])
        .await;
    let logs = world.logs();
    let operator = logs
        .lines()
        .find_map(|l| l.split("for the operator at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no operator address in: {logs}"))
        .to_owned();
    let metrics = world.http.get(&operator).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "{operator}");
    assert!(metrics.text().await.unwrap().contains("hongbao_"));
    let health = operator.replace("/metrics", "/healthz");
    assert_eq!(world.http.get(&health).send().await.unwrap().status(), 200);
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fission_packet_is_warned_about_and_fails_alone() {
    let mut world = World::new(|_| {}, Options::default()).await;
    world.start_serve().await;
    let response = world
        .http
        .post(format!("{}/v1/redpacks?wait=20", world.base))
        .bearer_auth(TOKEN)
        .json(
            &json!({"re_openid": openid(1), "total_amount": 300, "type": "group", "total_num": 3}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let warning = response.headers()["warning"].to_str().unwrap().to_owned();
    assert!(
        warning.starts_with("299 hongbao \"") && warning.contains("2024-06-05"),
        "{warning}"
    );
    let group: Value = response.json().await.unwrap();
    assert_eq!(group["warnings"][0]["code"], "group_offline", "{group}");
    assert!(
        group["warnings"][0]["zh_message"]
            .as_str()
            .unwrap()
            .contains("下线")
    );
    // The sandbox answers as WeChat does today: refused, and only this
    // record fails.
    assert_eq!(group["status"], "failed", "{group}");
    let (status, normal) = world
        .post(
            Some(TOKEN),
            "/v1/redpacks?wait=20",
            &body(&openid(2), 100),
            None,
        )
        .await;
    assert_eq!(
        (status, normal["status"].as_str()),
        (201, Some("sent")),
        "{normal}"
    );
    assert!(normal.get("warnings").is_none(), "{normal}");
    let (_, again) = world
        .get(
            Some(TOKEN),
            &format!("/v1/redpacks/{}", group["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(again["warnings"][0]["code"], "group_offline");
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_field_is_named_and_nothing_is_written() {
    let mut world = World::new(|_| {}, Options::default()).await;
    world.start_serve().await;
    let ok = openid(1);
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (json!({"total_amount": 100}), 400, Some("re_openid")),
        (json!({"re_openid": ok}), 400, Some("total_amount")),
        (
            json!({"re_openid": ok, "total_amount": "100"}),
            400,
            Some("total_amount"),
        ),
        (
            json!({"re_openid": 12345, "total_amount": 100}),
            400,
            Some("re_openid"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 0}),
            422,
            Some("total_amount"),
        ),
        (
            json!({"re_openid": ok, "total_amount": -100}),
            422,
            Some("total_amount"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 1.5}),
            422,
            Some("total_amount"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 20_001}),
            422,
            Some("total_amount"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 50}),
            422,
            Some("total_amount"),
        ),
        (
            json!({"re_openid": "o12345", "total_amount": 100}),
            422,
            Some("re_openid"),
        ),
        (
            json!({"re_openid": "oUpF8uMuAJO M2pxb1Q9zNjWeS6o", "total_amount": 100}),
            422,
            Some("re_openid"),
        ),
        (
            json!({"re_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o✓", "total_amount": 100}),
            422,
            Some("re_openid"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "wishing": "福".repeat(43)}),
            422,
            Some("wishing"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "send_name": "百".repeat(11)}),
            422,
            Some("send_name"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "act_name": "活".repeat(11)}),
            422,
            Some("act_name"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "remark": "x".repeat(257)}),
            422,
            Some("remark"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "wishing": "恭喜\u{FFFE}"}),
            422,
            Some("wishing"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "act_name": "新年\u{FFFF}"}),
            422,
            Some("act_name"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "remark": "\u{FFFF}"}),
            422,
            Some("remark"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "send_name": "天虹\u{FFFE}"}),
            422,
            Some("send_name"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "type": "gift"}),
            422,
            Some("type"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "type": "group"}),
            422,
            Some("total_num"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "total_num": 2}),
            422,
            Some("total_num"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "scene_id": "PRODUCT_9"}),
            422,
            Some("scene_id"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "merchant": "nobody"}),
            422,
            Some("merchant"),
        ),
        (
            json!({"re_openid": ok, "total_amount": 100, "amount": 100}),
            400,
            Some("amount"),
        ),
        (json!([1, 2, 3]), 400, None),
    ];
    for (body, status, field) in &cases {
        let (got, error) = world.post(Some(TOKEN), "/v1/redpacks", body, None).await;
        assert_eq!(got, *status, "{body} → {error}");
        assert_eq!(error["error"]["field"].as_str(), *field, "{body} → {error}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
        assert!(!error["error"]["zh_message"].as_str().unwrap().is_empty());
    }
    let raw = |text: &'static str| {
        world
            .http
            .post(format!("{}/v1/redpacks", world.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(text)
    };
    let malformed = raw("{\"re_openid\": ").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );
    let huge = format!(
        "{{\"re_openid\": \"{}\", \"total_amount\": 100, \"remark\": \"{}\"}}",
        ok,
        "x".repeat(70_000)
    );
    let too_big = world
        .http
        .post(format!("{}/v1/redpacks", world.base))
        .bearer_auth(TOKEN)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(
        too_big.json::<Value>().await.unwrap()["error"]["code"],
        "body_too_large"
    );
    let bad_key = world
        .http
        .post(format!("{}/v1/redpacks", world.base))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "")
        .json(&body(&ok, 100))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_key.status(), 400);

    let (_, list) = world.get(Some(TOKEN), "/v1/redpacks").await;
    assert_eq!(list["meta"]["total_count"], 0, "nothing was stored");
    assert!(world.sandbox.ledger().is_empty(), "nothing was paid");

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("offset=-1", "offset"),
        ("status=lost", "status"),
    ] {
        let (status, error) = world
            .get(Some(TOKEN), &format!("/v1/redpacks?{query}"))
            .await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (400, Some(field)),
            "{query}: {error}"
        );
    }
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_logs_or_answers() {
    let mut world = World::new(|_| {}, Options::default()).await;
    world.start_serve_with(&[("RUST_LOG", "debug")]).await;
    let secrets = world.sandbox.identity().secrets.clone();
    let key_pem = std::fs::read_to_string(
        world
            .sandbox
            .identity()
            .path(hongbao_sandbox::files::CLIENT_KEY),
    )
    .unwrap();
    let key_lines: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();

    let mut answers = Vec::new();
    let (_, sent) = world
        .post(
            Some(TOKEN),
            "/v1/redpacks?wait=10",
            &body(&openid(1), 188),
            None,
        )
        .await;
    answers.push(sent.to_string());
    let id = sent["id"].as_str().unwrap().to_owned();
    for path in [
        format!("/v1/redpacks/{id}"),
        format!("/v1/redpacks/{id}/attempts"),
        format!("/v1/redpacks/status?id={id}"),
        "/v1/redpacks".into(),
        "/v1/merchants".into(),
        "/healthz".into(),
        "/metrics".into(),
        "/openapi.json".into(),
        "/nope".into(),
    ] {
        answers.push(world.get(Some(TOKEN), &path).await.1.to_string());
    }
    answers.push(
        world
            .post(
                Some(TOKEN),
                "/v1/redpacks",
                &json!({"re_openid": "x"}),
                None,
            )
            .await
            .1
            .to_string(),
    );
    answers.push(world.get(Some("wrong"), "/v1/redpacks").await.1.to_string());
    world.stop_serve();

    let everything = format!("{}\n{}", answers.join("\n"), world.logs());
    for (name, secret) in [
        ("the API key", secrets.api_key.as_str()),
        ("the app secret", secrets.app_secret.as_str()),
        ("the WeCom secret", secrets.workwx_secret.as_str()),
        ("a bearer token", TOKEN),
    ] {
        assert!(
            !everything.contains(secret),
            "{name} appears in logs or answers"
        );
    }
    for line in key_lines {
        assert!(
            !everything.contains(line),
            "the private key appears in logs or answers"
        );
    }
    assert!(world.logs().contains("serving"), "the logs were captured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_merchants_rate_wechat_never_answers_freq_limit() {
    let mut world = World::new(
        |c| {
            c.rules.rate_per_minute = 600;
            c.rules.sendnum_limit = 1_000;
        },
        Options {
            rate_per_minute: 600,
            ..Options::default()
        },
    )
    .await;
    world.start_serve().await;
    // A little over a minute of calls at the quota: the sandbox's 60-second
    // window fills completely.
    let started = std::time::Instant::now();
    post_many(&world, 0, 660).await;
    let records = world.wait_settled(TOKEN, Duration::from_secs(150)).await;
    let elapsed = started.elapsed();
    world.assert_exactly_once(&records);
    let counters = world.sandbox.with(|s| s.counters());
    assert_eq!(counters.answers.get("FREQ_LIMIT"), None, "{counters:?}");
    // At 600/min, 660 sends take at least 66 s: the quota was used, not exceeded.
    assert!(elapsed >= Duration::from_secs(60), "{elapsed:?}");
    let calls: u64 = counters.requests.values().sum();
    println!("{calls} calls to the sandbox in {elapsed:?}, no FREQ_LIMIT");
    world.stop_serve();
}

/// Answers of the sandbox per err_code so far.
fn answered(world: &World, code: &str) -> u64 {
    world
        .sandbox
        .with(|s| s.counters())
        .answers
        .get(code)
        .copied()
        .unwrap_or(0)
}

/// Waits (bounded) until merchant main is paused, and returns the pause.
async fn wait_paused(world: &World) -> Value {
    for _ in 0..300 {
        let (_, merchants) = world.get(Some(TOKEN), "/v1/merchants").await;
        let main = merchants
            .as_array()
            .and_then(|list| list.iter().find(|m| m["name"] == "main").cloned());
        if let Some(main) = main
            && main["paused"] == true
        {
            return main;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("merchant main was never paused: {}", world.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_pause_stops_every_payout_not_yet_on_the_wire() {
    let mut world = World::new(
        |c| c.balance = hongbao_wxpay::Fen::new(1_000),
        Options {
            // One call at a time: the first NOTENOUGH is answered before
            // the next call may start.
            rate_per_minute: 600,
            ..Options::default()
        },
    )
    .await;
    world.start_serve().await;
    let stored = post_many(&world, 0, 30).await;
    let pause = wait_paused(&world).await;
    // The pause says why and what to do, in both languages.
    assert!(
        pause["pause_message"].as_str().unwrap().contains("top")
            && pause["pause_zh_message"].as_str().unwrap().contains("充值"),
        "{pause}"
    );
    // Long enough for every record claimed before the pause to have been
    // called, had it been.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(answered(&world, "NOTENOUGH"), 1, "{}", world.logs());
    let paid = world.sandbox.ledger().iter().filter(|e| e.paid).count();
    assert!(paid < 30);
    // The record refused for the balance says so too.
    let refused = world
        .all_records(TOKEN)
        .await
        .into_iter()
        .find(|r| r["err_code"] == "NOTENOUGH")
        .expect("a record refused with NOTENOUGH");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("balance"))
            && refused["zh_message"]
                .as_str()
                .is_some_and(|m| m.contains("余额")),
        "{refused}"
    );

    world.sandbox.with(|s| s.top_up(1_000_000));
    let (status, _) = world
        .post(Some(TOKEN), "/v1/merchants/main/resume", &json!({}), None)
        .await;
    assert_eq!(status, 200);
    let records = world.wait_settled(TOKEN, Duration::from_secs(60)).await;
    assert_eq!(records.len(), stored.len());
    world.assert_exactly_once(&records);
    assert_eq!(answered(&world, "NOTENOUGH"), 1);
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_costs_one_sign_error_not_one_per_queued_payout() {
    let mut world = World::new(
        |_| {},
        Options {
            rate_per_minute: 600,
            ..Options::default()
        },
    )
    .await;
    let text = std::fs::read_to_string(&world.config).unwrap();
    let start = text.find("api_key = \"").unwrap() + "api_key = \"".len();
    let wrong = format!("{}{}", &text[..start], "0123456789abcdef0123456789abcdef");
    std::fs::write(&world.config, format!("{wrong}{}", &text[start + 32..])).unwrap();
    world.start_serve().await;
    // Fifty payouts queued at once: stored while the merchant is paused,
    // then all due together.
    let (status, _) = world
        .post(Some(TOKEN), "/v1/merchants/main/pause", &json!({}), None)
        .await;
    assert_eq!(status, 200);
    post_many(&world, 0, 50).await;
    let (status, _) = world
        .post(Some(TOKEN), "/v1/merchants/main/resume", &json!({}), None)
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pause = wait_paused(&world).await;
    assert_eq!(pause["pause_reason"], "configuration", "{pause}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(answered(&world, "SIGN_ERROR"), 1, "{}", world.logs());
    assert!(world.sandbox.ledger().is_empty());
    let records = world.all_records(TOKEN).await;
    assert!(
        records.iter().all(|r| r["status"] == "pending"),
        "{records:?}"
    );
    world.stop_serve();
}
