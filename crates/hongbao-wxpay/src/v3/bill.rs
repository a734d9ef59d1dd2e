//! Transfer bills: ids, states, the create request with WeChat's field
//! rules (facts §2), and the answers of create, query and cancel (§3).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::invalid::check_optional_text;
use crate::{AppId, Fen, InvalidField, OpenId};

/// The merchant's bill number (`out_bill_no`, 商户单号): 1 to 32 ASCII
/// letters and digits, unique per merchant. Like a red packet's
/// mch_billno it is the bill's idempotency key: allocated once, stored
/// before the first attempt, reused on every retry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OutBillNo(String);

impl OutBillNo {
    /// The longest `out_bill_no` WeChat accepts.
    pub const MAX_LEN: usize = 32;

    /// Parses an `out_bill_no`.
    pub fn parse(s: &str) -> Result<OutBillNo, InvalidField> {
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(InvalidField::new(
                "out_bill_no",
                format!("{s:?} must be 1 to 32 ASCII letters and digits"),
                format!("{s:?} 必须是 1 到 32 位英文字母和数字"),
            ));
        }
        Ok(OutBillNo(s.to_owned()))
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutBillNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OutBillNo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OutBillNo::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// WeChat's bill number (`transfer_bill_no`, 微信转账单号): opaque, at most
/// 64 ASCII letters and digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TransferBillNo(String);

impl TransferBillNo {
    /// Parses a `transfer_bill_no`.
    pub fn parse(s: &str) -> Result<TransferBillNo, InvalidField> {
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(InvalidField::new(
                "transfer_bill_no",
                format!("{s:?} must be 1 to 64 ASCII letters and digits"),
                format!("{s:?} 必须是 1 到 64 位英文字母和数字"),
            ));
        }
        Ok(TransferBillNo(s.to_owned()))
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransferBillNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TransferBillNo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TransferBillNo::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A bill's state (facts §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransferState {
    /// Accepted; not yet locked.
    Accepted,
    /// Locking the funds (stuck here: check the operations account).
    Processing,
    /// Created: the user must confirm it in WeChat (a successful create).
    WaitUserConfirm,
    /// The user confirmed; the result is not known yet. (WeChat's spelling.)
    Transfering,
    /// Paid. Final.
    Success,
    /// Not paid, money back; see `fail_reason`. Final.
    Fail,
    /// Cancel accepted.
    Canceling,
    /// Cancelled, money back. Final.
    Cancelled,
}

impl TransferState {
    /// Every state.
    pub const ALL: [TransferState; 8] = [
        TransferState::Accepted,
        TransferState::Processing,
        TransferState::WaitUserConfirm,
        TransferState::Transfering,
        TransferState::Success,
        TransferState::Fail,
        TransferState::Canceling,
        TransferState::Cancelled,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferState::Accepted => "ACCEPTED",
            TransferState::Processing => "PROCESSING",
            TransferState::WaitUserConfirm => "WAIT_USER_CONFIRM",
            TransferState::Transfering => "TRANSFERING",
            TransferState::Success => "SUCCESS",
            TransferState::Fail => "FAIL",
            TransferState::Canceling => "CANCELING",
            TransferState::Cancelled => "CANCELLED",
        }
    }

    /// Reads a wire name.
    pub fn parse(s: &str) -> Option<TransferState> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Whether the bill can change no more.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            TransferState::Success | TransferState::Fail | TransferState::Cancelled
        )
    }
}

impl fmt::Display for TransferState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transfer scene (`transfer_scene_id`): digits, granted to the merchant
/// on the merchant platform. hongbao knows the rules of `1000` (现金营销).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TransferSceneId(String);

impl TransferSceneId {
    /// `1000`, 现金营销: lotteries, rewards.
    pub const CASH_MARKETING: &'static str = "1000";

    /// Parses a scene id.
    pub fn parse(s: &str) -> Result<TransferSceneId, InvalidField> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidField::new(
                "transfer_scene_id",
                format!(
                    "{s:?} must be the digits of a transfer scene granted to the merchant, e.g. 1000 (现金营销)"
                ),
                format!("{s:?} 必须是商户已开通的转账场景 ID（数字），例如 1000（现金营销）"),
            ));
        }
        Ok(TransferSceneId(s.to_owned()))
    }

    /// 现金营销.
    pub fn cash_marketing() -> TransferSceneId {
        TransferSceneId(Self::CASH_MARKETING.to_owned())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the user sees the money as (`user_recv_perception`); scene 1000
/// allows these two only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Perception {
    /// 现金奖励.
    #[serde(rename = "现金奖励")]
    CashReward,
    /// 活动奖励 (what WeChat shows when none is given).
    #[serde(rename = "活动奖励")]
    ActivityReward,
}

