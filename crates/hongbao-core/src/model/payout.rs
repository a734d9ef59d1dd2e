//! A payout as hongbao knows it: its rail, its input (validated before
//! anything is stored), and its record in the ledger.

use std::fmt;
use std::str::FromStr;

use hongbao_wxpay::{
    AppId, Fen, InvalidField, MchBillNo, Merchant, OpenId, Prepared, SceneId, SendGroupRedpack,
    SendMiniProgramHb, SendRedpack,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::MerchantConfig;
use crate::model::claim::RailRequest;

/// The way a payout is paid: one ledger holds both, the rail as a column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rail {
    /// Cash red packets (WeChat Pay v2: `sendredpack` and its kin).
    #[default]
    Redpack,
    /// Transfer bills the user confirms (APIv3 商家转账).
    Transfer,
}

impl Rail {
    /// Every rail.
    pub const ALL: [Rail; 2] = [Rail::Redpack, Rail::Transfer];

    /// The stored (and API) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rail::Redpack => "redpack",
            Rail::Transfer => "transfer",
        }
    }
}

impl FromStr for Rail {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        Rail::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                InvalidField::new(
                    "rail",
                    format!("{s:?} is not a rail; use redpack or transfer"),
                    format!("{s:?} 不是有效的发放方式；请使用 redpack 或 transfer"),
                )
            })
    }
}

impl fmt::Display for Rail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of red packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `sendredpack`: one packet to one follower.
    #[default]
    Normal,
    /// `sendgroupredpack`: a fission packet of 3–20 shares. Offline at
    /// WeChat since 2024-06-05 (see [`Kind::retired`]).
    Group,
    /// `sendminiprogramhb`: opened in a mini program.
    #[serde(rename = "miniprogram")]
    MiniProgram,
}

impl Kind {
    /// The API name: `normal`, `group`, `miniprogram`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::Group => "group",
            Kind::MiniProgram => "miniprogram",
        }
    }
}

/// A kind WeChat no longer pays: a warning for whoever creates one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retired {
    /// Stable, for programs: `group_offline`.
    pub code: &'static str,
    /// In English.
    pub message: &'static str,
    /// In Chinese.
    pub zh_message: &'static str,
}

impl Kind {
    /// Whether WeChat still pays this kind: fission (`group`) packets have
    /// been offline since 2024-06-05, and WeChat refuses them (the record
    /// fails; only merchants with legacy access are still paid).
    pub const fn retired(self) -> Option<Retired> {
        match self {
            Kind::Group => Some(Retired {
                code: "group_offline",
                message: "fission (group) red packets have been offline at WeChat since \
                          2024-06-05: WeChat refuses them and the record will fail unless the \
                          merchant kept legacy access; send a normal packet instead",
                zh_message: "裂变红包已于 2024-06-05 下线：微信会拒绝，记录将失败（保留旧权限的商户除外）；\
                             请改发普通红包",
            }),
            Kind::Normal | Kind::MiniProgram => None,
        }
    }
}

impl FromStr for Kind {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        match s {
            "normal" => Ok(Kind::Normal),
            "group" => Ok(Kind::Group),
            "miniprogram" => Ok(Kind::MiniProgram),
            _ => Err(InvalidField::new(
                "type",
                format!("{s:?} is not a type; use normal, group or miniprogram"),
                format!("{s:?} 不是有效类型；请使用 normal、group 或 miniprogram"),
            )),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a payout stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Stored, not attempted (or nothing reached WeChat yet).
    Pending,
    /// Attempted; the outcome is not known yet.
    Sending,
    /// WeChat accepted it.
    Sent,
    /// The user opened it.
    Received,
    /// Unopened; the refund is in progress.
    Refunding,
    /// Unopened; the money went back to the merchant.
    Refunded,
    /// A final WeChat error; see `err_code` and the messages.
    Failed,
    /// A transfer bill created: the user has 24 hours to confirm it.
    #[serde(rename = "awaiting_confirmation")]
    AwaitingConfirmation,
    /// The user confirmed the bill; WeChat is paying.
    Transferring,
    /// The bill was paid.
    Succeeded,
    /// A cancel of the bill was accepted.
    Cancelling,
    /// The bill was cancelled; the money went back to the merchant.
    Cancelled,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 12] = [
        Status::Pending,
        Status::Sending,
        Status::Sent,
        Status::Received,
        Status::Refunding,
        Status::Refunded,
        Status::Failed,
        Status::AwaitingConfirmation,
        Status::Transferring,
        Status::Succeeded,
        Status::Cancelling,
        Status::Cancelled,
    ];

