//! Campaigns at scale, through the real `hongbao campaign run`:
//!
//! 1. a 100,000-row campaign against the sandbox (no latency, no rate
//!    limit): payouts per second and the command's peak RSS;
//! 2. a 1,000,000-row file validated and stored (the merchant is paused,
//!    so nothing is paid): time and the command's peak RSS.
//!
//! `cargo bench -p hongbao --bench campaign [-- ROWS IMPORT_ROWS]`. The
//! sandbox runs in this process; the command in a child process, whose
//! peak RSS (`VmHWM`) is read from `/proc` while it runs.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_file(path: &Path, rows: u32) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "openid,amount").unwrap();
    for i in 0..rows {
        writeln!(out, "oBench{i:022},{}.{:02}", 1 + i % 5, i % 100).unwrap();
    }
}

/// The peak RSS (KiB) of process `pid` since it started: `VmHWM`.
fn high_water(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `hongbao` with `args`; returns its wall time, its peak RSS (KiB,
/// sampled every 20 ms while it runs: the mark only grows) and its output.
fn run(config: &Path, args: &[&str]) -> (Duration, i64, String) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args(args)
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    // Output is read on threads so that a full pipe never stalls the child.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(high_water(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let text = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    (elapsed, peak, text)
}

fn main() {
    let args: Vec<u32> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let rows = args.first().copied().unwrap_or(100_000);
    let import_rows = args.get(1).copied().unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, merchant) = runtime.block_on(common::unlimited_sandbox(dir.path(), |_| {}));
    let config = dir.path().join("hongbao.toml");
    std::fs::write(
        &config,
        format!("[database]\nurl = \"sqlite://hongbao.db\"\n\n{merchant}"),
    )
    .unwrap();

    let file = dir.path().join("campaign.csv");
    write_file(&file, rows);
    let (elapsed, peak, text) = run(
        &config,
        &["campaign", "run", file.to_str().unwrap(), "--name", "bench"],
    );
    assert!(text.contains("every row is paid"), "{text}");
    let ledger = sandbox.ledger();
    assert_eq!(
        ledger.len(),
        usize::try_from(rows).unwrap(),
        "every row paid exactly once"
    );
    let mut times: Vec<_> = ledger.iter().map(|e| e.created_at).collect();
    times.sort();
    let paying = (*times.last().unwrap() - times[0])
        .whole_milliseconds()
        .max(1);
    let per_second = i128::from(rows - 1) * 1000 / paying;
    let overall = u128::from(rows) * 1000 / elapsed.as_millis().max(1);
    println!("{rows}-row campaign against the sandbox:");
    println!("  paying: {per_second} payouts/s (first to last payment {paying} ms)");
    println!(
        "  whole command (validate, store, pay): {overall} rows/s over {} ms",
        elapsed.as_millis()
    );
    println!("  peak RSS of the command: {} MiB", peak / 1024);
    drop(ledger);

    let big = dir.path().join("big.csv");
    write_file(&big, import_rows);
    let size = std::fs::metadata(&big).unwrap().len();
    let (_, _, paused) = run(&config, &["merchant", "pause", "main"]);
    assert!(paused.contains("paused"), "{paused}");
    let (elapsed, peak, text) = run(
        &config,
        &["campaign", "run", big.to_str().unwrap(), "--name", "big"],
    );
    assert!(
        text.contains(&format!("stored {import_rows} rows")),
        "{text}"
    );
    println!(
        "{import_rows}-row file ({} MiB): validated and stored in {} ms ({} rows/s)",
        size / 1_048_576,
        elapsed.as_millis(),
        u128::from(import_rows) * 1000 / elapsed.as_millis().max(1)
    );
    println!("  peak RSS of the command: {} MiB", peak / 1024);
}
