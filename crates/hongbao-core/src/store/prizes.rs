//! The SQL of activities and prizes: storing them, a claim's transaction
//! (the prize, the budget, the daily count and the payout record at once).

use hongbao_wxpay::{Fen, InvalidField, OpenId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::codec;
use super::db::{Arg, DbError};
use super::{Idempotency, Ledger, NewRecord, StoreError, new_id};
use crate::model::{Activity, ActivityDef, Prize, PrizeFilter, PrizeInput, PrizeStatus, from_ms};

/// Why an activity could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// The name is taken by an activity with other rules.
    #[error("activity {0:?} exists with other rules")]
    Exists(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

const ACTIVITY_COLUMNS: &str = "id, tenant, name, merchant, kind, scene_id, min_amount, max_amount, send_name, \
    wishing, act_name, remark, budget, per_user_daily, require_follow, rail, committed, created_at, updated_at";

fn decode_activity(row: &AnyRow) -> Result<Activity, DbError> {
    let kind: String = row.try_get("kind")?;
    Ok(Activity {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        def: ActivityDef {
            name: row.try_get("name")?,
            merchant: row.try_get("merchant")?,
            kind: kind
                .parse()
                .map_err(|e: InvalidField| codec::corrupt(e.message))?,
            scene_id: row.try_get("scene_id")?,
            min_amount: codec::fen(row, "min_amount")?,
            max_amount: codec::fen(row, "max_amount")?,
            send_name: row.try_get("send_name")?,
            wishing: row.try_get("wishing")?,
            act_name: row.try_get("act_name")?,
            remark: row.try_get("remark")?,
            budget: codec::fen_opt(row, "budget")?,
            per_user_daily: codec::count_opt(row, "per_user_daily")?,
            require_follow: row.try_get::<i64, _>("require_follow")? != 0,
            rail: codec::parsed(row, "rail")?,
        },
        committed: codec::fen(row, "committed")?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

/// The row of an activity: `id, tenant`, then its rules in column order.
fn activity_args(id: &str, tenant: &str, def: &ActivityDef) -> Vec<Arg> {
    vec![
        id.into(),
        tenant.into(),
        def.name.as_str().into(),
        def.merchant.as_str().into(),
        def.kind.as_str().into(),
        def.scene_id.clone().into(),
        codec::to_db(def.min_amount.get()).into(),
        codec::to_db(def.max_amount.get()).into(),
        def.send_name.as_str().into(),
        def.wishing.as_str().into(),
        def.act_name.as_str().into(),
        def.remark.as_str().into(),
        def.budget.map(|b| codec::to_db(b.get())).into(),
        def.per_user_daily.map(codec::to_db).into(),
        i64::from(def.require_follow).into(),
        def.rail.as_str().into(),
    ]
}

/// Creates an activity; the same name with the same rules is the same
/// activity (`false`: it existed).
pub async fn create_activity(
    ledger: &Ledger,
    tenant: &str,
    def: &ActivityDef,
) -> Result<(Activity, bool), ActivityError> {
    let db = ledger.db();
    let sql = format!(
        "INSERT INTO activities (id, tenant, name, merchant, kind, scene_id, min_amount, max_amount, send_name, wishing, \
         act_name, remark, budget, per_user_daily, require_follow, rail, committed, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 0, {now}, {now})",
        now = db.now_sql()
    );
    let id = new_id("ac");
    match db.execute(&sql, activity_args(&id, tenant, def)).await {
        Ok(_) => Ok((
            get_activity(ledger, tenant, &id)
                .await?
                .ok_or_else(|| codec::corrupt("the activity vanished"))?,
            true,
        )),
        Err(e) if e.is_unique_violation() => match get_activity(ledger, tenant, &def.name).await? {
            Some(existing) if existing.def == *def => Ok((existing, false)),
            _ => Err(ActivityError::Exists(def.name.clone())),
        },
        Err(e) => Err(e.into()),
    }
}

/// Changes an activity's rules (its id, budget use and prizes stay).
pub async fn update_activity(
    ledger: &Ledger,
    activity: &Activity,
    def: &ActivityDef,
) -> Result<Activity, ActivityError> {
    let db = ledger.db();
    let sql = format!(
        "UPDATE activities SET name = $3, merchant = $4, kind = $5, scene_id = $6, min_amount = $7, max_amount = $8, \
         send_name = $9, wishing = $10, act_name = $11, remark = $12, budget = $13, per_user_daily = $14, \
         require_follow = $15, rail = $16, updated_at = {now} WHERE id = $1 AND tenant = $2",
        now = db.now_sql()
    );
    match db
        .execute(&sql, activity_args(&activity.id, &activity.tenant, def))
        .await
    {
        Ok(_) => get_activity(ledger, &activity.tenant, &activity.id)
            .await?
            .ok_or_else(|| codec::corrupt("the activity vanished").into()),
        Err(e) if e.is_unique_violation() => Err(ActivityError::Exists(def.name.clone())),
        Err(e) => Err(e.into()),
    }
}

/// A tenant's activity, by id or by name.
pub async fn get_activity(
    ledger: &Ledger,
    tenant: &str,
    id_or_name: &str,
) -> Result<Option<Activity>, DbError> {
    let sql = format!(
        "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE tenant = $1 AND (id = $2 OR name = $2) \
         ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END LIMIT 1"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id_or_name)
        .fetch_optional(ledger.db().pool())
        .await?;
    row.as_ref().map(decode_activity).transpose()
}

/// A tenant's activities, newest first, and how many there are.
pub async fn list_activities(
    ledger: &Ledger,
    tenant: &str,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Activity>, u64), DbError> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activities WHERE tenant = $1")
        .bind(tenant)
        .fetch_one(ledger.db().pool())
        .await?;
    let sql = format!(
        "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE tenant = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(codec::to_db(limit))
        .bind(codec::to_db(offset))
        .fetch_all(ledger.db().pool())
        .await?;
    let activities = rows
        .iter()
        .map(decode_activity)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((activities, codec::whole(total, "a count of activities")?))
}

/// An activity's prizes by status: count and fen.
pub async fn activity_totals(
    ledger: &Ledger,
    activity_id: &str,
) -> Result<Vec<(PrizeStatus, u64, Fen)>, DbError> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n, CAST(SUM(amount) AS BIGINT) AS amount FROM prizes \
         WHERE activity_id = $1 AND kind = 'cash_redpack' GROUP BY status",
    )
    .bind(activity_id)
    .fetch_all(ledger.db().pool())
    .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok((
                status
                    .parse()
                    .map_err(|e: InvalidField| codec::corrupt(e.message))?,
                codec::count(r, "n")?,
                codec::fen_opt(r, "amount")?.unwrap_or(Fen::ZERO),
            ))
        })
        .collect()
}

const PRIZE_SELECT: &str = "SELECT p.id, p.tenant, p.activity_id, a.name AS activity_name, a.kind AS activity_kind, \
    p.user_ref, p.kind AS prize_kind, p.amount, p.openid, p.status AS prize_status, p.payout_id, p.claimed_openid, \
    p.claims, p.last_err_code, p.created_at, p.updated_at, r.mch_billno, r.status AS redpack_status \
    FROM prizes p JOIN activities a ON a.id = p.activity_id LEFT JOIN payouts r ON r.id = p.payout_id";

fn decode_prize(row: &AnyRow) -> Result<Prize, DbError> {
    let parse_err = |e: InvalidField| codec::corrupt(e.message);
    Ok(Prize {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        activity_id: row.try_get("activity_id")?,
        activity: row.try_get("activity_name")?,
        activity_kind: row
            .try_get::<String, _>("activity_kind")?
            .parse()
            .map_err(parse_err)?,
        user: row.try_get("user_ref")?,
        kind: row
            .try_get::<String, _>("prize_kind")?
            .parse()
            .map_err(parse_err)?,
        amount: codec::fen(row, "amount")?,
        openid: row.try_get("openid")?,
        status: row
            .try_get::<String, _>("prize_status")?
            .parse()
            .map_err(parse_err)?,
        payout_id: row.try_get("payout_id")?,
        mch_billno: row.try_get("mch_billno")?,
        redpack_status: row
            .try_get::<Option<String>, _>("redpack_status")?
            .map(|s| s.parse())
            .transpose()
            .map_err(parse_err)?,
        claimed_openid: row.try_get("claimed_openid")?,
        claims: codec::count(row, "claims")?,
        last_err_code: row.try_get("last_err_code")?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

/// Why a prize could not be granted.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The idempotency key was used with another request.
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyConflict,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Grants a checked prize (by `prize::validate_grant`); a replayed idempotency key
/// returns the prize granted then (`false`).
pub async fn grant(
    ledger: &Ledger,
    activity: &Activity,
    input: &PrizeInput,
    idempotency: Option<&Idempotency>,
) -> Result<(Prize, bool), GrantError> {
    let tenant = activity.tenant.clone();
    if let Some(key) = idempotency
        && let Some(found) = find_by_key(ledger, &tenant, key).await?
    {
        return found.map(|p| (p, false));
    }
    let db = ledger.db();
    let sql = format!(
        "INSERT INTO prizes (id, tenant, activity_id, user_ref, kind, amount, openid, status, idempotency_key, request_hash, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, {now}, {now})",
        now = db.now_sql()
    );
    let id = new_id("pz");
    let args = vec![
        id.as_str().into(),
        tenant.as_str().into(),
        activity.id.as_str().into(),
        input.user.trim().into(),
        input.kind.as_str().into(),
        codec::to_db(input.amount.unwrap_or(0)).into(),
        input.openid.clone().into(),
        idempotency.map(|k| k.key.clone()).into(),
        idempotency.map(|k| k.request_hash.clone()).into(),
    ];
    let inserted = db.execute(&sql, args).await;
    match inserted {
        Ok(_) => Ok((
            get_prize(ledger, &tenant, &id)
                .await?
                .ok_or_else(|| codec::corrupt("the prize vanished"))?,
            true,
        )),
        // The same key at the same moment: the other request won.
        Err(e) if e.is_unique_violation() && idempotency.is_some() => {
            match find_by_key(ledger, &tenant, idempotency.expect("checked")).await? {
                Some(found) => found.map(|p| (p, false)),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn find_by_key(
    ledger: &Ledger,
    tenant: &str,
    key: &Idempotency,
) -> Result<Option<Result<Prize, GrantError>>, DbError> {
    let hash: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT id, request_hash FROM prizes WHERE tenant = $1 AND idempotency_key = $2",
    )
    .bind(tenant)
    .bind(key.key.clone())
    .fetch_optional(ledger.db().pool())
    .await?;
    let Some((id, hash)) = hash else {
        return Ok(None);
    };
    if hash.as_deref() != Some(key.request_hash.as_str()) {
        return Ok(Some(Err(GrantError::IdempotencyConflict)));
    }
    Ok(get_prize(ledger, tenant, &id).await?.map(Ok))
}

/// A tenant's prize.
pub async fn get_prize(ledger: &Ledger, tenant: &str, id: &str) -> Result<Option<Prize>, DbError> {
    let sql = format!("{PRIZE_SELECT} WHERE p.id = $1 AND p.tenant = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .bind(tenant)
        .fetch_optional(ledger.db().pool())
        .await?;
    row.as_ref().map(decode_prize).transpose()
}

/// A tenant's prizes, newest first, and how many match.
pub async fn list_prizes(
    ledger: &Ledger,
    tenant: &str,
    filter: &PrizeFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Prize>, u64), DbError> {
    let mut clauses = vec!["p.tenant = $1".to_owned()];
    let mut binds = vec![tenant.to_owned()];
    for (column, value) in [
        ("p.user_ref", filter.user.clone()),
        ("p.activity_id", filter.activity_id.clone()),
        ("p.status", filter.status.map(|s| s.as_str().to_owned())),
    ] {
        if let Some(value) = value {
            binds.push(value);
            clauses.push(format!("{column} = ${}", binds.len()));
        }
    }
    let wh = clauses.join(" AND ");
    let count_sql = format!("SELECT COUNT(*) FROM prizes p WHERE {wh}");
    let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
    for b in &binds {
        count = count.bind(b.clone());
    }
    let total = count.fetch_one(ledger.db().pool()).await?;
    let n = binds.len();
    let sql = format!(
        "{PRIZE_SELECT} WHERE {wh} ORDER BY p.created_at DESC, p.id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for b in &binds {
        query = query.bind(b.clone());
    }
    let rows = query
        .bind(codec::to_db(limit))
        .bind(codec::to_db(offset))
        .fetch_all(ledger.db().pool())
        .await?;
    let prizes = rows
        .iter()
        .map(decode_prize)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((prizes, codec::whole(total, "a count of prizes")?))
}

/// How many prizes of the activity the openid claimed today (Beijing).
pub async fn claims_today(
    ledger: &Ledger,
    activity_id: &str,
    openid: &str,
) -> Result<u64, DbError> {
    let now = ledger.db().now_ms().await?;
    let (_, day) = crate::store::payouts::day_of(now);
    let claims: Option<i64> = sqlx::query_scalar(
        "SELECT claims FROM activity_user_days WHERE activity_id = $1 AND openid = $2 AND day = $3",
    )
    .bind(activity_id)
    .bind(openid)
    .bind(day)
    .fetch_optional(ledger.db().pool())
    .await?;
    claims.map_or(Ok(0), |c| codec::whole(c, "a count of claims"))
}

/// The claim's transaction: the prize moves to `issuing` only if it is
/// still claimable, within the budget and the daily count, with its payout
/// record; any refusal rolls everything back.
pub async fn store_claim(
    ledger: &Ledger,
    prize: &Prize,
    activity: &Activity,
    openid: &OpenId,
    record: NewRecord,
) -> Result<Result<String, Blocked>, DbError> {
    let db = ledger.db().clone();
    let record = std::sync::Arc::new(record);
    let (prize_id, activity_id, openid, amount, per_user_daily) = (
        prize.id.clone(),
        activity.id.clone(),
        openid.as_str().to_owned(),
        codec::to_db(prize.amount.get()),
        activity.def.per_user_daily,
    );
    let done = db
        .try_write(|tx| {
            let (db, record) = (db.clone(), record.clone());
            let (prize_id, activity_id, openid) =
                (prize_id.clone(), activity_id.clone(), openid.clone());
            Box::pin(async move {
                let now_sql = format!("SELECT {}", db.now_sql());
                let now: i64 = sqlx::query_scalar(AssertSqlSafe(now_sql))
                    .fetch_one(&mut **tx)
                    .await?;
                let (_, day) = crate::store::payouts::day_of(now);
                let moved = sqlx::query(
                    "UPDATE prizes SET status = 'issuing', claimed_openid = $2, claim_day = $3, claims = claims + 1, \
                     last_err_code = NULL, updated_at = $4 WHERE id = $1 AND status = 'pending'",
                )
                .bind(prize_id.clone())
                .bind(openid.clone())
                .bind(day.clone())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                if moved.rows_affected() == 0 {
                    let status: Option<String> =
                        sqlx::query_scalar("SELECT status FROM prizes WHERE id = $1")
                            .bind(prize_id)
                            .fetch_optional(&mut **tx)
                            .await?;
                    let status = status.map(|s| s.parse()).transpose().map_err(
                        |e: InvalidField| codec::corrupt(format!("a prize's status: {}", e.message)),
                    )?;
                    return Ok(Err(Blocked::NotClaimable(status)));
                }
                let budgeted = sqlx::query(
                    "UPDATE activities SET committed = committed + $2, updated_at = $3 \
                     WHERE id = $1 AND (budget IS NULL OR committed + $2 <= budget)",
                )
                .bind(activity_id.clone())
                .bind(amount)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                if budgeted.rows_affected() == 0 {
                    return Ok(Err(Blocked::Budget));
                }
                if let Some(limit) = per_user_daily {
                    let counted = sqlx::query(
                        "INSERT INTO activity_user_days (activity_id, openid, day, claims) VALUES ($1, $2, $3, 1) \
                         ON CONFLICT (activity_id, openid, day) DO UPDATE SET claims = activity_user_days.claims + 1 \
                         WHERE activity_user_days.claims < $4",
                    )
                    .bind(activity_id)
                    .bind(openid)
                    .bind(day)
                    .bind(codec::to_db(limit))
                    .execute(&mut **tx)
                    .await?;
                    if counted.rows_affected() == 0 {
                        return Ok(Err(Blocked::DailyLimit(limit)));
                    }
                }
                let stored = crate::store::payouts::store_in(&db, tx, std::slice::from_ref(&*record)).await?;
                let payout_id = match stored.into_iter().next() {
                    Some(Ok(stored)) => stored.record().id.clone(),
                    Some(Err(e)) => return Ok(Err(Blocked::Store(e))),
                    None => {
                        return Ok(Err(Blocked::Store(StoreError::Failed(
                            "nothing stored".into(),
                        ))));
                    }
                };
                sqlx::query("UPDATE prizes SET payout_id = $2 WHERE id = $1")
                    .bind(prize_id)
                    .bind(payout_id.clone())
                    .execute(&mut **tx)
                    .await?;
                Ok(Ok(payout_id))
            })
        })
        .await?;
    Ok(done)
}

/// Why a claim's transaction stored nothing (and rolled back).
#[derive(Debug)]
pub enum Blocked {
    /// The prize is no longer `pending` (its status now, if it exists).
    NotClaimable(Option<PrizeStatus>),
    /// The activity's budget cannot pay it.
    Budget,
    /// The openid reached the activity's daily count.
    DailyLimit(u64),
    /// The payout record could not be stored.
    Store(StoreError),
}
