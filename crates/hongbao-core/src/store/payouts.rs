//! Storing payouts, each with its order number, in one transaction
//! (group-committed); reading them and their attempts back.

use hongbao_wxpay::v3::OutBillNo;
use hongbao_wxpay::{BillnoDeployment, Fen, MchBillNo, MchId, Prepared, beijing_date};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::codec::{self, fen_to_db};
use super::db::{Arg, Db, DbError, Tx, chunked, dialect_of, execute_with, values_rows};
use super::{Ledger, new_id, new_ordered_id};
use crate::model::{Attempt, AttemptRow, Kind, Rail, RailRequest, Redpack, Status, Valid, from_ms};
use crate::rail::transfer;

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
    /// The validated payout, on its rail.
    pub valid: Valid,
    /// The caller's idempotency key.
    pub idempotency: Option<Idempotency>,
    /// The campaign it belongs to.
    pub campaign_id: Option<String>,
    /// Its line in the campaign's file.
    pub campaign_line: Option<i64>,
    /// The prize it pays.
    pub prize_id: Option<String>,
    /// A campaign's cap of payouts per openid per day (Beijing time) over
    /// every campaign of the merchant: a row over it is stored `failed`
    /// (`CAMPAIGN_DAILY_CAP`, nothing paid) instead of being sent.
    pub daily_cap: Option<u64>,
}

/// The err_code of a campaign row over its per-openid daily cap.
pub const DAILY_CAP_CODE: &str = "CAMPAIGN_DAILY_CAP";

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
    /// Only this rail.
    pub rail: Option<Rail>,
    /// Created at or after (ms).
    pub created_from_ms: Option<i64>,
    /// Created before (ms).
    pub created_to_ms: Option<i64>,
}

const COLUMNS: &str = "id, tenant, merchant, mch_id, rail, kind, status, mch_billno, re_openid, total_amount, total_num, \
    send_name, wishing, act_name, remark, scene_id, request, send_listid, wechat_status, refund_amount, package, \
    err_code, message, zh_message, attempts, campaign_id, prize_id, created_at, updated_at, fail_reason, expires_at";

/// A stored request read back, by its rail.
pub(super) fn stored_request(row: &AnyRow, rail: Rail) -> Result<RailRequest, DbError> {
    let text: String = row.try_get("request")?;
    match rail {
        Rail::Redpack => {
            let prepared: Prepared = serde_json::from_str(&text)
                .map_err(|e| codec::corrupt(format!("stored request: {e}")))?;
            Ok(RailRequest::Redpack {
                kind: codec::parsed(row, "kind")?,
                prepared,
            })
        }
        Rail::Transfer => Ok(RailRequest::Transfer {
            prepared: transfer::from_stored(&text).map_err(codec::corrupt)?,
        }),
    }
}

fn decode(row: &AnyRow) -> Result<Redpack, DbError> {
    let text = |col: &str| -> Result<String, DbError> { Ok(row.try_get::<String, _>(col)?) };
    let opt = |col: &str| -> Result<Option<String>, DbError> {
        Ok(row.try_get::<Option<String>, _>(col)?)
    };
    let int = |col: &str| -> Result<i64, DbError> { Ok(row.try_get::<i64, _>(col)?) };
    let rail: Rail = codec::parsed(row, "rail")?;
    let request = stored_request(row, rail)?;
    Ok(Redpack {
        id: text("id")?,
        tenant: text("tenant")?,
        merchant: text("merchant")?,
        mch_id: text("mch_id")?,
        rail,
        kind: match &request {
            RailRequest::Redpack { kind, .. } => *kind,
            RailRequest::Transfer { .. } => Kind::Normal,
        },
        status: codec::parsed(row, "status")?,
        mch_billno: text("mch_billno")?,
        re_openid: text("re_openid")?,
        total_amount: codec::fen(row, "total_amount")?,
        total_num: codec::count(row, "total_num")?,
        send_name: text("send_name")?,
        wishing: text("wishing")?,
        act_name: text("act_name")?,
        remark: text("remark")?,
        scene_id: opt("scene_id")?,
        send_listid: opt("send_listid")?,
        wechat_status: opt("wechat_status")?,
        refund_amount: codec::fen_opt(row, "refund_amount")?,
        package: opt("package")?,
        err_code: opt("err_code")?,
        message: opt("message")?,
        zh_message: opt("zh_message")?,
        attempts: codec::count(row, "attempts")?,
        campaign_id: opt("campaign_id")?,
        prize_id: opt("prize_id")?,
        created_at: from_ms(int("created_at")?),
        updated_at: from_ms(int("updated_at")?),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(from_ms),
        fail_reason: opt("fail_reason")?,
        request,
    })
}

