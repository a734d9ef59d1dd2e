//! Claims under leases of database time, outcomes recorded only while the
//! lease is the recorder's, and the following of accepted orders.

use hongbao_wxpay::v3::OutBillNo;
use hongbao_wxpay::{BillnoDeployment, MchBillNo, MchId};
use sqlx::{AssertSqlSafe, Row};

use super::Ledger;
use super::codec::{self, fen_to_db};
use super::db::{
    Arg, DbError, Dialect, Tx, chunked, dialect_of, fetch_with, placeholder, values_rows,
};
use super::payouts::{allocate, day_of, insert_attempt, insert_attempts, stored_request};
use crate::model::{
    AttemptRow, Claimed, OrderState, PrizeEffect, Rail, RailRequest, Scope, Status, Transition,
};

/// An accepted order due to be followed (asked about again), leased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconcile {
    /// The record.
    pub id: String,
    /// Its rail.
    pub rail: Rail,
    /// Its order number.
    pub order_no: String,
    /// How many times it was followed so far.
    pub done: i64,
    /// When the record was made (ms, the database's clock).
    pub created_at_ms: i64,
    /// When it was leased (ms, the database's clock).
    pub claimed_at_ms: i64,
}

impl Reconcile {
    /// The record's age (ms), on the database's clock.
    pub fn age_ms(&self) -> i64 {
        (self.claimed_at_ms - self.created_at_ms).max(0)
    }
}

impl Ledger {
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
                let request = stored_request(row, codec::parsed::<Rail>(row, "rail")?)?;
                Ok(Claimed {
                    id: row.try_get("id")?,
                    merchant: row.try_get("merchant")?,
                    status: codec::parsed(row, "status")?,
                    request,
                    needs_query: row.try_get::<i64, _>("needs_query")? != 0,
                    merchant_refused: row.try_get::<i64, _>("merchant_refused")? != 0,
                    retries: codec::count(row, "retries")?,
                    created_at_ms: row.try_get("created_at")?,
                    claimed_at_ms: row.try_get("claimed_at")?,
                    err_code: row.try_get("err_code")?,
                    awaiting: crate::model::Awaiting::Nothing,
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
                Box::pin(async move { record_in(tx, now, &deployment, &owner, &outcomes).await })
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
    ) -> Result<Vec<Reconcile>, DbError> {
        let now = self.db.now_sql();
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        // `LIMIT ($4 + 0)`: see the claim in `Ledger::new`.
        let sql = format!(
            "UPDATE payouts SET lease_owner = $1, lease_until = {now} + $2 \
             WHERE id IN (SELECT id FROM payouts WHERE merchant = $3 AND reconcile_at <= {now} \
               AND (lease_until IS NULL OR lease_until < {now}) ORDER BY reconcile_at LIMIT ($4 + 0){lock}) \
             RETURNING id, rail, mch_billno, reconciles, created_at, {now} AS claimed_at"
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
                Ok(Reconcile {
                    id: r.try_get("id")?,
                    rail: codec::parsed(r, "rail")?,
                    order_no: r.try_get("mch_billno")?,
                    done: r.try_get("reconciles")?,
                    created_at_ms: r.try_get("created_at")?,
                    claimed_at_ms: r.try_get("claimed_at")?,
                })
            })
            .collect()
    }

    /// Writes what following an order learnt: its new state (if WeChat
    /// told it) and when to ask next (`None`: never again).
    pub async fn record_reconcile(
        &self,
        owner: &str,
        id: &str,
        state: Option<&OrderState>,
        next_in_ms: Option<i64>,
        attempt: &AttemptRow,
    ) -> Result<bool, DbError> {
        let now = self.db.now_sql();
        let sql = format!(
            "UPDATE payouts SET reconcile_at = CASE WHEN $1 < 0 THEN NULL ELSE {now} + $1 END, \
             reconciles = reconciles + 1, lease_owner = NULL, lease_until = NULL, updated_at = {now} \
             WHERE id = $2 AND lease_owner = $3 AND lease_until >= {now}"
        );
        let (owner, id) = (owner.to_owned(), id.to_owned());
        let state = state.cloned();
        self.db
            .write(|tx| {
                let (sql, owner, id, state) =
                    (sql.clone(), owner.clone(), id.clone(), state.clone());
                let attempt = attempt.clone();
                Box::pin(async move {
                    insert_attempt(tx, &id, &attempt).await?;
                    let done = sqlx::query(AssertSqlSafe(sql))
                        .bind(next_in_ms.unwrap_or(-1))
                        .bind(id.clone())
                        .bind(owner)
                        .execute(&mut **tx)
                        .await?
                        .rows_affected()
                        == 1;
                    if done && let Some(state) = &state {
                        apply_news(tx, now, &id, state, false, None).await?;
                    }
                    Ok(done)
                })
            })
            .await
    }

