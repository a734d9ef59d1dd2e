//! The sandbox's identity: its CA, server certificate, the merchant's API
//! certificate (PEM and legacy PKCS#12), ids and secrets. Created on first
//! start in an empty data directory and reused afterwards.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::RngExt;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Why the identity could not be created or read.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file holds something unexpected.
    #[error("{path}: {message}; delete the data directory to start afresh")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Generate(String),
}

/// The ids and secrets of the simulated merchant and its accounts.
#[derive(Clone, Serialize, Deserialize)]
pub struct Secrets {
    /// The merchant id.
    pub mch_id: String,
    /// The official account's appid (bound to the merchant).
    pub appid: String,
    /// The official account's AppSecret.
    pub app_secret: String,
    /// The mini program's appid (bound to the merchant).
    pub miniprogram_appid: String,
    /// The v2 API key.
    pub api_key: String,
    /// The WeCom corpid.
    pub workwx_corpid: String,
    /// The WeCom payment app's secret (for `workwx_sign`).
    pub workwx_secret: String,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("mch_id", &self.mch_id)
            .field("appid", &self.appid)
            .field("miniprogram_appid", &self.miniprogram_appid)
            .field("workwx_corpid", &self.workwx_corpid)
            .finish_non_exhaustive()
    }
}

/// Everything the sandbox is, as files in its data directory.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The data directory (absolute).
    pub dir: PathBuf,
    /// Ids and secrets.
    pub secrets: Secrets,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The server certificate (127.0.0.1 and localhost), PEM.
    pub server_cert_pem: String,
    /// The server's private key, PEM.
    pub server_key_pem: String,
    /// The merchant's API certificate, PEM.
    pub client_cert_pem: String,
}

/// File names in the data directory.
pub mod files {
    /// The CA certificate clients trust (`root_ca`).
    pub const CA: &str = "ca.pem";
    /// The CA's key (kept to mint further certificates).
    pub const CA_KEY: &str = "ca_key.pem";
    /// The server certificate.
    pub const SERVER_CERT: &str = "server_cert.pem";
    /// The server key.
    pub const SERVER_KEY: &str = "server_key.pem";
    /// The merchant's API certificate.
    pub const CLIENT_CERT: &str = "apiclient_cert.pem";
    /// The merchant's API key.
    pub const CLIENT_KEY: &str = "apiclient_key.pem";
    /// The same pair as PKCS#12, password = mch_id, legacy RC2 encryption.
    pub const CLIENT_P12: &str = "apiclient_cert.p12";
    /// Ids and secrets.
    pub const SECRETS: &str = "sandbox.json";
    /// A `[merchants.sandbox]` section for hongbao's configuration.
    pub const MERCHANT_TOML: &str = "merchant.toml";
    /// The journal of the simulated WeChat's state.
    pub const JOURNAL: &str = "journal.jsonl";
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    }
}

impl From<rcgen::Error> for IdentityError {
    fn from(e: rcgen::Error) -> Self {
        IdentityError::Generate(e.to_string())
    }
}

/// Writes a file readable by its owner only (it may hold a key or secret).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), IdentityError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(contents).map_err(io(path))
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

const HEX: &[u8] = b"0123456789abcdef";
const DIGITS: &[u8] = b"0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn new_secrets() -> Secrets {
    Secrets {
        mch_id: format!("19{}", random_string(8, DIGITS)),
        appid: format!("wx{}", random_string(16, HEX)),
        app_secret: random_string(32, HEX),
        miniprogram_appid: format!("wx{}", random_string(16, HEX)),
        api_key: random_string(32, ALNUM),
        workwx_corpid: format!("ww{}", random_string(16, HEX)),
        workwx_secret: random_string(32, ALNUM),
    }
}