impl Ledger {
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
        let sql = format!("SELECT {COLUMNS} FROM payouts WHERE id = $1");
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
        let mut binds: Vec<Arg> = Vec::new();
        let mut placeholders = Vec::new();
        for merchant in &filter.merchants {
            binds.push(Arg::from(merchant.as_str()));
            placeholders.push(format!("${}", binds.len()));
        }
        clauses.push(format!("merchant IN ({})", placeholders.join(", ")));
        let mut eq = |column: &str, value: Option<Arg>, binds: &mut Vec<Arg>| {
            if let Some(value) = value {
                binds.push(value);
                clauses.push(format!("{column} ${}", binds.len()));
            }
        };
        eq(
            "status =",
            filter.status.map(|s| Arg::from(s.as_str())),
            &mut binds,
        );
        eq(
            "re_openid =",
            filter.re_openid.clone().map(Arg::from),
            &mut binds,
        );
        eq(
            "mch_billno =",
            filter.mch_billno.clone().map(Arg::from),
            &mut binds,
        );
        eq(
            "campaign_id =",
            filter.campaign_id.clone().map(Arg::from),
            &mut binds,
        );
        eq(
            "rail =",
            filter.rail.map(|r| Arg::from(r.as_str())),
            &mut binds,
        );
        eq(
            "created_at >=",
            filter.created_from_ms.map(Arg::from),
            &mut binds,
        );
        eq(
            "created_at <",
            filter.created_to_ms.map(Arg::from),
            &mut binds,
        );
        let wh = clauses.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) FROM payouts WHERE {wh}");
        let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
        for b in &binds {
            count = b.bind_scalar(count);
        }
        let total = count.fetch_one(self.db.pool()).await?;
        let n = binds.len();
        let sql = format!(
            "SELECT {COLUMNS} FROM payouts WHERE {wh} ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            query = b.bind(query);
        }
        let rows = query
            .bind(codec::to_db(limit))
            .bind(codec::to_db(offset))
            .fetch_all(self.db.pool())
            .await?;
        let records = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok((records, codec::whole(total, "a count of records")?))
    }

    /// The attempts of a record, oldest first.
    pub async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, DbError> {
        let rows = sqlx::query(
            "SELECT api, mch_billno, started_at, latency_ms, outcome, err_code, detail, answer \
             FROM attempts WHERE payout_id = $1 ORDER BY started_at, id",
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
                    latency_ms: codec::count(row, "latency_ms")?,
                    outcome: row
                        .try_get::<String, _>("outcome")?
                        .parse()
                        .map_err(|e: String| DbError::Sqlx(sqlx::Error::Decode(e.into())))?,
                    err_code: row.try_get("err_code")?,
                    detail: row.try_get("detail")?,
                    answer: row.try_get("answer")?,
                })
            })
            .collect()
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
}

pub(super) async fn insert_attempt(
    tx: &mut Tx,
    payout_id: &str,
    a: &AttemptRow,
) -> Result<(), DbError> {
    insert_attempts(tx, &[(payout_id, a)]).await
}

/// Inserts the attempts of several records, many per statement.
pub(super) async fn insert_attempts(
    tx: &mut Tx,
    attempts: &[(&str, &AttemptRow)],
) -> Result<(), DbError> {
    const COLUMNS: usize = 10;
    for chunk in chunked(attempts) {
        let sql = format!(
            "INSERT INTO attempts (id, payout_id, api, mch_billno, started_at, latency_ms, outcome, err_code, detail, answer) \
             VALUES {}",
            values_rows(dialect_of(tx), chunk.len(), COLUMNS, 1)
        );
        let mut args = Vec::with_capacity(chunk.len() * COLUMNS);
        for (payout_id, a) in chunk {
            args.extend([
                Arg::from(new_ordered_id("at")),
                Arg::from(*payout_id),
                Arg::from(a.api),
                Arg::from(a.order_no.clone()),
                Arg::from(a.started_at_ms),
                Arg::from(a.latency_ms),
                Arg::from(a.outcome.as_str()),
                Arg::from(a.err_code.as_deref().map(codec::storable)),
                Arg::from(a.detail.as_deref().map(codec::storable)),
                Arg::from(a.answer.as_deref().map(codec::storable)),
            ]);
        }
        execute_with(tx, sql, args).await?;
    }
    Ok(())
}

