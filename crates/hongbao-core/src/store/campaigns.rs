//! The SQL of campaigns.

use hongbao_wxpay::Fen;
use sqlx::{AssertSqlSafe, Row as _};

use super::codec;
use super::db::DbError;
use super::{Idempotency, Ledger, new_id};
use crate::model::{Campaign, CampaignOptions, Checked, Redpack, Totals, from_ms};

fn decode(row: &sqlx::any::AnyRow) -> Result<Campaign, DbError> {
    let options: String = row.try_get("options")?;
    let options =
        serde_json::from_str(&options).map_err(|e| DbError::Sqlx(sqlx::Error::Decode(e.into())))?;
    Ok(Campaign {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        merchant: row.try_get("merchant")?,
        file_sha256: row.try_get("file_sha256")?,
        options,
        rows: codec::count(row, "rows")?,
        total_amount: codec::fen(row, "total_amount")?,
        imported: codec::count(row, "imported")?,
        paused: row.try_get::<i64, _>("paused")? != 0,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

const CAMPAIGN_COLUMNS: &str = "id, tenant, name, merchant, file_sha256, options, rows, total_amount, imported, paused, created_at, updated_at";

/// Creates a campaign for a validated file.
pub async fn create(
    ledger: &Ledger,
    tenant: &str,
    name: &str,
    options: &CampaignOptions,
    checked: &Checked,
) -> Result<Campaign, DbError> {
    create_with_key(ledger, tenant, name, options, checked, None).await
}

/// Creates a campaign for a validated file, remembering the API caller's
/// idempotency key so that a retried upload finds the same campaign.
pub async fn create_with_key(
    ledger: &Ledger,
    tenant: &str,
    name: &str,
    options: &CampaignOptions,
    checked: &Checked,
    idempotency: Option<&Idempotency>,
) -> Result<Campaign, DbError> {
    let db = ledger.db();
    let sql = format!(
        "INSERT INTO campaigns (id, tenant, name, merchant, file_sha256, options, rows, total_amount, imported, paused, \
         idempotency_key, request_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $10, {now}, {now})",
        now = db.now_sql()
    );
    let id = new_id("cp");
    let args = vec![
        id.as_str().into(),
        tenant.into(),
        name.into(),
        options.merchant.as_str().into(),
        checked.sha256.as_str().into(),
        serde_json::to_string(options)
            .expect("options serialise")
            .into(),
        codec::to_db(checked.rows).into(),
        codec::to_db(checked.total.get()).into(),
        idempotency.map(|i| i.key.clone()).into(),
        idempotency.map(|i| i.request_hash.clone()).into(),
    ];
    db.execute(&sql, args).await?;
    get(ledger, &id)
        .await?
        .ok_or_else(|| DbError::Sqlx(sqlx::Error::RowNotFound))
}

/// A campaign by id.
pub async fn get(ledger: &Ledger, id: &str) -> Result<Option<Campaign>, DbError> {
    let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(ledger.db().pool())
        .await?;
    row.as_ref().map(decode).transpose()
}

/// A campaign by tenant and name.
pub async fn find(ledger: &Ledger, tenant: &str, name: &str) -> Result<Option<Campaign>, DbError> {
    let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE tenant = $1 AND name = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(name)
        .fetch_optional(ledger.db().pool())
        .await?;
    row.as_ref().map(decode).transpose()
}

/// Every tenant's campaigns named `name` (an operator's look-up: the CLI
/// sees the campaigns uploaded through the API too).
pub async fn find_in_any_tenant(ledger: &Ledger, name: &str) -> Result<Vec<Campaign>, DbError> {
    let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE name = $1 ORDER BY tenant");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(name)
        .fetch_all(ledger.db().pool())
        .await?;
    rows.iter().map(decode).collect()
}

/// A campaign by an API caller's idempotency key, with the hash of the
/// request that created it.
pub async fn find_by_key(
    ledger: &Ledger,
    tenant: &str,
    key: &str,
) -> Result<Option<(Campaign, Option<String>)>, DbError> {
    let sql = format!(
        "SELECT {CAMPAIGN_COLUMNS}, request_hash FROM campaigns WHERE tenant = $1 AND idempotency_key = $2"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(key)
        .fetch_optional(ledger.db().pool())
        .await?;
    match row {
        Some(row) => Ok(Some((decode(&row)?, row.try_get("request_hash")?))),
        None => Ok(None),
    }
}

/// The campaigns of these merchants, newest first.
pub async fn list(
    ledger: &Ledger,
    merchants: &[String],
    offset: u64,
    limit: u64,
) -> Result<Vec<Campaign>, DbError> {
    if merchants.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=merchants.len()).map(|i| format!("${i}")).collect();
    let n = merchants.len();
    let sql = format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE merchant IN ({}) ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
        placeholders.join(", "),
        n + 1,
        n + 2
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for m in merchants {
        query = query.bind(m.clone());
    }
    let rows = query
        .bind(codec::to_db(limit))
        .bind(codec::to_db(offset))
        .fetch_all(ledger.db().pool())
        .await?;
    rows.iter().map(decode).collect()
}

/// Pauses or resumes a campaign (its records are not claimed while paused).
pub async fn set_paused(ledger: &Ledger, id: &str, paused: bool) -> Result<(), DbError> {
    let db = ledger.db().clone();
    let sql = format!(
        "UPDATE campaigns SET paused = $1, updated_at = {} WHERE id = $2",
        db.now_sql()
    );
    let id = id.to_owned();
    db.write(|tx| {
        let (sql, id) = (sql.clone(), id.clone());
        Box::pin(async move {
            sqlx::query(AssertSqlSafe(sql))
                .bind(i64::from(paused))
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
    })
    .await
}

/// The campaign's totals now.
pub async fn totals(ledger: &Ledger, id: &str) -> Result<Totals, DbError> {
    let rows = sqlx::query(
        "SELECT status, err_code, COUNT(*) AS n, CAST(SUM(total_amount) AS BIGINT) AS amount FROM payouts WHERE campaign_id = $1 GROUP BY status, err_code",
    )
    .bind(id)
    .fetch_all(ledger.db().pool())
    .await?;
    let mut totals = Totals::default();
    for row in rows {
        let status: String = row.try_get("status")?;
        let n: u64 = codec::count(&row, "n")?;
        let amount = codec::fen_opt(&row, "amount")?.unwrap_or(Fen::ZERO).get();
        let entry = totals.by_status.entry(status.clone()).or_default();
        entry.0 += n;
        entry.1 += amount;
        if (status == "failed" || status == "cancelled")
            && let Some(code) = row.try_get::<Option<String>, _>("err_code")?
        {
            *totals.by_err_code.entry(code).or_default() += n;
        }
    }
    Ok(totals)
}

/// A campaign's records in file order, after line `after`, at most `limit`.
pub async fn records(
    ledger: &Ledger,
    id: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<(i64, Redpack)>, DbError> {
    // `LIMIT ($3 + 0)`: see the claim in `Ledger::new`.
    let rows = sqlx::query("SELECT id, campaign_line FROM payouts WHERE campaign_id = $1 AND campaign_line > $2 ORDER BY campaign_line LIMIT ($3 + 0)")
        .bind(id)
        .bind(after)
        .bind(codec::to_db(limit))
        .fetch_all(ledger.db().pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let record_id: String = row.try_get("id")?;
        if let Some(record) = ledger.get(&record_id).await? {
            out.push((row.try_get("campaign_line")?, record));
        }
    }
    Ok(out)
}
