//! The sandbox's knobs: WeChat's business limits, the packets' lifecycle,
//! fault injection, and who follows the official account.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hongbao_wxpay::Fen;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A probability in parts per million, parsed from `0.2`, `20%` or `1`
/// without floating point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Probability(u32);

impl Probability {
    /// One million parts: certainty.
    pub const SCALE: u32 = 1_000_000;
    /// Never.
    pub const NEVER: Probability = Probability(0);
    /// Always.
    pub const ALWAYS: Probability = Probability(Self::SCALE);

    /// From parts per million (capped at certainty).
    pub const fn from_ppm(ppm: u32) -> Self {
        if ppm > Self::SCALE {
            Probability(Self::SCALE)
        } else {
            Probability(ppm)
        }
    }

    /// Parts per million.
    pub const fn ppm(self) -> u32 {
        self.0
    }
}

impl FromStr for Probability {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a probability; write 0.2 or 20%");
        let (number, scale_digits) = match text.strip_suffix('%') {
            Some(percent) => (percent, 2),
            None => (text, 0),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        // Value = whole.frac / 10^scale_digits, as parts per million.
        let digits = 6 - scale_digits;
        if frac.len() > digits {
            return Err(format!(
                "{text:?} has more precision than one part per million"
            ));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut ppm = whole
            .checked_mul(10u64.pow(u32::try_from(digits).unwrap_or(6)))
            .ok_or_else(bad)?;
        let mut place = 10u64.pow(u32::try_from(digits).unwrap_or(6));
        for b in frac.bytes() {
            place /= 10;
            ppm += u64::from(b - b'0') * place;
        }
        if ppm > u64::from(Self::SCALE) {
            return Err(format!("{text:?} is more than 1"));
        }
        Ok(Probability(u32::try_from(ppm).map_err(|_| bad())?))
    }
}

impl fmt::Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frac = format!("{:06}", self.0 % Self::SCALE);
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            write!(f, "{}", self.0 / Self::SCALE)
        } else {
            write!(f, "{}.{frac}", self.0 / Self::SCALE)
        }
    }
}

impl Serialize for Probability {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Probability;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a probability such as \"0.2\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Probability, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Probability, E> {
                v.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// WeChat's business limits, as the sandbox enforces them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Calls per minute per merchant before `FREQ_LIMIT` (0: unlimited).
    pub rate_per_minute: u32,
    /// Red packets per openid per day (`SENDNUM_LIMIT`).
    pub sendnum_limit: u32,
    /// Amount per openid per day (`RCVDAMOUNT_LIMIT`).
    pub rcvd_amount_limit: Fen,
    /// Amount per merchant per day (`SENDAMOUNT_LIMIT`).
    pub send_amount_limit: Fen,
    /// The lowest amount allowed with a `scene_id`.
    pub scene_min: Fen,
    /// The highest amount allowed with a `scene_id`.
    pub scene_max: Fen,
    /// Whether a `NOTENOUGH` refusal leaves a `FAILED` order behind (so
    /// that the mch_billno is dead after a top-up). WeChat's behaviour here
    /// is not documented; by default no order is created.
    pub notenough_fails_order: bool,
    /// How long an official account access token lives (`expires_in`; WeChat: 7200 s).
    pub token_ttl_seconds: u32,
    /// Whether `sendgroupredpack` still pays, for legacy tests. WeChat
    /// retired fission on 2024-06-05; by default the sandbox answers a group
    /// packet as production does now (`NO_AUTH`).
    pub legacy_fission: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            rate_per_minute: 1800,
            sendnum_limit: 10,
            rcvd_amount_limit: Fen::new(100_000),
            send_amount_limit: Fen::new(100_000_000),
            scene_min: hongbao_wxpay::request::amount::SCENE_MIN,
            scene_max: hongbao_wxpay::request::amount::SCENE_MAX,
            notenough_fails_order: false,
            token_ttl_seconds: 7200,
            legacy_fission: false,
        }
    }
}

