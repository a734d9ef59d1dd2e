//! A database that cannot be written: `hongbao serve` on a disk that fills
//! up and empties again, and on a database opened read-only.
//!
//! The full disk is a small tmpfs, which only root may mount (CI runs as
//! root); elsewhere the test says so and passes without running, except in
//! CI (`CI` set), where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{Options, TOKEN, World, body, openid};
use serde_json::Value;

/// A tmpfs mounted on a directory for the test's life.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let why = "cannot mount a tmpfs (not root?): the full-disk test needs one";
            crate::support::missing("a tmpfs", why);
            return None;
        }
        Some(Tmpfs(dir.to_owned()))
    }

    /// Fills the file system; returns the filler file.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        for _ in 0..100_000 {
            if file
                .write_all(&chunk)
                .and_then(|()| file.sync_all())
                .is_err()
            {
                return path;
            }
        }
        panic!("the tmpfs never filled up");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn health(world: &World) -> (u16, Value) {
    world.get(None, "/healthz").await
}

/// Posts payouts from `first` until one answers `want` (at most `tries`);
/// every answer is kept.
async fn post_until(
    world: &World,
    first: u32,
    want: u16,
    tries: u32,
    answers: &mut Vec<(u16, Value)>,
) -> bool {
    for i in first..first + tries {
        let answer = world
            .post(Some(TOKEN), "/v1/redpacks", &body(&openid(i), 150), None)
            .await;
        let status = answer.0;
        answers.push(answer);
        if status == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_writes_resume_by_themselves_once_there_is_room() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&scratch.path().join("disk"), "3m") else {
        return;
    };
    let url = format!("sqlite://{}/hongbao.db", disk.0.display());
    let mut world = World::new(
        |_| {},
        Options {
            database_url: Some(url),
            ..Options::default()
        },
    )
    .await;
    world.start_serve().await;
    let mut answers = Vec::new();
    for i in 0..10 {
        assert!(
            post_until(&world, i, 201, 1, &mut answers).await,
            "{answers:?}"
        );
    }
    world.wait_settled(TOKEN, Duration::from_secs(30)).await;

    let filler = disk.fill();
    // Writes fail now: each is answered 503 in the API's shape, never 500.
    let full_from = answers.len();
    assert!(
        post_until(&world, 100, 503, 200, &mut answers).await,
        "no payout was refused on a full disk: {:?}",
        &answers[full_from..]
    );
    assert!(post_until(&world, 400, 503, 1, &mut answers).await);
    assert!(post_until(&world, 401, 503, 1, &mut answers).await);
    let (_, refused) = answers.last().unwrap();
    assert_eq!(
        refused["error"]["code"], "database_unavailable",
        "{refused}"
    );
    let (status, answer) = health(&world).await;
    assert_eq!(status, 503, "healthz on a full disk: {answer}");
    assert_eq!(answer["status"], "unavailable", "{answer}");

    // Room again: writes resume without a restart.
    std::fs::remove_file(filler).unwrap();
    assert!(
        post_until(&world, 500, 201, 100, &mut answers).await,
        "writes did not resume: {:?}",
        answers.last()
    );
    let mut healthy = false;
    for _ in 0..100 {
        if health(&world).await.0 == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "healthz: {:?}", health(&world).await);
    assert!(
        answers
            .iter()
            .all(|(status, _)| matches!(status, 201 | 503)),
        "{:?}",
        answers
            .iter()
            .filter(|(s, _)| !matches!(s, 201 | 503))
            .collect::<Vec<_>>()
    );
    // Everything stored was paid, once.
    let stored = answers.iter().filter(|(s, _)| *s == 201).count();
    let records = world.wait_settled(TOKEN, Duration::from_secs(60)).await;
    assert_eq!(records.len(), stored);
    world.assert_exactly_once(&records);
    assert!(
        !world.logs().contains("non-zero transaction depth"),
        "{}",
        world.logs()
    );
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_database_it_cannot_write_and_names_the_file() {
    let mut world = World::new(|_| {}, Options::default()).await;
    // A database made and migrated by a first run...
    world.start_serve().await;
    world.stop_serve();
    // ... then opened read-only, as SQLite does when the file is not
    // writable by the user.
    let text = std::fs::read_to_string(&world.config).unwrap();
    std::fs::write(
        &world.config,
        text.replace("sqlite://hongbao.db", "sqlite://hongbao.db?mode=ro"),
    )
    .unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args(["serve", "--config", world.config.to_str().unwrap()])
        .env_remove("HONGBAO_CONFIG")
        .current_dir(world.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut exited = None;
    for _ in 0..300 {
        exited = serve.try_wait().unwrap();
        if exited.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if exited.is_none() {
        serve.kill().unwrap();
    }
    let output = serve.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "still serving after 30 s: {stderr}"
    );
    assert!(
        stderr.contains("hongbao.db") && stderr.contains("cannot be written"),
        "{stderr}"
    );
    assert!(stderr.contains("writable"), "{stderr}");
}

#[test]
fn a_new_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args(["migrate"])
        .env_remove("HONGBAO_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta = std::fs::metadata(dir.path().join("hongbao-data/hongbao.db")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}
