//! Several `hongbao serve` processes on one PostgreSQL database: each
//! payout paid exactly once through faults and a SIGKILL, one pace for the
//! merchant across all of them, leases safe from skewed clocks, and a
//! database that goes away and comes back.
//!
//! These need a PostgreSQL server: `TEST_POSTGRES_URL` set to its URL
//! (`.ci/run` sets it); without it they say so and pass without running.
//! The clock test also needs libfaketime (Debian's `faketime`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::{Options, TOKEN, World, body, fresh_postgres, missing, openid, wait_serving};
use hongbao_sandbox::{Faults, Probability};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// One more `hongbao serve` on the world's configuration, on its own port.
struct Instance {
    child: Option<Child>,
    base: String,
    log: PathBuf,
}

impl Instance {
    async fn start(world: &World, name: &str, env: &[(&str, &str)]) -> Instance {
        let log = world.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hongbao"));
        command
            .args(["serve", "--config", world.config.to_str().unwrap()])
            .env_remove("HONGBAO_CONFIG")
            .env("HONGBAO_SERVER__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .current_dir(world.dir.path())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut instance = Instance {
            child: Some(command.spawn().unwrap()),
            base: String::new(),
            log,
        };
        match wait_serving(&world.http, &instance.log).await {
            Some(base) => instance.base = base,
            None => panic!("{name} did not start: {}", instance.logs()),
        }
        instance
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn post(&self, world: &World, body: &Value) -> (u16, Value) {
        let response = world
            .http
            .post(format!("{}/v1/redpacks", self.base))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Posts payouts `first..first + n`, spread over `instances` in turn, 48 at
/// a time; every one must be stored (201).
async fn post_spread(world: &World, instances: &[&Instance], first: u32, n: u32) {
    let mut next = first;
    while next < first + n {
        let batch: Vec<u32> = (next..(next + 48).min(first + n)).collect();
        next += u32::try_from(batch.len()).unwrap();
        let posts = batch.iter().map(|i| {
            let instance = instances[usize::try_from(*i).unwrap() % instances.len()];
            let b = body(&openid(*i), 100 + u64::from(*i % 100));
            async move { instance.post(world, &b).await }
        });
        for (status, record) in futures_util::future::join_all(posts).await {
            assert_eq!(status, 201, "{record}");
        }
    }
}

fn paid_at_sandbox(world: &World) -> usize {
    world.sandbox.ledger().iter().filter(|e| e.paid).count()
}

fn freq_limit_answers(world: &World) -> u64 {
    world
        .sandbox
        .with(|s| s.counters().answers.get("FREQ_LIMIT").copied().unwrap_or(0))
}

macro_rules! postgres_or_skip {
    () => {
        match fresh_postgres().await {
            Some(url) => url,
            None => {
                missing(
                    "PostgreSQL",
                    "set TEST_POSTGRES_URL to a PostgreSQL server URL",
                );
                return;
            }
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_pay_five_thousand_exactly_once_through_faults_and_a_sigkill() {
    let url = postgres_or_skip!();
    // WeChat (the sandbox) allows 6,000 calls a minute, and so does the
    // merchant's configuration: the three instances must share it.
    let mut world = World::new(
        |c| {
            c.faults = Faults {
                systemerror_before: Probability::from_ppm(30_000),
                systemerror_after: Probability::from_ppm(30_000),
                drop_after: Probability::from_ppm(30_000),
                processing: Probability::from_ppm(30_000),
                ..Faults::default()
            };
            c.rules.rate_per_minute = 6_000;
            c.rules.sendnum_limit = 1_000;
            c.lifecycle.processing_for = Duration::from_secs(2);
        },
        Options {
            rate_per_minute: 6_000,
            database_url: Some(url),
            ..Options::default()
        },
    )
    .await;
    let first = Instance::start(&world, "first", &[]).await;
    world.base = first.base.clone();
    let second = Instance::start(&world, "second", &[]).await;
    let mut third = Instance::start(&world, "third", &[]).await;
    post_spread(&world, &[&first, &second, &third], 0, 5_000).await;
    // SIGKILL the third once a third of the payouts are paid: it dies with
    // records claimed and calls in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while paid_at_sandbox(&world) < 1_700 {
        assert!(tokio::time::Instant::now() < deadline, "payouts stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    third.kill();
    let paid_at_kill = paid_at_sandbox(&world);
    println!("SIGKILL with {paid_at_kill} of 5000 paid");
    assert!(paid_at_kill < 4_000, "the kill came too late to matter");

    let records = world.wait_settled(TOKEN, Duration::from_secs(300)).await;
    assert_eq!(records.len(), 5_000);
    world.assert_exactly_once(&records);
    world.assert_every_fault_injected(20);
    // One pace for the merchant across the three: WeChat never had to say
    // FREQ_LIMIT (the sandbox injects none on purpose).
    let counters = world.sandbox.with(|s| s.counters());
    assert_eq!(freq_limit_answers(&world), 0, "{:?}", counters.answers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_whose_clocks_differ_by_minutes_never_send_a_record_twice() {
    let url = postgres_or_skip!();
    if !std::path::Path::new(FAKETIME_LIB).exists() {
        missing(FAKETIME_LIB, "apt-get install faketime");
        return;
    }
    // No faults: every payout needs exactly one call. Slow answers keep
    // calls in flight (and their leases held) for a while.
    let mut world = World::new(
        |c| {
            c.faults = Faults {
                latency: Probability::from_ppm(300_000),
                latency_ms: 400,
                ..Faults::default()
            };
            c.rules.rate_per_minute = 0;
            c.rules.sendnum_limit = 1_000;
        },
        Options {
            database_url: Some(url),
            ..Options::default()
        },
    )
    .await;
    let on_time = Instance::start(&world, "on-time", &[]).await;
    world.base = on_time.base.clone();
    // Seven minutes ahead: far beyond the 8-second lease.
    let ahead = Instance::start(
        &world,
        "ahead",
        &[
            ("LD_PRELOAD", FAKETIME_LIB),
            ("FAKETIME", "+7m"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    )
    .await;
    post_spread(&world, &[&on_time, &ahead], 0, 1_000).await;
    let records = world.wait_settled(TOKEN, Duration::from_secs(240)).await;
    assert_eq!(records.len(), 1_000);
    world.assert_exactly_once(&records);
    for entry in world.sandbox.ledger() {
        assert_eq!(
            entry.times_requested, 1,
            "{} was sent more than once",
            entry.mch_billno
        );
    }
    for record in &records {
        assert_eq!(record["attempts"], 1, "{record}");
    }
    // The skew was real: the instance ahead stamped its calls with its own
    // clock, minutes after the records were created on the database's.
    let mut skewed = 0;
    for record in records.iter().take(200) {
        let (status, attempts) = world
            .get(
                Some(TOKEN),
                &format!("/v1/redpacks/{}/attempts", record["id"].as_str().unwrap()),
            )
            .await;
        assert_eq!(status, 200);
        let created = time::OffsetDateTime::parse(
            record["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let started = time::OffsetDateTime::parse(
            attempts[0]["started_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        if started - created > time::Duration::minutes(6) {
            skewed += 1;
        }
    }
    assert!(
        skewed > 10,
        "only {skewed} of 200 were sent by the instance ahead"
    );
}

/// A TCP proxy to PostgreSQL that can cut every connection and refuse new
/// ones, as a database that went away would.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (accept_up, accept_cut) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let mut cuts = accept_cut.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_answers_503_loses_nothing_and_converges() {
    let url = postgres_or_skip!();
    // postgres://user@host:port/name → the proxy in front of host:port.
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (address, name) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(address.to_owned()).await;
    let proxied = format!("{scheme_user}@127.0.0.1:{}/{name}", proxy.port);
    let mut world = World::new(
        |c| {
            c.rules.rate_per_minute = 0;
            c.rules.sendnum_limit = 1_000;
        },
        Options {
            // 20 a second: 300 take 15 s, so the payouts are still being
            // paid when the database goes, however slowly they were posted
            // on a loaded machine.
            rate_per_minute: 1_200,
            database_url: Some(proxied),
            ..Options::default()
        },
    )
    .await;
    world.start_serve().await;
    for i in 0..300 {
        let (status, record) = world
            .post(Some(TOKEN), "/v1/redpacks", &body(&openid(i), 150), None)
            .await;
        assert_eq!(status, 201, "{record}");
    }
    // Cut while paying: once the first payouts are paid.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while paid_at_sandbox(&world) < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing paid in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.down();
    let paid_when_cut = paid_at_sandbox(&world);
    assert!(paid_when_cut < 300, "all paid before the database went");

    // The API says so, in its error shape, within the pool's timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let (status, answer) = world
            .post(Some(TOKEN), "/v1/redpacks", &body(&openid(900), 150), None)
            .await;
        if status == 503 {
            break answer;
        }
        // Never stored, never an internal error: at most the pool has not
        // noticed yet.
        assert_ne!(status, 201, "stored without a database: {answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status} without a database: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        refused["error"]["code"], "database_unavailable",
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("database"),
        "{refused}"
    );
    let (status, health) = world.get(None, "/healthz").await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unavailable", "{health}");

    // Down for a few seconds more, then back.
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.up();
    let records = world.wait_settled(TOKEN, Duration::from_secs(120)).await;
    assert_eq!(records.len(), 300, "a payout was lost or invented");
    world.assert_exactly_once(&records);
    let (status, health) = world.get(None, "/healthz").await;
    assert_eq!(status, 200, "{health}");
    let (status, record) = world
        .post(
            Some(TOKEN),
            "/v1/redpacks?wait=10",
            &body(&openid(901), 150),
            None,
        )
        .await;
    assert_eq!(status, 201, "{record}");
    world.stop_serve();
}
