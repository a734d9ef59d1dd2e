//! A campaign as the rules and the store speak of it.

use std::collections::BTreeMap;

use hongbao_wxpay::Fen;
use serde::{Deserialize, Serialize};

use super::Status;

/// How the rows of a file are read: defaults for what a row leaves out,
/// and the file-wide rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignOptions {
    /// The merchant paying.
    pub merchant: String,
    /// The amount of rows without an amount column.
    pub amount: Option<Fen>,
    /// The sender's name (default: the merchant's).
    pub send_name: Option<String>,
    /// The blessing of rows without one.
    pub wishing: Option<String>,
    /// The activity's name of rows without one.
    pub act_name: Option<String>,
    /// The remark of rows without one.
    pub remark: Option<String>,
    /// The scene of rows without one.
    pub scene_id: Option<String>,
    /// The most the whole file may pay.
    pub budget: Option<Fen>,
    /// Whether an openid may appear more than once.
    pub allow_repeat: bool,
    /// The most payouts an openid gets from the merchant's campaigns in a
    /// day (Beijing time), this one included: a row over it is stored
    /// `failed` (`CAMPAIGN_DAILY_CAP`) and never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_openid_daily: Option<u64>,
    /// The rail every row is paid on: red packets (the default) or
    /// transfer bills each user confirms (a row's `remark` is the bill's
    /// remark, `act_name` its 活动名称, `wishing` its 奖励说明).
    #[serde(default, skip_serializing_if = "is_redpack")]
    pub rail: crate::model::Rail,
}

fn is_redpack(rail: &crate::model::Rail) -> bool {
    *rail == crate::model::Rail::Redpack
}

impl CampaignOptions {
    /// Whether rows read with `self` and with `other` are the same payouts
    /// (the budget and the repeat rule only decide whether a file is
    /// accepted; the daily cap decides which rows are sent).
    pub fn same_payouts(&self, other: &CampaignOptions) -> bool {
        self.per_openid_daily == other.per_openid_daily
            && (
                &self.merchant,
                self.amount,
                &self.send_name,
                &self.wishing,
                &self.act_name,
                &self.remark,
                &self.scene_id,
            ) == (
                &other.merchant,
                other.amount,
                &other.send_name,
                &other.wishing,
                &other.act_name,
                &other.remark,
                &other.scene_id,
            )
    }
}

/// A campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Campaign {
    /// `cp_` and a ULID.
    pub id: String,
    /// The tenant that created it.
    pub tenant: String,
    /// Its name, unique per tenant.
    pub name: String,
    /// The merchant paying.
    pub merchant: String,
    /// The file's SHA-256.
    pub file_sha256: String,
    /// How the rows were read.
    pub options: CampaignOptions,
    /// Rows in the file.
    pub rows: u64,
    /// Their amount.
    pub total_amount: Fen,
    /// Rows stored so far.
    pub imported: u64,
    /// Whether an operator paused it.
    pub paused: bool,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

/// Counts and sums of a campaign's records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// By status: how many, and their amount in fen.
    pub by_status: BTreeMap<String, (u64, u64)>,
    /// Failed records by err_code.
    pub by_err_code: BTreeMap<String, u64>,
}

impl Totals {
    fn sum(&self, statuses: &[Status]) -> (u64, Fen) {
        statuses.iter().fold((0, Fen::ZERO), |(n, amount), s| {
            let (c, a) = self.by_status.get(s.as_str()).copied().unwrap_or((0, 0));
            (n + c, amount.checked_add(Fen::new(a)).unwrap_or(amount))
        })
    }

    /// Paid: red packets sent, received, refunding or refunded; transfer
    /// bills confirmed and paid.
    pub fn paid(&self) -> (u64, Fen) {
        self.sum(&[
            Status::Sent,
            Status::Received,
            Status::Refunding,
            Status::Refunded,
            Status::Succeeded,
        ])
    }

    /// Transfer bills created and not settled yet: awaiting their user's
    /// confirmation, being paid, or being cancelled.
    pub fn awaiting(&self) -> (u64, Fen) {
        self.sum(&[
            Status::AwaitingConfirmation,
            Status::Transferring,
            Status::Cancelling,
        ])
    }

    /// Transfer bills their users did not confirm within 24 hours
    /// (counted among the failed).
    pub fn expired(&self) -> u64 {
        self.by_err_code.get("OVERDUE_CLOSE").copied().unwrap_or(0)
    }

    /// Failed for good (a cancelled bill included): nothing was paid.
    pub fn failed(&self) -> (u64, Fen) {
        self.sum(&[Status::Failed, Status::Cancelled])
    }

    /// Still to pay: pending or sending.
    pub fn open(&self) -> (u64, Fen) {
        self.sum(&[Status::Pending, Status::Sending])
    }
}

/// What validating a whole file found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Rows.
    pub rows: u64,
    /// Their amount in all.
    pub total: Fen,
    /// The file's SHA-256.
    pub sha256: String,
    /// How many problems were reported.
    pub errors: u64,
}
