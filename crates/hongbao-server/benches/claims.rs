//! Prize claims per second through the HTTP API, each with its follow check
//! (`user/info` at the sandbox, one shared access token), its claim
//! transaction and its payout, end to end; and a hundred taps at one prize:
//! `cargo bench -p hongbao-server --bench claims [-- N CONCURRENCY]`.
//!
//! Everything runs in one process on this machine (clients, API,
//! dispatcher, SQLite with synchronous=FULL, the sandbox over TLS).

mod common;

use std::time::Instant;

use common::{Bench, TOKEN, percentiles, rate};
use serde_json::{Value, json};

fn main() {
    let (n, concurrency) = common::args(5_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(n, concurrency));
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let response = http
        .post(url)
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn run(n: usize, concurrency: usize) {
    let bench = Bench::start(concurrency).await;
    let (status, _) = post(
        &bench.http,
        format!("{}/v1/activities", bench.base),
        &json!({"name": "bench"}),
    )
    .await;
    assert_eq!(status, 201);

    // Grants: N prizes, each to its own user.
    let started = Instant::now();
    let grants = bench
        .clients(n, concurrency, |http, base, seq| async move {
            let body = json!({"activity": "bench", "user": format!("u-{seq}"), "amount": 188});
            let (status, _) = post(&http, format!("{base}/v1/prizes"), &body).await;
            assert_eq!(status, 201);
        })
        .await;
    let granted = started.elapsed();
    let mut ids = Vec::with_capacity(n);
    let mut offset = 0;
    while ids.len() < n {
        let page: Value = bench
            .http
            .get(format!(
                "{}/v1/prizes?limit=1000&offset={offset}",
                bench.base
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let objects = page["objects"].as_array().unwrap();
        assert!(!objects.is_empty());
        offset += objects.len();
        ids.extend(objects.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
    }
    let ids = std::sync::Arc::new(ids);

    // Claims: each prize by its winner.
    let started = Instant::now();
    let claims = bench
        .clients(n, concurrency, move |http, base, seq| {
            let ids = ids.clone();
            async move {
                let body = json!({"openid": format!("oClaim{seq:022}")});
                let url = format!("{base}/v1/prizes/{}/claim", ids[seq]);
                let (status, answer) = post(&http, url, &body).await;
                assert_eq!(status, 202, "{answer}");
            }
        })
        .await;
    let claimed = started.elapsed();
    bench.wait_sent(n).await;
    let done = started.elapsed();

    // A hundred taps at one prize.
    let (_, one) = post(
        &bench.http,
        format!("{}/v1/prizes", bench.base),
        &json!({"activity": "bench", "user": "tapper", "amount": 100}),
    )
    .await;
    let id = one["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let taps = bench
        .clients(100, 100, move |http, base, _| {
            let id = id.clone();
            async move {
                let url = format!("{base}/v1/prizes/{id}/claim");
                let (status, _) =
                    post(&http, url, &json!({"openid": format!("oTapper{:021}", 1)})).await;
                assert!(status == 202 || status == 409);
            }
        })
        .await;
    let tapped = started.elapsed();
    bench.wait_sent(n + 1).await;

    let paid = bench.sandbox.ledger().len();
    let tokens = bench
        .sandbox
        .with(|s| s.counters().requests.get("token").copied().unwrap_or(0));
    println!("{n} prizes, {concurrency} concurrent clients");
    println!(
        "  granted:  {} /s over {} ms; latency {}",
        rate(n, granted),
        granted.as_millis(),
        percentiles(grants)
    );
    println!(
        "  claimed (202 answered, follow check included): {} /s over {} ms; latency {}",
        rate(n, claimed),
        claimed.as_millis(),
        percentiles(claims)
    );
    println!(
        "  claimed and paid, end to end: {} /s over {} ms",
        rate(n, done),
        done.as_millis()
    );
    println!(
        "  100 taps at one prize: {} ms in all; latency {}",
        tapped.as_millis(),
        percentiles(taps)
    );
    println!("  sandbox: {paid} payments, {tokens} access token(s) fetched");
    assert_eq!(paid, n + 1, "every prize paid exactly once");
    bench.running.stop().await;
}
