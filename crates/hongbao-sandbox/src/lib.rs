//! A faithful simulated WeChat Pay for cash red packets and APIv3 transfer
//! bills (商家转账).
//!
//! WeChat offers no usable sandbox for red packets; this is hongbao's
//! default target and the ground of its tests. It serves WeChat's paths
//! over HTTPS (asking for the merchant's client certificate), checks
//! signatures over each API's documented fields, enforces WeChat's rules
//! with WeChat's err_codes and texts, keeps orders idempotent per
//! mch_billno, plays the packets' lifecycle (sent, opened or refunded),
//! injects faults reproducibly, and serves the official account's
//! `token` and `user/info` for the follow check. WeChat has no APIv3
//! sandbox at all: this one serves the transfer APIs on the same port
//! (request signatures, signed answers, the bills' state machine, encrypted
//! callbacks) and plays the user who confirms. An admin API on loopback
//! shows the ledger of committed payments, moves the clock, confirms bills
//! and serves a confirm page.
//!
//! # Layout
//!
//! - `identity`: certificates, keys and secrets on disk.
//! - `settings`: rules, lifecycles, faults.
//! - `sim`: the simulated WeChat (see its own layout).
//! - `v3keys`: WeChat's side of APIv3 signatures and encryption.
//! - `server`: the HTTPS listener; `callbacks`: delivery of transfer callbacks.
//! - `admin`: the admin API and the confirm page.
//!
//! It owns the simulated side only: it must never call out to the real
//! WeChat, and it uses `hongbao-wxpay` only for signing and XML.

mod admin;
mod callbacks;
mod identity;
mod server;
mod settings;
mod sim;
mod v3keys;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hongbao_wxpay::Fen;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use admin::{LedgerEntry, TransferEntry};
pub use identity::{Identity, IdentityError, Secrets, files};
pub use settings::{Faults, Followers, Lifecycle, Probability, Rules, Transfers, V3Signer};
pub use sim::{
    BillState, CallbackDelivery, ClientCert, Counters, Decision, FaultKind, Order, OrderState,
    Settled, Share, Simulator, TransferBill, UserAction, V3Call,
};

/// How to run a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Where the HTTPS API listens (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Where the admin API listens (plain HTTP; loopback only), if at all.
    pub admin_listen: Option<SocketAddr>,
    /// Where the identity and journal live.
    pub data_dir: PathBuf,
    /// The merchant's starting balance (the basic account: red packets).
    pub balance: Fen,
    /// The operations account's starting balance (运营账户: transfers).
    pub operations_balance: Fen,
    /// The transfer bills' rules and lifecycle, and the simulated user.
    pub transfers: Transfers,
    /// WeChat's limits.
    pub rules: Rules,
    /// The packets' lifecycle.
    pub lifecycle: Lifecycle,
    /// Faults to inject.
    pub faults: Faults,
    /// Who follows the official account.
    pub followers: Followers,
    /// Seed of the random choices (faults, opening, splits): the same seed
    /// and the same sequence of calls give the same outcomes.
    pub seed: Option<u64>,
}

impl SandboxConfig {
    /// Defaults: a free loopback port, no admin listener, a balance of one
    /// million yuan, WeChat's default limits, no faults.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: None,
            data_dir: data_dir.into(),
            balance: Fen::new(100_000_000),
            operations_balance: Fen::new(100_000_000),
            transfers: Transfers::default(),
            rules: Rules::default(),
            lifecycle: Lifecycle::default(),
            faults: Faults::default(),
            followers: Followers::All,
            seed: None,
        }
    }
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The identity could not be created or read.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A setting is not usable.
    #[error("{0}")]
    Invalid(String),
}

/// A running sandbox. Dropping it stops its listeners.
#[derive(Debug)]
pub struct Sandbox {
    identity: Identity,
    api_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    sim: Arc<Mutex<Simulator>>,
    shutdown: watch::Sender<bool>,
}

