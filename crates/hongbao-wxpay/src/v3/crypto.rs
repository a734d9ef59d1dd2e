//! APIv3 security (facts §5): the merchant's request signature, the
//! verification of WeChat's answers and callbacks, the encryption of
//! sensitive fields and the decryption of callbacks.
//!
//! ring does every operation with a private or secret key (RSA PKCS#1 v1.5
//! SHA-256 signatures, AES-256-GCM). RustCrypto's `rsa` is used for one
//! thing only: RSA-OAEP encryption under WeChat's *public* key, which ring
//! does not offer; its private-key operations are not constant time and are
//! never used here.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{self, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey as ParsedKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::{InvalidField, MchId};

/// The scheme named in the `Authorization` header.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// How far a signed answer's `Wechatpay-Timestamp` may be from our clock.
pub const MAX_SKEW_SECONDS: i64 = 300;

/// Why a key or certificate cannot be used for APIv3.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a certificate.
    #[error("not an X.509 certificate (PEM '-----BEGIN CERTIFICATE-----'): {0}")]
    Certificate(String),
    /// Not a public key.
    #[error(
        "not a public key: the 微信支付公钥 file (pub_key.pem) holds '-----BEGIN PUBLIC KEY-----'{0}"
    )]
    PublicKey(String),
    /// Not an RSA key.
    #[error(
        "the key is not an RSA key: APIv3 signs with RSA 2048 (WECHATPAY2-SHA256-RSA2048); use the API certificate WeChat issued"
    )]
    NotRsa,
    /// The private key is not the certificate's.
    #[error(
        "the private key does not belong to the certificate: use the apiclient_key.pem issued with this apiclient_cert.pem"
    )]
    Mismatch,
    /// The private key cannot be read.
    #[error("the private key cannot be used for RSA signatures: {0}")]
    PrivateKey(String),
}

/// Signs the merchant's requests with its API certificate's private key
/// and names the certificate's serial. The key never appears in `Debug`.
#[derive(Clone)]
pub struct MerchantSigner {
    mch_id: MchId,
    serial: String,
    key: Arc<RsaKeyPair>,
}

impl fmt::Debug for MerchantSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantSigner")
            .field("mch_id", &self.mch_id)
            .field("serial", &self.serial)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A certificate's serial as WeChat writes it: upper-case hex, no sign byte.
pub fn certificate_serial(cert_der: &[u8]) -> Result<String, KeyError> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| KeyError::Certificate(e.to_string()))?;
    Ok(serial_hex(cert.raw_serial()))
}

/// A certificate's RSA public key (PKCS#1 `RSAPublicKey` DER), for
/// verifying what its owner signed.
pub fn certificate_public_key(cert_der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| KeyError::Certificate(e.to_string()))?;
    rsa_public_key(cert.public_key())
}

fn serial_hex(raw: &[u8]) -> String {
    let mut raw = raw;
    while raw.len() > 1 && raw[0] == 0 {
        raw = &raw[1..];
    }
    hex::encode_upper(raw)
}

/// The RSA public key (PKCS#1 `RSAPublicKey` DER) inside a SubjectPublicKeyInfo.
fn rsa_public_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<Vec<u8>, KeyError> {
    match spki.parsed() {
        Ok(ParsedKey::RSA(_)) => Ok(spki.subject_public_key.data.to_vec()),
        _ => Err(KeyError::NotRsa),
    }
}

