//! Prizes and activities as the rules and the store speak of them: what
//! a prize is, where it stands, an activity's checked rules.

use std::fmt;
use std::str::FromStr;

use hongbao_wxpay::{Fen, InvalidField};
use time::OffsetDateTime;

use super::{Kind, Rail, Status};

/// What a prize is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PrizeKind {
    /// A cash red packet: the only kind that is paid.
    #[default]
    CashRedpack,
    /// A coupon.
    Coupon,
    /// Points.
    Points,
    /// Goods.
    Goods,
    /// Anything else.
    Other,
}

impl PrizeKind {
    /// Every kind.
    pub const ALL: [PrizeKind; 5] = [
        PrizeKind::CashRedpack,
        PrizeKind::Coupon,
        PrizeKind::Points,
        PrizeKind::Goods,
        PrizeKind::Other,
    ];

    /// The API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PrizeKind::CashRedpack => "cash_redpack",
            PrizeKind::Coupon => "coupon",
            PrizeKind::Points => "points",
            PrizeKind::Goods => "goods",
            PrizeKind::Other => "other",
        }
    }
}

impl FromStr for PrizeKind {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        PrizeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                InvalidField::new(
                    "type",
                    format!(
                        "{s:?} is not a prize type; use cash_redpack, coupon, points, goods or other"
                    ),
                    format!("{s:?} 不是有效的奖品类型；请使用 cash_redpack、coupon、points、goods 或 other"),
                )
            })
    }
}

impl fmt::Display for PrizeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a prize stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrizeStatus {
    /// Granted; claimable (again, if a claim did not pay).
    Pending,
    /// Claimed; its red packet is being paid.
    Issuing,
    /// Its red packet was sent.
    Issued,
    /// Its payout failed in a way an operator must look at.
    Failed,
}

impl PrizeStatus {
    /// Every status.
    pub const ALL: [PrizeStatus; 4] = [
        PrizeStatus::Pending,
        PrizeStatus::Issuing,
        PrizeStatus::Issued,
        PrizeStatus::Failed,
    ];

    /// The API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PrizeStatus::Pending => "pending",
            PrizeStatus::Issuing => "issuing",
            PrizeStatus::Issued => "issued",
            PrizeStatus::Failed => "failed",
        }
    }
}

impl FromStr for PrizeStatus {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        PrizeStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                InvalidField::new(
                    "status",
                    format!("{s:?} is not a prize status; use pending, issuing, issued or failed"),
                    format!("{s:?} 不是有效的奖品状态；请使用 pending、issuing、issued 或 failed"),
                )
            })
    }
}

impl fmt::Display for PrizeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an activity should be, before its rules are checked. Texts left
/// out take the merchant's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivitySpec {
    /// Its name, unique per tenant.
    pub name: String,
    /// The kind of red packet its prizes are paid as (`normal` or `miniprogram`).
    pub kind: Kind,
    /// The scene (`PRODUCT_1`…`PRODUCT_8`), needed outside 1.00–200.00 yuan.
    pub scene_id: Option<String>,
    /// The least a prize may be, in fen.
    pub min_amount: u64,
    /// The most a prize may be, in fen.
    pub max_amount: u64,
    /// The sender's name.
    pub send_name: Option<String>,
    /// The blessing.
    pub wishing: Option<String>,
    /// The activity's name as WeChat shows it.
    pub act_name: Option<String>,
    /// A remark.
    pub remark: Option<String>,
    /// The most its prizes may pay in all, in fen.
    pub budget: Option<u64>,
    /// The most prizes one openid may claim per day (Beijing).
    pub per_user_daily: Option<u64>,
    /// Whether claimers must follow the official account; by default yes
    /// for normal red packets, no for mini program ones and transfers.
    pub require_follow: Option<bool>,
    /// The rail its prizes are paid on: `redpack` (default) or `transfer`
    /// (a bill the user confirms; the texts are its remark, 活动名称 and 奖励说明).
    pub rail: Rail,
}