impl Perception {
    /// The wire text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Perception::CashReward => "现金奖励",
            Perception::ActivityReward => "活动奖励",
        }
    }

    /// Reads the wire text.
    pub fn parse(s: &str) -> Result<Perception, InvalidField> {
        match s {
            "现金奖励" => Ok(Perception::CashReward),
            "活动奖励" => Ok(Perception::ActivityReward),
            other => Err(InvalidField::new(
                "user_recv_perception",
                format!("{other:?} is not allowed for scene 1000: use 现金奖励 or 活动奖励"),
                format!("{other:?} 不适用于转账场景 1000：只能是 现金奖励 或 活动奖励"),
            )),
        }
    }
}

/// One `transfer_scene_report_infos` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReportInfo {
    /// `info_type`, e.g. `活动名称`.
    pub info_type: String,
    /// `info_content`, 1 to 32 characters.
    pub info_content: String,
}

/// Scene 1000's first report: the activity's name.
pub const ACTIVITY_NAME: &str = "活动名称";
/// Scene 1000's second report: what the reward is for.
pub const REWARD_DESCRIPTION: &str = "奖励说明";

/// The smallest transfer: 0.10 yuan.
pub const MIN_AMOUNT: Fen = Fen::new(10);
/// From this amount on, `user_name` is required: 2,000 yuan.
pub const USER_NAME_FROM: Fen = Fen::new(200_000);
/// The longest `transfer_remark`, in characters.
pub const REMARK_MAX_CHARS: usize = 32;
/// The longest `info_content`, in characters.
pub const REPORT_MAX_CHARS: usize = 32;
/// The longest `notify_url`.
pub const NOTIFY_URL_MAX: usize = 256;

/// `发起转账`: a transfer bill to create, in the user-confirmation mode.
#[derive(Clone, PartialEq, Eq)]
pub struct CreateTransfer {
    /// The appid the openid belongs to (official account or mini program).
    pub appid: AppId,
    /// The merchant's bill number.
    pub out_bill_no: OutBillNo,
    /// The scene, `1000` for cash marketing.
    pub transfer_scene_id: TransferSceneId,
    /// The payee under `appid`.
    pub openid: OpenId,
    /// The payee's real name, in clear: encrypted before sending; required
    /// from 2,000 yuan.
    pub user_name: Option<String>,
    /// The amount, at least 10 fen.
    pub transfer_amount: Fen,
    /// Shown to the user, at most 32 characters.
    pub transfer_remark: String,
    /// Where WeChat posts the outcome: HTTPS, at most 256, no query string.
    pub notify_url: Option<String>,
    /// 现金奖励 or 活动奖励.
    pub user_recv_perception: Option<Perception>,
    /// The scene's reports; scene 1000: 活动名称 and 奖励说明, each once.
    pub transfer_scene_report_infos: Vec<ReportInfo>,
}

impl fmt::Debug for CreateTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payee's name is personal data: never printed.
        f.debug_struct("CreateTransfer")
            .field("appid", &self.appid)
            .field("out_bill_no", &self.out_bill_no)
            .field("transfer_scene_id", &self.transfer_scene_id)
            .field("openid", &self.openid)
            .field("user_name", &self.user_name.as_ref().map(|_| "<redacted>"))
            .field("transfer_amount", &self.transfer_amount)
            .field("transfer_remark", &self.transfer_remark)
            .field("notify_url", &self.notify_url)
            .field("user_recv_perception", &self.user_recv_perception)
            .field(
                "transfer_scene_report_infos",
                &self.transfer_scene_report_infos,
            )
            .finish()
    }
}

/// Counts characters and refuses control characters and padding.
fn check_chars(field: &'static str, value: &str, max: usize) -> Result<(), InvalidField> {
    if value.is_empty() {
        return Err(InvalidField::required(field));
    }
    let n = value.chars().count();
    if n > max {
        return Err(InvalidField::new(
            field,
            format!("is {n} characters; at most {max}"),
            format!("为 {n} 个字符，最多 {max} 个"),
        ));
    }
    check_optional_text(field, value, usize::MAX)
}

