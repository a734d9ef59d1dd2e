//! Signatures: the v2 `sign` (MD5 or HMAC-SHA256), WeCom's `workwx_sign`
//! and the mini program's `paySign`.
//!
//! The rule (facts §3.1): every parameter except `sign` whose value is not
//! empty, sorted by name in byte order, joined as `k=v&k=v` with the raw
//! values (no URL or XML escaping), then `&key=<API key>`; MD5 or
//! HMAC-SHA256 (keyed with the API key), upper-case hex.

use std::fmt;
use std::str::FromStr;

use hmac::{KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{ApiKey, InvalidField, Params};

/// The signature algorithm of a v2 request.
///
/// Red packet APIs document MD5 only; HMAC-SHA256 is the generic v2
/// alternative, where `sign_type` itself must be one of the signed parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SignType {
    /// `MD5`, the only type the red packet APIs document.
    #[default]
    Md5,
    /// `HMAC-SHA256`.
    HmacSha256,
}

impl SignType {
    /// The wire name: `MD5` or `HMAC-SHA256`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignType {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        match s {
            "MD5" => Ok(SignType::Md5),
            "HMAC-SHA256" => Ok(SignType::HmacSha256),
            _ => Err(InvalidField::new(
                "sign_type",
                format!("{s:?} is not a signature type; use MD5 or HMAC-SHA256"),
                format!("{s:?} 不是签名类型；请使用 MD5 或 HMAC-SHA256"),
            )),
        }
    }
}

/// `stringA` of the rule: the non-empty parameters except `sign`, sorted by
/// name in byte order, joined as `k=v&k=v`. The key is not part of it.
pub fn string_to_sign<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    string_to_sign_and(params, 0)
}

/// As [`string_to_sign`], with room for `more` bytes after it.
fn string_to_sign_and<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    more: usize,
) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    joined(pairs.iter().copied(), more)
}

/// `k=v&k=v` of `pairs`, already in order and filtered, with room for
/// `more` bytes after it.
fn joined<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone, more: usize) -> String {
    let length: usize = pairs.clone().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(length + more);
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Computes `sign` over `params` with the merchant's API key.
pub fn sign(params: &Params, key: &ApiKey, sign_type: SignType) -> String {
    // A parameter set is in byte order already, with no empty value.
    let pairs = params.iter().filter(|(k, _)| *k != "sign");
    keyed_digest(joined(pairs, key_room(key)), key, sign_type)
}

/// As [`sign`], over any list of pairs (used for responses that keep
/// unknown fields).
pub fn sign_pairs<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &ApiKey,
    sign_type: SignType,
) -> String {
    keyed_digest(string_to_sign_and(params, key_room(key)), key, sign_type)
}

/// The room `&key=<key>` takes.
fn key_room(key: &ApiKey) -> usize {
    "&key=".len() + key.expose().len()
}

/// The upper-case digest of `text` with `&key=<key>` appended.
fn keyed_digest(mut text: String, key: &ApiKey, sign_type: SignType) -> String {
    text.push_str("&key=");
    text.push_str(key.expose());
    digest_upper(sign_type, key, text.as_bytes())
}

fn digest_upper(sign_type: SignType, key: &ApiKey, text: &[u8]) -> String {
    match sign_type {
        SignType::Md5 => upper_hex(&Md5::digest(text)),
        SignType::HmacSha256 => {
            // HMAC takes keys of any length, so this cannot fail.
            let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes())
                .expect("HMAC accepts keys of any length");
            mac.update(text);
            upper_hex(&mac.finalize().into_bytes())
        }
    }
}

