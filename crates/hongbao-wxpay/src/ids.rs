//! Identifiers WeChat defines, each parsed once and trusted afterwards.

use std::fmt;
use std::str::FromStr;

use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use time::{Date, Month, OffsetDateTime, UtcOffset};

use crate::InvalidField;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The value as WeChat sends it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidField;
            fn from_str(s: &str) -> Result<Self, InvalidField> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn check_ascii(
    field: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<usize>,
    allowed: impl Fn(u8) -> bool,
    what: (&str, &str),
) -> Result<(), InvalidField> {
    if value.is_empty() {
        return Err(InvalidField::required(field));
    }
    if !value.bytes().all(allowed) {
        return Err(InvalidField::new(
            field,
            format!("{value:?} may contain only {}", what.0),
            format!("{value:?} 只能包含{}", what.1),
        ));
    }
    if !range.contains(&value.len()) {
        let (lo, hi) = (range.start(), range.end());
        let (en, zh) = if lo == hi {
            (
                format!("must be {lo} characters long, not {}", value.len()),
                format!("长度必须为 {lo} 个字符，当前为 {}", value.len()),
            )
        } else {
            (
                format!("must be {lo} to {hi} characters long, not {}", value.len()),
                format!("长度必须为 {lo} 到 {hi} 个字符，当前为 {}", value.len()),
            )
        };
        return Err(InvalidField::new(field, en, zh));
    }
    Ok(())
}

const DIGITS: (&str, &str) = ("digits", "数字");
const ALNUM: (&str, &str) = ("ASCII letters and digits", "英文字母和数字");
const OPENID_CHARS: (&str, &str) = (
    "ASCII letters, digits, '-' and '_'",
    "英文字母、数字、'-' 和 '_'",
);

string_newtype! {
    /// A merchant id (`mch_id`, 商户号): digits, at most 32.
    MchId
}

impl MchId {
    /// Parses a merchant id.
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        check_ascii("mch_id", s, 1..=32, |b| b.is_ascii_digit(), DIGITS)?;
        Ok(Self(s.to_owned()))
    }
}

string_newtype! {
    /// An appid: an official account's or mini program's `wx…` id, or a WeCom
    /// corpid. ASCII letters and digits, at most 32.
    AppId
}

impl AppId {
    /// Parses an appid.
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        check_ascii("appid", s, 1..=32, |b| b.is_ascii_alphanumeric(), ALNUM)?;
        Ok(Self(s.to_owned()))
    }
}

string_newtype! {
    /// A user's openid under one appid: 28 ASCII letters, digits, `-` or `_`,
    /// the form every openid WeChat issues has.
    OpenId
}

impl OpenId {
    /// The length of every openid WeChat issues.
    pub const LEN: usize = 28;

    /// Parses an openid.
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        check_ascii(
            "re_openid",
            s,
            Self::LEN..=Self::LEN,
            |b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_',
            OPENID_CHARS,
        )?;
        Ok(Self(s.to_owned()))
    }
}

string_newtype! {
    /// A merchant order number (`mch_billno`, 商户订单号): at most 28 ASCII
    /// letters and digits, unique per merchant. It is the idempotency key of
    /// a red packet: the same number is the same order, so it is allocated
    /// once and reused on every retry.
    MchBillNo
}

impl MchBillNo {
    /// The longest mch_billno WeChat accepts.
    pub const MAX_LEN: usize = 28;
    /// The largest daily sequence that fits WeChat's 10-digit layout.
    pub const MAX_SEQUENCE: u64 = 9_999_999_999;

