//! Durable payouts per second through the HTTP API, end to end (stored,
//! sent to the sandbox, outcome recorded), and the API's latency:
//! `cargo bench -p hongbao-server --bench payouts [-- N CONCURRENCY]`.
//!
//! Everything runs in one process on this machine: the HTTP clients, the
//! API, the dispatcher, SQLite (WAL, synchronous=FULL) and the sandbox
//! over TLS — so they share its cores.

use std::time::{Duration, Instant};

use hongbao_core::config::Config;
use hongbao_core::model::Status;
use hongbao_sandbox::{Probability, Rules, Sandbox, SandboxConfig};
use hongbao_wxpay::Fen;

const TOKEN: &str = "bench-token";

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with('-')).collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(n, concurrency));
}

async fn run(n: usize, concurrency: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut sandbox_config = SandboxConfig::new(dir.path().join("sandbox"));
    sandbox_config.balance = Fen::new(u64::MAX / 4);
    sandbox_config.rules = Rules {
        rate_per_minute: 0,
        sendnum_limit: u32::MAX,
        rcvd_amount_limit: Fen::new(u64::MAX / 4),
        send_amount_limit: Fen::new(u64::MAX / 4),
        ..Rules::default()
    };
    sandbox_config.lifecycle.receive_probability = Probability::NEVER;
    let sandbox = Sandbox::start(sandbox_config).await.unwrap();
    let merchant = sandbox
        .merchant_toml("main")
        .replace("rate_per_minute = 1800", "rate_per_minute = 10000000");
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()));
    let text = format!(
        "[database]\nurl = \"sqlite://hongbao.db\"\n\n{merchant}\n[tenants.bench]\napi_keys_sha256 = [\"{hash}\"]\nmerchants = [\"main\"]\n"
    );
    let path = dir.path().join("hongbao.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    let running = hongbao_server::start(&config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", running.addr());
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap())
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();

    let started = Instant::now();
    let per_client = n.div_ceil(concurrency);
    let mut clients = Vec::new();
    for c in 0..concurrency {
        let (http, base) = (http.clone(), base.clone());
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let seq = c * per_client + i;
                let body = serde_json::json!({
                    "re_openid": format!("oBench{seq:022}"),
                    "total_amount": 188,
                    "wishing": "恭喜发财", "act_name": "压测", "remark": "压测"
                });
                let call = Instant::now();
                let response = http
                    .post(format!("{base}/v1/redpacks"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 201);
                let _ = response.bytes().await;
                latencies.push(call.elapsed());
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    let stored = started.elapsed();
    let total = latencies.len();
    // Until every payout is sent and recorded (bounded).
    let ledger = running.payouts().ledger().clone();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let totals = ledger.totals().await.unwrap();
        let sent: u64 = totals
            .iter()
            .filter(|t| t.status == Status::Sent)
            .map(|t| t.count)
            .sum();
        if sent == u64::try_from(total).unwrap() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    let rate = |count: usize, d: Duration| {
        u128::try_from(count).unwrap() * 1_000_000 / d.as_micros().max(1)
    };
    let paid = sandbox.ledger().len();
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
    println!(
        "  API latency p50 {:?}  p99 {:?}  max {:?}",
        pct(50),
        pct(99),
        latencies[latencies.len() - 1]
    );
    println!("  sandbox ledger: {paid} payments");
    assert_eq!(paid, total, "every payout paid exactly once");
    running.stop().await;
}
