//! Getting a request to WeChat and its answer back: mutual TLS with the
//! merchant's API certificate, over rustls (ring) and a lean HTTP/1.1
//! client of our own (`http1`), with no retries of its own.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Api;
use crate::http1::{Http1, Settings};
use crate::outcome::CallError;
use crate::xml::MAX_BODY_BYTES;

/// WeChat Pay's API host.
pub const DEFAULT_API_BASE: &str = "https://api.mch.weixin.qq.com";

/// A boxed future, so that transports can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that carries a request body to an API and brings the answer
/// body back. [`HttpTransport`] talks to WeChat (or the sandbox); tests may
/// put anything in its place.
///
/// A transport must not retry on its own: the caller records every attempt.
pub trait Transport: Send + Sync + fmt::Debug {
    /// Posts `body` to `api` and returns the answer's body.
    fn post(&self, api: Api, body: String) -> BoxFuture<'_, Result<Vec<u8>, CallError>>;
}

/// Why a certificate, key or PKCS#12 file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No `CERTIFICATE` block in the certificate file.
    #[error(
        "no certificate found: the file must hold a PEM block '-----BEGIN CERTIFICATE-----' (apiclient_cert.pem)"
    )]
    NoCertificate,
    /// No usable private key in the key file.
    #[error(
        "no private key found: the file must hold '-----BEGIN PRIVATE KEY-----', 'BEGIN RSA PRIVATE KEY' or 'BEGIN EC PRIVATE KEY' (apiclient_key.pem); an 'ENCRYPTED PRIVATE KEY' must be decrypted first (openssl pkcs8 -in key.pem -out plain.pem)"
    )]
    NoPrivateKey,
    /// The PKCS#12 file could not be opened.
    #[error(
        "cannot open the PKCS#12 file: wrong password (WeChat's default is the mch_id) or not a PKCS#12 file ({0})"
    )]
    Pkcs12(String),
    /// The PKCS#12 file holds no private key with a certificate.
    #[error("the PKCS#12 file holds no private key with its certificate")]
    Pkcs12Empty,
    /// The key is not the certificate's.
    #[error(
        "the private key does not belong to the certificate: use the apiclient_key.pem issued with this apiclient_cert.pem"
    )]
    KeyMismatch,
    /// The key is of a kind TLS cannot use.
    #[error("the private key cannot be used for TLS: {0}")]
    UnusableKey(String),
    /// The certificate cannot be used for TLS (e.g. an X.509 v1 certificate).
    #[error("the certificate cannot be used for TLS: {0}")]
    UnusableCertificate(String),
}

/// The merchant's API certificate (API证书) and its private key, used as
/// the TLS client identity WeChat requires.
#[derive(Clone)]
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ClientIdentity {
    /// From the PEM pair WeChat issues: `apiclient_cert.pem` and
    /// `apiclient_key.pem` (PKCS#8, PKCS#1 or SEC1). Checks that the key
    /// belongs to the certificate.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, IdentityError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(IdentityError::NoCertificate);
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| IdentityError::NoPrivateKey)?;
        Self::checked(chain, key)
    }

    /// From `apiclient_cert.p12` as WeChat issues it (legacy RC2/3DES
    /// encryption; the password is the mch_id unless changed), read in pure
    /// Rust — no OpenSSL.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self, IdentityError> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            der,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| IdentityError::Pkcs12(e.to_string()))?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or(IdentityError::Pkcs12Empty)?;
        let certs: Vec<CertificateDer<'static>> = chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect();
        if certs.is_empty() {
            return Err(IdentityError::Pkcs12Empty);
        }
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
        Self::checked(certs, key)
    }

    fn checked(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, IdentityError> {
        CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider()).map_err(
            |e| match e {
                rustls::Error::InconsistentKeys(_) => IdentityError::KeyMismatch,
                // webpki reads v3 certificates only; WeChat issues nothing else.
                rustls::Error::InvalidCertificate(e)
                    if format!("{e:?}").contains("UnsupportedCertVersion") =>
                {
                    IdentityError::UnusableCertificate(
                        "it is an X.509 v1 certificate, and WeChat's API certificates are v3: download apiclient_cert.pem (or apiclient_cert.p12) again from the merchant platform (账户中心 → API安全 → API证书)".into(),
                    )
                }
                rustls::Error::InvalidCertificate(e) => {
                    IdentityError::UnusableCertificate(e.to_string())
                }
                other => IdentityError::UnusableKey(other.to_string()),
            },
        )?;
        Ok(Self {
            chain,
            key: Arc::new(key),
        })
    }

    /// The certificate (DER), first of the chain.
    pub fn certificate_der(&self) -> &[u8] {
        self.chain[0].as_ref()
    }

    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key (for building TLS configurations).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

