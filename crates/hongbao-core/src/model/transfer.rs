//! A transfer bill (APIv3 商家转账) as a caller asks for it, and validated
//! against every rule before anything is stored: only its `out_bill_no`
//! (allocated in the storing transaction) is missing.

use hongbao_wxpay::v3::{
    CreateTransfer, Encryptor, OutBillNo, Perception, PreparedTransfer, TransferSceneId,
};
use hongbao_wxpay::{AppId, Fen, InvalidField, OpenId};
use serde::{Deserialize, Serialize};

use crate::config::MerchantConfig;

/// Which user name the bill carries: from 2,000 yuan WeChat wants it.
pub const USER_NAME_FROM_FEN: u64 = 200_000;

/// How long a user has to confirm a bill before WeChat closes it.
pub const CONFIRM_WINDOW_MS: i64 = 24 * 3_600_000;

/// What a caller asks for: one transfer bill. Texts left out take the
/// merchant's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferInput {
    /// The merchant's name; the tenant's only merchant if left out.
    pub merchant: Option<String>,
    /// The payee's openid (under the merchant's appid).
    pub openid: String,
    /// The amount in fen, at least 10.
    pub transfer_amount: u64,
    /// Shown to the user (≤ 32 characters).
    pub transfer_remark: Option<String>,
    /// Scene 1000's 活动名称.
    pub activity_name: Option<String>,
    /// Scene 1000's 奖励说明.
    pub reward_description: Option<String>,
    /// 现金奖励 or 活动奖励.
    pub user_recv_perception: Option<String>,
    /// The payee's real name, in clear (encrypted before it is stored);
    /// required from 200000 fen.
    pub user_name: Option<String>,
}

/// A transfer that passed every rule (hongbao's and WeChat's).
#[derive(Clone, PartialEq, Eq)]
pub struct ValidTransfer {
    /// The merchant's name.
    pub merchant: String,
    /// The payee.
    pub openid: OpenId,
    /// The amount.
    pub transfer_amount: Fen,
    /// The remark shown to the user.
    pub transfer_remark: String,
    /// 活动名称.
    pub activity_name: String,
    /// 奖励说明.
    pub reward_description: String,
    /// 现金奖励 or 活动奖励, if given.
    pub perception: Option<Perception>,
    appid: AppId,
    scene: TransferSceneId,
    notify_url: Option<String>,
    /// `user_name`'s ciphertext and the key it was encrypted with.
    user_name: Option<(String, String)>,
}

impl std::fmt::Debug for ValidTransfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidTransfer")
            .field("merchant", &self.merchant)
            .field("openid", &self.openid)
            .field("transfer_amount", &self.transfer_amount)
            .field("transfer_remark", &self.transfer_remark)
            .field("user_name", &self.user_name.as_ref().map(|_| "<encrypted>"))
            .finish_non_exhaustive()
    }
}

fn text(
    field: &'static str,
    given: Option<&String>,
    default: Option<&String>,
    merchant: &str,
) -> Result<String, InvalidField> {
    match given.filter(|s| !s.trim().is_empty()).or(default) {
        Some(t) => Ok(t.clone()),
        None => Err(InvalidField::new(
            field,
            format!("is required: give it, or set a default {field} for merchant {merchant}"),
            format!("必填：请提供，或为商户 {merchant} 配置默认的 {field}"),
        )),
    }
}

