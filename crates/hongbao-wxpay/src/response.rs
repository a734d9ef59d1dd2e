//! Typed answers of the red packet APIs.

use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::outcome::CallError;
use crate::xml::{self, XmlDoc};
use crate::{Api, ApiKey, ErrCode, Fen, SignType};

/// An answer from WeChat that was read as an XML document with a
/// `return_code` (and, for the WeCom APIs, a valid `sign` when it reports
/// success).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The API that answered.
    pub api: Api,
    /// Every field of the answer, known or not.
    pub doc: XmlDoc,
    /// The answer as received (for the record of attempts).
    pub raw: String,
}

/// The body as received, from the text the parser read of it (the same
/// bytes, less a byte-order mark).
fn body_text(body: &[u8], text: &str) -> String {
    if text.len() == body.len() {
        text.to_owned()
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

impl Reply {
    /// Reads an answer body of `api`. `key` verifies the WeCom answers'
    /// `sign`; the other APIs do not sign their answers (facts §2.2).
    pub fn parse(api: Api, body: &[u8], key: &ApiKey) -> Result<Reply, CallError> {
        let (doc, text) =
            xml::parse_text(body).map_err(|e| CallError::Unparseable(e.to_string()))?;
        if doc.get("return_code").is_none_or(str::is_empty) {
            return Err(CallError::Unparseable(
                "the answer has no return_code".into(),
            ));
        }
        let reply = Reply {
            api,
            doc,
            // The whole body, as the text the parser checked it to be.
            raw: body_text(body, text),
        };
        if api.signs_response() && reply.is_success() {
            let Some(sign) = reply.doc.get("sign") else {
                return Err(CallError::BadSignature("the answer carries no sign".into()));
            };
            if !crate::sign::verify(reply.doc.fields.iter(), key, SignType::Md5, sign) {
                return Err(CallError::BadSignature(
                    "the answer's sign does not match".into(),
                ));
            }
        }
        Ok(reply)
    }

    /// `return_code`: `SUCCESS` or `FAIL` at the protocol level.
    pub fn return_code(&self) -> &str {
        self.doc.get("return_code").unwrap_or_default()
    }

    /// `return_msg`.
    pub fn return_msg(&self) -> Option<&str> {
        self.doc.get("return_msg")
    }

    /// `result_code`: `SUCCESS` or `FAIL` at the business level.
    pub fn result_code(&self) -> Option<&str> {
        self.doc.get("result_code")
    }

    /// The `err_code`, if it names an error (WeChat also sends `SUCCESS`
    /// or `0` there on success).
    pub fn err_code(&self) -> Option<ErrCode> {
        match self.doc.get("err_code") {
            None | Some("" | "SUCCESS" | "0") => None,
            Some(code) => Some(ErrCode::parse(code)),
        }
    }

    /// `err_code_des`: text for humans, never for decisions.
    pub fn err_code_des(&self) -> Option<&str> {
        self.doc.get("err_code_des")
    }

    /// Whether both `return_code` and `result_code` are `SUCCESS`.
    pub fn is_success(&self) -> bool {
        self.return_code() == "SUCCESS" && self.result_code() == Some("SUCCESS")
    }

    /// The fields of a send API's success.
    pub fn send_result(&self) -> SendResult {
        let get = |name: &str| {
            self.doc
                .get(name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        SendResult {
            mch_billno: get("mch_billno"),
            re_openid: get("re_openid"),
            total_amount: parse_fen(self.doc.get("total_amount")),
            send_listid: get("send_listid"),
            send_time: get("send_time"),
            package: get("package"),
            sp_ticket: get("sp_ticket"),
            detail_id: get("detail_id"),
        }
    }

    /// The record of a query API's success (`gethbinfo` or
    /// `queryworkwxredpack`), or why it cannot be read.
    pub fn hb_info(&self) -> Result<HbInfo, String> {
        let get = |name: &str| {
            self.doc
                .get(name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let status_text = self.doc.get("status").unwrap_or_default();
        let status = HbStatus::parse(status_text)
            .ok_or_else(|| format!("unknown red packet status {status_text:?}"))?;
        let mut receivers: Vec<HbReceiver> = self
            .doc
            .lists
            .get("hblist")
            .map(|items| {
                items
                    .iter()
                    .map(|item| HbReceiver::from_item(|n| item.get(n).map(String::as_str)))
                    .collect()
            })
            .unwrap_or_default();
        // queryworkwxredpack answers with flat openid/amount/rcv_time.
        if receivers.is_empty() && self.doc.get("openid").is_some_and(|v| !v.is_empty()) {
            receivers.push(HbReceiver::from_item(|n| self.doc.get(n)));
        }
        Ok(HbInfo {
            mch_billno: get("mch_billno").unwrap_or_default(),
            detail_id: get("detail_id"),
            status,
            send_type: get("send_type"),
            hb_type: get("hb_type"),
            total_num: self
                .doc
                .get("total_num")
                .and_then(|v| v.trim().parse().ok()),
            total_amount: parse_fen(self.doc.get("total_amount")),
            reason: get("reason"),
            send_time: get("send_time"),
            refund_time: get("refund_time"),
            refund_amount: parse_fen(self.doc.get("refund_amount")),
            wishing: get("wishing"),
            remark: get("remark"),
            act_name: get("act_name"),
            receivers,
        })
    }
}

fn parse_fen(value: Option<&str>) -> Option<Fen> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Fen::new)
}

/// What a send API returns on success.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResult {
    /// The order number, echoed.
    pub mch_billno: Option<String>,
    /// The receiver, echoed.
    pub re_openid: Option<String>,
    /// The amount, echoed.
    pub total_amount: Option<Fen>,
    /// WeChat's order number for the packet.
    pub send_listid: Option<String>,
    /// When it was sent, `yyyyMMddHHmmss` (observed, not documented).
    pub send_time: Option<String>,
    /// `sendminiprogramhb`: the `package` for `wx.sendBizRedPacket`, raw.
    pub package: Option<String>,
    /// `hbpreorder`: the ticket for the Shake-Nearby lottery.
    pub sp_ticket: Option<String>,
    /// `hbpreorder`: WeChat's id of the packet.
    pub detail_id: Option<String>,
}

/// The state of a red packet on WeChat's side (`gethbinfo` `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HbStatus {
    /// `SENDING`: being issued.
    #[serde(rename = "SENDING")]
    Sending,
    /// `SENT`: issued, waiting for the user to open it.
    #[serde(rename = "SENT")]
    Sent,
    /// `FAILED`: issuing failed; this mch_billno is dead.
    #[serde(rename = "FAILED")]
    Failed,
    /// `RECEIVED`: the user opened it.
    #[serde(rename = "RECEIVED")]
    Received,
    /// `RFUND_ING` (WeChat's spelling): the unopened money is being refunded.
    #[serde(rename = "RFUND_ING")]
    Refunding,
    /// `REFUND`: the unopened money went back to the merchant.
    #[serde(rename = "REFUND")]
    Refund,
}

impl HbStatus {
    /// Reads a wire status; `None` for one this library does not know.
    pub fn parse(s: &str) -> Option<HbStatus> {
        Some(match s {
            "SENDING" => HbStatus::Sending,
            "SENT" => HbStatus::Sent,
            "FAILED" => HbStatus::Failed,
            "RECEIVED" => HbStatus::Received,
            "RFUND_ING" => HbStatus::Refunding,
            "REFUND" => HbStatus::Refund,
            _ => return None,
        })
    }

    /// The wire status.
    pub const fn as_str(self) -> &'static str {
        match self {
            HbStatus::Sending => "SENDING",
            HbStatus::Sent => "SENT",
            HbStatus::Failed => "FAILED",
            HbStatus::Received => "RECEIVED",
            HbStatus::Refunding => "RFUND_ING",
            HbStatus::Refund => "REFUND",
        }
    }

    /// Whether WeChat accepted the packet and the money left the merchant
    /// (whatever happened after).
    pub const fn was_sent(self) -> bool {
        matches!(
            self,
            HbStatus::Sent | HbStatus::Received | HbStatus::Refunding | HbStatus::Refund
        )
    }

    /// Whether the status will not change any more.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            HbStatus::Failed | HbStatus::Received | HbStatus::Refund
        )
    }
}