impl MerchantSigner {
    /// From the API certificate (DER) and its private key (PKCS#8 or PKCS#1).
    pub fn new(
        mch_id: MchId,
        cert_der: &[u8],
        key: &PrivateKeyDer<'_>,
    ) -> Result<MerchantSigner, KeyError> {
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| KeyError::Certificate(e.to_string()))?;
        let public = rsa_public_key(cert.public_key())?;
        let pair = match key {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => return Err(KeyError::NotRsa),
        }
        .map_err(|e| KeyError::PrivateKey(e.to_string()))?;
        if pair.public_key().as_ref() != public.as_slice() {
            return Err(KeyError::Mismatch);
        }
        Ok(MerchantSigner {
            mch_id,
            serial: serial_hex(cert.raw_serial()),
            key: Arc::new(pair),
        })
    }

    /// From the identity the v2 transport uses (the same API certificate).
    pub fn from_identity(
        mch_id: MchId,
        identity: &crate::ClientIdentity,
    ) -> Result<MerchantSigner, KeyError> {
        Self::new(mch_id, identity.certificate_der(), &identity.private_key())
    }

    /// The merchant id named in the `Authorization` header.
    pub fn mch_id(&self) -> &MchId {
        &self.mch_id
    }

    /// The API certificate's serial (`serial_no`).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// SHA256-with-RSA (PKCS#1 v1.5) of `message`, Base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("an RSA PKCS#1 signature into a buffer of the modulus' length");
        BASE64.encode(signature)
    }

    /// The `Authorization` header of a request.
    pub fn authorization(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        timestamp: i64,
        nonce: &str,
    ) -> String {
        let signature =
            self.sign(request_message(method, path_and_query, timestamp, nonce, body).as_bytes());
        format!(
            "{SCHEME} mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
            self.mch_id, self.serial
        )
    }
}

/// The text a request signature covers: method, path with query, timestamp,
/// nonce and body, each followed by `\n`.
pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &str,
) -> String {
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n")
}

/// The text an answer's or callback's signature covers.
pub fn answer_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut text = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    text.extend_from_slice(timestamp.as_bytes());
    text.push(b'\n');
    text.extend_from_slice(nonce.as_bytes());
    text.push(b'\n');
    text.extend_from_slice(body);
    text.push(b'\n');
    text
}

/// The fields of a request's `Authorization` header, as a server reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// `mchid`.
    pub mchid: String,
    /// `nonce_str`.
    pub nonce_str: String,
    /// `signature`, Base64.
    pub signature: String,
    /// `timestamp`.
    pub timestamp: String,
    /// `serial_no`.
    pub serial_no: String,
}

impl Authorization {
    /// Reads `WECHATPAY2-SHA256-RSA2048 k="v",...`; `None` if malformed.
    pub fn parse(header: &str) -> Option<Authorization> {
        let rest = header.strip_prefix(SCHEME)?.strip_prefix(' ')?;
        let mut fields = std::collections::HashMap::new();
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            let v = v.strip_prefix('"')?.strip_suffix('"')?;
            fields.insert(k, v);
        }
        let mut take = |k: &str| fields.remove(k).map(str::to_owned);
        Some(Authorization {
            mchid: take("mchid")?,
            nonce_str: take("nonce_str")?,
            signature: take("signature")?,
            timestamp: take("timestamp")?,
            serial_no: take("serial_no")?,
        })
    }
}

/// Verifies a signature over `message` with an RSA public key (PKCS#1 DER).
pub fn verify_rsa_sha256(public_pkcs1: &[u8], message: &[u8], signature_b64: &str) -> bool {
    let Ok(signature) = BASE64.decode(signature_b64) else {
        return false;
    };
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_pkcs1)
        .verify(message, &signature)
        .is_ok()
}

/// The `Wechatpay-*` headers of an answer or callback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `Wechatpay-Timestamp`.
    pub timestamp: Option<String>,
    /// `Wechatpay-Nonce`.
    pub nonce: Option<String>,
    /// `Wechatpay-Signature`.
    pub signature: Option<String>,
    /// `Wechatpay-Serial`: the public key id or the platform certificate's serial.
    pub serial: Option<String>,
    /// `Request-ID`, for WeChat's support.
    pub request_id: Option<String>,
}

