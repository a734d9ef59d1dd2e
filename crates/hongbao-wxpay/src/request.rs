//! Typed requests, validated against WeChat's rules before anything is sent.
//!
//! Each request writes exactly its API's documented fields ([`Api::fields`]);
//! a request that breaks a rule is an [`InvalidField`] naming the field and
//! the rule, and never reaches the network.

use std::net::Ipv4Addr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::invalid::{check_optional_text, check_text};
use crate::{Api, ApiKey, AppId, Fen, InvalidField, MchBillNo, MchId, OpenId, Params, SceneId};

/// Who pays: the merchant's ids, as configured once and used by every request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    /// The merchant id (商户号); the service provider's id in service-provider mode.
    pub mch_id: MchId,
    /// The official account's appid the merchant is bound to (`wxappid` of
    /// `sendredpack`, `appid` of `gethbinfo`).
    pub appid: AppId,
    /// Service-provider (服务商/受理) mode, when the merchant pays on behalf
    /// of a sub-merchant.
    pub service_provider: Option<ServiceProvider>,
}

/// The fields of service-provider mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceProvider {
    /// The sub-merchant's id (`sub_mch_id`).
    pub sub_mch_id: MchId,
    /// The appid used to reach the user (`msgappid`): the provider's own or
    /// the sub-merchant's registered one.
    pub msgappid: AppId,
    /// The merchant whose balance pays (`consume_mch_id`); the
    /// sub-merchant's when absent.
    pub consume_mch_id: Option<MchId>,
}

/// A request to one of the red packet APIs.
pub trait Request {
    /// The API this request calls.
    const API: Api;

    /// Checks every rule and writes the request's parameters — all of its
    /// API's documented fields that apply, including `nonce_str` (and
    /// `workwx_sign`), but not `sign`.
    fn params(&self, merchant: &Merchant, nonce_str: &str) -> Result<Params, InvalidField>;

    /// The mch_billno this request is about.
    fn mch_billno(&self) -> &MchBillNo;
}

/// The bounds of a single packet's amount.
pub mod amount {
    use crate::Fen;

    /// The default lowest amount of a packet: 1.00 yuan.
    pub const DEFAULT_MIN: Fen = Fen::new(100);
    /// The default highest amount of a packet: 200.00 yuan.
    pub const DEFAULT_MAX: Fen = Fen::new(20_000);
    /// The lowest amount WeChat is reported to allow for a scene (0.30 yuan,
    /// e.g. lotteries), once the merchant platform enables it.
    pub const SCENE_MIN: Fen = Fen::new(30);
    /// The highest amount WeChat is reported to allow for a scene (4,999 yuan).
    pub const SCENE_MAX: Fen = Fen::new(499_900);
}

/// The amount / scene_id rule (facts §4.1): 1.00–200.00 yuan without a
/// scene; outside that range a `scene_id` is mandatory, and even then the
/// amount stays within 0.30–4,999.00 yuan.
pub fn check_amount(total_amount: Fen, scene_id: Option<SceneId>) -> Result<(), InvalidField> {
    let in_default = (amount::DEFAULT_MIN..=amount::DEFAULT_MAX).contains(&total_amount);
    if in_default {
        return Ok(());
    }
    let fen = total_amount.get();
    if scene_id.is_none() {
        return Err(InvalidField::new(
            "total_amount",
            format!(
                "{fen} fen ({total_amount} yuan) is outside 1.00–200.00 yuan; such an amount needs a scene_id (PRODUCT_1…PRODUCT_8) enabled for the merchant"
            ),
            format!(
                "{fen} 分（{total_amount} 元）不在 1.00–200.00 元之间，需要填写 scene_id（PRODUCT_1…PRODUCT_8）并在商户平台开通该场景"
            ),
        ));
    }
    if !(amount::SCENE_MIN..=amount::SCENE_MAX).contains(&total_amount) {
        return Err(InvalidField::new(
            "total_amount",
            format!(
                "{fen} fen ({total_amount} yuan) is outside 0.30–4999.00 yuan, the widest range WeChat allows even with a scene_id"
            ),
            format!(
                "{fen} 分（{total_amount} 元）超出 0.30–4999.00 元，即使填写 scene_id 也不允许"
            ),
        ));
    }
    Ok(())
}

/// The fission rule (facts §5): 3 to 20 packets, 1.00–200.00 yuan each on average.
pub fn check_group(total_amount: Fen, total_num: u32) -> Result<(), InvalidField> {
    if !(3..=20).contains(&total_num) {
        return Err(InvalidField::new(
            "total_num",
            format!(
                "must be between 3 and 20 (inclusive) for a fission red packet, not {total_num}"
            ),
            format!("裂变红包的 total_num 必须介于(包括)3到20之间，当前为 {total_num}"),
        ));
    }
    check_average(total_amount, total_num)
}

