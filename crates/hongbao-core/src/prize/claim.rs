//! Claiming a prize: every check that can refuse it, then one transaction
//! (in the store) that moves the prize and stores its payout.

use std::time::Duration;

use hongbao_wxpay::{OfficialAccountError, OpenId};

use super::refusal::{ClaimError, Refusal, refusal_for};
use crate::config::TenantConfig;
use crate::model::{
    Prize, PrizeKind, PrizeStatus, Rail, RedpackInput, TransferInput, ValidRedpack, ValidTransfer,
};
use crate::payouts::Payouts;
use crate::store::NewRecord;
use crate::store::db::DbError;
use crate::store::prizes::{Blocked, claims_today, get_activity, get_prize, store_claim};

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
    let misconfigured = |e: hongbao_wxpay::InvalidField| Refusal::Misconfigured {
        message: format!("activity {:?}: {}: {}", def.name, e.field, e.message),
        zh_message: format!("活动 {:?}：{}：{}", def.name, e.field, e.zh_message),
    };
    let valid: crate::model::Valid = match def.rail {
        Rail::Transfer => {
            let input = TransferInput {
                merchant: Some(def.merchant.clone()),
                openid: openid.as_str().to_owned(),
                transfer_amount: prize.amount.get(),
                transfer_remark: Some(def.remark.clone()),
                activity_name: Some(def.act_name.clone()),
                reward_description: Some(def.wishing.clone()),
                user_recv_perception: None,
                user_name: None,
            };
            ValidTransfer::validate(&input, &merchant.config, None)
                .map_err(misconfigured)?
                .into()
        }
        Rail::Redpack => redpack_of(def, &openid, prize.amount.get(), &merchant.config)
            .map_err(misconfigured)?
            .into(),
    };
    let record = NewRecord {
        tenant: tenant.name.clone(),
        mch_id: merchant.config.mch_id.clone(),
        valid,
        idempotency: None,
        campaign_id: None,
        campaign_line: None,
        prize_id: Some(prize.id.clone()),
        daily_cap: None,
    };
    store(payouts, &prize, &activity, &openid, record).await
}

/// A prize's red packet.
fn redpack_of(
    def: &crate::model::ActivityDef,
    openid: &OpenId,
    fen: u64,
    merchant: &crate::config::MerchantConfig,
) -> Result<ValidRedpack, hongbao_wxpay::InvalidField> {
    let input = RedpackInput {
        kind: def.kind,
        merchant: Some(def.merchant.clone()),
        re_openid: openid.as_str().to_owned(),
        total_amount: fen,
        total_num: None,
        send_name: Some(def.send_name.clone()),
        wishing: Some(def.wishing.clone()),
        act_name: Some(def.act_name.clone()),
        remark: Some(def.remark.clone()),
        scene_id: def.scene_id.clone(),
        risk_info: None,
    };
    ValidRedpack::validate(&input, merchant)
}

/// Stores the claim and its payout in one transaction.
async fn store(
    payouts: &Payouts,
    prize: &Prize,
    activity: &crate::model::Activity,
    openid: &OpenId,
    record: NewRecord,
) -> Result<Prize, ClaimError> {
    let ledger = payouts.ledger();
    match store_claim(ledger, prize, activity, openid, record).await? {
        Ok(_) => {}
        Err(Blocked::NotClaimable(status)) => {
            return Err(status
                .and_then(refusal_for)
                .unwrap_or(Refusal::NotFound)
                .into());
        }
        Err(Blocked::Budget) => {
            return Err(Refusal::BudgetExhausted {
                activity: activity.def.name.clone(),
            }
            .into());
        }
        Err(Blocked::DailyLimit(limit)) => return Err(Refusal::DailyLimit { limit }.into()),
        Err(Blocked::Store(e)) => return Err(ClaimError::Internal(e.to_string())),
    }
    payouts.events().new_work();
    get_prize(ledger, &prize.tenant, &prize.id)
        .await?
        .ok_or_else(|| ClaimError::Internal("the prize vanished".into()))
}

/// Waits up to `timeout` for the payout of a claimed prize to have an
/// outcome; returns the prize as it then is.
pub async fn wait(payouts: &Payouts, prize: Prize, timeout: Duration) -> Result<Prize, DbError> {
    let Some(payout_id) = prize.payout_id.clone() else {
        return Ok(prize);
    };
    if prize.status != PrizeStatus::Issuing {
        return Ok(prize);
    }
    payouts.wait(&payout_id, timeout).await?;
    Ok(get_prize(payouts.ledger(), &prize.tenant, &prize.id)
        .await?
        .unwrap_or(prize))
}

async fn follow_check(
    merchant: &crate::merchant::MerchantRuntime,
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
