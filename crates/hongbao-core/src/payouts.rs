//! The payout service that the HTTP API and the command line share:
//! tenancy, validation, storing (group-committed), waiting for outcomes,
//! asking WeChat, pausing and resuming merchants, health.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hongbao_wxpay::{HbInfo, InvalidField, MchBillNo, Prepared};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::config::TenantConfig;
use crate::dispatch::{DispatchConfig, Dispatcher};
use crate::events::Events;
use crate::merchant::{MerchantRuntime, Merchants};
use crate::metrics::Metrics;
use crate::model::{
    AttemptRow, Awaiting, Pause, PauseKind, QueryVerdict, Redpack, RedpackInput, ValidRedpack,
};
use crate::rail::redpack;
use crate::store::db::DbError;
use crate::store::{Idempotency, Ledger, ListFilter, NewRecord, StoreError, Stored};

mod transfers;

pub use transfers::{CancelError, NotifyError, TransferStatus};

/// Why a payout was not stored.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A field breaks a rule.
    #[error("{0}")]
    Invalid(InvalidField),
    /// The idempotency key was used with another request.
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyConflict,
    /// The database cannot be reached.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Something else failed.
    #[error("{0}")]
    Internal(String),
}

impl From<DbError> for CreateError {
    fn from(e: DbError) -> Self {
        if e.is_unavailable() {
            CreateError::Unavailable(e.to_string())
        } else {
            CreateError::Internal(e.to_string())
        }
    }
}

/// Which record a status request is about.
#[derive(Clone, Debug)]
pub enum Selector {
    /// By id.
    Id(String),
    /// By mch_billno.
    Billno(String),
}

/// What WeChat says of a record now.
#[derive(Clone, Debug)]
pub struct WechatStatus {
    /// The record, updated.
    pub record: Redpack,
    /// gethbinfo's answer, when WeChat has the packet.
    pub info: Option<HbInfo>,
    /// `NOT_FOUND` when WeChat does not have it (yet).
    pub not_found: bool,
}

/// Why a status could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No such record among the tenant's.
    #[error("no such red packet")]
    NotFound,
    /// WeChat gave no usable answer.
    #[error("WeChat did not answer usably: {0}")]
    Wechat(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The health of the service.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    /// `ok`, `degraded` (a merchant is paused) or `unavailable` (the
    /// database cannot be read, or writes fail: a full disk, a read-only file).
    pub status: &'static str,
    /// The database: `ok` or why not.
    pub database: String,
    /// Every merchant and its pause, if any.
    pub merchants: Vec<MerchantHealth>,
}

/// One merchant's state.
#[derive(Clone, Debug, Serialize)]
pub struct MerchantHealth {
    /// The merchant.
    pub name: String,
    /// Its mch_id.
    pub mch_id: String,
    /// Its pause, if paused.
    pub paused: Option<Pause>,
}

type Job = (NewRecord, oneshot::Sender<Result<Stored, StoreError>>);

/// The payout service.
#[derive(Debug)]
pub struct Payouts {
    ledger: Ledger,
    merchants: Arc<Merchants>,
    tenants: BTreeMap<String, TenantConfig>,
    events: Arc<Events>,
    metrics: Arc<Metrics>,
    inserts: mpsc::Sender<Job>,
}