/// A red packet's record on WeChat's side, from `gethbinfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HbInfo {
    /// The order number.
    pub mch_billno: String,
    /// WeChat's id of the packet.
    pub detail_id: Option<String>,
    /// The state.
    pub status: HbStatus,
    /// `API`, `UPLOAD` or `ACTIVITY`.
    pub send_type: Option<String>,
    /// `NORMAL` or `GROUP`.
    pub hb_type: Option<String>,
    /// The number of packets in the order.
    pub total_num: Option<u32>,
    /// The amount of the order.
    pub total_amount: Option<Fen>,
    /// Why it failed (sometimes also present while `SENDING`).
    pub reason: Option<String>,
    /// When it was sent, `yyyy-MM-dd HH:mm:ss` Beijing time.
    pub send_time: Option<String>,
    /// When the unopened money was refunded.
    pub refund_time: Option<String>,
    /// How much was refunded.
    pub refund_amount: Option<Fen>,
    /// The blessing.
    pub wishing: Option<String>,
    /// The remark.
    pub remark: Option<String>,
    /// The activity's name.
    pub act_name: Option<String>,
    /// Who opened it (`hblist/hbinfo`), one entry per share opened.
    pub receivers: Vec<HbReceiver>,
}

/// One opened share of a red packet (`hblist/hbinfo`); every part optional,
/// as WeChat has been seen to leave some out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HbReceiver {
    /// Who opened it.
    pub openid: Option<String>,
    /// How much they got.
    pub amount: Option<Fen>,
    /// When, `yyyy-MM-dd HH:mm:ss` Beijing time.
    pub rcv_time: Option<String>,
}