/// What happens to a red packet after it is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifecycle {
    /// The chance that the user opens it (`RECEIVED`); otherwise it is refunded.
    pub receive_probability: Probability,
    /// How long after sending the user opens it.
    #[serde(with = "seconds")]
    pub receive_after: Duration,
    /// How long an unopened packet waits before its refund (WeChat: 24 h).
    #[serde(with = "seconds")]
    pub refund_after: Duration,
    /// How long a refund stays `RFUND_ING` before `REFUND`.
    #[serde(with = "seconds")]
    pub refunding_for: Duration,
    /// How long a packet answered with `PROCESSING` stays `SENDING`.
    #[serde(with = "seconds")]
    pub processing_for: Duration,
    /// How long every accepted packet stays `SENDING` before `SENT` (WeChat
    /// issues it in the background; 0: `SENT` at once).
    #[serde(with = "seconds", default)]
    pub sending_for: Duration,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            receive_probability: Probability::from_ppm(900_000),
            receive_after: Duration::from_secs(60),
            refund_after: Duration::from_secs(24 * 3600),
            refunding_for: Duration::from_secs(3600),
            processing_for: Duration::from_secs(5),
            sending_for: Duration::ZERO,
        }
    }
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// Which of WeChat's keys signs APIv3 answers and callbacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum V3Signer {
    /// The 微信支付公钥 (`Wechatpay-Serial: PUB_KEY_ID_…`), as for merchants on-boarded today.
    #[default]
    PublicKey,
    /// The platform certificate (`Wechatpay-Serial` = its serial), as before the switch.
    PlatformCertificate,
}

impl FromStr for V3Signer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "public-key" | "public_key" => Ok(V3Signer::PublicKey),
            "platform-certificate" | "platform_certificate" => Ok(V3Signer::PlatformCertificate),
            other => Err(format!("{other:?}: use public-key or platform-certificate")),
        }
    }
}

/// The transfer bills' rules and lifecycle (APIv3 商家转账), and how the
/// simulated user behaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Transfers {
    /// The chance that the user confirms a bill by themself; otherwise it
    /// waits for an admin call, the confirm page, a cancel or its expiry.
    pub confirm_probability: Probability,
    /// How long after creation the user confirms.
    #[serde(with = "seconds")]
    pub confirm_after: Duration,
    /// How long a confirmed bill stays `TRANSFERING`.
    #[serde(with = "seconds")]
    pub transferring_for: Duration,
    /// How long a bill waits for the user before `FAIL` / `OVERDUE_CLOSE` (WeChat: 24 h).
    #[serde(with = "seconds")]
    pub expire_after: Duration,
    /// How long a cancelled bill stays `CANCELING`.
    #[serde(with = "seconds")]
    pub canceling_for: Duration,
    /// Creates per second per merchant before `FREQUENCY_LIMITED` (WeChat: 100; 0: unlimited).
    pub create_per_second: u32,
    /// Queries per second per merchant before `FREQUENCY_LIMITED` (WeChat: 100; 0: unlimited).
    pub query_per_second: u32,
    /// How far back queries find bills, in days (WeChat: 30).
    pub query_window_days: u32,
    /// The largest bill the merchant platform allows ("超过单笔转账上下限").
    pub max_amount: Fen,
    /// Which key signs answers and callbacks.
    pub signer: V3Signer,
    /// The first retry interval of a refused callback (WeChat: 15 s; later
    /// retries wait 20 and 120 times as long, as WeChat's 300 s and 1800 s).
    #[serde(with = "millis", rename = "callback_retry_after_ms")]
    pub callback_retry_after: Duration,
    /// The chance that a delivered callback is sent once more.
    pub callback_duplicate_probability: Probability,
    /// The merchant's IP allow-list for APIv3 (empty: any address).
    pub ip_allowlist: BTreeSet<std::net::IpAddr>,
}

