//! The journal: every change of the simulated WeChat's state as a JSON
//! line, flushed per event and replayed at start, so that the sandbox's
//! state survives restarts.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Simulator;
use super::orders::Order;
use super::transfers::TransferBill;
use crate::settings::Followers;

/// A line of the journal: the sandbox's state survives restarts.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(super) enum Event {
    /// An order, created or changed.
    Order(Box<Order>),
    /// The balance after a top-up or reset.
    Balance { fen: u64 },
    /// The followers.
    Followers { followers: Followers },
    /// Openids that do not belong to the merchant's appids.
    Foreign { openids: BTreeSet<String> },
    /// The simulated clock's offset from real time.
    Clock { offset_seconds: i64 },
    /// Everything forgotten.
    Reset,
    /// A transfer bill, created or changed.
    Bill(Box<TransferBill>),
    /// The operations account's balance after a top-up or a set.
    OperationsBalance { fen: u64 },
}

impl Simulator {
    /// Replays the journal at `path` (if any) and appends to it from now on.
    pub fn attach_journal(&mut self, path: &Path) -> std::io::Result<()> {
        if let Ok(file) = std::fs::File::open(path) {
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Event>(&line) {
                    Ok(event) => self.apply(event),
                    // A torn last line (killed mid-write) is dropped; anything
                    // else is reported and skipped.
                    Err(e) => tracing::warn!("{}:{}: skipped: {e}", path.display(), n + 1),
                }
            }
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            // The journal holds every payout: owner-only, like the keys.
            options.mode(0o600);
            if path.exists() {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
        }
        let file = options.open(path)?;
        self.journal = Some(std::io::BufWriter::new(file));
        Ok(())
    }

    pub(super) fn record(&mut self, event: &Event) {
        if let Some(journal) = &mut self.journal {
            let line = serde_json::to_string(event).expect("events serialise");
            // Flushed per event: a crash of this process loses nothing.
            if let Err(e) = writeln!(journal, "{line}").and_then(|()| journal.flush()) {
                tracing::error!("sandbox journal: {e}");
            }
        }
    }

    pub(super) fn apply(&mut self, event: Event) {
        match event {
            Event::Order(order) => self.apply_order(*order),
            Event::Balance { fen } => self.balance = fen,
            Event::Followers { followers } => self.followers = followers,
            Event::Foreign { openids } => self.foreign = openids,
            Event::Clock { offset_seconds } => {
                self.clock_offset = time::Duration::seconds(offset_seconds)
            }
            Event::Reset => self.clear(),
            Event::Bill(bill) => self.desk.apply_bill(*bill),
            Event::OperationsBalance { fen } => self.desk.operations_balance = fen,
        }
    }
}