    /// The API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Received => "received",
            Status::Refunding => "refunding",
            Status::Refunded => "refunded",
            Status::Failed => "failed",
            Status::AwaitingConfirmation => "awaiting_confirmation",
            Status::Transferring => "transferring",
            Status::Succeeded => "succeeded",
            Status::Cancelling => "cancelling",
            Status::Cancelled => "cancelled",
        }
    }

    /// Whether the outcome of sending is known (sent or later, or failed).
    pub const fn is_settled(self) -> bool {
        !matches!(self, Status::Pending | Status::Sending)
    }

    /// Whether the payout can change no more (nothing to follow).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            Status::Received
                | Status::Refunded
                | Status::Failed
                | Status::Succeeded
                | Status::Cancelled
        )
    }

    /// The statuses that can change no more, as stored.
    pub const FINAL_SQL: &'static str =
        "('received', 'refunded', 'failed', 'succeeded', 'cancelled')";
}

impl FromStr for Status {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        Status::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            InvalidField::new(
                "status",
                format!("{s:?} is not a status; use one of pending, sending, sent, received, refunding, refunded, failed, awaiting_confirmation, transferring, succeeded, cancelling, cancelled"),
                format!("{s:?} 不是有效状态"),
            )
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller asks for: one red packet. Texts left out take the
/// merchant's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedpackInput {
    /// The kind.
    pub kind: Kind,
    /// The merchant's name; the tenant's only merchant if left out.
    pub merchant: Option<String>,
    /// The receiver's openid.
    pub re_openid: String,
    /// The amount in fen (of the whole group for a fission packet).
    pub total_amount: u64,
    /// The number of shares: 1, or 3–20 for a fission packet.
    pub total_num: Option<u32>,
    /// The sender's name.
    pub send_name: Option<String>,
    /// The blessing.
    pub wishing: Option<String>,
    /// The activity's name.
    pub act_name: Option<String>,
    /// A remark.
    pub remark: Option<String>,
    /// The scene, required outside 1.00–200.00 yuan.
    pub scene_id: Option<String>,
    /// Risk information, URL-encoded.
    pub risk_info: Option<String>,
}

/// A payout that passed every rule, ready to be stored: only its
/// mch_billno (allocated in the storing transaction) and nonce are missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidRedpack {
    /// The merchant's name.
    pub merchant: String,
    /// The kind.
    pub kind: Kind,
    /// The receiver.
    pub re_openid: OpenId,
    /// The amount.
    pub total_amount: Fen,
    /// The number of shares.
    pub total_num: u32,
    /// The texts, defaults applied.
    pub send_name: String,
    /// The blessing.
    pub wishing: String,
    /// The activity's name.
    pub act_name: String,
    /// A remark.
    pub remark: String,
    /// The scene.
    pub scene_id: Option<SceneId>,
    risk_info: Option<String>,
    client_ip: String,
    miniprogram_appid: Option<AppId>,
    wxpay_merchant: Merchant,
    /// The request built and checked once, under a stand-in mch_billno and
    /// nonce: each payout's is this one renumbered (`None` only while
    /// [`ValidRedpack::validate`] builds it).
    template: Option<Prepared>,
}

