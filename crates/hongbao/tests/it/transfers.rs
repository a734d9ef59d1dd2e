//! Transfer bills (商家转账) through the real binary: `serve` SIGKILLed
//! while it creates bills, and each record still has one bill, paid once
//! when its user confirms, settled by WeChat's callback; three instances
//! on one PostgreSQL database, one of which takes every callback;
//! `hongbao transfer` and `hongbao transfer cancel`. (The console's walk
//! through the sandbox's confirm page is in `console.rs`.)
//!
//! The instances test needs `TEST_POSTGRES_URL`; without it, it says so
//! and passes without running, except in CI (`CI` set), where it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hongbao_sandbox::{Faults, Probability, SandboxConfig, TransferEntry, UserAction};
use serde_json::{Value, json};

use crate::support::{
    Options, TOKEN, World, free_port, fresh_postgres, missing, openid, wait_serving,
};

/// The callbacks a serve applied to a record (its first sight of each).
const APPLIED: &str = "hongbao_transfer_callbacks_total{merchant=\"main\",outcome=\"applied\"}";
/// The same callbacks seen again.
const DUPLICATE: &str = "hongbao_transfer_callbacks_total{merchant=\"main\",outcome=\"duplicate\"}";

/// The simulated user confirms only when the test says so, and a
/// confirmed bill is paid half a second later.
fn quiet_user(c: &mut SandboxConfig) {
    c.transfers.confirm_probability = Probability::NEVER;
    c.transfers.transferring_for = Duration::from_millis(500);
    c.transfers.create_per_second = 0;
    c.transfers.query_per_second = 0;
}

/// The merchant's `notify_url`: WeChat's callbacks go to the serve
/// listening on `port`.
fn notify_line(port: u16) -> String {
    format!("notify_url = \"http://127.0.0.1:{port}/v1/notify/transfers/main\"\n")
}

/// Transfer `row`: its own payee, 1.00 to 1.99 yuan.
fn transfer_body(row: u32) -> Value {
    json!({"openid": openid(row), "transfer_amount": 100 + u64::from(row % 100)})
}

fn field<'a>(record: &'a Value, name: &str) -> &'a str {
    record[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name}: {record}"))
}

fn fen(record: &Value) -> u64 {
    record["transfer_amount"]
        .as_u64()
        .unwrap_or_else(|| panic!("no transfer_amount: {record}"))
}

