//! An activity's rules, checked against WeChat's and the merchant's.

use hongbao_wxpay::request::check_amount;
use hongbao_wxpay::{Fen, InvalidField, SceneId};

use crate::config::MerchantConfig;
use crate::model::{
    ActivityDef, ActivitySpec, Kind, Rail, RedpackInput, TransferInput, ValidRedpack, ValidTransfer,
};

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
    if spec.rail == Rail::Transfer {
        return validate_transfer_activity(name, spec, merchant);
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
    check_limits(spec)?;
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
        rail: Rail::Redpack,
    })
}

/// The budget and daily count, which every rail checks alike.
fn check_limits(spec: &ActivitySpec) -> Result<(), InvalidField> {
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
    Ok(())
}

/// An activity paid by transfer bill: its texts are the bill's remark
/// (`remark`), 活动名称 (`act_name`) and 奖励说明 (`wishing`), the merchant's
/// transfer defaults when left out; amounts from 0.10 yuan.
fn validate_transfer_activity(
    name: &str,
    spec: &ActivitySpec,
    merchant: &MerchantConfig,
) -> Result<ActivityDef, InvalidField> {
    if spec.kind != Kind::Normal {
        return Err(InvalidField::new(
            "type",
            "a transfer activity has no red packet type: leave type out",
            "转账活动没有红包类型：请不要填写 type",
        ));
    }
    if spec.scene_id.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(InvalidField::new(
            "scene_id",
            "is a red packet's scene: a transfer's scene is the merchant's transfer_scene_id",
            "scene_id 是红包的场景；转账场景为商户的 transfer_scene_id",
        ));
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
    let probe = |fen: u64| TransferInput {
        merchant: Some(merchant.name.clone()),
        openid: PROBE_OPENID.into(),
        transfer_amount: fen,
        transfer_remark: spec.remark.clone(),
        activity_name: spec.act_name.clone(),
        reward_description: spec.wishing.clone(),
        user_recv_perception: None,
        user_name: None,
    };
    let name_for = |field: &str| {
        match field {
            "transfer_remark" => "remark",
            "activity_name" => "act_name",
            "reward_description" => "wishing",
            "transfer_amount" => "min_amount",
            other => other,
        }
        .to_owned()
    };
    let fail = |e: InvalidField| InvalidField {
        field: name_for(&e.field).into(),
        ..e
    };
    let valid = ValidTransfer::validate(&probe(spec.min_amount), merchant, None).map_err(fail)?;
    // A prize from 2,000 yuan would need the payee's real name.
    if spec.max_amount >= crate::model::transfer::USER_NAME_FROM_FEN {
        return Err(InvalidField::new(
            "max_amount",
            "must be under 2,000 yuan (200000 fen): larger transfers need the payee's real name, which a prize claim does not carry",
            "必须低于 2000 元（200000 分）：更大金额的转账需要收款人姓名，领奖时无法提供",
        ));
    }
    check_limits(spec)?;
    let require_follow = spec.require_follow.unwrap_or(false);
    if require_follow && merchant.app_secret.is_none() {
        let m = &merchant.name;
        return Err(InvalidField::new(
            "require_follow",
            format!(
                "merchant {m} has no app_secret, so whether users follow the official account cannot be checked: set merchants.{m}.app_secret, or set require_follow to false"
            ),
            format!(
                "商户 {m} 未配置 app_secret，无法检查用户是否关注公众号：请设置 merchants.{m}.app_secret，或将 require_follow 设为 false"
            ),
        ));
    }
    Ok(ActivityDef {
        name: name.to_owned(),
        merchant: merchant.name.clone(),
        kind: Kind::Normal,
        scene_id: None,
        min_amount: Fen::new(spec.min_amount),
        max_amount: Fen::new(spec.max_amount),
        send_name: String::new(),
        wishing: valid.reward_description,
        act_name: valid.activity_name,
        remark: valid.transfer_remark,
        budget: spec.budget.map(Fen::new),
        per_user_daily: spec.per_user_daily,
        require_follow,
        rail: Rail::Transfer,
    })
}
