//! Why a claim was refused, with what to tell the user.

use hongbao_wxpay::{Fen, InvalidField};

use crate::model::{PrizeKind, PrizeStatus};
use crate::store::db::DbError;

/// Why a claim was refused: each with its own code and a message for the
/// user in English and Chinese.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such prize for this tenant.
    NotFound,
    /// The prize was paid.
    AlreadyClaimed,
    /// The prize is being paid.
    InProgress,
    /// The prize's payout failed in a way an operator must look at.
    PrizeFailed,
    /// The prize is not a cash red packet.
    NotCash(PrizeKind),
    /// The prize is bound to another openid.
    NotYours,
    /// The prize's amount is outside its activity's range: a configuration error.
    AmountOutOfRange {
        /// The prize's amount.
        amount: Fen,
        /// The activity.
        activity: String,
        /// Its least.
        min: Fen,
        /// Its most.
        max: Fen,
    },
    /// The activity's budget cannot pay this prize.
    BudgetExhausted {
        /// The activity.
        activity: String,
    },
    /// The openid claimed the most prizes of the activity allowed today.
    DailyLimit {
        /// The count allowed per day.
        limit: u64,
    },
    /// The user does not follow the official account.
    NotFollowing,
    /// The official account does not know the openid.
    UnknownOpenId,
    /// Whether the user follows could not be learnt.
    FollowCheckFailed(String),
    /// The activity or its merchant is configured wrongly (said so).
    Misconfigured {
        /// In English.
        message: String,
        /// In Chinese.
        zh_message: String,
    },
}

impl Refusal {
    /// The stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Refusal::NotFound => "prize_not_found",
            Refusal::AlreadyClaimed => "prize_already_claimed",
            Refusal::InProgress => "prize_claim_in_progress",
            Refusal::PrizeFailed => "prize_payout_failed",
            Refusal::NotCash(_) => "prize_not_cash",
            Refusal::NotYours => "prize_not_yours",
            Refusal::AmountOutOfRange { .. } => "prize_amount_out_of_range",
            Refusal::BudgetExhausted { .. } => "activity_budget_exhausted",
            Refusal::DailyLimit { .. } => "daily_claim_limit",
            Refusal::NotFollowing => "not_following",
            Refusal::UnknownOpenId => "openid_not_of_account",
            Refusal::FollowCheckFailed(_) => "follow_check_unavailable",
            Refusal::Misconfigured { .. } => "activity_misconfigured",
        }
    }

    /// In English.
    pub fn message(&self) -> String {
        match self {
            Refusal::NotFound => "no such prize".into(),
            Refusal::AlreadyClaimed => "this prize was already claimed".into(),
            Refusal::InProgress => {
                "this prize is being claimed; its red packet is on its way".into()
            }
            Refusal::PrizeFailed => {
                "this prize's red packet could not be sent; please contact customer service".into()
            }
            Refusal::NotCash(kind) => {
                format!("this prize cannot be claimed as cash (it is a {kind} prize)")
            }
            Refusal::NotYours => "this prize belongs to another user".into(),
            Refusal::AmountOutOfRange {
                amount,
                activity,
                min,
                max,
            } => format!(
                "configuration error: the prize is {amount} yuan, outside activity {activity:?}'s range {min}–{max} yuan; \
                 fix the activity's min_amount/max_amount or the prize"
            ),
            // Shown to the user: no internal name (the operator has the code).
            Refusal::BudgetExhausted { .. } => {
                "all of this activity's prize money has been given out; thank you for taking part"
                    .into()
            }
            Refusal::DailyLimit { limit } => format!(
                "you have claimed {limit} prize(s) of this activity today, the most allowed; come back tomorrow"
            ),
            Refusal::NotFollowing => "please follow the official account first".into(),
            Refusal::UnknownOpenId => {
                "this openid is not a user of the official account; open the prize from the official account".into()
            }
            Refusal::FollowCheckFailed(why) => format!(
                "whether you follow the official account could not be checked just now; try again shortly ({why})"
            ),
            Refusal::Misconfigured { message, .. } => format!("configuration error: {message}"),
        }
    }

    /// In Chinese.
    pub fn zh_message(&self) -> String {
        match self {
            Refusal::NotFound => "奖品不存在".into(),
            Refusal::AlreadyClaimed => "该奖品已领取".into(),
            Refusal::InProgress => "该奖品正在领取中，红包正在发放".into(),
            Refusal::PrizeFailed => "该奖品的红包发放失败，请联系客服".into(),
            Refusal::NotCash(kind) => format!("该奖品不能以现金领取（奖品类型为 {kind}）"),
            Refusal::NotYours => "该奖品属于其他用户".into(),
            Refusal::AmountOutOfRange {
                amount,
                activity,
                min,
                max,
            } => format!(
                "配置错误：奖品金额 {amount} 元不在活动 {activity:?} 允许的 {min}–{max} 元范围内，请修改活动的 min_amount/max_amount 或奖品"
            ),
            Refusal::BudgetExhausted { .. } => "本活动的奖金已发完，感谢参与（预算已用完）".into(),
            Refusal::DailyLimit { limit } => {
                format!("您今天已在本活动领取 {limit} 次，已达上限，请明天再来")
            }
            Refusal::NotFollowing => "请先关注公众号".into(),
            Refusal::UnknownOpenId => "该 openid 不是本公众号的用户，请从公众号进入领取".into(),
            Refusal::FollowCheckFailed(_) => "暂时无法确认您是否关注公众号，请稍后重试".into(),
            Refusal::Misconfigured { zh_message, .. } => format!("配置错误：{zh_message}"),
        }
    }
}

