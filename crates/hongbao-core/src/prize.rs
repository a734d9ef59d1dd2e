//! Activities and prizes: the lottery flow.
//!
//! A prize granted to a user is claimed once. Every check that can refuse a
//! claim is made first (the prize, its type, its amount against the
//! activity's range, the budget, the user's daily count, the follow check);
//! then one transaction moves the prize to `issuing`, counts it against the
//! budget and the daily count (both again, atomically) and stores its one
//! payout record with its mch_billno. The dispatcher pays that record like
//! any other, and the transaction that records its outcome moves the prize
//! on: `issued`, or — after a recipient-level refusal that gethbinfo
//! confirmed — back to claimable, where a new claim gets a new mch_billno.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hongbao_wxpay::request::check_amount;
use hongbao_wxpay::{Fen, InvalidField, OfficialAccountError, OpenId, SceneId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;

use crate::config::{MerchantConfig, TenantConfig};
use crate::db::{Arg, DbError, Tx};
use crate::ledger::{Claimed, Idempotency, Ledger, NewRecord, Transition, new_id};
use crate::model::{Kind, RedpackInput, Status, ValidRedpack, from_ms};
use crate::payouts::Payouts;

/// What a prize is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PrizeKind {
    /// A cash red packet: the only kind that is paid.
    #[default]
    CashRedpack,
    /// A coupon.
    Coupon,
    /// Points.
    Points,
    /// Goods.
    Goods,
    /// Anything else.
    Other,
}

impl PrizeKind {
    /// Every kind.
    pub const ALL: [PrizeKind; 5] = [
        PrizeKind::CashRedpack,
        PrizeKind::Coupon,
        PrizeKind::Points,
        PrizeKind::Goods,
        PrizeKind::Other,
    ];

    /// The API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PrizeKind::CashRedpack => "cash_redpack",
            PrizeKind::Coupon => "coupon",
            PrizeKind::Points => "points",
            PrizeKind::Goods => "goods",
            PrizeKind::Other => "other",
        }
    }
}

impl FromStr for PrizeKind {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        PrizeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                InvalidField::new(
                    "type",
                    format!(
                        "{s:?} is not a prize type; use cash_redpack, coupon, points, goods or other"
                    ),
                    format!("{s:?} 不是有效的奖品类型；请使用 cash_redpack、coupon、points、goods 或 other"),
                )
            })
    }
}

impl fmt::Display for PrizeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a prize stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrizeStatus {
    /// Granted; claimable (again, if a claim did not pay).
    Pending,
    /// Claimed; its red packet is being paid.
    Issuing,
    /// Its red packet was sent.
    Issued,
    /// Its payout failed in a way an operator must look at.
    Failed,
}

impl PrizeStatus {
    /// Every status.
    pub const ALL: [PrizeStatus; 4] = [
        PrizeStatus::Pending,
        PrizeStatus::Issuing,
        PrizeStatus::Issued,
        PrizeStatus::Failed,
    ];

    /// The API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PrizeStatus::Pending => "pending",
            PrizeStatus::Issuing => "issuing",
            PrizeStatus::Issued => "issued",
            PrizeStatus::Failed => "failed",
        }
    }
}

impl FromStr for PrizeStatus {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        PrizeStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                InvalidField::new(
                    "status",
                    format!("{s:?} is not a prize status; use pending, issuing, issued or failed"),
                    format!("{s:?} 不是有效的奖品状态；请使用 pending、issuing、issued 或 failed"),
                )
            })
    }
}

impl fmt::Display for PrizeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an activity should be, before its rules are checked. Texts left
/// out take the merchant's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivitySpec {
    /// Its name, unique per tenant.
    pub name: String,
    /// The kind of red packet its prizes are paid as (`normal` or `miniprogram`).
    pub kind: Kind,
    /// The scene (`PRODUCT_1`…`PRODUCT_8`), needed outside 1.00–200.00 yuan.
    pub scene_id: Option<String>,
    /// The least a prize may be, in fen.
    pub min_amount: u64,
    /// The most a prize may be, in fen.
    pub max_amount: u64,
    /// The sender's name.
    pub send_name: Option<String>,
    /// The blessing.
    pub wishing: Option<String>,
    /// The activity's name as WeChat shows it.
    pub act_name: Option<String>,
    /// A remark.
    pub remark: Option<String>,
    /// The most its prizes may pay in all, in fen.
    pub budget: Option<u64>,
    /// The most prizes one openid may claim per day (Beijing).
    pub per_user_daily: Option<u64>,
    /// Whether claimers must follow the official account; by default yes
    /// for normal red packets, no for mini program ones.
    pub require_follow: Option<bool>,
}

impl ActivitySpec {
    /// An activity named `name` with every default: 1.00–200.00 yuan, no
    /// budget, no daily count.
    pub fn named(name: impl Into<String>) -> ActivitySpec {
        ActivitySpec {
            name: name.into(),
            kind: Kind::Normal,
            scene_id: None,
            min_amount: hongbao_wxpay::request::amount::DEFAULT_MIN.get(),
            max_amount: hongbao_wxpay::request::amount::DEFAULT_MAX.get(),
            send_name: None,
            wishing: None,
            act_name: None,
            remark: None,
            budget: None,
            per_user_daily: None,
            require_follow: None,
        }
    }
}

