//! Signals within a process between those who store records, the
//! dispatcher, and those who wait for outcomes; and what this process knows
//! to be paused.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{oneshot, watch};

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
