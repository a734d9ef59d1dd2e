//! The store: all of hongbao's SQL, on SQLite (one file) or PostgreSQL.
//! The ledger of every payout (its exact request, its attempts, and the
//! dispatch state that lets several dispatchers share it safely), pauses,
//! statistics, prizes, activities, campaigns, and the merchants' pace.
//!
//! The rules it keeps:
//! - a record and its order number are stored in one transaction, before
//!   any attempt; the number comes from the merchant's daily sequence,
//!   dated by the record's creation day (database time, Beijing calendar);
//! - a dispatcher owns a record only through a lease decided by the
//!   database's clock, and writes an outcome only while the lease is its own;
//! - a record claimed while a previous owner may have been mid-call is
//!   queried before anything is sent again;
//! - what an outcome does to a prize is applied in the transaction that
//!   records the outcome;
//! - values read back are parsed like input: a corrupt one is an error
//!   ([`codec`]), never a default.
//!
//! # Layout
//!
//! - [`db`]: connections, write transactions, migrations, health;
//! - [`codec`]: reading values back (money, enums) and binding arguments;
//! - [`payouts`]: storing payouts with their numbers, reading them back;
//! - [`leases`]: claims, outcomes, following accepted orders;
//! - [`notifications`]: WeChat's callbacks for transfer bills;
//! - [`pauses`]: merchants' pauses, paused campaigns;
//! - [`stats`]: counts and sums.

pub mod campaigns;
pub mod codec;
pub mod db;
pub mod leases;
pub mod notifications;
pub mod pace;
pub mod pauses;
pub mod payouts;
pub mod prizes;
pub mod stats;

pub use leases::Reconcile;
pub use notifications::{Noted, Notification, UnknownNotification};
pub use payouts::{Idempotency, ListFilter, NewRecord, StoreError, Stored};

use db::{Db, Dialect};

/// A new id: its prefix (`rp_` for a red packet, `tr_` for a transfer) and a ULID (time-ordered, unique across processes).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::generate())
}

/// The ULIDs of [`new_ordered_id`].
static ORDERED_IDS: std::sync::Mutex<ulid::Generator> =
    std::sync::Mutex::new(ulid::Generator::new());

/// A new id like [`new_id`]'s, greater than every id this process made
/// before it. A record's calls are listed by their start (in
/// milliseconds), then by id: two calls started in the same millisecond
/// (a query answered at once, and the send after it) are listed in the
/// order they were made, where plain ULIDs, random within a millisecond,
/// would put them in either order. Other ids stay plain ULIDs, from
/// which the next one cannot be guessed.
pub fn new_ordered_id(prefix: &str) -> String {
    let mut ids = ORDERED_IDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // An overflow (2^80 ids in one millisecond) takes the next one.
    let id = ids
        .generate()
        .unwrap_or_else(ulid::Overflow::commit_overflow_increment);
    format!("{prefix}_{id}")
}

/// The ledger.
#[derive(Clone, Debug)]
pub struct Ledger {
    db: Db,
    claim_sql: String,
}

impl Ledger {
    /// A ledger on `db` (migrated).
    pub fn new(db: Db) -> Ledger {
        let lock = match db.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let now = db.now_sql();
        // Claim in one statement: SET sees the old in_flight, so a record
        // left mid-call by a vanished owner must be queried first. A paused
        // merchant's records are never claimed: the pause is written before
        // the outcome that caused it, so a claim that sees the record due
        // again also sees the pause. A claimed record is due again when
        // its lease ends (if its owner vanished): the claims that follow
        // do not walk past the records in flight in the index of due ones.
        // `LIMIT ($4 + 0)`, not `LIMIT $4`:
        // SQLite plans a bare parameter in LIMIT as the value bound when
        // the statement was prepared, so that binding another value (every
        // claim binds one) makes it prepare the statement again.
        let claim_sql = format!(
            "UPDATE payouts SET needs_query = CASE WHEN in_flight = 1 THEN 1 ELSE needs_query END, \
             in_flight = 1, lease_owner = $1, lease_until = {now} + $2, due_at = {now} + $2 \
             WHERE id IN (SELECT id FROM payouts WHERE merchant = $3 AND due_at <= {now} \
               AND (lease_until IS NULL OR lease_until < {now}) {{scope}} \
               AND NOT EXISTS (SELECT 1 FROM merchant_pauses WHERE merchant_pauses.merchant = $3) \
               AND (campaign_id IS NULL OR campaign_id NOT IN (SELECT id FROM campaigns WHERE paused = 1)) \
               ORDER BY due_at LIMIT ($4 + 0){lock}) \
             RETURNING id, merchant, rail, kind, status, request, needs_query, merchant_refused, retries, created_at, \
               err_code, prize_id, campaign_id, {now} AS claimed_at"
        );
        Ledger { db, claim_sql }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }
}