fn check_average(total_amount: Fen, total_num: u32) -> Result<(), InvalidField> {
    let n = u64::from(total_num);
    let low = amount::DEFAULT_MIN.checked_mul(n);
    let high = amount::DEFAULT_MAX.checked_mul(n);
    let ok = matches!((low, high), (Some(lo), Some(hi)) if (lo..=hi).contains(&total_amount));
    if !ok {
        return Err(InvalidField::new(
            "total_amount",
            format!(
                "{} fen for {total_num} packets: the average per packet must be 1.00–200.00 yuan",
                total_amount.get()
            ),
            format!(
                "{} 分共 {total_num} 个红包：每个红包的平均金额必须在1.00元到200.00元之间",
                total_amount.get()
            ),
        ));
    }
    Ok(())
}

/// `client_ip`: the IPv4 address of the calling machine (String(15)).
pub fn check_client_ip(client_ip: &str) -> Result<(), InvalidField> {
    if client_ip.parse::<Ipv4Addr>().is_err() {
        return Err(InvalidField::new(
            "client_ip",
            format!(
                "{client_ip:?} is not an IPv4 address such as 10.0.0.1 (WeChat takes IPv4 only)"
            ),
            format!("{client_ip:?} 不是 IPv4 地址（例如 10.0.0.1），微信只接受 IPv4"),
        ));
    }
    Ok(())
}

/// `risk_info`: an already URL-encoded query string (see [`encode_risk_info`]),
/// at most 128 bytes, sent and signed exactly as given.
pub fn check_risk_info(risk_info: &str) -> Result<(), InvalidField> {
    check_optional_text("risk_info", risk_info, 128)?;
    if !risk_info.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidField::new(
            "risk_info",
            "must be URL-encoded (printable ASCII, no spaces); build it with encode_risk_info",
            "必须经过 URL 编码（可打印 ASCII 字符，不含空格）",
        ));
    }
    Ok(())
}

/// Characters left as they are by the encodings here: RFC 3986's unreserved set.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// URL-encodes a string as one component (`=` → `%3D`, `&` → `%26`, ...).
pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, URL_COMPONENT).to_string()
}

/// Builds `risk_info` from its parts — any of `posttime` (unix time of the
/// user's action), `mobile` (country code, `-`, number), `deviceid`,
/// `clientversion` — as the URL-encoded query string WeChat expects.
pub fn encode_risk_info<'a>(parts: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let query: Vec<String> = parts
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    url_encode(&query.join("&"))
}

fn common_send_texts(
    params: &mut Params,
    send_name: &str,
    wishing: &str,
    act_name: &str,
    remark: &str,
) -> Result<(), InvalidField> {
    check_text("send_name", send_name, 32)?;
    check_text("wishing", wishing, 128)?;
    check_text("act_name", act_name, 32)?;
    check_text("remark", remark, 256)?;
    params.insert("send_name", send_name);
    params.insert("wishing", wishing);
    params.insert("act_name", act_name);
    params.insert("remark", remark);
    Ok(())
}

fn check_nonce(nonce_str: &str) -> Result<(), InvalidField> {
    if nonce_str.is_empty()
        || nonce_str.len() > 32
        || !nonce_str.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(InvalidField::new(
            "nonce_str",
            "must be 1 to 32 ASCII letters and digits",
            "必须是 1 到 32 位英文字母和数字",
        ));
    }
    Ok(())
}

fn base_params(
    mch_billno: &MchBillNo,
    mch_id: &MchId,
    nonce_str: &str,
) -> Result<Params, InvalidField> {
    check_nonce(nonce_str)?;
    let mut params = Params::new();
    params.insert("nonce_str", nonce_str);
    params.insert("mch_billno", mch_billno.as_str());
    params.insert("mch_id", mch_id.as_str());
    Ok(params)
}

fn service_provider_fields(params: &mut Params, merchant: &Merchant) {
    if let Some(sp) = &merchant.service_provider {
        params.insert("sub_mch_id", sp.sub_mch_id.as_str());
        params.insert("msgappid", sp.msgappid.as_str());
        params.insert_opt(
            "consume_mch_id",
            sp.consume_mch_id.as_ref().map(MchId::as_str),
        );
    }
}

/// `sendredpack`: a normal red packet (普通红包) to one follower, delivered
/// by an official-account message. `total_num` is always 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRedpack {
    /// The order number, allocated once and reused on every retry.
    pub mch_billno: MchBillNo,
    /// The receiver's openid under the merchant's official account.
    pub re_openid: OpenId,
    /// The amount: 1.00–200.00 yuan, or 0.30–4999.00 with a `scene_id`.
    pub total_amount: Fen,
    /// The sender's name shown to the user (at most 32 bytes).
    pub send_name: String,
    /// The blessing (at most 128 bytes).
    pub wishing: String,
    /// The activity's name (at most 32 bytes).
    pub act_name: String,
    /// A remark (at most 256 bytes).
    pub remark: String,
    /// The IPv4 address of the calling machine.
    pub client_ip: String,
    /// The scene, required outside 1.00–200.00 yuan.
    pub scene_id: Option<SceneId>,
    /// Risk information, URL-encoded (see [`encode_risk_info`]).
    pub risk_info: Option<String>,
}

impl Request for SendRedpack {
    const API: Api = Api::SendRedpack;