impl HbReceiver {
    /// A receiver from the fields of an item, as `field` gives them.
    fn from_item<'a>(field: impl Fn(&str) -> Option<&'a str>) -> Self {
        let get = |name: &str| field(name).filter(|v| !v.is_empty()).map(str::to_owned);
        HbReceiver {
            openid: get("openid"),
            amount: parse_fen(field("amount")),
            rcv_time: get("rcv_time"),
        }
    }
}

/// Reads a WeChat time, `yyyy-MM-dd HH:mm:ss` in Beijing time.
pub fn parse_beijing_time(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    PrimitiveDateTime::parse(text.trim(), format)
        .ok()
        .map(|t| t.assume_offset(crate::BEIJING))
}

/// Writes a time as WeChat does, `yyyy-MM-dd HH:mm:ss` in Beijing time.
pub fn format_beijing_time(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at.to_offset(crate::BEIJING)
        .format(format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const OBSERVED_RECEIVED: &str = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg>\
<result_code><![CDATA[SUCCESS]]></result_code><err_code><![CDATA[SUCCESS]]></err_code>\
<err_code_des><![CDATA[OK]]></err_code_des><mch_billno><![CDATA[OD201711141535238930]]></mch_billno>\
<mch_id><![CDATA[1226672102]]></mch_id><detail_id><![CDATA[1000041701201711143000109811129]]></detail_id>\
<status><![CDATA[RECEIVED]]></status><send_type><![CDATA[API]]></send_type><hb_type><![CDATA[NORMAL]]></hb_type>\
<total_num>1</total_num><total_amount>100</total_amount><send_time><![CDATA[2017-11-14 15:35:25]]></send_time>\
<hblist><hbinfo><openid><![CDATA[or2iij]]></openid><amount>100</amount>\
<rcv_time><![CDATA[2017-11-14 15:38:28]]></rcv_time></hbinfo></hblist></xml>";

    #[test]
    fn the_raw_answer_is_the_body_as_received_byte_order_mark_and_all() {
        let body = "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg>签名错误</return_msg></xml>";
        let key = ApiKey::any("k");
        let plain = Reply::parse(Api::SendRedpack, body.as_bytes(), &key).unwrap();
        assert_eq!(plain.raw, body);
        let marked = format!("\u{feff}{body}");
        let reply = Reply::parse(Api::SendRedpack, marked.as_bytes(), &key).unwrap();
        assert_eq!(reply.raw, marked);
        assert_eq!(reply.return_msg(), Some("签名错误"));
    }

    #[test]
    fn observed_gethbinfo_answer_is_read() {
        let reply = Reply::parse(
            Api::GetHbInfo,
            OBSERVED_RECEIVED.as_bytes(),
            &ApiKey::any("k"),
        )
        .unwrap();
        assert!(reply.is_success());
        assert_eq!(reply.err_code(), None);
        let info = reply.hb_info().unwrap();
        assert_eq!(info.status, HbStatus::Received);
        assert_eq!(info.total_amount, Some(Fen::new(100)));
        assert_eq!(
            info.detail_id.as_deref(),
            Some("1000041701201711143000109811129")
        );
        assert_eq!(info.receivers.len(), 1);
        assert_eq!(info.receivers[0].amount, Some(Fen::new(100)));
        assert_eq!(
            parse_beijing_time(info.receivers[0].rcv_time.as_deref().unwrap()),
            Some(datetime!(2017-11-14 07:38:28 UTC))
        );
    }

    #[test]
    fn answers_without_return_code_are_unparseable() {
        let err =
            Reply::parse(Api::SendRedpack, b"<xml><a>1</a></xml>", &ApiKey::any("k")).unwrap_err();
        assert!(matches!(err, CallError::Unparseable(_)));
    }

    #[test]
    fn wecom_answers_must_be_signed() {
        let key = ApiKey::any("192006250b4c09247ec02edce69f6a2d");
        let fields: crate::Params = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("mch_billno", "123"),
            ("send_listid", "100"),
        ]
        .into_iter()
        .collect();
        let good_sign = crate::sign(&fields, &key, SignType::Md5);
        let signed = xml::to_xml(&fields, Some(&good_sign));
        assert!(Reply::parse(Api::SendWorkWxRedpack, signed.as_bytes(), &key).is_ok());
        let unsigned = xml::to_xml(&fields, None);
        assert!(matches!(
            Reply::parse(Api::SendWorkWxRedpack, unsigned.as_bytes(), &key),
            Err(CallError::BadSignature(_))
        ));
        let forged = xml::to_xml(&fields, Some("00000000000000000000000000000000"));
        assert!(matches!(
            Reply::parse(Api::SendWorkWxRedpack, forged.as_bytes(), &key),
            Err(CallError::BadSignature(_))
        ));
        // The other APIs carry no sign and are not checked.
        assert!(Reply::parse(Api::SendRedpack, unsigned.as_bytes(), &key).is_ok());
    }

    #[test]
    fn wecom_query_flat_receiver_is_read() {
        let key = ApiKey::any("k");
        let fields: crate::Params = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("status", "RECEIVED"),
            ("openid", "o1"),
            ("amount", "100"),
        ]
        .into_iter()
        .collect();
        let sign = crate::sign(&fields, &key, SignType::Md5);
        let body = xml::to_xml(&fields, Some(&sign));
        let info = Reply::parse(Api::QueryWorkWxRedpack, body.as_bytes(), &key)
            .unwrap()
            .hb_info()
            .unwrap();
        assert_eq!(info.receivers[0].openid.as_deref(), Some("o1"));
    }

    #[test]
    fn beijing_times_round_trip() {
        let t = datetime!(2026-11-22 04:00:01 UTC);
        assert_eq!(format_beijing_time(t), "2026-11-22 12:00:01");
        assert_eq!(parse_beijing_time("2026-11-22 12:00:01"), Some(t));
        assert_eq!(parse_beijing_time("20261122120001"), None);
    }
}
