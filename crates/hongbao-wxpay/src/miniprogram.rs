//! The mini program side of `sendminiprogramhb`: the arguments of
//! `wx.sendBizRedPacket` (facts §3.6).

use std::fmt;

use serde::Serialize;

use crate::request::url_encode;
use crate::{ApiKey, AppId};

/// The object a mini program passes to `wx.sendBizRedPacket` to open a
/// red packet made by `sendminiprogramhb`. Serialises to the JSON the front
/// end expects (`timeStamp`, `nonceStr`, `package`, `signType`, `paySign`).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BizRedPacket {
    /// Unix time in seconds, as a string (the JS API requires a string).
    pub time_stamp: String,
    /// A random string of at most 32 characters.
    pub nonce_str: String,
    /// The `package` from `sendminiprogramhb`, URL-encoded.
    pub package: String,
    /// Always `MD5`.
    pub sign_type: &'static str,
    /// MD5 over `appId`, `nonceStr`, `package`, `timeStamp` and the API key,
    /// in lower-case hex.
    pub pay_sign: String,
}

impl BizRedPacket {
    /// Builds the arguments for `raw_package` (as `sendminiprogramhb`
    /// returned it) for the mini program `appid`, signed with the
    /// merchant's API key.
    pub fn new(
        appid: &AppId,
        raw_package: &str,
        key: &ApiKey,
        time_stamp: u64,
        nonce_str: String,
    ) -> Self {
        let package = url_encode(raw_package);
        let time_stamp = time_stamp.to_string();
        let pay_sign =
            crate::sign::pay_sign(appid.as_str(), &nonce_str, &package, &time_stamp, key);
        Self {
            time_stamp,
            nonce_str,
            package,
            sign_type: "MD5",
            pay_sign,
        }
    }

    /// As [`BizRedPacket::new`], now and with a fresh nonce.
    pub fn now(appid: &AppId, raw_package: &str, key: &ApiKey) -> Self {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Self::new(
            appid,
            raw_package,
            key,
            u64::try_from(now).unwrap_or_default(),
            crate::nonce_str(),
        )
    }
}

impl fmt::Debug for BizRedPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BizRedPacket")
            .field("time_stamp", &self.time_stamp)
            .field("nonce_str", &self.nonce_str)
            .field("package", &self.package)
            .field("pay_sign", &self.pay_sign)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_documented_example() {
        let raw = "sendid=242e8abd163d300019b2cae74ba8e8c06e3f0e51ab84d16b3c80decd22a5b672&ver=8&sign=4110d649a5aef52dd6b95654ddf91ca7d5411ac159ace4e1a766b7d3967a1c3dfe1d256811445a4abda2d9cfa4a9b377a829258bd00d90313c6c346f2349fe5d&mchid=11475856&appid=wxd27ebc41b85ce36d";
        let packet = BizRedPacket::new(
            &AppId::parse("wx2421b1c4370ec43b").unwrap(),
            raw,
            &ApiKey::any("192006250b4c09247ec02edce69f6a2d"),
            1_414_561_699,
            "e61463f8efa94090b1f366cccfbbb444".into(),
        );
        assert!(packet.package.starts_with("sendid%3D242e8abd"));
        assert!(packet.package.contains("%26ver%3D8%26sign%3D4110"));
        assert_eq!(packet.pay_sign, "0cecd02326e26c27fbc77f6062ef8654");
        let json = serde_json::to_value(&packet).unwrap();
        assert_eq!(json["timeStamp"], "1414561699");
        assert_eq!(json["signType"], "MD5");
        assert_eq!(json["paySign"], "0cecd02326e26c27fbc77f6062ef8654");
    }
}
