//! WeChat's callbacks for transfer bills, kept once per notification and
//! applied to their records in the same transaction; and the other news
//! of a bill told outside the dispatcher (a user's question, a cancel).

use sqlx::{AssertSqlSafe, Row};

use super::Ledger;
use super::codec;
use super::db::DbError;
use super::leases::apply_news;
use crate::model::{OrderState, Rail};

/// A verified, decrypted callback, as the store needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The merchant whose path it came to.
    pub merchant: String,
    /// WeChat's notification id (the same on every retry).
    pub id: String,
    /// The bill's number.
    pub out_bill_no: String,
    /// The bill's amount, if the resource has it.
    pub transfer_amount: Option<u64>,
    /// The payee, if the resource has it.
    pub openid: Option<String>,
    /// Where the bill stands.
    pub state: OrderState,
    /// The decrypted resource, kept as received.
    pub resource: String,
}

/// What storing a callback did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Noted {
    /// Applied to the record `id` (`changed`: whether the record moved).
    Applied {
        /// The record.
        id: String,
        /// Whether its status changed.
        changed: bool,
    },
    /// Seen before: nothing changed.
    Duplicate,
    /// No record of this merchant has the bill (or its amount or payee
    /// differ): kept for the operator, nothing changed.
    Unknown,
}

/// A callback no record took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownNotification {
    /// The merchant.
    pub merchant: String,
    /// WeChat's notification id.
    pub id: String,
    /// The bill's number.
    pub out_bill_no: String,
    /// WeChat's state of it.
    pub state: String,
    /// The decrypted resource.
    pub resource: String,
    /// How many times it came.
    pub times: u64,
}

impl Ledger {
    /// Keeps a verified callback and applies it to its record, in one
    /// transaction: once committed, it is durable; a duplicate or replay
    /// changes nothing.
    pub async fn record_notification(&self, n: &Notification) -> Result<Noted, DbError> {
        let now = self.db.now_sql();
        let n = n.clone();
        self.db
            .write(|tx| {
                let n = n.clone();
                Box::pin(async move {
                    let sql = format!(
                        "INSERT INTO transfer_notifications (merchant, id, out_bill_no, state, resource, received_at) \
                         VALUES ($1, $2, $3, $4, $5, {now}) \
                         ON CONFLICT (merchant, id) DO UPDATE SET times = transfer_notifications.times + 1 \
                         RETURNING times"
                    );
                    let times: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                        .bind(n.merchant.clone())
                        .bind(n.id.clone())
                        .bind(n.out_bill_no.clone())
                        .bind(n.state.wechat_status.clone())
                        .bind(n.resource.clone())
                        .fetch_one(&mut **tx)
                        .await?;
                    if times > 1 {
                        return Ok(Noted::Duplicate);
                    }
                    let row = sqlx::query(
                        "SELECT id, total_amount, re_openid FROM payouts \
                         WHERE merchant = $1 AND mch_billno = $2 AND rail = $3",
                    )
                    .bind(n.merchant.clone())
                    .bind(n.out_bill_no.clone())
                    .bind(Rail::Transfer.as_str())
                    .fetch_optional(&mut **tx)
                    .await?;
                    let Some(row) = row else {
                        return Ok(Noted::Unknown);
                    };
                    let id: String = row.try_get("id")?;
                    let amount = codec::fen(&row, "total_amount")?.get();
                    let openid: String = row.try_get("re_openid")?;
                    if n.transfer_amount.is_some_and(|a| a != amount)
                        || n.openid.as_deref().is_some_and(|o| o != openid)
                    {
                        return Ok(Noted::Unknown);
                    }
                    sqlx::query(
                        "UPDATE transfer_notifications SET payout_id = $1 WHERE merchant = $2 AND id = $3",
                    )
                    .bind(id.clone())
                    .bind(n.merchant.clone())
                    .bind(n.id.clone())
                    .execute(&mut **tx)
                    .await?;
                    // A callback tells a final state: it settles the record
                    // even before the create's answer is recorded.
                    let changed = n.state.is_final()
                        && apply_news(tx, now, &id, &n.state, true, None).await?;
                    Ok(Noted::Applied { id, changed })
                })
            })
            .await
    }

    /// Applies news of record `id`'s bill told outside the dispatcher (a
    /// user's question, a cancel's answer), following it again in
    /// `follow_in_ms` if it can still change. Returns whether it changed.
    pub async fn record_news(
        &self,
        id: &str,
        state: &OrderState,
        follow_in_ms: Option<i64>,
    ) -> Result<bool, DbError> {
        let now = self.db.now_sql();
        let (id, state) = (id.to_owned(), state.clone());
        self.db
            .write(|tx| {
                let (id, state) = (id.clone(), state.clone());
                Box::pin(async move { apply_news(tx, now, &id, &state, false, follow_in_ms).await })
            })
            .await
    }

    /// The callbacks of `merchants` that no record took, newest first.
    pub async fn unknown_notifications(
        &self,
        merchants: &[String],
        limit: u64,
    ) -> Result<Vec<UnknownNotification>, DbError> {
        if merchants.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = (0..merchants.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let sql = format!(
            "SELECT merchant, id, out_bill_no, state, resource, times FROM transfer_notifications \
             WHERE payout_id IS NULL AND merchant IN ({}) ORDER BY received_at DESC LIMIT $1",
            list.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(codec::to_db(limit));
        for m in merchants {
            query = query.bind(m.clone());
        }
        query
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(UnknownNotification {
                    merchant: row.try_get("merchant")?,
                    id: row.try_get("id")?,
                    out_bill_no: row.try_get("out_bill_no")?,
                    state: row.try_get("state")?,
                    resource: row.try_get("resource")?,
                    times: codec::count(row, "times")?,
                })
            })
            .collect()
    }
}
