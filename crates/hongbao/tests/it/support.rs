//! Runs the real `hongbao serve` against a sandbox living in the test
//! process (so that it outlives the server when the server is killed).

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hongbao_sandbox::{LedgerEntry, Sandbox, SandboxConfig};
use serde_json::Value;

pub const TOKEN: &str = "acme-token-0123456789";
pub const OTHER_TOKEN: &str = "beta-token-9876543210";

pub use hongbao_testkit::{free_port, fresh_postgres, missing, served_address, sha256_hex};

pub fn openid(n: u32) -> String {
    format!("oTest{n:023}")
}

pub struct World {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub base: String,
    pub http: reqwest::Client,
    serve: Option<Child>,
    runs: u32,
}

/// Options of the configuration under test.
pub struct Options {
    pub rate_per_minute: u32,
    pub lease_seconds: u32,
    pub timeout_seconds: u32,
    /// The database (default: SQLite in the test's directory).
    pub database_url: Option<String>,
    /// Lines added to `[merchants.main]`, e.g. a `notify_url` for the
    /// transfer callbacks (the port must then be chosen before `serve` runs).
    pub main_lines: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate_per_minute: 1_000_000,
            lease_seconds: 8,
            timeout_seconds: 4,
            database_url: None,
            main_lines: String::new(),
        }
    }
}