impl SignatureHeaders {
    /// Picks the headers out of `(name, value)` pairs, names in any case.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut headers = SignatureHeaders::default();
        for (name, value) in pairs {
            let slot = match name.to_ascii_lowercase().as_str() {
                "wechatpay-timestamp" => &mut headers.timestamp,
                "wechatpay-nonce" => &mut headers.nonce,
                "wechatpay-signature" => &mut headers.signature,
                "wechatpay-serial" => &mut headers.serial,
                "request-id" => &mut headers.request_id,
                _ => continue,
            };
            *slot = Some(value.to_owned());
        }
        headers
    }
}

/// Why an answer or callback is not taken as WeChat's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A `Wechatpay-*` header is missing.
    #[error("the answer has no {0} header")]
    MissingHeader(&'static str),
    /// Signed with a key the configuration does not have.
    #[error(
        "signed with {0}, which is neither the configured 微信支付公钥 id nor a configured platform certificate's serial"
    )]
    UnknownSerial(String),
    /// The timestamp is more than five minutes off.
    #[error(
        "Wechatpay-Timestamp {timestamp} is more than 5 minutes from this machine's clock ({now})"
    )]
    Stale {
        /// The answer's.
        timestamp: String,
        /// Ours.
        now: i64,
    },
    /// The signature does not verify.
    #[error("the signature does not verify with {0}")]
    BadSignature(String),
}

/// A 微信支付公钥 id: `PUB_KEY_ID_` and digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKeyId(String);

impl PublicKeyId {
    /// The prefix of every id.
    pub const PREFIX: &'static str = "PUB_KEY_ID_";

