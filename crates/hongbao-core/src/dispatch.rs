//! The dispatcher: turns due records into calls to WeChat, in atomic
//! phases — claim with a lease (committed), call, record the outcome only
//! while the lease is still ours (committed) — and follows sent packets
//! until they are opened or refunded.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hongbao_wxpay::{
    Api, CallError, Client, GetHbInfo, MchBillNo, OfficialAccount, OfficialAccountConfig,
    PauseReason, Reply, classify_query, classify_send,
};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::config::MerchantConfig;
use crate::decide::{self, AfterQuery, MerchantEffect};
use crate::ledger::{AttemptRow, Claimed, Ledger, Scope, Transition};
use crate::metrics::Metrics;
use crate::model::Status;
use crate::pacer::Pacer;

/// A merchant ready to pay: its configuration, protocol client and pace.
#[derive(Debug)]
pub struct MerchantRuntime {
    /// The configuration.
    pub config: MerchantConfig,
    /// The protocol client.
    pub client: Client,
    /// The pace of its calls (shared through the database by every
    /// process that calls on the merchant's behalf).
    pub pacer: Pacer,
    /// The official account's client (follow checks), built on first use;
    /// its access token is cached and shared by every claim.
    official_account: std::sync::OnceLock<Result<Option<OfficialAccount>, String>>,
}

impl MerchantRuntime {
    /// Builds the merchant's client, and its pace shared through `db`.
    pub fn new(
        config: MerchantConfig,
        db: &crate::db::Db,
    ) -> Result<MerchantRuntime, crate::merchant::SetupError> {
        let client = crate::merchant::client(&config)?;
        let pacer = Pacer::per_minute(db.clone(), config.mch_id.as_str(), config.rate_per_minute);
        Ok(MerchantRuntime {
            config,
            client,
            pacer,
            official_account: std::sync::OnceLock::new(),
        })
    }

    /// The official account's client, if the merchant has an `app_secret`.
    pub fn official_account(&self) -> Result<Option<&OfficialAccount>, String> {
        self.official_account
            .get_or_init(|| {
                let Some(secret) = &self.config.app_secret else {
                    return Ok(None);
                };
                let mut config =
                    OfficialAccountConfig::new(self.config.appid.clone(), secret.clone());
                config.base_url = self.config.oa_base.clone();
                config.extra_roots =
                    crate::merchant::extra_roots(&self.config).map_err(|e| e.to_string())?;
                OfficialAccount::new(config)
                    .map(Some)
                    .map_err(|e| format!("merchants.{}: {e}", self.config.name))
            })
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }

    /// The merchant's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// The merchants of a process, by name.
pub type Merchants = BTreeMap<String, Arc<MerchantRuntime>>;

/// Signals between those who store records, the dispatcher and those who
/// wait for outcomes.
#[derive(Debug)]
pub struct Events {
    /// Bumped whenever records are stored: wakes the dispatch loops.
    work: watch::Sender<u64>,
    /// Waiters for a record's outcome, by record id.
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
    /// What is paused, as this process knows it.
    pauses: Mutex<Paused>,
}

/// The merchants and campaigns whose records must not be called now: a
/// claimed record checks here just before its call, so that a pause takes
/// hold at once for the records already claimed, not only for the next
/// claim. Learnt from the database by every dispatch loop (pauses made by
/// other processes), and at once from a pause decided in this one.
#[derive(Debug, Default)]
struct Paused {
    /// Paused merchants, with how many pauses decided here are not yet
    /// written: until they are, the database saying "not paused" is old news.
    merchants: HashMap<String, u32>,
    /// Bumped by every pause decided here: a reading of the database that
    /// began before it may predate the pause's write.
    epoch: u64,
    campaigns: std::collections::HashSet<String>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            work: watch::channel(0).0,
            waiters: Mutex::new(HashMap::new()),
            pauses: Mutex::new(Paused::default()),
        }
    }
}

impl Events {
    /// A pause of `merchant` decided in this process, not yet written.
    pub fn merchant_paused_here(&self, merchant: &str) {
        let mut pauses = self.pauses.lock().expect("pauses lock");
        *pauses.merchants.entry(merchant.to_owned()).or_default() += 1;
        pauses.epoch += 1;
    }

    /// Where the pauses decided here stand, before reading the database.
    pub fn pause_epoch(&self) -> u64 {
        self.pauses.lock().expect("pauses lock").epoch
    }

