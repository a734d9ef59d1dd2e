//! hongbao's core: configuration, the ledger (SQLite or PostgreSQL), the
//! dispatcher (leases, retries, rate limits, reconciliation), and the
//! payout service the API and the command line share.
//!
//! It owns the rules of paying exactly once. It must never speak HTTP to
//! users (that is `hongbao-server`) nor build WeChat's XML or signatures
//! itself (that is `hongbao-wxpay`).

pub mod campaign;
pub mod config;
pub mod db;
pub mod decide;
pub mod dispatch;
pub mod doctor;
pub mod ledger;
pub mod merchant;
pub mod metrics;
pub mod model;
pub mod pacer;
pub mod payouts;
pub mod prize;