fn default_text(
    field: &'static str,
    given: Option<&String>,
    default: Option<&String>,
    merchant: &str,
) -> Result<String, InvalidField> {
    match given.filter(|s| !s.is_empty()).or(default) {
        Some(text) => Ok(text.clone()),
        None => Err(InvalidField::new(
            field,
            format!("is required: give it, or set a default {field} for merchant {merchant}"),
            format!("必填：请提供，或为商户 {merchant} 配置默认的 {field}"),
        )),
    }
}

impl ValidRedpack {
    /// Checks `input` for `merchant` against every rule (hongbao's and
    /// WeChat's), so that nothing invalid is ever stored or sent.
    pub fn validate(
        input: &RedpackInput,
        merchant: &MerchantConfig,
    ) -> Result<ValidRedpack, InvalidField> {
        if merchant.api_key.is_none() {
            let m = &merchant.name;
            return Err(InvalidField::new(
                "merchant",
                format!(
                    "merchant {m} has no v2 api_key, so it cannot send red packets: it pays by transfer (POST /v1/transfers); give its api_key to send red packets too"
                ),
                format!(
                    "商户 {m} 未配置 v2 api_key，无法发红包：请改用转账（POST /v1/transfers），或配置 api_key"
                ),
            ));
        }
        let re_openid = OpenId::parse(input.re_openid.trim())?;
        if input.total_amount == 0 {
            return Err(InvalidField::new(
                "total_amount",
                "must be a positive number of fen (100 is 1.00 yuan)",
                "必须是正整数，单位为分（100 即 1.00 元）",
            ));
        }
        let total_num = match (input.kind, input.total_num) {
            (Kind::Group, None) => {
                return Err(InvalidField::new(
                    "total_num",
                    "is required for a fission (group) red packet: 3 to 20",
                    "裂变红包必须填写 total_num：3 到 20",
                ));
            }
            (Kind::Group, Some(n)) => n,
            (_, None | Some(1)) => 1,
            (kind, Some(n)) => {
                return Err(InvalidField::new(
                    "total_num",
                    format!("must be 1 for a {kind} red packet, not {n}"),
                    format!("{kind} 红包的 total_num 必须为 1，当前为 {n}"),
                ));
            }
        };
        let scene_id = input
            .scene_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(SceneId::parse)
            .transpose()?;
        let name = merchant.name.as_str();
        let d = &merchant.defaults;
        let miniprogram_appid = match input.kind {
            Kind::MiniProgram => Some(merchant.miniprogram_appid.clone().ok_or_else(|| {
                InvalidField::new(
                    "type",
                    format!("merchant {name} has no miniprogram_appid configured, so it cannot send miniprogram red packets"),
                    format!("商户 {name} 未配置 miniprogram_appid，无法发放小程序红包"),
                )
            })?),
            _ => None,
        };
        let valid = ValidRedpack {
            merchant: merchant.name.clone(),
            kind: input.kind,
            re_openid,
            total_amount: Fen::new(input.total_amount),
            total_num,
            send_name: default_text(
                "send_name",
                input.send_name.as_ref(),
                d.send_name.as_ref(),
                name,
            )?,
            wishing: default_text("wishing", input.wishing.as_ref(), d.wishing.as_ref(), name)?,
            act_name: default_text(
                "act_name",
                input.act_name.as_ref(),
                d.act_name.as_ref(),
                name,
            )?,
            remark: default_text("remark", input.remark.as_ref(), d.remark.as_ref(), name)?,
            scene_id,
            risk_info: input.risk_info.clone().filter(|s| !s.is_empty()),
            // WeChat wants the caller's IPv4; without a configured one, loopback.
            client_ip: d
                .client_ip
                .clone()
                .unwrap_or_else(|| "127.0.0.1".to_owned()),
            miniprogram_appid,
            wxpay_merchant: merchant.wxpay_merchant(),
            template: None,
        };
        // WeChat's own rules (lengths in bytes, amount and scene, fission
        // shares, client_ip), checked with a stand-in mch_billno, once.
        let stand_in = MchBillNo::parse("0").expect("a valid mch_billno");
        let template = valid.built(&stand_in, "validate")?;
        Ok(ValidRedpack {
            template: Some(template),
            ..valid
        })
    }

