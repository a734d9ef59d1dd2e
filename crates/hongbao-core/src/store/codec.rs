//! Reading values back from the database, parsed like input: a corrupt
//! value (a negative amount, an unknown status) is an error naming its
//! column, never read as a default.

use std::fmt::Display;
use std::str::FromStr;

use hongbao_wxpay::Fen;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::db::DbError;

/// A value read back that breaks its rules.
pub fn corrupt(what: impl Into<String>) -> DbError {
    DbError::Sqlx(sqlx::Error::Decode(what.into().into()))
}

/// Money as stored: integer fen.
pub fn fen_to_db(value: Fen) -> i64 {
    to_db(value.get())
}

/// A whole number (a count, a line, a page bound) as stored: bounded by
/// its rules long before i64's range, saturating past it.
pub fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Money read back: integer fen, never negative.
pub fn fen_from_db(column: &str, value: i64) -> Result<Fen, DbError> {
    u64::try_from(value)
        .map(Fen::new)
        .map_err(|_| corrupt(format!("{column}: {value} is not an amount of fen")))
}

/// The amount in `column`.
pub fn fen(row: &AnyRow, column: &str) -> Result<Fen, DbError> {
    fen_from_db(column, row.try_get::<i64, _>(column)?)
}

/// The amount in `column`, if any.
pub fn fen_opt(row: &AnyRow, column: &str) -> Result<Option<Fen>, DbError> {
    row.try_get::<Option<i64>, _>(column)?
        .map(|v| fen_from_db(column, v))
        .transpose()
}

/// A count or another whole number that cannot be negative.
pub fn count<T: TryFrom<i64>>(row: &AnyRow, column: &str) -> Result<T, DbError> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value).map_err(|_| corrupt(format!("{column}: {value} is out of range")))
}

/// A whole number read on its own (a `COUNT(*)`), named by `what`.
pub fn whole(value: i64, what: &str) -> Result<u64, DbError> {
    u64::try_from(value).map_err(|_| corrupt(format!("{what}: {value} is out of range")))
}

/// A count in `column`, if any.
pub fn count_opt<T: TryFrom<i64>>(row: &AnyRow, column: &str) -> Result<Option<T>, DbError> {
    row.try_get::<Option<i64>, _>(column)?
        .map(|value| {
            T::try_from(value).map_err(|_| corrupt(format!("{column}: {value} is out of range")))
        })
        .transpose()
}

/// The value of `column` parsed as `T` (a status, a kind, an outcome).
pub fn parsed<T>(row: &AnyRow, column: &str) -> Result<T, DbError>
where
    T: FromStr,
    T::Err: Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: T::Err| corrupt(format!("{column}: {e}")))
}

/// Text from outside (an answer as received, an error's detail) as it can
/// be stored: PostgreSQL's text refuses NUL, which a garbled answer may
/// carry, and a refused statement would keep an outcome from being
/// recorded at all. Each NUL becomes U+FFFD.
pub fn storable(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{fffd}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_amount_is_corrupt_not_zero() {
        assert_eq!(fen_from_db("total_amount", 188).unwrap(), Fen::new(188));
        let e = fen_from_db("total_amount", -1).unwrap_err();
        assert!(e.to_string().contains("total_amount"), "{e}");
        assert_eq!(fen_to_db(Fen::new(188)), 188);
    }

    #[test]
    fn text_from_outside_is_storable_without_nul() {
        assert_eq!(storable("a\0b"), "a\u{fffd}b");
        assert_eq!(storable("成功"), "成功");
    }
}