    pub async fn record_wechat_status(&self, id: &str, state: &OrderState) -> Result<(), DbError> {
        let status = state.status;
        let wechat_status = state.wechat_status.as_str();
        let send_listid = state.external_id.as_deref();
        let refund_amount = state.refund_amount;
        let now = self.db.now_sql();
        // Only a sent packet moves on this way: a pending or sending record is
        // the dispatcher's to settle (it queries before sending again).
        let sql = format!(
            "UPDATE payouts SET status = $1, wechat_status = $2, send_listid = COALESCE(send_listid, $3), \
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
                        .bind(refund_amount.map(fen_to_db))
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
        let now = self.db.now_sql();
        self.db
            .write(|tx| {
                let owner = owner.clone();
                Box::pin(async move {
                    let sql = format!(
                        "UPDATE payouts SET lease_owner = NULL, lease_until = NULL, \
                         due_at = CASE WHEN due_at IS NULL THEN NULL ELSE {now} END WHERE lease_owner = $1"
                    );
                    let done = sqlx::query(AssertSqlSafe(sql))
                        .bind(owner)
                        .execute(&mut **tx)
                        .await?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }
}

/// Records outcomes in transaction `tx`: the attempts in one statement,
/// the outcomes of each kind in one more (a record whose id appears twice,
/// or a reissue, one by one), each only while `owner` holds its lease.
async fn record_in(
    tx: &mut Tx,
    now: &str,
    deployment: &BillnoDeployment,
    owner: &str,
    outcomes: &[(Claimed, Transition, Vec<AttemptRow>)],
) -> Result<Vec<bool>, DbError> {
    let attempts: Vec<(&str, &AttemptRow)> = outcomes
        .iter()
        .flat_map(|(claimed, _, attempts)| attempts.iter().map(|a| (claimed.id.as_str(), a)))
        .collect();
    insert_attempts(tx, &attempts).await?;
    let sends = |attempts: &[AttemptRow]| {
        i64::try_from(attempts.iter().filter(|a| a.sends).count()).unwrap_or(0)
    };
    // Outcomes of a kind in one statement, unless an id appears twice
    // (then each on its own, in order: the second finds the lease gone).
    let ids: std::collections::HashSet<&str> =
        outcomes.iter().map(|(c, _, _)| c.id.as_str()).collect();
    let together = ids.len() == outcomes.len();
    // Per outcome, in order: whether it was applied.
    let mut done = vec![false; outcomes.len()];
    let mut grouped: std::collections::HashSet<String> = std::collections::HashSet::new();
    let (mut accepted, mut retry, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (claimed, transition, attempts)) in outcomes.iter().enumerate() {
        let one = (claimed, transition, sends(attempts));
        match transition {
            Transition::Reissue => {
                done[i] = reissue(tx, now, deployment, owner, claimed, one.2).await?;
            }
            _ if !together => done[i] = !apply_many(tx, now, owner, &[one]).await?.is_empty(),
            Transition::Accepted { .. } => accepted.push(one),
            Transition::Retry { .. } => retry.push(one),
            Transition::Failed { .. } => failed.push(one),
        }
    }
    for group in [accepted, retry, failed] {
        for chunk in chunked(&group) {
            grouped.extend(apply_many(tx, now, owner, chunk).await?);
        }
    }
    for (i, (claimed, transition, _)) in outcomes.iter().enumerate() {
        let ok = done[i] || grouped.contains(&claimed.id);
        done[i] = ok;
        // The prize's part of the outcome, in the same transaction.
        if ok
            && let Some(prize_id) = &claimed.prize_id
            && let Some(effect) = crate::decide::prize_effect(transition)
        {
            apply_prize_effect(tx, now, prize_id, &claimed.id, &effect).await?;
        }
    }
    Ok(done)
}

/// Applies outcomes of one kind (all `Accepted`, all `Retry` or all
/// `Failed`) in one statement; returns the ids of the records changed
/// (those whose lease `owner` still held).
async fn apply_many(
    tx: &mut Tx,
    now: &str,
    owner: &str,
    outcomes: &[(&Claimed, &Transition, i64)],
) -> Result<Vec<String>, DbError> {
    let Some((_, first, _)) = outcomes.first() else {
        return Ok(Vec::new());
    };
    // Each row's values (v.column1 the id, v.column2 the sends it made,
    // then the outcome's own), then the owner, bound in that order.
    let release = format!(
        "in_flight = 0, lease_owner = NULL, lease_until = NULL, updated_at = {now}, attempts = attempts + v.column2"
    );
    let mut args = Vec::new();
    let (set, columns) = match first {
        Transition::Accepted { .. } => (
            format!(
                "status = v.column3, send_listid = COALESCE(v.column4, send_listid), wechat_status = v.column5, \
                 refund_amount = v.column6, package = COALESCE(v.column7, package), err_code = NULL, message = NULL, zh_message = NULL, \
                 due_at = NULL, needs_query = 0, retries = 0, \
                 expires_at = CASE WHEN v.column3 = 'awaiting_confirmation' THEN COALESCE(expires_at, {now} + v.column9) ELSE expires_at END, \
                 reconcile_at = CASE WHEN v.column8 < 0 THEN NULL ELSE {now} + v.column8 END, {release}"
            ),
            9,
        ),
        Transition::Retry { .. } => (
            format!(
                "status = v.column3, due_at = {now} + v.column4, needs_query = v.column5, \
                 merchant_refused = CASE WHEN v.column6 = 1 THEN 1 ELSE merchant_refused END, \
                 err_code = COALESCE(v.column7, err_code), message = COALESCE(v.column8, message), \
                 zh_message = COALESCE(v.column9, zh_message), retries = retries + 1, {release}"
            ),
            9,
        ),
        Transition::Failed { .. } => (
            format!(
                "status = 'failed', err_code = v.column3, message = v.column4, zh_message = v.column5, due_at = NULL, \
                 needs_query = 0, {release}"
            ),
            5,
        ),
        Transition::Reissue => unreachable!("a reissue is applied on its own"),
    };
    for (claimed, transition, sends) in outcomes {
        args.push(Arg::from(claimed.id.clone()));
        args.push(Arg::from(*sends));
        match transition {
            Transition::Accepted {
                state,
                follow_in_ms,
            } => args.extend([
                Arg::from(state.status.as_str()),
                Arg::from(state.external_id.as_deref().map(codec::storable)),
                Arg::from(codec::storable(&state.wechat_status)),
                Arg::from(state.refund_amount.map(fen_to_db)),
                Arg::from(state.package.as_deref().map(codec::storable)),
                Arg::from(follow_in_ms.unwrap_or(-1)),
                Arg::from(crate::model::transfer::CONFIRM_WINDOW_MS),
            ]),
            Transition::Retry {
                status,
                delay_ms,
                needs_query,
                merchant_refused,
                code,
            } => args.extend([
                Arg::from(status.as_str()),
                Arg::from(*delay_ms),
                Arg::from(i64::from(*needs_query)),
                Arg::from(i64::from(*merchant_refused)),
                Arg::from(code.as_ref().map(|c| codec::storable(&c.code))),
                Arg::from(code.as_ref().map(|c| codec::storable(&c.message))),
                Arg::from(code.as_ref().map(|c| codec::storable(&c.zh_message))),
            ]),
            Transition::Failed { code, .. } => args.extend([
                Arg::from(codec::storable(&code.code)),
                Arg::from(codec::storable(&code.message)),
                Arg::from(codec::storable(&code.zh_message)),
            ]),
            Transition::Reissue => unreachable!("a reissue is applied on its own"),
        }
    }
    debug_assert_eq!(args.len(), outcomes.len() * columns);
    args.push(Arg::from(owner));
    let dialect = dialect_of(tx);
    // A record settled meanwhile (a callback told its final state) keeps it.
    let sql = format!(
        "UPDATE payouts SET {set} FROM (VALUES {values}) AS v \
         WHERE payouts.id = v.column1 AND payouts.lease_owner = {owner} AND payouts.lease_until >= {now} \
         AND payouts.status NOT IN {final_sql} RETURNING payouts.id",
        values = values_rows(dialect, outcomes.len(), columns, 1),
        owner = placeholder(dialect, args.len()),
        final_sql = Status::FINAL_SQL,
    );
    fetch_with(tx, sql, args)
        .await?
        .iter()
        .map(|row| Ok(row.try_get::<String, _>(0)?))
        .collect()
}

/// Records a reissue: the record waits under a new number (the old one's
/// order can never be paid), only while `owner` holds its lease.
async fn reissue(
    tx: &mut Tx,
    now: &str,
    deployment: &BillnoDeployment,
    owner: &str,
    claimed: &Claimed,
    sends: i64,
) -> Result<bool, DbError> {
    // A record settled meanwhile (a callback told its final state) keeps it.
    let lease = format!(
        "WHERE id = $1 AND lease_owner = $2 AND lease_until >= {now} AND status NOT IN {}",
        Status::FINAL_SQL
    );
    let release = format!(
        "in_flight = 0, lease_owner = NULL, lease_until = NULL, updated_at = {now}, attempts = attempts + $3"
    );
    let corrupt = |e: String| DbError::Sqlx(sqlx::Error::Decode(e.into()));
    let mch_id: String = sqlx::query_scalar("SELECT mch_id FROM payouts WHERE id = $1")
        .bind(claimed.id.clone())
        .fetch_one(&mut **tx)
        .await?;
    let (date, day) = day_of(claimed.created_at_ms);
    let sequence = allocate(tx, &mch_id, &day, 1).await?;
    let mch_id = MchId::parse(&mch_id).map_err(|e| corrupt(e.message))?;
    let billno = MchBillNo::generate_for(
        &mch_id,
        date,
        deployment,
        codec::whole(sequence, "a billno sequence")?,
    )
    .map_err(|e| corrupt(e.message))?;
    let request = match &claimed.request {
        RailRequest::Redpack { prepared, .. } => serde_json::to_string(
            &crate::rail::redpack::reissue(prepared, &billno).map_err(corrupt)?,
        )
        .expect("a request serialises"),
        RailRequest::Transfer { prepared } => {
            let out_bill_no = OutBillNo::parse(billno.as_str()).map_err(|e| corrupt(e.message))?;
            crate::rail::transfer::to_stored(
                &crate::rail::transfer::reissue(prepared, &out_bill_no).map_err(corrupt)?,
            )
        }
    };
    let sql = format!(
        "UPDATE payouts SET mch_billno = $4, request = $5, status = 'pending', due_at = {now}, needs_query = 0, \
         merchant_refused = 0, retries = 0, err_code = NULL, {release} {lease}"
    );
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(claimed.id.clone())
        .bind(owner.to_owned())
        .bind(sends)
        .bind(billno.as_str().to_owned())
        .bind(request)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves prize `prize_id` on as `effect` says, in the transaction that
/// records the outcome of its payout `record_id` (only when that outcome
/// was applied).
/// Applies what WeChat told about record `id`'s accepted order (a
/// follow-up query, a callback, a user's question): its state, and the
/// prize's part when the order closed unpaid. A record that can change no
/// more keeps its outcome. With `settle`, a record the dispatcher has not
/// yet seen accepted (a callback arriving before the create's answer) is
/// settled too, and whatever call is in flight for it is recorded without
/// changing it. Returns whether the record changed.
pub(super) async fn apply_news(
    tx: &mut Tx,
    now: &str,
    id: &str,
    state: &OrderState,
    settle: bool,
    follow_in_ms: Option<i64>,
) -> Result<bool, DbError> {
    let closed = matches!(state.status, Status::Failed | Status::Cancelled);
    let code = closed.then(|| {
        let transfer_state = if state.status == Status::Cancelled {
            hongbao_wxpay::v3::TransferState::Cancelled
        } else {
            hongbao_wxpay::v3::TransferState::Fail
        };
        crate::rail::transfer::fail_code(state.fail_reason.as_deref(), transfer_state)
    });
    let unsettled = if settle {
        ""
    } else {
        " AND status NOT IN ('pending', 'sending')"
    };
    let sql = format!(
        "UPDATE payouts SET status = $1, wechat_status = $2, send_listid = COALESCE(send_listid, $3), \
         refund_amount = COALESCE($4, refund_amount), package = COALESCE(package, $5), \
         fail_reason = COALESCE($6, fail_reason), err_code = COALESCE($7, err_code), \
         message = COALESCE($8, message), zh_message = COALESCE($9, zh_message), \
         reconcile_at = CASE WHEN $1 IN {final_sql} THEN NULL WHEN $11 >= 0 THEN {now} + $11 ELSE reconcile_at END, \
         due_at = CASE WHEN status IN ('pending', 'sending') THEN NULL ELSE due_at END, \
         needs_query = 0, in_flight = 0, lease_owner = CASE WHEN status IN ('pending', 'sending') THEN NULL ELSE lease_owner END, \
         lease_until = CASE WHEN status IN ('pending', 'sending') THEN NULL ELSE lease_until END, updated_at = {now} \
         WHERE id = $10 AND status NOT IN {final_sql}{unsettled} RETURNING prize_id",
        final_sql = Status::FINAL_SQL,
    );
    let changed = sqlx::query(AssertSqlSafe(sql))
        .bind(state.status.as_str())
        .bind(codec::storable(&state.wechat_status))
        .bind(state.external_id.as_deref().map(codec::storable))
        .bind(state.refund_amount.map(fen_to_db))
        .bind(state.package.as_deref().map(codec::storable))
        .bind(state.fail_reason.as_deref().map(codec::storable))
        .bind(code.as_ref().map(|c| codec::storable(&c.code)))
        .bind(code.as_ref().map(|c| codec::storable(&c.message)))
        .bind(code.as_ref().map(|c| codec::storable(&c.zh_message)))
        .bind(id.to_owned())
        .bind(follow_in_ms.unwrap_or(-1))
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = changed else {
        return Ok(false);
    };
    let prize_id: Option<String> = row.try_get("prize_id")?;
    if let Some(prize_id) = prize_id {
        let effect = match state.status {
            Status::Succeeded => Some(PrizeEffect::Issued),
            _ => crate::decide::news_prize_effect(state),
        };
        if let Some(effect) = effect {
            apply_prize_effect(tx, now, &prize_id, id, &effect).await?;
        }
    }
    Ok(true)
}

async fn apply_prize_effect(
    tx: &mut Tx,
    now: &str,
    prize_id: &str,
    record_id: &str,
    effect: &PrizeEffect,
) -> Result<(), DbError> {
    match effect {
        PrizeEffect::Issued => {
            let sql = format!(
                "UPDATE prizes SET status = 'issued', last_err_code = NULL, updated_at = {now} \
                 WHERE id = $1 AND payout_id = $2 AND status = 'issuing'"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(prize_id.to_owned())
                .bind(record_id.to_owned())
                .execute(&mut **tx)
                .await?;
        }
        PrizeEffect::Released { err_code } => {
            // Nothing was paid (gethbinfo confirmed it): the prize is
            // claimable again, its budget and daily count given back.
            let sql = format!(
                "UPDATE prizes SET status = 'pending', payout_id = NULL, last_err_code = $3, updated_at = {now} \
                 WHERE id = $1 AND payout_id = $2 AND status IN ('issuing', 'issued') \
                 RETURNING activity_id, amount, claimed_openid, claim_day"
            );
            let released = sqlx::query(AssertSqlSafe(sql))
                .bind(prize_id.to_owned())
                .bind(record_id.to_owned())
                .bind(codec::storable(err_code))
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(row) = released {
                let activity_id: String = row.try_get("activity_id")?;
                let amount: i64 = row.try_get("amount")?;
                let openid: Option<String> = row.try_get("claimed_openid")?;
                let day: Option<String> = row.try_get("claim_day")?;
                sqlx::query(
                    "UPDATE activities SET committed = CASE WHEN committed >= $2 THEN committed - $2 ELSE 0 END \
                     WHERE id = $1",
                )
                .bind(activity_id.clone())
                .bind(amount)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "UPDATE activity_user_days SET claims = claims - 1 \
                     WHERE activity_id = $1 AND openid = $2 AND day = $3 AND claims > 0",
                )
                .bind(activity_id)
                .bind(openid)
                .bind(day)
                .execute(&mut **tx)
                .await?;
            }
        }
        PrizeEffect::Failed { err_code } => {
            let sql = format!(
                "UPDATE prizes SET status = 'failed', last_err_code = $3, updated_at = {now} \
                 WHERE id = $1 AND payout_id = $2 AND status = 'issuing'"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(prize_id.to_owned())
                .bind(record_id.to_owned())
                .bind(codec::storable(err_code))
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