impl Payouts {
    /// The service over `ledger` for these merchants and tenants. Starts the
    /// task that stores payouts in shared transactions.
    pub fn new(
        ledger: Ledger,
        merchants: Arc<Merchants>,
        tenants: BTreeMap<String, TenantConfig>,
        events: Arc<Events>,
        metrics: Arc<Metrics>,
    ) -> Payouts {
        let (inserts, rx) = mpsc::channel(8192);
        tokio::spawn(store_loop(ledger.clone(), events.clone(), rx));
        Payouts {
            ledger,
            merchants,
            tenants,
            events,
            metrics,
            inserts,
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The merchants.
    pub fn merchants(&self) -> &Arc<Merchants> {
        &self.merchants
    }

    /// The events (for dispatchers).
    pub fn events(&self) -> &Arc<Events> {
        &self.events
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Starts a dispatcher paying this service's records until `stop`.
    pub fn start_dispatcher(
        &self,
        config: DispatchConfig,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Dispatcher {
        Dispatcher::start(
            self.ledger.clone(),
            self.merchants(),
            self.events.clone(),
            self.metrics.clone(),
            config,
            stop,
        )
    }

    /// The tenant whose bearer token this is (compared in constant time).
    pub fn tenant_for_token(&self, token: &str) -> Option<&TenantConfig> {
        crate::config::find_tenant(self.tenants.values(), token)
    }

    /// A tenant by name.
    pub fn tenant(&self, name: &str) -> Option<&TenantConfig> {
        self.tenants.get(name)
    }

    /// The merchant a tenant means: the one named, or its only one.
    pub fn resolve_merchant(
        &self,
        tenant: &TenantConfig,
        name: Option<&str>,
    ) -> Result<&Arc<MerchantRuntime>, InvalidField> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(name) => name,
            None => match tenant.merchants.as_slice() {
                [only] => only.as_str(),
                _ => {
                    return Err(InvalidField::new(
                        "merchant",
                        format!(
                            "is required: this API key may use {}",
                            tenant.merchants.join(", ")
                        ),
                        format!(
                            "必填：此 API 密钥可用的商户为 {}",
                            tenant.merchants.join("、")
                        ),
                    ));
                }
            },
        };
        if !tenant.merchants.iter().any(|m| m == name) {
            return Err(InvalidField::new(
                "merchant",
                format!("{name:?} is not a merchant this API key may use"),
                format!("{name:?} 不是此 API 密钥可用的商户"),
            ));
        }
        self.merchants.get(name).ok_or_else(|| {
            InvalidField::new(
                "merchant",
                format!("{name:?} is not configured"),
                format!("商户 {name:?} 未配置"),
            )
        })
    }

    /// Validates and stores a payout for `tenant`. Nothing is stored if
    /// any rule is broken.
    pub async fn create(
        &self,
        tenant: &TenantConfig,
        input: &RedpackInput,
        idempotency: Option<Idempotency>,
        campaign_id: Option<String>,
        prize_id: Option<String>,
    ) -> Result<Stored, CreateError> {
        let merchant = self
            .resolve_merchant(tenant, input.merchant.as_deref())
            .map_err(CreateError::Invalid)?;
        let valid =
            ValidRedpack::validate(input, &merchant.config).map_err(CreateError::Invalid)?;
        let record = NewRecord {
            tenant: tenant.name.clone(),
            mch_id: merchant.config.mch_id.clone(),
            valid: valid.into(),
            idempotency,
            campaign_id,
            campaign_line: None,
            prize_id,
            daily_cap: None,
        };
        self.enqueue(record).await
    }

    /// Hands `record` to the store loop (group commit) and waits for it
    /// to be stored.
    async fn enqueue(&self, record: NewRecord) -> Result<Stored, CreateError> {
        let (tx, rx) = oneshot::channel();
        self.inserts
            .send((record, tx))
            .await
            .map_err(|_| CreateError::Internal("the service is shutting down".into()))?;
        match rx.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(StoreError::IdempotencyConflict)) => Err(CreateError::IdempotencyConflict),
            Ok(Err(StoreError::Unavailable(e))) => Err(CreateError::Unavailable(e)),
            Ok(Err(StoreError::Failed(e))) => Err(CreateError::Internal(e)),
            Err(_) => Err(CreateError::Internal("the store task stopped".into())),
        }
    }