impl Sandbox {
    /// Creates (or reuses) the identity in the data directory, replays the
    /// journal, and starts listening.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.faults.validate().map_err(SandboxError::Invalid)?;
        if let Some(admin) = config.admin_listen
            && !admin.ip().is_loopback()
        {
            return Err(SandboxError::Invalid(format!(
                "the admin API must listen on a loopback address, not {admin}"
            )));
        }
        let identity = Identity::load_or_create(&config.data_dir)?;
        let tls = server::Tls::new(
            &identity.ca_pem,
            &identity.server_cert_pem,
            &identity.server_key_pem,
        )
        .map_err(|e| SandboxError::Invalid(format!("TLS: {e}")))?;
        let mut sim = Simulator::new(
            identity.secrets.clone(),
            config.balance.get(),
            config.rules,
            config.lifecycle,
            config.faults,
            config.followers,
            config.seed,
        );
        let keys = v3keys::V3Keys::from_identity(&identity)
            .map_err(|e| SandboxError::Invalid(format!("APIv3 keys: {e}")))?;
        sim.enable_v3(keys, config.transfers, config.operations_balance.get());
        let journal = identity.path(files::JOURNAL);
        sim.attach_journal(&journal).map_err(|source| {
            SandboxError::Identity(IdentityError::Io {
                path: journal.clone(),
                source,
            })
        })?;
        let sim = Arc::new(Mutex::new(sim));

        let listen = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| SandboxError::Listen { addr, source })
        };
        let api = listen(config.listen).await?;
        let api_addr = api.local_addr().map_err(|source| SandboxError::Listen {
            addr: config.listen,
            source,
        })?;
        let (shutdown, stop) = watch::channel(false);
        tokio::spawn(server::serve(api, Arc::new(tls), sim.clone(), stop.clone()));
        let deliverer = callbacks::client(&identity.ca_pem)
            .map_err(|e| SandboxError::Invalid(format!("callback client: {e}")))?;
        tokio::spawn(callbacks::deliver(sim.clone(), deliverer, stop.clone()));

        let admin_addr = match config.admin_listen {
            None => None,
            Some(addr) => {
                let listener = listen(addr).await?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| SandboxError::Listen { addr, source })?;
                let router = admin::router(sim.clone());
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = stop.changed().await;
                        })
                        .await;
                });
                Some(bound)
            }
        };

        let sandbox = Sandbox {
            identity,
            api_addr,
            admin_addr,
            sim,
            shutdown,
        };
        let toml = sandbox.merchant_toml("sandbox");
        let path = sandbox.identity.path(files::MERCHANT_TOML);
        identity::write_owner_only(&path, toml.as_bytes())?;
        Ok(sandbox)
    }

    /// The API's base URL, e.g. `https://127.0.0.1:40123`.
    pub fn api_base(&self) -> String {
        format!("https://{}", self.api_addr)
    }

    /// The API's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The admin API's base URL, if it listens.
    pub fn admin_base(&self) -> Option<String> {
        self.admin_addr.map(|a| format!("http://{a}"))
    }

    /// The identity: ids, secrets, certificate files.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// A `[merchants.NAME]` configuration section for this sandbox.
    pub fn merchant_toml(&self, name: &str) -> String {
        self.identity.merchant_toml(name, &self.api_base())
    }

    /// Runs `f` on the simulator (for tests and the embedding server).
    pub fn with<R>(&self, f: impl FnOnce(&mut Simulator) -> R) -> R {
        f(&mut self.sim.lock().expect("sandbox lock"))
    }

    /// Every transfer bill, as the admin API lists it.
    pub fn transfers(&self) -> Vec<admin::TransferEntry> {
        self.with(|sim| {
            sim.transfer_ledger()
                .iter()
                .map(|(b, s)| admin::TransferEntry::new(b, s))
                .collect()
        })
    }

    /// The ledger of every order, as the admin API lists it.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.with(|sim| {
            sim.ledger()
                .iter()
                .map(|(o, s)| LedgerEntry::new(o, s))
                .collect()
        })
    }

    /// Stops listening (also done on drop).
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}
