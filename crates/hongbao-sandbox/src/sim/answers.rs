//! Writing answers in WeChat's shape: the success and failure envelopes,
//! echoed fields, and the WeCom APIs' signed answers.

use hongbao_wxpay::xml;
use hongbao_wxpay::{Api, Params, SignType, sign};
use time::OffsetDateTime;
use time::macros::format_description;

use super::orders::Order;
use super::rules::Refusal;
use super::{Reply, Simulator};

fn compact_time(at: OffsetDateTime) -> String {
    at.to_offset(hongbao_wxpay::BEIJING)
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default()
}

impl Simulator {
    pub(super) fn envelope_success(
        &self,
        api: Api,
        mut fields: Vec<(&'static str, String)>,
    ) -> Reply {
        let mut all = vec![
            ("return_code", "SUCCESS".to_owned()),
            (
                "return_msg",
                if api.is_send() { "发放成功" } else { "OK" }.to_owned(),
            ),
            ("result_code", "SUCCESS".to_owned()),
            ("err_code", "SUCCESS".to_owned()),
            (
                "err_code_des",
                if api.is_send() { "发放成功" } else { "OK" }.to_owned(),
            ),
        ];
        all.append(&mut fields);
        self.finish(api, all)
    }

    /// Writes the answer; the WeCom APIs sign theirs.
    pub(super) fn finish(&self, api: Api, fields: Vec<(&'static str, String)>) -> Reply {
        let mut fields = fields;
        if api.signs_response() {
            let params: Params = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            fields.push(("sign", sign(&params, &self.api_key, SignType::Md5)));
        }
        Reply::Body(xml::to_xml_pairs(
            fields.iter().map(|(k, v)| (*k, v.as_str())),
        ))
    }

    pub(super) fn success(&self, api: Api, p: &Params, order: &Order) -> Reply {
        let mut fields: Vec<(&'static str, String)> = Vec::new();
        for name in [
            "mch_billno",
            "mch_id",
            "wxappid",
            "re_openid",
            "total_amount",
        ] {
            if let Some(v) = p.get(name) {
                fields.push((name, v.to_owned()));
            }
        }
        match api {
            Api::HbPreorder => {
                fields.push(("sp_ticket", order.sp_ticket.clone().unwrap_or_default()));
                fields.push(("detail_id", order.send_listid.clone()));
                fields.push(("send_time", compact_time(order.created_at)));
            }
            _ => {
                fields.push(("send_listid", order.send_listid.clone()));
                fields.push(("send_time", compact_time(order.created_at)));
            }
        }
        if let Some(package) = &order.package {
            fields.push(("package", package.clone()));
        }
        if api == Api::SendWorkWxRedpack {
            for name in ["sender_name", "sender_header_media_id"] {
                if let Some(v) = p.get(name) {
                    fields.push((name, v.to_owned()));
                }
            }
        }
        self.envelope_success(api, fields)
    }

    pub(super) fn failure(&self, p: &Params, refusal: Refusal) -> Reply {
        let mut fields: Vec<(&'static str, String)> = vec![
            ("return_code", "SUCCESS".to_owned()),
            ("return_msg", refusal.des.clone()),
            ("result_code", "FAIL".to_owned()),
            ("err_code", refusal.code.to_owned()),
            ("err_code_des", refusal.des),
        ];
        for name in [
            "mch_billno",
            "mch_id",
            "wxappid",
            "re_openid",
            "total_amount",
        ] {
            if let Some(v) = p.get(name) {
                fields.push((name, v.to_owned()));
            }
        }
        // WeChat's failures are not signed, WeCom's included.
        Reply::Body(xml::to_xml_pairs(
            fields.iter().map(|(k, v)| (*k, v.as_str())),
        ))
    }
}
