//! CPU per payout, for the whole durable path and for the protocol library
//! alone: `cargo bench -p hongbao --bench cpu [-- SMALL LARGE]` (default
//! 500 and 2,500 payouts).
//!
//! CPU is user + system time of the process measured, start-up excluded:
//! the CPU of LARGE payouts minus that of SMALL, over LARGE − SMALL. The
//! sandbox runs as its own process (`hongbao sandbox`, no latency, no rate
//! limit), so that none of its CPU is counted.
//!
//! - `campaign run`: the real command in a child process, a file of SMALL
//!   rows, then one of LARGE rows, each on a fresh database (SQLite,
//!   synchronous=FULL); its CPU is this process's children's time.
//! - `serve` under API load: a `hongbao serve` process; SMALL payouts posted
//!   by 64 clients and sent, then LARGE − SMALL more; its CPU from `/proc`.
//! - the protocol library (`hongbao-wxpay`) alone, in this process:
//!   sequential sends on keep-alive connections, each prepared, signed,
//!   sent, its answer parsed and classified, in a task of the runtime (as
//!   the dispatcher makes them).
//! - the floor: a bare round trip on loopback TCP of the same sizes, in
//!   this process, against an echo in another: the kernel's part of any
//!   call, which no client avoids (it tells machines apart).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hongbao_core::config::Config;
use hongbao_testkit::free_port;

const TOKEN: &str = "bench-token-0123456789";

/// User + system CPU of this process's waited-for children.
fn children_cpu() -> u64 {
    common::stat_ticks("self", [13, 14])
}

/// Microseconds per payout between two readings of `small` and `large` payouts.
fn per_payout(at_small: u64, at_large: u64, small: u32, large: u32) -> u64 {
    at_large.saturating_sub(at_small) * 10_000 / u64::from(large - small).max(1)
}

fn hongbao() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hongbao"));
    command.env_remove("HONGBAO_CONFIG").env("RUST_LOG", "warn");
    command
}

/// Starts `hongbao sandbox` in `dir` with no rate limit, no daily caps, a
/// balance that never runs out and packets nobody opens; returns it and
/// its `[merchants.main]` section, paced at ten million a minute.
async fn sandbox(dir: &Path) -> (common::Killed, String) {
    let port = free_port();
    let data = dir.join("sandbox");
    let child = hongbao()
        .args(["sandbox", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["--rate-per-minute", "0", "--sendnum-limit", "4000000000"])
        .args([
            "--balance",
            "100000000000.00",
            "--send-amount-limit",
            "100000000000.00",
        ])
        .args([
            "--rcvd-amount-limit",
            "100000000000.00",
            "--receive-probability",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = common::Killed(child);
    let toml = data.join("merchant.toml");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&toml)
            && text.contains(&format!(":{port}"))
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            let text = text
                .replace("[merchants.sandbox]", "[merchants.main]")
                .replace("rate_per_minute = 1800", "rate_per_minute = 10000000");
            return (child, text);
        }
        assert!(Instant::now() < deadline, "hongbao sandbox did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A configuration of `merchant` on a fresh SQLite database in `dir`,
/// whose mch_billnos open with `deployment`: the runs share one sandbox,
/// and a number another run used would be refused there (another order
/// holds it) and paid under a new one, a second call counted.
fn config(dir: &Path, name: &str, merchant: &str, deployment: &str) -> PathBuf {
    let db = dir.join(format!("{name}.db"));
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
    };
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"sqlite://{}\"\nbillno_deployment = \"{deployment}\"\n\n{merchant}\n[tenants.bench]\napi_keys_sha256 = [\"{hash}\"]\nmerchants = [\"main\"]\n",
            db.display()
        ),
    )
    .unwrap();
    path
}

/// Asserts that each of the `payouts` of database `name` took one call: a
/// figure per payout counts no retries.
async fn one_call_each(dir: &Path, name: &str, payouts: u32) {
    let url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    let db = hongbao_core::store::db::Db::connect(&url).await.unwrap();
    let calls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attempts")
        .fetch_one(db.pool())
        .await
        .unwrap();
    db.close().await;
    assert_eq!(
        calls,
        i64::from(payouts),
        "calls for {payouts} payouts in {name}"
    );
}