    /// The exact request to store and send, under `mch_billno`: the one
    /// checked by [`ValidRedpack::validate`], renumbered.
    pub fn prepared(
        &self,
        mch_billno: &MchBillNo,
        nonce_str: &str,
    ) -> Result<Prepared, InvalidField> {
        match &self.template {
            Some(template) => template.renumbered(mch_billno, nonce_str),
            None => self.built(mch_billno, nonce_str),
        }
    }

    /// The request built from the fields, every rule checked.
    fn built(&self, mch_billno: &MchBillNo, nonce_str: &str) -> Result<Prepared, InvalidField> {
        let billno = mch_billno.clone();
        match self.kind {
            Kind::Normal => Prepared::with_nonce(
                &SendRedpack {
                    mch_billno: billno,
                    re_openid: self.re_openid.clone(),
                    total_amount: self.total_amount,
                    send_name: self.send_name.clone(),
                    wishing: self.wishing.clone(),
                    act_name: self.act_name.clone(),
                    remark: self.remark.clone(),
                    client_ip: self.client_ip.clone(),
                    scene_id: self.scene_id,
                    risk_info: self.risk_info.clone(),
                },
                &self.wxpay_merchant,
                nonce_str,
            ),
            Kind::Group => Prepared::with_nonce(
                &SendGroupRedpack {
                    mch_billno: billno,
                    re_openid: self.re_openid.clone(),
                    total_amount: self.total_amount,
                    total_num: self.total_num,
                    send_name: self.send_name.clone(),
                    wishing: self.wishing.clone(),
                    act_name: self.act_name.clone(),
                    remark: self.remark.clone(),
                    scene_id: self.scene_id,
                    risk_info: self.risk_info.clone(),
                },
                &self.wxpay_merchant,
                nonce_str,
            ),
            Kind::MiniProgram => Prepared::with_nonce(
                &SendMiniProgramHb {
                    mch_billno: billno,
                    wxappid: self
                        .miniprogram_appid
                        .clone()
                        .expect("validated: a miniprogram red packet has its appid"),
                    re_openid: self.re_openid.clone(),
                    total_amount: self.total_amount,
                    send_name: self.send_name.clone(),
                    wishing: self.wishing.clone(),
                    act_name: self.act_name.clone(),
                    remark: self.remark.clone(),
                    scene_id: self.scene_id,
                },
                &self.wxpay_merchant,
                nonce_str,
            ),
        }
    }

    /// The mini program's appid, for `miniprogram` packets.
    pub fn miniprogram_appid(&self) -> Option<&AppId> {
        self.miniprogram_appid.as_ref()
    }
}

/// A payout that passed every rule, on its rail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Valid {
    /// A red packet.
    Redpack(ValidRedpack),
    /// A transfer bill.
    Transfer(crate::model::transfer::ValidTransfer),
}

impl Valid {
    /// The merchant's name.
    pub fn merchant(&self) -> &str {
        match self {
            Valid::Redpack(v) => &v.merchant,
            Valid::Transfer(v) => &v.merchant,
        }
    }

    /// The receiver.
    pub fn openid(&self) -> &OpenId {
        match self {
            Valid::Redpack(v) => &v.re_openid,
            Valid::Transfer(v) => &v.openid,
        }
    }

    /// The amount.
    pub fn amount(&self) -> Fen {
        match self {
            Valid::Redpack(v) => v.total_amount,
            Valid::Transfer(v) => v.transfer_amount,
        }
    }

