//! Payouts per second with one, two and three `hongbao serve` processes
//! on one PostgreSQL database, against the sandbox (no latency, no rate
//! limit).
//!
//! `cargo bench -p hongbao --bench instances [-- PAYOUTS]`, with
//! `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`):
//! each round gets a fresh database on that server. The sandbox and the 64
//! HTTP clients run in this process; everything shares the machine's cores.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hongbao_testkit::free_port;
use sqlx::Executor;

const TOKEN: &str = "bench-token-0123456789";

async fn fresh_database(server: &str, round: usize) -> String {
    sqlx::any::install_default_drivers();
    let name = format!("hongbao_bench_{}_{round}", std::process::id());
    let admin = sqlx::AnyPool::connect(server).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    admin.close().await;
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    format!("{base}/{name}")
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn round(server: &str, instances: usize, payouts: u32) {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, merchant) = common::unlimited_sandbox(dir.path(), |_| {}).await;
    let url = fresh_database(server, instances).await;
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
    };
    let config = dir.path().join("hongbao.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{url}\"\n\n{merchant}\n[tenants.bench]\napi_keys_sha256 = [\"{hash}\"]\nmerchants = [\"main\"]\n"
        ),
    )
    .unwrap();
    let mut bases = Vec::new();
    let mut children = Killed(Vec::new());
    for _ in 0..instances {
        let port = free_port();
        children.0.push(
            Command::new(env!("CARGO_BIN_EXE_hongbao"))
                .args(["serve", "--config", config.to_str().unwrap()])
                .env("HONGBAO_SERVER__LISTEN", format!("127.0.0.1:{port}"))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    // Plain HTTP to the API; the client still needs its TLS set up.
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap())
        .build()
        .unwrap();
    for base in &bases {
        common::healthy(&http, base).await;
    }

    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut latencies = Vec::new();
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let (http, bases, next) = (http.clone(), bases.clone(), next.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= payouts {
                        return mine;
                    }
                    let base = &bases[usize::try_from(i).unwrap() % bases.len()];
                    let body = serde_json::json!({
                        "re_openid": format!("oBench{i:022}"),
                        "total_amount": 100 + i % 100,
                        "wishing": "恭喜发财", "act_name": "压测", "remark": "压测",
                    });
                    let t = Instant::now();
                    let response = http
                        .post(format!("{base}/v1/redpacks"))
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 201);
                    mine.push(t.elapsed());
                }
            })
        })
        .collect();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    let stored = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    let total = usize::try_from(payouts).unwrap();
    loop {
        let paid = sandbox.ledger().len();
        if paid >= total {
            break;
        }
        assert!(Instant::now() < deadline, "only {paid} paid");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let end_to_end = started.elapsed();
    assert_eq!(
        sandbox.ledger().iter().filter(|e| e.paid).count(),
        total,
        "every payout paid exactly once"
    );
    latencies.sort();
    let at = |q: usize| latencies[(latencies.len() - 1) * q / 100];
    println!(
        "{instances} instance(s): {payouts} payouts; stored {}/s, end to end {}/s; API p50 {:.1?}, p99 {:.1?}",
        u128::from(payouts) * 1000 / stored.as_millis().max(1),
        u128::from(payouts) * 1000 / end_to_end.as_millis().max(1),
        at(50),
        at(99),
    );
    drop(children);
    sandbox.stop();
    let admin = sqlx::AnyPool::connect(server).await.unwrap();
    let name = url.rsplit_once('/').map_or("", |(_, n)| n);
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
    admin.close().await;
}

fn main() {
    let payouts = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(10_000);
    let server = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for instances in 1..=3 {
        runtime.block_on(round(&server, instances, payouts));
    }
}