/// Why a claim did not go through.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// One of the checks refused it.
    #[error("{}", .0.message())]
    Refused(Refusal),
    /// A field of the request breaks a rule.
    #[error("{0}")]
    Invalid(InvalidField),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Something else failed (logged, not answered).
    #[error("{0}")]
    Internal(String),
}

impl From<Refusal> for ClaimError {
    fn from(r: Refusal) -> Self {
        ClaimError::Refused(r)
    }
}

/// The refusal of a claim on a prize in `status`, unless it is claimable.
pub(super) fn refusal_for(status: PrizeStatus) -> Option<Refusal> {
    match status {
        PrizeStatus::Pending => None,
        PrizeStatus::Issuing => Some(Refusal::InProgress),
        PrizeStatus::Issued => Some(Refusal::AlreadyClaimed),
        PrizeStatus::Failed => Some(Refusal::PrizeFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_code_and_both_messages() {
        let all = [
            Refusal::NotFound,
            Refusal::AlreadyClaimed,
            Refusal::InProgress,
            Refusal::PrizeFailed,
            Refusal::NotCash(PrizeKind::Coupon),
            Refusal::NotYours,
            Refusal::AmountOutOfRange {
                amount: Fen::new(50),
                activity: "spring".into(),
                min: Fen::new(100),
                max: Fen::new(20_000),
            },
            Refusal::BudgetExhausted {
                activity: "spring".into(),
            },
            Refusal::DailyLimit { limit: 2 },
            Refusal::NotFollowing,
            Refusal::UnknownOpenId,
            Refusal::FollowCheckFailed("timed out".into()),
            Refusal::Misconfigured {
                message: "m".into(),
                zh_message: "z".into(),
            },
        ];
        let codes: std::collections::BTreeSet<&str> = all.iter().map(Refusal::code).collect();
        assert_eq!(codes.len(), all.len(), "codes are distinct");
        for r in &all {
            assert!(!r.message().is_empty() && !r.zh_message().is_empty());
            assert!(!r.zh_message().is_ascii(), "{r:?} has a Chinese message");
        }
        assert_eq!(Refusal::NotFollowing.zh_message(), "请先关注公众号");
        let range = &all[6];
        assert!(range.message().starts_with("configuration error"));
        assert!(range.message().contains("0.50") && range.message().contains("1.00–200.00"));
    }
}
