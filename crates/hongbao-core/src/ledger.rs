//! The ledger: every red packet, its exact request, its attempts, and the
//! dispatch state that lets several dispatchers share it safely.
//!
//! The rules it keeps:
//! - a record and its mch_billno are stored in one transaction, before any
//!   attempt; the mch_billno comes from the merchant's daily sequence,
//!   dated by the record's creation day (database time, Beijing calendar);
//! - a dispatcher owns a record only through a lease decided by the
//!   database's clock, and writes an outcome only while the lease is its own;
//! - a record claimed while a previous owner may have been mid-call is
//!   queried (gethbinfo) before anything is sent again.

use hongbao_wxpay::{Api, BillnoDeployment, Fen, MchBillNo, MchId, Prepared, beijing_date};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row};

use crate::db::{Db, DbError, Dialect, Tx};
use crate::model::{Attempt, Kind, Redpack, Status, ValidRedpack, from_ms};

/// A caller's idempotency key and the hash of what it asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    /// The key (`Idempotency-Key`), unique per tenant.
    pub key: String,
    /// SHA-256 of the request, to tell a replay from a reuse.
    pub request_hash: String,
}

/// A payout to store.
#[derive(Clone, Debug)]
pub struct NewRecord {
    /// The tenant asking.
    pub tenant: String,
    /// The merchant's id (for the mch_billno).
    pub mch_id: MchId,
    /// The validated payout.
    pub valid: ValidRedpack,
    /// The caller's idempotency key.
    pub idempotency: Option<Idempotency>,
    /// The campaign it belongs to.
    pub campaign_id: Option<String>,
    /// Its line in the campaign's file.
    pub campaign_line: Option<i64>,
    /// The prize it pays.
    pub prize_id: Option<String>,
}

/// What storing a payout did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// A new record.
    Created(Redpack),
    /// The record stored earlier under the same idempotency key and request.
    Replayed(Redpack),
}

impl Stored {
    /// The record.
    pub fn record(&self) -> &Redpack {
        match self {
            Stored::Created(r) | Stored::Replayed(r) => r,
        }
    }
}

/// Why a payout could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The idempotency key was used before with another request.
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyConflict,
    /// The database cannot be reached.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Storing failed otherwise (a refused statement, an exhausted daily
    /// sequence of ten billion numbers).
    #[error("{0}")]
    Failed(String),
}

/// A record a dispatcher now owns.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The record.
    pub id: String,
    /// The merchant.
    pub merchant: String,
    /// The kind.
    pub kind: Kind,
    /// Its status when claimed.
    pub status: Status,
    /// The exact request to send.
    pub request: Prepared,
    /// Whether gethbinfo must come first.
    pub needs_query: bool,
    /// Whether a merchant-level refusal (balance, daily cap) came before.
    pub merchant_refused: bool,
    /// Retries so far.
    pub retries: u32,
    /// Creation time (ms), which dates its mch_billno.
    pub created_at_ms: i64,
    /// The previous outcome's err_code, if any.
    pub err_code: Option<String>,
    /// The prize it pays, if any: a final failure of a prize's payout is
    /// confirmed with gethbinfo, then makes the prize claimable again.
    pub prize_id: Option<String>,
    /// The campaign it belongs to, if any: not called while it is paused.
    pub campaign_id: Option<String>,
}

/// One call to WeChat, to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    /// The API called.
    pub api: Api,
    /// The mch_billno.
    pub mch_billno: String,
    /// When it started (ms since the epoch).
    pub started_at_ms: i64,
    /// How long it took.
    pub latency_ms: i64,
    /// What it meant.
    pub outcome: &'static str,
    /// WeChat's err_code.
    pub err_code: Option<String>,
    /// For people.
    pub detail: Option<String>,
    /// WeChat's answer as received.
    pub answer: Option<String>,
}

/// Where a claimed record goes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// WeChat has it.
    Sent {
        /// `sent`, or later if the query already showed it opened or refunded.
        status: Status,
        /// WeChat's order number.
        send_listid: Option<String>,
        /// WeChat's status.
        wechat_status: String,
        /// Refunded fen.
        refund_amount: Option<Fen>,
        /// The mini program package.
        package: Option<String>,
        /// When to ask gethbinfo next (ms from now); `None` if final.
        reconcile_in_ms: Option<i64>,
    },
    /// Try again later (also while the merchant is paused).
    Retry {
        /// `pending` if nothing can have reached WeChat, else `sending`.
        status: Status,
        /// How long to wait (ms).
        delay_ms: i64,
        /// Whether the next call must be gethbinfo.
        needs_query: bool,
        /// Whether this was a merchant-level refusal (balance, daily cap).
        merchant_refused: bool,
        /// The err_code seen, kept for the record.
        err_code: Option<String>,
    },
    /// A final failure.
    Failed {
        /// The err_code.
        err_code: String,
        /// In English.
        message: String,
        /// In Chinese.
        zh_message: String,
    },
    /// WeChat confirmed the old mch_billno FAILED after a merchant-level
    /// refusal: the payout goes on under a new mch_billno.
    Reissue,
}

