//! What the API benchmarks share: a sandbox with no rate limit and no
//! latency, `hongbao serve`'s service started in-process on SQLite (WAL,
//! synchronous=FULL), HTTP clients, and the figures.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::{Duration, Instant};

use hongbao_core::config::Config;
use hongbao_core::model::Status;
use hongbao_sandbox::{Probability, Rules, Sandbox, SandboxConfig};
use hongbao_wxpay::Fen;

pub const TOKEN: &str = "bench-token";

/// `N CONCURRENCY` from the command line.
pub fn args(default_n: usize) -> (usize, usize) {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with('-')).collect();
    let n = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default_n);
    let concurrency = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(64);
    (n, concurrency)
}

pub struct Bench {
    pub dir: tempfile::TempDir,
    pub sandbox: Sandbox,
    pub running: hongbao_server::Running,
    pub base: String,
    pub http: reqwest::Client,
}

impl Bench {
    pub async fn start(concurrency: usize) -> Bench {
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
            .tls_backend_preconfigured(
                hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap(),
            )
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        Bench {
            dir,
            sandbox,
            running,
            base,
            http,
        }
    }

    /// Runs `n` calls from `concurrency` clients; `call(http, base, seq)`
    /// makes call number `seq`. Returns each call's latency.
    pub async fn clients<F, Fut>(&self, n: usize, concurrency: usize, call: F) -> Vec<Duration>
    where
        F: Fn(reqwest::Client, String, usize) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let per_client = n.div_ceil(concurrency);
        let mut clients = Vec::new();
        for c in 0..concurrency {
            let (http, base, call) = (self.http.clone(), self.base.clone(), call.clone());
            clients.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for seq in (c * per_client..(c + 1) * per_client).take_while(|s| *s < n) {
                    let started = Instant::now();
                    call(http.clone(), base.clone(), seq).await;
                    latencies.push(started.elapsed());
                }
                latencies
            }));
        }
        let mut latencies = Vec::with_capacity(n);
        for client in clients {
            latencies.extend(client.await.unwrap());
        }
        latencies
    }

    /// Waits (at most 10 minutes) until `total` records are sent.
    pub async fn wait_sent(&self, total: usize) {
        let ledger = self.running.payouts().ledger().clone();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let totals = ledger.totals().await.unwrap();
            let sent: u64 = totals
                .iter()
                .filter(|t| t.status == Status::Sent)
                .map(|t| t.count)
                .sum();
            if sent == u64::try_from(total).unwrap() || Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Per second, from a count and a duration.
pub fn rate(count: usize, d: Duration) -> u128 {
    u128::try_from(count).unwrap() * 1_000_000 / d.as_micros().max(1)
}

/// `p50 .. p99 .. max` of latencies.
pub fn percentiles(mut latencies: Vec<Duration>) -> String {
    latencies.sort_unstable();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    format!(
        "p50 {:?}  p99 {:?}  max {:?}",
        pct(50),
        pct(99),
        latencies[latencies.len() - 1]
    )
}
