//! The dispatcher: turns due records into calls to WeChat, in atomic
//! phases — claim with a lease (committed), call, record the outcome only
//! while the lease is still ours (committed) — and follows accepted orders
//! until they can change no more. It does not know which rail it drives:
//! the record's rail makes the calls and reads the answers
//! ([`crate::rail`]); the rules decide ([`crate::decide`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};

use crate::config::DispatchSettings;
use crate::decide::{self, AfterQuery};
use crate::events::Events;
use crate::merchant::{MerchantRuntime, Merchants};
use crate::metrics::Metrics;
use crate::model::{
    AttemptRow, Claimed, Code, MerchantEffect, PauseKind, QueryVerdict, Scope, Transition,
};
use crate::pacer::Pacer;
use crate::rail::{Call, Rails};
use crate::store::{Ledger, Reconcile};

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
            owner: crate::store::new_id("d"),
            lease: Duration::from_secs(60),
            max_in_flight: 64,
            poll: Duration::from_millis(250),
            scope: Scope::All,
            reconcile: true,
        }
    }

    /// The defaults with the configuration's `[dispatch]` settings, over
    /// `scope`; reconciling only for every record (a command paying its
    /// own records leaves that to `serve`).
    pub fn from_settings(settings: &DispatchSettings, scope: Scope) -> DispatchConfig {
        DispatchConfig {
            lease: settings.lease,
            max_in_flight: settings.max_in_flight,
            reconcile: scope == Scope::All,
            scope,
            ..DispatchConfig::new()
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
    /// A pause the outcome asks for: written before the outcome.
    pause: Option<(PauseKind, Code)>,
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
        // Pauses read within PAUSES_FRESH stand (every call checks them
        // again before it starts): a busy loop claims without a read.
        let paused = if pauses_stale(&shared, &name) {
            read_pauses(&shared, &name).await
        } else {
            Ok(!shared.events.may_call(&name, None))
        };
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

/// Whether the pauses of `merchant` were last read [`PAUSES_FRESH`] ago or
/// more; `true` makes the caller the one to read them now (one reader at
/// a time: the others obey what it last read).
fn pauses_stale(shared: &Shared, merchant: &str) -> bool {
    let mut read = shared.pauses_read.lock().expect("pauses_read lock");
    let stale = read
        .get(merchant)
        .is_none_or(|at| at.elapsed() >= PAUSES_FRESH);
    if stale {
        read.insert(merchant.to_owned(), Instant::now());
    }
    stale
}

/// Reads from the database whether `merchant` is paused, and which
/// campaigns are, for the calls about to start.
async fn read_pauses(shared: &Shared, merchant: &str) -> Result<bool, crate::store::db::DbError> {
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
    if pauses_stale(shared, merchant)
        && let Err(e) = read_pauses(shared, merchant).await
    {
        tracing::debug!(%merchant, "pauses not read: {e}");
    }
    shared.events.may_call(merchant, campaign)
}

/// Waits for a slot of the merchant's pace for a call about to be made;
/// `false`: no call may be made (the pace could not be taken because the
/// database is away, or the merchant or `campaign` was paused meanwhile: a
/// pause stops every record not yet on the wire).
async fn take_slot(
    shared: &Shared,
    merchant: &MerchantRuntime,
    pacer: &Pacer,
    campaign: Option<&str>,
    queued: &mut Queued,
) -> bool {
    if !shared.events.may_call(merchant.name(), campaign) {
        return false;
    }
    let waited = match pacer.wait().await {
        Ok(waited) => waited,
        Err(e) => {
            shared.metrics.database_error();
            tracing::warn!(merchant = %merchant.name(), "no call without a slot of the pace: {e}");
            return false;
        }
    };
    if !may_call(shared, merchant.name(), campaign).await {
        return false;
    }
    queued.started();
    shared.metrics.limiter_wait(merchant.name(), waited);
    true
}

/// Counts a call made.
fn counted<V>(shared: &Shared, merchant: &MerchantRuntime, call: &Call<V>) {
    let attempt = &call.attempt;
    shared
        .metrics
        .call(merchant.name(), attempt.api, attempt.outcome.as_str());
    shared.metrics.wechat_latency(attempt.api, call.latency);
}

/// Nothing was called: the record waits and stays as it was.
fn untouched(claimed: &Claimed) -> Transition {
    Transition::Retry {
        status: claimed.status,
        delay_ms: decide::MIN_RETRY_MS,
        needs_query: claimed.needs_query,
        merchant_refused: false,
        code: None,
    }
}

async fn attempt(
    shared: &Shared,
    merchant: &MerchantRuntime,
    mut claimed: Claimed,
    queued: &mut Queued,
) -> Recorded {
    claimed.awaiting = Rails::awaiting(&claimed);
    let campaign = claimed.campaign_id.clone();
    let campaign = campaign.as_deref();
    let mut attempts = Vec::new();
    if claimed.needs_query {
        let query = match merchant
            .rails
            .query(claimed.request.rail(), claimed.request.order_no())
        {
            Ok(query) => query,
            // A stored order number is always valid; should it not be, wait.
            Err(e) => {
                tracing::error!(record = %claimed.id, "cannot query: {e}");
                let transition = Transition::Retry {
                    status: claimed.status,
                    delay_ms: decide::MAX_RETRY_MS,
                    needs_query: true,
                    merchant_refused: false,
                    code: None,
                };
                return recorded(claimed, transition, attempts, None);
            }
        };
        let pacer = merchant.pacer_for(claimed.request.rail(), false);
        if !take_slot(shared, merchant, pacer, campaign, queued).await {
            let transition = untouched(&claimed);
            return recorded(claimed, transition, attempts, None);
        }
        let call = merchant.rails.ask(&query, Some(&claimed)).await;
        counted(shared, merchant, &call);
        if call.verdict == QueryVerdict::AnotherOrder {
            tracing::warn!(
                record = %claimed.id,
                order_no = %claimed.request.order_no(),
                "another order holds this number at WeChat (another system or database numbers this merchant's orders); the payout goes on under a new number"
            );
        }
        attempts.push(call.attempt);
        match decide::after_query(&claimed, &call.verdict) {
            AfterQuery::Send => {}
            AfterQuery::Done(transition, effect) => {
                return affect(shared, pacer, claimed, transition, attempts, effect).await;
            }
        }
    }
    let pacer = merchant.pacer_for(claimed.request.rail(), true);
    if !take_slot(shared, merchant, pacer, campaign, queued).await {
        let transition = untouched(&claimed);
        return recorded(claimed, transition, attempts, None);
    }
    let call = merchant.rails.send(&claimed).await;
    counted(shared, merchant, &call);
    let (transition, effect) = decide::after_send(&claimed, &call.verdict);
    attempts.push(call.attempt);
    affect(shared, pacer, claimed, transition, attempts, effect).await
}

/// Does what an outcome asks of the merchant (a pause takes hold here at
/// once, and is written before the outcome).
async fn affect(
    shared: &Shared,
    pacer: &Pacer,
    claimed: Claimed,
    transition: Transition,
    attempts: Vec<AttemptRow>,
    effect: MerchantEffect,
) -> Recorded {
    match effect {
        MerchantEffect::None => recorded(claimed, transition, attempts, None),
        MerchantEffect::SlowDown => {
            pacer.slow_down().await;
            recorded(claimed, transition, attempts, None)
        }
        MerchantEffect::Pause(kind, code) => {
            shared.events.merchant_paused_here(&claimed.merchant);
            recorded(claimed, transition, attempts, Some((kind, code)))
        }
    }
}

fn recorded(
    claimed: Claimed,
    transition: Transition,
    attempts: Vec<AttemptRow>,
    pause: Option<(PauseKind, Code)>,
) -> Recorded {
    Recorded {
        claimed,
        transition,
        attempts,
        pause,
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
            if let Some((kind, code)) = &r.pause {
                let (message, _) =
                    kind.messages(Some((&code.code, &code.message, &code.zh_message)));
                tracing::warn!(merchant = %r.claimed.merchant, err_code = %code.code, "payouts paused: {message}");
                // Written before the outcome (kept trying while the database
                // is away): a record due again is never claimed without it.
                let mut delay = Duration::from_millis(100);
                while let Err(e) = shared
                    .ledger
                    .pause(&r.claimed.merchant, *kind, Some(&code.code), &message)
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
        // Moved, not copied: the outcomes (each with its request and the
        // answers of its calls) go to the ledger as they are.
        let (items, paused): (Vec<_>, Vec<bool>) = batch
            .into_iter()
            .map(|r| ((r.claimed, r.transition, r.attempts), r.pause.is_some()))
            .unzip();
        let items: Arc<Vec<(Claimed, Transition, Vec<AttemptRow>)>> = Arc::new(items);
        // The outcome exists only here until written: keep trying while the
        // database is away. Should this process die meanwhile, the lease
        // expires and the next owner asks WeChat first.
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
        for (((claimed, transition, attempts), paused), ok) in items.iter().zip(paused).zip(applied)
        {
            if !ok {
                tracing::warn!(record = %claimed.id, "lease lost before the outcome was recorded; the next owner will ask WeChat first");
                continue;
            }
            logged(claimed, transition, attempts);
            if transition.settles() || paused {
                woken.push(claimed.id.clone());
            }
        }
        shared.events.outcomes(woken);
    }
}

/// Says what an outcome recorded means for those who read the log.
fn logged(claimed: &Claimed, transition: &Transition, attempts: &[AttemptRow]) {
    match transition {
        Transition::Failed { code, .. } if code.code == "XML_ERROR" => {
            tracing::error!(record = %claimed.id, err_code = %code.code, "payout failed: WeChat could not read the request hongbao built ({}); nothing was paid", code.message);
        }
        Transition::Failed { code, .. } => {
            tracing::info!(record = %claimed.id, err_code = %code.code, "payout failed");
        }
        Transition::Retry { .. } if (claimed.retries + 1).is_multiple_of(10) => {
            let last = attempts.last();
            tracing::warn!(
                record = %claimed.id,
                order_no = %claimed.request.order_no(),
                tries = claimed.retries + 1,
                last = %last.map_or("no call", |a| a.outcome.as_str()),
                detail = %last.and_then(|a| a.detail.as_deref().or(a.err_code.as_deref())).unwrap_or("-"),
                "no definite outcome yet; still trying the same order number"
            );
        }
        _ => {}
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
    for due in due {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let (shared, merchant) = (shared.clone(), merchant.clone());
        tokio::spawn(async move {
            reconcile_one(&shared, &merchant, &due).await;
            drop(permit);
        });
    }
}

async fn reconcile_one(shared: &Shared, merchant: &MerchantRuntime, due: &Reconcile) {
    let Ok(query) = merchant.rails.query(due.rail, &due.order_no) else {
        return;
    };
    // Without a slot the lease runs out and the order is followed later.
    let pacer = merchant.pacer_for(due.rail, false);
    if !take_slot(shared, merchant, pacer, None, &mut Queued(None)).await {
        return;
    }
    let call = merchant.rails.ask(&query, None).await;
    counted(shared, merchant, &call);
    let up = decide::after_follow(&call.verdict, due.done, due.age_ms());
    if up.slow_down {
        pacer.slow_down().await;
    }
    if let Err(e) = shared
        .ledger
        .record_reconcile(
            &shared.config.owner,
            &due.id,
            up.state.as_ref(),
            up.next_in_ms,
            &call.attempt,
        )
        .await
    {
        tracing::warn!(record = %due.id, "reconciliation not recorded (asked again later): {e}");
    }
}
