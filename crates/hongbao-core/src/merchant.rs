//! Turning a merchant's configuration into a working protocol client.

use std::path::Path;
use std::sync::Arc;

use hongbao_wxpay::transport::certificates_from_pem;
use hongbao_wxpay::{Client, ClientIdentity, HttpTransport, TransportConfig};
use secrecy::ExposeSecret;

use crate::config::{CertificateSource, MerchantConfig};

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

/// A ready protocol client for the merchant.
pub fn client(merchant: &MerchantConfig) -> Result<Client, SetupError> {
    let config = transport_config(merchant)?;
    let transport = HttpTransport::new(&config).map_err(|e| SetupError {
        merchant: merchant.name.clone(),
        key: "api_base",
        message: e.to_string(),
    })?;
    Ok(Client::new(
        merchant.wxpay_merchant(),
        merchant.api_key.clone(),
        Arc::new(transport),
    ))
}