async fn campaign(dir: &Path, merchant: &str, rows: u32, deployment: &str) -> u64 {
    let file = dir.join(format!("rows-{rows}.csv"));
    let mut text = String::from("openid,amount\n");
    for i in 0..rows {
        text.push_str(&format!("oCpu{rows:06}{i:018},1.{:02}\n", i % 100));
    }
    std::fs::write(&file, text).unwrap();
    let config = config(dir, &format!("campaign-{rows}"), merchant, deployment);
    let before = children_cpu();
    let output = hongbao()
        .args(["campaign", "run", file.to_str().unwrap(), "--name", "cpu"])
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let after = children_cpu();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("every row is paid"), "{said}");
    one_call_each(dir, &format!("campaign-{rows}"), rows).await;
    after - before
}

async fn post(http: &reqwest::Client, base: &str, from: u32, to: u32) {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(from));
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let (http, base, next) = (http.clone(), base.to_owned(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= to {
                        return;
                    }
                    let body = serde_json::json!({
                        "re_openid": format!("oCpuApi{i:021}"), "total_amount": 100 + i % 100,
                        "wishing": "恭喜发财", "act_name": "压测", "remark": "压测",
                    });
                    let response = http
                        .post(format!("{base}/v1/redpacks"))
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
}

/// Waits until the `n` payouts posted to `serve` (each stored before its
/// 201) are settled, and checks they were all sent. The ledger is read
/// from this process, not through `serve`'s API: a count there would run
/// on `serve`'s threads and weigh in its CPU. Open records are counted on
/// the due index, which holds only those; the sent ones once, at the end.
async fn wait_sent(db: &hongbao_core::store::db::Db, n: u32) {
    let count = |sql: &'static str| async move {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap();
        count
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let open = count("SELECT COUNT(*) FROM payouts WHERE due_at IS NOT NULL").await;
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} of {n} still open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = count("SELECT COUNT(*) FROM payouts WHERE status = 'sent'").await;
    assert_eq!(sent, i64::from(n), "payouts sent");
}

/// CPU per payout, and payouts per second (posted and sent).
async fn serve(dir: &Path, merchant: &str, small: u32, large: u32) -> (u64, u64) {
    let config = config(dir, "serve", merchant, "3");
    let port = free_port();
    let http = common::http();
    let (child, base) = common::serve(&config, port, &http).await;
    let pid = child.0.id().to_string();
    let url = format!("sqlite://{}", dir.join("serve.db").display());
    let db = hongbao_core::store::db::Db::connect(&url).await.unwrap();
    post(&http, &base, 0, small).await;
    wait_sent(&db, small).await;
    let at_small = common::cpu_ticks(&pid);
    let started = Instant::now();
    post(&http, &base, small, large).await;
    wait_sent(&db, large).await;
    let cpu = per_payout(at_small, common::cpu_ticks(&pid), small, large);
    // Settled ones are polled every 50 ms: the rate is a little low.
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let rate = u64::from(large - small) * 1000 / ms.max(1);
    db.close().await;
    one_call_each(dir, "serve", large).await;
    (cpu, rate)
}

