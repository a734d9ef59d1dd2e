//! A database written by the release before the rails redesign (the
//! schema of migrations 1–5, with records in every status, a campaign,
//! prizes, attempts and a paused merchant) migrates with nothing lost, and
//! is read and paid through afterwards: on SQLite, and on PostgreSQL with
//! `TEST_POSTGRES_URL`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use hongbao_core::config::Config;
use hongbao_core::dispatch::{DispatchConfig, Dispatcher};
use hongbao_core::model::{Rail, Status};
use hongbao_core::store::db::Db;
use hongbao_core::{campaign, prize};
use hongbao_sandbox::{Sandbox, SandboxConfig};
use tokio::sync::watch;

/// The rows, as the release before wrote them.
const BEFORE: &str = include_str!("data/before_rails.sql");

/// What the fixture's rows were written with, replaced by this test's
/// sandbox's values so that its stored requests can be sent.
const FIXTURE_MCH_ID: &str = "1931038061";
const FIXTURE_APPID: &str = "wx15b6dd62f03212eb";
const FIXTURE_MINI_APPID: &str = "wxb2ff1094964ffdc1";

fn toml_value<'a>(toml: &'a str, key: &str) -> &'a str {
    toml.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{key} in the sandbox's merchant section"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_the_rails_migrates_and_pays_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut sandbox_config = SandboxConfig::new(dir.path().join("sandbox"));
    sandbox_config.seed = Some(3);
    let sandbox = Sandbox::start(sandbox_config).await.unwrap();
    let merchant = sandbox.merchant_toml("sandbox");
    let url = common::database_url(dir.path()).await;

    // The database as the release before left it.
    let db = Db::connect(&url).await.unwrap();
    db.migrate_to(5).await.unwrap();
    let fixture = BEFORE
        .replace(FIXTURE_MCH_ID, toml_value(&merchant, "mch_id"))
        .replace(FIXTURE_APPID, toml_value(&merchant, "appid"))
        .replace(
            FIXTURE_MINI_APPID,
            toml_value(&merchant, "miniprogram_appid"),
        );
    let statements: Vec<&str> = fixture
        .lines()
        .filter(|l| l.starts_with("INSERT"))
        .collect();
    assert!(statements.len() > 20, "the fixture's rows");
    for statement in &statements {
        sqlx::query(sqlx::AssertSqlSafe(
            statement.trim_end_matches(';').to_owned(),
        ))
        .execute(db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}: {statement}"));
    }
    db.close().await;

    // This release opens it and migrates it.
    let text = format!(
        "[database]\nurl = \"{url}\"\n\n{merchant}\n[tenants.sandbox]\napi_keys_sha256 = [\"{}\"]\nmerchants = [\"sandbox\"]\n",
        common::hex_sha256(common::TOKEN)
    );
    let path = dir.path().join("hongbao.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load_with_env(&path, []).unwrap();
    let payouts = common::service(&config).await;
    let tenant = &config.tenants["sandbox"];
    let ledger = payouts.ledger();
    assert!(ledger.db().pending_migrations().await.unwrap().is_empty());

    // Every record, in its status, on the red packet rail.
    let (records, total) = payouts
        .list(tenant, Default::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!(total, 17);
    let mut by_status: BTreeMap<&str, u32> = BTreeMap::new();
    for r in &records {
        assert_eq!(r.rail, Rail::Redpack, "{}", r.id);
        *by_status.entry(r.status.as_str()).or_default() += 1;
    }
    assert_eq!(
        by_status,
        BTreeMap::from([
            ("pending", 1),
            ("sending", 1),
            ("sent", 2),
            ("received", 4),
            ("refunding", 6),
            ("refunded", 2),
            ("failed", 1),
        ])
    );
    let first = ledger
        .get("rp_01M8RKH494MZEWJ30X9PYR759W")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            first.status,
            first.total_amount.get(),
            first.wishing.as_str()
        ),
        (Status::Received, 101, "恭喜发财")
    );
    // Its send and the query that saw it received, by the renamed column.
    let attempts = ledger.attempts(&first.id).await.unwrap();
    let apis: Vec<&str> = attempts.iter().map(|a| a.api.as_str()).collect();
    assert_eq!(apis, ["sendredpack", "gethbinfo"]);
    assert!(attempts.iter().all(|a| a.mch_billno == first.mch_billno));
    let failed = ledger
        .get("rp_01M8RKH4C851P26RXAXFV5FWM2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.err_code.as_deref(), Some("NO_AUTH"));
    assert!(failed.zh_message.unwrap().contains("裂变红包"));

    // The campaign and its rows; the activity, its prizes and their payout.
    let autumn = campaign::find(ledger, "sandbox", "autumn")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((autumn.rows, autumn.imported), (3, 3));
    assert_eq!(autumn.options.per_openid_daily, None);
    let totals = campaign::totals(ledger, &autumn.id).await.unwrap();
    assert_eq!(totals.paid().0 + totals.open().0 + totals.failed().0, 3);
    let issued = prize::get_prize(ledger, "sandbox", "pz_01M8RKHPSBRCAFEVSPJB8RTTVS")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        issued.payout_id.as_deref(),
        Some("rp_01M8RKHPZ7H6BJ699J39AMBNSS")
    );
    let waiting = prize::get_prize(ledger, "sandbox", "pz_01M8RKHPW79H0CJ8E4SW017E5A")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiting.payout_id, None);

    // The operator's pause holds; resumed, the record left pending and the
    // one left sending (an ambiguous answer) are paid, each once, under
    // their own numbers, and a new payout takes a number of its own.
    let pauses = ledger.pauses().await.unwrap();
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].merchant, "sandbox");
    assert!(payouts.resume("sandbox").await.unwrap());
    let (stop, stopped) = watch::channel(false);
    let dispatcher = Dispatcher::start(
        ledger.clone(),
        payouts.merchants(),
        payouts.events().clone(),
        payouts.metrics().clone(),
        DispatchConfig::new(),
        &stopped,
    );
    let new = payouts
        .create(
            tenant,
            &hongbao_core::model::RedpackInput {
                re_openid: "oAfterRails00000000000000001".into(),
                total_amount: 166,
                ..Default::default()
            },
            None,
            None,
            None,
        )
        .await
        .unwrap()
        .record()
        .clone();
    let fixture_billnos: Vec<String> = records.iter().map(|r| r.mch_billno.clone()).collect();
    assert!(
        !fixture_billnos.contains(&new.mch_billno),
        "{}",
        new.mch_billno
    );
    let left = [
        "rp_01M8RKPD8VYZK2NECHBNJGK14F",
        "rp_01M8RKPD8HA3JGGDBRN20D2X7T",
        new.id.as_str(),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let settled = loop {
        let mut now = Vec::new();
        for id in left {
            now.push(ledger.get(id).await.unwrap().unwrap());
        }
        if now.iter().all(|r| r.status.is_settled()) || tokio::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let paid = sandbox.ledger();
    for record in &settled {
        assert!(
            matches!(record.status, Status::Sent | Status::Received),
            "{record:?}"
        );
        let orders: Vec<_> = paid
            .iter()
            .filter(|e| e.mch_billno == record.mch_billno && e.paid)
            .collect();
        assert_eq!(orders.len(), 1, "{}: {orders:?}", record.mch_billno);
        assert_eq!(orders[0].amount, record.total_amount.get());
    }
    let _ = stop.send(true);
    dispatcher.finish().await;
}
