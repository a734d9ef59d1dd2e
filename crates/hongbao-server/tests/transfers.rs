//! Transfers through the HTTP API, with WeChat's callbacks coming back to
//! the service: settled by the callback, duplicates and replays changing
//! nothing, a forged callback refused with nothing stored, a callback for
//! a bill no record has kept for the operator, and a SUCCESS callback that
//! arrives before the create's answer is recorded.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hongbao_sandbox::{Faults, Probability, SandboxConfig, UserAction};
use serde_json::{Value, json};
use support::{App, TOKEN, openid};

/// Waits (bounded) until the transfer `id` has `status`; returns it.
async fn wait_status(app: &App, id: &str, status: &str, timeout: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (code, record) = app.get(Some(TOKEN), &format!("/v1/transfers/{id}")).await;
        assert_eq!(code, 200, "{record}");
        if record["status"] == status {
            return record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} is {} after {timeout:?}, not {status}",
            record["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn quiet_user(c: &mut SandboxConfig) {
    c.transfers.confirm_probability = Probability::NEVER;
    c.transfers.transferring_for = Duration::from_millis(0);
}

async fn create(app: &App, n: u32, fen: u64) -> Value {
    let (status, record) = app
        .post(
            Some(TOKEN),
            "/v1/transfers?wait=10",
            &json!({"openid": openid(n), "transfer_amount": fen}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    record
}

fn confirm(app: &App, out_bill_no: &str) {
    app.sandbox
        .with(|s| s.user_acts(out_bill_no, Some(UserAction::Confirm), None))
        .unwrap();
}

fn metric(text: &str, name: &str, labels: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_settles_a_confirmed_transfer_and_its_duplicates_change_nothing() {
    let mut app = App::start_full(
        "",
        |c| {
            quiet_user(c);
            c.transfers.callback_duplicate_probability = Probability::ALWAYS;
        },
        |t| t,
        Some(""),
    )
    .await;
    let record = create(&app, 1, 188).await;
    assert_eq!(record["status"], "awaiting_confirmation", "{record}");
    let confirm_args = &record["confirm"];
    let mch_id = app.sandbox.with(|s| s.secrets().mch_id.clone());
    assert_eq!(confirm_args["mch_id"], mch_id);
    assert!(!confirm_args["package"].as_str().unwrap().is_empty());
    assert!(record["expires_at"].is_string());
    let id = record["id"].as_str().unwrap();
    let bill = record["out_bill_no"].as_str().unwrap();

    // A transfer is not a red packet.
    let (status, _) = app.get(Some(TOKEN), &format!("/v1/redpacks/{id}")).await;
    assert_eq!(status, 404);
    let (_, list) = app.get(Some(TOKEN), "/v1/redpacks").await;
    assert_eq!(list["meta"]["total_count"], 0, "{list}");
    let (_, list) = app.get(Some(TOKEN), "/v1/transfers").await;
    assert_eq!(list["meta"]["total_count"], 1, "{list}");

    confirm(&app, bill);
    let paid = wait_status(&app, id, "succeeded", Duration::from_secs(15)).await;
    assert_eq!(paid["wechat_state"], "SUCCESS");
    assert!(paid["confirm"].is_null());
    // Settled by the callback alone: no query was made.
    let (_, attempts) = app
        .get(Some(TOKEN), &format!("/v1/transfers/{id}/attempts"))
        .await;
    let apis: Vec<&str> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["api"].as_str().unwrap())
        .collect();
    assert_eq!(apis, ["transfer-bills"], "{attempts}");
    // The sandbox sends every acknowledged callback once more.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = app.metrics().await;
        let applied = metric(
            &text,
            "hongbao_transfer_callbacks_total",
            "outcome=\"applied\"",
        );
        let duplicate = metric(
            &text,
            "hongbao_transfer_callbacks_total",
            "outcome=\"duplicate\"",
        );
        if applied == 1 && duplicate >= 1 {
            assert!(
                text.contains("rail=\"transfer\",status=\"succeeded\""),
                "the payouts gauge names the rail"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "applied {applied}, duplicate {duplicate}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = wait_status(&app, id, "succeeded", Duration::from_secs(1)).await;
    assert_eq!(again["updated_at"], paid["updated_at"], "nothing changed");
    let (_, stats) = app.get(Some(TOKEN), "/v1/stats").await;
    assert_eq!(
        stats["today"]["by_rail"]["transfer"]["amount"], 188,
        "{stats}"
    );
    app.stop().await;
}

/// A plain HTTP client (on the workspace's one TLS stack, with ring).
fn plain_http() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What a recorder in front of the service saw: each callback's headers and body.
type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A recorder of callbacks on 127.0.0.1: keeps each one, passes it on to
/// `target` (known once the service listens) and answers with its status.
async fn recorder(target: Arc<OnceLock<String>>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let http = plain_http();
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (kept, http, target) = (kept.clone(), http.clone(), target.clone());
            async move {
                kept.lock().unwrap().push((headers.clone(), body.clone()));
                let Some(url) = target.get() else {
                    return StatusCode::SERVICE_UNAVAILABLE;
                };
                let status = forward(&http, url, &headers, body).await;
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn forward(http: &reqwest::Client, url: &str, headers: &HeaderMap, body: Bytes) -> u16 {
    let mut request = http.post(url).body(body);
    for (name, value) in headers {
        if name.as_str().starts_with("wechatpay-") || name == "content-type" {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    request.send().await.map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_callback_changes_nothing_and_a_forged_one_is_refused() {
    let target = Arc::new(OnceLock::new());
    let (notify, seen) = recorder(target.clone()).await;
    let mut app = App::start_full(
        "",
        |c| {
            quiet_user(c);
            c.transfers.callback_duplicate_probability = Probability::NEVER;
        },
        |t| format!("{t}notify_url = \"{notify}\"\n"),
        None,
    )
    .await;
    let hongbao = format!("{}/v1/notify/transfers/main", app.base);
    target.set(hongbao.clone()).unwrap();
    let record = create(&app, 2, 300).await;
    let id = record["id"].as_str().unwrap();
    confirm(&app, record["out_bill_no"].as_str().unwrap());
    let paid = wait_status(&app, id, "succeeded", Duration::from_secs(15)).await;
    let (headers, body) = seen.lock().unwrap().first().cloned().expect("a callback");

    // The same callback again: acknowledged, nothing changes.
    let http = plain_http();
    assert_eq!(forward(&http, &hongbao, &headers, body.clone()).await, 204);
    // Forged: the body altered, or the signature replaced.
    let mut altered = body.to_vec();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        forward(&http, &hongbao, &headers, Bytes::from(altered)).await,
        401
    );
    let mut forged = headers.clone();
    forged.insert(
        "wechatpay-signature",
        "c2lnbmVkIGJ5IG5vYm9keQ==".parse().unwrap(),
    );
    assert_eq!(forward(&http, &hongbao, &forged, body.clone()).await, 401);
    // Without the headers at all.
    let bare = http.post(&hongbao).body(body.clone()).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    let answer: Value = bare.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_signature", "{answer}");
    // For a merchant that does not exist.
    let other = format!("{}/v1/notify/transfers/nobody", app.base);
    assert_eq!(forward(&http, &other, &headers, body).await, 404);

    let after = wait_status(&app, id, "succeeded", Duration::from_secs(1)).await;
    assert_eq!(after["updated_at"], paid["updated_at"]);
    let text = app.metrics().await;
    assert_eq!(
        metric(
            &text,
            "hongbao_transfer_callbacks_total",
            "outcome=\"applied\""
        ),
        1
    );
    assert_eq!(
        metric(
            &text,
            "hongbao_transfer_callbacks_total",
            "outcome=\"duplicate\""
        ),
        1
    );
    assert_eq!(
        metric(
            &text,
            "hongbao_transfer_callbacks_total",
            "outcome=\"refused\""
        ),
        3
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_for_a_bill_no_record_has_is_kept_and_acknowledged() {
    let mut app = App::start_full("", quiet_user, |t| t, Some("")).await;
    let payouts = app.running.as_ref().unwrap().payouts().clone();
    let merchant = payouts.merchants()["main"].clone();
    // Another system creates a bill on the same merchant, with this
    // service's notify_url.
    let client = merchant.rails.transfer().unwrap();
    let notify = merchant.config.v3.as_ref().unwrap().notify_url.clone();
    assert!(
        notify
            .as_deref()
            .is_some_and(|u| u.ends_with("/v1/notify/transfers/main"))
    );
    let foreign = hongbao_wxpay::v3::CreateTransfer {
        appid: merchant.config.appid.clone(),
        out_bill_no: hongbao_wxpay::v3::OutBillNo::parse("FOREIGN0001").unwrap(),
        transfer_scene_id: hongbao_wxpay::v3::TransferSceneId::cash_marketing(),
        openid: hongbao_wxpay::OpenId::parse(&openid(9)).unwrap(),
        user_name: None,
        transfer_amount: hongbao_wxpay::Fen::new(100),
        transfer_remark: "another system".into(),
        notify_url: notify,
        user_recv_perception: None,
        transfer_scene_report_infos: hongbao_wxpay::v3::CreateTransfer::cash_marketing_reports(
            "活动", "奖励",
        ),
    };
    let prepared = client.prepare(&foreign).unwrap();
    let created = client.create(&prepared).await;
    assert!(
        matches!(created, hongbao_wxpay::v3::TransferOutcome::AwaitingUser(_)),
        "{created:?}"
    );
    confirm(&app, "FOREIGN0001");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let kept = loop {
        let kept = payouts
            .ledger()
            .unknown_notifications(&["main".to_owned()], 10)
            .await
            .unwrap();
        if !kept.is_empty() {
            break kept;
        }
        assert!(tokio::time::Instant::now() < deadline, "never kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(kept[0].out_bill_no, "FOREIGN0001");
    assert_eq!(kept[0].state, "SUCCESS");
    // Acknowledged: WeChat stops sending it.
    let bill = app
        .sandbox
        .transfers()
        .into_iter()
        .find(|b| b.out_bill_no == "FOREIGN0001")
        .unwrap();
    assert!(bill.callback_delivered);
    let (_, list) = app.get(Some(TOKEN), "/v1/transfers").await;
    assert_eq!(list["meta"]["total_count"], 0, "no record was made of it");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_callback_before_the_create_answer_is_recorded_stands() {
    let mut app = App::start_full(
        "",
        |c| {
            quiet_user(c);
            c.faults = Faults {
                latency: Probability::ALWAYS,
                latency_ms: 3_000,
                ..Faults::default()
            };
        },
        |t| t,
        Some(""),
    )
    .await;
    let (status, record) = app
        .post(
            Some(TOKEN),
            "/v1/transfers",
            &json!({"openid": openid(3), "transfer_amount": 500}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    let id = record["id"].as_str().unwrap().to_owned();
    let bill = record["out_bill_no"].as_str().unwrap().to_owned();
    // The bill exists at WeChat while the create's answer is on its way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !app
        .sandbox
        .transfers()
        .iter()
        .any(|b| b.out_bill_no == bill)
    {
        assert!(tokio::time::Instant::now() < deadline, "never created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    confirm(&app, &bill);
    let paid = wait_status(&app, &id, "succeeded", Duration::from_secs(10)).await;
    // The create's answer (WAIT_USER_CONFIRM) arrives after: it is kept
    // with the record's calls and does not take the record back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, attempts) = app
            .get(Some(TOKEN), &format!("/v1/transfers/{id}/attempts"))
            .await;
        if !attempts.as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the create was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = wait_status(&app, &id, "succeeded", Duration::from_secs(1)).await;
    assert_eq!(after["wechat_state"], "SUCCESS");
    assert_eq!(after["transfer_bill_no"], paid["transfer_bill_no"]);
    let bills = app.sandbox.transfers();
    assert_eq!(bills.len(), 1);
    assert_eq!(bills[0].times_requested, 1, "one create");
    assert!(bills[0].paid);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_is_cancelled_through_the_api_and_bad_requests_name_their_field() {
    let mut app = App::start_full(
        "",
        |c| {
            quiet_user(c);
            c.transfers.canceling_for = Duration::from_millis(0);
        },
        |t| t,
        Some(""),
    )
    .await;
    let record = create(&app, 4, 100).await;
    let id = record["id"].as_str().unwrap();
    let (status, cancelled) = app
        .post(
            Some(TOKEN),
            &format!("/v1/transfers/{id}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert!(
        matches!(
            cancelled["status"].as_str(),
            Some("cancelling" | "cancelled")
        ),
        "{cancelled}"
    );
    let done = wait_status(&app, id, "cancelled", Duration::from_secs(15)).await;
    assert_eq!(done["fail_reason"], "MCH_CANCEL");
    let (status, again) = app
        .post(
            Some(TOKEN),
            &format!("/v1/transfers/{id}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "cancelling again is safe: {again}");

    let paid = create(&app, 5, 100).await;
    let paid_id = paid["id"].as_str().unwrap();
    confirm(&app, paid["out_bill_no"].as_str().unwrap());
    wait_status(&app, paid_id, "succeeded", Duration::from_secs(15)).await;
    let (status, refused) = app
        .post(
            Some(TOKEN),
            &format!("/v1/transfers/{paid_id}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "not_cancellable");

    // Asking WeChat now.
    let (status, asked) = app
        .get(Some(TOKEN), &format!("/v1/transfers/status?id={paid_id}"))
        .await;
    assert_eq!(status, 200, "{asked}");
    assert_eq!(asked["wechat"]["state"], "SUCCESS");
    assert_eq!(asked["record"]["status"], "succeeded");

    for (body, field, code) in [
        (json!({"transfer_amount": 100}), "openid", 400),
        (json!({"openid": openid(6)}), "transfer_amount", 400),
        (
            json!({"openid": openid(6), "transfer_amount": 9}),
            "transfer_amount",
            422,
        ),
        (
            json!({"openid": openid(6), "transfer_amount": 100, "remark": "x"}),
            "remark",
            400,
        ),
        (
            json!({"openid": openid(6), "transfer_amount": 200000}),
            "user_name",
            422,
        ),
        (
            json!({"openid": openid(6), "transfer_amount": 100, "user_recv_perception": "红包"}),
            "user_recv_perception",
            422,
        ),
    ] {
        let (status, answer) = app.post(Some(TOKEN), "/v1/transfers", &body).await;
        assert_eq!(status, code, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    let (_, list) = app.get(Some(TOKEN), "/v1/transfers").await;
    assert_eq!(
        list["meta"]["total_count"], 2,
        "nothing stored for a bad request"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_prize_answers_its_confirm_and_is_claimable_again_once_the_bill_expires() {
    let mut app = App::start_full("", quiet_user, |t| t, Some("")).await;
    let (status, activity) = app
        .post(
            Some(TOKEN),
            "/v1/activities",
            &json!({"name": "新年抽奖", "rail": "transfer", "min_amount": 10, "max_amount": 10000,
                    "transfer_remark": "新年红包", "activity_name": "新年抽奖", "reward_description": "一等奖"}),
        )
        .await;
    assert_eq!(status, 201, "{activity}");
    assert_eq!(activity["rail"], "transfer");
    assert_eq!(activity["remark"], "新年红包");
    assert_eq!(activity["require_follow"], false);
    let (status, prize) = app
        .post(
            Some(TOKEN),
            "/v1/prizes",
            &json!({"activity": "新年抽奖", "user": "u1", "amount": 88, "openid": openid(7)}),
        )
        .await;
    assert_eq!(status, 201, "{prize}");
    let id = prize["id"].as_str().unwrap();
    let (status, claimed) = app
        .post(
            Some(TOKEN),
            &format!("/v1/prizes/{id}/claim?wait=10"),
            &json!({"openid": openid(7)}),
        )
        .await;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["status"], "issued", "{claimed}");
    assert!(
        claimed["confirm"]["package"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "{claimed}"
    );
    assert_eq!(claimed["transfer"]["status"], "awaiting_confirmation");
    let first_bill = claimed["transfer"]["out_bill_no"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second claim while the bill is live is refused: never two live bills.
    let (status, again) = app
        .post(
            Some(TOKEN),
            &format!("/v1/prizes/{id}/claim"),
            &json!({"openid": openid(7)}),
        )
        .await;
    assert_eq!(status, 409, "{again}");

    // The user never confirms: 24 hours later WeChat closes the bill and
    // calls back; the prize is claimable again.
    app.sandbox.with(|s| s.advance_clock(24 * 3600 + 60));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, p) = app.get(Some(TOKEN), &format!("/v1/prizes/{id}")).await;
        if p["status"] == "pending" {
            assert_eq!(p["last_err_code"], "OVERDUE_CLOSE", "{p}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, reclaimed) = app
        .post(
            Some(TOKEN),
            &format!("/v1/prizes/{id}/claim?wait=10"),
            &json!({"openid": openid(7)}),
        )
        .await;
    assert_eq!(status, 200, "{reclaimed}");
    let second_bill = reclaimed["transfer"]["out_bill_no"].as_str().unwrap();
    assert_ne!(
        second_bill, first_bill,
        "a new bill once the old one is closed"
    );
    confirm(&app, second_bill);
    let transfer_id = reclaimed["transfer"]["id"].as_str().unwrap();
    wait_status(&app, transfer_id, "succeeded", Duration::from_secs(15)).await;
    let bills = app.sandbox.transfers();
    assert_eq!(bills.len(), 2);
    assert_eq!(bills.iter().filter(|b| b.paid).count(), 1, "paid once");
    let (_, activity) = app.get(Some(TOKEN), "/v1/activities/新年抽奖").await;
    assert_eq!(activity["committed"], 88, "{activity}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_campaign_makes_a_bill_per_row_and_exports_their_confirm_parameters() {
    let mut app = App::start_full("", quiet_user, |t| t, Some("")).await;
    let rows: Vec<Value> = (0..40)
        .map(|n| json!({"openid": openid(100 + n), "total_amount": 10 + u64::from(n)}))
        .collect();
    let (status, campaign) = app
        .post(
            Some(TOKEN),
            "/v1/campaigns",
            &json!({"name": "转账活动", "merchant": "main", "rail": "transfer", "remark": "活动奖励", "rows": rows}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let campaign = loop {
        let (_, c) = app.get(Some(TOKEN), &format!("/v1/campaigns/{id}")).await;
        if c["awaiting_count"] == 40 {
            break c;
        }
        assert!(tokio::time::Instant::now() < deadline, "{c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(campaign["status"], "done", "{campaign}");
    assert_eq!(campaign["open_count"], 0);
    let response = app
        .http
        .get(format!("{}/v1/campaigns/{id}/confirms.csv", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "line,openid,amount,out_bill_no,mch_id,appid,package,expires_at"
    );
    assert_eq!(lines.len(), 41, "{csv}");
    // JSON rows are numbered from 2 (their position plus one, as below a header).
    assert!(
        lines[1].starts_with(&format!("2,{},0.10,", openid(100))),
        "{}",
        lines[1]
    );
    // Some users confirm, one bill expires unconfirmed.
    let (_, list) = app
        .get(
            Some(TOKEN),
            &format!("/v1/transfers?campaign_id={id}&limit=100"),
        )
        .await;
    let objects = list["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 40);
    for record in objects.iter().take(10) {
        confirm(&app, record["out_bill_no"].as_str().unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, c) = app.get(Some(TOKEN), &format!("/v1/campaigns/{id}")).await;
        if c["paid_count"] == 10 {
            assert_eq!(c["awaiting_count"], 30, "{c}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.sandbox.with(|s| s.advance_clock(24 * 3600 + 60));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, c) = app.get(Some(TOKEN), &format!("/v1/campaigns/{id}")).await;
        if c["expired_count"] == 30 {
            assert_eq!(c["failed_count"], 30, "{c}");
            assert_eq!(c["awaiting_count"], 0, "{c}");
            assert_eq!(c["err_codes"]["OVERDUE_CLOSE"], 30, "{c}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bills = app.sandbox.transfers();
    assert_eq!(bills.len(), 40, "one bill per row");
    assert_eq!(bills.iter().filter(|b| b.paid).count(), 10);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_with_the_v3_keys_alone_pays_by_transfer_alone() {
    let without_v2_key = |t: String| {
        t.lines()
            .filter(|l| !l.starts_with("api_key ="))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    let mut app = App::start_full("", quiet_user, without_v2_key, Some("")).await;
    let record = create(&app, 8, 100).await;
    assert_eq!(record["status"], "awaiting_confirmation", "{record}");
    let (status, refused) = app
        .post(
            Some(TOKEN),
            "/v1/redpacks",
            &json!({"re_openid": openid(8), "total_amount": 100}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "merchant");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("transfer"),
        "{refused}"
    );
    app.stop().await;
}
