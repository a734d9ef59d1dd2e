//! What a call to WeChat told, in words every rail shares: each rail's
//! answer parser turns its protocol's outcomes into these, and the rules
//! of [`crate::decide`] speak only these.

use hongbao_wxpay::Fen;

use crate::model::pause::PauseKind;
use crate::model::payout::Status;

/// An error code WeChat answered, with its words for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// WeChat's code (`NOTENOUGH`, `SENDNUM_LIMIT`, `NOT_ENOUGH`, ...).
    pub code: String,
    /// What it means and what to do, in English.
    pub message: String,
    /// The same, in Chinese.
    pub zh_message: String,
}

impl Code {
    /// A code and its words.
    pub fn new(
        code: impl Into<String>,
        message: impl Into<String>,
        zh_message: impl Into<String>,
    ) -> Code {
        Code {
            code: code.into(),
            message: message.into(),
            zh_message: zh_message.into(),
        }
    }
}

/// Where an order WeChat has stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderState {
    /// The record's status that it means.
    pub status: Status,
    /// WeChat's number of the order (`send_listid`, `transfer_bill_no`).
    pub external_id: Option<String>,
    /// WeChat's own word for the state (`SENT`, `RECEIVED`, `WAIT_USER_CONFIRM`, ...).
    pub wechat_status: String,
    /// Money that went back to the merchant.
    pub refund_amount: Option<Fen>,
    /// What a front end needs to show the payout to its user (a mini
    /// program's `package`, a transfer's `package_info`).
    pub package: Option<String>,
    /// Why WeChat closed the order unpaid (a transfer's `fail_reason`).
    pub fail_reason: Option<String>,
}

impl OrderState {
    /// Whether the order can change no more: nothing to follow.
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

/// What a send told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendVerdict {
    /// WeChat took the order.
    Accepted(OrderState),
    /// Nothing reached WeChat: send again, unchanged.
    NotSent(String),
    /// The order may exist: ask WeChat before anything else.
    Unknown {
        /// The code, if WeChat answered one.
        code: Option<Code>,
        /// What happened, for the log.
        detail: String,
    },
    /// Too many calls: slow down, and the same order again later.
    RateLimited,
    /// The merchant must stop (balance, daily cap, configuration).
    Pause(PauseKind, Code),
    /// Refused for this recipient and order, for good: nothing was paid.
    Refused(Code),
    /// This order number can never be paid (`SEND_FAILED`): a payout that
    /// goes on needs a new one.
    OrderDead(Code),
    /// The number exists at WeChat with other parameters (`FATAL_ERROR`).
    ParametersChanged(Code),
}

/// What a query told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryVerdict {
    /// WeChat has the order, and it was paid or is being paid.
    Found(OrderState),
    /// WeChat has the order, and it failed there: nothing was paid. The
    /// code to record when nothing better is known, and WeChat's reason.
    FailedThere {
        /// The code (e.g. `SEND_FAILED`) and its words.
        code: Code,
        /// WeChat's reason, if it gave one.
        reason: Option<String>,
    },
    /// WeChat is still on it: ask again later, never send now.
    InProgress,
    /// WeChat has the order, and sending the same request again is safe
    /// and tells what the query does not (a transfer bill's
    /// `package_info`, which only a create answers).
    SendAgain,
    /// Another order holds this number (another system numbering the same
    /// merchant's orders): the stored request can never make it.
    AnotherOrder,
    /// WeChat has no such order (yet).
    NotFound,
    /// No usable answer this time.
    RetryLater(String),
    /// Too many calls.
    RateLimited,
    /// The merchant must stop.
    Pause(PauseKind, Code),
    /// WeChat refused the query itself (a bug on our side).
    Invalid(Code),
}