/// Checks a `notify_url`: HTTPS (or HTTP on a loopback address, for tests
/// and the sandbox), at most 256 bytes, no query string.
pub fn check_notify_url(url: &str) -> Result<(), InvalidField> {
    let bad = |en: &str, zh: &str| {
        Err(InvalidField::new(
            "notify_url",
            en.to_owned(),
            zh.to_owned(),
        ))
    };
    if url.len() > NOTIFY_URL_MAX {
        return bad("is longer than 256 characters", "超过 256 个字符");
    }
    if url.contains('?') || url.contains('#') {
        return bad(
            "must not have a query string (WeChat refuses one); put the merchant in the path",
            "不能带查询参数（微信会拒绝），请把商户放在路径中",
        );
    }
    let host_part = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        let loopback = host == "localhost" || host == "127.0.0.1" || rest.starts_with("[::1]");
        if !loopback {
            return bad(
                "must start with https:// (http:// only on a loopback address, for tests)",
                "必须以 https:// 开头（http:// 仅限本机回环地址，用于测试）",
            );
        }
        rest
    } else {
        return bad("must start with https://", "必须以 https:// 开头");
    };
    if host_part.is_empty() || host_part.starts_with('/') || url.chars().any(char::is_whitespace) {
        return bad("has no host or contains spaces", "缺少主机名或包含空格");
    }
    Ok(())
}

impl CreateTransfer {
    /// The two reports scene 1000 requires.
    pub fn cash_marketing_reports(
        activity_name: &str,
        reward_description: &str,
    ) -> Vec<ReportInfo> {
        vec![
            ReportInfo {
                info_type: ACTIVITY_NAME.to_owned(),
                info_content: activity_name.to_owned(),
            },
            ReportInfo {
                info_type: REWARD_DESCRIPTION.to_owned(),
                info_content: reward_description.to_owned(),
            },
        ]
    }

    /// Checks every rule WeChat documents, before anything is sent.
    pub fn validate(&self) -> Result<(), InvalidField> {
        if self.transfer_amount < MIN_AMOUNT {
            return Err(InvalidField::new(
                "transfer_amount",
                format!(
                    "is {} fen; a transfer is at least 10 fen (0.10 yuan)",
                    self.transfer_amount.get()
                ),
                format!(
                    "为 {} 分；转账金额最少 10 分（0.10 元）",
                    self.transfer_amount.get()
                ),
            ));
        }
        match &self.user_name {
            None if self.transfer_amount >= USER_NAME_FROM => {
                return Err(InvalidField::new(
                    "user_name",
                    "is required from 2,000.00 yuan: give the payee's real name",
                    "转账金额达到 2000 元时必须填写收款用户姓名",
                ));
            }
            Some(name) => check_chars("user_name", name, 64)?,
            None => {}
        }
        check_chars("transfer_remark", &self.transfer_remark, REMARK_MAX_CHARS)?;
        if let Some(url) = &self.notify_url {
            check_notify_url(url)?;
        }
        for info in &self.transfer_scene_report_infos {
            check_chars("transfer_scene_report_infos.info_type", &info.info_type, 32)?;
            check_chars(
                "transfer_scene_report_infos.info_content",
                &info.info_content,
                REPORT_MAX_CHARS,
            )?;
        }
        if self.transfer_scene_id.as_str() == TransferSceneId::CASH_MARKETING {
            let count = |t: &str| {
                self.transfer_scene_report_infos
                    .iter()
                    .filter(|i| i.info_type == t)
                    .count()
            };
            if self.transfer_scene_report_infos.len() != 2
                || count(ACTIVITY_NAME) != 1
                || count(REWARD_DESCRIPTION) != 1
            {
                return Err(InvalidField::new(
                    "transfer_scene_report_infos",
                    "scene 1000 needs exactly two reports: 活动名称 (activity_name) and 奖励说明 (reward_description), each once",
                    "转账场景 1000 必须恰好填写两项报备信息：活动名称 和 奖励说明，各一次",
                ));
            }
        } else if self.transfer_scene_report_infos.is_empty() {
            return Err(InvalidField::new(
                "transfer_scene_report_infos",
                "is required: the scene's reports",
                "必填：转账场景报备信息",
            ));
        }
        Ok(())
    }

    /// The JSON body, with `user_name` replaced by its ciphertext. Absent
    /// optional fields are left out, never sent as `null`.
    pub fn to_body(&self, user_name_ciphertext: Option<&str>) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            appid: &'a str,
            out_bill_no: &'a str,
            transfer_scene_id: &'a str,
            openid: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            user_name: Option<&'a str>,
            transfer_amount: u64,
            transfer_remark: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            notify_url: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            user_recv_perception: Option<&'a str>,
            transfer_scene_report_infos: &'a [ReportInfo],
        }
        serde_json::to_string(&Wire {
            appid: self.appid.as_str(),
            out_bill_no: self.out_bill_no.as_str(),
            transfer_scene_id: self.transfer_scene_id.as_str(),
            openid: self.openid.as_str(),
            user_name: user_name_ciphertext,
            transfer_amount: self.transfer_amount.get(),
            transfer_remark: &self.transfer_remark,
            notify_url: self.notify_url.as_deref(),
            user_recv_perception: self.user_recv_perception.map(Perception::as_str),
            transfer_scene_report_infos: &self.transfer_scene_report_infos,
        })
        .expect("a transfer serialises")
    }
}