    /// The rail.
    pub fn rail(&self) -> Rail {
        match self {
            Valid::Redpack(_) => Rail::Redpack,
            Valid::Transfer(_) => Rail::Transfer,
        }
    }
}

impl From<ValidRedpack> for Valid {
    fn from(v: ValidRedpack) -> Valid {
        Valid::Redpack(v)
    }
}

impl From<crate::model::transfer::ValidTransfer> for Valid {
    fn from(v: crate::model::transfer::ValidTransfer) -> Valid {
        Valid::Transfer(v)
    }
}

/// A payout's record in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redpack {
    /// `rp_` and a ULID.
    pub id: String,
    /// The tenant that asked for it.
    pub tenant: String,
    /// The merchant paying it.
    pub merchant: String,
    /// The merchant's id.
    pub mch_id: String,
    /// The rail it is paid on.
    pub rail: Rail,
    /// The kind.
    pub kind: Kind,
    /// Where it stands.
    pub status: Status,
    /// Its order number at WeChat.
    pub mch_billno: String,
    /// The receiver.
    pub re_openid: String,
    /// The amount.
    pub total_amount: Fen,
    /// The number of shares.
    pub total_num: u32,
    /// The sender's name.
    pub send_name: String,
    /// The blessing.
    pub wishing: String,
    /// The activity's name.
    pub act_name: String,
    /// The remark.
    pub remark: String,
    /// The scene.
    pub scene_id: Option<String>,
    /// WeChat's order number.
    pub send_listid: Option<String>,
    /// WeChat's status (`SENT`, `RECEIVED`, `RFUND_ING`, `REFUND`, ...).
    pub wechat_status: Option<String>,
    /// Refunded fen.
    pub refund_amount: Option<Fen>,
    /// The mini program `package` (raw), for `wx.sendBizRedPacket`.
    pub package: Option<String>,
    /// The err_code of a final failure.
    pub err_code: Option<String>,
    /// Its message in English.
    pub message: Option<String>,
    /// Its message in Chinese.
    pub zh_message: Option<String>,
    /// How many times the send API was called.
    pub attempts: u32,
    /// The campaign it belongs to.
    pub campaign_id: Option<String>,
    /// The prize it pays.
    pub prize_id: Option<String>,
    /// When it was stored.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// When an unconfirmed transfer bill closes (24 hours after it was
    /// created).
    pub expires_at: Option<OffsetDateTime>,
    /// Why WeChat closed a transfer bill unpaid (`OVERDUE_CLOSE`, ...).
    pub fail_reason: Option<String>,
    /// The exact request sent (and re-sent).
    pub request: RailRequest,
}

/// One call to WeChat for a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The API called.
    pub api: String,
    /// The mch_billno it concerned.
    pub mch_billno: String,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// How long it took.
    pub latency_ms: u64,
    /// What it meant.
    pub outcome: crate::model::claim::AttemptOutcome,
    /// WeChat's err_code, if any.
    pub err_code: Option<String>,
    /// More about it, for people.
    pub detail: Option<String>,
    /// WeChat's answer as received.
    pub answer: Option<String>,
}

/// Counts and sums by merchant and status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusTotal {
    /// The merchant.
    pub merchant: String,
    /// The rail.
    pub rail: Rail,
    /// The status.
    pub status: Status,
    /// How many.
    pub count: u64,
    /// Their amount.
    pub amount: Fen,
}

