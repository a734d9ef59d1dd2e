//! The payout commands of the real binary against the sandbox: `send` and
//! its exit codes, `records list|show`, `status --billno`, and `merchant
//! pause|resume|list`.

use std::io::BufRead;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Options, World, openid};
use hongbao_sandbox::{Faults, Probability};

fn command(world: &World, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hongbao"));
    command
        .args(args)
        .args(["--config", world.config.to_str().unwrap()])
        .env_remove("HONGBAO_CONFIG")
        .env("RUST_LOG", "warn")
        .current_dir(world.dir.path());
    command
}

fn hongbao(world: &World, args: &[&str]) -> Output {
    command(world, args).output().unwrap()
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `hongbao send` to `openid` of `yuan` from merchant main, with `extra` flags.
fn send(world: &World, openid: &str, yuan: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "send",
        "--merchant",
        "main",
        "--openid",
        openid,
        "--amount",
        yuan,
    ];
    args.extend_from_slice(extra);
    hongbao(world, &args)
}

/// The value after `key` on the line that has it (`stored ID  mch_billno B`).
fn after<'a>(text: &'a str, key: &str) -> &'a str {
    text.split_whitespace()
        .skip_while(|w| *w != key)
        .nth(1)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_pays_once_and_its_exit_code_says_how_it_went() {
    let world = World::new(|c| c.rules.sendnum_limit = 1, Options::default()).await;
    let first = openid(1);

    // Sent: exit 0, with the mch_billno and WeChat's order number.
    let sent = send(&world, &first, "1.88", &["--idempotency-key", "k-1"]);
    let text = printed(&sent);
    assert_eq!(sent.status.code(), Some(0), "{text}");
    assert!(text.contains("sent  send_listid"), "{text}");
    let billno = after(&text, "mch_billno").to_owned();
    let id = after(&text, "stored").to_owned();

    // The same key and parameters again: the same record, nothing paid again.
    let again = send(&world, &first, "1.88", &["--idempotency-key", "k-1"]);
    assert_eq!(again.status.code(), Some(0), "{}", printed(&again));
    assert_eq!(after(&printed(&again), "mch_billno"), billno);
    let ledger = world.sandbox.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (ledger[0].amount, ledger[0].mch_billno.as_str()),
        (188, billno.as_str())
    );

    // Refused for the recipient (one packet a day here): exit 1, with the
    // reason in English and Chinese.
    let refused = send(&world, &first, "2.00", &[]);
    let text = printed(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(text.contains("failed  SENDNUM_LIMIT"), "{text}");
    assert!(text.contains("今日"), "{text}");

    // Bad input: exit 2, the flag named, nothing stored or paid.
    let bad = send(&world, &openid(2), "1.001", &[]);
    let text = printed(&bad);
    assert_eq!(bad.status.code(), Some(2), "{text}");
    assert!(text.contains("--amount"), "{text}");
    let short = send(&world, "o-short", "1.00", &[]);
    assert_eq!(short.status.code(), Some(2), "{}", printed(&short));
    assert!(printed(&short).contains("re_openid"), "{}", printed(&short));
    // One payment in all: the refused packet left a failed order, no money.
    let paid: Vec<_> = world
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.paid)
        .collect();
    assert_eq!(paid.len(), 1);

    // The ledger, as the operator reads it.
    let list = hongbao(&world, &["records", "list"]);
    let text = printed(&list);
    assert_eq!(list.status.code(), Some(0), "{text}");
    assert!(text.contains(&billno) && text.contains("2 of 2"), "{text}");
    let show = hongbao(&world, &["records", "show", &id]);
    let text = printed(&show);
    assert_eq!(show.status.code(), Some(0), "{text}");
    assert!(text.contains("status        sent"), "{text}");
    assert!(text.contains("sendredpack"), "{text}");

    // Asking WeChat now.
    let status = hongbao(&world, &["status", "--billno", &billno]);
    let text = printed(&status);
    assert_eq!(status.status.code(), Some(0), "{text}");
    assert!(text.contains("SENT") || text.contains("RECEIVED"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_merchant_keeps_payouts_pending_until_resumed() {
    let world = World::new(|_| {}, Options::default()).await;
    let paused = hongbao(&world, &["merchant", "pause", "main"]);
    assert_eq!(paused.status.code(), Some(0), "{}", printed(&paused));
    let list = hongbao(&world, &["merchant", "list"]);
    assert!(
        printed(&list).contains("main  mch_id"),
        "{}",
        printed(&list)
    );
    assert!(printed(&list).contains("PAUSED"), "{}", printed(&list));

    // A send while paused is stored, stays pending, and says why: exit 1.
    let waiting = send(&world, &openid(5), "1.00", &["--wait", "2"]);
    let text = printed(&waiting);
    assert_eq!(waiting.status.code(), Some(1), "{text}");
    assert!(text.contains("pending  merchant main is paused"), "{text}");
    assert!(world.sandbox.ledger().is_empty());

    let resumed = hongbao(&world, &["merchant", "resume", "main"]);
    assert!(
        printed(&resumed).contains("main resumed"),
        "{}",
        printed(&resumed)
    );
    let list = hongbao(&world, &["merchant", "list"]);
    assert!(printed(&list).contains("active"), "{}", printed(&list));
}

/// The sandbox's orders, and how many of them are paid.
fn paid_orders(world: &World) -> (usize, usize) {
    let ledger = world.sandbox.ledger();
    (ledger.len(), ledger.iter().filter(|e| e.paid).count())
}

/// The command a printed line advises (`… hongbao send --resume ID …`),
/// run as printed.
fn run_advised(world: &World, text: &str, start: &str) -> Output {
    let line = text
        .lines()
        .find(|l| l.contains(start))
        .unwrap_or_else(|| panic!("no `{start}` advised in:\n{text}"));
    let advised = &line[line.find(start).unwrap()..];
    let words: Vec<&str> = advised.split_whitespace().collect();
    assert_eq!(words[0], "hongbao", "{line}");
    Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args(&words[1..])
        .env_remove("HONGBAO_CONFIG")
        .env("RUST_LOG", "warn")
        .current_dir(world.dir.path())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_slower_than_its_wait_prints_the_outcome_recorded_before_it_exits() {
    let world = World::new(
        |c| {
            c.faults = Faults {
                latency: Probability::ALWAYS,
                latency_ms: 3_000,
                ..Faults::default()
            }
        },
        Options::default(),
    )
    .await;
    // The answer takes 3 s, the command waits 1 s; it still finishes the
    // call in flight before exiting, and says what was recorded.
    let output = send(&world, &openid(1), "1.00", &["--wait", "1"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("sent  send_listid"), "{text}");
    assert!(
        !text.contains("pending") && !text.contains("sending"),
        "{text}"
    );
    assert_eq!(paid_orders(&world), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_the_advice_of_a_send_without_an_outcome_pays_once() {
    let world = World::new(
        |c| {
            // WeChat answers PROCESSING: the outcome stays unknown for 3 s.
            c.faults.processing = Probability::ALWAYS;
            c.lifecycle.processing_for = Duration::from_secs(3);
        },
        Options::default(),
    )
    .await;
    let output = send(&world, &openid(1), "1.00", &["--wait", "1"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let id = after(&text, "stored").to_owned();
    assert!(text.contains("sending  no outcome within 1 s"), "{text}");
    // The advice names this record, never "this command again" (which
    // would store and pay a second payout).
    assert!(!text.contains("this command again"), "{text}");
    assert!(
        text.contains(&format!("hongbao records show {id}")),
        "{text}"
    );
    world.sandbox.with(|s| s.faults = Faults::default());
    let finished = run_advised(&world, &text, "hongbao send --resume");
    let finished_text = printed(&finished);
    assert_eq!(finished.status.code(), Some(0), "{finished_text}");
    assert!(
        finished_text.contains("sent  send_listid"),
        "{finished_text}"
    );
    assert!(finished_text.contains(&id), "{finished_text}");
    assert_eq!(paid_orders(&world), (1, 1));
    let list = hongbao(&world, &["records", "list"]);
    assert!(printed(&list).contains("1 of 1"), "{}", printed(&list));

    // Resuming a settled record only shows its outcome.
    let again = run_advised(&world, &text, "hongbao send --resume");
    assert_eq!(again.status.code(), Some(0), "{}", printed(&again));
    assert_eq!(paid_orders(&world), (1, 1));
    let unknown = hongbao(&world, &["send", "--resume", "rp_nope"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", printed(&unknown));
    assert!(
        printed(&unknown).contains("rp_nope"),
        "{}",
        printed(&unknown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_idempotency_key_the_advice_is_to_run_the_same_command_again() {
    let world = World::new(
        |c| {
            c.faults.processing = Probability::ALWAYS;
            c.lifecycle.processing_for = Duration::from_secs(3);
        },
        Options::default(),
    )
    .await;
    let args = ["--wait", "1", "--idempotency-key", "order-42"];
    let output = send(&world, &openid(1), "1.00", &args);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("idempotency key order-42"), "{text}");
    assert!(
        text.contains("the same command (same --idempotency-key) is safe to run again"),
        "{text}"
    );
    world.sandbox.with(|s| s.faults = Faults::default());
    let again = send(
        &world,
        &openid(1),
        "1.00",
        &["--idempotency-key", "order-42"],
    );
    assert_eq!(again.status.code(), Some(0), "{}", printed(&again));
    assert_eq!(paid_orders(&world), (1, 1));
}

/// A `send` running with its output piped.
struct Running {
    child: std::process::Child,
    /// The `stored` line.
    first: String,
    /// The rest of standard output, once the command ends.
    rest: std::sync::mpsc::Receiver<String>,
}

/// Starts `send`, and returns once it has printed the `stored` line.
fn spawn_send(world: &World, extra: &[&str]) -> Running {
    let mut args = vec![
        "send",
        "--merchant",
        "main",
        "--openid",
        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "--amount",
        "1.00",
    ];
    args.extend_from_slice(extra);
    let mut child = command(world, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("stored "), "{first}");
    let (tx, rest) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        let _ = tx.send(text);
    });
    Running { child, first, rest }
}

/// Sends SIGINT (Ctrl-C) and returns the exit code and all that was printed.
fn interrupt(mut running: Running) -> (Option<i32>, String) {
    let _ = Command::new("kill")
        .args(["-INT", &running.child.id().to_string()])
        .status();
    let mut stderr = String::new();
    std::io::Read::read_to_string(running.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let status = running.child.wait().unwrap();
    let rest = running.rest.recv().unwrap();
    (status.code(), format!("{}{rest}{stderr}", running.first))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_send_says_what_is_stored_and_how_to_go_on() {
    let world = World::new(|_| {}, Options::default()).await;
    // Paused: the payout stays pending while the command waits.
    let paused = hongbao(&world, &["merchant", "pause", "main"]);
    assert_eq!(paused.status.code(), Some(0), "{}", printed(&paused));
    let running = spawn_send(&world, &["--wait", "60"]);
    let (code, text) = interrupt(running);
    assert_eq!(code, Some(1), "{text}");
    let id = after(&text, "stored").to_owned();
    assert!(
        text.contains(&format!("stopped: {id} is stored and pending")),
        "{text}"
    );
    assert!(world.sandbox.ledger().is_empty());

    hongbao(&world, &["merchant", "resume", "main"]);
    let finished = run_advised(&world, &text, "hongbao send --resume");
    assert_eq!(finished.status.code(), Some(0), "{}", printed(&finished));
    assert_eq!(paid_orders(&world), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_send_finishes_the_call_in_flight_and_prints_its_outcome() {
    let world = World::new(
        |c| {
            c.faults = Faults {
                latency: Probability::ALWAYS,
                latency_ms: 3_000,
                ..Faults::default()
            }
        },
        Options::default(),
    )
    .await;
    let running = spawn_send(&world, &["--wait", "60"]);
    // Interrupt once the call is on the wire.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&format!(
        "sqlite://{}",
        world.dir.path().join("hongbao.db").display()
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let in_flight: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payouts WHERE in_flight = 1")
            .fetch_one(&db)
            .await
            .unwrap();
        if in_flight > 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.close().await;
    let (code, text) = interrupt(running);
    assert!(
        text.contains("stopping: finishing the call in flight"),
        "{text}"
    );
    assert!(text.contains("sent  send_listid"), "{text}");
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(paid_orders(&world), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_asks_wechat_about_an_order_number_the_ledger_does_not_have() {
    let world = World::new(|_| {}, Options::default()).await;
    // Another system (here: another database) paid an order of merchant main.
    let other = world.dir.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&world.config)
            .unwrap()
            .replace("sqlite://hongbao.db", "sqlite://other.db"),
    )
    .unwrap();
    let sent = Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args([
            "send",
            "--merchant",
            "main",
            "--openid",
            &openid(7),
            "--amount",
            "1.23",
        ])
        .args(["--config", other.to_str().unwrap()])
        .env_remove("HONGBAO_CONFIG")
        .current_dir(world.dir.path())
        .output()
        .unwrap();
    assert_eq!(sent.status.code(), Some(0), "{}", printed(&sent));
    let billno = after(&printed(&sent), "mch_billno").to_owned();

    // Several merchants are configured: which one's order it is must be said.
    let which = hongbao(&world, &["status", "--billno", &billno]);
    assert_eq!(which.status.code(), Some(2), "{}", printed(&which));
    assert!(
        printed(&which).contains("--merchant"),
        "{}",
        printed(&which)
    );

    let status = hongbao(
        &world,
        &["status", "--billno", &billno, "--merchant", "main"],
    );
    let text = printed(&status);
    assert_eq!(status.status.code(), Some(0), "{text}");
    assert!(text.contains("not in the ledger"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["record"], serde_json::Value::Null, "{text}");
    assert_eq!(json["wechat"]["status"], "SENT", "{text}");
    assert_eq!(json["wechat"]["total_amount"], 123, "{text}");
    // Nothing was stored.
    let list = hongbao(&world, &["records", "list"]);
    assert!(printed(&list).contains("0 of 0"), "{}", printed(&list));

    // An order WeChat does not have either.
    let nowhere = format!("{}9999999999", &billno[..18]);
    let missing = hongbao(
        &world,
        &["status", "--billno", &nowhere, "--merchant", "main"],
    );
    let text = printed(&missing);
    assert_eq!(missing.status.code(), Some(1), "{text}");
    assert!(text.contains("NOT_FOUND"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_show_gives_a_mini_program_packet_its_package_and_pay_sign() {
    let world = World::new(|_| {}, Options::default()).await;
    let sent = send(&world, &openid(3), "1.00", &["--type", "miniprogram"]);
    let text = printed(&sent);
    assert_eq!(sent.status.code(), Some(0), "{text}");
    let id = after(&text, "stored").to_owned();

    let show = hongbao(&world, &["records", "show", &id, "--json"]);
    assert_eq!(show.status.code(), Some(0), "{}", printed(&show));
    let json: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let mini = &json["record"]["mini_program"];
    let field = |name: &str| {
        mini[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name}: {json}"))
            .to_owned()
    };
    let secrets = &world.sandbox.identity().secrets;
    let expected = hongbao_wxpay::sign::pay_sign(
        &secrets.miniprogram_appid,
        &field("nonceStr"),
        &field("package"),
        &field("timeStamp"),
        &hongbao_wxpay::ApiKey::parse(&secrets.api_key).unwrap(),
    );
    assert_eq!(field("paySign"), expected);
    assert_eq!(field("signType"), "MD5");
    assert!(field("package").contains("sendid%3D"), "{json}");

    // And in the text, ready to copy.
    let show = hongbao(&world, &["records", "show", &id]);
    let text = printed(&show);
    for value in [
        field("package"),
        field("paySign"),
        field("timeStamp"),
        field("nonceStr"),
    ] {
        assert!(text.contains(&value), "{value} missing:\n{text}");
    }
    assert!(text.contains("wx.sendBizRedPacket"), "{text}");
}