/// The filter of a listing.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// The merchants the caller may see (empty: none).
    pub merchants: Vec<String>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only this receiver.
    pub re_openid: Option<String>,
    /// Only this mch_billno.
    pub mch_billno: Option<String>,
    /// Only this campaign.
    pub campaign_id: Option<String>,
    /// Created at or after (ms).
    pub created_from_ms: Option<i64>,
    /// Created before (ms).
    pub created_to_ms: Option<i64>,
}

/// A merchant whose payouts are stopped.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Pause {
    /// The merchant.
    pub merchant: String,
    /// `insufficient_balance`, `daily_cap`, `configuration`, or `operator`.
    pub reason: String,
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

/// Counts and sums by merchant and status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusTotal {
    /// The merchant.
    pub merchant: String,
    /// The status.
    pub status: Status,
    /// How many.
    pub count: u64,
    /// Their amount.
    pub amount: Fen,
}

/// Dispatch scope: which records a dispatcher may claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every record of the merchant.
    #[default]
    All,
    /// These records only (`hongbao send`).
    Records(Vec<String>),
    /// One campaign's records only (`hongbao campaign run`).
    Campaign(String),
}

const COLUMNS: &str = "id, tenant, merchant, mch_id, kind, status, mch_billno, re_openid, total_amount, total_num, \
    send_name, wishing, act_name, remark, scene_id, request, send_listid, wechat_status, refund_amount, package, \
    err_code, message, zh_message, attempts, campaign_id, prize_id, created_at, updated_at";

fn decode(row: &AnyRow) -> Result<Redpack, DbError> {
    let text = |col: &str| -> Result<String, DbError> { Ok(row.try_get::<String, _>(col)?) };
    let opt = |col: &str| -> Result<Option<String>, DbError> {
        Ok(row.try_get::<Option<String>, _>(col)?)
    };
    let int = |col: &str| -> Result<i64, DbError> { Ok(row.try_get::<i64, _>(col)?) };
    let corrupt = |what: String| DbError::Sqlx(sqlx::Error::Decode(what.into()));
    let request: Prepared = serde_json::from_str(&text("request")?)
        .map_err(|e| corrupt(format!("stored request: {e}")))?;
    Ok(Redpack {
        id: text("id")?,
        tenant: text("tenant")?,
        merchant: text("merchant")?,
        mch_id: text("mch_id")?,
        kind: text("kind")?
            .parse()
            .map_err(|e: hongbao_wxpay::InvalidField| corrupt(e.message))?,
        status: text("status")?
            .parse()
            .map_err(|e: hongbao_wxpay::InvalidField| corrupt(e.message))?,
        mch_billno: text("mch_billno")?,
        re_openid: text("re_openid")?,
        total_amount: Fen::new(u64::try_from(int("total_amount")?).unwrap_or(0)),
        total_num: u32::try_from(int("total_num")?).unwrap_or(1),
        send_name: text("send_name")?,
        wishing: text("wishing")?,
        act_name: text("act_name")?,
        remark: text("remark")?,
        scene_id: opt("scene_id")?,
        send_listid: opt("send_listid")?,
        wechat_status: opt("wechat_status")?,
        refund_amount: row
            .try_get::<Option<i64>, _>("refund_amount")?
            .map(|v| Fen::new(u64::try_from(v).unwrap_or(0))),
        package: opt("package")?,
        err_code: opt("err_code")?,
        message: opt("message")?,
        zh_message: opt("zh_message")?,
        attempts: u32::try_from(int("attempts")?).unwrap_or(0),
        campaign_id: opt("campaign_id")?,
        prize_id: opt("prize_id")?,
        created_at: from_ms(int("created_at")?),
        updated_at: from_ms(int("updated_at")?),
        request,
    })
}

/// A new record id: `rp_` and a ULID (time-ordered, unique across processes).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::generate())
}

fn fen(value: Fen) -> i64 {
    i64::try_from(value.get()).unwrap_or(i64::MAX)
}

/// The ledger.
#[derive(Clone, Debug)]
pub struct Ledger {
    db: Db,
    claim_sql: String,
}

