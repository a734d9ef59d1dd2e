//! A record a dispatcher holds under its lease, the calls made for it, and
//! where it goes next.

use std::fmt;
use std::str::FromStr;

use hongbao_wxpay::Prepared;
use hongbao_wxpay::v3::PreparedTransfer;

use crate::model::payout::{Kind, Rail, Status};
use crate::model::verdict::{Code, OrderState, QueryVerdict, SendVerdict};

/// The exact request a record is paid with, stored before its first call
/// and sent unchanged on every retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RailRequest {
    /// A cash red packet (WeChat Pay v2): its kind and the signed request.
    Redpack {
        /// normal, group or miniprogram.
        kind: Kind,
        /// The parameters and signature, as sent.
        prepared: Prepared,
    },
    /// A transfer bill (APIv3): its JSON body, as sent.
    Transfer {
        /// The body and the key `user_name` was encrypted with.
        prepared: PreparedTransfer,
    },
}

impl RailRequest {
    /// The rail it is paid on.
    pub fn rail(&self) -> Rail {
        match self {
            RailRequest::Redpack { .. } => Rail::Redpack,
            RailRequest::Transfer { .. } => Rail::Transfer,
        }
    }

    /// Its order number at WeChat (`mch_billno`, `out_bill_no`).
    pub fn order_no(&self) -> &str {
        match self {
            RailRequest::Redpack { prepared, .. } => prepared.mch_billno(),
            RailRequest::Transfer { prepared } => prepared.out_bill_no().as_str(),
        }
    }
}

/// What a record's last outcome waits to have confirmed by a query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Awaiting {
    /// Nothing in particular: a query after a doubt.
    #[default]
    Nothing,
    /// WeChat refused it for its recipient; a prize's payout confirms that
    /// nothing was paid before the prize is claimable again.
    RefusalConfirmation(Code),
    /// WeChat said the number exists with other parameters: the query
    /// tells whose order holds it.
    ParametersChanged(Code),
}

/// A record a dispatcher now owns.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The record.
    pub id: String,
    /// The merchant.
    pub merchant: String,
    /// Its status when claimed.
    pub status: Status,
    /// The exact request to send.
    pub request: RailRequest,
    /// Whether a query must come first.
    pub needs_query: bool,
    /// Whether a merchant-level refusal (balance, daily cap) came before.
    pub merchant_refused: bool,
    /// Retries so far.
    pub retries: u32,
    /// Creation time (ms, the database's clock), which dates its order number.
    pub created_at_ms: i64,
    /// When it was claimed (ms, the database's clock): with
    /// `created_at_ms`, the record's age on one clock.
    pub claimed_at_ms: i64,
    /// The previous outcome's err_code, if any.
    pub err_code: Option<String>,
    /// What the previous outcome waits to have confirmed (from `err_code`,
    /// by the record's rail).
    pub awaiting: Awaiting,
    /// The prize it pays, if any: a final failure of a prize's payout is
    /// confirmed by a query first, then makes the prize claimable again.
    pub prize_id: Option<String>,
    /// The campaign it belongs to, if any: not called while it is paused.
    pub campaign_id: Option<String>,
}

impl Claimed {
    /// How old the record is (ms), on the database's clock.
    pub fn age_ms(&self) -> i64 {
        (self.claimed_at_ms - self.created_at_ms).max(0)
    }
}

/// What a call to WeChat meant, as kept with the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// WeChat took the order.
    Sent,
    /// The request never left.
    NotSent,
    /// No definite answer: the order may exist.
    Unknown,
    /// Too many calls.
    RateLimited,
    /// The merchant was paused by the answer.
    Paused,
    /// Refused for the recipient, for good.
    Failed,
    /// The number can never be paid (`SEND_FAILED`).
    BillnoDead,
    /// The number exists with other parameters (`FATAL_ERROR`).
    ParametersChanged,
    /// A query found the order.
    Found,
    /// A query found no order.
    NotFound,
    /// A query was refused.
    Invalid,
    /// A query found another system's order under the number.
    AnotherOrder,
}

impl AttemptOutcome {
    /// Every outcome.
    pub const ALL: [AttemptOutcome; 12] = [
        AttemptOutcome::Sent,
        AttemptOutcome::NotSent,
        AttemptOutcome::Unknown,
        AttemptOutcome::RateLimited,
        AttemptOutcome::Paused,
        AttemptOutcome::Failed,
        AttemptOutcome::BillnoDead,
        AttemptOutcome::ParametersChanged,
        AttemptOutcome::Found,
        AttemptOutcome::NotFound,
        AttemptOutcome::Invalid,
        AttemptOutcome::AnotherOrder,
    ];

