//! Merchants' pauses (written before the outcome that caused them), and
//! paused campaigns.

use sqlx::{AssertSqlSafe, Row};

use super::Ledger;
use super::db::DbError;
use crate::model::{Pause, PauseKind, from_ms};

impl Ledger {
    /// Stops a merchant's payouts (keeps the first reason if already paused).
    pub async fn pause(
        &self,
        merchant: &str,
        reason: PauseKind,
        err_code: Option<&str>,
        message: &str,
    ) -> Result<(), DbError> {
        let now = self.db.now_sql();
        let sql = format!(
            "INSERT INTO merchant_pauses (merchant, reason, err_code, message, paused_at) VALUES ($1, $2, $3, $4, {now}) \
             ON CONFLICT (merchant) DO NOTHING"
        );
        let args = (
            merchant.to_owned(),
            reason.as_str().to_owned(),
            err_code.map(str::to_owned),
            message.to_owned(),
        );
        self.db
            .write(|tx| {
                let (sql, args) = (sql.clone(), args.clone());
                Box::pin(async move {
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(args.0)
                        .bind(args.1)
                        .bind(args.2)
                        .bind(args.3)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Lets a merchant's payouts go on. Returns whether it was paused.
    pub async fn resume(&self, merchant: &str) -> Result<bool, DbError> {
        let merchant = merchant.to_owned();
        self.db
            .write(|tx| {
                let merchant = merchant.clone();
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM merchant_pauses WHERE merchant = $1")
                        .bind(merchant)
                        .execute(&mut **tx)
                        .await?;
                    Ok(done.rows_affected() > 0)
                })
            })
            .await
    }

    /// Every paused merchant.
    pub async fn pauses(&self) -> Result<Vec<Pause>, DbError> {
        let rows = sqlx::query("SELECT merchant, reason, err_code, message, paused_at FROM merchant_pauses ORDER BY merchant")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let corrupt = |what: String| DbError::Sqlx(sqlx::Error::Decode(what.into()));
                let reason: PauseKind =
                    r.try_get::<String, _>("reason")?.parse().map_err(corrupt)?;
                let err_code: Option<String> = r.try_get("err_code")?;
                // The words are made anew from the reason and the code, in
                // both languages (and for pauses stored by older versions).
                let words = err_code.as_deref().map(|c| {
                    let c = hongbao_wxpay::ErrCode::parse(c);
                    (c.as_str().to_owned(), c.message(), c.zh_message())
                });
                let (message, zh_message) = reason.messages(
                    words
                        .as_ref()
                        .map(|(code, en, zh)| (code.as_str(), *en, *zh)),
                );
                Ok(Pause {
                    merchant: r.try_get("merchant")?,
                    reason,
                    err_code,
                    message,
                    zh_message,
                    paused_at: from_ms(r.try_get("paused_at")?),
                })
            })
            .collect()
    }

    /// Whether `merchant` is paused.
    pub async fn is_paused(&self, merchant: &str) -> Result<bool, DbError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT merchant FROM merchant_pauses WHERE merchant = $1")
                .bind(merchant)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(found.is_some())
    }

    /// The ids of the paused campaigns.
    pub async fn paused_campaigns(&self) -> Result<Vec<String>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM campaigns WHERE paused = 1")
                .fetch_all(self.db.pool())
                .await?,
        )
    }
}