    /// Parses an id as the merchant platform shows it.
    pub fn parse(id: &str) -> Result<PublicKeyId, InvalidField> {
        let digits = id.strip_prefix(Self::PREFIX).unwrap_or_default();
        if digits.is_empty() || digits.len() > 64 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidField::new(
                "wechatpay_public_key_id",
                format!(
                    "{id:?} is not a 微信支付公钥 id: it is PUB_KEY_ID_ followed by digits, as 商户平台 → 账户中心 → API安全 → 微信支付公钥 shows it"
                ),
                format!(
                    "{id:?} 不是微信支付公钥 ID：应为 PUB_KEY_ID_ 加数字，见商户平台 → 账户中心 → API安全 → 微信支付公钥"
                ),
            ));
        }
        Ok(PublicKeyId(id.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a verifying key came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// The 微信支付公钥 (no expiry).
    PublicKey,
    /// A platform certificate (legacy), valid until the given time.
    PlatformCertificate {
        /// The certificate's `notAfter`.
        not_after: OffsetDateTime,
    },
}

#[derive(Clone, Debug)]
struct VerifyingKey {
    /// The public key id or the certificate's serial.
    serial: String,
    source: KeySource,
    /// PKCS#1 `RSAPublicKey` DER.
    public: Vec<u8>,
}

/// WeChat's keys as the merchant configured them: the 微信支付公钥 and/or
/// platform certificates. While a merchant switches from certificates to
/// the public key both are accepted; the `Wechatpay-Serial` of each answer
/// picks the key.
#[derive(Clone, Debug, Default)]
pub struct WechatPayKeys {
    keys: Vec<VerifyingKey>,
}

impl WechatPayKeys {
    /// No keys yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the 微信支付公钥 (`pub_key.pem`) with its id.
    pub fn with_public_key(mut self, id: &PublicKeyId, pem: &[u8]) -> Result<Self, KeyError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem).map_err(|e| {
            let hint = if String::from_utf8_lossy(pem).contains("BEGIN CERTIFICATE") {
                ", but this is a certificate: give it as platform_certs, or download the 微信支付公钥 itself".to_owned()
            } else {
                format!(" ({e})")
            };
            KeyError::PublicKey(hint)
        })?;
        let (_, spki) = SubjectPublicKeyInfo::from_der(der.as_ref())
            .map_err(|e| KeyError::PublicKey(format!(" ({e})")))?;
        self.keys.push(VerifyingKey {
            serial: id.as_str().to_owned(),
            source: KeySource::PublicKey,
            public: rsa_public_key(&spki)?,
        });
        Ok(self)
    }

    /// Adds a platform certificate (PEM); its serial names it.
    pub fn with_platform_certificate(mut self, pem: &[u8]) -> Result<Self, KeyError> {
        let der = CertificateDer::from_pem_slice(pem).map_err(|e| {
            let hint = if String::from_utf8_lossy(pem).contains("BEGIN PUBLIC KEY") {
                "this is a public key: give it as wechatpay_public_key with its PUB_KEY_ID_"
                    .to_owned()
            } else {
                e.to_string()
            };
            KeyError::Certificate(hint)
        })?;
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| KeyError::Certificate(e.to_string()))?;
        self.keys.push(VerifyingKey {
            serial: serial_hex(cert.raw_serial()),
            source: KeySource::PlatformCertificate {
                not_after: cert.validity().not_after.to_datetime(),
            },
            public: rsa_public_key(cert.public_key())?,
        });
        Ok(self)
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The serials (public key id, certificate serials) and where each came from.
    pub fn serials(&self) -> impl Iterator<Item = (&str, &KeySource)> {
        self.keys.iter().map(|k| (k.serial.as_str(), &k.source))
    }

    /// Verifies an answer or callback: the key named by `Wechatpay-Serial`,
    /// a timestamp within five minutes of `now`, and the signature over
    /// timestamp, nonce and body.
    pub fn verify(
        &self,
        headers: &SignatureHeaders,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), VerifyError> {
        let timestamp = headers
            .timestamp
            .as_deref()
            .ok_or(VerifyError::MissingHeader("Wechatpay-Timestamp"))?;
        let nonce = headers
            .nonce
            .as_deref()
            .ok_or(VerifyError::MissingHeader("Wechatpay-Nonce"))?;
        let signature = headers
            .signature
            .as_deref()
            .ok_or(VerifyError::MissingHeader("Wechatpay-Signature"))?;
        let serial = headers
            .serial
            .as_deref()
            .ok_or(VerifyError::MissingHeader("Wechatpay-Serial"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.serial.eq_ignore_ascii_case(serial))
            .ok_or_else(|| VerifyError::UnknownSerial(serial.to_owned()))?;
        let now = now.unix_timestamp();
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (t - now).abs() <= MAX_SKEW_SECONDS);
        if !fresh {
            return Err(VerifyError::Stale {
                timestamp: timestamp.chars().take(20).collect(),
                now,
            });
        }
        if !verify_rsa_sha256(
            &key.public,
            &answer_message(timestamp, nonce, body),
            signature,
        ) {
            return Err(VerifyError::BadSignature(key.serial.clone()));
        }
        Ok(())
    }

    /// The key to encrypt sensitive fields with: the public key if
    /// configured, else the platform certificate valid longest.
    pub fn encryptor(&self) -> Option<Encryptor> {
        let key = self
            .keys
            .iter()
            .find(|k| k.source == KeySource::PublicKey)
            .or_else(|| {
                self.keys.iter().max_by_key(|k| match k.source {
                    KeySource::PlatformCertificate { not_after } => Some(not_after),
                    KeySource::PublicKey => None,
                })
            })?;
        use rsa::pkcs1::DecodeRsaPublicKey;
        let public = rsa::PublicKey::from_pkcs1_der(&key.public).ok()?;
        Some(Encryptor {
            serial: key.serial.clone(),
            public,
        })
    }
}

/// Encrypts sensitive fields (`user_name`) under WeChat's public key:
/// RSA-OAEP with SHA-1 and MGF1-SHA1, Base64 (facts §5).
#[derive(Clone, Debug)]
pub struct Encryptor {
    serial: String,
    public: rsa::PublicKey,
}

