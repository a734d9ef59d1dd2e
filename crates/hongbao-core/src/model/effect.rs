//! What an outcome asks of others than its record: the merchant's pace and
//! pause, and the prize the record pays. Decided by [`crate::decide`] as
//! data; applied by the dispatcher (the merchant) and by the store, in the
//! transaction that records the outcome (the prize).

use crate::model::pause::PauseKind;
use crate::model::verdict::Code;

/// What an outcome asks of the merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MerchantEffect {
    /// Nothing.
    None,
    /// Slow down: WeChat said too many calls.
    SlowDown,
    /// Stop the merchant's payouts.
    Pause(PauseKind, Code),
}

/// What an outcome asks of the prize its record pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrizeEffect {
    /// The payout went out: the prize is issued.
    Issued,
    /// Nothing was paid, and WeChat confirmed it: the prize is claimable
    /// again (a new claim, a new order number), its budget and daily count
    /// given back.
    Released {
        /// The err_code, kept on the prize.
        err_code: String,
    },
    /// The payout failed with a doubt left: the prize stays failed for
    /// someone to look at.
    Failed {
        /// The err_code.
        err_code: String,
    },
}