/// A create request fixed for sending: validated, `user_name` encrypted,
/// the JSON body final. Store it with the bill and send the same body on
/// every retry (the ciphertext is randomised, so re-preparing changes it).
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedTransfer {
    pub(crate) out_bill_no: OutBillNo,
    pub(crate) body: String,
    /// The key `user_name` was encrypted with (`Wechatpay-Serial`).
    pub(crate) wechatpay_serial: Option<String>,
}

impl fmt::Debug for PreparedTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedTransfer")
            .field("out_bill_no", &self.out_bill_no)
            .field("bytes", &self.body.len())
            .field("wechatpay_serial", &self.wechatpay_serial)
            .finish()
    }
}

impl PreparedTransfer {
    /// Rebuilds a prepared request from what was stored.
    pub fn from_parts(
        out_bill_no: OutBillNo,
        body: String,
        wechatpay_serial: Option<String>,
    ) -> PreparedTransfer {
        PreparedTransfer {
            out_bill_no,
            body,
            wechatpay_serial,
        }
    }

    /// The bill number.
    pub fn out_bill_no(&self) -> &OutBillNo {
        &self.out_bill_no
    }

    /// The JSON body sent.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The `Wechatpay-Serial` sent with it, when `user_name` is encrypted.
    pub fn wechatpay_serial(&self) -> Option<&str> {
        self.wechatpay_serial.as_deref()
    }
}

/// A transfer bill as WeChat answers it: create (`package_info` when
/// `WAIT_USER_CONFIRM`), query (every field) or cancel (state and time),
/// and the decrypted callback resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    /// The merchant's bill number.
    pub out_bill_no: OutBillNo,
    /// WeChat's bill number.
    pub transfer_bill_no: TransferBillNo,
    /// The state.
    pub state: TransferState,
    /// What the front end hands to `requestMerchantTransfer` as `package`
    /// (create answers in `WAIT_USER_CONFIRM` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_info: Option<String>,
    /// Why it failed (`OVERDUE_CLOSE`, `TRANSFER_RISK`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_reason: Option<String>,
    /// The merchant id (query, callback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mch_id: Option<String>,
    /// The appid (query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// The amount in fen (query, callback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_amount: Option<u64>,
    /// The remark (query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_remark: Option<String>,
    /// The payee (query, callback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// The payee's name, encrypted (query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// When WeChat created it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// When it last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
}

