//! The red packet APIs: paths and the exact fields each one documents.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the red packet APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `sendredpack`: a normal red packet to one user (普通红包).
    SendRedpack,
    /// `sendgroupredpack`: a fission red packet (裂变红包; retired by WeChat in 2024).
    SendGroupRedpack,
    /// `sendminiprogramhb`: a red packet opened in a mini program (小程序红包).
    SendMiniProgramHb,
    /// `gethbinfo`: the state of a red packet by mch_billno (查询红包记录).
    GetHbInfo,
    /// `hbpreorder`: a Shake-Nearby pre-order (红包预下单, legacy).
    HbPreorder,
    /// `sendworkwxredpack`: a WeCom red packet (企业微信发红包).
    SendWorkWxRedpack,
    /// `queryworkwxredpack`: a WeCom red packet's state (企业微信查红包).
    QueryWorkWxRedpack,
}

impl Api {
    /// Every API.
    pub const ALL: [Api; 7] = [
        Api::SendRedpack,
        Api::SendGroupRedpack,
        Api::SendMiniProgramHb,
        Api::GetHbInfo,
        Api::HbPreorder,
        Api::SendWorkWxRedpack,
        Api::QueryWorkWxRedpack,
    ];

    /// The API's name, the last segment of its path.
    pub const fn name(self) -> &'static str {
        match self {
            Api::SendRedpack => "sendredpack",
            Api::SendGroupRedpack => "sendgroupredpack",
            Api::SendMiniProgramHb => "sendminiprogramhb",
            Api::GetHbInfo => "gethbinfo",
            Api::HbPreorder => "hbpreorder",
            Api::SendWorkWxRedpack => "sendworkwxredpack",
            Api::QueryWorkWxRedpack => "queryworkwxredpack",
        }
    }

    /// The path under `api_base`, e.g. `/mmpaymkttransfers/sendredpack`.
    pub const fn path(self) -> &'static str {
        match self {
            Api::SendRedpack => "/mmpaymkttransfers/sendredpack",
            Api::SendGroupRedpack => "/mmpaymkttransfers/sendgroupredpack",
            Api::SendMiniProgramHb => "/mmpaymkttransfers/sendminiprogramhb",
            Api::GetHbInfo => "/mmpaymkttransfers/gethbinfo",
            Api::HbPreorder => "/mmpaymkttransfers/hbpreorder",
            Api::SendWorkWxRedpack => "/mmpaymkttransfers/sendworkwxredpack",
            Api::QueryWorkWxRedpack => "/mmpaymkttransfers/queryworkwxredpack",
        }
    }

    /// The API whose path is `path`.
    pub fn from_path(path: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|api| api.path() == path)
    }

    /// Exactly the request fields WeChat documents for this API (`sign`
    /// included). WeChat verifies the signature over these only, so a field
    /// outside this list would make the signatures disagree (facts §3.1b):
    /// requests send these and nothing else.
    pub const fn fields(self) -> &'static [&'static str] {
        match self {
            Api::SendRedpack => &[
                "nonce_str",
                "sign",
                "mch_billno",
                "mch_id",
                "sub_mch_id",
                "wxappid",
                "msgappid",
                "send_name",
                "re_openid",
                "total_amount",
                "total_num",
                "wishing",
                "client_ip",
                "act_name",
                "remark",
                "scene_id",
                "risk_info",
                "consume_mch_id",
            ],
            // The normal packet's fields minus client_ip, plus amt_type.
            Api::SendGroupRedpack => &[
                "nonce_str",
                "sign",
                "mch_billno",
                "mch_id",
                "sub_mch_id",
                "wxappid",
                "msgappid",
                "send_name",
                "re_openid",
                "total_amount",
                "total_num",
                "amt_type",
                "wishing",
                "act_name",
                "remark",
                "scene_id",
                "risk_info",
                "consume_mch_id",
            ],
            Api::SendMiniProgramHb => &[
                "nonce_str",
                "sign",
                "mch_billno",
                "mch_id",
                "wxappid",
                "send_name",
                "re_openid",
                "total_amount",
                "total_num",
                "wishing",
                "act_name",
                "remark",
                "notify_way",
                "scene_id",
            ],
            Api::GetHbInfo => &[
                "nonce_str",
                "sign",
                "mch_billno",
                "mch_id",
                "appid",
                "bill_type",
            ],
            Api::HbPreorder => &[
                "nonce_str",
                "sign",
                "mch_billno",
                "mch_id",
                "wxappid",
                "send_name",
                "hb_type",
                "total_amount",
                "total_num",
                "amt_type",
                "wishing",
                "act_name",
                "remark",
                "auth_mchid",
                "auth_appid",
                "risk_cntl",
            ],
            Api::SendWorkWxRedpack => &[
                "nonce_str",
                "sign",
                "mch_billno",
                "mch_id",
                "wxappid",
                "sender_name",
                "agentid",
                "sender_header_media_id",
                "re_openid",
                "total_amount",
                "wishing",
                "act_name",
                "remark",
                "scene_id",
                "workwx_sign",
            ],
            Api::QueryWorkWxRedpack => &["nonce_str", "sign", "mch_billno", "mch_id", "appid"],
        }
    }

    /// Whether this API moves money (and so is the one whose outcome must
    /// be classified for retries).
    pub const fn is_send(self) -> bool {
        matches!(
            self,
            Api::SendRedpack
                | Api::SendGroupRedpack
                | Api::SendMiniProgramHb
                | Api::HbPreorder
                | Api::SendWorkWxRedpack
        )
    }

    /// Whether WeChat signs this API's answers. Only the WeCom pair does;
    /// the others carry no `sign` (facts §2.2), so none is expected there.
    pub const fn signs_response(self) -> bool {
        matches!(self, Api::SendWorkWxRedpack | Api::QueryWorkWxRedpack)
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ip_is_documented_for_sendredpack_only() {
        // EasyWeChat #306: client_ip on sendgroupredpack gave SIGN_ERROR.
        assert!(Api::SendRedpack.fields().contains(&"client_ip"));
        for api in Api::ALL.into_iter().filter(|a| *a != Api::SendRedpack) {
            assert!(!api.fields().contains(&"client_ip"), "{api}");
        }
    }

    #[test]
    fn no_api_documents_sign_type() {
        // WxJava #726/#1008/#2693: sign_type in the signed set gave SIGN_ERROR.
        for api in Api::ALL {
            assert!(!api.fields().contains(&"sign_type"), "{api}");
            assert!(api.fields().contains(&"nonce_str") && api.fields().contains(&"sign"));
        }
    }

    #[test]
    fn paths_round_trip() {
        for api in Api::ALL {
            assert_eq!(Api::from_path(api.path()), Some(api));
            assert!(api.path().ends_with(api.name()));
        }
        assert_eq!(
            Api::from_path("/mmpaymkttransfers/promotion/transfers"),
            None
        );
    }
}