    fn params(&self, merchant: &Merchant, nonce_str: &str) -> Result<Params, InvalidField> {
        let mut params = base_params(&self.mch_billno, &merchant.mch_id, nonce_str)?;
        params.insert("wxappid", merchant.appid.as_str());
        service_provider_fields(&mut params, merchant);
        params.insert("re_openid", self.re_openid.as_str());
        check_amount(self.total_amount, self.scene_id)?;
        params.insert("total_amount", self.total_amount.get().to_string());
        params.insert("total_num", "1");
        common_send_texts(
            &mut params,
            &self.send_name,
            &self.wishing,
            &self.act_name,
            &self.remark,
        )?;
        check_client_ip(&self.client_ip)?;
        params.insert("client_ip", self.client_ip.as_str());
        params.insert_opt("scene_id", self.scene_id.map(SceneId::as_str));
        if let Some(risk_info) = &self.risk_info {
            check_risk_info(risk_info)?;
            params.insert("risk_info", risk_info.as_str());
        }
        Ok(params)
    }

    fn mch_billno(&self) -> &MchBillNo {
        &self.mch_billno
    }
}

/// `sendgroupredpack`: a fission red packet (裂变红包) of 3–20 shares, sent
/// to a seed user who shares the rest. WeChat retired it on 2024-06-05;
/// kept for merchants with legacy access and for tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendGroupRedpack {
    /// The order number.
    pub mch_billno: MchBillNo,
    /// The seed user.
    pub re_openid: OpenId,
    /// The whole group's amount (the seed's share included).
    pub total_amount: Fen,
    /// The number of shares, 3 to 20.
    pub total_num: u32,
    /// The sender's name (at most 32 bytes).
    pub send_name: String,
    /// The blessing (at most 128 bytes).
    pub wishing: String,
    /// The activity's name (at most 32 bytes).
    pub act_name: String,
    /// A remark (at most 256 bytes).
    pub remark: String,
    /// The scene.
    pub scene_id: Option<SceneId>,
    /// Risk information, URL-encoded.
    pub risk_info: Option<String>,
}

impl Request for SendGroupRedpack {
    const API: Api = Api::SendGroupRedpack;

    fn params(&self, merchant: &Merchant, nonce_str: &str) -> Result<Params, InvalidField> {
        let mut params = base_params(&self.mch_billno, &merchant.mch_id, nonce_str)?;
        params.insert("wxappid", merchant.appid.as_str());
        service_provider_fields(&mut params, merchant);
        params.insert("re_openid", self.re_openid.as_str());
        check_group(self.total_amount, self.total_num)?;
        params.insert("total_amount", self.total_amount.get().to_string());
        params.insert("total_num", self.total_num.to_string());
        params.insert("amt_type", "ALL_RAND");
        common_send_texts(
            &mut params,
            &self.send_name,
            &self.wishing,
            &self.act_name,
            &self.remark,
        )?;
        params.insert_opt("scene_id", self.scene_id.map(SceneId::as_str));
        if let Some(risk_info) = &self.risk_info {
            check_risk_info(risk_info)?;
            params.insert("risk_info", risk_info.as_str());
        }
        Ok(params)
    }

    fn mch_billno(&self) -> &MchBillNo {
        &self.mch_billno
    }
}

/// `sendminiprogramhb`: a red packet the user opens inside a mini program
/// with `wx.sendBizRedPacket` (see [`crate::BizRedPacket`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMiniProgramHb {
    /// The order number.
    pub mch_billno: MchBillNo,
    /// The mini program's appid (not the official account's).
    pub wxappid: AppId,
    /// The receiver's openid under the mini program.
    pub re_openid: OpenId,
    /// The amount, under the same rule as a normal packet.
    pub total_amount: Fen,
    /// The sender's name (at most 32 bytes).
    pub send_name: String,
    /// The blessing (at most 128 bytes).
    pub wishing: String,
    /// The activity's name (at most 32 bytes).
    pub act_name: String,
    /// A remark (at most 256 bytes).
    pub remark: String,
    /// The scene, required outside 1.00–200.00 yuan.
    pub scene_id: Option<SceneId>,
}

impl Request for SendMiniProgramHb {
    const API: Api = Api::SendMiniProgramHb;

    fn params(&self, merchant: &Merchant, nonce_str: &str) -> Result<Params, InvalidField> {
        if merchant.service_provider.is_some() {
            return Err(InvalidField::new(
                "sub_mch_id",
                "sendminiprogramhb documents no service-provider fields; send mini program red packets from the sub-merchant's own account",
                "小程序红包接口没有服务商模式字段，请使用子商户自己的商户号发放",
            ));
        }
        let mut params = base_params(&self.mch_billno, &merchant.mch_id, nonce_str)?;
        params.insert("wxappid", self.wxappid.as_str());
        params.insert("re_openid", self.re_openid.as_str());
        check_amount(self.total_amount, self.scene_id)?;
        params.insert("total_amount", self.total_amount.get().to_string());
        params.insert("total_num", "1");
        common_send_texts(
            &mut params,
            &self.send_name,
            &self.wishing,
            &self.act_name,
            &self.remark,
        )?;
        params.insert("notify_way", "MINI_PROGRAM_JSAPI");
        params.insert_opt("scene_id", self.scene_id.map(SceneId::as_str));
        Ok(params)
    }

    fn mch_billno(&self) -> &MchBillNo {
        &self.mch_billno
    }
}