/// Waits (bounded) until the `hongbao serve` logging to `log` prints where
/// it listens and answers `/healthz` there; its base URL.
pub async fn wait_serving(http: &reqwest::Client, log: &Path) -> Option<String> {
    for _ in 0..300 {
        if let Some(base) = served_address(log)
            && let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Some(base);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

impl World {
    pub async fn new(configure: impl FnOnce(&mut SandboxConfig), options: Options) -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut sandbox_config = SandboxConfig::new(dir.path().join("sandbox"));
        sandbox_config.seed = Some(20261122);
        configure(&mut sandbox_config);
        let sandbox = Sandbox::start(sandbox_config).await.unwrap();
        let main = sandbox.merchant_toml("main").replace(
            "rate_per_minute = 1800",
            &format!(
                "rate_per_minute = {}\ntimeout_seconds = {}",
                options.rate_per_minute, options.timeout_seconds
            ),
        );
        let main = format!("{main}{}", options.main_lines);
        // A second merchant on the same account, for a second tenant.
        let second = sandbox.merchant_toml("second").replace(
            "rate_per_minute = 1800",
            &format!(
                "rate_per_minute = {}\ntimeout_seconds = {}",
                options.rate_per_minute, options.timeout_seconds
            ),
        );
        let database_url = options
            .database_url
            .clone()
            .unwrap_or_else(|| "sqlite://hongbao.db".to_owned());
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[database]\nurl = \"{database_url}\"\n\n\
             [dispatch]\nlease_seconds = {}\n\n{main}\n{second}\n\
             [tenants.acme]\napi_keys_sha256 = [\"{}\"]\nmerchants = [\"main\"]\n\n\
             [tenants.beta]\napi_keys_sha256 = [\"{}\"]\nmerchants = [\"second\"]\n",
            options.lease_seconds,
            sha256_hex(TOKEN),
            sha256_hex(OTHER_TOKEN),
        );
        let config = dir.path().join("hongbao.toml");
        std::fs::write(&config, text).unwrap();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap(),
            )
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        World {
            sandbox,
            dir,
            config,
            // Known once `serve` prints where it listens.
            base: String::new(),
            http,
            serve: None,
            runs: 0,
        }
    }

    pub fn log_path(&self, run: u32) -> PathBuf {
        self.dir.path().join(format!("serve-{run}.log"))
    }

    /// Starts `hongbao serve` and waits (bounded) until it answers.
    pub async fn start_serve(&mut self) {
        self.start_serve_with(&[]).await;
    }

    pub async fn start_serve_with(&mut self, env: &[(&str, &str)]) {
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hongbao"));
        command
            .args(["serve", "--config", self.config.to_str().unwrap()])
            .env_remove("HONGBAO_CONFIG")
            .env("RUST_LOG", "info")
            .current_dir(self.dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        self.serve = Some(command.spawn().unwrap());
        match wait_serving(&self.http, &self.log_path(self.runs)).await {
            Some(base) => self.base = base,
            None => panic!("hongbao serve did not start: {}", self.logs()),
        }
    }

    /// SIGKILL: no goodbye, leases left behind.
    pub fn kill_serve(&mut self) {
        if let Some(mut child) = self.serve.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, and waits for the process to end.
    pub fn stop_serve(&mut self) {
        if let Some(mut child) = self.serve.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..300 {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            child.kill().unwrap();
            panic!("hongbao serve did not stop on SIGTERM");
        }
    }

    /// Every log line of every run so far.
    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|run| std::fs::read_to_string(self.log_path(run)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn post(
        &self,
        token: Option<&str>,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Every record the tenant sees.
    pub async fn all_records(&self, token: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let (status, page) = self
                .get(
                    Some(token),
                    &format!("/v1/redpacks?limit=1000&offset={offset}"),
                )
                .await;
            assert_eq!(status, 200, "{page}");
            let objects = page["objects"].as_array().unwrap().clone();
            offset += objects.len();
            let done = objects.is_empty() || page["meta"]["next"].is_null();
            all.extend(objects);
            if done {
                return all;
            }
        }
    }

    /// Waits (bounded) until no record of the tenant is pending or sending.
    pub async fn wait_settled(&self, token: &str, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let records = self.all_records(token).await;
            let open = records
                .iter()
                .filter(|r| matches!(r["status"].as_str(), Some("pending" | "sending")))
                .count();
            if open == 0 {
                return records;
            }
            if tokio::time::Instant::now() >= deadline {
                // Name what is stuck, with its attempts: a failure here
                // must say which record and how far it got.
                let mut stuck = String::new();
                for r in records
                    .iter()
                    .filter(|r| matches!(r["status"].as_str(), Some("pending" | "sending")))
                    .take(5)
                {
                    let id = r["id"].as_str().unwrap_or_default();
                    let (_, attempts) = self
                        .get(Some(token), &format!("/v1/redpacks/{id}/attempts"))
                        .await;
                    stuck.push_str(&format!("\n{r}"));
                    for a in attempts.as_array().into_iter().flatten() {
                        stuck.push_str(&format!(
                            "\n  attempt: {} {} {} {}",
                            a["started_at"], a["api"], a["outcome"], a["err_code"]
                        ));
                    }
                    let logs = self.logs();
                    for line in logs.lines().filter(|l| l.contains(id)).take(20) {
                        stuck.push_str(&format!("\n  log: {line}"));
                    }
                }
                panic!(
                    "{open} of {} records still open after {timeout:?}:{stuck}",
                    records.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Each of the four ambiguous fault kinds was injected more than `min` times.
    pub fn assert_every_fault_injected(&self, min: u64) {
        let counters = self.sandbox.with(|s| s.counters());
        for kind in [
            "systemerror_before",
            "systemerror_after",
            "drop_after",
            "processing",
        ] {
            assert!(
                counters.faults.get(kind).copied().unwrap_or(0) > min,
                "{kind}: {:?}",
                counters.faults
            );
        }
    }

    /// The sandbox's ledger shows each record paid exactly once, and nothing else paid.
    pub fn assert_exactly_once(&self, records: &[Value]) {
        let ledger: Vec<LedgerEntry> = self.sandbox.ledger();
        let paid: BTreeMap<&str, &LedgerEntry> = ledger
            .iter()
            .filter(|e| e.paid)
            .map(|e| (e.mch_billno.as_str(), e))
            .collect();
        for record in records {
            let status = record["status"].as_str().unwrap();
            assert!(
                matches!(status, "sent" | "received" | "refunding" | "refunded"),
                "{} ended {status}: {record}",
                record["id"]
            );
            let billno = record["mch_billno"].as_str().unwrap();
            let entry = paid
                .get(billno)
                .unwrap_or_else(|| panic!("{billno} is not paid at the sandbox"));
            assert_eq!(entry.amount, record["total_amount"].as_u64().unwrap());
            assert_eq!(entry.openid, record["re_openid"].as_str().unwrap());
            assert_eq!(
                Some(entry.send_listid.as_str()),
                record["send_listid"].as_str()
            );
        }
        assert_eq!(
            paid.len(),
            records.len(),
            "the sandbox paid orders that are not records"
        );
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill_serve();
    }
}

pub fn body(openid: &str, fen: u64) -> Value {
    serde_json::json!({"re_openid": openid, "total_amount": fen, "wishing": "恭喜发财", "act_name": "测试", "remark": "测试"})
}

/// Posts `n` payouts (openids from `first`), 16 at a time.
pub async fn post_many(world: &World, first: u32, n: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = first;
    while next < first + n {
        let batch: Vec<u32> = (next..(next + 16).min(first + n)).collect();
        next += u32::try_from(batch.len()).unwrap();
        let bodies: Vec<Value> = batch
            .iter()
            .map(|i| body(&openid(*i), 100 + u64::from(*i % 100)))
            .collect();
        let futures = bodies
            .iter()
            .map(|b| world.post(Some(TOKEN), "/v1/redpacks", b, None));
        for (status, record) in futures_util::future::join_all(futures).await {
            assert_eq!(status, 201, "{record}");
            out.push(record);
        }
    }
    out
}

pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