async fn library(merchant_toml: &str, dir: &Path, small: u32, large: u32) -> u64 {
    let config = Config::load(&config(dir, "library", merchant_toml, "4")).unwrap();
    let merchant = &config.merchants["main"];
    let client = hongbao_core::merchant::client(merchant).unwrap().unwrap();
    let input = hongbao_core::model::RedpackInput {
        re_openid: "oCpuLib000000000000000000000".into(),
        total_amount: 100,
        ..Default::default()
    };
    let valid = hongbao_core::model::ValidRedpack::validate(&input, merchant).unwrap();
    let day = time::OffsetDateTime::now_utc()
        .to_offset(hongbao_wxpay::BEIJING)
        .date();
    let prefix = format!(
        "{}{:04}{:02}{:02}4",
        merchant.mch_id.as_str(),
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    // In a task of the runtime's own, as the dispatcher makes its calls
    // (`block_on`'s thread is not a worker: every answer would have to
    // wake it from another thread).
    tokio::spawn(async move {
        let mut at_small = 0;
        for i in 0..large {
            if i == small {
                at_small = common::cpu_ticks("self");
            }
            let billno = hongbao_wxpay::MchBillNo::parse(&format!("{prefix}{i:09}")).unwrap();
            let prepared = valid
                .prepared(&billno, &hongbao_wxpay::nonce_str())
                .unwrap();
            let outcome = hongbao_wxpay::classify_send(&client.call(&prepared).await);
            assert!(
                matches!(outcome, hongbao_wxpay::SendOutcome::Sent(_)),
                "{outcome:?}"
            );
        }
        per_payout(at_small, common::cpu_ticks("self"), small, large)
    })
    .await
    .unwrap()
}

/// The floor of one call on this machine: a bare round trip on loopback
/// TCP, sequential, of the sizes of a send and its answer (819 and 750
/// bytes), against an echo in a process of its own (Python's standard
/// library, none of its CPU counted). No TLS, no HTTP, no XML: what is
/// left is the kernel's part, which every client pays. `None` without
/// `python3`.
async fn floor(small: u32, large: u32) -> Option<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = free_port();
    let echo = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('127.0.0.1',{port}))\ns.listen(1)\nc,_=s.accept()\n\
         c.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)\nanswer=b'x'*750\n\
         while c.recv(819,socket.MSG_WAITALL):\n    c.sendall(answer)\n"
    );
    let child = Command::new("python3")
        .args(["-c", &echo])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let _child = common::Killed(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            break stream;
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stream.set_nodelay(true).ok()?;
    let task = tokio::spawn(async move {
        let (request, mut answer) = (vec![b'r'; 819], vec![0u8; 750]);
        let mut at_small = 0;
        for i in 0..large {
            if i == small {
                at_small = common::cpu_ticks("self");
            }
            stream.write_all(&request).await.unwrap();
            stream.read_exact(&mut answer).await.unwrap();
        }
        per_payout(at_small, common::cpu_ticks("self"), small, large)
    });
    Some(task.await.unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Vec<u32> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let small = numbers.first().copied().unwrap_or(500);
    let large = numbers.get(1).copied().unwrap_or(2_500);
    assert!(small < large, "SMALL must be less than LARGE");
    let paths = ["campaign", "serve", "library", "floor"];
    let chosen: Vec<&str> = paths
        .into_iter()
        .filter(|p| args.iter().any(|a| a == p))
        .collect();
    let runs = |path: &str| chosen.is_empty() || chosen.contains(&path);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_sandbox, merchant) = sandbox(dir.path()).await;
        println!(
            "CPU per payout (user + system, the CPU of {large} payouts minus that of {small}, over {}):",
            large - small
        );
        if runs("campaign") {
            let campaign_small = campaign(dir.path(), &merchant, small, "1").await;
            let campaign_large = campaign(dir.path(), &merchant, large, "2").await;
            let campaign = per_payout(campaign_small, campaign_large, small, large);
            println!("  campaign run (stored, claimed, sent, recorded; synchronous=FULL): {campaign} µs");
        }
        if runs("serve") {
            let (serve, rate) = serve(dir.path(), &merchant, small, large).await;
            println!(
                "  serve, payouts posted to the API by 64 clients:                  {serve} µs ({rate} payouts/s)"
            );
        }
        if runs("library") {
            let library = library(&merchant, dir.path(), small, large).await;
            println!("  hongbao-wxpay alone, sequential sends on keep-alive:             {library} µs");
        }
        if runs("floor") {
            match floor(small, large).await {
                Some(floor) => println!(
                    "  floor: a bare loopback TCP round trip of a send's sizes:         {floor} µs"
                ),
                None => println!("  floor: not measured (no python3 for the echo)"),
            }
        }
    });
}