/// `gethbinfo`: the state of a red packet by its mch_billno.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetHbInfo {
    /// The order to look up.
    pub mch_billno: MchBillNo,
}

impl Request for GetHbInfo {
    const API: Api = Api::GetHbInfo;

    fn params(&self, merchant: &Merchant, nonce_str: &str) -> Result<Params, InvalidField> {
        let mut params = base_params(&self.mch_billno, &merchant.mch_id, nonce_str)?;
        params.insert("appid", merchant.appid.as_str());
        params.insert("bill_type", "MCHT");
        Ok(params)
    }

    fn mch_billno(&self) -> &MchBillNo {
        &self.mch_billno
    }
}

/// The kind of a Shake-Nearby pre-order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HbType {
    /// One packet for one user.
    Normal,
    /// A shareable group of packets.
    Group,
}

/// The risk control of a Shake-Nearby pre-order (`risk_cntl`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskControl {
    /// `NORMAL`: WeChat's usual checks (the safe choice).
    #[default]
    #[serde(rename = "NORMAL")]
    Normal,
    /// `IGN_FREQ_LMT`: skip the anti-abuse rate check.
    #[serde(rename = "IGN_FREQ_LMT")]
    IgnoreFrequencyLimit,
    /// `IGN_DAY_LMT`: skip the per-user daily cap.
    #[serde(rename = "IGN_DAY_LMT")]
    IgnoreDayLimit,
    /// `IGN_FREQ_DAY_LMT`: skip both.
    #[serde(rename = "IGN_FREQ_DAY_LMT")]
    IgnoreFrequencyAndDayLimits,
}

impl RiskControl {
    /// The wire value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RiskControl::Normal => "NORMAL",
            RiskControl::IgnoreFrequencyLimit => "IGN_FREQ_LMT",
            RiskControl::IgnoreDayLimit => "IGN_DAY_LMT",
            RiskControl::IgnoreFrequencyAndDayLimits => "IGN_FREQ_DAY_LMT",
        }
    }
}

/// `hbpreorder`: pre-creates a packet for a Shake-Nearby (摇一摇周边)
/// lottery and returns its `sp_ticket` (legacy product).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HbPreorder {
    /// The order number.
    pub mch_billno: MchBillNo,
    /// The provider's name on the packet page (at most 32 bytes).
    pub send_name: String,
    /// One packet or a shareable group.
    pub hb_type: HbType,
    /// The amount of the whole order.
    pub total_amount: Fen,
    /// 1 for a normal packet, more for a group.
    pub total_num: u32,
    /// The blessing on the packet page (at most 16 bytes).
    pub wishing: String,
    /// The activity's name (at most 32 bytes).
    pub act_name: String,
    /// A remark (at most 32 bytes).
    pub remark: String,
    /// WeChat's risk checks to apply.
    pub risk_cntl: RiskControl,
}

impl HbPreorder {
    /// The Shake-Nearby platform's merchant id, a constant of the API.
    pub const AUTH_MCHID: &'static str = "1000052601";
    /// The Shake-Nearby platform's appid, a constant of the API.
    pub const AUTH_APPID: &'static str = "wxbf42bd79c4391863";
}

impl Request for HbPreorder {
    const API: Api = Api::HbPreorder;

    fn params(&self, merchant: &Merchant, nonce_str: &str) -> Result<Params, InvalidField> {
        let mut params = base_params(&self.mch_billno, &merchant.mch_id, nonce_str)?;
        params.insert("wxappid", merchant.appid.as_str());
        check_text("send_name", &self.send_name, 32)?;
        params.insert("send_name", self.send_name.as_str());
        match self.hb_type {
            HbType::Normal => {
                if self.total_num != 1 {
                    return Err(InvalidField::new(
                        "total_num",
                        format!("must be 1 for a NORMAL pre-order, not {}", self.total_num),
                        format!(
                            "NORMAL 类型的 total_num 必须为 1，当前为 {}",
                            self.total_num
                        ),
                    ));
                }
                check_amount(self.total_amount, None)?;
                params.insert("hb_type", "NORMAL");
            }
            HbType::Group => {
                if self.total_num < 2 {
                    return Err(InvalidField::new(
                        "total_num",
                        format!(
                            "must be more than 1 for a GROUP pre-order, not {}",
                            self.total_num
                        ),
                        format!(
                            "GROUP 类型的 total_num 必须大于 1，当前为 {}",
                            self.total_num
                        ),
                    ));
                }
                check_average(self.total_amount, self.total_num)?;
                params.insert("hb_type", "GROUP");
            }
        }
        params.insert("total_amount", self.total_amount.get().to_string());
        params.insert("total_num", self.total_num.to_string());
        params.insert("amt_type", "ALL_RAND");
        check_text("wishing", &self.wishing, 16)?;
        check_text("act_name", &self.act_name, 32)?;
        check_text("remark", &self.remark, 32)?;
        params.insert("wishing", self.wishing.as_str());
        params.insert("act_name", self.act_name.as_str());
        params.insert("remark", self.remark.as_str());
        params.insert("auth_mchid", Self::AUTH_MCHID);
        params.insert("auth_appid", Self::AUTH_APPID);
        params.insert("risk_cntl", self.risk_cntl.as_str());
        Ok(params)
    }

