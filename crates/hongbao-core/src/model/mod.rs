//! hongbao's domain types: what a payout is, where it stands, and the
//! words the dispatcher's decisions speak. No I/O.
//!
//! - [`payout`]: a payout's input, validated before anything is stored,
//!   and its record in the ledger;
//! - [`verdict`]: what a call to WeChat told, in words every rail shares;
//! - [`claim`]: a record a dispatcher holds, and where it goes next;
//! - [`pause`]: why a merchant's payouts are stopped;
//! - [`effect`]: what an outcome asks of the merchant and of a prize;
//! - [`transfer`]: a transfer bill's input, validated before it is stored.

pub mod campaign;
pub mod claim;
pub mod effect;
pub mod pause;
pub mod payout;
pub mod prize;
pub mod transfer;
pub mod verdict;

pub use campaign::{Campaign, CampaignOptions, Checked, Totals};
pub use claim::{AttemptOutcome, AttemptRow, Awaiting, Claimed, RailRequest, Scope, Transition};
pub use effect::{MerchantEffect, PrizeEffect};
pub use pause::{Pause, PauseKind};
pub use payout::{
    Attempt, Kind, Rail, Redpack, RedpackInput, Status, StatusTotal, Valid, ValidRedpack, from_ms,
    rfc3339,
};
pub use prize::{
    Activity, ActivityDef, ActivitySpec, Prize, PrizeFilter, PrizeInput, PrizeKind, PrizeStatus,
    user_failure_message,
};
pub use transfer::{TransferInput, ValidTransfer};
pub use verdict::{Code, OrderState, QueryVerdict, SendVerdict};