/// Upper-case hex of `bytes`, as `hex::encode_upper` writes it, in one
/// allocation of the right size.
fn upper_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Checks `signature` against the one computed over `params`, in constant
/// time and regardless of hex letter case.
pub fn verify<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &ApiKey,
    sign_type: SignType,
    signature: &str,
) -> bool {
    let expected = sign_pairs(params, key, sign_type);
    let given = signature.to_ascii_uppercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// WeCom's `workwx_sign` for `sendworkwxredpack` (facts §3.5): over the
/// fixed fields `act_name, mch_billno, mch_id, nonce_str, re_openid,
/// total_amount, wxappid` (non-empty ones), with `&secret=<WeCom payment
/// app secret>` appended; MD5, upper case.
pub fn workwx_sign(params: &Params, secret: &ApiKey) -> String {
    const FIELDS: [&str; 7] = [
        "act_name",
        "mch_billno",
        "mch_id",
        "nonce_str",
        "re_openid",
        "total_amount",
        "wxappid",
    ];
    let mut text = string_to_sign(params.iter().filter(|(k, _)| FIELDS.contains(k)));
    text.push_str("&secret=");
    text.push_str(secret.expose());
    hex::encode_upper(Md5::digest(text.as_bytes()))
}

/// The mini program's `paySign` for `wx.sendBizRedPacket` (facts §3.6):
/// MD5 over `appId, nonceStr, package, timeStamp` (exactly these; `signType`
/// is not signed) and `&key=`, where `package` is already URL-encoded.
/// Lower-case hex, the better-attested form.
pub fn pay_sign(
    app_id: &str,
    nonce_str: &str,
    encoded_package: &str,
    time_stamp: &str,
    key: &ApiKey,
) -> String {
    let mut text = string_to_sign([
        ("appId", app_id),
        ("nonceStr", nonce_str),
        ("package", encoded_package),
        ("timeStamp", time_stamp),
    ]);
    text.push_str("&key=");
    text.push_str(key.expose());
    hex::encode(Md5::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn official_example() -> Params {
        [
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn official_example_string_and_md5() {
        let params = official_example();
        assert_eq!(
            string_to_sign(params.iter()),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
        assert_eq!(
            sign(&params, &ApiKey::any(KEY), SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn official_example_hmac_sha256() {
        assert_eq!(
            sign(&official_example(), &ApiKey::any(KEY), SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn hmac_is_not_the_documented_wrong_variants() {
        let got = sign(&official_example(), &ApiKey::any(KEY), SignType::HmacSha256);
        // Without the &key= suffix, and plain SHA-256: both common bugs.
        assert_ne!(
            got,
            "F734F0E6B3509F9701F4A27CA72985EE10313DD0F96B71CAB42985D0F4F56376"
        );
        assert_ne!(
            got,
            "7413C0B16EB07CCD8F78044956E41815A52E6E94BC037A17534EA867F813C5E2"
        );
    }

    #[test]
    fn chinese_sendredpack_vector_with_empty_scene_id() {
        let params: Params = [
            ("act_name", "猜灯谜抢红包活动"),
            ("client_ip", "192.168.0.1"),
            ("mch_billno", "10000098201411111234567890"),
            ("mch_id", "10000098"),
            ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
            ("re_openid", "oxTWIuGaIt6gTKsQRLau2M0yL16E"),
            ("remark", "猜越多得越多，快来抢！"),
            (
                "risk_info",
                "posttime%3d123123412%26clientversion%3d234134%26mobile%3d122344545%26deviceid%3dIOS",
            ),
            ("scene_id", ""),
            ("send_name", "天虹百货"),
            ("total_amount", "1000"),
            ("total_num", "1"),
            ("wishing", "感谢您参加猜灯谜活动，祝您元宵节快乐！"),
            ("wxappid", "wx8888888888888888"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            sign(&params, &ApiKey::any(KEY), SignType::Md5),
            "D192DD34D73B46C0AF64896269223156"
        );
    }

    #[test]
    fn sign_and_empty_values_are_not_signed() {
        let key = ApiKey::any(KEY);
        let mut params = official_example();
        let base = sign(&params, &key, SignType::Md5);
        params.insert("sign", "WHATEVER");
        assert_eq!(sign(&params, &key, SignType::Md5), base);
        let with_empty = [("a", "1"), ("b", ""), ("sign", "X")];
        assert_eq!(string_to_sign(with_empty), "a=1");
    }

    #[test]
    fn verification_accepts_either_case_and_rejects_others() {
        let key = ApiKey::any(KEY);
        let params = official_example();
        assert!(verify(
            params.iter(),
            &key,
            SignType::Md5,
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        ));
        assert!(verify(
            params.iter(),
            &key,
            SignType::Md5,
            "9a0a8659f005d6984697e2ca0a9cf3b7"
        ));
        assert!(!verify(
            params.iter(),
            &key,
            SignType::Md5,
            "9A0A8659F005D6984697E2CA0A9CF3B8"
        ));
        assert!(!verify(params.iter(), &key, SignType::Md5, ""));
        assert!(!verify(
            params.iter(),
            &ApiKey::any("x"),
            SignType::Md5,
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        ));
    }

    #[test]
    fn workwx_sign_vector_uses_only_its_fixed_fields() {
        let mut params: Params = [
            ("act_name", "XXX"),
            ("mch_billno", "11111234567890"),
            ("mch_id", "10000098"),
            ("nonce_str", "qFKEgfig76DF9912fewmkp"),
            ("re_openid", "oxTWIuGaIt6gTKsQRLau2M0yL16E"),
            ("total_amount", "100"),
            ("wxappid", "wx123456789"),
        ]
        .into_iter()
        .collect();
        let secret = ApiKey::any(KEY);
        assert_eq!(
            workwx_sign(&params, &secret),
            "8B8D04AFC9FD08094CC5A0C2FA8BB60C"
        );
        // Other fields (wishing, remark, the normal sign) do not take part.
        params.insert("wishing", "恭喜发财");
        params.insert("remark", "备注");
        assert_eq!(
            workwx_sign(&params, &secret),
            "8B8D04AFC9FD08094CC5A0C2FA8BB60C"
        );
    }

    #[test]
    fn mini_program_pay_sign_vector() {
        let package = "sendid%3D242e8abd163d300019b2cae74ba8e8c06e3f0e51ab84d16b3c80decd22a5b672%26ver%3D8%26sign%3D4110d649a5aef52dd6b95654ddf91ca7d5411ac159ace4e1a766b7d3967a1c3dfe1d256811445a4abda2d9cfa4a9b377a829258bd00d90313c6c346f2349fe5d%26mchid%3D11475856%26appid%3Dwxd27ebc41b85ce36d";
        assert_eq!(
            pay_sign(
                "wx2421b1c4370ec43b",
                "e61463f8efa94090b1f366cccfbbb444",
                package,
                "1414561699",
                &ApiKey::any(KEY)
            ),
            "0cecd02326e26c27fbc77f6062ef8654"
        );
    }

    #[test]
    fn sign_type_parses_wire_names() {
        assert_eq!("MD5".parse::<SignType>().unwrap(), SignType::Md5);
        assert_eq!(
            "HMAC-SHA256".parse::<SignType>().unwrap(),
            SignType::HmacSha256
        );
        assert_eq!("md5".parse::<SignType>().unwrap_err().field, "sign_type");
    }

    #[test]
    fn upper_hex_is_the_hex_crates_upper_case() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(upper_hex(&bytes), hex::encode_upper(&bytes));
        assert_eq!(upper_hex(&[]), "");
    }
}