    fn mch_billno(&self) -> &MchBillNo {
        &self.mch_billno
    }
}

/// In whose name a WeCom red packet is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkWxSender {
    /// In a person's name (`sender_name`, at most 128 bytes).
    Person(String),
    /// In an app's name (`agentid`).
    Agent(u32),
}

/// `sendworkwxredpack`: a red packet from a WeCom (企业微信) corp.
///
/// Besides `sign`, it carries `workwx_sign`, made with the WeCom payment
/// app's secret over fixed fields (facts §3.5).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendWorkWxRedpack {
    /// The order number.
    pub mch_billno: MchBillNo,
    /// The WeCom corpid (sent as `wxappid`).
    pub corpid: AppId,
    /// The person or app the packet comes from.
    pub sender: WorkWxSender,
    /// The sender's avatar, a WeCom media id (at most 128 bytes).
    pub sender_header_media_id: Option<String>,
    /// The receiver's openid (converted from the WeCom userid).
    pub re_openid: OpenId,
    /// The amount.
    pub total_amount: Fen,
    /// The blessing (at most 128 bytes).
    pub wishing: String,
    /// The project's name (项目名称, at most 32 bytes).
    pub act_name: String,
    /// A remark (at most 256 bytes).
    pub remark: String,
    /// The scene, required outside 1.00–200.00 yuan.
    pub scene_id: Option<SceneId>,
    /// The WeCom payment app's secret, for `workwx_sign`.
    #[serde(skip_serializing, deserialize_with = "deserialize_secret")]
    pub workwx_secret: ApiKey,
}

fn deserialize_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ApiKey, D::Error> {
    let s = String::deserialize(d)?;
    Ok(ApiKey::any(&s))
}

impl Request for SendWorkWxRedpack {
    const API: Api = Api::SendWorkWxRedpack;

    fn params(&self, merchant: &Merchant, nonce_str: &str) -> Result<Params, InvalidField> {
        let mut params = base_params(&self.mch_billno, &merchant.mch_id, nonce_str)?;
        params.insert("wxappid", self.corpid.as_str());
        match &self.sender {
            WorkWxSender::Person(name) => {
                check_text("sender_name", name, 128)?;
                params.insert("sender_name", name.as_str());
            }
            WorkWxSender::Agent(agentid) => params.insert("agentid", agentid.to_string()),
        }
        if let Some(media) = &self.sender_header_media_id {
            check_optional_text("sender_header_media_id", media, 128)?;
            params.insert("sender_header_media_id", media.as_str());
        }
        params.insert("re_openid", self.re_openid.as_str());
        check_amount(self.total_amount, self.scene_id)?;
        params.insert("total_amount", self.total_amount.get().to_string());
        check_text("wishing", &self.wishing, 128)?;
        check_text("act_name", &self.act_name, 32)?;
        check_text("remark", &self.remark, 256)?;
        params.insert("wishing", self.wishing.as_str());
        params.insert("act_name", self.act_name.as_str());
        params.insert("remark", self.remark.as_str());
        params.insert_opt("scene_id", self.scene_id.map(SceneId::as_str));
        if self.workwx_secret.is_empty() {
            return Err(InvalidField::new(
                "workwx_secret",
                "is required to compute workwx_sign; use the secret of the WeCom payment app",
                "计算 workwx_sign 需要企业微信支付应用的 secret",
            ));
        }
        let workwx_sign = crate::sign::workwx_sign(&params, &self.workwx_secret);
        params.insert("workwx_sign", workwx_sign);
        Ok(params)
    }

    fn mch_billno(&self) -> &MchBillNo {
        &self.mch_billno
    }
}

/// `queryworkwxredpack`: the state of a WeCom red packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryWorkWxRedpack {
    /// The order to look up.
    pub mch_billno: MchBillNo,
    /// The WeCom corpid (sent as `appid`).
    pub corpid: AppId,
}

impl Request for QueryWorkWxRedpack {
    const API: Api = Api::QueryWorkWxRedpack;

    fn params(&self, merchant: &Merchant, nonce_str: &str) -> Result<Params, InvalidField> {
        let mut params = base_params(&self.mch_billno, &merchant.mch_id, nonce_str)?;
        params.insert("appid", self.corpid.as_str());
        Ok(params)
    }

    fn mch_billno(&self) -> &MchBillNo {
        &self.mch_billno
    }
}

/// A request ready to send: its API and its parameters without `sign`.
///
/// This is what a ledger stores before the first attempt, so that every
/// retry signs and sends byte-identical parameters. It can only be made
/// from a validated request or from parameters that pass
/// [`Prepared::from_parts`] (also on deserialisation): it never holds a
/// field its API does not document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PreparedParts")]
pub struct Prepared {
    api: Api,
    params: Params,
}

#[derive(Deserialize)]
struct PreparedParts {
    api: Api,
    params: Params,
}

impl TryFrom<PreparedParts> for Prepared {
    type Error = InvalidField;
    fn try_from(parts: PreparedParts) -> Result<Self, InvalidField> {
        Prepared::from_parts(parts.api, parts.params)
    }
}

