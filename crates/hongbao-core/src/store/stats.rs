//! Counts and sums of payouts, by merchant, status and time.

use hongbao_wxpay::Fen;
use sqlx::{Any, AssertSqlSafe, Row};

use super::Ledger;
use super::codec;
use super::db::DbError;
use crate::model::{Rail, Status, StatusTotal};

impl Ledger {
    /// Counts and amounts by merchant, rail and status.
    pub async fn totals(&self) -> Result<Vec<StatusTotal>, DbError> {
        let rows = sqlx::query(
            "SELECT merchant, rail, status, COUNT(*) AS n, CAST(SUM(total_amount) AS BIGINT) AS amount FROM payouts GROUP BY merchant, rail, status",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatusTotal {
                    merchant: r.try_get("merchant")?,
                    rail: codec::parsed(r, "rail")?,
                    status: codec::parsed(r, "status")?,
                    count: codec::count(r, "n")?,
                    amount: codec::fen_opt(r, "amount")?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Counts and fen of `merchants`' records created at or after
    /// `since_ms`, by status.
    pub async fn totals_since(
        &self,
        merchants: &[String],
        since_ms: i64,
    ) -> Result<Vec<(Status, u64, Fen)>, DbError> {
        let rows = self
            .grouped(merchants, "status", since_ms, Vec::new())
            .await?;
        rows.into_iter()
            .map(|(status, n, amount)| {
                let status: String = status;
                let status = status
                    .parse::<Status>()
                    .map_err(|e| super::codec::corrupt(format!("status: {}", e.message)))?;
                Ok((status, n, amount))
            })
            .collect()
    }

    /// Counts and fen of `merchants`' records created at or after
    /// `since_ms`, by rail.
    pub async fn rails_since(
        &self,
        merchants: &[String],
        since_ms: i64,
    ) -> Result<Vec<(Rail, u64, Fen)>, DbError> {
        let rows = self
            .grouped(merchants, "rail", since_ms, Vec::new())
            .await?;
        rows.into_iter()
            .map(|(rail, n, amount)| {
                let rail: String = rail;
                let rail = rail
                    .parse::<Rail>()
                    .map_err(|e| super::codec::corrupt(format!("rail: {}", e.message)))?;
                Ok((rail, n, amount))
            })
            .collect()
    }

    /// Counts and fen of `merchants`' records created at or after
    /// `origin_ms`, in buckets of `bucket_ms` from `origin_ms`: `(index,
    /// count, fen)` for the buckets that hold any.
    pub async fn series(
        &self,
        merchants: &[String],
        origin_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<(i64, u64, Fen)>, DbError> {
        let rows: Vec<(i64, u64, Fen)> = self
            .grouped(
                merchants,
                "(created_at - $1) / $2",
                origin_ms,
                vec![bucket_ms],
            )
            .await?;
        Ok(rows)
    }

    /// `SELECT key, COUNT(*), SUM(total_amount)` over `merchants`' records
    /// created since `since_ms` (bound as `$1`; `extra` follow as `$2`...),
    /// grouped by the expression `key`.
    async fn grouped<K>(
        &self,
        merchants: &[String],
        key: &str,
        since_ms: i64,
        extra: Vec<i64>,
    ) -> Result<Vec<(K, u64, Fen)>, DbError>
    where
        K: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + Send + Unpin,
    {
        if merchants.is_empty() {
            return Ok(Vec::new());
        }
        let first = 2 + extra.len();
        let placeholders: Vec<String> = (0..merchants.len())
            .map(|i| format!("${}", first + i))
            .collect();
        let sql = format!(
            "SELECT {key} AS k, COUNT(*) AS n, CAST(SUM(total_amount) AS BIGINT) AS amount FROM payouts \
             WHERE created_at >= $1 AND merchant IN ({}) GROUP BY k",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(since_ms);
        for value in extra {
            query = query.bind(value);
        }
        for merchant in merchants {
            query = query.bind(merchant.clone());
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| {
                let n = codec::count(r, "n")?;
                let amount = codec::fen_opt(r, "amount")?.unwrap_or_default();
                Ok((r.try_get::<K, _>("k")?, n, amount))
            })
            .collect()
    }

    /// The earliest time (ms) a record of `merchant` is due, if any.
    pub async fn next_due(&self, merchant: &str) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(due_at) FROM payouts WHERE merchant = $1 AND due_at IS NOT NULL",
        )
        .bind(merchant)
        .fetch_one(self.db.pool())
        .await?)
    }
}
