//! hongbao's core: configuration, the ledger (SQLite or PostgreSQL), the
//! dispatcher (leases, retries, rate limits, reconciliation), the payout
//! rails, and the services the API and the command line share.
//!
//! It owns the rules of paying exactly once. It must never speak HTTP to
//! users (that is `hongbao-server`) nor build WeChat's XML or signatures
//! itself (that is `hongbao-wxpay`).
//!
//! # Layout
//!
//! Each layer imports only from the layers above it in this list:
//!
//! ```text
//! config      the configuration file, resolved and checked
//! model       domain types: payouts, verdicts, claims, pauses, effects
//! decide      pure rules: what an outcome means for a record (data only)
//! rail        per rail: build, call, read the answer, map the statuses
//! store       all SQL: payouts, leases, pauses, stats, prizes and
//!             activities, campaigns, the pace (values decoded by one codec)
//! pacer       the merchant's pace, shared through the database
//! events      signals within a process; what is known to be paused
//! merchant    a merchant ready to pay: clients and pace
//! metrics     Prometheus counters
//! dispatch    claim → call → record, and following accepted orders
//! payouts     services: payouts (create, wait, ask WeChat),
//! prize         prizes (activity rules, grants, claims, refusals),
//! campaign      campaigns (the file's rules, the import),
//! doctor        the checks of a configuration
//! ```
//!
//! The store never calls into a service: what an outcome does to a prize
//! is decided as data ([`model::PrizeEffect`]) and applied by the store in
//! the transaction that records the outcome.

pub mod campaign;
pub mod config;
pub mod decide;
pub mod dispatch;
pub mod doctor;
pub mod events;
pub mod merchant;
pub mod metrics;
pub mod model;
pub mod pacer;
pub mod payouts;
pub mod prize;
pub mod rail;
pub mod store;