/// An activity's rules, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityDef {
    /// Its name.
    pub name: String,
    /// The merchant paying.
    pub merchant: String,
    /// `normal` or `miniprogram`.
    pub kind: Kind,
    /// The scene.
    pub scene_id: Option<String>,
    /// The least a prize may be.
    pub min_amount: Fen,
    /// The most a prize may be.
    pub max_amount: Fen,
    /// The sender's name.
    pub send_name: String,
    /// The blessing.
    pub wishing: String,
    /// The activity's name as WeChat shows it.
    pub act_name: String,
    /// A remark.
    pub remark: String,
    /// The most its prizes may pay in all.
    pub budget: Option<Fen>,
    /// The most prizes one openid may claim per day.
    pub per_user_daily: Option<u64>,
    /// Whether claimers must follow the official account.
    pub require_follow: bool,
}

impl ActivityDef {
    /// The spec that gives this definition (to change a field of it).
    pub fn spec(&self) -> ActivitySpec {
        ActivitySpec {
            name: self.name.clone(),
            kind: self.kind,
            scene_id: self.scene_id.clone(),
            min_amount: self.min_amount.get(),
            max_amount: self.max_amount.get(),
            send_name: Some(self.send_name.clone()),
            wishing: Some(self.wishing.clone()),
            act_name: Some(self.act_name.clone()),
            remark: Some(self.remark.clone()),
            budget: self.budget.map(Fen::get),
            per_user_daily: self.per_user_daily,
            require_follow: Some(self.require_follow),
        }
    }

    /// Whether `amount` is inside the range.
    pub fn allows(&self, amount: Fen) -> bool {
        (self.min_amount..=self.max_amount).contains(&amount)
    }
}

/// An openid of the right shape, for checking texts and amounts the way a
/// real payout will be checked.
const PROBE_OPENID: &str = "oProbe0000000000000000000000";

/// Checks an activity against WeChat's rules and `merchant`'s configuration.
pub fn validate_activity(
    spec: &ActivitySpec,
    merchant: &MerchantConfig,
) -> Result<ActivityDef, InvalidField> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(InvalidField::new(
            "name",
            "must be 1 to 64 characters, without control characters",
            "必须为 1 到 64 个字符，且不含控制字符",
        ));
    }
    if spec.kind == Kind::Group {
        return Err(InvalidField::new(
            "type",
            "a prize is paid as one packet to one user: use normal or miniprogram",
            "奖品以单个红包发给一位用户：请使用 normal 或 miniprogram",
        ));
    }
    let scene_id = spec
        .scene_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(SceneId::parse)
        .transpose()?;
    for (field, fen) in [
        ("min_amount", spec.min_amount),
        ("max_amount", spec.max_amount),
    ] {
        if fen == 0 {
            return Err(InvalidField::new(
                field,
                "must be a positive number of fen (100 is 1.00 yuan)",
                "必须是正整数，单位为分（100 即 1.00 元）",
            ));
        }
        check_amount(Fen::new(fen), scene_id).map_err(|e| e.for_field(field))?;
    }
    if spec.min_amount > spec.max_amount {
        return Err(InvalidField::new(
            "min_amount",
            format!(
                "{} yuan is more than max_amount {} yuan",
                Fen::new(spec.min_amount),
                Fen::new(spec.max_amount)
            ),
            format!(
                "{} 元大于 max_amount {} 元",
                Fen::new(spec.min_amount),
                Fen::new(spec.max_amount)
            ),
        ));
    }
    // The texts and the kind are checked as a real payout will be.
    let probe = RedpackInput {
        kind: spec.kind,
        merchant: Some(merchant.name.clone()),
        re_openid: PROBE_OPENID.into(),
        total_amount: spec.min_amount,
        total_num: None,
        send_name: spec.send_name.clone(),
        wishing: spec.wishing.clone(),
        act_name: spec.act_name.clone(),
        remark: spec.remark.clone(),
        scene_id: spec.scene_id.clone(),
        risk_info: None,
    };
    let valid = ValidRedpack::validate(&probe, merchant)?;
    if spec.budget == Some(0) {
        return Err(InvalidField::new(
            "budget",
            "must be a positive number of fen, or null for no budget",
            "必须是正整数（分），或为 null 表示不限预算",
        ));
    }
    if spec.per_user_daily == Some(0) {
        return Err(InvalidField::new(
            "per_user_daily",
            "must be at least 1, or null for no daily count",
            "至少为 1，或为 null 表示不限次数",
        ));
    }
    let require_follow = spec.require_follow.unwrap_or(spec.kind == Kind::Normal);
    if require_follow && spec.kind == Kind::MiniProgram {
        return Err(InvalidField::new(
            "require_follow",
            "the follow check needs the official account's openid, and a mini program's openids are not the account's: set require_follow to false",
            "关注检查需要公众号的 openid，小程序的 openid 与公众号不同：请将 require_follow 设为 false",
        ));
    }
    if require_follow && merchant.app_secret.is_none() {
        let m = &merchant.name;
        return Err(InvalidField::new(
            "require_follow",
            format!(
                "merchant {m} has no app_secret, so whether users follow the official account cannot be checked: \
                 set merchants.{m}.app_secret (the account's AppSecret, mp.weixin.qq.com → 设置与开发 → 基本配置), or set require_follow to false"
            ),
            format!(
                "商户 {m} 未配置 app_secret，无法检查用户是否关注公众号：请设置 merchants.{m}.app_secret（公众号 AppSecret），或将 require_follow 设为 false"
            ),
        ));
    }
    Ok(ActivityDef {
        name: name.to_owned(),
        merchant: merchant.name.clone(),
        kind: spec.kind,
        scene_id: scene_id.map(|s| s.as_str().to_owned()),
        min_amount: Fen::new(spec.min_amount),
        max_amount: Fen::new(spec.max_amount),
        send_name: valid.send_name,
        wishing: valid.wishing,
        act_name: valid.act_name,
        remark: valid.remark,
        budget: spec.budget.map(Fen::new),
        per_user_daily: spec.per_user_daily,
        require_follow,
    })
}