/// Posts transfer `row` to `base` under its own Idempotency-Key. `None`
/// when no record came back (serve down, killed mid-request, or a 5xx):
/// the same request is then safe to make again.
async fn try_post(http: &reqwest::Client, base: &str, row: u32) -> Option<Value> {
    let response = http
        .post(format!("{base}/v1/transfers"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", format!("transfer-{row}"))
        .json(&transfer_body(row))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    if status >= 500 {
        return None;
    }
    let record: Value = response.json().await.ok()?;
    // 201 stored; 200 stored before, by a request whose answer was lost.
    assert!(matches!(status, 200 | 201), "row {row}: {status} {record}");
    Some(record)
}

/// Posts `rows` ten at a time, with a pause between, so that posting goes
/// on while serve is killed; the rows whose POST failed.
async fn post_rows(http: &reqwest::Client, base: &str, rows: &[u32]) -> Vec<u32> {
    let mut failed = Vec::new();
    for batch in rows.chunks(10) {
        let posts = batch.iter().map(|row| try_post(http, base, *row));
        for (row, record) in batch
            .iter()
            .zip(futures_util::future::join_all(posts).await)
        {
            if record.is_none() {
                failed.push(*row);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    failed
}

/// Every transfer of the tenant, through the serve at `world.base`.
async fn all_transfers(world: &World) -> Vec<Value> {
    let mut all = Vec::new();
    // 100 pages of 1000: more than any test here makes.
    for _ in 0..100 {
        let (status, page) = world
            .get(
                Some(TOKEN),
                &format!("/v1/transfers?limit=1000&offset={}", all.len()),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let objects = page["objects"].as_array().unwrap().clone();
        let done = objects.is_empty() || page["meta"]["next"].is_null();
        all.extend(objects);
        if done {
            return all;
        }
    }
    panic!("more than 100 pages of transfers");
}

/// Waits (bounded) until every transfer of the tenant is `status`.
async fn wait_all(world: &World, status: &str, timeout: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let records = all_transfers(world).await;
        let other: Vec<&Value> = records.iter().filter(|r| r["status"] != status).collect();
        if other.is_empty() {
            return records;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} transfers not {status} after {timeout:?}, e.g. {}",
            other.len(),
            records.len(),
            other[0]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One bill per record at the sandbox, under the record's own number, for
/// its amount and payee, and no bill that is no record's.
fn assert_one_bill_each(world: &World, records: &[Value]) {
    let bills: BTreeMap<String, TransferEntry> = world
        .sandbox
        .transfers()
        .into_iter()
        .map(|b| (b.out_bill_no.clone(), b))
        .collect();
    let numbers: BTreeSet<&str> = records.iter().map(|r| field(r, "out_bill_no")).collect();
    assert_eq!(
        numbers.len(),
        records.len(),
        "every record its own out_bill_no"
    );
    for record in records {
        let bill = bills
            .get(field(record, "out_bill_no"))
            .unwrap_or_else(|| panic!("no bill for {record}"));
        assert_eq!(bill.transfer_amount, fen(record), "{record}");
        assert_eq!(bill.openid, field(record, "openid"), "{record}");
        assert_eq!(
            Some(bill.transfer_bill_no.as_str()),
            record["transfer_bill_no"].as_str(),
            "{record}"
        );
    }
    assert_eq!(bills.len(), records.len(), "bills that are no record's");
}

/// The user confirms every record's bill.
fn confirm_all(world: &World, records: &[Value]) {
    for record in records {
        let bill = field(record, "out_bill_no");
        world
            .sandbox
            .with(|s| s.user_acts(bill, Some(UserAction::Confirm), None))
            .unwrap_or_else(|e| panic!("{bill}: {e}"));
    }
}

/// Every bill is paid, and the money paid is the records' sum.
fn assert_paid_once(world: &World, records: &[Value]) {
    let bills = world.sandbox.transfers();
    let unpaid: Vec<&TransferEntry> = bills.iter().filter(|b| !b.paid).collect();
    assert!(unpaid.is_empty(), "unpaid bills: {unpaid:?}");
    let paid: u64 = bills.iter().map(|b| b.transfer_amount).sum();
    let owed: u64 = records.iter().map(fen).sum();
    assert_eq!(paid, owed, "paid at the sandbox, and owed by the records");
}

/// A figure of `/metrics` (0 while the series does not exist).
fn figure(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `/metrics` of the serve at `base`, through the tenant's key.
async fn metrics(http: &reqwest::Client, base: &str) -> String {
    let response = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// Waits (bounded) until the serve at `base` has applied `n` callbacks
/// (counted just after the record is settled); its metrics then.
async fn wait_applied(http: &reqwest::Client, base: &str, n: u64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics(http, base).await;
        let applied = figure(&text, APPLIED);
        if applied >= n {
            assert_eq!(applied, n, "more callbacks applied than bills");
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} applied {applied} callbacks, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_survive_sigkill_of_serve() {
    const ROWS: u32 = 300;
    let started = Instant::now();
    // The callbacks' address is written into the configuration before
    // serve runs, and each restart listens there again.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [("HONGBAO_SERVER__LISTEN", listen.as_str())];
    let mut world = World::new(
        |c| {
            quiet_user(c);
            c.faults = Faults {
                systemerror_after: Probability::from_ppm(100_000),
                drop_after: Probability::from_ppm(100_000),
                // Slow answers keep creates in flight when the kills come.
                latency: Probability::from_ppm(300_000),
                latency_ms: 300,
                ..Faults::default()
            };
        },
        Options {
            main_lines: notify_line(port),
            ..Options::default()
        },
    )
    .await;
    world.start_serve_with(&env).await;
    let (http, base) = (world.http.clone(), world.base.clone());
    let rows: Vec<u32> = (0..ROWS).collect();

    // Two SIGKILLs at moments chosen by a fixed seed, while the rows are
    // posted and their bills created.
    let seed: u64 = 0x7a45_2026;
    println!("kill schedule seed {seed:#x}");
    let kills = async {
        let mut state = seed;
        for kill in 1..=2 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let after = Duration::from_millis(400 + (state >> 33) % 800);
            tokio::time::sleep(after).await;
            let bills = world.sandbox.transfers().len();
            println!("SIGKILL {kill} after {after:?} with {bills} bills at the sandbox");
            assert!(
                bills < rows.len(),
                "SIGKILL {kill}: every bill was created before it"
            );
            world.kill_serve();
            world.start_serve_with(&env).await;
        }
    };
    let (mut failed, ()) = tokio::join!(post_rows(&http, &base, &rows), kills);
    // Only the rows whose POST failed, under the same Idempotency-Key: one
    // stored before its answer was lost comes back as it is.
    let reposted = failed.len();
    for _ in 0..3 {
        if failed.is_empty() {
            break;
        }
        failed = post_rows(&http, &base, &failed).await;
    }
    assert!(failed.is_empty(), "never stored: {failed:?}");

    let records = wait_all(&world, "awaiting_confirmation", Duration::from_secs(180)).await;
    assert_eq!(records.len(), rows.len(), "a row stored twice, or lost");
    assert_one_bill_each(&world, &records);
    for record in &records {
        assert!(
            record["confirm"]["package"]
                .as_str()
                .is_some_and(|p| !p.is_empty()),
            "{record}"
        );
    }
    let creates = world.sandbox.with(|s| {
        s.counters()
            .requests
            .get("transfer_create")
            .copied()
            .unwrap_or(0)
    });

    // The users confirm; WeChat's callbacks settle every record.
    confirm_all(&world, &records);
    let settled = wait_all(&world, "succeeded", Duration::from_secs(120)).await;
    assert_eq!(settled.len(), rows.len());
    assert_paid_once(&world, &settled);
    let text = wait_applied(&http, &base, u64::from(ROWS)).await;
    println!(
        "posted {ROWS} (re-posted {reposted}), kills 2, creates {creates}, callbacks applied {} \
         and duplicate {}, {} s",
        figure(&text, APPLIED),
        figure(&text, DUPLICATE),
        started.elapsed().as_secs()
    );
    world.stop_serve();
}

/// One more `hongbao serve` on the world's configuration, listening on
/// `listen`; killed when dropped, whatever happened.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    async fn start(world: &World, name: &str, listen: &str) -> Serve {
        let log = world.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hongbao"))
            .args(["serve", "--config", world.config.to_str().unwrap()])
            .env_remove("HONGBAO_CONFIG")
            .env("HONGBAO_SERVER__LISTEN", listen)
            .env("RUST_LOG", "info")
            .current_dir(world.dir.path())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut serve = Serve {
            child,
            base: String::new(),
        };
        match wait_serving(&world.http, &log).await {
            Some(base) => serve.base = base,
            None => panic!(
                "{name} did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
        serve
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgres_take_callbacks() {
    const ROWS: u32 = 60;
    let Some(url) = fresh_postgres().await else {
        missing(
            "PostgreSQL",
            "set TEST_POSTGRES_URL to a PostgreSQL server URL",
        );
        return;
    };
    // The merchant's callbacks go to the second instance alone, whichever
    // instance stored the record and whichever created its bill.
    let port = free_port();
    let mut world = World::new(
        quiet_user,
        Options {
            database_url: Some(url),
            main_lines: notify_line(port),
            ..Options::default()
        },
    )
    .await;
    let first = Serve::start(&world, "first", "127.0.0.1:0").await;
    let second = Serve::start(&world, "second", &format!("127.0.0.1:{port}")).await;
    let third = Serve::start(&world, "third", "127.0.0.1:0").await;
    world.base = first.base.clone();
    let instances = [&first, &second, &third];
    let posts = (0..ROWS).map(|row| {
        let instance = instances[usize::try_from(row).unwrap() % instances.len()];
        let http = &world.http;
        async move {
            let posted = try_post(http, &instance.base, row).await;
            posted.unwrap_or_else(|| panic!("row {row} not stored by {}", instance.base))
        }
    });
    let posted = futures_util::future::join_all(posts).await;

    let records = wait_all(&world, "awaiting_confirmation", Duration::from_secs(60)).await;
    assert_eq!(records.len(), posted.len());
    assert_one_bill_each(&world, &records);
    confirm_all(&world, &records);
    let settled = wait_all(&world, "succeeded", Duration::from_secs(60)).await;
    assert_paid_once(&world, &settled);
    // Two thirds of the records were stored through the other two: the
    // second settled them from the shared database all the same.
    let text = wait_applied(&world.http, &second.base, u64::from(ROWS)).await;
    for other in [&first, &third] {
        let theirs = metrics(&world.http, &other.base).await;
        assert_eq!(
            figure(&theirs, APPLIED),
            0,
            "{} took a callback",
            other.base
        );
    }
    println!(
        "{ROWS} transfers over 3 instances; the second applied {} callbacks and saw {} again",
        figure(&text, APPLIED),
        figure(&text, DUPLICATE)
    );
}

/// `hongbao ARGS --config FILE` on the world's configuration.
fn hongbao(world: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args(args)
        .args(["--config", world.config.to_str().unwrap()])
        .env_remove("HONGBAO_CONFIG")
        .env("RUST_LOG", "warn")
        .current_dir(world.dir.path())
        .output()
        .unwrap()
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What follows `key` on the line that starts with it (`  mchId    1900000109`).
fn value_of<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix(key)
                .filter(|rest| rest.starts_with(' '))
        })
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} line in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hongbao_transfer_prints_the_confirm_parameters_and_cancels() {
    let world = World::new(quiet_user, Options::default()).await;
    let payee = openid(1);
    // Two merchants are configured: which one pays must be said.
    let transfer = |yuan: &str| {
        hongbao(
            &world,
            &[
                "transfer",
                "--merchant",
                "main",
                "--openid",
                &payee,
                "--amount",
                yuan,
                "--wait",
                "20",
            ],
        )
    };

    // Created and awaiting the user, with what the user's page passes to
    // requestMerchantTransfer.
    let created = transfer("1.00");
    let out = printed(&created);
    assert_eq!(created.status.code(), Some(0), "{out}");
    let id = value_of(&out, "stored")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("tr_"), "{out}");
    assert!(
        out.contains("awaiting_confirmation  transfer_bill_no"),
        "{out}"
    );
    let secrets = &world.sandbox.identity().secrets;
    assert_eq!(value_of(&out, "mchId"), secrets.mch_id, "{out}");
    assert_eq!(value_of(&out, "appId"), secrets.appid, "{out}");
    let bills = world.sandbox.transfers();
    assert_eq!(bills.len(), 1, "{bills:?}");
    assert_eq!(value_of(&out, "package"), bills[0].package_info, "{out}");
    assert_eq!(bills[0].transfer_amount, 100);
    assert!(
        out.contains(&format!("hongbao transfer cancel {id}")),
        "{out}"
    );

    // The ledger lists it on its rail.
    let list = hongbao(&world, &["records", "list", "--rail", "transfer"]);
    let out = printed(&list);
    assert_eq!(list.status.code(), Some(0), "{out}");
    assert!(out.contains(&id) && out.contains("1 of 1"), "{out}");
    let redpacks = hongbao(&world, &["records", "list", "--rail", "redpack"]);
    assert!(
        printed(&redpacks).contains("0 of 0"),
        "{}",
        printed(&redpacks)
    );

    // Cancelled before the user confirms.
    let cancel = hongbao(&world, &["transfer", "cancel", &id]);
    let out = printed(&cancel);
    assert_eq!(cancel.status.code(), Some(0), "{out}");
    let said = String::from_utf8_lossy(&cancel.stdout);
    assert!(
        said.starts_with("cancelling  ") || said.starts_with("cancelled  "),
        "{out}"
    );
    assert!(out.contains(&id), "{out}");
    let state = world.sandbox.transfers()[0].state.clone();
    assert!(
        matches!(state.as_str(), "CANCELING" | "CANCELLED"),
        "{state}"
    );
    // `hongbao status` asks WeChat about a transfer's bill too.
    let asked = hongbao(&world, &["status", "--id", &id]);
    let out = printed(&asked);
    assert_eq!(asked.status.code(), Some(0), "{out}");
    let answer: serde_json::Value = serde_json::from_slice(&asked.stdout).unwrap();
    assert!(
        matches!(
            answer["wechat"]["state"].as_str(),
            Some("CANCELING" | "CANCELLED")
        ),
        "{out}"
    );
    assert_eq!(answer["record"]["id"], id.as_str(), "{out}");

    // Under 0.10 yuan: exit 2, the flag named, nothing stored or created.
    let small = transfer("0.05");
    let out = printed(&small);
    assert_eq!(small.status.code(), Some(2), "{out}");
    assert!(out.contains("--amount"), "{out}");
    assert_eq!(world.sandbox.transfers().len(), 1);
    let list = hongbao(&world, &["records", "list", "--rail", "transfer"]);
    assert!(printed(&list).contains("1 of 1"), "{}", printed(&list));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_run_on_the_transfer_rail_makes_a_bill_per_row_and_exports_their_confirms() {
    let world = World::new(quiet_user, Options::default()).await;
    let file = world.dir.path().join("rows.csv");
    let mut text = String::from("openid,total_amount\n");
    for n in 0..20 {
        text.push_str(&format!("{},{}\n", openid(500 + n), 10 + n));
    }
    std::fs::write(&file, text).unwrap();
    let run = hongbao(
        &world,
        &[
            "campaign",
            "run",
            file.to_str().unwrap(),
            "--name",
            "转账",
            "--merchant",
            "main",
            "--rail",
            "transfer",
            "--remark",
            "活动奖励",
        ],
    );
    let out = printed(&run);
    assert_eq!(run.status.code(), Some(0), "{out}");
    assert!(out.contains("every row is a bill: 20 await"), "{out}");
    assert!(value_of(&out, "awaiting").starts_with("20"), "{out}");
    assert_eq!(world.sandbox.transfers().len(), 20, "one bill per row");

    let confirms = world.dir.path().join("confirms.csv");
    let exported = hongbao(
        &world,
        &[
            "campaign",
            "confirms",
            "转账",
            "--out",
            confirms.to_str().unwrap(),
        ],
    );
    assert_eq!(exported.status.code(), Some(0), "{}", printed(&exported));
    let csv = std::fs::read_to_string(&confirms).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 21, "{csv}");
    assert_eq!(
        lines[0],
        "line,openid,amount,out_bill_no,mch_id,appid,package,expires_at"
    );
    let bills: BTreeMap<String, TransferEntry> = world
        .sandbox
        .transfers()
        .into_iter()
        .map(|b| (b.out_bill_no.clone(), b))
        .collect();
    for line in &lines[1..] {
        let cells: Vec<&str> = line.split(',').collect();
        let bill = &bills[cells[3]];
        assert_eq!(cells[1], bill.openid);
        assert_eq!(cells[6], bill.package_info, "the package as WeChat gave it");
    }
    // The report shows each row's state.
    let report = world.dir.path().join("report.csv");
    let written = hongbao(
        &world,
        &[
            "campaign",
            "report",
            "转账",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(written.status.code(), Some(0), "{}", printed(&written));
    let report = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        report.matches(",awaiting_confirmation,").count(),
        20,
        "{report}"
    );
}
