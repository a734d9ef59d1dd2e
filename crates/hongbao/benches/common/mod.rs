//! What the benchmarks of the command share: a sandbox that limits
//! nothing, `hongbao serve` as a child process, and CPU readings.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hongbao_sandbox::{Probability, Rules, Sandbox, SandboxConfig};
use hongbao_wxpay::Fen;

/// Starts a sandbox in `dir` with no rate limit, no daily caps, a balance
/// that never runs out and packets nobody opens (no lifecycle work); returns
/// it with its `[merchants.main]` section, paced at ten million a minute.
/// `configure` changes the sandbox's settings after that.
pub(crate) async fn unlimited_sandbox(
    dir: &Path,
    configure: impl FnOnce(&mut SandboxConfig),
) -> (Sandbox, String) {
    let mut config = SandboxConfig::new(dir.join("sandbox"));
    config.balance = Fen::new(u64::MAX / 4);
    config.rules = Rules {
        rate_per_minute: 0,
        sendnum_limit: u32::MAX,
        rcvd_amount_limit: Fen::new(u64::MAX / 4),
        send_amount_limit: Fen::new(u64::MAX / 4),
        ..Rules::default()
    };
    config.lifecycle.receive_probability = Probability::NEVER;
    configure(&mut config);
    let sandbox = Sandbox::start(config).await.unwrap();
    let merchant = sandbox
        .merchant_toml("main")
        .replace("rate_per_minute = 1800", "rate_per_minute = 10000000");
    (sandbox, merchant)
}

/// Kills its process when dropped, whatever happened.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User + system CPU of process `pid` (`self` for this one), in clock
/// ticks (1/100 s on Linux).
pub(crate) fn cpu_ticks(pid: &str) -> u64 {
    stat_ticks(pid, [11, 12])
}

/// The sum of two fields of `/proc/PID/stat` after the command's name, in
/// clock ticks: 11 and 12 the process's own user and system time, 13 and
/// 14 those of its waited-for children.
pub(crate) fn stat_ticks(pid: &str, fields: [usize; 2]) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let all: Vec<&str> = rest.split_whitespace().collect();
    fields
        .iter()
        .map(|i| all.get(*i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0))
        .sum()
}

/// A plain HTTP client (the workspace's one TLS stack, with ring).
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap())
        .build()
        .unwrap()
}

/// Starts `hongbao serve --config CONFIG` on 127.0.0.1:`port` and waits
/// (at most 30 s) until it answers `/healthz`; returns it and its base URL.
pub(crate) async fn serve(config: &Path, port: u16, http: &reqwest::Client) -> (Killed, String) {
    let child = Killed(
        Command::new(env!("CARGO_BIN_EXE_hongbao"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env_remove("HONGBAO_CONFIG")
            .env("HONGBAO_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    healthy(http, &base).await;
    (child, base)
}

/// Waits (at most 30 s) until the `hongbao serve` at `base` answers `/healthz`.
pub(crate) async fn healthy(http: &reqwest::Client, base: &str) {
    let up = async {
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), up)
        .await
        .expect("hongbao serve starts");
}
