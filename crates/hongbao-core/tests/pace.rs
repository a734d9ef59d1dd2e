//! The pace of a merchant's calls is shared through the database: two
//! processes (two pacers on one database) together stay within the
//! merchant's rate, and a FREQ_LIMIT seen by one slows the other.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hongbao_core::pacer::Pacer;
use hongbao_core::store::db::Db;
use tokio::time::Instant;

async fn shared_db(dir: &std::path::Path) -> Db {
    let url = common::database_url(dir).await;
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    db
}

/// The most calls in any window of `window` among `times` (sorted).
fn most_in_window(times: &[Duration], window: Duration) -> usize {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| times[i..].iter().take_while(|u| **u < *t + window).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_together_never_exceed_the_merchants_rate() {
    let dir = tempfile::tempdir().unwrap();
    let db = shared_db(dir.path()).await;
    // 3,000 a minute: 50 a second, one slot every 20.2 ms.
    let pacers = [
        Arc::new(Pacer::per_minute(db.clone(), "main", 3_000)),
        Arc::new(Pacer::per_minute(db.clone(), "main", 3_000)),
    ];
    let start = Instant::now();
    let times = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    // Each "process" has 8 callers, each making 15 calls: 240 calls.
    for pacer in &pacers {
        for _ in 0..8 {
            let (pacer, times) = (pacer.clone(), times.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..15 {
                    pacer.wait().await.unwrap();
                    times.lock().unwrap().push(start.elapsed());
                }
            }));
        }
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the pace serves everyone")
            .unwrap();
    }
    let mut times = times.lock().unwrap().clone();
    times.sort();
    assert_eq!(times.len(), 240);
    // Whichever way WeChat counts: at most 50 in any second, plus the
    // slot that straddles the window's edge (each time is taken just after
    // its slot, so on a loaded machine one can be late and bring the next
    // second's first slot into its window)...
    let per_second = most_in_window(&times, Duration::from_secs(1));
    assert!(per_second <= 51, "{per_second} calls in one second");
    // ... and, scaled down, at most 5 in any 100 ms (plus the slot that
    // straddles the window's edge).
    let per_tenth = most_in_window(&times, Duration::from_millis(100));
    assert!(per_tenth <= 6, "{per_tenth} calls in 100 ms");
    // The two share the quota rather than each taking half: 240 calls
    // at 50 a second take about 4.8 s; allow for a loaded machine.
    let took = *times.last().unwrap();
    assert!(took >= Duration::from_millis(4_600), "{took:?}");
    assert!(took < Duration::from_secs(12), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freq_limit_seen_by_one_process_slows_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let db = shared_db(dir.path()).await;
    // 6,000 a minute: one slot every 10.1 ms.
    let one = Pacer::per_minute(db.clone(), "main", 6_000);
    let other = Pacer::per_minute(db.clone(), "main", 6_000);
    one.wait().await.unwrap();
    // From before the slow-down: its minute starts at the database's clock
    // inside `slow_down`.
    let start = Instant::now();
    one.slow_down().await;
    for _ in 0..10 {
        other.wait().await.unwrap();
    }
    // A one-second gap, then slots 20.2 ms apart.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1_000 + 9 * 20),
        "the other process went on at full pace: {took:?}"
    );
    // Another merchant's pace is its own.
    let unrelated = Pacer::per_minute(db.clone(), "second", 6_000);
    let start = Instant::now();
    unrelated.wait().await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(500));
}
