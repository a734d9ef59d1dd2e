//! The SQL of the merchant's pace, shared by every process on the database.

use sqlx::AssertSqlSafe;
use tokio::time::Instant;

use super::db::{Db, DbError, Dialect};

/// Reads the merchant's pace under a write lock, applies `change`
/// (`next`, `slow_until`, `now` → new `next`, `slow_until`, result) and
/// stores it. Answers the database's `now`, the local instant that
/// matches it, and `change`'s result.
pub async fn update<T, F>(db: &Db, mch_id: &str, change: F) -> Result<(i64, Instant, T), DbError>
where
    T: Send + 'static,
    F: Fn(i64, i64, i64) -> (i64, i64, T) + Send + Sync + Clone + 'static,
{
    let now_sql = db.now_us_sql();
    let lock = match db.dialect() {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    };
    let mch_id = mch_id.to_owned();
    db.write(move |tx| {
        let (mch_id, change) = (mch_id.clone(), change.clone());
        Box::pin(async move {
            let select = format!(
                "SELECT next_slot_us, slow_until_us, {now_sql} FROM merchant_pace \
                     WHERE mch_id = $1{lock}"
            );
            // The row is made once, by the merchant's first reservation.
            let mut row = None;
            for _ in 0..2 {
                row = sqlx::query_as::<_, (i64, i64, i64)>(AssertSqlSafe(select.clone()))
                    .bind(mch_id.clone())
                    .fetch_optional(&mut **tx)
                    .await?;
                if row.is_some() {
                    break;
                }
                let sql = format!(
                    "INSERT INTO merchant_pace (mch_id, next_slot_us, slow_until_us) \
                         VALUES ($1, {now_sql}, 0) ON CONFLICT (mch_id) DO NOTHING"
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(mch_id.clone())
                    .execute(&mut **tx)
                    .await?;
            }
            let (next, slow_until, now) = row.ok_or(sqlx::Error::RowNotFound)?;
            // The database's `now` was read just now: the local
            // clock at this moment is its counterpart.
            let local = Instant::now();
            let (next, slow_until, result) = change(next, slow_until, now);
            sqlx::query(
                "UPDATE merchant_pace SET next_slot_us = $1, slow_until_us = $2 \
                     WHERE mch_id = $3",
            )
            .bind(next)
            .bind(slow_until)
            .bind(mch_id)
            .execute(&mut **tx)
            .await?;
            Ok((now, local, result))
        })
    })
    .await
}
