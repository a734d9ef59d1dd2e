//! Durable payouts per second through the HTTP API, end to end (stored,
//! sent to the sandbox, outcome recorded), and the API's latency:
//! `cargo bench -p hongbao-server --bench payouts [-- N CONCURRENCY]`.
//!
//! Everything runs in one process on this machine: the HTTP clients, the
//! API, the dispatcher, SQLite (WAL, synchronous=FULL) and the sandbox
//! over TLS — so they share its cores.

mod common;

use std::time::Instant;

use common::{Bench, TOKEN, percentiles, rate};

fn main() {
    let (n, concurrency) = common::args(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(n, concurrency));
}

async fn run(n: usize, concurrency: usize) {
    let bench = Bench::start(concurrency).await;
    let started = Instant::now();
    let latencies = bench
        .clients(n, concurrency, |http, base, seq| async move {
            let body = serde_json::json!({
                "re_openid": format!("oBench{seq:022}"),
                "total_amount": 188,
                "wishing": "恭喜发财", "act_name": "压测", "remark": "压测"
            });
            let response = http
                .post(format!("{base}/v1/redpacks"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
            let _ = response.bytes().await;
        })
        .await;
    let stored = started.elapsed();
    let total = latencies.len();
    bench.wait_sent(total).await;
    let done = started.elapsed();
    let paid = bench.sandbox.ledger().len();
    println!("{total} payouts through the API, {concurrency} concurrent clients");
    println!(
        "  stored (201 answered):   {} /s over {} ms",
        rate(total, stored),
        stored.as_millis()
    );
    println!(
        "  end to end (sent, recorded): {} /s over {} ms",
        rate(total, done),
        done.as_millis()
    );
    println!("  API latency {}", percentiles(latencies));
    println!("  sandbox ledger: {paid} payments");
    assert_eq!(paid, total, "every payout paid exactly once");
    bench.running.stop().await;
}
