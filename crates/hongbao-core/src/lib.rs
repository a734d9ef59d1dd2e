//! hongbao's core: configuration, and (as they land) the ledger, the
//! dispatcher, campaigns and prizes.
//!
//! It owns the rules of paying exactly once. It must never speak HTTP to
//! users (that is `hongbao-server`) nor build WeChat's XML or signatures
//! itself (that is `hongbao-wxpay`).

pub mod config;
pub mod doctor;
pub mod merchant;
