//! `hongbao campaign` as users run it: killed and re-run, at the merchant's
//! rate, with bad files, and through a NOTENOUGH pause.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Options, World};
use hongbao_sandbox::{Faults, Probability};

fn campaign_file(dir: &Path, name: &str, rows: u32) -> (PathBuf, BTreeMap<String, u64>) {
    let mut text = String::from("openid,amount\n");
    let mut amounts = BTreeMap::new();
    for i in 0..rows {
        let openid = format!("oCamp{i:023}");
        let fen = 100 + u64::from(i % 400);
        text.push_str(&format!("{openid},{}.{:02}\n", fen / 100, fen % 100));
        amounts.insert(openid, fen);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    (path, amounts)
}

fn campaign(world: &World, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hongbao"));
    command.arg("campaign").args(args);
    if args.first() == Some(&"run") {
        command.args(["--merchant", "main"]);
    }
    command
        .args(["--config", world.config.to_str().unwrap()])
        .env_remove("HONGBAO_CONFIG")
        .env("RUST_LOG", "warn")
        .current_dir(world.dir.path());
    command
}

fn run(world: &World, args: &[&str]) -> Output {
    campaign(world, args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The sandbox paid each row of the file exactly once, for its amount, and nothing else.
fn assert_file_paid_exactly_once(world: &World, amounts: &BTreeMap<String, u64>) {
    let ledger = world.sandbox.ledger();
    let paid: Vec<_> = ledger.iter().filter(|e| e.paid).collect();
    let mut by_openid: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for entry in &paid {
        by_openid
            .entry(entry.openid.as_str())
            .or_default()
            .push(entry.amount);
    }
    for (openid, fen) in amounts {
        assert_eq!(
            by_openid.get(openid.as_str()),
            Some(&vec![*fen]),
            "{openid}"
        );
    }
    assert_eq!(paid.len(), amounts.len(), "payments beyond the file's rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_killed_three_times_and_rerun_pays_every_row_exactly_once() {
    let world = World::new(
        |c| {
            c.faults = Faults {
                systemerror_before: Probability::from_ppm(100_000),
                systemerror_after: Probability::from_ppm(100_000),
                drop_after: Probability::from_ppm(100_000),
                processing: Probability::from_ppm(100_000),
                latency: Probability::from_ppm(200_000),
                latency_ms: 100,
                ..Faults::default()
            };
            c.rules.rate_per_minute = 0;
            c.lifecycle.processing_for = Duration::from_secs(2);
        },
        // 200 calls a second: paying takes well over the 8 s the three
        // runs may last before their kills, so each kill lands mid-campaign.
        Options {
            rate_per_minute: 12_000,
            ..Options::default()
        },
    )
    .await;
    let (file, amounts) = campaign_file(world.dir.path(), "winners.csv", 2_000);
    let args = ["run", file.to_str().unwrap(), "--name", "winners"];
    let seed: u64 = 0xC0FFEE;
    println!("kill schedule seed {seed:#x}");
    let mut state = seed;
    for round in 0..3 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let after = Duration::from_millis(200 + (state >> 33) % 2_500);
        let mut child = campaign(&world, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(after).await;
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        let paid = world.sandbox.ledger().len();
        println!("round {round}: SIGKILL after {after:?}; {paid} paid so far");
        assert!(
            !finished && paid < 2_000,
            "round {round}: the campaign ended before its kill"
        );
    }
    let last = run(&world, &args);
    assert_eq!(last.status.code(), Some(0), "{}", text(&last));
    assert!(text(&last).contains("every row is paid"));
    assert_file_paid_exactly_once(&world, &amounts);
    let status = run(&world, &["status", "winners", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["campaign"]["rows"], 2_000);
    assert_eq!(json["totals"]["by_status"]["sent"][0], 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_at_600_a_minute_uses_the_quota_without_freq_limit() {
    let world = World::new(
        |c| c.rules.rate_per_minute = 600,
        Options {
            rate_per_minute: 600,
            ..Options::default()
        },
    )
    .await;
    let (file, amounts) = campaign_file(world.dir.path(), "list.csv", 700);
    let output = run(&world, &["run", file.to_str().unwrap(), "--name", "paced"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_file_paid_exactly_once(&world, &amounts);
    let counters = world.sandbox.with(|s| s.counters());
    assert_eq!(counters.answers.get("FREQ_LIMIT"), None, "{counters:?}");
    let mut times: Vec<time::OffsetDateTime> = world
        .sandbox
        .ledger()
        .iter()
        .map(|e| e.created_at)
        .collect();
    times.sort();
    let span = (*times.last().unwrap() - times[0]).whole_milliseconds();
    let per_minute = i128::try_from(times.len() - 1).unwrap() * 60_000 / span;
    println!("achieved {per_minute} payouts a minute at a quota of 600");
    assert!(
        per_minute >= 570,
        "achieved {per_minute}/min, under 95% of 600"
    );
    assert!(
        per_minute <= 600,
        "achieved {per_minute}/min, over the quota"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_row_is_reported_with_its_line_and_nothing_is_paid() {
    let world = World::new(|_| {}, Options::default()).await;
    let rows = [
        "openid,amount,wishing,scene_id",
        "oCamp00000000000000000000001,1.88,,",
        "oBad,1.00,,",
        "oCamp00000000000000000000002,1.888,,",
        "oCamp00000000000000000000003,abc,,",
        "oCamp00000000000000000000004,0.50,,",
        "oCamp00000000000000000000005,250.00,,",
        "oCamp00000000000000000000006,1.00,福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福福,",
        "oCamp00000000000000000000001,1.00,,",
        "oCamp00000000000000000000007,1.00",
        "oCamp00000000000000000000008,1.00,,PRODUCT_0",
        ",1.00,,",
        "oCamp00000000000000000000009,-1,,",
        "oCamp00000000000000000000010,1.00,恭喜\u{FFFE},",
    ];
    let path = world.dir.path().join("bad.csv");
    std::fs::write(&path, rows.join("\n")).unwrap();
    let output = run(
        &world,
        &[
            "run",
            path.to_str().unwrap(),
            "--name",
            "bad",
            "--budget",
            "100.00",
        ],
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    for (line, needle) in [
        (3, "openid must be 28 characters"),
        (4, "\"1.888\" is not an amount"),
        (5, "\"abc\" is not an amount"),
        (6, "0.50 yuan"),
        (7, "250.00 yuan"),
        (8, "wishing is 129 bytes"),
        (9, "repeats the openid of line 2"),
        (10, "has 2 fields, the header has 4"),
        (11, "scene_id"),
        (12, "openid is empty"),
        (13, "\"-1\" is not an amount"),
        (14, "wishing contains U+FFFE"),
    ] {
        assert!(
            out.contains(&format!("line {line}: ")),
            "line {line} is not reported:\n{out}"
        );
        let reported = out
            .lines()
            .find(|l| l.starts_with(&format!("line {line}: ")))
            .unwrap();
        assert!(reported.contains(needle), "line {line}: {reported}");
    }
    assert!(out.contains("12 bad row(s)"), "{out}");
    assert!(out.contains("nothing was paid"));
    assert!(world.sandbox.ledger().is_empty());

    // The budget, on a file that is otherwise good.
    let (big, _) = campaign_file(world.dir.path(), "big.csv", 100);
    let output = run(
        &world,
        &[
            "run",
            big.to_str().unwrap(),
            "--name",
            "big",
            "--budget",
            "100.00",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("over the budget of 100.00 yuan"),
        "{}",
        text(&output)
    );
    // A dry run pays nothing either.
    let output = run(
        &world,
        &["run", big.to_str().unwrap(), "--name", "big", "--dry-run"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("100 rows"));
    assert!(world.sandbox.ledger().is_empty());
    let status = run(&world, &["status", "big"]);
    assert_eq!(
        status.status.code(),
        Some(2),
        "a dry run creates no campaign"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_cleanly_says_how_to_go_on_and_the_rerun_pays_the_rest_once() {
    let world = World::new(
        |c| c.rules.rate_per_minute = 0,
        Options {
            rate_per_minute: 300,
            ..Options::default()
        },
    )
    .await;
    let (file, amounts) = campaign_file(world.dir.path(), "list.csv", 40);
    let args = ["run", file.to_str().unwrap(), "--name", "calm"];
    let child = campaign(&world, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once some rows are paid, however slow the machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while world.sandbox.ledger().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("stopping: finishing the calls in flight"),
        "{out}"
    );
    assert!(
        out.contains("Nobody is paid twice when you go on: hongbao campaign run"),
        "{out}"
    );
    let paid = world.sandbox.ledger().len();
    assert!(paid > 0 && paid < 40, "{paid} paid before Ctrl-C");
    let rerun = run(&world, &args);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    assert_file_paid_exactly_once(&world, &amounts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notenough_mid_campaign_pauses_then_a_top_up_and_resume_pay_exactly_once() {
    let world = World::new(
        |c| c.balance = hongbao_wxpay::Fen::new(20_000),
        Options::default(),
    )
    .await;
    let (file, amounts) = campaign_file(world.dir.path(), "list.csv", 200);
    let total: u64 = amounts.values().sum();
    let output = run(&world, &["run", file.to_str().unwrap(), "--name", "nov"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("PAUSED") && out.contains("balance"), "{out}");
    let paid_before: u64 = world
        .sandbox
        .ledger()
        .iter()
        .filter(|e| e.paid)
        .map(|e| e.amount)
        .sum();
    let needed = hongbao_wxpay::Fen::new(total - paid_before);
    assert!(
        out.contains(&format!("{needed} yuan")),
        "says how much it still needs ({needed}):\n{out}"
    );
    assert!(out.contains("hongbao campaign resume nov"), "{out}");

    world.sandbox.with(|s| s.top_up(total));
    let started = Instant::now();
    let resumed = run(&world, &["resume", "nov"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_file_paid_exactly_once(&world, &amounts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_storing_says_how_to_go_on_and_the_rerun_stores_each_row_once() {
    let world = World::new(|_| {}, Options::default()).await;
    // Paused: this test is about storing; nothing is to be paid.
    let paused = Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args(["merchant", "pause", "main", "--config"])
        .arg(&world.config)
        .output()
        .unwrap();
    assert!(paused.status.success(), "{}", text(&paused));
    let rows = 60_000;
    let (file, _) = campaign_file(world.dir.path(), "big.csv", rows);
    let args = ["run", file.to_str().unwrap(), "--name", "big"];
    let child = campaign(&world, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once storing has begun, however slow the machine.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&format!(
        "sqlite://{}",
        world.dir.path().join("hongbao.db").display()
    ))
    .await
    .unwrap();
    let imported = || async {
        sqlx::query_scalar::<_, i64>("SELECT imported FROM campaigns WHERE name = 'big'")
            .fetch_optional(&db)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while imported().await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("stopped while storing: "), "{out}");
    assert!(out.contains("Go on with: hongbao campaign run"), "{out}");
    let stopped_at = imported().await;
    assert!(
        stopped_at > 0 && stopped_at < i64::from(rows),
        "{stopped_at} rows stored at Ctrl-C"
    );

    // The same command goes on where it stopped: every row stored once.
    let rerun = run(&world, &args);
    assert!(
        text(&rerun).contains(&format!("stored {rows} rows")),
        "{}",
        text(&rerun)
    );
    assert_eq!(imported().await, i64::from(rows));
    let (records, lines): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT campaign_line) FROM payouts \
         WHERE campaign_id = (SELECT id FROM campaigns WHERE name = 'big')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((records, lines), (i64::from(rows), i64::from(rows)));
    assert!(world.sandbox.ledger().is_empty(), "paid while paused");
    db.close().await;
}

/// A standard output whose reader has already gone, as with `| head -1`
/// once `head` has its line.
fn closed_stdout() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_openid_daily_cap_counts_every_campaign_of_the_day() {
    let world = World::new(|_| {}, Options::default()).await;
    let openid = |c: char| format!("oCap{}", c.to_string().repeat(24));
    let (a, b, c, d) = (openid('A'), openid('B'), openid('C'), openid('D'));
    let first = world.dir.path().join("first.csv");
    std::fs::write(
        &first,
        format!("openid,amount\n{a},1.00\n{b},1.00\n{c},1.00\n"),
    )
    .unwrap();
    let capped = ["--per-openid-daily", "2"];
    let output = run(
        &world,
        &[
            &["run", first.to_str().unwrap(), "--name", "first"][..],
            &capped,
        ]
        .concat(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // a: once before, twice here (the second is over 2); b: once before,
    // once here; d: new.
    let second = world.dir.path().join("second.csv");
    std::fs::write(
        &second,
        format!("openid,amount\n{a},2.00\n{b},2.00\n{a},3.00\n{d},2.00\n"),
    )
    .unwrap();
    let args = [
        &[
            "run",
            second.to_str().unwrap(),
            "--name",
            "second",
            "--allow-repeat",
        ][..],
        &capped,
    ]
    .concat();
    let output = run(&world, &args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "one row failed: {}",
        text(&output)
    );
    assert!(
        text(&output).contains("CAMPAIGN_DAILY_CAP"),
        "{}",
        text(&output)
    );

    let report = world.dir.path().join("second-report.csv");
    let output = run(
        &world,
        &["report", "second", "--out", report.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = std::fs::read_to_string(&report).unwrap();
    let line = |n: &str| {
        report
            .lines()
            .find(|l| l.starts_with(&format!("{n},")))
            .unwrap_or_else(|| panic!("line {n} in {report}"))
            .to_owned()
    };
    assert!(
        line("4").contains("failed") && line("4").contains("CAMPAIGN_DAILY_CAP"),
        "{report}"
    );
    for n in ["2", "3", "5"] {
        assert!(line(n).contains(",sent,"), "{report}");
    }
    // What WeChat paid: a and b twice, c and d once; the capped row never
    // reached it.
    let paid: Vec<(String, u64)> = world
        .sandbox
        .ledger()
        .iter()
        .filter(|e| e.paid)
        .map(|e| (e.openid.clone(), e.amount))
        .collect();
    let count = |o: &str| paid.iter().filter(|(p, _)| p == o).count();
    assert_eq!(
        (count(&a), count(&b), count(&c), count(&d)),
        (2, 2, 1, 1),
        "{paid:?}"
    );
    assert!(!paid.contains(&(a, 300)), "{paid:?}");

    // A cap of 0 is refused by name.
    let bad = run(
        &world,
        &[
            &["run", first.to_str().unwrap(), "--name", "zero"][..],
            &["--per-openid-daily", "0"],
        ]
        .concat(),
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("--per-openid-daily"), "{}", text(&bad));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaigns_records_are_listed_by_its_name_and_the_apis_filters() {
    let world = World::new(|_| {}, Options::default()).await;
    let (file, _) = campaign_file(world.dir.path(), "three.csv", 3);
    let output = run(&world, &["run", file.to_str().unwrap(), "--name", "three"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let records = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hongbao"))
            .args(["records", "list"])
            .args(args)
            .args(["--config", world.config.to_str().unwrap()])
            .env_remove("HONGBAO_CONFIG")
            .current_dir(world.dir.path())
            .output()
            .unwrap()
    };
    let by_name = records(&["--campaign", "three"]);
    assert_eq!(by_name.status.code(), Some(0), "{}", text(&by_name));
    assert!(text(&by_name).contains("3 of 3"), "{}", text(&by_name));
    let status = run(&world, &["status", "three", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let id = json["campaign"]["id"].as_str().unwrap();
    assert!(text(&records(&["--campaign", id])).contains("3 of 3"));

    let unknown = records(&["--campaign", "nope"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(text(&unknown).contains("\"nope\""), "{}", text(&unknown));

    let billno = world.sandbox.ledger()[0].mch_billno.clone();
    let one = records(&["--billno", &billno]);
    assert!(
        text(&one).contains(&billno) && text(&one).contains("1 of 1"),
        "{}",
        text(&one)
    );
    assert!(text(&records(&["--from", "2000-01-01"])).contains("3 of 3"));
    assert!(text(&records(&["--to", "2000-01-01T00:00:00Z"])).contains("0 of 0"));
    assert!(text(&records(&["--from", "2000-01-01", "--to", "2999-01-01"])).contains("3 of 3"));
    let bad = records(&["--from", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("--from"), "{}", text(&bad));

    // Read by a pipe that closes early (`| head -1`): no panic, exit 0.
    let piped = campaign(&world, &["status", "three"])
        .stdout(closed_stdout())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert_eq!(piped.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_bad_rows_print_a_thousand_the_count_of_the_rest_and_all_in_a_file() {
    let world = World::new(|_| {}, Options::default()).await;
    let mut csv = String::from("openid,amount\n");
    for _ in 0..2_500 {
        csv.push_str("oBad,1.00\n");
    }
    let path = world.dir.path().join("bad.csv");
    std::fs::write(&path, csv).unwrap();
    let errors = world.dir.path().join("errors.csv");
    let output = run(
        &world,
        &[
            "run",
            path.to_str().unwrap(),
            "--name",
            "bad",
            "--errors",
            errors.to_str().unwrap(),
        ],
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    let shown = out.lines().filter(|l| l.starts_with("line ")).count();
    assert_eq!(shown, 1_000, "as many as the API shows");
    assert!(out.contains("and 1500 more bad row(s)"), "{out}");
    assert!(out.contains("2500 bad row(s)"), "{out}");
    assert!(out.contains(errors.to_str().unwrap()), "{out}");
    let written = std::fs::read_to_string(&errors).unwrap();
    let mut lines = written.lines();
    assert_eq!(lines.next(), Some("line,field,message,zh_message"));
    assert_eq!(lines.count(), 2_500);
    assert!(written.contains("\n2,openid,"), "{}", &written[..300]);

    // Without --errors, the way to get them all is named.
    let output = run(&world, &["run", path.to_str().unwrap(), "--name", "bad"]);
    assert!(text(&output).contains("--errors FILE"), "{}", text(&output));
    assert!(world.sandbox.ledger().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_resume_rate_and_eta_count_only_the_rows_paid_in_this_run() {
    // The balance pays 200 of 300 rows at full speed; then NOTENOUGH pauses.
    let world = World::new(
        |c| c.balance = hongbao_wxpay::Fen::new(20_000),
        Options::default(),
    )
    .await;
    let mut csv = String::from("openid,amount\n");
    for i in 0..300 {
        csv.push_str(&format!("oCamp{i:023},1.00\n"));
    }
    let file = world.dir.path().join("list.csv");
    std::fs::write(&file, csv).unwrap();
    let first = run(&world, &["run", file.to_str().unwrap(), "--name", "slow"]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    assert!(text(&first).contains("PAUSED"), "{}", text(&first));

    // The other 100 at 5 a second: about 20 s, with a line every 10 s.
    world.sandbox.with(|s| s.top_up(20_000));
    let config = std::fs::read_to_string(&world.config).unwrap();
    std::fs::write(
        &world.config,
        config.replace("rate_per_minute = 1000000", "rate_per_minute = 300"),
    )
    .unwrap();
    let resumed = run(&world, &["resume", "slow"]);
    let out = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("campaign slow: paid"))
        .collect();
    assert!(!lines.is_empty(), "no progress line:\n{out}");
    for line in lines {
        println!("{line}");
        // "campaign slow: paid 250, failed 0, pending 50, 5.0/s, ETA 0m10s"
        let fields: Vec<&str> = line.split(", ").collect();
        let pending: u64 = fields[2].trim_start_matches("pending ").parse().unwrap();
        let rate = fields[3].trim_end_matches("/s");
        let (whole, tenth) = rate.split_once('.').unwrap_or((rate, "0"));
        assert!(tenth.len() == 1, "one decimal at most: {line}");
        let tenths: u64 = whole.parse::<u64>().unwrap() * 10 + tenth.parse::<u64>().unwrap();
        // This run pays 5 a second; counting the 200 rows paid before would
        // show far more.
        assert!((10..=80).contains(&tenths), "{line}");
        let eta = fields[4].trim_start_matches("ETA ");
        let (m, s) = eta.trim_end_matches('s').split_once('m').unwrap();
        let eta_s = m.parse::<u64>().unwrap() * 60 + s.parse::<u64>().unwrap();
        let expected = pending * 10 / tenths;
        assert!(
            eta_s.abs_diff(expected) <= 1,
            "ETA {eta_s} s for {expected} s: {line}"
        );
    }
}
