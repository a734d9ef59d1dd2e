//! Money: integer fen, parsed from yuan strings without ever touching a float.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidField;

/// An amount of money in fen (1/100 CNY), the unit of every WeChat amount.
///
/// There is deliberately no conversion from or to floating point: yuan enter
/// as decimal strings ([`Fen::parse_yuan`]) and leave as decimal strings
/// ([`Fen::to_yuan_string`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(u64);

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// An amount of `fen` fen.
    pub const fn new(fen: u64) -> Self {
        Fen(fen)
    }

    /// The amount in fen.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Fen) -> Option<Fen> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Fen(v)),
            None => None,
        }
    }

    /// `self - other`, or `None` if it would go below zero.
    pub const fn checked_sub(self, other: Fen) -> Option<Fen> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(Fen(v)),
            None => None,
        }
    }

    /// `self × n`, or `None` on overflow.
    pub const fn checked_mul(self, n: u64) -> Option<Fen> {
        match self.0.checked_mul(n) {
            Some(v) => Some(Fen(v)),
            None => None,
        }
    }

    /// Parses yuan written as a decimal string: `"1"`, `"1.8"`, `"1.88"`.
    ///
    /// At most two decimals, digits only (no sign, exponent, separators or
    /// spaces). `"1.888"` is an error rather than a rounding.
    pub fn parse_yuan(text: &str) -> Result<Fen, InvalidField> {
        let bad = || {
            InvalidField::new(
                "amount",
                format!(
                    "{text:?} is not an amount in yuan; write digits with at most 2 decimals, e.g. 1.88"
                ),
                format!("{text:?} 不是以元为单位的金额；请写数字，最多两位小数，例如 1.88"),
            )
        };
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 2 {
            return Err(bad());
        }
        if text.ends_with('.') {
            return Err(bad());
        }
        let too_large = || {
            InvalidField::new(
                "amount",
                format!("{text} yuan is too large"),
                format!("{text} 元金额过大"),
            )
        };
        let yuan: u64 = whole.parse().map_err(|_| too_large())?;
        let mut cents: u64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            let digit = u64::from(b - b'0');
            cents += if i == 0 { digit * 10 } else { digit };
        }
        yuan.checked_mul(100)
            .and_then(|f| f.checked_add(cents))
            .map(Fen)
            .ok_or_else(too_large)
    }

    /// The amount in yuan with two decimals, e.g. `"1.88"`.
    pub fn to_yuan_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for Fen {
    /// Formats as yuan with two decimals, the way people read money.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl From<u32> for Fen {
    fn from(fen: u32) -> Self {
        Fen(u64::from(fen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_strings_parse_exactly_to_fen() {
        assert_eq!(Fen::parse_yuan("1").unwrap(), Fen::new(100));
        assert_eq!(Fen::parse_yuan("1.8").unwrap(), Fen::new(180));
        assert_eq!(Fen::parse_yuan("1.88").unwrap(), Fen::new(188));
        assert_eq!(Fen::parse_yuan("0.30").unwrap(), Fen::new(30));
        assert_eq!(Fen::parse_yuan("0.01").unwrap(), Fen::new(1));
        assert_eq!(Fen::parse_yuan("4999.99").unwrap(), Fen::new(499_999));
        // 0.29 and 0.57 are the classic float traps: 0.29*100 = 28.999...
        assert_eq!(Fen::parse_yuan("0.29").unwrap(), Fen::new(29));
        assert_eq!(Fen::parse_yuan("0.57").unwrap(), Fen::new(57));
    }

    #[test]
    fn malformed_yuan_strings_are_refused_not_rounded() {
        for bad in [
            "", ".5", "1.", "1.888", "-1", "+1", "1e2", " 1", "1 ", "1,00", "abc", "1.2.3", "１",
        ] {
            let err = Fen::parse_yuan(bad).unwrap_err();
            assert_eq!(err.field, "amount", "{bad:?}");
        }
        assert!(Fen::parse_yuan("184467440737095516.16").is_err());
    }

    #[test]
    fn fen_formats_as_yuan() {
        assert_eq!(Fen::new(188).to_yuan_string(), "1.88");
        assert_eq!(Fen::new(5).to_string(), "0.05");
        assert_eq!(Fen::new(20_000).to_string(), "200.00");
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Fen::new(1).checked_sub(Fen::new(2)), None);
        assert_eq!(Fen::new(u64::MAX).checked_add(Fen::new(1)), None);
        assert_eq!(Fen::new(188).checked_mul(3), Some(Fen::new(564)));
    }
}