    /// Parses a mch_billno.
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        check_ascii(
            "mch_billno",
            s,
            1..=Self::MAX_LEN,
            |b| b.is_ascii_alphanumeric(),
            ALNUM,
        )?;
        Ok(Self(s.to_owned()))
    }

    /// Builds a mch_billno in WeChat's suggested layout: `mch_id`, the date
    /// as `yyyymmdd`, then `sequence` as 10 digits. The caller supplies a
    /// sequence unique for that merchant and day (hongbao takes it from the
    /// database) and the date the payout was *created*, so that a retry on
    /// a later day still uses the same number.
    pub fn generate(mch_id: &MchId, date: Date, sequence: u64) -> Result<Self, InvalidField> {
        Self::generate_for(mch_id, date, &BillnoDeployment::default(), sequence)
    }

    /// As [`MchBillNo::generate`], with the 10 digits opened by
    /// `deployment`'s: numbers made by two deployments with different
    /// parts never meet, however their sequences run.
    pub fn generate_for(
        mch_id: &MchId,
        date: Date,
        deployment: &BillnoDeployment,
        sequence: u64,
    ) -> Result<Self, InvalidField> {
        let width = 10 - deployment.0.len();
        if sequence >= 10u64.pow(u32::try_from(width).unwrap_or(10)) {
            return Err(InvalidField::new(
                "mch_billno",
                format!(
                    "the daily sequence {sequence} does not fit in the {width} digits left after the deployment part {:?}",
                    deployment.0
                ),
                format!("当日序号 {sequence} 超过部署编号之后的 {width} 位数字"),
            ));
        }
        let len = mch_id.as_str().len() + 18;
        if len > Self::MAX_LEN {
            return Err(InvalidField::new(
                "mch_billno",
                format!(
                    "mch_id {mch_id} is {} digits; mch_id + yyyymmdd + 10 digits would be {len} characters, at most {}",
                    mch_id.as_str().len(),
                    Self::MAX_LEN
                ),
                format!(
                    "商户号 {mch_id} 加日期和 10 位序号共 {len} 位，超过 {} 位",
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(Self(format!(
            "{mch_id}{:04}{:02}{:02}{}{sequence:0width$}",
            date.year(),
            u8::from(date.month()),
            date.day(),
            deployment.0,
        )))
    }

    /// The date and sequence of a mch_billno made by [`MchBillNo::generate`]
    /// for `mch_id`, or `None` if it has another layout.
    pub fn layout(&self, mch_id: &MchId) -> Option<(Date, u64)> {
        let rest = self.0.strip_prefix(mch_id.as_str())?;
        if rest.len() != 18 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year: i32 = rest[0..4].parse().ok()?;
        let month: u8 = rest[4..6].parse().ok()?;
        let day: u8 = rest[6..8].parse().ok()?;
        let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
        Some((date, rest[8..].parse().ok()?))
    }
}

/// The digits that open the daily sequence of every mch_billno a
/// deployment makes (0 to 4 of them; none by default), so that two
/// databases paying for the same merchant — production and staging, a
/// restored copy, a legacy system counting from 1 in WeChat's layout —
/// never make the same number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BillnoDeployment(String);

impl BillnoDeployment {
    /// The most digits a deployment part may take of the 10.
    pub const MAX_DIGITS: usize = 4;

    /// Parses a deployment part: up to four digits.
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        if s.len() > Self::MAX_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidField::new(
                "billno_deployment",
                format!(
                    "{s:?} must be 0 to {} digits (e.g. \"1\" for production, \"2\" for staging); they open the 10-digit daily sequence of each mch_billno",
                    Self::MAX_DIGITS
                ),
                format!(
                    "{s:?} 必须是 0 到 {} 位数字（如生产 \"1\"、测试 \"2\"），用作商户单号中每日序号的开头",
                    Self::MAX_DIGITS
                ),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Beijing time (UTC+8, no daylight saving), the time zone of WeChat's dates.
pub const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("UTC+8 is a valid offset"),
};

/// The calendar day in Beijing at the instant `at`, the day a mch_billno is
/// dated by.
pub fn beijing_date(at: OffsetDateTime) -> Date {
    at.to_offset(BEIJING).date()
}

/// The scene of a red packet (`scene_id`), required when the amount is
/// outside 1–200 yuan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SceneId {
    /// `PRODUCT_1` 商品促销, product promotion.
    #[serde(rename = "PRODUCT_1")]
    Product1,
    /// `PRODUCT_2` 抽奖, lottery.
    #[serde(rename = "PRODUCT_2")]
    Product2,
    /// `PRODUCT_3` 虚拟物品兑奖, virtual goods prizes.
    #[serde(rename = "PRODUCT_3")]
    Product3,
    /// `PRODUCT_4` 企业内部福利, staff benefits.
    #[serde(rename = "PRODUCT_4")]
    Product4,
    /// `PRODUCT_5` 渠道分润, channel revenue share.
    #[serde(rename = "PRODUCT_5")]
    Product5,
    /// `PRODUCT_6` 保险回馈, insurance rewards.
    #[serde(rename = "PRODUCT_6")]
    Product6,
    /// `PRODUCT_7` 彩票派奖, lottery ticket prizes.
    #[serde(rename = "PRODUCT_7")]
    Product7,
    /// `PRODUCT_8` 税务刮奖, tax receipt scratch prizes.
    #[serde(rename = "PRODUCT_8")]
    Product8,
}

impl SceneId {
    /// Every scene, in order.
    pub const ALL: [SceneId; 8] = [
        SceneId::Product1,
        SceneId::Product2,
        SceneId::Product3,
        SceneId::Product4,
        SceneId::Product5,
        SceneId::Product6,
        SceneId::Product7,
        SceneId::Product8,
    ];

    /// The wire value, e.g. `PRODUCT_2`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SceneId::Product1 => "PRODUCT_1",
            SceneId::Product2 => "PRODUCT_2",
            SceneId::Product3 => "PRODUCT_3",
            SceneId::Product4 => "PRODUCT_4",
            SceneId::Product5 => "PRODUCT_5",
            SceneId::Product6 => "PRODUCT_6",
            SceneId::Product7 => "PRODUCT_7",
            SceneId::Product8 => "PRODUCT_8",
        }
    }

    /// Parses a wire value.
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        Self::ALL
            .into_iter()
            .find(|scene| scene.as_str() == s)
            .ok_or_else(|| {
                InvalidField::new(
                    "scene_id",
                    format!("{s:?} is not a scene; use PRODUCT_1 to PRODUCT_8"),
                    format!("{s:?} 不是有效场景；请使用 PRODUCT_1 到 PRODUCT_8"),
                )
            })
    }
}

