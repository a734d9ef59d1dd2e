//! A ledger, dispatcher and payout service against an in-process sandbox.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use hongbao_core::config::{Config, TenantConfig};
use hongbao_core::dispatch::{DispatchConfig, Dispatcher};
use hongbao_core::events::Events;
use hongbao_core::merchant::{MerchantRuntime, Merchants};
use hongbao_core::metrics::Metrics;
use hongbao_core::model::{Redpack, RedpackInput, Status};
use hongbao_core::payouts::Payouts;
use hongbao_core::store::Ledger;
use hongbao_core::store::db::Db;
use hongbao_sandbox::{Sandbox, SandboxConfig};
use tokio::sync::watch;

pub const TOKEN: &str = "test-token";

pub struct Env {
    pub sandbox: Sandbox,
    pub config: Config,
    pub payouts: Arc<Payouts>,
    pub dir: tempfile::TempDir,
    dispatcher: Option<(Dispatcher, watch::Sender<bool>)>,
}

/// The database of a test: SQLite in the test's directory, or, with
/// `TEST_POSTGRES_URL` set to a server URL, a fresh PostgreSQL database.
pub async fn database_url(dir: &std::path::Path) -> String {
    match hongbao_testkit::fresh_postgres().await {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("hongbao.db").display()),
    }
}

pub async fn start(configure: impl FnOnce(&mut SandboxConfig)) -> Env {
    start_with(configure, |_| {}).await
}

pub async fn start_with(
    configure: impl FnOnce(&mut SandboxConfig),
    tune: impl FnOnce(&mut String),
) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut sandbox_config = SandboxConfig::new(dir.path().join("sandbox"));
    sandbox_config.seed = Some(1);
    configure(&mut sandbox_config);
    let sandbox = Sandbox::start(sandbox_config).await.unwrap();
    let url = database_url(dir.path()).await;
    let mut merchant = sandbox.merchant_toml("main");
    tune(&mut merchant);
    let text = format!(
        "[database]\nurl = \"{url}\"\n\n{merchant}\n[tenants.acme]\napi_keys_sha256 = [\"{}\"]\nmerchants = [\"main\"]\n",
        hex_sha256(TOKEN)
    );
    let path = dir.path().join("hongbao.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load_with_env(&path, []).unwrap();
    let payouts = service(&config).await;
    let mut env = Env {
        sandbox,
        config,
        payouts,
        dir,
        dispatcher: None,
    };
    env.start_dispatcher(DispatchConfig::new());
    env
}

pub async fn service(config: &Config) -> Arc<Payouts> {
    let db = Db::connect(&config.database.url).await.unwrap();
    db.migrate().await.unwrap();
    let merchants: Merchants = config
        .merchants
        .values()
        .map(|m| {
            (
                m.name.clone(),
                Arc::new(MerchantRuntime::new(m.clone(), &db).unwrap()),
            )
        })
        .collect();
    Arc::new(Payouts::new(
        Ledger::new(db),
        Arc::new(merchants),
        config.tenants.clone(),
        Arc::new(Events::default()),
        Arc::new(Metrics::new()),
    ))
}

pub use hongbao_testkit::sha256_hex as hex_sha256;

impl Env {
    pub fn tenant(&self) -> &TenantConfig {
        &self.config.tenants["acme"]
    }

    pub fn start_dispatcher(&mut self, config: DispatchConfig) {
        let (tx, rx) = watch::channel(false);
        let dispatcher = Dispatcher::start(
            self.payouts.ledger().clone(),
            self.payouts.merchants(),
            self.payouts.events().clone(),
            self.payouts.metrics().clone(),
            config,
            &rx,
        );
        self.dispatcher = Some((dispatcher, tx));
    }

    pub async fn stop_dispatcher(&mut self) {
        if let Some((dispatcher, tx)) = self.dispatcher.take() {
            let _ = tx.send(true);
            dispatcher.finish().await;
        }
    }

    pub fn input(&self, openid: &str, fen: u64) -> RedpackInput {
        RedpackInput {
            re_openid: openid.into(),
            total_amount: fen,
            ..RedpackInput::default()
        }
    }

    pub async fn send(&self, openid: &str, fen: u64) -> Redpack {
        let stored = self
            .payouts
            .create(self.tenant(), &self.input(openid, fen), None, None, None)
            .await
            .unwrap();
        stored.record().clone()
    }

    /// Waits (bounded) until every record is settled; returns them.
    pub async fn settle_all(&self, timeout: Duration) -> Vec<Redpack> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (records, _) = self
                .payouts
                .list(self.tenant(), Default::default(), 0, 100_000)
                .await
                .unwrap();
            let open = records.iter().filter(|r| !r.status.is_settled()).count();
            if open == 0 || tokio::time::Instant::now() >= deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn openid(n: u32) -> String {
    format!("oCore{n:023}")
}

/// The sandbox's ledger shows every record paid exactly once: one order per
/// record, under the record's mch_billno, for the record's amount.
pub fn assert_paid_exactly_once(env: &Env, records: &[Redpack]) {
    let ledger = env.sandbox.ledger();
    let paid: std::collections::BTreeMap<&str, &hongbao_sandbox::LedgerEntry> = ledger
        .iter()
        .filter(|e| e.paid)
        .map(|e| (e.mch_billno.as_str(), e))
        .collect();
    for record in records {
        assert!(
            matches!(
                record.status,
                Status::Sent | Status::Received | Status::Refunding | Status::Refunded
            ),
            "{} ended {} ({:?})",
            record.id,
            record.status,
            record.err_code
        );
        let entry = paid
            .get(record.mch_billno.as_str())
            .unwrap_or_else(|| panic!("{} not paid", record.mch_billno));
        assert_eq!(entry.amount, record.total_amount.get());
        assert_eq!(entry.openid, record.re_openid);
    }
    assert_eq!(paid.len(), records.len(), "no payment beyond the records");
    let per_openid_amount: u64 = ledger.iter().filter(|e| e.paid).map(|e| e.amount).sum();
    let expected: u64 = records.iter().map(|r| r.total_amount.get()).sum();
    assert_eq!(per_openid_amount, expected);
}