/// A stored activity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// `ac_` and a ULID.
    pub id: String,
    /// The tenant that owns it.
    pub tenant: String,
    /// Its rules.
    pub def: ActivityDef,
    /// Fen of its prizes being paid or paid.
    pub committed: Fen,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl Activity {
    /// What is left of the budget, if there is one.
    pub fn budget_left(&self) -> Option<Fen> {
        self.def
            .budget
            .map(|b| Fen::new(b.get().saturating_sub(self.committed.get())))
    }
}

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
    wishing, act_name, remark, budget, per_user_daily, require_follow, committed, created_at, updated_at";

fn corrupt(what: impl Into<String>) -> DbError {
    DbError::Sqlx(sqlx::Error::Decode(what.into().into()))
}

fn fen_col(row: &AnyRow, col: &str) -> Result<Fen, DbError> {
    Ok(Fen::new(
        u64::try_from(row.try_get::<i64, _>(col)?).unwrap_or(0),
    ))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn decode_activity(row: &AnyRow) -> Result<Activity, DbError> {
    let kind: String = row.try_get("kind")?;
    Ok(Activity {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        def: ActivityDef {
            name: row.try_get("name")?,
            merchant: row.try_get("merchant")?,
            kind: kind.parse().map_err(|e: InvalidField| corrupt(e.message))?,
            scene_id: row.try_get("scene_id")?,
            min_amount: fen_col(row, "min_amount")?,
            max_amount: fen_col(row, "max_amount")?,
            send_name: row.try_get("send_name")?,
            wishing: row.try_get("wishing")?,
            act_name: row.try_get("act_name")?,
            remark: row.try_get("remark")?,
            budget: row
                .try_get::<Option<i64>, _>("budget")?
                .map(|b| Fen::new(u64::try_from(b).unwrap_or(0))),
            per_user_daily: row
                .try_get::<Option<i64>, _>("per_user_daily")?
                .map(|n| u64::try_from(n).unwrap_or(0)),
            require_follow: row.try_get::<i64, _>("require_follow")? != 0,
        },
        committed: fen_col(row, "committed")?,
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
        to_i64(def.min_amount.get()).into(),
        to_i64(def.max_amount.get()).into(),
        def.send_name.as_str().into(),
        def.wishing.as_str().into(),
        def.act_name.as_str().into(),
        def.remark.as_str().into(),
        def.budget.map(|b| to_i64(b.get())).into(),
        def.per_user_daily.map(to_i64).into(),
        i64::from(def.require_follow).into(),
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
         act_name, remark, budget, per_user_daily, require_follow, committed, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, {now}, {now})",
        now = db.now_sql()
    );
    let id = new_id("ac");
    match db.execute(&sql, activity_args(&id, tenant, def)).await {
        Ok(_) => Ok((
            get_activity(ledger, tenant, &id)
                .await?
                .ok_or_else(|| corrupt("the activity vanished"))?,
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
         require_follow = $15, updated_at = {now} WHERE id = $1 AND tenant = $2",
        now = db.now_sql()
    );
    match db
        .execute(&sql, activity_args(&activity.id, &activity.tenant, def))
        .await
    {
        Ok(_) => get_activity(ledger, &activity.tenant, &activity.id)
            .await?
            .ok_or_else(|| corrupt("the activity vanished").into()),
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
        .bind(to_i64(limit))
        .bind(to_i64(offset))
        .fetch_all(ledger.db().pool())
        .await?;
    let activities = rows
        .iter()
        .map(decode_activity)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((activities, u64::try_from(total).unwrap_or(0)))
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
                    .map_err(|e: InvalidField| corrupt(e.message))?,
                u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                Fen::new(
                    u64::try_from(r.try_get::<Option<i64>, _>("amount")?.unwrap_or(0)).unwrap_or(0),
                ),
            ))
        })
        .collect()
}

/// A prize to grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrizeInput {
    /// The tenant's own reference of the user (its user id).
    pub user: String,
    /// What the prize is.
    pub kind: PrizeKind,
    /// Fen: required for a cash red packet, optional otherwise.
    pub amount: Option<u64>,
    /// The only openid that may claim it, if known when it is granted.
    pub openid: Option<String>,
}