/// The one crypto provider: ring (no CMake, no C toolchain beyond cc).
pub fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Reads every certificate of a PEM file (e.g. a sandbox's `ca.pem`).
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(IdentityError::NoCertificate);
    }
    Ok(certs)
}

/// How to reach WeChat.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// The API host, e.g. [`DEFAULT_API_BASE`] or a sandbox's address.
    pub api_base: String,
    /// The merchant's API certificate and key.
    pub identity: Option<ClientIdentity>,
    /// CAs to trust besides the system's (a sandbox's or a test server's).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// How long to wait for a connection (and TLS handshake).
    pub connect_timeout: Duration,
    /// How long to wait for a whole call, answer included.
    pub request_timeout: Duration,
}

impl TransportConfig {
    /// WeChat's host, no identity, 5 s to connect, 15 s per call.
    pub fn new(api_base: impl Into<String>) -> Self {
        Self {
            api_base: api_base.into(),
            identity: None,
            extra_roots: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self::new(DEFAULT_API_BASE)
    }
}

/// Why a transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportBuildError {
    /// The TLS configuration was refused.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest refused the client (of APIv3 or of the official account).
    #[error("HTTP client: {0}")]
    Http(String),
    /// The base URL is not an http(s) URL of a host.
    #[error(
        "api_base {0:?} must be https://HOST[:PORT][/PATH] (or http:// for a local test server)"
    )]
    BadBase(String),
}

/// A rustls client configuration trusting the system's CAs plus
/// `extra_roots`, presenting `identity` when the server asks.
pub fn tls_client_config(
    identity: Option<&ClientIdentity>,
    extra_roots: &[CertificateDer<'static>],
) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra_roots.iter().cloned(),
        provider.clone(),
    )?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain.clone(), id.private_key())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The HTTPS transport: one pool of keep-alive connections per merchant,
/// timeouts on connect and on the whole call, and no retries. Each call is
/// written and read by the task that makes it.
#[derive(Clone, Debug)]
pub struct HttpTransport {
    // Shared by clones, as the pool is.
    http: Arc<Http1>,
    api_base: String,
}

impl HttpTransport {
    /// Builds the transport.
    pub fn new(config: &TransportConfig) -> Result<Self, TransportBuildError> {
        let base = config.api_base.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(TransportBuildError::BadBase(config.api_base.clone()));
        }
        let tls = tls_client_config(config.identity.as_ref(), &config.extra_roots)?;
        let settings = Settings {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            content_type: "text/xml; charset=utf-8",
            max_body: MAX_BODY_BYTES,
        };
        let http = Http1::new(&base, tls, settings)
            .ok_or_else(|| TransportBuildError::BadBase(config.api_base.clone()))?;
        Ok(Self {
            http: Arc::new(http),
            api_base: base,
        })
    }

    /// The base URL calls go to.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    async fn post_inner(&self, api: Api, body: String) -> Result<Vec<u8>, CallError> {
        // An answer over MAX_BODY_BYTES is refused while it is read.
        let answer = self.http.post(api.path(), body.as_bytes()).await?;
        if answer.status != 200 {
            return Err(CallError::HttpStatus(answer.status));
        }
        Ok(answer.body)
    }
}

impl Transport for HttpTransport {
    fn post(&self, api: Api, body: String) -> BoxFuture<'_, Result<Vec<u8>, CallError>> {
        Box::pin(self.post_inner(api, body))
    }
}

/// Sorts a reqwest error by whether the request can have reached WeChat.
/// The URL is dropped from the message (a query string may hold a token).
pub(crate) fn call_error(e: reqwest::Error) -> CallError {
    let e = e.without_url();
    if e.is_connect() {
        // DNS, refused, TLS handshake, connect timeout: nothing was written.
        CallError::NotSent(error_chain(&e))
    } else if e.is_timeout() {
        CallError::NoAnswer(format!("timed out: {}", error_chain(&e)))
    } else {
        CallError::NoAnswer(error_chain(&e))
    }
}

/// An error and its sources on one line.
pub(crate) fn error_chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
