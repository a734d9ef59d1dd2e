//! Activities and prizes: the lottery flow.
//!
//! A prize granted to a user is claimed once. Every check that can refuse a
//! claim is made first (the prize, its type, its amount against the
//! activity's range, the budget, the user's daily count, the follow check);
//! then one transaction moves the prize to `issuing`, counts it against the
//! budget and the daily count (both again, atomically) and stores its one
//! payout record with its mch_billno. The dispatcher pays that record like
//! any other, and the transaction that records its outcome moves the prize
//! on: `issued`, or — after a recipient-level refusal that gethbinfo
//! confirmed — back to claimable, where a new claim gets a new mch_billno.

mod activity;
mod claim;
mod grant;
mod refusal;

pub use activity::validate_activity;
pub use claim::{claim, wait};
pub use grant::validate_grant;
pub use refusal::{ClaimError, Refusal};

pub use crate::model::{
    Activity, ActivityDef, ActivitySpec, Prize, PrizeFilter, PrizeInput, PrizeKind, PrizeStatus,
    user_failure_message,
};
pub use crate::store::prizes::{
    ActivityError, GrantError, activity_totals, create_activity, get_activity, get_prize, grant,
    list_activities, list_prizes, update_activity,
};