impl Encryptor {
    /// The key's id or serial, sent as `Wechatpay-Serial` with the request.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The ciphertext of `plain`, Base64. Randomised: two calls differ.
    pub fn encrypt(&self, plain: &str) -> Result<String, InvalidField> {
        let sealed = self
            .public
            .encrypt(
                &mut rand::rng(),
                rsa::Oaep::<sha1::Sha1>::new(),
                plain.as_bytes(),
            )
            .map_err(|_| {
                InvalidField::new(
                    "user_name",
                    "is too long to encrypt under WeChat's public key",
                    "过长，无法用微信支付公钥加密",
                )
            })?;
        Ok(BASE64.encode(sealed))
    }
}

/// The merchant's APIv3 key (APIv3密钥): 32 characters, the AES-256-GCM key
/// of callbacks. It never appears in `Debug`, logs or errors.
#[derive(Clone)]
pub struct ApiV3Key(SecretString);

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3Key(<redacted>)")
    }
}

/// Why a callback's resource cannot be decrypted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// Not AEAD_AES_256_GCM.
    #[error("algorithm {0:?} is not AEAD_AES_256_GCM")]
    Algorithm(String),
    /// The nonce is not 12 bytes.
    #[error("the nonce is not 12 bytes")]
    Nonce,
    /// The ciphertext is not Base64, or shorter than its tag.
    #[error("the ciphertext is not Base64 with a 16-byte tag")]
    Ciphertext,
    /// Authentication failed: another key, or altered data.
    #[error(
        "decryption failed: the APIv3 key is not the one set on the merchant platform, or the data was altered"
    )]
    Authentication,
}

impl ApiV3Key {
    /// The key's length.
    pub const LEN: usize = 32;

