//! Transfer bills end to end through `hongbao serve`: posted to the API,
//! stored, created at the sandbox (awaiting their users), then confirmed
//! and settled by the sandbox's callbacks. Prints bills created per second
//! and the CPU (user + system) of the `serve` process per transfer, startup
//! excluded, for the create and for the whole life of a bill.
//!
//! `cargo bench -p hongbao --bench transfers [-- TRANSFERS]` (default
//! 2,000). The sandbox keeps WeChat's limit of 100 creates a second, and
//! hongbao its own pace under it, so the rate is WeChat's limit, not the
//! machine's: the CPU per transfer is what this measures. The sandbox and
//! the 32 HTTP clients run in this process; `serve` runs on its own.

mod common;

use std::time::{Duration, Instant};

use hongbao_sandbox::{Probability, UserAction};
use hongbao_testkit::free_port;

const TOKEN: &str = "bench-token-0123456789";

/// Microseconds of CPU per transfer between two readings.
fn per_transfer(before: u64, after: u64, n: u64) -> u64 {
    after.saturating_sub(before) * 10_000 / n.max(1)
}

async fn count(http: &reqwest::Client, base: &str, status: &str) -> u64 {
    let page: serde_json::Value = http
        .get(format!("{base}/v1/transfers?status={status}&limit=1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["meta"]["total_count"].as_u64().unwrap_or(0)
}

async fn wait_for(http: &reqwest::Client, base: &str, status: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = count(http, base, status).await;
        if done >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {done} of {n} {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(transfers: u32) {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, merchant) = common::unlimited_sandbox(dir.path(), |c| {
        c.operations_balance = hongbao_wxpay::Fen::new(u64::MAX / 4);
        c.transfers.confirm_probability = Probability::NEVER;
        c.transfers.transferring_for = Duration::ZERO;
        c.transfers.callback_duplicate_probability = Probability::NEVER;
    })
    .await;
    let port = free_port();
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
    };
    let config = dir.path().join("hongbao.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n\n{merchant}notify_url = \"http://127.0.0.1:{port}/v1/notify/transfers/main\"\n\n\
             [tenants.bench]\napi_keys_sha256 = [\"{hash}\"]\nmerchants = [\"main\"]\n",
            dir.path().join("hongbao.db").display()
        ),
    )
    .unwrap();
    let http = common::http();
    let (serve, base) = common::serve(&config, port, &http).await;
    let pid = serve.0.id().to_string();
    // Let start-up work (migrations, first connections) settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = common::cpu_ticks(&pid);

    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let (http, base, next) = (http.clone(), base.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= transfers {
                        return;
                    }
                    let body = serde_json::json!({
                        "openid": format!("oBench{i:022}"),
                        "transfer_amount": 100 + i % 100,
                    });
                    let response = http
                        .post(format!("{base}/v1/transfers"))
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 201);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let stored = started.elapsed();
    let n = u64::from(transfers);
    wait_for(&http, &base, "awaiting_confirmation", n).await;
    let created = started.elapsed();
    let after_create = common::cpu_ticks(&pid);

    let bills = sandbox.transfers();
    assert_eq!(bills.len(), usize::try_from(n).unwrap(), "one bill each");
    let confirming = Instant::now();
    for bill in &bills {
        sandbox
            .with(|s| s.user_acts(&bill.out_bill_no, Some(UserAction::Confirm), None))
            .unwrap();
    }
    wait_for(&http, &base, "succeeded", n).await;
    let settled = confirming.elapsed();
    let after_settle = common::cpu_ticks(&pid);
    let paid = sandbox.transfers().iter().filter(|b| b.paid).count();
    assert_eq!(paid, usize::try_from(n).unwrap(), "every bill paid once");

    println!(
        "{transfers} transfers through `hongbao serve` (SQLite, synchronous=FULL), 32 clients"
    );
    println!(
        "  stored (201 answered): {} /s over {} ms",
        n * 1000 / u64::try_from(stored.as_millis()).unwrap().max(1),
        stored.as_millis()
    );
    println!(
        "  created, awaiting their users: {} /s over {} ms (WeChat's limit: 100 creates/s per merchant)",
        n * 1000 / u64::try_from(created.as_millis()).unwrap().max(1),
        created.as_millis()
    );
    println!(
        "  confirmed and settled by callbacks: {} /s over {} ms",
        n * 1000 / u64::try_from(settled.as_millis()).unwrap().max(1),
        settled.as_millis()
    );
    println!(
        "  serve CPU per transfer: {} µs to create, {} µs for its callback, {} µs in all",
        per_transfer(idle, after_create, n),
        per_transfer(after_create, after_settle, n),
        per_transfer(idle, after_settle, n)
    );
    drop(serve);
    sandbox.stop();
}

fn main() {
    let transfers = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(transfers));
}