/// Allocates `count` numbers of `mch_id`'s sequence for `day`; returns the first.
pub(super) async fn allocate(
    tx: &mut Tx,
    mch_id: &str,
    day: &str,
    count: i64,
) -> Result<i64, DbError> {
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
            "SELECT {COLUMNS}, request_hash FROM payouts WHERE tenant = $1 AND idempotency_key = $2"
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

    let mut today = campaign_payouts_today(tx, batch, date).await?;

    let mut out: Vec<Result<Stored, StoreError>> = Vec::with_capacity(batch.len());
    let mut rows = Vec::with_capacity(batch.len());
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
                let sequence = codec::whole(*seq, "a billno sequence")?;
                *seq += 1;
                let over_cap = match record.daily_cap {
                    Some(cap) => {
                        let paid = today
                            .entry((
                                record.valid.merchant().to_owned(),
                                record.valid.openid().as_str().to_owned(),
                            ))
                            .or_default();
                        let over = *paid >= cap;
                        if !over {
                            *paid += 1;
                        }
                        over.then_some(cap)
                    }
                    None => None,
                };
                let new = New {
                    date,
                    deployment: db.billno_deployment(),
                    sequence,
                    now,
                    over_cap,
                };
                match new_row(record, &new) {
                    Ok((values, made)) => {
                        rows.push(values);
                        Ok(Stored::Created(made))
                    }
                    Err(e) => Err(e),
                }
            }
        };
        out.push(result);
    }
    insert_rows(tx, rows).await?;
    Ok(out)
}

/// For each merchant and openid of the batch's capped rows, how many
/// campaign payouts it has today that are not `failed` (a failed one paid
/// nothing).
async fn campaign_payouts_today(
    tx: &mut Tx,
    batch: &[NewRecord],
    date: time::Date,
) -> Result<std::collections::HashMap<(String, String), u64>, DbError> {
    let mut counts = std::collections::HashMap::new();
    let openids: std::collections::BTreeSet<&str> = batch
        .iter()
        .filter(|r| r.daily_cap.is_some())
        .map(|r| r.valid.openid().as_str())
        .collect();
    if openids.is_empty() {
        return Ok(counts);
    }
    let start = date
        .midnight()
        .assume_offset(hongbao_wxpay::BEIJING)
        .unix_timestamp()
        * 1000;
    // One statement for the batch, by the openid index; an openid not
    // found has none (the caller counts it from 0).
    let list: Vec<String> = (0..openids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT merchant, re_openid, COUNT(*) AS n FROM payouts WHERE re_openid IN ({}) \
         AND created_at >= $1 AND campaign_id IS NOT NULL AND status <> 'failed' \
         GROUP BY merchant, re_openid",
        list.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(start);
    for openid in &openids {
        query = query.bind((*openid).to_owned());
    }
    for row in query.fetch_all(&mut **tx).await? {
        counts.insert(
            (row.try_get("merchant")?, row.try_get("re_openid")?),
            codec::count(&row, "n")?,
        );
    }
    Ok(counts)
}

/// Where a new record's number comes from, and whether it is over a cap.
struct New<'a> {
    date: time::Date,
    deployment: &'a BillnoDeployment,
    sequence: u64,
    now: i64,
    over_cap: Option<u64>,
}

/// The columns of a new row, in the order [`new_row`] gives its values.
const NEW_COLUMNS: &str = "id, tenant, merchant, mch_id, rail, kind, status, mch_billno, re_openid, total_amount, total_num, \
     send_name, wishing, act_name, remark, scene_id, request, campaign_id, prize_id, idempotency_key, request_hash, \
     created_at, updated_at, due_at, campaign_line, err_code, message, zh_message";
const NEW_COLUMN_COUNT: usize = 28;

/// Inserts new rows (each the values of [`new_row`]), many per statement.
async fn insert_rows(tx: &mut Tx, rows: Vec<Vec<Arg>>) -> Result<(), DbError> {
    for chunk in chunked(&rows) {
        let sql = format!(
            "INSERT INTO payouts ({NEW_COLUMNS}) VALUES {}",
            values_rows(dialect_of(tx), chunk.len(), NEW_COLUMN_COUNT, 1)
        );
        execute_with(tx, sql, chunk.concat()).await?;
    }
    Ok(())
}

