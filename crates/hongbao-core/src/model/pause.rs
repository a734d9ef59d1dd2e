//! Why a merchant's payouts are stopped, and what to do about it.

use std::fmt;
use std::str::FromStr;

use hongbao_wxpay::PauseReason;
use serde::{Serialize, Serializer};

/// Why a merchant is paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PauseKind {
    /// WeChat said the balance is too low (`NOTENOUGH`, `NOT_ENOUGH`).
    InsufficientBalance,
    /// The merchant reached its daily payout cap.
    DailyCap,
    /// The key, certificate, permission or appid is wrong.
    Configuration,
    /// An operator paused it.
    Operator,
}

impl PauseKind {
    /// Every kind.
    pub const ALL: [PauseKind; 4] = [
        PauseKind::InsufficientBalance,
        PauseKind::DailyCap,
        PauseKind::Configuration,
        PauseKind::Operator,
    ];

    /// The stored (and API) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PauseKind::InsufficientBalance => "insufficient_balance",
            PauseKind::DailyCap => "daily_cap",
            PauseKind::Configuration => "configuration",
            PauseKind::Operator => "operator",
        }
    }

    /// Whether WeChat refused for the merchant as a whole, not for the
    /// request (balance, daily cap): the order may have been kept as
    /// failed, so it is asked about before it is sent again.
    pub const fn is_merchant_level(self) -> bool {
        matches!(self, PauseKind::InsufficientBalance | PauseKind::DailyCap)
    }

    /// The words of a pause, in English and Chinese: why, and what to do.
    /// `detail` is the code that caused it and its words.
    pub fn messages(self, detail: Option<(&str, &str, &str)>) -> (String, String) {
        let resume = "resume with `hongbao merchant resume NAME` or POST /v1/merchants/NAME/resume";
        let resume_zh =
            "恢复请用 `hongbao merchant resume 商户名` 或 POST /v1/merchants/商户名/resume";
        let why = match self {
            PauseKind::Operator => {
                return (
                    format!("paused by an operator; {resume}"),
                    format!("已由操作员暂停；{resume_zh}"),
                );
            }
            PauseKind::InsufficientBalance => PauseReason::InsufficientBalance,
            PauseKind::DailyCap => PauseReason::DailyCap,
            PauseKind::Configuration => PauseReason::Configuration,
        };
        let (detail, detail_zh) = detail.map_or_else(Default::default, |(code, en, zh)| {
            (format!(" ({code}: {en})"), format!("（{code}：{zh}）"))
        });
        (
            format!("{}{detail}; {resume}", why.message()),
            format!("{}{detail_zh}；{resume_zh}", why.zh_message()),
        )
    }
}

impl From<PauseReason> for PauseKind {
    fn from(reason: PauseReason) -> Self {
        match reason {
            PauseReason::InsufficientBalance => PauseKind::InsufficientBalance,
            PauseReason::DailyCap => PauseKind::DailyCap,
            PauseReason::Configuration => PauseKind::Configuration,
        }
    }
}

impl FromStr for PauseKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PauseKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a pause reason"))
    }
}

impl fmt::Display for PauseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PauseKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A merchant whose payouts are stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pause {
    /// The merchant.
    pub merchant: String,
    /// Why.
    pub reason: PauseKind,
    /// The err_code that caused it.
    pub err_code: Option<String>,
    /// What to do, for people.
    pub message: String,
    /// The same, in Chinese.
    pub zh_message: String,
    /// Since when.
    #[serde(with = "time::serde::rfc3339")]
    pub paused_at: time::OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_every_pause_says_how_to_resume() {
        for kind in PauseKind::ALL {
            assert_eq!(kind.as_str().parse::<PauseKind>().unwrap(), kind);
            let (en, zh) = kind.messages(Some(("NOTENOUGH", "low", "不足")));
            assert!(en.contains("resume") && zh.contains("恢复"), "{en} {zh}");
        }
        assert!("paused".parse::<PauseKind>().is_err());
        let (en, zh) = PauseKind::InsufficientBalance.messages(Some(("NOTENOUGH", "low", "不足")));
        assert!(en.contains("top it up") && en.contains("NOTENOUGH: low"));
        assert!(zh.contains("充值") && zh.contains("不足"));
    }
}