impl Identity {
    /// Loads the identity in `dir`, creating whatever is missing on first start.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let dir = dir.canonicalize().map_err(io(dir))?;
        let secrets_path = dir.join(files::SECRETS);
        if !secrets_path.exists() {
            create(&dir)?;
        }
        let read = |name: &str| -> Result<String, IdentityError> {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(io(&path))
        };
        let secrets: Secrets =
            serde_json::from_str(&read(files::SECRETS)?).map_err(|e| IdentityError::Corrupt {
                path: secrets_path.clone(),
                message: e.to_string(),
            })?;
        Ok(Identity {
            ca_pem: read(files::CA)?,
            server_cert_pem: read(files::SERVER_CERT)?,
            server_key_pem: read(files::SERVER_KEY)?,
            client_cert_pem: read(files::CLIENT_CERT)?,
            secrets,
            dir,
        })
    }

    /// The path of one of the [`files`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A `[merchants.NAME]` section for hongbao's configuration, pointing
    /// at this sandbox listening on `api_base`. Paths are absolute, so the
    /// section can be copied into any configuration file as is.
    pub fn merchant_toml(&self, name: &str, api_base: &str) -> String {
        let s = &self.secrets;
        let path = |f: &str| toml_string(&self.path(f).display().to_string());
        format!(
            "# The hongbao sandbox's merchant: a simulated WeChat Pay account. No real money moves.\n\
             [merchants.{name}]\n\
             mch_id = \"{mch_id}\"\n\
             appid = \"{appid}\"\n\
             api_key = \"{api_key}\"\n\
             cert = {cert}\n\
             key = {key}\n\
             # or: p12 = {p12}  (password: the mch_id)\n\
             api_base = \"{api_base}\"\n\
             root_ca = {ca}\n\
             oa_base = \"{api_base}\"\n\
             app_secret = \"{app_secret}\"\n\
             miniprogram_appid = \"{mini}\"\n\
             rate_per_minute = 1800\n\
             send_name = \"hongbao sandbox\"\n\
             client_ip = \"127.0.0.1\"\n\
             wishing = \"恭喜发财\"\n\
             act_name = \"sandbox\"\n\
             remark = \"sandbox\"\n",
            mch_id = s.mch_id,
            appid = s.appid,
            api_key = s.api_key,
            cert = path(files::CLIENT_CERT),
            key = path(files::CLIENT_KEY),
            p12 = path(files::CLIENT_P12),
            ca = path(files::CA),
            app_secret = s.app_secret,
            mini = s.miniprogram_appid,
        )
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

fn create(dir: &Path) -> Result<(), IdentityError> {
    let secrets = new_secrets();
    let now = OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hongbao sandbox CA");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "hongbao sandbox");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - Duration::days(1);
    ca_params.not_after = now + Duration::days(3650);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(vec![
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "::1".to_owned(),
    ])?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "hongbao sandbox");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.not_before = now - Duration::days(1);
    server_params.not_after = now + Duration::days(3650);
    let server_cert = server_params.signed_by(&server_key, &issuer)?;

    // Shaped like WeChat's: CN = mch_id, O = Tenpay.com, client authentication.
    let client_key = KeyPair::generate()?;
    let mut client_params = CertificateParams::new(Vec::<String>::new())?;
    client_params
        .distinguished_name
        .push(DnType::CountryName, "CN");
    client_params
        .distinguished_name
        .push(DnType::OrganizationName, "Tenpay.com");
    client_params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "hongbao sandbox merchant");
    client_params
        .distinguished_name
        .push(DnType::CommonName, secrets.mch_id.clone());
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client_params.not_before = now - Duration::days(1);
    client_params.not_after = now + Duration::days(1825);
    let client_cert = client_params.signed_by(&client_key, &issuer)?;

    let p12 = legacy_pkcs12(
        client_cert.der().as_ref(),
        &client_key.serialize_der(),
        &secrets.mch_id,
    )?;

    let write_public = |name: &str, contents: &str| {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(io(&path))
    };
    write_public(files::CA, &ca_pem)?;
    write_private(&dir.join(files::CA_KEY), ca_key_pem.as_bytes())?;
    write_public(files::SERVER_CERT, &server_cert.pem())?;
    write_private(
        &dir.join(files::SERVER_KEY),
        server_key.serialize_pem().as_bytes(),
    )?;
    write_public(files::CLIENT_CERT, &client_cert.pem())?;
    write_private(
        &dir.join(files::CLIENT_KEY),
        client_key.serialize_pem().as_bytes(),
    )?;
    write_private(&dir.join(files::CLIENT_P12), &p12)?;
    // Written last: its presence means the identity is complete.
    let json = serde_json::to_string_pretty(&secrets).expect("secrets serialise");
    write_private(&dir.join(files::SECRETS), json.as_bytes())
}

/// A PKCS#12 file as WeChat issues them: password-protected with legacy
/// RC2-40 encryption and a SHA-1 MAC (OpenSSL 3 and Node need their legacy
/// provider to open it, exactly as with a real `apiclient_cert.p12`).
fn legacy_pkcs12(
    cert_der: &[u8],
    key_der: &[u8],
    password: &str,
) -> Result<Vec<u8>, IdentityError> {
    let fail = |e: p12_keystore::error::Error| IdentityError::Generate(format!("PKCS#12: {e}"));
    let chain = p12_keystore::PrivateKeyChain::new(
        b"1".to_vec(),
        p12_keystore::PrivateKey::from_der(key_der).map_err(fail)?,
        [p12_keystore::Certificate::from_der(cert_der).map_err(fail)?],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "Tenpay Certificate",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
    );
    store
        .writer(password)
        // Named Rc4 in the crate, but it is PBE-SHA1-RC2-40 (OID 1.2.840.113549.1.12.1.6).
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithShaAnd40BitRc4Cbc)
        .encryption_iterations(2048)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1)
        .mac_iterations(2048)
        .write()
        .map_err(fail)
}