/// A new row's values (in the order of [`NEW_COLUMNS`]) and the record
/// they make, or why it cannot be made.
fn new_row(record: &NewRecord, new: &New<'_>) -> Result<(Vec<Arg>, Redpack), StoreError> {
    let New {
        date,
        deployment,
        sequence,
        now,
        over_cap,
    } = *new;
    let mch_billno = MchBillNo::generate_for(&record.mch_id, date, deployment, sequence)
        .map_err(|e| StoreError::Failed(e.message))?;
    let columns = columns_of(&record.valid, &mch_billno).map_err(StoreError::Failed)?;
    let id = new_id(match record.valid.rail() {
        Rail::Redpack => "rp",
        Rail::Transfer => "tr",
    });
    let (status, due_at, err_code, message, zh_message) = match over_cap {
        None => (Status::Pending, Some(now), None, None, None),
        Some(cap) => (
            Status::Failed,
            None,
            Some(DAILY_CAP_CODE.to_owned()),
            Some(format!(
                "not sent: this openid already has {cap} campaign payout(s) from this merchant today (Beijing time), the campaign's per-openid daily cap; nothing was paid"
            )),
            Some(format!(
                "未发放：该 openid 今天（北京时间）已从本商户的活动中收到 {cap} 笔，达到本活动每个 openid 每日上限；未付款"
            )),
        ),
    };
    let Columns {
        merchant,
        kind,
        openid,
        amount,
        total_num,
        send_name,
        wishing,
        act_name,
        remark,
        scene_id,
        stored,
        request,
    } = columns;
    let values = vec![
        Arg::from(id.clone()),
        Arg::from(record.tenant.clone()),
        Arg::from(merchant.clone()),
        Arg::from(record.mch_id.as_str()),
        Arg::from(record.valid.rail().as_str()),
        Arg::from(kind.as_str()),
        Arg::from(status.as_str()),
        Arg::from(mch_billno.as_str()),
        Arg::from(openid.clone()),
        Arg::from(fen_to_db(amount)),
        Arg::from(i64::from(total_num)),
        Arg::from(send_name.clone()),
        Arg::from(wishing.clone()),
        Arg::from(act_name.clone()),
        Arg::from(remark.clone()),
        Arg::from(scene_id.clone()),
        Arg::from(stored),
        Arg::from(record.campaign_id.clone()),
        Arg::from(record.prize_id.clone()),
        Arg::from(record.idempotency.as_ref().map(|x| x.key.clone())),
        Arg::from(record.idempotency.as_ref().map(|x| x.request_hash.clone())),
        Arg::from(now),
        Arg::from(now),
        Arg::from(due_at),
        Arg::from(record.campaign_line),
        Arg::from(err_code.clone()),
        Arg::from(message.clone()),
        Arg::from(zh_message.clone()),
    ];
    debug_assert_eq!(values.len(), NEW_COLUMN_COUNT);
    let made = Redpack {
        id,
        tenant: record.tenant.clone(),
        merchant,
        mch_id: record.mch_id.as_str().to_owned(),
        rail: record.valid.rail(),
        kind,
        status,
        mch_billno: mch_billno.as_str().to_owned(),
        re_openid: openid,
        total_amount: amount,
        total_num,
        send_name,
        wishing,
        act_name,
        remark,
        scene_id,
        send_listid: None,
        wechat_status: None,
        refund_amount: None,
        package: None,
        err_code,
        message,
        zh_message,
        attempts: 0,
        campaign_id: record.campaign_id.clone(),
        prize_id: record.prize_id.clone(),
        created_at: from_ms(now),
        updated_at: from_ms(now),
        expires_at: None,
        fail_reason: None,
        request,
    };
    Ok((values, made))
}

/// A new row's values, by its rail.
struct Columns {
    merchant: String,
    kind: Kind,
    openid: String,
    amount: Fen,
    total_num: u32,
    send_name: String,
    wishing: String,
    act_name: String,
    remark: String,
    scene_id: Option<String>,
    stored: String,
    request: RailRequest,
}

fn columns_of(valid: &Valid, number: &MchBillNo) -> Result<Columns, String> {
    match valid {
        Valid::Redpack(v) => {
            let prepared = v
                .prepared(number, &hongbao_wxpay::nonce_str())
                .map_err(|e| e.to_string())?;
            Ok(Columns {
                merchant: v.merchant.clone(),
                kind: v.kind,
                openid: v.re_openid.as_str().to_owned(),
                amount: v.total_amount,
                total_num: v.total_num,
                send_name: v.send_name.clone(),
                wishing: v.wishing.clone(),
                act_name: v.act_name.clone(),
                remark: v.remark.clone(),
                scene_id: v.scene_id.map(|s| s.as_str().to_owned()),
                stored: serde_json::to_string(&prepared).expect("a request serialises"),
                request: RailRequest::Redpack {
                    kind: v.kind,
                    prepared,
                },
            })
        }
        Valid::Transfer(v) => {
            let out_bill_no = OutBillNo::parse(number.as_str()).map_err(|e| e.to_string())?;
            let prepared = v.prepared(&out_bill_no);
            Ok(Columns {
                merchant: v.merchant.clone(),
                kind: Kind::Normal,
                openid: v.openid.as_str().to_owned(),
                amount: v.transfer_amount,
                total_num: 1,
                send_name: v.perception_text().unwrap_or_default().to_owned(),
                wishing: v.reward_description.clone(),
                act_name: v.activity_name.clone(),
                remark: v.transfer_remark.clone(),
                scene_id: None,
                stored: transfer::to_stored(&prepared),
                request: RailRequest::Transfer { prepared },
            })
        }
    }
}