    /// Waits up to `timeout` for record `id` to have an outcome (or for its
    /// merchant to be paused); returns the record as it then is.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Option<Redpack>, DbError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.events.wait_for(id);
            let record = self.ledger.get(id).await?;
            let Some(record) = record else {
                return Ok(None);
            };
            if record.status.is_settled() || tokio::time::Instant::now() >= deadline {
                self.events.forget(id);
                return Ok(Some(record));
            }
            if self.ledger.is_paused(&record.merchant).await? && record.attempts > 0 {
                self.events.forget(id);
                return Ok(Some(record));
            }
            // Another process may be the one dispatching: look again now and then.
            let step = deadline.min(tokio::time::Instant::now() + Duration::from_millis(500));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(step) => {}
            }
        }
    }

    /// A record of `tenant`'s merchants.
    pub async fn get(&self, tenant: &TenantConfig, id: &str) -> Result<Option<Redpack>, DbError> {
        Ok(self
            .ledger
            .get(id)
            .await?
            .filter(|r| tenant.merchants.contains(&r.merchant)))
    }

    /// Records of `tenant`'s merchants.
    pub async fn list(
        &self,
        tenant: &TenantConfig,
        mut filter: ListFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Redpack>, u64), DbError> {
        filter.merchants = match filter.merchants.is_empty() {
            true => tenant.merchants.clone(),
            false => filter
                .merchants
                .into_iter()
                .filter(|m| tenant.merchants.contains(m))
                .collect(),
        };
        self.ledger.list(&filter, offset, limit).await
    }

    /// Asks WeChat (gethbinfo) about a record now, and updates it.
    pub async fn wechat_status(
        &self,
        tenant: &TenantConfig,
        selector: &Selector,
    ) -> Result<WechatStatus, StatusError> {
        let record = match selector {
            Selector::Id(id) => self.get(tenant, id).await?,
            Selector::Billno(b) => self.ledger.get_by_billno(&tenant.merchants, b).await?,
        }
        .filter(|r| r.rail == crate::model::Rail::Redpack)
        .ok_or(StatusError::NotFound)?;
        let merchant = self
            .merchants
            .get(&record.merchant)
            .ok_or(StatusError::NotFound)?;
        let crate::model::RailRequest::Redpack { prepared, .. } = &record.request else {
            return Err(StatusError::NotFound);
        };
        let (verdict, row, info) = self
            .ask_wechat(merchant, &record.mch_billno, Some(prepared))
            .await?;
        // Kept with the record's other calls, like the dispatcher's.
        self.ledger.add_attempt(&record.id, row).await?;
        match (verdict, info) {
            (QueryVerdict::AnotherOrder, _) => Err(StatusError::Wechat(format!(
                "another order (of another amount or receiver) holds mch_billno {} at WeChat; the record is not changed",
                record.mch_billno
            ))),
            (verdict, Some(info)) => {
                if let QueryVerdict::Found(state) = &verdict {
                    self.ledger.record_wechat_status(&record.id, state).await?;
                }
                let record = self
                    .ledger
                    .get(&record.id)
                    .await?
                    .ok_or(StatusError::NotFound)?;
                Ok(WechatStatus {
                    record,
                    info: Some(info),
                    not_found: false,
                })
            }
            (QueryVerdict::NotFound, None) => Ok(WechatStatus {
                record,
                info: None,
                not_found: true,
            }),
            (other, None) => Err(StatusError::Wechat(format!("{other:?}"))),
        }
    }

    /// One gethbinfo of `mch_billno` now, at the merchant's pace, counted
    /// like every call; compared with `request` when a record is asked about.
    async fn ask_wechat(
        &self,
        merchant: &MerchantRuntime,
        mch_billno: &str,
        request: Option<&Prepared>,
    ) -> Result<(QueryVerdict, AttemptRow, Option<HbInfo>), StatusError> {
        let client = merchant.rails.redpack().ok_or_else(|| {
            StatusError::Wechat(format!(
                "merchant {} has no v2 api_key: it pays by transfer only",
                merchant.name()
            ))
        })?;
        let query = redpack::query_request(client, mch_billno).map_err(StatusError::Wechat)?;
        merchant.pacer.wait().await?;
        let called = redpack::call(client, &query).await;
        let (verdict, row, info) =
            redpack::query_outcome(mch_billno, request, &Awaiting::Nothing, &called);
        self.metrics
            .call(merchant.name(), row.api, row.outcome.as_str());
        self.metrics.wechat_latency(row.api, called.latency);
        Ok((verdict, row, info))
    }

    /// Asks WeChat (gethbinfo) about order `mch_billno` of `merchant` that
    /// no record has (one another system sent, e.g. before hongbao):
    /// nothing is stored. `None` when WeChat has no such order either.
    pub async fn wechat_status_unrecorded(
        &self,
        merchant: &str,
        mch_billno: &MchBillNo,
    ) -> Result<Option<HbInfo>, StatusError> {
        let merchant = self.merchants.get(merchant).ok_or(StatusError::NotFound)?;
        // Counted like every call, though there is no record to keep it with.
        let (verdict, _, info) = self.ask_wechat(merchant, mch_billno.as_str(), None).await?;
        match (verdict, info) {
            (_, Some(info)) => Ok(Some(info)),
            (QueryVerdict::NotFound, None) => Ok(None),
            (other, None) => Err(StatusError::Wechat(format!("{other:?}"))),
        }
    }

    /// Stops a merchant's payouts (an operator's decision).
    pub async fn pause(&self, merchant: &str) -> Result<(), DbError> {
        let (message, _) = PauseKind::Operator.messages(None);
        self.ledger
            .pause(merchant, PauseKind::Operator, None, &message)
            .await?;
        // Records already claimed stop before their call, too.
        let epoch = self.events.pause_epoch();
        self.events.merchant_pause_read(merchant, true, epoch);
        Ok(())
    }

    /// Lets a merchant's payouts go on; returns whether it was paused.
    pub async fn resume(&self, merchant: &str) -> Result<bool, DbError> {
        let epoch = self.events.pause_epoch();
        let was = self.ledger.resume(merchant).await?;
        self.events.merchant_pause_read(merchant, false, epoch);
        self.events.new_work();
        Ok(was)
    }

    /// The service's health.
    pub async fn health(&self) -> Health {
        let pauses = self.ledger.pauses().await;
        let (database, pauses) = match pauses {
            Ok(p) => match self.ledger.db().write_failure().await {
                None => ("ok".to_owned(), p),
                Some(e) => (format!("writes fail: {e}"), p),
            },
            Err(e) => (e.to_string(), Vec::new()),
        };
        let merchants: Vec<MerchantHealth> = self
            .merchants
            .values()
            .map(|m| MerchantHealth {
                name: m.name().to_owned(),
                mch_id: m.config.mch_id.as_str().to_owned(),
                paused: pauses.iter().find(|p| p.merchant == m.name()).cloned(),
            })
            .collect();
        let status = if database != "ok" {
            "unavailable"
        } else if merchants.iter().any(|m| m.paused.is_some()) {
            "degraded"
        } else {
            "ok"
        };
        Health {
            status,
            database,
            merchants,
        }
    }

    /// The metrics in Prometheus' text format.
    pub async fn metrics_text(&self) -> Result<String, DbError> {
        let totals = self.ledger.totals().await?;
        let pauses = self.ledger.pauses().await?;
        let names: Vec<String> = self.merchants.keys().cloned().collect();
        Ok(self.metrics.render(&totals, &pauses, &names))
    }
}

/// Stores payouts as they come, many per transaction: one fsync for all
/// the payouts that arrived while the previous commit was on disk.
async fn store_loop(ledger: Ledger, events: Arc<Events>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < 512 {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (records, replies): (Vec<NewRecord>, Vec<_>) = jobs.into_iter().unzip();
        match ledger.store(records).await {
            Ok(results) => {
                events.new_work();
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                let unavailable = e.is_unavailable();
                let text = e.to_string();
                for reply in replies {
                    let error = if unavailable {
                        StoreError::Unavailable(text.clone())
                    } else {
                        StoreError::Failed(format!("storing failed: {text}"))
                    };
                    let _ = reply.send(Err(error));
                }
            }
        }
    }
}