impl fmt::Display for SceneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SceneId {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        Self::parse(s)
    }
}

/// The merchant's API key (API密钥, v2), the secret every request is signed
/// with. It never appears in `Debug` output.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// The length of every v2 API key.
    pub const LEN: usize = 32;

    /// Parses an API key: exactly 32 ASCII letters and digits, as the
    /// merchant platform (商户平台 → 账户中心 → API安全) requires.
    ///
    /// The error never repeats the key.
    pub fn parse(key: &str) -> Result<Self, InvalidField> {
        if key.len() != Self::LEN || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            let shape = if key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                format!("{} characters", key.chars().count())
            } else {
                "characters other than ASCII letters and digits".to_owned()
            };
            return Err(InvalidField::new(
                "api_key",
                format!(
                    "must be the 32 ASCII letters and digits of the v2 API key (API密钥), but has {shape}"
                ),
                format!("必须是 32 位英文字母和数字组成的 API 密钥（v2），当前为{shape}"),
            ));
        }
        Ok(Self(SecretString::from(key)))
    }

    /// Wraps a key of any shape, for tools that must reproduce a signature
    /// computed with whatever key a user has (`hongbao sign`).
    pub fn any(key: &str) -> Self {
        Self(SecretString::from(key))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The key's length in characters (safe to show).
    pub fn len(&self) -> usize {
        self.expose().chars().count()
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A fresh random `nonce_str`: 32 ASCII letters and digits.
pub fn nonce_str() -> String {
    let mut rng = rand::rng();
    let bytes: Vec<u8> = (0..32)
        .map(|_| rng.sample(rand::distr::Alphanumeric))
        .collect();
    String::from_utf8(bytes).expect("alphanumeric bytes are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn billno_has_wechats_layout_and_round_trips() {
        let mch = MchId::parse("1900000109").unwrap();
        let no = MchBillNo::generate(&mch, date!(2026 - 11 - 22), 42).unwrap();
        assert_eq!(no.as_str(), "1900000109202611220000000042");
        assert_eq!(no.as_str().len(), 28);
        assert_eq!(no.layout(&mch), Some((date!(2026 - 11 - 22), 42)));
        let other = MchId::parse("1900000110").unwrap();
        assert_eq!(no.layout(&other), None);
        assert_eq!(MchBillNo::parse(no.as_str()).unwrap(), no);
    }

    #[test]
    fn billno_generation_refuses_what_does_not_fit() {
        let mch = MchId::parse("1900000109").unwrap();
        let err = MchBillNo::generate(&mch, date!(2026 - 11 - 22), 10_000_000_000).unwrap_err();
        assert_eq!(err.field, "mch_billno");
        let long = MchId::parse("19000001091").unwrap();
        assert!(MchBillNo::generate(&long, date!(2026 - 11 - 22), 1).is_err());
    }

    #[test]
    fn a_deployment_part_opens_the_sequence_and_narrows_it() {
        let mch = MchId::parse("1900000109").unwrap();
        let staging = BillnoDeployment::parse("27").unwrap();
        let no = MchBillNo::generate_for(&mch, date!(2026 - 11 - 22), &staging, 42).unwrap();
        assert_eq!(no.as_str(), "1900000109202611222700000042");
        assert!(MchBillNo::generate_for(&mch, date!(2026 - 11 - 22), &staging, 99_999_999).is_ok());
        let err = MchBillNo::generate_for(&mch, date!(2026 - 11 - 22), &staging, 100_000_000)
            .unwrap_err();
        assert!(err.message.contains("8 digits"), "{}", err.message);
        for bad in ["12345", "1a", "-1", " 1"] {
            assert_eq!(
                BillnoDeployment::parse(bad).unwrap_err().field,
                "billno_deployment"
            );
        }
        assert_eq!(
            BillnoDeployment::parse("").unwrap(),
            BillnoDeployment::default()
        );
    }

    #[test]
    fn billno_charset_and_length_are_checked() {
        assert!(MchBillNo::parse("ABCdef0123456789").is_ok());
        assert!(MchBillNo::parse("12345678901234567890123456789").is_err());
        assert!(MchBillNo::parse("2026-11-22").is_err());
        assert!(MchBillNo::parse("单号").is_err());
        assert!(MchBillNo::parse("").is_err());
    }

    #[test]
    fn openids_are_28_url_safe_characters() {
        assert!(OpenId::parse("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o").is_ok());
        assert!(OpenId::parse("oxTWIuGaIt6gTKsQRLau2M0yL16E").is_ok());
        let short = OpenId::parse("oUpF8uMuAJO").unwrap_err();
        assert_eq!(short.field, "re_openid");
        assert!(short.message.contains("28"), "{}", short.message);
        assert!(OpenId::parse("oUpF8uMuAJO M2pxb1Q9zNjWeS6o").is_err());
        assert!(OpenId::parse("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o1").is_err());
    }

    #[test]
    fn billno_date_is_the_beijing_day() {
        // 16:30 UTC on the 21st is already the 22nd in Beijing.
        assert_eq!(
            beijing_date(datetime!(2026-11-21 16:30 UTC)),
            date!(2026 - 11 - 22)
        );
        assert_eq!(
            beijing_date(datetime!(2026-11-21 15:59 UTC)),
            date!(2026 - 11 - 21)
        );
    }

    #[test]
    fn api_key_errors_and_debug_never_show_the_key() {
        let key = "192006250b4c09247ec02edce69f6a2d";
        let parsed = ApiKey::parse(key).unwrap();
        assert!(!format!("{parsed:?}").contains(key));
        let err = ApiKey::parse("192006250b4c09247ec02edce69f6a2").unwrap_err();
        assert!(!err.message.contains("192006250b4c"));
        assert!(err.message.contains("31 characters"), "{}", err.message);
        assert!(ApiKey::parse("192006250b4c09247ec02edce69f6a2-").is_err());
    }

    #[test]
    fn nonces_are_32_alphanumerics_and_differ() {
        let (a, b) = (nonce_str(), nonce_str());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn scene_ids_parse() {
        assert_eq!(SceneId::parse("PRODUCT_2").unwrap(), SceneId::Product2);
        assert!(SceneId::parse("PRODUCT_9").is_err());
    }
}