impl Bill {
    /// Reads an answer's or resource's JSON.
    pub fn parse(body: &[u8]) -> Result<Bill, String> {
        serde_json::from_slice(body).map_err(|e| format!("not a transfer bill: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(fen: u64) -> CreateTransfer {
        CreateTransfer {
            appid: AppId::parse("wxf636efh567hg4356").unwrap(),
            out_bill_no: OutBillNo::parse("plfk2020042013").unwrap(),
            transfer_scene_id: TransferSceneId::cash_marketing(),
            openid: OpenId::parse("o-MYE42l80oelYMDE34nYD456Xoy").unwrap(),
            user_name: None,
            transfer_amount: Fen::new(fen),
            transfer_remark: "新会员开通有礼".into(),
            notify_url: None,
            user_recv_perception: None,
            transfer_scene_report_infos: CreateTransfer::cash_marketing_reports(
                "新会员有礼",
                "注册会员抽奖一等奖",
            ),
        }
    }

    #[test]
    fn amounts_start_at_ten_fen() {
        assert!(transfer(10).validate().is_ok());
        assert_eq!(transfer(9).validate().unwrap_err().field, "transfer_amount");
    }

    #[test]
    fn user_name_is_required_from_two_thousand_yuan() {
        assert!(transfer(199_999).validate().is_ok());
        assert_eq!(transfer(200_000).validate().unwrap_err().field, "user_name");
        let mut named = transfer(200_000);
        named.user_name = Some("张三".into());
        assert!(named.validate().is_ok());
    }

    #[test]
    fn scene_1000_needs_its_two_reports_once_each() {
        let mut t = transfer(100);
        t.transfer_scene_report_infos.pop();
        assert_eq!(
            t.validate().unwrap_err().field,
            "transfer_scene_report_infos"
        );
        let mut twice = transfer(100);
        twice.transfer_scene_report_infos[1].info_type = ACTIVITY_NAME.into();
        assert!(twice.validate().is_err());
        let mut wrong = transfer(100);
        wrong.transfer_scene_report_infos[0].info_type = "活动".into();
        assert!(wrong.validate().is_err());
        let mut long = transfer(100);
        long.transfer_scene_report_infos[0].info_content = "活".repeat(33);
        assert_eq!(
            long.validate().unwrap_err().field,
            "transfer_scene_report_infos.info_content"
        );
        let mut empty = transfer(100);
        empty.transfer_scene_report_infos[1].info_content = String::new();
        assert!(empty.validate().is_err());
    }

    #[test]
    fn remarks_count_characters() {
        let mut t = transfer(100);
        t.transfer_remark = "奖".repeat(32);
        assert!(t.validate().is_ok());
        t.transfer_remark = "奖".repeat(33);
        assert_eq!(t.validate().unwrap_err().field, "transfer_remark");
    }

    #[test]
    fn perception_allows_the_two_scene_1000_values() {
        assert_eq!(
            Perception::parse("现金奖励").unwrap(),
            Perception::CashReward
        );
        assert_eq!(
            Perception::parse("活动奖励").unwrap(),
            Perception::ActivityReward
        );
        assert_eq!(
            Perception::parse("红包").unwrap_err().field,
            "user_recv_perception"
        );
    }

    #[test]
    fn notify_urls_are_https_short_and_without_a_query() {
        assert!(check_notify_url("https://pay.example.com/v1/notify/transfers/main").is_ok());
        assert!(check_notify_url("http://127.0.0.1:8080/v1/notify/transfers/main").is_ok());
        for bad in [
            "http://pay.example.com/notify",
            "https://pay.example.com/notify?merchant=main",
            "ftp://x",
            "https://",
        ] {
            assert_eq!(
                check_notify_url(bad).unwrap_err().field,
                "notify_url",
                "{bad}"
            );
        }
        let long = format!("https://pay.example.com/{}", "a".repeat(240));
        assert!(check_notify_url(&long).is_err());
    }

    #[test]
    fn absent_optional_fields_are_omitted_never_null() {
        let body = transfer(100).to_body(None);
        assert!(!body.contains("null"), "{body}");
        for absent in ["user_name", "notify_url", "user_recv_perception"] {
            assert!(!body.contains(absent), "{body}");
        }
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["transfer_amount"], 100);
        assert_eq!(
            value["transfer_scene_report_infos"][0]["info_type"],
            "活动名称"
        );
        let mut full = transfer(100);
        full.user_recv_perception = Some(Perception::CashReward);
        full.notify_url = Some("https://x.example/n".into());
        let body = full.to_body(Some("CIPHER"));
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["user_recv_perception"], "现金奖励");
        assert_eq!(value["user_name"], "CIPHER");
    }

    #[test]
    fn the_payee_name_is_never_printed() {
        let mut t = transfer(300_000);
        t.user_name = Some("张三".into());
        assert!(!format!("{t:?}").contains("张三"));
    }

    #[test]
    fn bill_numbers_have_their_form() {
        assert!(OutBillNo::parse(&"a".repeat(32)).is_ok());
        assert!(OutBillNo::parse(&"a".repeat(33)).is_err());
        assert!(OutBillNo::parse("a-b").is_err());
        assert!(OutBillNo::parse("").is_err());
    }

    #[test]
    fn answers_parse_and_unknown_states_do_not() {
        let bill = Bill::parse(br#"{"out_bill_no":"plfk2020042013","transfer_bill_no":"1330000071100999991182020050700019480001","create_time":"2015-05-20T13:29:35.120+08:00","state":"WAIT_USER_CONFIRM","package_info":"affffddafdfafddffda=="}"#).unwrap();
        assert_eq!(bill.state, TransferState::WaitUserConfirm);
        assert_eq!(bill.package_info.as_deref(), Some("affffddafdfafddffda=="));
        assert!(
            Bill::parse(br#"{"out_bill_no":"a","transfer_bill_no":"b","state":"EXPLODED"}"#)
                .is_err()
        );
        assert!(Bill::parse(br#"{"out_bill_no":"a","state":"SUCCESS"}"#).is_err());
        for state in TransferState::ALL {
            assert_eq!(TransferState::parse(state.as_str()), Some(state));
        }
    }
}