/// A stored prize, with its activity's name and its payout's number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prize {
    /// `pz_` and a ULID.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The activity.
    pub activity_id: String,
    /// Its name.
    pub activity: String,
    /// The kind of red packet the activity pays.
    pub activity_kind: Kind,
    /// The tenant's user reference.
    pub user: String,
    /// What the prize is.
    pub kind: PrizeKind,
    /// Fen.
    pub amount: Fen,
    /// The only openid that may claim it, if bound.
    pub openid: Option<String>,
    /// Where it stands.
    pub status: PrizeStatus,
    /// The payout of the current (or last successful) claim.
    pub redpack_id: Option<String>,
    /// That payout's mch_billno.
    pub mch_billno: Option<String>,
    /// That payout's status.
    pub redpack_status: Option<Status>,
    /// The openid of the last claim.
    pub claimed_openid: Option<String>,
    /// Claims so far that got as far as a payout.
    pub claims: u64,
    /// Why the last claim did not pay (WeChat's err_code), if it did not.
    pub last_err_code: Option<String>,
    /// When it was granted.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl Prize {
    /// What to tell the user about the prize now, in English and Chinese:
    /// never a raw err_code.
    pub fn user_message(&self) -> (&'static str, &'static str) {
        match self.status {
            PrizeStatus::Pending => match self.last_err_code.as_deref() {
                None => ("Your prize is waiting to be claimed.", "奖品待领取。"),
                Some(code) => user_failure_message(code),
            },
            PrizeStatus::Issuing => (
                "Your red packet is on its way; it arrives in WeChat shortly.",
                "红包正在发放中，稍后将在微信中送达。",
            ),
            PrizeStatus::Issued if self.activity_kind == Kind::MiniProgram => (
                "Your red packet is ready: open it now.",
                "红包已准备好，请点击领取。",
            ),
            PrizeStatus::Issued => (
                "Your red packet was sent: open it in WeChat within 24 hours.",
                "红包已发放，请在 24 小时内到微信中领取。",
            ),
            PrizeStatus::Failed => (
                "Your red packet could not be sent; please contact customer service.",
                "红包发放失败，请联系客服。",
            ),
        }
    }
}

/// What a user is told when a claim did not pay, by WeChat's err_code.
pub fn user_failure_message(err_code: &str) -> (&'static str, &'static str) {
    match err_code {
        "SENDNUM_LIMIT" => (
            "You have received as many red packets as allowed today; claim this prize again tomorrow.",
            "您今天领取的红包个数已达上限，请明天再来领取。",
        ),
        "RCVDAMOUNT_LIMIT" => (
            "You have received as much red packet money as allowed today; claim this prize again tomorrow.",
            "您今天领取的红包金额已达上限，请明天再来领取。",
        ),
        "OPENID_ERROR" => (
            "This WeChat account cannot receive the red packet; open the prize from the official account and claim it again.",
            "当前微信账号无法领取该红包，请从公众号进入后重新领取。",
        ),
        _ => (
            "The red packet could not be sent just now; please claim your prize again later.",
            "红包暂时无法发放，请稍后重新领取。",
        ),
    }
}

const PRIZE_SELECT: &str = "SELECT p.id, p.tenant, p.activity_id, a.name AS activity_name, a.kind AS activity_kind, \
    p.user_ref, p.kind AS prize_kind, p.amount, p.openid, p.status AS prize_status, p.redpack_id, p.claimed_openid, \
    p.claims, p.last_err_code, p.created_at, p.updated_at, r.mch_billno, r.status AS redpack_status \
    FROM prizes p JOIN activities a ON a.id = p.activity_id LEFT JOIN redpacks r ON r.id = p.redpack_id";