impl Prepared {
    /// Validates `request` for `merchant` with a fresh `nonce_str`.
    pub fn new<R: Request>(request: &R, merchant: &Merchant) -> Result<Self, InvalidField> {
        Self::with_nonce(request, merchant, &crate::nonce_str())
    }

    /// As [`Prepared::new`] with a given `nonce_str` (for reproducible tests).
    pub fn with_nonce<R: Request>(
        request: &R,
        merchant: &Merchant,
        nonce_str: &str,
    ) -> Result<Self, InvalidField> {
        Self::from_parts(R::API, request.params(merchant, nonce_str)?)
    }

    /// Checks stored parameters: only the API's documented fields (no
    /// `sign`), with `nonce_str`, `mch_id` and `mch_billno` present — so that
    /// parameters read back from storage are still what WeChat verifies.
    pub fn from_parts(api: Api, params: Params) -> Result<Self, InvalidField> {
        for name in params.names() {
            if name == "sign" || !api.fields().contains(&name) {
                return Err(InvalidField::new(
                    name.to_owned(),
                    format!("is not a field of {api}; WeChat would answer SIGN_ERROR"),
                    format!("不是 {api} 接口的字段，微信会返回签名错误"),
                ));
            }
        }
        for required in ["nonce_str", "mch_id", "mch_billno"] {
            if !params.contains(required) {
                return Err(InvalidField::required(required));
            }
        }
        Ok(Prepared { api, params })
    }

    /// The API to call.
    pub fn api(&self) -> Api {
        self.api
    }

    /// The parameters, `nonce_str` included, `sign` not.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The mch_billno of the request.
    pub fn mch_billno(&self) -> &str {
        self.params.get("mch_billno").unwrap_or_default()
    }

