//! Granting a prize: the checks before it is stored.

use hongbao_wxpay::{Fen, InvalidField, OpenId};

use crate::model::{Activity, PrizeInput, PrizeKind};

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