fn decode_prize(row: &AnyRow) -> Result<Prize, DbError> {
    let parse_err = |e: InvalidField| corrupt(e.message);
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
        amount: fen_col(row, "amount")?,
        openid: row.try_get("openid")?,
        status: row
            .try_get::<String, _>("prize_status")?
            .parse()
            .map_err(parse_err)?,
        redpack_id: row.try_get("redpack_id")?,
        mch_billno: row.try_get("mch_billno")?,
        redpack_status: row
            .try_get::<Option<String>, _>("redpack_status")?
            .map(|s| s.parse())
            .transpose()
            .map_err(parse_err)?,
        claimed_openid: row.try_get("claimed_openid")?,
        claims: u64::try_from(row.try_get::<i64, _>("claims")?).unwrap_or(0),
        last_err_code: row.try_get("last_err_code")?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

/// Checks a prize to grant in `activity`.
pub fn validate_grant(input: &PrizeInput, activity: &Activity) -> Result<(), InvalidField> {
    let user = input.user.trim();
    if user.is_empty() || user.chars().count() > 128 || user.chars().any(char::is_control) {
        return Err(InvalidField::new(
            "user",
            "must be 1 to 128 characters, without control characters: your own reference of the user",
            "必须为 1 到 128 个字符，且不含控制字符：您系统中的用户标识",
        ));
    }
    if let Some(openid) = &input.openid {
        OpenId::parse(openid).map_err(|e| e.for_field("openid"))?;
    }
    if input.kind != PrizeKind::CashRedpack {
        return Ok(());
    }
    let Some(amount) = input.amount else {
        return Err(InvalidField::new(
            "amount",
            "is required for a cash_redpack prize: fen (100 is 1.00 yuan)",
            "现金红包奖品必须填写 amount：单位为分（100 即 1.00 元）",
        ));
    };
    let def = &activity.def;
    if !def.allows(Fen::new(amount)) {
        return Err(InvalidField::new(
            "amount",
            format!(
                "{amount} fen ({} yuan) is outside activity {:?}'s range {}–{} yuan",
                Fen::new(amount),
                def.name,
                def.min_amount,
                def.max_amount
            ),
            format!(
                "{amount} 分（{} 元）不在活动 {:?} 允许的 {}–{} 元范围内",
                Fen::new(amount),
                def.name,
                def.min_amount,
                def.max_amount
            ),
        ));
    }
    Ok(())
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

/// Grants a checked prize ([`validate_grant`]); a replayed idempotency key
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
        to_i64(input.amount.unwrap_or(0)).into(),
        input.openid.clone().into(),
        idempotency.map(|k| k.key.clone()).into(),
        idempotency.map(|k| k.request_hash.clone()).into(),
    ];
    let inserted = db.execute(&sql, args).await;
    match inserted {
        Ok(_) => Ok((
            get_prize(ledger, &tenant, &id)
                .await?
                .ok_or_else(|| corrupt("the prize vanished"))?,
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

/// The filter of a prize listing.
#[derive(Clone, Debug, Default)]
pub struct PrizeFilter {
    /// Only this user.
    pub user: Option<String>,
    /// Only this activity (id).
    pub activity_id: Option<String>,
    /// Only this status.
    pub status: Option<PrizeStatus>,
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
        .bind(to_i64(limit))
        .bind(to_i64(offset))
        .fetch_all(ledger.db().pool())
        .await?;
    let prizes = rows
        .iter()
        .map(decode_prize)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((prizes, u64::try_from(total).unwrap_or(0)))
}

/// Why a claim was refused: each with its own code and a message for the
/// user in English and Chinese.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such prize for this tenant.
    NotFound,
    /// The prize was paid.
    AlreadyClaimed,
    /// The prize is being paid.
    InProgress,
    /// The prize's payout failed in a way an operator must look at.
    PrizeFailed,
    /// The prize is not a cash red packet.
    NotCash(PrizeKind),
    /// The prize is bound to another openid.
    NotYours,
    /// The prize's amount is outside its activity's range: a configuration error.
    AmountOutOfRange {
        /// The prize's amount.
        amount: Fen,
        /// The activity.
        activity: String,
        /// Its least.
        min: Fen,
        /// Its most.
        max: Fen,
    },
    /// The activity's budget cannot pay this prize.
    BudgetExhausted {
        /// The activity.
        activity: String,
    },
    /// The openid claimed the most prizes of the activity allowed today.
    DailyLimit {
        /// The count allowed per day.
        limit: u64,
    },
    /// The user does not follow the official account.
    NotFollowing,
    /// The official account does not know the openid.
    UnknownOpenId,
    /// Whether the user follows could not be learnt.
    FollowCheckFailed(String),
    /// The activity or its merchant is configured wrongly (said so).
    Misconfigured {
        /// In English.
        message: String,
        /// In Chinese.
        zh_message: String,
    },
}

impl Refusal {
    /// The stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Refusal::NotFound => "prize_not_found",
            Refusal::AlreadyClaimed => "prize_already_claimed",
            Refusal::InProgress => "prize_claim_in_progress",
            Refusal::PrizeFailed => "prize_payout_failed",
            Refusal::NotCash(_) => "prize_not_cash",
            Refusal::NotYours => "prize_not_yours",
            Refusal::AmountOutOfRange { .. } => "prize_amount_out_of_range",
            Refusal::BudgetExhausted { .. } => "activity_budget_exhausted",
            Refusal::DailyLimit { .. } => "daily_claim_limit",
            Refusal::NotFollowing => "not_following",
            Refusal::UnknownOpenId => "openid_not_of_account",
            Refusal::FollowCheckFailed(_) => "follow_check_unavailable",
            Refusal::Misconfigured { .. } => "activity_misconfigured",
        }
    }

    /// In English.
    pub fn message(&self) -> String {
        match self {
            Refusal::NotFound => "no such prize".into(),
            Refusal::AlreadyClaimed => "this prize was already claimed".into(),
            Refusal::InProgress => {
                "this prize is being claimed; its red packet is on its way".into()
            }
            Refusal::PrizeFailed => {
                "this prize's red packet could not be sent; please contact customer service".into()
            }
            Refusal::NotCash(kind) => {
                format!("this prize cannot be claimed as cash (it is a {kind} prize)")
            }
            Refusal::NotYours => "this prize belongs to another user".into(),
            Refusal::AmountOutOfRange {
                amount,
                activity,
                min,
                max,
            } => format!(
                "configuration error: the prize is {amount} yuan, outside activity {activity:?}'s range {min}–{max} yuan; \
                 fix the activity's min_amount/max_amount or the prize"
            ),
            // Shown to the user: no internal name (the operator has the code).
            Refusal::BudgetExhausted { .. } => {
                "all of this activity's prize money has been given out; thank you for taking part"
                    .into()
            }
            Refusal::DailyLimit { limit } => format!(
                "you have claimed {limit} prize(s) of this activity today, the most allowed; come back tomorrow"
            ),
            Refusal::NotFollowing => "please follow the official account first".into(),
            Refusal::UnknownOpenId => {
                "this openid is not a user of the official account; open the prize from the official account".into()
            }
            Refusal::FollowCheckFailed(why) => format!(
                "whether you follow the official account could not be checked just now; try again shortly ({why})"
            ),
            Refusal::Misconfigured { message, .. } => format!("configuration error: {message}"),
        }
    }

    /// In Chinese.
    pub fn zh_message(&self) -> String {
        match self {
            Refusal::NotFound => "奖品不存在".into(),
            Refusal::AlreadyClaimed => "该奖品已领取".into(),
            Refusal::InProgress => "该奖品正在领取中，红包正在发放".into(),
            Refusal::PrizeFailed => "该奖品的红包发放失败，请联系客服".into(),
            Refusal::NotCash(kind) => format!("该奖品不能以现金领取（奖品类型为 {kind}）"),
            Refusal::NotYours => "该奖品属于其他用户".into(),
            Refusal::AmountOutOfRange {
                amount,
                activity,
                min,
                max,
            } => format!(
                "配置错误：奖品金额 {amount} 元不在活动 {activity:?} 允许的 {min}–{max} 元范围内，请修改活动的 min_amount/max_amount 或奖品"
            ),
            Refusal::BudgetExhausted { .. } => "本活动的奖金已发完，感谢参与（预算已用完）".into(),
            Refusal::DailyLimit { limit } => {
                format!("您今天已在本活动领取 {limit} 次，已达上限，请明天再来")
            }
            Refusal::NotFollowing => "请先关注公众号".into(),
            Refusal::UnknownOpenId => "该 openid 不是本公众号的用户，请从公众号进入领取".into(),
            Refusal::FollowCheckFailed(_) => "暂时无法确认您是否关注公众号，请稍后重试".into(),
            Refusal::Misconfigured { zh_message, .. } => format!("配置错误：{zh_message}"),
        }
    }
}

/// Why a claim did not go through.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// One of the checks refused it.
    #[error("{}", .0.message())]
    Refused(Refusal),
    /// A field of the request breaks a rule.
    #[error("{0}")]
    Invalid(InvalidField),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Something else failed (logged, not answered).
    #[error("{0}")]
    Internal(String),
}

