//! `hongbao serve` with few file descriptors and many idle clients: the
//! API still answers and payouts are still paid, because the connection
//! cap keeps descriptors for the database and WeChat.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Options, TOKEN, World, body, openid, wait_serving};

/// The open-file limit `hongbao serve` runs under here.
const NOFILE: u32 = 256;

/// Kills the process when dropped, whatever happened.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_idle_clients_starve_neither_the_api_nor_the_dispatcher() {
    let mut world = World::new(|_| {}, Options::default()).await;
    let log = std::fs::File::create(world.dir.path().join("serve.log")).unwrap();
    let mut serve = Serve(
        Command::new("sh")
            .args([
                "-c",
                &format!("ulimit -n {NOFILE} && exec \"$0\" serve --config \"$1\""),
                env!("CARGO_BIN_EXE_hongbao"),
                world.config.to_str().unwrap(),
            ])
            .env_remove("HONGBAO_CONFIG")
            .env("RUST_LOG", "info")
            .current_dir(world.dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let log = world.dir.path().join("serve.log");
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let base = wait_serving(&world.http, &log).await;
    assert!(base.is_some(), "hongbao serve did not start: {}", logs());
    world.base = base.unwrap_or_default();

    // More idle connections than the process has descriptors.
    let addr = world.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..(NOFILE + 100) {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }

    let answer = world
        .http
        .post(format!("{}/v1/redpacks?wait=20", world.base))
        .bearer_auth(TOKEN)
        .json(&body(&openid(1), 188))
        .timeout(Duration::from_secs(60))
        .send()
        .await;
    let response = match answer {
        Ok(response) => response,
        Err(e) => panic!("the API did not answer: {e}\n{}", logs()),
    };
    let status = response.status();
    let record: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(status, 201, "{record}\n{}", logs());
    assert_eq!(record["status"], "sent", "{record}\n{}", logs());
    let (status, health) = world.get(None, "/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    drop(idle);
    let _ = Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status();
    for _ in 0..300 {
        if serve.0.try_wait().unwrap().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("hongbao serve did not stop on SIGTERM");
}