    /// A pause decided here is now in the database.
    pub fn merchant_pause_written(&self, merchant: &str) {
        let mut pauses = self.pauses.lock().expect("pauses lock");
        if let Some(unwritten) = pauses.merchants.get_mut(merchant) {
            *unwritten = unwritten.saturating_sub(1);
        }
    }

    /// What the database says of `merchant`, read after [`Events::pause_epoch`]
    /// answered `epoch`.
    pub fn merchant_pause_read(&self, merchant: &str, paused: bool, epoch: u64) {
        let mut pauses = self.pauses.lock().expect("pauses lock");
        let current = pauses.epoch == epoch;
        match (paused, pauses.merchants.get(merchant)) {
            (true, None) => {
                pauses.merchants.insert(merchant.to_owned(), 0);
            }
            (false, Some(0)) if current => {
                pauses.merchants.remove(merchant);
            }
            _ => {}
        }
    }

    /// The campaigns the database has paused (or one paused or resumed here).
    pub fn campaigns_paused(&self, campaigns: impl IntoIterator<Item = String>) {
        self.pauses.lock().expect("pauses lock").campaigns = campaigns.into_iter().collect();
    }

    /// A campaign paused or resumed here.
    pub fn campaign_pause(&self, campaign: &str, paused: bool) {
        let mut pauses = self.pauses.lock().expect("pauses lock");
        if paused {
            pauses.campaigns.insert(campaign.to_owned());
        } else {
            pauses.campaigns.remove(campaign);
        }
    }

    /// Whether a record of `merchant` (and `campaign`) may be called now.
    pub fn may_call(&self, merchant: &str, campaign: Option<&str>) -> bool {
        let pauses = self.pauses.lock().expect("pauses lock");
        !pauses.merchants.contains_key(merchant)
            && campaign.is_none_or(|c| !pauses.campaigns.contains(c))
    }

    /// Tells the dispatch loops that new records may be due.
    pub fn new_work(&self) {
        self.work.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes on new work.
    pub fn watch_work(&self) -> watch::Receiver<u64> {
        self.work.subscribe()
    }

    /// Registers interest in record `id`'s next outcome.
    pub fn wait_for(&self, id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("waiters lock")
            .entry(id.to_owned())
            .or_default()
            .push(tx);
        rx
    }

    /// Wakes the waiters of these records.
    pub fn outcomes(&self, ids: impl IntoIterator<Item = String>) {
        let mut waiters = self.waiters.lock().expect("waiters lock");
        for id in ids {
            for waiter in waiters.remove(&id).unwrap_or_default() {
                let _ = waiter.send(());
            }
        }
    }

    /// Drops registrations of waiters that gave up.
    pub fn forget(&self, id: &str) {
        let mut waiters = self.waiters.lock().expect("waiters lock");
        if let Some(list) = waiters.get_mut(id) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                waiters.remove(id);
            }
        }
    }
}

/// How a dispatcher runs.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// This dispatcher's name in leases (unique per process).
    pub owner: String,
    /// How long a claim holds a record (database time).
    pub lease: Duration,
    /// The most calls in flight per merchant.
    pub max_in_flight: usize,
    /// How often to look for due records when nothing wakes the loop.
    pub poll: Duration,
    /// Which records to claim.
    pub scope: Scope,
    /// Whether to follow sent packets with gethbinfo.
    pub reconcile: bool,
}

impl DispatchConfig {
    /// Defaults: a 60-second lease, 64 calls in flight per merchant, a
    /// 250 ms poll, every record, reconciliation on.
    pub fn new() -> DispatchConfig {
        DispatchConfig {
            owner: crate::ledger::new_id("d"),
            lease: Duration::from_secs(60),
            max_in_flight: 64,
            poll: Duration::from_millis(250),
            scope: Scope::All,
            reconcile: true,
        }
    }
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a claimed record as waiting for its first slot of the pace,
/// until its first call starts (or it ends without one).
struct Queued(Option<Arc<AtomicUsize>>);

impl Queued {
    fn new(counter: &Arc<AtomicUsize>) -> Queued {
        counter.fetch_add(1, Ordering::SeqCst);
        Queued(Some(counter.clone()))
    }