impl Ledger {
    /// A ledger on `db` (migrated).
    pub fn new(db: Db) -> Ledger {
        let lock = match db.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let now = db.now_sql();
        // Claim in one statement: SET sees the old in_flight, so a record
        // left mid-call by a vanished owner must be queried first. A paused
        // merchant's records are never claimed: the pause is written before
        // the outcome that caused it, so a claim that sees the record due
        // again also sees the pause.
        let claim_sql = format!(
            "UPDATE redpacks SET needs_query = CASE WHEN in_flight = 1 THEN 1 ELSE needs_query END, \
             in_flight = 1, lease_owner = $1, lease_until = {now} + $2 \
             WHERE id IN (SELECT id FROM redpacks WHERE merchant = $3 AND due_at <= {now} \
               AND (lease_until IS NULL OR lease_until < {now}) {{scope}} \
               AND NOT EXISTS (SELECT 1 FROM merchant_pauses WHERE merchant_pauses.merchant = $3) \
               AND (campaign_id IS NULL OR campaign_id NOT IN (SELECT id FROM campaigns WHERE paused = 1)) \
               ORDER BY due_at LIMIT $4{lock}) \
             RETURNING id, merchant, kind, status, request, needs_query, merchant_refused, retries, created_at, err_code, prize_id, campaign_id"
        );
        Ledger { db, claim_sql }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Stores payouts in one transaction (group commit), each with its
    /// mch_billno; a replayed idempotency key returns the stored record.
    pub async fn store(
        &self,
        batch: Vec<NewRecord>,
    ) -> Result<Vec<Result<Stored, StoreError>>, DbError> {
        self.store_with_progress(batch, None).await
    }

    /// As [`Ledger::store`], and in the same transaction records that
    /// campaign `progress.0` has `progress.1` rows imported, so that an
    /// interrupted import goes on exactly where it stopped.
    pub async fn store_with_progress(
        &self,
        batch: Vec<NewRecord>,
        progress: Option<(String, i64)>,
    ) -> Result<Vec<Result<Stored, StoreError>>, DbError> {
        let db = self.db.clone();
        let batch = std::sync::Arc::new(batch);
        let keyed = batch.iter().any(|r| r.idempotency.is_some());
        // Another process may store the same idempotency key between our
        // look-up and our insert (PostgreSQL does not serialise the two
        // transactions as SQLite's one writer does): its commit makes ours
        // fail on the unique key, and the batch again finds its record.
        let mut tries = 0;
        loop {
            tries += 1;
            let result = self.store_once(&db, &batch, progress.clone()).await;
            match result {
                Err(e) if keyed && tries < 3 && e.is_unique_violation() => continue,
                other => return other,
            }
        }
    }

    async fn store_once(
        &self,
        db: &Db,
        batch: &std::sync::Arc<Vec<NewRecord>>,
        progress: Option<(String, i64)>,
    ) -> Result<Vec<Result<Stored, StoreError>>, DbError> {
        let (db, batch) = (db.clone(), batch.clone());
        self.db
            .write(move |tx| {
                let (db, batch, progress) = (db.clone(), batch.clone(), progress.clone());
                Box::pin(async move {
                    let stored = store_in(&db, tx, &batch).await?;
                    if let Some((campaign, imported)) = progress {
                        let sql = format!(
                            "UPDATE campaigns SET imported = $1, updated_at = {} WHERE id = $2",
                            db.now_sql()
                        );
                        sqlx::query(AssertSqlSafe(sql))
                            .bind(imported)
                            .bind(campaign)
                            .execute(&mut **tx)
                            .await?;
                    }
                    Ok(stored)
                })
            })
            .await
    }

    /// One record.
    pub async fn get(&self, id: &str) -> Result<Option<Redpack>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM redpacks WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// One record by its mch_billno (among `merchants`).
    pub async fn get_by_billno(
        &self,
        merchants: &[String],
        mch_billno: &str,
    ) -> Result<Option<Redpack>, DbError> {
        let filter = ListFilter {
            merchants: merchants.to_vec(),
            mch_billno: Some(mch_billno.to_owned()),
            ..ListFilter::default()
        };
        Ok(self.list(&filter, 0, 1).await?.0.into_iter().next())
    }

    /// Records matching `filter`, newest first, and how many match in all.
    pub async fn list(
        &self,
        filter: &ListFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Redpack>, u64), DbError> {
        if filter.merchants.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let mut clauses = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut placeholders = Vec::new();
        for merchant in &filter.merchants {
            binds.push(Bind::Text(merchant.clone()));
            placeholders.push(format!("${}", binds.len()));
        }
        clauses.push(format!("merchant IN ({})", placeholders.join(", ")));
        let mut eq = |column: &str, value: Option<Bind>, binds: &mut Vec<Bind>| {
            if let Some(value) = value {
                binds.push(value);
                clauses.push(format!("{column} ${}", binds.len()));
            }
        };
        eq(
            "status =",
            filter.status.map(|s| Bind::Text(s.as_str().to_owned())),
            &mut binds,
        );
        eq(
            "re_openid =",
            filter.re_openid.clone().map(Bind::Text),
            &mut binds,
        );
        eq(
            "mch_billno =",
            filter.mch_billno.clone().map(Bind::Text),
            &mut binds,
        );
        eq(
            "campaign_id =",
            filter.campaign_id.clone().map(Bind::Text),
            &mut binds,
        );
        eq(
            "created_at >=",
            filter.created_from_ms.map(Bind::Int),
            &mut binds,
        );
        eq(
            "created_at <",
            filter.created_to_ms.map(Bind::Int),
            &mut binds,
        );
        let wh = clauses.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) FROM redpacks WHERE {wh}");
        let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
        for b in &binds {
            count = b.bind_scalar(count);
        }
        let total = count.fetch_one(self.db.pool()).await?;
        let n = binds.len();
        let sql = format!(
            "SELECT {COLUMNS} FROM redpacks WHERE {wh} ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            query = b.bind(query);
        }
        let rows = query
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(self.db.pool())
            .await?;
        let records = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok((records, u64::try_from(total).unwrap_or(0)))
    }

