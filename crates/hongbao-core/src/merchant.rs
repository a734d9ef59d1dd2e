//! A merchant ready to pay: its configuration turned into working protocol
//! clients, with the pace of its calls.

use std::path::Path;
use std::sync::Arc;

use hongbao_wxpay::transport::certificates_from_pem;
use hongbao_wxpay::{
    Client, ClientIdentity, HttpTransport, OfficialAccount, OfficialAccountConfig, TransportConfig,
};
use secrecy::ExposeSecret;

use hongbao_wxpay::v3::{HttpV3Transport, MerchantSigner, TransferClient, WechatPayKeys};

use crate::config::{CertificateSource, MerchantConfig};
use crate::model::Rail;
use crate::pacer::Pacer;
use crate::rail::Rails;

/// Why a merchant's client could not be built: the key and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("merchants.{merchant}.{key}: {message}")]
pub struct SetupError {
    /// The merchant's name.
    pub merchant: String,
    /// The configuration key at fault.
    pub key: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

fn read(merchant: &MerchantConfig, key: &'static str, path: &Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|e| SetupError {
        merchant: merchant.name.clone(),
        key,
        message: format!("cannot read {}: {e}", path.display()),
    })
}

/// Loads the merchant's API certificate and key.
pub fn identity(merchant: &MerchantConfig) -> Result<ClientIdentity, SetupError> {
    let fail = |key: &'static str, e: hongbao_wxpay::IdentityError| SetupError {
        merchant: merchant.name.clone(),
        key,
        message: e.to_string(),
    };
    match &merchant.certificate {
        CertificateSource::Pem { cert, key } => {
            let cert_pem = read(merchant, "cert", cert)?;
            let key_pem = read(merchant, "key", key)?;
            ClientIdentity::from_pem(&cert_pem, &key_pem).map_err(|e| match e {
                hongbao_wxpay::IdentityError::NoCertificate => fail("cert", e),
                _ => fail("key", e),
            })
        }
        CertificateSource::Pkcs12 { path, password } => {
            let der = read(merchant, "p12", path)?;
            ClientIdentity::from_pkcs12(&der, password.expose_secret()).map_err(|e| fail("p12", e))
        }
    }
}

/// The CAs to trust besides the system's (`root_ca`).
pub fn extra_roots(
    merchant: &MerchantConfig,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, SetupError> {
    let Some(path) = &merchant.root_ca else {
        return Ok(Vec::new());
    };
    let pem = read(merchant, "root_ca", path)?;
    certificates_from_pem(&pem).map_err(|e| SetupError {
        merchant: merchant.name.clone(),
        key: "root_ca",
        message: e.to_string(),
    })
}

/// The transport settings of the merchant.
pub fn transport_config(merchant: &MerchantConfig) -> Result<TransportConfig, SetupError> {
    let mut config = TransportConfig::new(merchant.api_base.clone());
    config.request_timeout = std::time::Duration::from_secs(u64::from(merchant.timeout_seconds));
    config.identity = Some(identity(merchant)?);
    config.extra_roots = extra_roots(merchant)?;
    Ok(config)
}

/// A ready protocol client for the merchant's red packets, if it has the
/// v2 `api_key`.
pub fn client(merchant: &MerchantConfig) -> Result<Option<Client>, SetupError> {
    let Some(api_key) = &merchant.api_key else {
        return Ok(None);
    };
    let config = transport_config(merchant)?;
    let transport = HttpTransport::new(&config).map_err(|e| SetupError {
        merchant: merchant.name.clone(),
        key: "api_base",
        message: e.to_string(),
    })?;
    Ok(Some(Client::new(
        merchant.wxpay_merchant(),
        api_key.clone(),
        Arc::new(transport),
    )))
}

/// WeChat's limit on transfer creates, and on transfer queries, per
/// merchant: 100 a second each (facts §1), kept a little under.
pub const TRANSFER_CALLS_PER_MINUTE: u32 = 5_400;

/// WeChat's keys of a merchant paying by transfer: its 微信支付公钥 and
/// platform certificates, read from their files.
pub fn wechatpay_keys(merchant: &MerchantConfig) -> Result<Option<WechatPayKeys>, SetupError> {
    let Some(v3) = &merchant.v3 else {
        return Ok(None);
    };
    let fail = |key: &'static str, e: hongbao_wxpay::v3::KeyError| SetupError {
        merchant: merchant.name.clone(),
        key,
        message: e.to_string(),
    };
    let mut keys = WechatPayKeys::new();
    if let Some((path, id)) = &v3.wechatpay_public_key {
        let pem = read(merchant, "wechatpay_public_key", path)?;
        keys = keys
            .with_public_key(id, &pem)
            .map_err(|e| fail("wechatpay_public_key", e))?;
    }
    for path in &v3.platform_certs {
        let pem = read(merchant, "platform_certs", path)?;
        keys = keys
            .with_platform_certificate(&pem)
            .map_err(|e| fail("platform_certs", e))?;
    }
    Ok(Some(keys))
}

