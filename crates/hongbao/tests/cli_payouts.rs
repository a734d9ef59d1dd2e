//! The payout commands of the real binary against the sandbox: `send` and
//! its exit codes, `records list|show`, `status --billno`, and `merchant
//! pause|resume|list`.

mod support;

use std::process::Output;

use support::{Options, World, openid};

fn hongbao(world: &World, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hongbao"))
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