impl ValidTransfer {
    /// Checks `input` for `merchant`, and encrypts `user_name` with
    /// `encryptor` (WeChat's public key), so that nothing invalid is ever
    /// stored or sent and no name is stored in clear.
    pub fn validate(
        input: &TransferInput,
        merchant: &MerchantConfig,
        encryptor: Option<&Encryptor>,
    ) -> Result<ValidTransfer, InvalidField> {
        let name = merchant.name.as_str();
        let Some(v3) = &merchant.v3 else {
            return Err(InvalidField::new(
                "merchant",
                format!(
                    "merchant {name} has no APIv3 keys, so it cannot pay by transfer: set apiv3_key and wechatpay_public_key (see docs/transfers.md)"
                ),
                format!(
                    "商户 {name} 未配置 APIv3 密钥，无法转账：请配置 apiv3_key 与 wechatpay_public_key（见 docs/transfers.md）"
                ),
            ));
        };
        let openid = OpenId::parse(input.openid.trim()).map_err(|e| InvalidField {
            field: "openid".into(),
            ..e
        })?;
        if input.transfer_amount >= USER_NAME_FROM_FEN
            && input
                .user_name
                .as_deref()
                .is_none_or(|n| n.trim().is_empty())
        {
            return Err(InvalidField::new(
                "user_name",
                "is required from 2,000 yuan (200000 fen): the payee's real name",
                "2000 元（200000 分）起必须提供收款用户姓名",
            ));
        }
        let perception = input
            .user_recv_perception
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(Perception::parse)
            .transpose()?;
        let user_name = match input.user_name.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(plain) => {
                let encryptor = encryptor.ok_or_else(|| {
                    InvalidField::new(
                        "user_name",
                        format!("merchant {name} has no WeChat public key to encrypt it with: configure wechatpay_public_key"),
                        format!("商户 {name} 未配置微信支付公钥，无法加密姓名：请配置 wechatpay_public_key"),
                    )
                })?;
                Some((encryptor.encrypt(plain)?, encryptor.serial().to_owned()))
            }
        };
        let valid = ValidTransfer {
            merchant: name.to_owned(),
            openid,
            transfer_amount: Fen::new(input.transfer_amount),
            transfer_remark: text(
                "transfer_remark",
                input.transfer_remark.as_ref(),
                v3.transfer_remark.as_ref(),
                name,
            )?,
            activity_name: text(
                "activity_name",
                input.activity_name.as_ref(),
                v3.activity_name.as_ref(),
                name,
            )?,
            reward_description: text(
                "reward_description",
                input.reward_description.as_ref(),
                v3.reward_description.as_ref(),
                name,
            )?,
            perception,
            appid: merchant.appid.clone(),
            scene: v3.transfer_scene_id.clone(),
            notify_url: v3.notify_url.clone(),
            user_name,
        };
        // WeChat's own rules, with a stand-in bill number.
        valid
            .create(&OutBillNo::parse("0").expect("a valid out_bill_no"))
            .validate()?;
        Ok(valid)
    }

    fn create(&self, out_bill_no: &OutBillNo) -> CreateTransfer {
        CreateTransfer {
            appid: self.appid.clone(),
            out_bill_no: out_bill_no.clone(),
            transfer_scene_id: self.scene.clone(),
            openid: self.openid.clone(),
            // Checked (and encrypted) already: the body takes the ciphertext.
            user_name: None,
            transfer_amount: self.transfer_amount,
            transfer_remark: self.transfer_remark.clone(),
            notify_url: self.notify_url.clone(),
            user_recv_perception: self.perception,
            transfer_scene_report_infos: CreateTransfer::cash_marketing_reports(
                &self.activity_name,
                &self.reward_description,
            ),
        }
    }

    /// The exact request to store and send, under `out_bill_no`.
    pub fn prepared(&self, out_bill_no: &OutBillNo) -> PreparedTransfer {
        let body = self
            .create(out_bill_no)
            .to_body(self.user_name.as_ref().map(|(c, _)| c.as_str()));
        PreparedTransfer::from_parts(
            out_bill_no.clone(),
            body,
            self.user_name.as_ref().map(|(_, serial)| serial.clone()),
        )
    }

    /// The user's perception, as stored.
    pub fn perception_text(&self) -> Option<&'static str> {
        self.perception.map(Perception::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> TransferInput {
        TransferInput {
            openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
            transfer_amount: 188,
            ..TransferInput::default()
        }
    }

    #[test]
    fn a_merchant_without_v3_keys_cannot_pay_by_transfer() {
        let mut merchant = crate::config::example_merchant();
        merchant.v3 = None;
        let e = ValidTransfer::validate(&input(), &merchant, None).unwrap_err();
        assert_eq!(e.field, "merchant");
        assert!(e.message.contains("APIv3"), "{e}");
    }

    #[test]
    fn each_rule_names_its_field() {
        let merchant = crate::config::example_merchant_v3();
        let valid = ValidTransfer::validate(&input(), &merchant, None).unwrap();
        let body = valid
            .prepared(&OutBillNo::parse("B1").unwrap())
            .body()
            .to_owned();
        assert!(body.contains("\"out_bill_no\":\"B1\""), "{body}");
        assert!(!body.contains("null"), "{body}");
        let cases = [
            (
                TransferInput {
                    openid: "x".into(),
                    ..input()
                },
                "openid",
            ),
            (
                TransferInput {
                    transfer_amount: 9,
                    ..input()
                },
                "transfer_amount",
            ),
            (
                TransferInput {
                    transfer_amount: 200_000,
                    ..input()
                },
                "user_name",
            ),
            (
                TransferInput {
                    transfer_amount: 200_000,
                    user_name: Some("张三".into()),
                    ..input()
                },
                "user_name",
            ),
            (
                TransferInput {
                    transfer_remark: Some("备".repeat(33)),
                    ..input()
                },
                "transfer_remark",
            ),
            (
                TransferInput {
                    user_recv_perception: Some("红包".into()),
                    ..input()
                },
                "user_recv_perception",
            ),
        ];
        for (case, field) in cases {
            let e = ValidTransfer::validate(&case, &merchant, None).unwrap_err();
            assert_eq!(e.field, field, "{case:?}: {e}");
        }
    }
}