/// A ready transfer client for the merchant, if it has the APIv3 keys.
pub fn transfer_client(merchant: &MerchantConfig) -> Result<Option<TransferClient>, SetupError> {
    let (Some(v3), Some(keys)) = (&merchant.v3, wechatpay_keys(merchant)?) else {
        return Ok(None);
    };
    let identity = identity(merchant)?;
    let signer =
        MerchantSigner::from_identity(merchant.mch_id.clone(), &identity).map_err(|e| {
            SetupError {
                merchant: merchant.name.clone(),
                key: "key",
                message: e.to_string(),
            }
        })?;
    let mut config = TransportConfig::new(v3.v3_base.clone());
    config.request_timeout = std::time::Duration::from_secs(u64::from(merchant.timeout_seconds));
    config.extra_roots = extra_roots(merchant)?;
    let transport = HttpV3Transport::new(&config).map_err(|e| SetupError {
        merchant: merchant.name.clone(),
        key: "v3_base",
        message: e.to_string(),
    })?;
    Ok(Some(TransferClient::new(signer, keys, Arc::new(transport))))
}

/// The pace of a merchant's transfer calls: creates and queries apart,
/// each within WeChat's limit, shared through the database.
#[derive(Debug)]
pub struct TransferPace {
    /// Creates (and cancels).
    pub create: Pacer,
    /// Queries.
    pub query: Pacer,
}

/// A merchant ready to pay: its configuration, its clients for the rails
/// it pays on, and its pace.
#[derive(Debug)]
pub struct MerchantRuntime {
    /// The configuration.
    pub config: MerchantConfig,
    /// The clients of its rails.
    pub rails: Rails,
    /// The pace of its calls (shared through the database by every
    /// process that calls on the merchant's behalf).
    pub pacer: Pacer,
    /// The pace of its transfer calls, if it pays by transfer.
    pub transfer_pace: Option<TransferPace>,
    /// The official account's client (follow checks), built on first use;
    /// its access token is cached and shared by every claim.
    official_account: std::sync::OnceLock<Result<Option<OfficialAccount>, String>>,
}

impl MerchantRuntime {
    /// Builds the merchant's client, and its pace shared through `db`.
    pub fn new(
        config: MerchantConfig,
        db: &crate::store::db::Db,
    ) -> Result<MerchantRuntime, SetupError> {
        let transfer = transfer_client(&config)?;
        let transfer_pace = transfer.as_ref().map(|_| {
            let mch_id = config.mch_id.as_str();
            TransferPace {
                create: Pacer::per_minute(
                    db.clone(),
                    &format!("{mch_id}/transfer-create"),
                    TRANSFER_CALLS_PER_MINUTE,
                ),
                query: Pacer::per_minute(
                    db.clone(),
                    &format!("{mch_id}/transfer-query"),
                    TRANSFER_CALLS_PER_MINUTE,
                ),
            }
        });
        let rails = Rails::new(client(&config)?, transfer);
        let pacer = Pacer::per_minute(db.clone(), config.mch_id.as_str(), config.rate_per_minute);
        Ok(MerchantRuntime {
            config,
            rails,
            pacer,
            transfer_pace,
            official_account: std::sync::OnceLock::new(),
        })
    }

    /// The official account's client, if the merchant has an `app_secret`.
    pub fn official_account(&self) -> Result<Option<&OfficialAccount>, String> {
        self.official_account
            .get_or_init(|| {
                let Some(secret) = &self.config.app_secret else {
                    return Ok(None);
                };
                let mut config =
                    OfficialAccountConfig::new(self.config.appid.clone(), secret.clone());
                config.base_url = self.config.oa_base.clone();
                config.extra_roots = extra_roots(&self.config).map_err(|e| e.to_string())?;
                OfficialAccount::new(config)
                    .map(Some)
                    .map_err(|e| format!("merchants.{}: {e}", self.config.name))
            })
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }

    /// The merchant's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The pace a call on `rail` keeps: `sends` for a create (or a
    /// cancel), else a query.
    pub fn pacer_for(&self, rail: Rail, sends: bool) -> &Pacer {
        match (rail, &self.transfer_pace) {
            (Rail::Transfer, Some(pace)) if sends => &pace.create,
            (Rail::Transfer, Some(pace)) => &pace.query,
            _ => &self.pacer,
        }
    }
}

/// The merchants of a process, by name.
pub type Merchants = std::collections::BTreeMap<String, Arc<MerchantRuntime>>;