impl From<Refusal> for ClaimError {
    fn from(r: Refusal) -> Self {
        ClaimError::Refused(r)
    }
}

fn refusal_for(status: PrizeStatus) -> Option<Refusal> {
    match status {
        PrizeStatus::Pending => None,
        PrizeStatus::Issuing => Some(Refusal::InProgress),
        PrizeStatus::Issued => Some(Refusal::AlreadyClaimed),
        PrizeStatus::Failed => Some(Refusal::PrizeFailed),
    }
}

/// Claims prize `id` of `tenant` for `openid`: every check, then the claim
/// and its payout record in one transaction. Returns the prize, `issuing`.
pub async fn claim(
    payouts: &Payouts,
    tenant: &TenantConfig,
    id: &str,
    openid: &str,
) -> Result<Prize, ClaimError> {
    let result = claim_checked(payouts, tenant, id, openid).await;
    payouts.metrics().claim(match &result {
        Ok(_) => "accepted",
        Err(ClaimError::Refused(r)) => r.code(),
        Err(ClaimError::Invalid(_)) => "invalid",
        Err(ClaimError::Db(_) | ClaimError::Internal(_)) => "error",
    });
    result
}

async fn claim_checked(
    payouts: &Payouts,
    tenant: &TenantConfig,
    id: &str,
    openid: &str,
) -> Result<Prize, ClaimError> {
    let ledger = payouts.ledger();
    let openid =
        OpenId::parse(openid.trim()).map_err(|e| ClaimError::Invalid(e.for_field("openid")))?;
    let prize = get_prize(ledger, &tenant.name, id)
        .await?
        .ok_or(Refusal::NotFound)?;
    if let Some(refusal) = refusal_for(prize.status) {
        return Err(refusal.into());
    }
    if prize.kind != PrizeKind::CashRedpack {
        return Err(Refusal::NotCash(prize.kind).into());
    }
    if prize
        .openid
        .as_deref()
        .is_some_and(|o| o != openid.as_str())
    {
        return Err(Refusal::NotYours.into());
    }
    let activity = get_activity(ledger, &tenant.name, &prize.activity_id)
        .await?
        .ok_or_else(|| ClaimError::Internal(format!("prize {id} has no activity")))?;
    let def = &activity.def;
    if !def.allows(prize.amount) {
        return Err(Refusal::AmountOutOfRange {
            amount: prize.amount,
            activity: def.name.clone(),
            min: def.min_amount,
            max: def.max_amount,
        }
        .into());
    }
    let merchant = payouts
        .resolve_merchant(tenant, Some(&def.merchant))
        .map_err(|e| Refusal::Misconfigured {
            message: format!("activity {:?}: {}", def.name, e.message),
            zh_message: format!("活动 {:?}：{}", def.name, e.zh_message),
        })?
        .clone();
    if activity
        .budget_left()
        .is_some_and(|left| left < prize.amount)
    {
        return Err(Refusal::BudgetExhausted {
            activity: def.name.clone(),
        }
        .into());
    }
    if let Some(limit) = def.per_user_daily
        && claims_today(ledger, &activity.id, openid.as_str()).await? >= limit
    {
        return Err(Refusal::DailyLimit { limit }.into());
    }
    if def.require_follow {
        follow_check(&merchant, &openid).await?;
    }
    let input = RedpackInput {
        kind: def.kind,
        merchant: Some(def.merchant.clone()),
        re_openid: openid.as_str().to_owned(),
        total_amount: prize.amount.get(),
        total_num: None,
        send_name: Some(def.send_name.clone()),
        wishing: Some(def.wishing.clone()),
        act_name: Some(def.act_name.clone()),
        remark: Some(def.remark.clone()),
        scene_id: def.scene_id.clone(),
        risk_info: None,
    };
    let valid =
        ValidRedpack::validate(&input, &merchant.config).map_err(|e| Refusal::Misconfigured {
            message: format!("activity {:?}: {}: {}", def.name, e.field, e.message),
            zh_message: format!("活动 {:?}：{}：{}", def.name, e.field, e.zh_message),
        })?;
    let record = NewRecord {
        tenant: tenant.name.clone(),
        mch_id: merchant.config.mch_id.clone(),
        valid,
        idempotency: None,
        campaign_id: None,
        campaign_line: None,
        prize_id: Some(prize.id.clone()),
    };
    if let Err(refusal) = store_claim(ledger, &prize, &activity, &openid, record).await? {
        return Err(refusal.into());
    }
    payouts.events().new_work();
    get_prize(ledger, &tenant.name, &prize.id)
        .await?
        .ok_or_else(|| ClaimError::Internal("the prize vanished".into()))
}