impl Default for Transfers {
    fn default() -> Self {
        Transfers {
            confirm_probability: Probability::from_ppm(900_000),
            confirm_after: Duration::from_secs(60),
            transferring_for: Duration::from_secs(5),
            expire_after: Duration::from_secs(24 * 3600),
            canceling_for: Duration::from_secs(5),
            create_per_second: 100,
            query_per_second: 100,
            query_window_days: 30,
            max_amount: Fen::new(500_000),
            signer: V3Signer::PublicKey,
            callback_retry_after: Duration::from_secs(15),
            callback_duplicate_probability: Probability::from_ppm(100_000),
            ip_allowlist: BTreeSet::new(),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Faults to inject, each a probability per call. At most one of the
/// exclusive faults ([`crate::FaultKind`]) hits a call; latency comes on
/// top. An unknown (misspelt) key is refused, never read as "no fault".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// `SYSTEMERROR` before anything is committed (nothing paid).
    pub systemerror_before: Probability,
    /// `SYSTEMERROR` after committing: money moved, the caller is told otherwise.
    pub systemerror_after: Probability,
    /// The connection is closed without an answer after committing.
    pub drop_after: Probability,
    /// `PROCESSING`: committed, the packet stays `SENDING` for a while.
    pub processing: Probability,
    /// A garbage body instead of the answer (after processing the call normally).
    pub garbage: Probability,
    /// Added latency (see `latency_ms`).
    pub latency: Probability,
    /// How much latency, in milliseconds.
    pub latency_ms: u64,
}

impl Faults {
    /// Checks that the exclusive faults add up to at most 1.
    pub fn validate(&self) -> Result<(), String> {
        let total: u32 = [
            self.systemerror_before,
            self.systemerror_after,
            self.drop_after,
            self.processing,
            self.garbage,
        ]
        .iter()
        .map(|p| p.ppm())
        .sum();
        if total > Probability::SCALE {
            return Err(format!(
                "the fault probabilities add up to {}, more than 1",
                Probability::from_ppm(total)
            ));
        }
        Ok(())
    }
}

/// Who follows the official account (`user/info` `subscribe`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "openids", rename_all = "lowercase")]
pub enum Followers {
    /// Everybody.
    #[default]
    All,
    /// Nobody.
    None,
    /// Only these openids.
    List(BTreeSet<String>),
}

impl Followers {
    /// Whether `openid` follows.
    pub fn follows(&self, openid: &str) -> bool {
        match self {
            Followers::All => true,
            Followers::None => false,
            Followers::List(list) => list.contains(openid),
        }
    }
}

impl FromStr for Followers {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Followers::All),
            "none" => Ok(Followers::None),
            list => Ok(Followers::List(
                list.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_parse_without_floats() {
        assert_eq!("0.2".parse::<Probability>().unwrap().ppm(), 200_000);
        assert_eq!("20%".parse::<Probability>().unwrap().ppm(), 200_000);
        assert_eq!("1".parse::<Probability>().unwrap(), Probability::ALWAYS);
        assert_eq!("0".parse::<Probability>().unwrap(), Probability::NEVER);
        assert_eq!(".5".parse::<Probability>().unwrap().ppm(), 500_000);
        assert_eq!("0.000001".parse::<Probability>().unwrap().ppm(), 1);
        assert_eq!("12.5%".parse::<Probability>().unwrap().ppm(), 125_000);
        for bad in ["", "1.5", "-0.1", "abc", "101%", "0.0000001", "."] {
            assert!(bad.parse::<Probability>().is_err(), "{bad}");
        }
        assert_eq!(Probability::from_ppm(200_000).to_string(), "0.2");
    }

    #[test]
    fn exclusive_faults_cannot_exceed_certainty() {
        let mut faults = Faults {
            systemerror_before: Probability::from_ppm(600_000),
            drop_after: Probability::from_ppm(400_000),
            latency: Probability::ALWAYS,
            ..Faults::default()
        };
        assert!(faults.validate().is_ok());
        faults.garbage = Probability::from_ppm(1);
        assert!(faults.validate().is_err());
    }

    #[test]
    fn a_misspelt_fault_kind_is_refused_not_read_as_no_fault() {
        let err = serde_json::from_str::<Faults>(r#"{"systemerror_afer": "0.5"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `systemerror_afer`"),
            "{err}"
        );
        let ok: Faults = serde_json::from_str(r#"{"systemerror_after": "0.5"}"#).unwrap();
        assert_eq!(ok.systemerror_after, Probability::from_ppm(500_000));
        assert!(serde_json::from_str::<Rules>(r#"{"rate_per_minit": 1}"#).is_err());
        assert!(serde_json::from_str::<Lifecycle>(r#"{"recieve_after": 1}"#).is_err());
    }

    #[test]
    fn followers_parse() {
        assert_eq!("all".parse::<Followers>().unwrap(), Followers::All);
        let list: Followers = "o1, o2".parse().unwrap();
        assert!(list.follows("o2") && !list.follows("o3"));
    }
}
