//! The API's contract at its edges: every error in the documented shape,
//! unknown query parameters refused by name, health and metrics that name
//! no merchant without a key, and idempotency keys as documented.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{App, OTHER_TOKEN, TOKEN, openid, read_answer, send};

fn assert_error_shape(what: &str, status: u16, body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{what} ({status}): {body}");
    for text in ["message", "zh_message"] {
        assert!(
            body["error"][text].as_str().is_some_and(|t| !t.is_empty()),
            "{what}: no {text} in {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_answered_in_the_documented_shape() {
    let mut app = App::start("").await;

    // A path that exists, with a method it does not take.
    for (method, path) in [
        (reqwest::Method::PUT, "/v1/redpacks"),
        (reqwest::Method::DELETE, "/v1/redpacks"),
        (reqwest::Method::POST, "/healthz"),
        (reqwest::Method::PATCH, "/v1/prizes/pz_1"),
    ] {
        let response = app
            .http
            .request(method.clone(), format!("{}{path}", app.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let (status, body) = support::answer(response).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_error_shape(
            &format!("{method} {path}"),
            status,
            &body,
            "method_not_allowed",
        );
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert!(
            allow.is_some_and(|a| !a.is_empty()),
            "{method} {path}: no Allow"
        );
    }

    // Query parameters given twice, and a path that is not UTF-8.
    for (path, field) in [
        ("/v1/redpacks?limit=1&limit=2", "limit"),
        ("/v1/redpacks?status=sent&status=failed", "status"),
        ("/v1/prizes?user=a&user=b", "user"),
        ("/v1/redpacks/%FF%FE", "path"),
    ] {
        let (status, body) = app.get(Some(TOKEN), path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_error_shape(path, status, &body, "invalid_request");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }

    // A path and query too long, headers too large or too many.
    let long = format!("/v1/redpacks?re_openid={}", "o".repeat(9_000));
    let (status, body) = app.get(Some(TOKEN), &long).await;
    assert_eq!(status, 414, "{body}");
    assert_error_shape("a long URI", status, &body, "uri_too_long");
    let big = app
        .http
        .get(format!("{}/v1/redpacks", app.base))
        .bearer_auth(TOKEN)
        .header("x-padding", "p".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    let (status, body) = support::answer(big).await;
    assert_eq!(status, 431, "{body}");
    assert_error_shape("large headers", status, &body, "headers_too_large");
    let mut many = app.http.get(format!("{}/v1/redpacks", app.base));
    for i in 0..80 {
        many = many.header(format!("x-field-{i}"), "v");
    }
    let (status, body) = support::answer(many.send().await.unwrap()).await;
    assert_eq!(status, 431, "{body}");
    assert_error_shape("many headers", status, &body, "headers_too_large");

    // A body over the limit without a Content-Length (chunked), on a
    // route that reads it as bytes.
    let mut stream = app.connect().await;
    let head = format!(
        "POST /v1/activities HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    send(&mut stream, head.as_bytes()).await;
    let chunk = "x".repeat(10 * 1024);
    let mut framed = String::new();
    for _ in 0..7 {
        framed.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    framed.push_str("0\r\n\r\n");
    send(&mut stream, framed.as_bytes()).await;
    let answer = read_answer(&mut stream, Duration::from_secs(30)).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_error_shape("a chunked body", 413, &answer.json(), "body_too_large");

    // Unknown paths too.
    let (status, body) = app.get(Some(TOKEN), "/v2/nothing").await;
    assert_eq!(status, 404);
    assert_error_shape("an unknown path", status, &body, "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_query_parameters_are_refused_by_name_on_every_endpoint() {
    let mut app = App::start("").await;
    for (path, field) in [
        ("/v1/redpacks?openid=x", "openid"),
        ("/v1/redpacks?limit=5&receiver=x", "receiver"),
        ("/v1/redpacks/status?billno=1", "billno"),
        ("/v1/redpacks/rp_1?verbose=1", "verbose"),
        ("/v1/campaigns?limit=5", "limit"),
        ("/v1/activities?merchant=main", "merchant"),
        ("/v1/prizes?openid=x", "openid"),
        ("/v1/merchants?all=1", "all"),
        ("/v1/stats?buckets=day", "buckets"),
        ("/v1/health?verbose=1", "verbose"),
    ] {
        let (status, body) = app.get(Some(TOKEN), path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_error_shape(path, status, &body, "invalid_request");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("parameter"),
            "{path}: {body}"
        );
    }
    // A misspelt option of a create is refused, not ignored.
    let (status, body) = app
        .post(
            Some(TOKEN),
            "/v1/redpacks?wiat=5",
            &json!({"re_openid": openid(1), "total_amount": 100}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("wiat")),
        "{body}"
    );
    let (_, list) = app.get(Some(TOKEN), "/v1/redpacks").await;
    assert_eq!(list["meta"]["total_count"], 0, "nothing was stored");

    // A filter naming what the key does not have: 404, the same for
    // another tenant's merchant as for none at all.
    for (path, field) in [
        ("/v1/redpacks?merchant=nope", "merchant"),
        ("/v1/redpacks?merchant=second", "merchant"),
        ("/v1/redpacks?campaign_id=cp_nope", "campaign_id"),
        ("/v1/campaigns?merchant=nope", "merchant"),
        ("/v1/prizes?activity=nope", "activity"),
    ] {
        let (status, body) = app.get(Some(TOKEN), path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_error_shape(path, status, &body, "not_found");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
    for path in ["/v1/redpacks?merchant=main", "/v1/campaigns?merchant=main"] {
        let (status, body) = app.get(Some(TOKEN), path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    app.stop().await;
}

/// The sandbox merchant's mch_id, as its configuration says.
fn mch_id(app: &App) -> String {
    let toml = app.sandbox.merchant_toml("main");
    toml.lines()
        .find_map(|l| l.strip_prefix("mch_id = "))
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_name_no_merchant_without_a_key() {
    let mut app = App::start("metrics_listen = \"127.0.0.1:0\"").await;
    let mch_id = mch_id(&app);

    let public = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 200);
    let text = public.text().await.unwrap();
    let health: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(health, json!({"status": "ok", "database": "ok"}));
    assert!(!text.contains(&mch_id) && !text.contains("main"), "{text}");

    let (status, body) = app.get(None, "/metrics").await;
    assert_eq!(status, 401, "{body}");
    let mine = app.metrics().await;
    assert!(mine.contains("merchant=\"main\""), "{mine}");
    assert!(!mine.contains("merchant=\"second\""), "{mine}");
    assert!(mine.contains("hongbao_http_connections"), "{mine}");

    // Each key sees its own merchants' health.
    let (status, acme) = app.get(Some(TOKEN), "/v1/health").await;
    assert_eq!(status, 200, "{acme}");
    assert_eq!(acme["status"], "ok");
    let names: Vec<&str> = acme["merchants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main"]);
    assert_eq!(acme["merchants"][0]["mch_id"], mch_id.as_str());
    let (_, beta) = app.get(Some(OTHER_TOKEN), "/v1/health").await;
    assert_eq!(beta["merchants"].as_array().unwrap().len(), 1);
    assert_eq!(beta["merchants"][0]["name"], "second");
    let (status, _) = app.get(None, "/v1/health").await;
    assert_eq!(status, 401);

    // A paused merchant: degraded for everyone, named only to its tenant.
    let (status, _) = app
        .post(Some(TOKEN), "/v1/merchants/main/pause", &json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, health) = app.get(None, "/healthz").await;
    assert_eq!(health, json!({"status": "degraded", "database": "ok"}));
    let (_, acme) = app.get(Some(TOKEN), "/v1/health").await;
    assert_eq!(acme["status"], "degraded");
    assert_eq!(acme["merchants"][0]["pause_reason"], "operator");
    let (_, beta) = app.get(Some(OTHER_TOKEN), "/v1/health").await;
    assert_eq!(beta["status"], "ok", "{beta}");

    // The operator listener: every merchant, no key, and nothing else.
    let operator = format!(
        "http://{}",
        app.running.as_ref().unwrap().operator_addr().unwrap()
    );
    let all = app
        .http
        .get(format!("{operator}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), 200);
    let all = all.text().await.unwrap();
    assert!(
        all.contains("merchant=\"main\"") && all.contains("merchant=\"second\""),
        "{all}"
    );
    let (status, health) = support::answer(
        app.http
            .get(format!("{operator}/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(health["merchants"].as_array().unwrap().len(), 2, "{health}");
    let (status, _) = support::answer(
        app.http
            .get(format!("{operator}/v1/redpacks"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "the operator listener serves no API");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_printable_ascii_spaces_included() {
    let mut app = App::start("").await;
    let post = |key: reqwest::header::HeaderValue, n: u32| {
        let request = app
            .http
            .post(format!("{}/v1/redpacks", app.base))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", key)
            .json(&json!({"re_openid": openid(n), "total_amount": 100}));
        async move { support::answer(request.send().await.unwrap()).await }
    };
    let value = |text: &str| reqwest::header::HeaderValue::from_str(text).unwrap();

    let (first, record) = post(value("a b"), 1).await;
    assert_eq!(first, 201, "{record}");
    let (again, replayed) = post(value("a b"), 1).await;
    assert_eq!(again, 200, "{replayed}");
    assert_eq!(record["id"], replayed["id"]);
    let (other, different) = post(value("a  b"), 2).await;
    assert_eq!(other, 201, "another key: {different}");

    let longest = format!("order {}", "x".repeat(249));
    assert_eq!(longest.len(), 255);
    let (status, body) = post(value(&longest), 3).await;
    assert_eq!(status, 201, "{body}");

    for (key, what) in [
        (value(&format!("{longest}y")), "256 characters"),
        (value("a\tb"), "a tab"),
        (
            reqwest::header::HeaderValue::from_bytes("订单 1".as_bytes()).unwrap(),
            "non-ASCII",
        ),
    ] {
        let (status, body) = post(key, 4).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"]["field"], "Idempotency-Key", "{what}: {body}");
    }
    let (_, list) = app.get(Some(TOKEN), "/v1/redpacks").await;
    assert_eq!(list["meta"]["total_count"], 3);
    app.stop().await;
}