/// Waits up to `timeout` for the payout of a claimed prize to have an
/// outcome; returns the prize as it then is.
pub async fn wait(payouts: &Payouts, prize: Prize, timeout: Duration) -> Result<Prize, DbError> {
    let Some(redpack_id) = prize.redpack_id.clone() else {
        return Ok(prize);
    };
    if prize.status != PrizeStatus::Issuing {
        return Ok(prize);
    }
    payouts.wait(&redpack_id, timeout).await?;
    Ok(get_prize(payouts.ledger(), &prize.tenant, &prize.id)
        .await?
        .unwrap_or(prize))
}

async fn claims_today(ledger: &Ledger, activity_id: &str, openid: &str) -> Result<u64, DbError> {
    let now = ledger.db().now_ms().await?;
    let (_, day) = crate::ledger::day_of(now);
    let claims: Option<i64> = sqlx::query_scalar(
        "SELECT claims FROM activity_user_days WHERE activity_id = $1 AND openid = $2 AND day = $3",
    )
    .bind(activity_id)
    .bind(openid)
    .bind(day)
    .fetch_optional(ledger.db().pool())
    .await?;
    Ok(claims.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
}

async fn follow_check(
    merchant: &crate::dispatch::MerchantRuntime,
    openid: &OpenId,
) -> Result<(), Refusal> {
    let account = merchant
        .official_account()
        .map_err(|message| Refusal::Misconfigured {
            zh_message: message.clone(),
            message,
        })?;
    let Some(account) = account else {
        let m = merchant.name();
        return Err(Refusal::Misconfigured {
            message: format!(
                "the activity requires following the official account, but merchant {m} has no app_secret"
            ),
            zh_message: format!("活动要求关注公众号，但商户 {m} 未配置 app_secret"),
        });
    };
    match account.is_follower(openid).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal::NotFollowing),
        // 40003: invalid openid (of another account).
        Err(OfficialAccountError::Api { errcode: 40003, .. }) => Err(Refusal::UnknownOpenId),
        Err(e) => {
            tracing::warn!(merchant = merchant.name(), error = %e, "follow check failed");
            Err(Refusal::FollowCheckFailed(e.to_string()))
        }
    }
}

/// The claim's transaction: the prize moves to `issuing` only if it is
/// still claimable, within the budget and the daily count, with its payout
/// record; any refusal rolls everything back.
async fn store_claim(
    ledger: &Ledger,
    prize: &Prize,
    activity: &Activity,
    openid: &OpenId,
    record: NewRecord,
) -> Result<Result<String, Refusal>, ClaimError> {
    let db = ledger.db().clone();
    let record = std::sync::Arc::new(record);
    let (prize_id, activity_id, activity_name, openid, amount, per_user_daily) = (
        prize.id.clone(),
        activity.id.clone(),
        activity.def.name.clone(),
        openid.as_str().to_owned(),
        to_i64(prize.amount.get()),
        activity.def.per_user_daily,
    );
    let done = db
        .try_write(|tx| {
            let (db, record) = (db.clone(), record.clone());
            let (prize_id, activity_id, activity_name, openid) = (
                prize_id.clone(),
                activity_id.clone(),
                activity_name.clone(),
                openid.clone(),
            );
            Box::pin(async move {
                let now_sql = format!("SELECT {}", db.now_sql());
                let now: i64 = sqlx::query_scalar(AssertSqlSafe(now_sql))
                    .fetch_one(&mut **tx)
                    .await?;
                let (_, day) = crate::ledger::day_of(now);
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
                    let refusal = status
                        .and_then(|s| s.parse().ok())
                        .and_then(refusal_for)
                        .unwrap_or(Refusal::NotFound);
                    return Ok(Err(ClaimFailure::Refused(refusal)));
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
                    return Ok(Err(ClaimFailure::Refused(Refusal::BudgetExhausted {
                        activity: activity_name,
                    })));
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
                    .bind(to_i64(limit))
                    .execute(&mut **tx)
                    .await?;
                    if counted.rows_affected() == 0 {
                        return Ok(Err(ClaimFailure::Refused(Refusal::DailyLimit { limit })));
                    }
                }
                let stored = crate::ledger::store_in(&db, tx, std::slice::from_ref(&*record)).await?;
                let redpack_id = match stored.into_iter().next() {
                    Some(Ok(stored)) => stored.record().id.clone(),
                    Some(Err(e)) => return Ok(Err(ClaimFailure::Store(e.to_string()))),
                    None => return Ok(Err(ClaimFailure::Store("nothing stored".into()))),
                };
                sqlx::query("UPDATE prizes SET redpack_id = $2 WHERE id = $1")
                    .bind(prize_id)
                    .bind(redpack_id.clone())
                    .execute(&mut **tx)
                    .await?;
                Ok(Ok(redpack_id))
            })
        })
        .await?;
    match done {
        Ok(id) => Ok(Ok(id)),
        Err(ClaimFailure::Refused(r)) => Ok(Err(r)),
        Err(ClaimFailure::Store(e)) => Err(ClaimError::Internal(e)),
    }
}