/// RFC 3339 in UTC, to the second: `2026-11-22T04:00:00Z`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// Milliseconds since the epoch, as a time.
pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant() -> MerchantConfig {
        let mut merchant = crate::config::example_merchant();
        merchant.defaults.client_ip = Some("10.0.0.1".into());
        merchant.defaults.act_name = None;
        merchant
    }

    fn input() -> RedpackInput {
        RedpackInput {
            re_openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
            total_amount: 188,
            act_name: Some("新年红包".into()),
            ..RedpackInput::default()
        }
    }

    #[test]
    fn defaults_fill_the_texts_and_the_request_is_whole() {
        let valid = ValidRedpack::validate(&input(), &merchant()).unwrap();
        assert_eq!(valid.send_name, "天虹百货");
        let billno = MchBillNo::parse("1900000109202611220000000001").unwrap();
        let prepared = valid.prepared(&billno, "NONCE").unwrap();
        assert_eq!(prepared.params().get("client_ip"), Some("10.0.0.1"));
        assert_eq!(prepared.mch_billno(), billno.as_str());
    }

    #[test]
    fn a_payout_renumbered_is_the_payout_built_under_its_number() {
        let mut m = merchant();
        m.miniprogram_appid = Some(hongbao_wxpay::AppId::parse("wx1234567890abcdef").unwrap());
        let billno = MchBillNo::parse("1900000109202611220000000007").unwrap();
        for kind in [Kind::Normal, Kind::Group, Kind::MiniProgram] {
            let mut given = input();
            given.kind = kind;
            given.total_amount = 300;
            given.total_num = (kind == Kind::Group).then_some(3);
            given.risk_info = (kind != Kind::MiniProgram).then(|| "posttime%3D1".into());
            let valid = ValidRedpack::validate(&given, &m).unwrap();
            let renumbered = valid.prepared(&billno, "N0nce42").unwrap();
            assert_eq!(
                renumbered,
                valid.built(&billno, "N0nce42").unwrap(),
                "{kind:?}"
            );
            assert_eq!(renumbered.mch_billno(), billno.as_str());
            assert_eq!(renumbered.params().get("nonce_str"), Some("N0nce42"));
            assert!(valid.prepared(&billno, "not a nonce").is_err());
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        let m = merchant();
        let cases: Vec<(RedpackInput, &str)> = vec![
            (
                RedpackInput {
                    re_openid: "bad".into(),
                    ..input()
                },
                "re_openid",
            ),
            (
                RedpackInput {
                    total_amount: 0,
                    ..input()
                },
                "total_amount",
            ),
            (
                RedpackInput {
                    total_amount: 50,
                    ..input()
                },
                "total_amount",
            ),
            (
                RedpackInput {
                    total_num: Some(2),
                    ..input()
                },
                "total_num",
            ),
            (
                RedpackInput {
                    kind: Kind::Group,
                    ..input()
                },
                "total_num",
            ),
            (
                RedpackInput {
                    kind: Kind::Group,
                    total_num: Some(2),
                    total_amount: 600,
                    ..input()
                },
                "total_num",
            ),
            (
                RedpackInput {
                    act_name: None,
                    ..input()
                },
                "act_name",
            ),
            (
                RedpackInput {
                    wishing: Some("福".repeat(43)),
                    ..input()
                },
                "wishing",
            ),
            (
                RedpackInput {
                    scene_id: Some("PRODUCT_9".into()),
                    ..input()
                },
                "scene_id",
            ),
            (
                RedpackInput {
                    kind: Kind::MiniProgram,
                    ..input()
                },
                "type",
            ),
        ];
        for (case, field) in cases {
            assert_eq!(
                ValidRedpack::validate(&case, &m).unwrap_err().field,
                field,
                "{case:?}"
            );
        }
        let group = RedpackInput {
            kind: Kind::Group,
            total_num: Some(3),
            total_amount: 600,
            ..input()
        };
        assert!(ValidRedpack::validate(&group, &m).is_ok());
        let lottery = RedpackInput {
            total_amount: 30,
            scene_id: Some("PRODUCT_2".into()),
            ..input()
        };
        assert!(ValidRedpack::validate(&lottery, &m).is_ok());
    }

    #[test]
    fn statuses_and_kinds_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
        }
        assert_eq!("miniprogram".parse::<Kind>().unwrap(), Kind::MiniProgram);
        assert!("gift".parse::<Kind>().is_err());
    }
}