    /// The attempts of a record, oldest first.
    pub async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, DbError> {
        let rows = sqlx::query(
            "SELECT api, mch_billno, started_at, latency_ms, outcome, err_code, detail, answer \
             FROM attempts WHERE redpack_id = $1 ORDER BY started_at, id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Attempt {
                    api: row.try_get("api")?,
                    mch_billno: row.try_get("mch_billno")?,
                    started_at: from_ms(row.try_get("started_at")?),
                    latency_ms: u64::try_from(row.try_get::<i64, _>("latency_ms")?).unwrap_or(0),
                    outcome: row.try_get("outcome")?,
                    err_code: row.try_get("err_code")?,
                    detail: row.try_get("detail")?,
                    answer: row.try_get("answer")?,
                })
            })
            .collect()
    }

    /// Claims up to `limit` due records of `merchant` for `owner`, leased
    /// for `lease_ms` of database time.
    pub async fn claim(
        &self,
        owner: &str,
        merchant: &str,
        scope: &Scope,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<Claimed>, DbError> {
        let (scope_sql, scope_binds): (String, Vec<String>) = match scope {
            Scope::All => (String::new(), Vec::new()),
            Scope::Campaign(id) => ("AND campaign_id = $5".to_owned(), vec![id.clone()]),
            Scope::Records(ids) => {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 5)).collect();
                (format!("AND id IN ({})", list.join(", ")), ids.clone())
            }
        };
        let sql = self.claim_sql.replace("{scope}", &scope_sql);
        let owner = owner.to_owned();
        let merchant = merchant.to_owned();
        let rows = self
            .db
            .write(|tx| {
                let (sql, owner, merchant, scope_binds) = (
                    sql.clone(),
                    owner.clone(),
                    merchant.clone(),
                    scope_binds.clone(),
                );
                Box::pin(async move {
                    let mut query = sqlx::query(AssertSqlSafe(sql))
                        .bind(owner)
                        .bind(lease_ms)
                        .bind(merchant)
                        .bind(i64::from(limit));
                    for b in scope_binds {
                        query = query.bind(b);
                    }
                    Ok(query.fetch_all(&mut **tx).await?)
                })
            })
            .await?;
        rows.iter()
            .map(|row| {
                let request: String = row.try_get("request")?;
                let corrupt = |what: String| DbError::Sqlx(sqlx::Error::Decode(what.into()));
                Ok(Claimed {
                    id: row.try_get("id")?,
                    merchant: row.try_get("merchant")?,
                    kind: row
                        .try_get::<String, _>("kind")?
                        .parse()
                        .map_err(|e: hongbao_wxpay::InvalidField| corrupt(e.message))?,
                    status: row
                        .try_get::<String, _>("status")?
                        .parse()
                        .map_err(|e: hongbao_wxpay::InvalidField| corrupt(e.message))?,
                    request: serde_json::from_str(&request)
                        .map_err(|e| corrupt(format!("stored request: {e}")))?,
                    needs_query: row.try_get::<i64, _>("needs_query")? != 0,
                    merchant_refused: row.try_get::<i64, _>("merchant_refused")? != 0,
                    retries: u32::try_from(row.try_get::<i64, _>("retries")?).unwrap_or(u32::MAX),
                    created_at_ms: row.try_get("created_at")?,
                    err_code: row.try_get("err_code")?,
                    prize_id: row.try_get("prize_id")?,
                    campaign_id: row.try_get("campaign_id")?,
                })
            })
            .collect()
    }

    /// Records the outcomes of claimed records (one transaction), each only
    /// while `owner` still holds its lease. Attempts are kept either way.
    /// Returns, per outcome, whether the record was updated.
    pub async fn record(
        &self,
        owner: &str,
        outcomes: std::sync::Arc<Vec<(Claimed, Transition, Vec<AttemptRow>)>>,
    ) -> Result<Vec<bool>, DbError> {
        let now = self.db.now_sql();
        let owner = owner.to_owned();
        let deployment = self.db.billno_deployment().clone();
        self.db
            .write(|tx| {
                let (owner, outcomes, deployment) =
                    (owner.clone(), outcomes.clone(), deployment.clone());
                Box::pin(async move {
                    let mut applied = Vec::with_capacity(outcomes.len());
                    for (claimed, transition, attempts) in outcomes.iter() {
                        for attempt in attempts {
                            insert_attempt(tx, &claimed.id, attempt).await?;
                        }
                        let sends = i64::try_from(
                            attempts.iter().filter(|a| a.api != Api::GetHbInfo).count(),
                        )
                        .unwrap_or(0);
                        let done =
                            apply(tx, now, &deployment, &owner, claimed, transition, sends).await?;
                        if done {
                            crate::prize::on_outcome(tx, now, claimed, transition).await?;
                        }
                        applied.push(done);
                    }
                    Ok(applied)
                })
            })
            .await
    }

    /// Records found due for reconciliation (`sent`, `refunding`) whose next
    /// gethbinfo is due, leased to `owner`.
    pub async fn claim_reconcile(
        &self,
        owner: &str,
        merchant: &str,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<(String, String, i64, i64)>, DbError> {
        let now = self.db.now_sql();
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE redpacks SET lease_owner = $1, lease_until = {now} + $2 \
             WHERE id IN (SELECT id FROM redpacks WHERE merchant = $3 AND reconcile_at <= {now} \
               AND (lease_until IS NULL OR lease_until < {now}) ORDER BY reconcile_at LIMIT $4{lock}) \
             RETURNING id, mch_billno, reconciles, created_at"
        );
        let (owner, merchant) = (owner.to_owned(), merchant.to_owned());
        let rows = self
            .db
            .write(|tx| {
                let (sql, owner, merchant) = (sql.clone(), owner.clone(), merchant.clone());
                Box::pin(async move {
                    Ok(sqlx::query(AssertSqlSafe(sql))
                        .bind(owner)
                        .bind(lease_ms)
                        .bind(merchant)
                        .bind(i64::from(limit))
                        .fetch_all(&mut **tx)
                        .await?)
                })
            })
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("mch_billno")?,
                    r.try_get("reconciles")?,
                    r.try_get("created_at")?,
                ))
            })
            .collect()
    }

    /// Writes what reconciliation learnt: the new status (if WeChat's
    /// moved) and when to ask next (`None`: never again).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_reconcile(
        &self,
        owner: &str,
        id: &str,
        status: Option<Status>,
        wechat_status: Option<&str>,
        refund_amount: Option<Fen>,
        next_in_ms: Option<i64>,
        attempt: &AttemptRow,
    ) -> Result<bool, DbError> {
        let now = self.db.now_sql();
        let sql = format!(
            "UPDATE redpacks SET status = COALESCE($1, status), wechat_status = COALESCE($2, wechat_status), \
             refund_amount = COALESCE($3, refund_amount), reconcile_at = CASE WHEN $4 < 0 THEN NULL ELSE {now} + $4 END, \
             reconciles = reconciles + 1, lease_owner = NULL, lease_until = NULL, updated_at = {now} \
             WHERE id = $5 AND lease_owner = $6 AND lease_until >= {now}"
        );
        let (owner, id) = (owner.to_owned(), id.to_owned());
        let (status, wechat_status) = (
            status.map(|s| s.as_str().to_owned()),
            wechat_status.map(str::to_owned),
        );
        self.db
            .write(|tx| {
                let (sql, owner, id, status, wechat_status) = (
                    sql.clone(),
                    owner.clone(),
                    id.clone(),
                    status.clone(),
                    wechat_status.clone(),
                );
                let attempt = attempt.clone();
                Box::pin(async move {
                    insert_attempt(tx, &id, &attempt).await?;
                    let done = sqlx::query(AssertSqlSafe(sql))
                        .bind(status)
                        .bind(wechat_status)
                        .bind(refund_amount.map(fen))
                        .bind(next_in_ms.unwrap_or(-1))
                        .bind(id)
                        .bind(owner)
                        .execute(&mut **tx)
                        .await?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    /// Keeps a call made for record `id` outside the dispatcher (a user's
    /// `gethbinfo`).
    pub async fn add_attempt(&self, id: &str, attempt: AttemptRow) -> Result<(), DbError> {
        let (id, attempt) = (id.to_owned(), std::sync::Arc::new(attempt));
        self.db
            .write(|tx| {
                let (id, attempt) = (id.clone(), attempt.clone());
                Box::pin(async move { insert_attempt(tx, &id, &attempt).await })
            })
            .await
    }

    /// Updates a record from a gethbinfo answer asked for by a user
    /// (`status` endpoint, `hongbao status`), outside any lease: only
    /// statuses that can only move forward are written.
    pub async fn record_wechat_status(
        &self,
        id: &str,
        status: Status,
        wechat_status: &str,
        send_listid: Option<&str>,
        refund_amount: Option<Fen>,
    ) -> Result<(), DbError> {
        let now = self.db.now_sql();
        // Only a sent packet moves on this way: a pending or sending record is
        // the dispatcher's to settle (it queries before sending again).
        let sql = format!(
            "UPDATE redpacks SET status = $1, wechat_status = $2, send_listid = COALESCE(send_listid, $3), \
             refund_amount = COALESCE($4, refund_amount), updated_at = {now}, \
             reconcile_at = CASE WHEN $1 IN ('received', 'refunded') THEN NULL ELSE reconcile_at END \
             WHERE id = $5 AND status IN ('sent', 'refunding')"
        );
        let id = id.to_owned();
        let (wechat_status, send_listid) =
            (wechat_status.to_owned(), send_listid.map(str::to_owned));
        self.db
            .write(|tx| {
                let (sql, id, wechat_status, send_listid) = (
                    sql.clone(),
                    id.clone(),
                    wechat_status.clone(),
                    send_listid.clone(),
                );
                Box::pin(async move {
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(status.as_str())
                        .bind(wechat_status)
                        .bind(send_listid)
                        .bind(refund_amount.map(fen))
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Hands back every lease `owner` holds (on shutdown): the records are
    /// claimable at once, and queried first if they were mid-call.
    pub async fn release(&self, owner: &str) -> Result<u64, DbError> {
        let owner = owner.to_owned();
        self.db
            .write(|tx| {
                let owner = owner.clone();
                Box::pin(async move {
                    let done = sqlx::query("UPDATE redpacks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1")
                        .bind(owner)
                        .execute(&mut **tx)
                        .await?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }

    /// Stops a merchant's payouts (keeps the first reason if already paused).
    pub async fn pause(
        &self,
        merchant: &str,
        reason: &str,
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
            reason.to_owned(),
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
                let reason: String = r.try_get("reason")?;
                let err_code: Option<String> = r.try_get("err_code")?;
                let stored: String = r.try_get("message")?;
                let (message, zh_message) =
                    crate::decide::pause_messages(&reason, err_code.as_deref())
                        .unwrap_or_else(|| (stored.clone(), stored));
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

    /// Counts and amounts by merchant and status.
    pub async fn totals(&self) -> Result<Vec<StatusTotal>, DbError> {
        let rows = sqlx::query(
            "SELECT merchant, status, COUNT(*) AS n, CAST(SUM(total_amount) AS BIGINT) AS amount FROM redpacks GROUP BY merchant, status",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(StatusTotal {
                    merchant: r.try_get("merchant")?,
                    status: status.parse().unwrap_or(Status::Pending),
                    count: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                    amount: Fen::new(
                        u64::try_from(r.try_get::<Option<i64>, _>("amount")?.unwrap_or(0))
                            .unwrap_or(0),
                    ),
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
                Ok((status.parse().unwrap_or(Status::Pending), n, amount))
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
            "SELECT {key} AS k, COUNT(*) AS n, CAST(SUM(total_amount) AS BIGINT) AS amount FROM redpacks \
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
                let n = u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0);
                let amount = r.try_get::<Option<i64>, _>("amount")?.unwrap_or(0);
                Ok((
                    r.try_get::<K, _>("k")?,
                    n,
                    Fen::new(u64::try_from(amount).unwrap_or(0)),
                ))
            })
            .collect()
    }

    /// The earliest time (ms) a record of `merchant` is due, if any.
    pub async fn next_due(&self, merchant: &str) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(due_at) FROM redpacks WHERE merchant = $1 AND due_at IS NOT NULL",
        )
        .bind(merchant)
        .fetch_one(self.db.pool())
        .await?)
    }
}

/// A value to bind, in order.
#[derive(Clone, Debug)]
enum Bind {
    Text(String),
    Int(i64),
}

impl Bind {
    fn bind<'q>(
        &self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
        match self {
            Bind::Text(s) => q.bind(s.clone()),
            Bind::Int(i) => q.bind(*i),
        }
    }

    fn bind_scalar<'q, O>(
        &self,
        q: sqlx::query::QueryScalar<'q, Any, O, sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryScalar<'q, Any, O, sqlx::any::AnyArguments> {
        match self {
            Bind::Text(s) => q.bind(s.clone()),
            Bind::Int(i) => q.bind(*i),
        }
    }
}

async fn insert_attempt(tx: &mut Tx, redpack_id: &str, a: &AttemptRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO attempts (id, redpack_id, api, mch_billno, started_at, latency_ms, outcome, err_code, detail, answer) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new_id("at"))
    .bind(redpack_id)
    .bind(a.api.name())
    .bind(a.mch_billno.clone())
    .bind(a.started_at_ms)
    .bind(a.latency_ms)
    .bind(a.outcome)
    .bind(a.err_code.clone())
    .bind(a.detail.clone())
    .bind(a.answer.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Allocates `count` numbers of `mch_id`'s sequence for `day`; returns the first.
async fn allocate(tx: &mut Tx, mch_id: &str, day: &str, count: i64) -> Result<i64, DbError> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO billno_sequences (mch_id, day, last) VALUES ($1, $2, $3) \
         ON CONFLICT (mch_id, day) DO UPDATE SET last = billno_sequences.last + $3 RETURNING last",
    )
    .bind(mch_id)
    .bind(day)
    .bind(count)
    .fetch_one(&mut **tx)
    .await?;
    Ok(last - count + 1)
}

pub(crate) fn day_of(ms: i64) -> (time::Date, String) {
    let date = beijing_date(from_ms(ms));
    let text = format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    (date, text)
}

/// What storing decided for one item of a batch.
enum Slot {
    /// Settled without a new row (a replay or a conflict).
    Done(Box<Result<Stored, StoreError>>),
    /// The same idempotency key as an earlier item of the batch.
    SameAs(usize),
    /// A new row.
    Fresh,
}

pub(crate) async fn store_in(
    db: &Db,
    tx: &mut Tx,
    batch: &[NewRecord],
) -> Result<Vec<Result<Stored, StoreError>>, DbError> {
    let now_sql = format!("SELECT {}", db.now_sql());
    let now: i64 = sqlx::query_scalar(AssertSqlSafe(now_sql))
        .fetch_one(&mut **tx)
        .await?;
    let (date, day) = day_of(now);

    // Replays of idempotency keys first: they need no number.
    let mut slots = Vec::with_capacity(batch.len());
    for (i, record) in batch.iter().enumerate() {
        let Some(idem) = &record.idempotency else {
            slots.push(Slot::Fresh);
            continue;
        };
        let sql = format!(
            "SELECT {COLUMNS}, request_hash FROM redpacks WHERE tenant = $1 AND idempotency_key = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(record.tenant.clone())
            .bind(idem.key.clone())
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(row) = row {
            let hash: Option<String> = row.try_get("request_hash")?;
            let result = if hash.as_deref() == Some(idem.request_hash.as_str()) {
                Ok(Stored::Replayed(decode(&row)?))
            } else {
                Err(StoreError::IdempotencyConflict)
            };
            slots.push(Slot::Done(Box::new(result)));
            continue;
        }
        let earlier = (0..i).find(|&j| {
            matches!(slots[j], Slot::Fresh)
                && batch[j].tenant == record.tenant
                && batch[j].idempotency.as_ref().map(|x| &x.key) == Some(&idem.key)
        });
        slots.push(earlier.map_or(Slot::Fresh, Slot::SameAs));
    }

    // One range of numbers per merchant.
    let mut next: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (i, slot) in slots.iter().enumerate() {
        if matches!(slot, Slot::Fresh) {
            *next.entry(batch[i].mch_id.as_str()).or_default() += 1;
        }
    }
    for (mch_id, count) in next.iter_mut() {
        *count = allocate(tx, mch_id, &day, *count).await?;
    }

    let mut out: Vec<Result<Stored, StoreError>> = Vec::with_capacity(batch.len());
    for (i, slot) in slots.into_iter().enumerate() {
        let record = &batch[i];
        let result = match slot {
            Slot::Done(result) => *result,
            Slot::SameAs(j) => match (&out[j], &record.idempotency, &batch[j].idempotency) {
                (Ok(first), Some(a), Some(b)) if a.request_hash == b.request_hash => {
                    Ok(Stored::Replayed(first.record().clone()))
                }
                _ => Err(StoreError::IdempotencyConflict),
            },
            Slot::Fresh => {
                let seq = next
                    .get_mut(record.mch_id.as_str())
                    .expect("allocated above");
                let sequence = u64::try_from(*seq).unwrap_or(0);
                *seq += 1;
                insert_new(tx, record, date, db.billno_deployment(), sequence, now).await?
            }
        };
        out.push(result);
    }
    Ok(out)
}

async fn insert_new(
    tx: &mut Tx,
    record: &NewRecord,
    date: time::Date,
    deployment: &BillnoDeployment,
    sequence: u64,
    now: i64,
) -> Result<Result<Stored, StoreError>, DbError> {
    let mch_billno = match MchBillNo::generate_for(&record.mch_id, date, deployment, sequence) {
        Ok(b) => b,
        Err(e) => return Ok(Err(StoreError::Failed(e.message))),
    };
    let request = match record
        .valid
        .prepared(&mch_billno, &hongbao_wxpay::nonce_str())
    {
        Ok(r) => r,
        Err(e) => return Ok(Err(StoreError::Failed(e.to_string()))),
    };
    let id = new_id("rp");
    let v = &record.valid;
    sqlx::query(
        "INSERT INTO redpacks (id, tenant, merchant, mch_id, kind, status, mch_billno, re_openid, total_amount, total_num, \
         send_name, wishing, act_name, remark, scene_id, request, campaign_id, prize_id, idempotency_key, request_hash, \
         created_at, updated_at, due_at, campaign_line) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $20, $21)",
    )
    .bind(id.clone())
    .bind(record.tenant.clone())
    .bind(v.merchant.clone())
    .bind(record.mch_id.as_str().to_owned())
    .bind(v.kind.as_str())
    .bind(mch_billno.as_str().to_owned())
    .bind(v.re_openid.as_str().to_owned())
    .bind(fen(v.total_amount))
    .bind(i64::from(v.total_num))
    .bind(v.send_name.clone())
    .bind(v.wishing.clone())
    .bind(v.act_name.clone())
    .bind(v.remark.clone())
    .bind(v.scene_id.map(|s| s.as_str().to_owned()))
    .bind(serde_json::to_string(&request).expect("a request serialises"))
    .bind(record.campaign_id.clone())
    .bind(record.prize_id.clone())
    .bind(record.idempotency.as_ref().map(|x| x.key.clone()))
    .bind(record.idempotency.as_ref().map(|x| x.request_hash.clone()))
    .bind(now)
    .bind(record.campaign_line)
    .execute(&mut **tx)
    .await?;
    Ok(Ok(Stored::Created(Redpack {
        id,
        tenant: record.tenant.clone(),
        merchant: v.merchant.clone(),
        mch_id: record.mch_id.as_str().to_owned(),
        kind: v.kind,
        status: Status::Pending,
        mch_billno: mch_billno.as_str().to_owned(),
        re_openid: v.re_openid.as_str().to_owned(),
        total_amount: v.total_amount,
        total_num: v.total_num,
        send_name: v.send_name.clone(),
        wishing: v.wishing.clone(),
        act_name: v.act_name.clone(),
        remark: v.remark.clone(),
        scene_id: v.scene_id.map(|s| s.as_str().to_owned()),
        send_listid: None,
        wechat_status: None,
        refund_amount: None,
        package: None,
        err_code: None,
        message: None,
        zh_message: None,
        attempts: 0,
        campaign_id: record.campaign_id.clone(),
        prize_id: record.prize_id.clone(),
        created_at: from_ms(now),
        updated_at: from_ms(now),
        request,
    })))
}

async fn apply(
    tx: &mut Tx,
    now: &str,
    deployment: &BillnoDeployment,
    owner: &str,
    claimed: &Claimed,
    transition: &Transition,
    sends: i64,
) -> Result<bool, DbError> {
    let lease = format!("WHERE id = $1 AND lease_owner = $2 AND lease_until >= {now}");
    let release = format!(
        "in_flight = 0, lease_owner = NULL, lease_until = NULL, updated_at = {now}, attempts = attempts + $3"
    );
    let done = match transition {
        Transition::Sent {
            status,
            send_listid,
            wechat_status,
            refund_amount,
            package,
            reconcile_in_ms,
        } => {
            let sql = format!(
                "UPDATE redpacks SET status = $4, send_listid = COALESCE($5, send_listid), wechat_status = $6, \
                 refund_amount = $7, package = COALESCE($8, package), err_code = NULL, message = NULL, zh_message = NULL, \
                 due_at = NULL, needs_query = 0, retries = 0, \
                 reconcile_at = CASE WHEN $9 < 0 THEN NULL ELSE {now} + $9 END, {release} {lease}"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(claimed.id.clone())
                .bind(owner.to_owned())
                .bind(sends)
                .bind(status.as_str())
                .bind(send_listid.clone())
                .bind(wechat_status.clone())
                .bind(refund_amount.map(fen))
                .bind(package.clone())
                .bind(reconcile_in_ms.unwrap_or(-1))
                .execute(&mut **tx)
                .await?
        }
        Transition::Retry {
            status,
            delay_ms,
            needs_query,
            merchant_refused,
            err_code,
        } => {
            // The words of the err_code seen, for whoever looks at the
            // record meanwhile (e.g. why it waits: the balance is too low).
            let words = err_code.as_deref().map(hongbao_wxpay::ErrCode::parse);
            let sql = format!(
                "UPDATE redpacks SET status = $4, due_at = {now} + $5, needs_query = $6, \
                 merchant_refused = CASE WHEN $7 = 1 THEN 1 ELSE merchant_refused END, \
                 err_code = COALESCE($8, err_code), message = COALESCE($9, message), \
                 zh_message = COALESCE($10, zh_message), retries = retries + 1, {release} {lease}"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(claimed.id.clone())
                .bind(owner.to_owned())
                .bind(sends)
                .bind(status.as_str())
                .bind(*delay_ms)
                .bind(i64::from(*needs_query))
                .bind(i64::from(*merchant_refused))
                .bind(err_code.clone())
                .bind(words.as_ref().map(|c| c.message().to_owned()))
                .bind(words.as_ref().map(|c| c.zh_message().to_owned()))
                .execute(&mut **tx)
                .await?
        }
        Transition::Failed {
            err_code,
            message,
            zh_message,
        } => {
            let sql = format!(
                "UPDATE redpacks SET status = 'failed', err_code = $4, message = $5, zh_message = $6, due_at = NULL, \
                 needs_query = 0, {release} {lease}"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(claimed.id.clone())
                .bind(owner.to_owned())
                .bind(sends)
                .bind(err_code.clone())
                .bind(message.clone())
                .bind(zh_message.clone())
                .execute(&mut **tx)
                .await?
        }
        Transition::Reissue => {
            let mch_id = claimed
                .request
                .params()
                .get("mch_id")
                .unwrap_or_default()
                .to_owned();
            let (date, day) = day_of(claimed.created_at_ms);
            let sequence = allocate(tx, &mch_id, &day, 1).await?;
            let mch_id = MchId::parse(&mch_id)
                .map_err(|e| DbError::Sqlx(sqlx::Error::Decode(e.message.into())))?;
            let billno = MchBillNo::generate_for(
                &mch_id,
                date,
                deployment,
                u64::try_from(sequence).unwrap_or(0),
            )
            .map_err(|e| DbError::Sqlx(sqlx::Error::Decode(e.message.into())))?;
            let mut params = claimed.request.params().clone();
            params.insert("mch_billno", billno.as_str());
            params.insert("nonce_str", hongbao_wxpay::nonce_str());
            let request = Prepared::from_parts(claimed.request.api(), params)
                .map_err(|e| DbError::Sqlx(sqlx::Error::Decode(e.message.into())))?;
            let sql = format!(
                "UPDATE redpacks SET mch_billno = $4, request = $5, status = 'pending', due_at = {now}, needs_query = 0, \
                 merchant_refused = 0, retries = 0, err_code = NULL, {release} {lease}"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(claimed.id.clone())
                .bind(owner.to_owned())
                .bind(sends)
                .bind(billno.as_str().to_owned())
                .bind(serde_json::to_string(&request).expect("a request serialises"))
                .execute(&mut **tx)
                .await?
        }
    };
    Ok(done.rows_affected() == 1)
}
