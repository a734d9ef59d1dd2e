//! The service started in-process on port 0 against a sandbox, with a
//! `[server]` section of the test's choosing; and raw HTTP/1 over TCP, for
//! what an HTTP client library would not send.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use hongbao_core::config::Config;
use hongbao_sandbox::{Sandbox, SandboxConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TOKEN: &str = "acme-token-0123456789";
pub const OTHER_TOKEN: &str = "beta-token-9876543210";

pub use hongbao_testkit::sha256_hex;

pub fn openid(n: u32) -> String {
    format!("oTest{n:023}")
}

pub struct App {
    pub dir: tempfile::TempDir,
    pub sandbox: Sandbox,
    pub running: Option<hongbao_server::Running>,
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
}

impl App {
    /// Two tenants: `acme` (merchant `main`) and `beta` (merchant `second`).
    /// `server` is the body of the `[server]` section.
    pub async fn start(server: &str) -> App {
        App::start_with(server, |_| {}).await
    }

    /// As [`App::start`], with the sandbox configured by `configure`.
    pub async fn start_with(server: &str, configure: impl FnOnce(&mut SandboxConfig)) -> App {
        App::start_full(server, configure, |t| t, None).await
    }

    /// As [`App::start_with`], each merchant's section changed by `tune`,
    /// and in sandbox mode when `sandbox_admin` is given (transfers'
    /// callbacks come back to this instance).
    pub async fn start_full(
        server: &str,
        configure: impl FnOnce(&mut SandboxConfig),
        tune: impl Fn(String) -> String,
        sandbox_admin: Option<&str>,
    ) -> App {
        let dir = tempfile::tempdir().unwrap();
        let mut sandbox_config = SandboxConfig::new(dir.path().join("sandbox"));
        sandbox_config.seed = Some(20261201);
        configure(&mut sandbox_config);
        let sandbox = Sandbox::start(sandbox_config).await.unwrap();
        let fast =
            |t: String| tune(t.replace("rate_per_minute = 1800", "rate_per_minute = 1000000"));
        let text = format!(
            "[server]\n{server}\n\n[database]\nurl = \"sqlite://hongbao.db\"\n\n{}\n{}\n\
             [tenants.acme]\napi_keys_sha256 = [\"{}\"]\nmerchants = [\"main\"]\n\n\
             [tenants.beta]\napi_keys_sha256 = [\"{}\"]\nmerchants = [\"second\"]\n",
            fast(sandbox.merchant_toml("main")),
            fast(sandbox.merchant_toml("second")),
            sha256_hex(TOKEN),
            sha256_hex(OTHER_TOKEN),
        );
        let path = dir.path().join("hongbao.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap();
        let admin = sandbox_admin.map(|a| {
            if a.is_empty() {
                sandbox.admin_base().unwrap_or_default()
            } else {
                a.to_owned()
            }
        });
        let running = hongbao_server::start_with(&config, "127.0.0.1:0".parse().unwrap(), admin)
            .await
            .unwrap();
        let addr = running.addr();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap(),
            )
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        App {
            dir,
            sandbox,
            running: Some(running),
            base: format!("http://{addr}"),
            addr,
            http,
        }
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.unwrap()).await
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: &Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.unwrap()).await
    }

    /// A raw connection to the API.
    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// `/metrics` as the operator's text, through a tenant key.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }
}

pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A figure of `/metrics`, by its whole series name (labels included).
pub fn figure(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

/// What a raw answer says: its status, headers and body.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawAnswer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Reads one answer (with a Content-Length) from `stream`, within `limit`.
pub async fn read_answer(stream: &mut TcpStream, limit: Duration) -> RawAnswer {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            if let Some(end) = find(&bytes, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&bytes[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if bytes.len() >= end + 4 + length {
                    let status = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let body =
                        String::from_utf8_lossy(&bytes[end + 4..end + 4 + length]).to_string();
                    return RawAnswer { status, head, body };
                }
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed before an answer: {bytes:?}");
            bytes.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no answer within {limit:?}"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether the server closes `stream` within `limit` (reading and
/// dropping whatever it sends first).
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Sends `text` as is.
pub async fn send(stream: &mut TcpStream, text: &[u8]) {
    stream.write_all(text).await.unwrap();
}