impl ActivitySpec {
    /// An activity named `name` with every default: 1.00–200.00 yuan, no
    /// budget, no daily count.
    pub fn named(name: impl Into<String>) -> ActivitySpec {
        ActivitySpec {
            name: name.into(),
            kind: Kind::Normal,
            scene_id: None,
            min_amount: hongbao_wxpay::request::amount::DEFAULT_MIN.get(),
            max_amount: hongbao_wxpay::request::amount::DEFAULT_MAX.get(),
            send_name: None,
            wishing: None,
            act_name: None,
            remark: None,
            budget: None,
            per_user_daily: None,
            require_follow: None,
            rail: Rail::Redpack,
        }
    }
}

/// An activity's rules, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityDef {
    /// Its name.
    pub name: String,
    /// The merchant paying.
    pub merchant: String,
    /// `normal` or `miniprogram`.
    pub kind: Kind,
    /// The scene.
    pub scene_id: Option<String>,
    /// The least a prize may be.
    pub min_amount: Fen,
    /// The most a prize may be.
    pub max_amount: Fen,
    /// The sender's name.
    pub send_name: String,
    /// The blessing.
    pub wishing: String,
    /// The activity's name as WeChat shows it.
    pub act_name: String,
    /// A remark.
    pub remark: String,
    /// The most its prizes may pay in all.
    pub budget: Option<Fen>,
    /// The most prizes one openid may claim per day.
    pub per_user_daily: Option<u64>,
    /// Whether claimers must follow the official account.
    pub require_follow: bool,
    /// The rail its prizes are paid on.
    pub rail: Rail,
}

impl ActivityDef {
    /// The spec that gives this definition (to change a field of it).
    pub fn spec(&self) -> ActivitySpec {
        ActivitySpec {
            name: self.name.clone(),
            kind: self.kind,
            scene_id: self.scene_id.clone(),
            min_amount: self.min_amount.get(),
            max_amount: self.max_amount.get(),
            send_name: Some(self.send_name.clone()),
            wishing: Some(self.wishing.clone()),
            act_name: Some(self.act_name.clone()),
            remark: Some(self.remark.clone()),
            budget: self.budget.map(Fen::get),
            per_user_daily: self.per_user_daily,
            require_follow: Some(self.require_follow),
            rail: self.rail,
        }
    }

    /// Whether `amount` is inside the range.
    pub fn allows(&self, amount: Fen) -> bool {
        (self.min_amount..=self.max_amount).contains(&amount)
    }
}

/// A stored activity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// `ac_` and a ULID.
    pub id: String,
    /// The tenant that owns it.
    pub tenant: String,
    /// Its rules.
    pub def: ActivityDef,
    /// Fen of its prizes being paid or paid.
    pub committed: Fen,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl Activity {
    /// What is left of the budget, if there is one.
    pub fn budget_left(&self) -> Option<Fen> {
        self.def
            .budget
            .map(|b| Fen::new(b.get().saturating_sub(self.committed.get())))
    }
}

/// A prize to grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrizeInput {
    /// The tenant's own reference of the user (its user id).
    pub user: String,
    /// What the prize is.
    pub kind: PrizeKind,
    /// Fen: required for a cash red packet, optional otherwise.
    pub amount: Option<u64>,
    /// The only openid that may claim it, if known when it is granted.
    pub openid: Option<String>,
}