    fn started(&mut self) {
        if let Some(counter) = self.0.take() {
            counter.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.started();
    }
}

/// An outcome on its way to the ledger.
struct Recorded {
    claimed: Claimed,
    transition: Transition,
    attempts: Vec<AttemptRow>,
    pause: Option<(PauseReason, hongbao_wxpay::ErrCode)>,
    settled: bool,
}

/// The running dispatcher.
#[derive(Debug)]
pub struct Dispatcher {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    recorder: tokio::task::JoinHandle<()>,
    ledger: Ledger,
    owner: String,
}

struct Shared {
    ledger: Ledger,
    events: Arc<Events>,
    metrics: Arc<Metrics>,
    config: DispatchConfig,
    /// When each merchant's pauses (its own, its campaigns') were last read
    /// from the database.
    pauses_read: Mutex<HashMap<String, Instant>>,
}

/// How old the pauses a call obeys may be: a pause made by another process
/// (an operator, a campaign paused through another instance) stops every
/// call that starts this much after it.
const PAUSES_FRESH: Duration = Duration::from_millis(20);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn lease_ms(config: &DispatchConfig) -> i64 {
    i64::try_from(config.lease.as_millis()).unwrap_or(60_000)
}

impl Dispatcher {
    /// Starts a dispatch loop per merchant (and their reconciliation),
    /// until `shutdown` turns true.
    pub fn start(
        ledger: Ledger,
        merchants: &Merchants,
        events: Arc<Events>,
        metrics: Arc<Metrics>,
        config: DispatchConfig,
        shutdown: &watch::Receiver<bool>,
    ) -> Dispatcher {
        let owner = config.owner.clone();
        let (tx, rx) = mpsc::channel(4096);
        let shared = Arc::new(Shared {
            ledger: ledger.clone(),
            events,
            metrics,
            config,
            pauses_read: Mutex::new(HashMap::new()),
        });
        let recorder = tokio::spawn(record_loop(shared.clone(), rx));
        let tasks = merchants
            .values()
            .map(|m| {
                tokio::spawn(merchant_loop(
                    shared.clone(),
                    m.clone(),
                    tx.clone(),
                    shutdown.clone(),
                ))
            })
            .collect();
        Dispatcher {
            tasks,
            recorder,
            ledger,
            owner,
        }
    }