    /// The same request under another `mch_billno` and `nonce_str`: what
    /// [`Prepared::with_nonce`] makes of the same request with those two,
    /// without building and checking every field again. For a payout
    /// validated once and sent under many numbers.
    ///
    /// Refused for a request with a `workwx_sign`, which is made over both
    /// and must be prepared again.
    pub fn renumbered(
        &self,
        mch_billno: &MchBillNo,
        nonce_str: &str,
    ) -> Result<Prepared, InvalidField> {
        check_nonce(nonce_str)?;
        if self.params.contains("workwx_sign") {
            return Err(InvalidField::new(
                "workwx_sign",
                "is made over mch_billno and nonce_str: prepare the request again under the new ones",
                "由 mch_billno 和 nonce_str 算出：请用新的单号重新生成请求",
            ));
        }
        Ok(Prepared {
            api: self.api,
            params: self.params.replaced(&[
                ("mch_billno", mch_billno.as_str()),
                ("nonce_str", nonce_str),
            ]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant() -> Merchant {
        Merchant {
            mch_id: MchId::parse("1900000109").unwrap(),
            appid: AppId::parse("wx8888888888888888").unwrap(),
            service_provider: None,
        }
    }

    fn normal() -> SendRedpack {
        SendRedpack {
            mch_billno: MchBillNo::parse("1900000109202611220000000042").unwrap(),
            re_openid: OpenId::parse("oxTWIuGaIt6gTKsQRLau2M0yL16E").unwrap(),
            total_amount: Fen::new(188),
            send_name: "天虹百货".into(),
            wishing: "恭喜发财".into(),
            act_name: "新年红包".into(),
            remark: "新年红包".into(),
            client_ip: "10.0.0.1".into(),
            scene_id: None,
            risk_info: None,
        }
    }

    /// A WeCom red packet of 1 yuan from an agent.
    fn workwx(mch_billno: MchBillNo, re_openid: OpenId) -> SendWorkWxRedpack {
        SendWorkWxRedpack {
            mch_billno,
            corpid: AppId::parse("ww1234567890abcdef").unwrap(),
            sender: WorkWxSender::Agent(1_000_002),
            sender_header_media_id: None,
            re_openid,
            total_amount: Fen::new(100),
            wishing: "b".into(),
            act_name: "c".into(),
            remark: "d".into(),
            scene_id: None,
            workwx_secret: ApiKey::any("secret"),
        }
    }

    fn names(p: &Prepared) -> Vec<&str> {
        p.params().names().collect()
    }

    #[test]
    fn sendredpack_sends_exactly_its_documented_fields() {
        let p = Prepared::with_nonce(&normal(), &merchant(), "N0NCE").unwrap();
        assert_eq!(
            names(&p),
            [
                "act_name",
                "client_ip",
                "mch_billno",
                "mch_id",
                "nonce_str",
                "re_openid",
                "remark",
                "send_name",
                "total_amount",
                "total_num",
                "wishing",
                "wxappid"
            ]
        );
        assert_eq!(p.params().get("total_num"), Some("1"));
        assert_eq!(p.params().get("total_amount"), Some("188"));
    }

    #[test]
    fn service_provider_fields_are_sent_where_documented() {
        let mut m = merchant();
        m.service_provider = Some(ServiceProvider {
            sub_mch_id: MchId::parse("1900000110").unwrap(),
            msgappid: AppId::parse("wx9999999999999999").unwrap(),
            consume_mch_id: Some(MchId::parse("1900000111").unwrap()),
        });
        let p = Prepared::with_nonce(&normal(), &m, "N").unwrap();
        assert_eq!(p.params().get("sub_mch_id"), Some("1900000110"));
        assert_eq!(p.params().get("msgappid"), Some("wx9999999999999999"));
        assert_eq!(p.params().get("consume_mch_id"), Some("1900000111"));
        // gethbinfo documents no SP field: none is sent.
        let q = Prepared::with_nonce(
            &GetHbInfo {
                mch_billno: normal().mch_billno,
            },
            &m,
            "N",
        )
        .unwrap();
        assert_eq!(
            names(&q),
            ["appid", "bill_type", "mch_billno", "mch_id", "nonce_str"]
        );
        // sendminiprogramhb documents none either: refused, not guessed.
        let mini = SendMiniProgramHb {
            mch_billno: normal().mch_billno,
            wxappid: AppId::parse("wx1111111111111111").unwrap(),
            re_openid: normal().re_openid,
            total_amount: Fen::new(100),
            send_name: "a".into(),
            wishing: "b".into(),
            act_name: "c".into(),
            remark: "d".into(),
            scene_id: None,
        };
        assert_eq!(Prepared::new(&mini, &m).unwrap_err().field, "sub_mch_id");
    }

    #[test]
    fn every_request_stays_within_its_apis_fields() {
        let m = merchant();
        let billno = normal().mch_billno;
        let openid = normal().re_openid;
        let group = SendGroupRedpack {
            mch_billno: billno.clone(),
            re_openid: openid.clone(),
            total_amount: Fen::new(1000),
            total_num: 5,
            send_name: "a".into(),
            wishing: "b".into(),
            act_name: "c".into(),
            remark: "d".into(),
            scene_id: Some(SceneId::Product1),
            risk_info: Some(encode_risk_info([("posttime", "123"), ("deviceid", "IOS")])),
        };
        let mini = SendMiniProgramHb {
            mch_billno: billno.clone(),
            wxappid: AppId::parse("wx1111111111111111").unwrap(),
            re_openid: openid.clone(),
            total_amount: Fen::new(100),
            send_name: "a".into(),
            wishing: "b".into(),
            act_name: "c".into(),
            remark: "d".into(),
            scene_id: None,
        };
        let pre = HbPreorder {
            mch_billno: billno.clone(),
            send_name: "a".into(),
            hb_type: HbType::Group,
            total_amount: Fen::new(600),
            total_num: 3,
            wishing: "b".into(),
            act_name: "c".into(),
            remark: "d".into(),
            risk_cntl: RiskControl::Normal,
        };
        let workwx = workwx(billno.clone(), openid);
        let query = QueryWorkWxRedpack {
            mch_billno: billno,
            corpid: AppId::parse("ww1").unwrap(),
        };
        let prepared = [
            Prepared::new(&group, &m).unwrap(),
            Prepared::new(&mini, &m).unwrap(),
            Prepared::new(&pre, &m).unwrap(),
            Prepared::new(&workwx, &m).unwrap(),
            Prepared::new(&query, &m).unwrap(),
        ];
        for p in &prepared {
            for name in p.params().names() {
                assert!(p.api().fields().contains(&name), "{} sends {name}", p.api());
            }
        }
        assert_eq!(prepared[0].params().get("amt_type"), Some("ALL_RAND"));
        assert!(!prepared[0].params().contains("client_ip"));
        assert_eq!(
            prepared[1].params().get("notify_way"),
            Some("MINI_PROGRAM_JSAPI")
        );
        assert_eq!(prepared[2].params().get("auth_mchid"), Some("1000052601"));
        assert_eq!(
            prepared[3].params().get("workwx_sign").map(str::len),
            Some(32)
        );
        assert!(!prepared[3].params().contains("total_num"));
    }

    #[test]
    fn a_renumbered_request_is_the_one_prepared_under_the_new_number() {
        let m = merchant();
        let old = normal();
        let mut new = normal();
        new.mch_billno = MchBillNo::parse("1900000109202611220000000043").unwrap();
        let renumbered = Prepared::with_nonce(&old, &m, "old")
            .unwrap()
            .renumbered(&new.mch_billno, "N3wNonce")
            .unwrap();
        assert_eq!(
            renumbered,
            Prepared::with_nonce(&new, &m, "N3wNonce").unwrap()
        );
        let prepared = Prepared::with_nonce(&old, &m, "old").unwrap();
        let err = prepared.renumbered(&new.mch_billno, "").unwrap_err();
        assert_eq!(err.field, "nonce_str");

        let workwx = workwx(old.mch_billno.clone(), old.re_openid);
        let err = Prepared::new(&workwx, &m)
            .unwrap()
            .renumbered(&new.mch_billno, "N3wNonce")
            .unwrap_err();
        assert_eq!(err.field, "workwx_sign");
    }

    #[test]
    fn amount_needs_a_scene_outside_one_to_two_hundred_yuan() {
        for fen in [100, 188, 20_000] {
            assert!(check_amount(Fen::new(fen), None).is_ok(), "{fen}");
        }
        for fen in [0, 99, 20_001] {
            let err = check_amount(Fen::new(fen), None).unwrap_err();
            assert_eq!(err.field, "total_amount");
            assert!(err.message.contains("scene_id"), "{}", err.message);
        }
        assert!(check_amount(Fen::new(30), Some(SceneId::Product2)).is_ok());
        assert!(check_amount(Fen::new(499_900), Some(SceneId::Product4)).is_ok());
        assert!(check_amount(Fen::new(29), Some(SceneId::Product2)).is_err());
        assert!(check_amount(Fen::new(0), Some(SceneId::Product2)).is_err());
        assert!(check_amount(Fen::new(499_901), Some(SceneId::Product2)).is_err());
    }

    #[test]
    fn fission_total_num_and_average_rules() {
        assert!(check_group(Fen::new(300), 3).is_ok());
        assert!(check_group(Fen::new(400_000), 20).is_ok());
        assert_eq!(
            check_group(Fen::new(300), 2).unwrap_err().field,
            "total_num"
        );
        assert_eq!(
            check_group(Fen::new(2100), 21).unwrap_err().field,
            "total_num"
        );
        assert_eq!(
            check_group(Fen::new(299), 3).unwrap_err().field,
            "total_amount"
        );
        assert_eq!(
            check_group(Fen::new(60_001), 3).unwrap_err().field,
            "total_amount"
        );
    }

    #[test]
    fn hbpreorder_total_num_follows_hb_type() {
        let mut pre = HbPreorder {
            mch_billno: normal().mch_billno,
            send_name: "a".into(),
            hb_type: HbType::Normal,
            total_amount: Fen::new(100),
            total_num: 2,
            wishing: "b".into(),
            act_name: "c".into(),
            remark: "d".into(),
            risk_cntl: RiskControl::Normal,
        };
        assert_eq!(
            Prepared::new(&pre, &merchant()).unwrap_err().field,
            "total_num"
        );
        pre.hb_type = HbType::Group;
        pre.total_amount = Fen::new(200);
        assert!(Prepared::new(&pre, &merchant()).is_ok());
        pre.total_num = 1;
        assert_eq!(
            Prepared::new(&pre, &merchant()).unwrap_err().field,
            "total_num"
        );
        // Shake's wishing is String(16): six Chinese characters are 18 bytes.
        pre.total_num = 2;
        pre.wishing = "恭喜发财万事如意".into();
        assert_eq!(
            Prepared::new(&pre, &merchant()).unwrap_err().field,
            "wishing"
        );
    }

    #[test]
    fn invalid_fields_are_named() {
        let m = merchant();
        type Mutation = Box<dyn Fn(&mut SendRedpack)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|r| r.send_name = "天虹百货天虹百货天虹百".into()),
                "send_name",
            ),
            (Box::new(|r| r.wishing = "福".repeat(43)), "wishing"),
            (Box::new(|r| r.act_name = String::new()), "act_name"),
            (Box::new(|r| r.remark = "x".repeat(257)), "remark"),
            (Box::new(|r| r.client_ip = "::1".into()), "client_ip"),
            (Box::new(|r| r.client_ip = "10.0.0.256".into()), "client_ip"),
            (Box::new(|r| r.total_amount = Fen::new(50)), "total_amount"),
            (
                Box::new(|r| r.risk_info = Some("posttime=1 2".into())),
                "risk_info",
            ),
        ];
        for (mutate, field) in cases {
            let mut r = normal();
            mutate(&mut r);
            assert_eq!(Prepared::new(&r, &m).unwrap_err().field, field);
        }
        assert_eq!(
            Prepared::with_nonce(&normal(), &m, "bad nonce")
                .unwrap_err()
                .field,
            "nonce_str"
        );
    }

    #[test]
    fn stored_parameters_outside_the_api_are_refused() {
        let p = Prepared::new(&normal(), &merchant()).unwrap();
        let mut params = p.params().clone();
        assert!(Prepared::from_parts(Api::SendRedpack, params.clone()).is_ok());
        assert_eq!(
            Prepared::from_parts(Api::SendGroupRedpack, params.clone())
                .unwrap_err()
                .field,
            "client_ip"
        );
        params.insert("sign_type", "MD5");
        assert_eq!(
            Prepared::from_parts(Api::SendRedpack, params.clone())
                .unwrap_err()
                .field,
            "sign_type"
        );
        // The same check guards what is read back from storage.
        let mut json = serde_json::to_value(&p).unwrap();
        json["params"]["sign"] = "ABC".into();
        let err = serde_json::from_value::<Prepared>(json).unwrap_err();
        assert!(err.to_string().contains("sign"), "{err}");
        params.remove("sign_type");
        params.remove("nonce_str");
        assert_eq!(
            Prepared::from_parts(Api::SendRedpack, params)
                .unwrap_err()
                .field,
            "nonce_str"
        );
    }

    #[test]
    fn risk_info_is_url_encoded() {
        assert_eq!(
            encode_risk_info([
                ("posttime", "123123412"),
                ("clientversion", "234134"),
                ("mobile", "86-122344545"),
                ("deviceid", "")
            ]),
            "posttime%3D123123412%26clientversion%3D234134%26mobile%3D86-122344545"
        );
    }
}
