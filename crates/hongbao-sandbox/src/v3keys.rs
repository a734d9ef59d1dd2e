//! WeChat's side of APIv3 in the sandbox: the merchant certificate's
//! serial and public key (to verify requests), the APIv3 key (to encrypt
//! callbacks), and WeChat's two private keys, behind the 微信支付公钥 and
//! the platform certificate (to sign answers and decrypt `user_name`).
//!
//! ring signs; RustCrypto's `rsa` decrypts OAEP, which ring does not
//! offer. Its private-key operations are not constant time: acceptable for
//! these throwaway simulated keys only, never for a merchant's real key.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hongbao_wxpay::v3::ApiV3Key;
use hongbao_wxpay::v3::crypto::{answer_message, certificate_public_key, certificate_serial};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::identity::Identity;
use crate::settings::V3Signer;

struct WechatKey {
    serial: String,
    signer: RsaKeyPair,
    decrypter: rsa::PrivateKey,
}

impl WechatKey {
    fn from_pem(serial: String, pem: &str) -> Result<WechatKey, String> {
        use rsa::pkcs8::DecodePrivateKey;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())?;
        let signer = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| e.to_string())?;
        let decrypter = rsa::PrivateKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
        Ok(WechatKey {
            serial,
            signer,
            decrypter,
        })
    }

    fn sign(&self, message: &[u8]) -> String {
        let mut signature = vec![0; self.signer.public().modulus_len()];
        self.signer
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("an RSA signature into a buffer of the modulus' length");
        BASE64.encode(signature)
    }
}

/// The keys the sandbox's APIv3 needs.
#[derive(Clone)]
pub(crate) struct V3Keys {
    /// The merchant API certificate's serial.
    pub(crate) merchant_serial: String,
    /// Its public key (PKCS#1 DER).
    pub(crate) merchant_public_key: Vec<u8>,
    /// The APIv3 key.
    pub(crate) apiv3_key: ApiV3Key,
    public_key: Arc<WechatKey>,
    platform: Arc<WechatKey>,
}

impl fmt::Debug for V3Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V3Keys")
            .field("merchant_serial", &self.merchant_serial)
            .field("public_key_id", &self.public_key.serial)
            .field("platform_serial", &self.platform.serial)
            .finish_non_exhaustive()
    }
}

impl V3Keys {
    pub(crate) fn from_identity(identity: &Identity) -> Result<V3Keys, String> {
        let merchant = CertificateDer::from_pem_slice(identity.client_cert_pem.as_bytes())
            .map_err(|e| format!("{}: {e}", crate::files::CLIENT_CERT))?;
        let platform = CertificateDer::from_pem_slice(identity.platform_cert_pem.as_bytes())
            .map_err(|e| format!("{}: {e}", crate::files::PLATFORM_CERT))?;
        let apiv3_key = ApiV3Key::parse(&identity.secrets.apiv3_key).map_err(|e| e.message)?;
        Ok(V3Keys {
            merchant_serial: certificate_serial(merchant.as_ref()).map_err(|e| e.to_string())?,
            merchant_public_key: certificate_public_key(merchant.as_ref())
                .map_err(|e| format!("{}: {e}", crate::files::CLIENT_CERT))?,
            apiv3_key,
            public_key: Arc::new(WechatKey::from_pem(
                identity.secrets.wechatpay_public_key_id.clone(),
                &identity.wechatpay_private_key_pem,
            )?),
            platform: Arc::new(WechatKey::from_pem(
                certificate_serial(platform.as_ref()).map_err(|e| e.to_string())?,
                &identity.platform_key_pem,
            )?),
        })
    }

    /// Signs an answer or callback: (`Wechatpay-Serial`, `Wechatpay-Signature`).
    pub(crate) fn sign(
        &self,
        signer: V3Signer,
        timestamp: &str,
        nonce: &str,
        body: &[u8],
    ) -> (String, String) {
        let key = match signer {
            V3Signer::PublicKey => &self.public_key,
            V3Signer::PlatformCertificate => &self.platform,
        };
        (
            key.serial.clone(),
            key.sign(&answer_message(timestamp, nonce, body)),
        )
    }

    /// Decrypts a sensitive field encrypted under the key named `serial`.
    pub(crate) fn decrypt(&self, serial: &str, cipher_b64: &str) -> Option<String> {
        let key = [&self.public_key, &self.platform]
            .into_iter()
            .find(|k| k.serial.eq_ignore_ascii_case(serial))?;
        let bytes = BASE64.decode(cipher_b64).ok()?;
        let plain = key
            .decrypter
            .decrypt(rsa::Oaep::<sha1::Sha1>::new(), &bytes)
            .ok()?;
        String::from_utf8(plain).ok()
    }
}