    /// The stored (and API) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Sent => "sent",
            AttemptOutcome::NotSent => "not_sent",
            AttemptOutcome::Unknown => "unknown",
            AttemptOutcome::RateLimited => "rate_limited",
            AttemptOutcome::Paused => "paused",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::BillnoDead => "billno_dead",
            AttemptOutcome::ParametersChanged => "parameters_changed",
            AttemptOutcome::Found => "found",
            AttemptOutcome::NotFound => "not_found",
            AttemptOutcome::Invalid => "invalid",
            AttemptOutcome::AnotherOrder => "another_order",
        }
    }

    /// What a send's verdict is called.
    pub fn of_send(verdict: &SendVerdict) -> AttemptOutcome {
        match verdict {
            SendVerdict::Accepted(_) => AttemptOutcome::Sent,
            SendVerdict::NotSent(_) => AttemptOutcome::NotSent,
            SendVerdict::Unknown { .. } => AttemptOutcome::Unknown,
            SendVerdict::RateLimited => AttemptOutcome::RateLimited,
            SendVerdict::Pause(..) => AttemptOutcome::Paused,
            SendVerdict::Refused(_) => AttemptOutcome::Failed,
            SendVerdict::OrderDead(_) => AttemptOutcome::BillnoDead,
            SendVerdict::ParametersChanged(_) => AttemptOutcome::ParametersChanged,
        }
    }

    /// What a query's verdict is called.
    pub fn of_query(verdict: &QueryVerdict) -> AttemptOutcome {
        match verdict {
            QueryVerdict::Found(_)
            | QueryVerdict::FailedThere { .. }
            | QueryVerdict::InProgress
            | QueryVerdict::SendAgain => AttemptOutcome::Found,
            QueryVerdict::AnotherOrder => AttemptOutcome::AnotherOrder,
            QueryVerdict::NotFound => AttemptOutcome::NotFound,
            QueryVerdict::RetryLater(_) => AttemptOutcome::Unknown,
            QueryVerdict::RateLimited => AttemptOutcome::RateLimited,
            QueryVerdict::Pause(..) => AttemptOutcome::Paused,
            QueryVerdict::Invalid(_) => AttemptOutcome::Invalid,
        }
    }
}

impl FromStr for AttemptOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AttemptOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not an attempt outcome"))
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for AttemptOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One call to WeChat, to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    /// The API called (`sendredpack`, `gethbinfo`, ...).
    pub api: &'static str,
    /// Whether it asked WeChat to pay (a send), rather than a query.
    pub sends: bool,
    /// The order number.
    pub order_no: String,
    /// When it started (ms since the epoch).
    pub started_at_ms: i64,
    /// How long it took.
    pub latency_ms: i64,
    /// What it meant.
    pub outcome: AttemptOutcome,
    /// WeChat's err_code.
    pub err_code: Option<String>,
    /// For people.
    pub detail: Option<String>,
    /// WeChat's answer as received.
    pub answer: Option<String>,
}

/// Where a claimed record goes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// WeChat has the order.
    Accepted {
        /// Where it stands there.
        state: OrderState,
        /// When to ask about it next (ms from now); `None` if final.
        follow_in_ms: Option<i64>,
    },
    /// Try again later (also while the merchant is paused).
    Retry {
        /// `pending` if nothing can have reached WeChat, else `sending`.
        status: Status,
        /// How long to wait (ms).
        delay_ms: i64,
        /// Whether the next call must be a query.
        needs_query: bool,
        /// Whether this was a merchant-level refusal (balance, daily cap).
        merchant_refused: bool,
        /// The code seen, kept for the record with its words.
        code: Option<Code>,
    },
    /// A final failure.
    Failed {
        /// The code and its words.
        code: Code,
        /// Whether WeChat confirmed that nothing was paid.
        nothing_paid: bool,
    },
    /// WeChat confirmed the old number can never be paid (failed after a
    /// merchant-level refusal, or held by another order): the payout goes
    /// on under a new number.
    Reissue,
}

impl Transition {
    /// Whether the record's outcome is known now (a waiter may stop waiting).
    pub fn settles(&self) -> bool {
        matches!(
            self,
            Transition::Accepted { .. } | Transition::Failed { .. }
        )
    }
}

/// Dispatch scope: which records a dispatcher may claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every record of the merchant.
    #[default]
    All,
    /// These records only (`hongbao send`).
    Records(Vec<String>),
    /// One campaign's records only (`hongbao campaign run`).
    Campaign(String),
}