enum ClaimFailure {
    Refused(Refusal),
    Store(String),
}

/// Moves a prize on with the outcome of its payout, in the transaction
/// that records the outcome (called only when the outcome was applied).
pub(crate) async fn on_outcome(
    tx: &mut Tx,
    now: &str,
    claimed: &Claimed,
    transition: &Transition,
) -> Result<(), DbError> {
    let Some(prize_id) = &claimed.prize_id else {
        return Ok(());
    };
    match transition {
        Transition::Sent { .. } => {
            let sql = format!(
                "UPDATE prizes SET status = 'issued', last_err_code = NULL, updated_at = {now} \
                 WHERE id = $1 AND redpack_id = $2 AND status = 'issuing'"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(prize_id.clone())
                .bind(claimed.id.clone())
                .execute(&mut **tx)
                .await?;
        }
        Transition::Failed { err_code, .. } if crate::decide::releases_prize(err_code) => {
            // Nothing was paid (gethbinfo confirmed it): the prize is
            // claimable again, its budget and daily count given back.
            let sql = format!(
                "UPDATE prizes SET status = 'pending', redpack_id = NULL, last_err_code = $3, updated_at = {now} \
                 WHERE id = $1 AND redpack_id = $2 AND status = 'issuing' \
                 RETURNING activity_id, amount, claimed_openid, claim_day"
            );
            let released = sqlx::query(AssertSqlSafe(sql))
                .bind(prize_id.clone())
                .bind(claimed.id.clone())
                .bind(err_code.clone())
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
        Transition::Failed { err_code, .. } => {
            let sql = format!(
                "UPDATE prizes SET status = 'failed', last_err_code = $3, updated_at = {now} \
                 WHERE id = $1 AND redpack_id = $2 AND status = 'issuing'"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(prize_id.clone())
                .bind(claimed.id.clone())
                .bind(err_code.clone())
                .execute(&mut **tx)
                .await?;
        }
        Transition::Retry { .. } | Transition::Reissue => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_round_trip() {
        for kind in PrizeKind::ALL {
            assert_eq!(kind.as_str().parse::<PrizeKind>().unwrap(), kind);
        }
        for status in PrizeStatus::ALL {
            assert_eq!(status.as_str().parse::<PrizeStatus>().unwrap(), status);
        }
        let e = "cash".parse::<PrizeKind>().unwrap_err();
        assert_eq!(e.field, "type");
        assert!(e.message.contains("cash_redpack"));
    }

    #[test]
    fn every_refusal_has_a_code_and_both_messages() {
        let all = [
            Refusal::NotFound,
            Refusal::AlreadyClaimed,
            Refusal::InProgress,
            Refusal::PrizeFailed,
            Refusal::NotCash(PrizeKind::Coupon),
            Refusal::NotYours,
            Refusal::AmountOutOfRange {
                amount: Fen::new(50),
                activity: "spring".into(),
                min: Fen::new(100),
                max: Fen::new(20_000),
            },
            Refusal::BudgetExhausted {
                activity: "spring".into(),
            },
            Refusal::DailyLimit { limit: 2 },
            Refusal::NotFollowing,
            Refusal::UnknownOpenId,
            Refusal::FollowCheckFailed("timed out".into()),
            Refusal::Misconfigured {
                message: "m".into(),
                zh_message: "z".into(),
            },
        ];
        let codes: std::collections::BTreeSet<&str> = all.iter().map(Refusal::code).collect();
        assert_eq!(codes.len(), all.len(), "codes are distinct");
        for r in &all {
            assert!(!r.message().is_empty() && !r.zh_message().is_empty());
            assert!(!r.zh_message().is_ascii(), "{r:?} has a Chinese message");
        }
        assert_eq!(Refusal::NotFollowing.zh_message(), "请先关注公众号");
        let range = &all[6];
        assert!(range.message().starts_with("configuration error"));
        assert!(range.message().contains("0.50") && range.message().contains("1.00–200.00"));
    }

    #[test]
    fn users_are_told_what_happened_not_err_codes() {
        for code in [
            "SENDNUM_LIMIT",
            "RCVDAMOUNT_LIMIT",
            "OPENID_ERROR",
            "SEND_FAILED",
            "X",
        ] {
            let (en, zh) = user_failure_message(code);
            assert!(!en.contains(code) && !zh.contains(code));
        }
        assert!(user_failure_message("SENDNUM_LIMIT").0.contains("tomorrow"));
    }
}