    /// Waits for the loops to finish their calls in flight (after
    /// shutdown), records their outcomes, and hands back every lease.
    pub async fn finish(self) {
        for task in self.tasks {
            let _ = task.await;
        }
        // The loops are gone, and with them the recorder's senders.
        let _ = self.recorder.await;
        match self.ledger.release(&self.owner).await {
            Ok(n) if n > 0 => tracing::info!("handed back {n} leases"),
            Ok(_) => {}
            Err(e) => tracing::warn!("could not hand back leases (they expire on their own): {e}"),
        }
    }
}

async fn merchant_loop(
    shared: Arc<Shared>,
    merchant: Arc<MerchantRuntime>,
    recorder: mpsc::Sender<Recorded>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = merchant.name().to_owned();
    let in_flight = Arc::new(Semaphore::new(shared.config.max_in_flight));
    let mut work = shared.events.watch_work();
    let lease = lease_ms(&shared.config);
    // A batch is at most what the pace serves in two seconds (and well
    // within the lease): a pause takes hold within seconds, not after a
    // long queue of claimed records has gone out.
    let horizon = (shared.config.lease / 4).min(Duration::from_secs(2));
    let pace_batch = merchant.pacer.calls_in(horizon).max(1);
    // Claimed records still waiting for their first slot of the pace: no
    // more than `pace_batch` of them at a time.
    let queued = Arc::new(AtomicUsize::new(0));
    let mut last_reconcile = Instant::now() - Duration::from_secs(60);
    loop {
        if *shutdown.borrow() {
            break;
        }
        let mut idle = true;
        let paused = read_pauses(&shared, &name).await;
        match paused {
            Ok(false) => {
                let max = shared.config.max_in_flight;
                if in_flight.available_permits() < max.div_ceil(4) {
                    // Claim in bulk: wait until half of the calls in flight
                    // are done, rather than claiming one record per finished call.
                    let half = u32::try_from(max.div_ceil(2)).unwrap_or(1);
                    if let Ok(permits) = in_flight.acquire_many(half).await {
                        drop(permits);
                    }
                    continue;
                }
                let waiting = u32::try_from(queued.load(Ordering::SeqCst)).unwrap_or(u32::MAX);
                let room = pace_batch.saturating_sub(waiting);
                if room == 0 {
                    // The pace is the limit: claim again when it has served some.
                    let nap = (merchant.pacer.interval() * pace_batch / 2)
                        .clamp(Duration::from_millis(5), Duration::from_millis(250));
                    tokio::time::sleep(nap).await;
                    continue;
                }
                let free = u32::try_from(in_flight.available_permits()).unwrap_or(0);
                let limit = free.min(room).min(512);
                match shared
                    .ledger
                    .claim(
                        &shared.config.owner,
                        &name,
                        &shared.config.scope,
                        limit,
                        lease,
                    )
                    .await
                {
                    Ok(claimed) => {
                        idle = claimed.is_empty();
                        for c in claimed {
                            let permit = in_flight
                                .clone()
                                .acquire_owned()
                                .await
                                .expect("semaphore open");
                            let (shared, merchant, recorder) =
                                (shared.clone(), merchant.clone(), recorder.clone());
                            let mut waiting = Queued::new(&queued);
                            tokio::spawn(async move {
                                let recorded = attempt(&shared, &merchant, c, &mut waiting).await;
                                let _ = recorder.send(recorded).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => {
                        shared.metrics.database_error();
                        tracing::warn!(merchant = %name, "claiming failed: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
                if shared.config.reconcile && last_reconcile.elapsed() >= Duration::from_secs(1) {
                    last_reconcile = Instant::now();
                    reconcile_round(&shared, &merchant, &in_flight).await;
                }
            }
            Ok(true) => {}
            Err(e) => {
                shared.metrics.database_error();
                tracing::warn!(merchant = %name, "database unavailable: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        if idle {
            tokio::select! {
                _ = work.changed() => {}
                _ = tokio::time::sleep(shared.config.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    // Let the calls in flight finish (bounded), so their outcomes are recorded.
    let all = u32::try_from(shared.config.max_in_flight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(30), in_flight.acquire_many(all)).await;
}

pub(crate) fn attempt_row(
    api: Api,
    billno: &str,
    started: SystemTime,
    latency: Duration,
    outcome: &'static str,
    result: &Result<Reply, CallError>,
) -> AttemptRow {
    let started_at_ms = started
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let (err_code, detail, answer) = match result {
        Ok(reply) => (
            reply.err_code().map(|c| c.as_str().to_owned()),
            reply
                .err_code_des()
                .or(reply.return_msg())
                .map(str::to_owned),
            Some(reply.raw.chars().take(4096).collect()),
        ),
        Err(e) => (None, Some(e.to_string()), None),
    };
    AttemptRow {
        api,
        mch_billno: billno.to_owned(),
        started_at_ms,
        latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
        outcome,
        err_code,
        detail,
        answer,
    }
}

/// Reads from the database whether `merchant` is paused, and which
/// campaigns are, for the calls about to start.
async fn read_pauses(shared: &Shared, merchant: &str) -> Result<bool, crate::db::DbError> {
    shared
        .pauses_read
        .lock()
        .expect("pauses_read lock")
        .insert(merchant.to_owned(), Instant::now());
    let epoch = shared.events.pause_epoch();
    let paused = shared.ledger.is_paused(merchant).await?;
    shared.events.merchant_pause_read(merchant, paused, epoch);
    let campaigns = shared.ledger.paused_campaigns().await?;
    shared.events.campaigns_paused(campaigns);
    Ok(paused)
}

/// Whether a record of `merchant` (and `campaign`) may be called now, by
/// pauses at most [`PAUSES_FRESH`] old. Should the database not answer,
/// the pauses known are obeyed.
async fn may_call(shared: &Shared, merchant: &str, campaign: Option<&str>) -> bool {
    // One reader at a time: the others obey what it last read.
    let stale = {
        let mut read = shared.pauses_read.lock().expect("pauses_read lock");
        let stale = read
            .get(merchant)
            .is_none_or(|at| at.elapsed() >= PAUSES_FRESH);
        if stale {
            read.insert(merchant.to_owned(), Instant::now());
        }
        stale
    };
    if stale && let Err(e) = read_pauses(shared, merchant).await {
        tracing::debug!(%merchant, "pauses not read: {e}");
    }
    shared.events.may_call(merchant, campaign)
}

/// No call was made: the pace could not be taken (the database is away),
/// or the merchant or the record's campaign was paused meanwhile.
struct NoCall;

/// Waits for a slot of the merchant's pace, then makes the call, unless
/// the merchant or `campaign` is paused by then: a pause stops every
/// record not yet on the wire.
async fn call(
    shared: &Shared,
    merchant: &MerchantRuntime,
    prepared: &hongbao_wxpay::Prepared,
    campaign: Option<&str>,
    queued: &mut Queued,
) -> Result<(Result<Reply, CallError>, SystemTime, Duration), NoCall> {
    if !shared.events.may_call(merchant.name(), campaign) {
        return Err(NoCall);
    }
    let waited = match merchant.pacer.wait().await {
        Ok(waited) => waited,
        Err(e) => {
            shared.metrics.database_error();
            tracing::warn!(merchant = %merchant.name(), "no call without a slot of the pace: {e}");
            return Err(NoCall);
        }
    };
    if !may_call(shared, merchant.name(), campaign).await {
        return Err(NoCall);
    }
    queued.started();
    shared.metrics.limiter_wait(merchant.name(), waited);
    let started = SystemTime::now();
    let clock = Instant::now();
    let result = merchant.client.call(prepared).await;
    let latency = clock.elapsed();
    shared.metrics.wechat_latency(prepared.api(), latency);
    Ok((result, started, latency))
}

/// Nothing was called: the record waits and stays as it was.
fn untouched(claimed: &Claimed) -> Transition {
    Transition::Retry {
        status: claimed.status,
        delay_ms: decide::MIN_RETRY_MS,
        needs_query: claimed.needs_query,
        merchant_refused: false,
        err_code: None,
    }
}

async fn attempt(
    shared: &Shared,
    merchant: &MerchantRuntime,
    claimed: Claimed,
    queued: &mut Queued,
) -> Recorded {
    let age = now_ms() - claimed.created_at_ms;
    let billno = claimed.request.mch_billno().to_owned();
    let mut attempts = Vec::new();
    if claimed.needs_query {
        let query = MchBillNo::parse(&billno)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                merchant
                    .client
                    .prepare(&GetHbInfo { mch_billno: b })
                    .map_err(|e| e.to_string())
            });
        let decision = match query {
            Ok(prepared) => {
                let Ok((result, started, latency)) = call(
                    shared,
                    merchant,
                    &prepared,
                    claimed.campaign_id.as_deref(),
                    queued,
                )
                .await
                else {
                    let transition = untouched(&claimed);
                    return recorded(claimed, transition, attempts, None);
                };
                let outcome = classify_query(&result);
                let mut label = query_label(&outcome);
                if let hongbao_wxpay::QueryOutcome::Found(info) = &outcome
                    && decide::another_order(&claimed, info)
                {
                    label = "another_order";
                    tracing::warn!(
                        record = %claimed.id,
                        mch_billno = %billno,
                        "another order holds this mch_billno at WeChat (another system or database numbers this merchant's orders); the payout goes on under a new number"
                    );
                }
                shared.metrics.call(merchant.name(), Api::GetHbInfo, label);
                attempts.push(attempt_row(
                    Api::GetHbInfo,
                    &billno,
                    started,
                    latency,
                    label,
                    &result,
                ));
                decide::after_query(&claimed, &outcome, age)
            }
            // A stored mch_billno is always valid; should it not be, wait.
            Err(e) => {
                tracing::error!(record = %claimed.id, "cannot query: {e}");
                AfterQuery::Done(Transition::Retry {
                    status: claimed.status,
                    delay_ms: decide::MAX_RETRY_MS,
                    needs_query: true,
                    merchant_refused: false,
                    err_code: None,
                })
            }
        };
        match decision {
            AfterQuery::Send => {}
            AfterQuery::Done(transition) => return recorded(claimed, transition, attempts, None),
            AfterQuery::SlowDown(transition) => {
                merchant.pacer.slow_down().await;
                return recorded(claimed, transition, attempts, None);
            }
            AfterQuery::Pause(transition, reason, code) => {
                shared.events.merchant_paused_here(&claimed.merchant);
                return recorded(claimed, transition, attempts, Some((reason, code)));
            }
        }
    }
    let Ok((result, started, latency)) = call(
        shared,
        merchant,
        &claimed.request,
        claimed.campaign_id.as_deref(),
        queued,
    )
    .await
    else {
        let transition = untouched(&claimed);
        return recorded(claimed, transition, attempts, None);
    };
    let outcome = classify_send(&result);
    let (transition, effect) = decide::after_send(&claimed, &outcome, age);
    let label = send_label(&outcome);
    shared
        .metrics
        .call(merchant.name(), claimed.request.api(), label);
    attempts.push(attempt_row(
        claimed.request.api(),
        &billno,
        started,
        latency,
        label,
        &result,
    ));
    match effect {
        MerchantEffect::None => recorded(claimed, transition, attempts, None),
        MerchantEffect::SlowDown => {
            merchant.pacer.slow_down().await;
            recorded(claimed, transition, attempts, None)
        }
        MerchantEffect::Pause(reason, code) => {
            shared.events.merchant_paused_here(&claimed.merchant);
            recorded(claimed, transition, attempts, Some((reason, code)))
        }
    }
}

fn recorded(
    claimed: Claimed,
    transition: Transition,
    attempts: Vec<AttemptRow>,
    pause: Option<(PauseReason, hongbao_wxpay::ErrCode)>,
) -> Recorded {
    let settled = matches!(
        transition,
        Transition::Sent { .. } | Transition::Failed { .. }
    ) || pause.is_some();
    Recorded {
        claimed,
        transition,
        attempts,
        pause,
        settled,
    }
}

fn send_label(outcome: &hongbao_wxpay::SendOutcome) -> &'static str {
    use hongbao_wxpay::SendOutcome as O;
    match outcome {
        O::Sent(_) => "sent",
        O::RetrySameBillno(_) => "not_sent",
        O::QueryFirst { .. } => "unknown",
        O::RateLimited(_) => "rate_limited",
        O::PauseMerchant(..) => "paused",
        O::FailedForRecipient(_) => "failed",
        O::NewBillnoNeeded(_) => "billno_dead",
        O::ParametersChanged(_) => "parameters_changed",
    }
}

pub(crate) fn query_label(outcome: &hongbao_wxpay::QueryOutcome) -> &'static str {
    use hongbao_wxpay::QueryOutcome as Q;
    match outcome {
        Q::Found(_) => "found",
        Q::NotFound => "not_found",
        Q::RetryLater(_) => "unknown",
        Q::RateLimited => "rate_limited",
        Q::PauseMerchant(..) => "paused",
        Q::Invalid(_) => "invalid",
    }
}

/// The machine-readable name of a pause reason.
pub fn pause_reason_name(reason: PauseReason) -> &'static str {
    match reason {
        PauseReason::InsufficientBalance => "insufficient_balance",
        PauseReason::DailyCap => "daily_cap",
        PauseReason::Configuration => "configuration",
    }
}

async fn record_loop(shared: Arc<Shared>, mut rx: mpsc::Receiver<Recorded>) {
    let owner = shared.config.owner.clone();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        for r in &batch {
            if let Some((reason, code)) = &r.pause {
                let name = pause_reason_name(*reason);
                let (message, _) = decide::pause_messages(name, Some(code.as_str()))
                    .expect("every pause reason has its words");
                tracing::warn!(merchant = %r.claimed.merchant, err_code = %code, "payouts paused: {message}");
                // Written before the outcome (kept trying while the database
                // is away): a record due again is never claimed without it.
                let mut delay = Duration::from_millis(100);
                while let Err(e) = shared
                    .ledger
                    .pause(&r.claimed.merchant, name, Some(code.as_str()), &message)
                    .await
                {
                    shared.metrics.database_error();
                    tracing::warn!("recording the pause failed, retrying: {e}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                shared.events.merchant_pause_written(&r.claimed.merchant);
            }
        }
        let items: Arc<Vec<(Claimed, Transition, Vec<AttemptRow>)>> = Arc::new(
            batch
                .iter()
                .map(|r| (r.claimed.clone(), r.transition.clone(), r.attempts.clone()))
                .collect(),
        );
        // The outcome exists only here until written: keep trying while the
        // database is away. Should this process die meanwhile, the lease
        // expires and the next owner asks gethbinfo first.
        let mut delay = Duration::from_millis(100);
        let applied = loop {
            match shared.ledger.record(&owner, items.clone()).await {
                Ok(applied) => break applied,
                Err(e) => {
                    shared.metrics.database_error();
                    tracing::warn!("recording {} outcomes failed, retrying: {e}", items.len());
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        let mut woken = Vec::new();
        for (r, ok) in batch.iter().zip(applied) {
            if !ok {
                tracing::warn!(record = %r.claimed.id, "lease lost before the outcome was recorded; the next owner will ask WeChat first");
                continue;
            }
            match &r.transition {
                Transition::Failed {
                    err_code, message, ..
                } if err_code == "XML_ERROR" => {
                    tracing::error!(record = %r.claimed.id, %err_code, "payout failed: WeChat could not read the request hongbao built ({message}); nothing was paid");
                }
                Transition::Failed { err_code, .. } => {
                    tracing::info!(record = %r.claimed.id, %err_code, "payout failed");
                }
                Transition::Retry { .. } if (r.claimed.retries + 1) % 10 == 0 => {
                    let last = r.attempts.last();
                    tracing::warn!(
                        record = %r.claimed.id,
                        mch_billno = %r.claimed.request.mch_billno(),
                        tries = r.claimed.retries + 1,
                        last = %last.map_or("no call", |a| a.outcome),
                        detail = %last.and_then(|a| a.detail.as_deref().or(a.err_code.as_deref())).unwrap_or("-"),
                        "no definite outcome yet; still trying the same mch_billno"
                    );
                }
                _ => {}
            }
            if r.settled {
                woken.push(r.claimed.id.clone());
            }
        }
        shared.events.outcomes(woken);
    }
}

async fn reconcile_round(
    shared: &Arc<Shared>,
    merchant: &Arc<MerchantRuntime>,
    in_flight: &Arc<Semaphore>,
) {
    // A few at a time, only with calls to spare: sending comes first.
    let spare = u32::try_from(in_flight.available_permits()).unwrap_or(0) / 2;
    if spare == 0 {
        return;
    }
    let lease = lease_ms(&shared.config);
    let due = match shared
        .ledger
        .claim_reconcile(&shared.config.owner, merchant.name(), spare.min(8), lease)
        .await
    {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(merchant = %merchant.name(), "reconciliation claim failed: {e}");
            return;
        }
    };
    for (id, billno, done, created_at) in due {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let (shared, merchant) = (shared.clone(), merchant.clone());
        tokio::spawn(async move {
            reconcile_one(&shared, &merchant, &id, &billno, done, created_at).await;
            drop(permit);
        });
    }
}

async fn reconcile_one(
    shared: &Shared,
    merchant: &MerchantRuntime,
    id: &str,
    billno: &str,
    done: i64,
    created_at: i64,
) {
    let Ok(mch_billno) = MchBillNo::parse(billno) else {
        return;
    };
    let Ok(prepared) = merchant.client.prepare(&GetHbInfo { mch_billno }) else {
        return;
    };
    // Without a slot the lease runs out and the packet is followed later.
    let Ok((result, started, latency)) =
        call(shared, merchant, &prepared, None, &mut Queued(None)).await
    else {
        return;
    };
    let outcome = classify_query(&result);
    let label = query_label(&outcome);
    shared.metrics.call(merchant.name(), Api::GetHbInfo, label);
    let row = attempt_row(Api::GetHbInfo, billno, started, latency, label, &result);
    let age = now_ms() - created_at;
    let (status, wechat_status, refund, next) = match &outcome {
        hongbao_wxpay::QueryOutcome::Found(info) => {
            let status = Status::from_wechat(info.status);
            let last = matches!(status, Some(Status::Received | Status::Refunded));
            let next = if last {
                None
            } else {
                decide::reconcile_in_ms(done + 1, age)
            };
            (status, Some(info.status.as_str()), info.refund_amount, next)
        }
        hongbao_wxpay::QueryOutcome::RateLimited => {
            merchant.pacer.slow_down().await;
            (None, None, None, decide::reconcile_again_ms(done, age))
        }
        _ => (None, None, None, decide::reconcile_again_ms(done + 1, age)),
    };
    if let Err(e) = shared
        .ledger
        .record_reconcile(
            &shared.config.owner,
            id,
            status,
            wechat_status,
            refund,
            next,
            &row,
        )
        .await
    {
        tracing::warn!(record = %id, "reconciliation not recorded (asked again later): {e}");
    }
}
