//! WeChat's validation of a red packet call: mch_id, signature, the
//! documented fields with WeChat's texts, openids, amounts, and the rate.

use std::time::Instant;

use hongbao_wxpay::{Api, Params, SignType, sign};

use super::Simulator;

/// The failure answer's shape: `err_code`, its text, and the echoed fields.
pub(super) struct Refusal {
    pub(super) code: &'static str,
    pub(super) des: String,
}

pub(super) fn refuse(code: &'static str, des: impl Into<String>) -> Refusal {
    Refusal {
        code,
        des: des.into(),
    }
}

const OPENID_LEN: usize = 28;

pub(super) fn well_formed_openid(openid: &str) -> bool {
    openid.len() == OPENID_LEN
        && openid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Text length as WeChat's PARAM_ERROR texts count it: characters.
fn chars(s: &str) -> usize {
    s.chars().count()
}

impl Simulator {
    pub(super) fn rate_limited(&mut self, arrival: Instant) -> bool {
        let limit = self.rules.rate_per_minute;
        if limit == 0 {
            return false;
        }
        let minute = std::time::Duration::from_secs(60);
        while self
            .rate_window
            .front()
            .is_some_and(|t| arrival.saturating_duration_since(*t) >= minute)
        {
            self.rate_window.pop_front();
        }
        if self.rate_window.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return true;
        }
        self.rate_window.push_back(arrival);
        false
    }

    /// mch_id and signatures.
    pub(super) fn authenticate(&self, api: Api, params: &Params) -> Result<(), Refusal> {
        let mch_id = params.get("mch_id").unwrap_or_default();
        if mch_id.is_empty() {
            return Err(refuse("PARAM_ERROR", "mch_id字段必填"));
        }
        if mch_id != self.secrets.mch_id {
            return Err(refuse("PARAM_ERROR", "商户号不存在"));
        }
        // WeChat re-serialises integers: "1.00" cannot sign the same.
        for field in ["total_amount", "total_num", "agentid"] {
            if let Some(v) = params.get(field)
                && !v.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(refuse("SIGN_ERROR", "签名错误"));
            }
        }
        let Some(given) = params.get("sign") else {
            return Err(refuse("SIGN_ERROR", "签名错误"));
        };
        // Verified over the API's documented fields only, as WeChat does.
        let documented = params
            .iter()
            .filter(|(k, _)| *k != "sign" && api.fields().contains(k));
        if !sign::verify(documented, &self.api_key, SignType::Md5, given) {
            return Err(refuse("SIGN_ERROR", "签名错误"));
        }
        if api == Api::SendWorkWxRedpack {
            let expected = sign::workwx_sign(params, &self.workwx_secret);
            if params.get("workwx_sign") != Some(expected.as_str()) {
                return Err(refuse("SIGN_ERROR", "企业微信签名workwx_sign错误"));
            }
        }
        Ok(())
    }

    pub(super) fn validate(&self, api: Api, p: &Params) -> Result<(), Refusal> {
        let text = |name: &'static str, max: usize, required: bool| -> Result<(), Refusal> {
            match p.get(name) {
                None if required => Err(refuse(
                    "PARAM_ERROR",
                    format!("{name}字段必填,并且少于{max}个字符"),
                )),
                Some(v) if chars(v) > max => Err(refuse(
                    "PARAM_ERROR",
                    format!("{name}字段必填,并且少于{max}个字符"),
                )),
                _ => Ok(()),
            }
        };
        text("nonce_str", 32, true)?;
        let billno = p.get("mch_billno").unwrap_or_default();
        if billno.is_empty() || billno.len() > 28 {
            return Err(refuse("PARAM_ERROR", "mch_billno字段必填,并且少于28个字符"));
        }
        if !billno.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(refuse("PARAM_ERROR", "mch_billno只能是数字和字母"));
        }
        if p.contains("sub_mch_id") || p.contains("msgappid") {
            return Err(refuse("ACCEPTMODE_ERROR", "服务商与子商户的受理关系不存在"));
        }
        let appid_field = match api {
            Api::GetHbInfo | Api::QueryWorkWxRedpack => "appid",
            _ => "wxappid",
        };
        let appid = p.get(appid_field).unwrap_or_default();
        if appid.is_empty() {
            return Err(refuse(
                "PARAM_ERROR",
                format!("{appid_field}字段必填,最长为32个字符"),
            ));
        }
        let bound = match api {
            Api::SendMiniProgramHb => appid == self.secrets.miniprogram_appid,
            Api::SendWorkWxRedpack | Api::QueryWorkWxRedpack => appid == self.secrets.workwx_corpid,
            Api::GetHbInfo => {
                appid == self.secrets.appid || appid == self.secrets.miniprogram_appid
            }
            _ => appid == self.secrets.appid,
        };
        if !bound {
            return Err(refuse(
                "PARAM_ERROR",
                format!("商户号和{appid_field}不匹配"),
            ));
        }
        match api {
            Api::GetHbInfo => {
                if p.get("bill_type") != Some("MCHT") {
                    return Err(refuse("PARAM_ERROR", "bill_type参数错误,必须为MCHT"));
                }
                return Ok(());
            }
            Api::QueryWorkWxRedpack => return Ok(()),
            _ => {}
        }

        let amount: u64 = match p.get("total_amount") {
            None => return Err(refuse("PARAM_ERROR", "total_amount字段必填")),
            Some(v) => v
                .parse()
                .map_err(|_| refuse("PARAM_ERROR", "红包金额参数错误"))?,
        };
        let num: u32 = match (api, p.get("total_num")) {
            (Api::SendWorkWxRedpack, _) => 1,
            (_, None) => return Err(refuse("PARAM_ERROR", "total_num字段必填")),
            (_, Some(v)) => v
                .parse()
                .map_err(|_| refuse("PARAM_ERROR", "total_num参数错误"))?,
        };
        match api {
            Api::HbPreorder => {
                text("send_name", 32, true)?;
                text("wishing", 16, true)?;
                text("act_name", 32, true)?;
                text("remark", 32, true)?;
                match p.get("hb_type") {
                    Some("NORMAL") if num != 1 => {
                        return Err(refuse("PARAM_ERROR", "total_num必须等于1"));
                    }
                    Some("GROUP") if num < 2 => {
                        return Err(refuse("PARAM_ERROR", "total_num必须大于1"));
                    }
                    Some("NORMAL" | "GROUP") => {}
                    _ => return Err(refuse("PARAM_ERROR", "hb_type参数错误")),
                }
                if p.get("auth_mchid") != Some("1000052601")
                    || p.get("auth_appid") != Some("wxbf42bd79c4391863")
                {
                    return Err(refuse("PARAM_ERROR", "auth_mchid或auth_appid参数错误"));
                }
                if !matches!(
                    p.get("risk_cntl"),
                    Some("NORMAL" | "IGN_FREQ_LMT" | "IGN_DAY_LMT" | "IGN_FREQ_DAY_LMT")
                ) {
                    return Err(refuse("PARAM_ERROR", "risk_cntl参数错误"));
                }
                if p.get("amt_type") != Some("ALL_RAND") {
                    return Err(refuse("PARAM_ERROR", "amt_type参数错误"));
                }
                return self.check_average(amount, num);
            }
            Api::SendWorkWxRedpack => {
                if p.contains("sender_name") == p.contains("agentid") {
                    return Err(refuse(
                        "PARAM_ERROR",
                        "sender_name和agentid必须且只能填写一个",
                    ));
                }
                text("sender_name", 128, false)?;
                text("sender_header_media_id", 128, false)?;
            }
            _ => {
                text("send_name", 32, true)?;
            }
        }
        let openid = p.get("re_openid").unwrap_or_default();
        if openid.is_empty() || chars(openid) > 32 {
            return Err(refuse("PARAM_ERROR", "re_openid字段必填,并且少于32个字符"));
        }
        text("wishing", 128, true)?;
        text("act_name", 32, true)?;
        text("remark", 256, true)?;
        text("risk_info", 128, false)?;
        if api == Api::SendRedpack {
            match p.get("client_ip") {
                None => return Err(refuse("PARAM_ERROR", "client_ip字段必填")),
                Some(ip) if ip.parse::<std::net::IpAddr>().is_err() || ip.len() > 15 => {
                    return Err(refuse("PARAM_ERROR", "client_ip必须是合法的IP字符串"));
                }
                _ => {}
            }
        }
        if api == Api::SendMiniProgramHb && p.get("notify_way") != Some("MINI_PROGRAM_JSAPI") {
            return Err(refuse(
                "PARAM_ERROR",
                "notify_way参数错误,必须为MINI_PROGRAM_JSAPI",
            ));
        }
        let scene = p.get("scene_id");
        if let Some(scene) = scene
            && !(scene.len() == 9
                && scene.starts_with("PRODUCT_")
                && ('1'..='8').contains(&scene.chars().last().unwrap_or('0')))
        {
            return Err(refuse("PARAM_ERROR", "scene_id参数错误"));
        }
        if !well_formed_openid(openid) || self.foreign.contains(openid) {
            return Err(refuse("OPENID_ERROR", "openid和appid不匹配"));
        }
        if api == Api::SendGroupRedpack {
            if !(3..=20).contains(&num) {
                return Err(refuse("PARAM_ERROR", "total_num必须介于(包括)3到20之间"));
            }
            if p.get("amt_type") != Some("ALL_RAND") {
                return Err(refuse("PARAM_ERROR", "amt_type参数错误"));
            }
            return self.check_average(amount, num);
        }
        if num != 1 {
            return Err(refuse("PARAM_ERROR", "total_num必须等于1"));
        }
        let default_range = (100..=20_000).contains(&amount);
        match scene {
            None if !default_range => Err(refuse(
                "MONEY_LIMIT",
                "每个红包的平均金额必须在1.00元到200.00元之间.",
            )),
            Some(_)
                if !(self.rules.scene_min.get()..=self.rules.scene_max.get()).contains(&amount) =>
            {
                Err(refuse("MONEY_LIMIT", "红包金额不在该场景允许的范围内"))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn check_average(&self, amount: u64, num: u32) -> Result<(), Refusal> {
        let n = u64::from(num);
        if amount < 100 * n || amount > 20_000 * n {
            return Err(refuse(
                "MONEY_LIMIT",
                "每个红包的平均金额必须在1.00元到200.00元之间.",
            ));
        }
        Ok(())
    }
}