    /// Parses an APIv3 key: exactly 32 ASCII characters without spaces.
    /// The error never repeats the key.
    pub fn parse(key: &str) -> Result<ApiV3Key, InvalidField> {
        if key.len() != Self::LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            let shape = if key.is_ascii() {
                format!("{} characters", key.len())
            } else {
                "characters other than ASCII".to_owned()
            };
            return Err(InvalidField::new(
                "apiv3_key",
                format!(
                    "must be the 32 ASCII characters of the APIv3 key (APIv3密钥, set on 商户平台 → 账户中心 → API安全), but has {shape}"
                ),
                format!(
                    "必须是 32 位 APIv3 密钥（商户平台 → 账户中心 → API安全 设置），当前为{shape}"
                ),
            ));
        }
        Ok(ApiV3Key(SecretString::from(key)))
    }

    fn aead(&self) -> ring::aead::LessSafeKey {
        let unbound = ring::aead::UnboundKey::new(
            &ring::aead::AES_256_GCM,
            self.0.expose_secret().as_bytes(),
        )
        .expect("a 32-byte AES-256 key");
        ring::aead::LessSafeKey::new(unbound)
    }

    /// Decrypts a callback's `resource` (AEAD_AES_256_GCM).
    pub fn decrypt(
        &self,
        associated_data: &str,
        nonce: &str,
        ciphertext_b64: &str,
    ) -> Result<Vec<u8>, DecryptError> {
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce.as_bytes())
            .map_err(|_| DecryptError::Nonce)?;
        let mut data = BASE64
            .decode(ciphertext_b64)
            .map_err(|_| DecryptError::Ciphertext)?;
        if data.len() < ring::aead::AES_256_GCM.tag_len() {
            return Err(DecryptError::Ciphertext);
        }
        let plain = self
            .aead()
            .open_in_place(
                nonce,
                ring::aead::Aad::from(associated_data.as_bytes()),
                &mut data,
            )
            .map_err(|_| DecryptError::Authentication)?;
        Ok(plain.to_vec())
    }

    /// Encrypts as WeChat does for a callback (the sandbox's side): Base64
    /// of ciphertext and tag. `nonce` must be 12 bytes.
    pub fn encrypt(
        &self,
        associated_data: &str,
        nonce: &str,
        plain: &[u8],
    ) -> Result<String, DecryptError> {
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce.as_bytes())
            .map_err(|_| DecryptError::Nonce)?;
        let mut data = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                nonce,
                ring::aead::Aad::from(associated_data.as_bytes()),
                &mut data,
            )
            .map_err(|_| DecryptError::Authentication)?;
        Ok(BASE64.encode(data))
    }

    /// Whether this key is the merchant's v2 API key, given by mistake
    /// (both are 32 characters). Constant time.
    pub fn is_the_v2_key(&self, v2: &crate::ApiKey) -> bool {
        self.same_as(v2.expose())
    }

    /// Whether this key equals `other`. Constant time.
    pub fn same_as(&self, other: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0
            .expose_secret()
            .as_bytes()
            .ct_eq(other.as_bytes())
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_message_is_five_lines() {
        assert_eq!(
            request_message(
                "GET",
                "/v3/x?a=1",
                1554208460,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
                ""
            ),
            "GET\n/v3/x?a=1\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
        );
        assert_eq!(answer_message("1", "n", b"{}"), b"1\nn\n{}\n");
    }

    #[test]
    fn authorization_headers_parse_back() {
        let header = format!(
            "{SCHEME} mchid=\"1900007291\",nonce_str=\"n\",signature=\"c2ln\",timestamp=\"1\",serial_no=\"408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB\""
        );
        let auth = Authorization::parse(&header).unwrap();
        assert_eq!(auth.mchid, "1900007291");
        assert_eq!(auth.serial_no, "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB");
        assert_eq!(
            Authorization::parse("WECHATPAY2-SHA256-RSA2048 mchid=1"),
            None
        );
        assert_eq!(Authorization::parse("Bearer x"), None);
    }

    #[test]
    fn public_key_ids_have_their_form() {
        assert!(PublicKeyId::parse("PUB_KEY_ID_0114232134912410000000000000").is_ok());
        for bad in [
            "",
            "PUB_KEY_ID_",
            "0114232134",
            "PUB_KEY_ID_01X",
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        ] {
            let e = PublicKeyId::parse(bad).unwrap_err();
            assert_eq!(e.field, "wechatpay_public_key_id");
        }
    }

    #[test]
    fn apiv3_keys_are_32_characters_and_never_shown() {
        let key = ApiV3Key::parse("0123456789abcdefghijklmnopqrstuv").unwrap();
        assert_eq!(format!("{key:?}"), "ApiV3Key(<redacted>)");
        let e = ApiV3Key::parse("short-secret-value").unwrap_err();
        assert_eq!(e.field, "apiv3_key");
        assert!(!e.message.contains("short-secret-value"));
        assert!(key.same_as("0123456789abcdefghijklmnopqrstuv"));
        assert!(!key.same_as("0123456789abcdefghijklmnopqrstuV"));
    }

    #[test]
    fn callbacks_decrypt_with_the_right_key_only() {
        let key = ApiV3Key::parse("0123456789abcdefghijklmnopqrstuv").unwrap();
        let sealed = key
            .encrypt("mch_payment", "0123456789ab", b"{\"state\":\"SUCCESS\"}")
            .unwrap();
        assert_eq!(
            key.decrypt("mch_payment", "0123456789ab", &sealed).unwrap(),
            b"{\"state\":\"SUCCESS\"}"
        );
        let other = ApiV3Key::parse("0123456789abcdefghijklmnopqrstuV").unwrap();
        assert_eq!(
            other.decrypt("mch_payment", "0123456789ab", &sealed),
            Err(DecryptError::Authentication)
        );
        assert_eq!(
            key.decrypt("transfer", "0123456789ab", &sealed),
            Err(DecryptError::Authentication)
        );
        assert_eq!(
            key.decrypt("mch_payment", "short", &sealed),
            Err(DecryptError::Nonce)
        );
        assert_eq!(
            key.decrypt("mch_payment", "0123456789ab", "AAAA"),
            Err(DecryptError::Ciphertext)
        );
    }

    #[test]
    fn serials_drop_the_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x9F, 0x01]), "9F01");
        assert_eq!(serial_hex(&[0x00]), "00");
    }
}