/// A stored prize, with its activity's name and its payout's number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prize {
    /// `pz_` and a ULID.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The activity.
    pub activity_id: String,
    /// Its name.
    pub activity: String,
    /// The kind of red packet the activity pays.
    pub activity_kind: Kind,
    /// The tenant's user reference.
    pub user: String,
    /// What the prize is.
    pub kind: PrizeKind,
    /// Fen.
    pub amount: Fen,
    /// The only openid that may claim it, if bound.
    pub openid: Option<String>,
    /// Where it stands.
    pub status: PrizeStatus,
    /// The payout of the current (or last successful) claim.
    pub payout_id: Option<String>,
    /// That payout's mch_billno.
    pub mch_billno: Option<String>,
    /// That payout's status.
    pub redpack_status: Option<Status>,
    /// The openid of the last claim.
    pub claimed_openid: Option<String>,
    /// Claims so far that got as far as a payout.
    pub claims: u64,
    /// Why the last claim did not pay (WeChat's err_code), if it did not.
    pub last_err_code: Option<String>,
    /// When it was granted.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl Prize {
    /// What to tell the user about the prize now, in English and Chinese:
    /// never a raw err_code.
    pub fn user_message(&self) -> (&'static str, &'static str) {
        match self.status {
            PrizeStatus::Pending => match self.last_err_code.as_deref() {
                None => ("Your prize is waiting to be claimed.", "奖品待领取。"),
                Some(code) => user_failure_message(code),
            },
            PrizeStatus::Issuing => (
                "Your red packet is on its way; it arrives in WeChat shortly.",
                "红包正在发放中，稍后将在微信中送达。",
            ),
            PrizeStatus::Issued if self.activity_kind == Kind::MiniProgram => (
                "Your red packet is ready: open it now.",
                "红包已准备好，请点击领取。",
            ),
            PrizeStatus::Issued => (
                "Your red packet was sent: open it in WeChat within 24 hours.",
                "红包已发放，请在 24 小时内到微信中领取。",
            ),
            PrizeStatus::Failed => (
                "Your red packet could not be sent; please contact customer service.",
                "红包发放失败，请联系客服。",
            ),
        }
    }
}

/// What a user is told when a claim did not pay, by WeChat's err_code.
pub fn user_failure_message(err_code: &str) -> (&'static str, &'static str) {
    match err_code {
        "SENDNUM_LIMIT" => (
            "You have received as many red packets as allowed today; claim this prize again tomorrow.",
            "您今天领取的红包个数已达上限，请明天再来领取。",
        ),
        "RCVDAMOUNT_LIMIT" => (
            "You have received as much red packet money as allowed today; claim this prize again tomorrow.",
            "您今天领取的红包金额已达上限，请明天再来领取。",
        ),
        "OPENID_ERROR" => (
            "This WeChat account cannot receive the red packet; open the prize from the official account and claim it again.",
            "当前微信账号无法领取该红包，请从公众号进入后重新领取。",
        ),
        _ => (
            "The red packet could not be sent just now; please claim your prize again later.",
            "红包暂时无法发放，请稍后重新领取。",
        ),
    }
}

/// The filter of a prize listing.
#[derive(Clone, Debug, Default)]
pub struct PrizeFilter {
    /// Only this user.
    pub user: Option<String>,
    /// Only this activity (id).
    pub activity_id: Option<String>,
    /// Only this status.
    pub status: Option<PrizeStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_round_trip() {
        for kind in PrizeKind::ALL {
            assert_eq!(kind.as_str().parse::<PrizeKind>().unwrap(), kind);
        }
        for status in PrizeStatus::ALL {
            assert_eq!(status.as_str().parse::<PrizeStatus>().unwrap(), status);
        }
        let e = "cash".parse::<PrizeKind>().unwrap_err();
        assert_eq!(e.field, "type");
        assert!(e.message.contains("cash_redpack"));
    }

    #[test]
    fn users_are_told_what_happened_not_err_codes() {
        for code in [
            "SENDNUM_LIMIT",
            "RCVDAMOUNT_LIMIT",
            "OPENID_ERROR",
            "SEND_FAILED",
            "X",
        ] {
            let (en, zh) = user_failure_message(code);
            assert!(!en.contains(code) && !zh.contains(code));
        }
        assert!(user_failure_message("SENDNUM_LIMIT").0.contains("tomorrow"));
    }
}
