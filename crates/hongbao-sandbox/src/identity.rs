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
    /// The APIv3 key (32 characters): encrypts callbacks.
    #[serde(default)]
    pub apiv3_key: String,
    /// The 微信支付公钥's id (`PUB_KEY_ID_…`).
    #[serde(default)]
    pub wechatpay_public_key_id: String,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("mch_id", &self.mch_id)
            .field("appid", &self.appid)
            .field("miniprogram_appid", &self.miniprogram_appid)
            .field("workwx_corpid", &self.workwx_corpid)
            .field("wechatpay_public_key_id", &self.wechatpay_public_key_id)
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
    /// The merchant's API certificate, PEM (RSA 2048, as WeChat's).
    pub client_cert_pem: String,
    /// The 微信支付公钥, PEM (`BEGIN PUBLIC KEY`).
    pub wechatpay_public_key_pem: String,
    /// The private half of the 微信支付公钥 (WeChat's side only), PKCS#8 PEM.
    pub wechatpay_private_key_pem: String,
    /// The platform certificate (legacy verification), PEM.
    pub platform_cert_pem: String,
    /// The platform certificate's private key (WeChat's side only), PKCS#8 PEM.
    pub platform_key_pem: String,
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
    /// The 微信支付公钥 (`wechatpay_public_key`).
    pub const PUB_KEY: &str = "pub_key.pem";
    /// Its private half: WeChat's side, signs answers and callbacks.
    pub const PUB_KEY_PRIVATE: &str = "wechatpay_private_key.pem";
    /// A platform certificate (`platform_certs`, legacy verification).
    pub const PLATFORM_CERT: &str = "wechatpay_platform.pem";
    /// Its private key: WeChat's side.
    pub const PLATFORM_KEY: &str = "wechatpay_platform_key.pem";
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

/// Creates the data directory readable by its owner only (one that exists
/// is left as it is: it may be a directory the user chose for other things).
fn create_private_dir(dir: &Path) -> Result<(), IdentityError> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(dir))
}

/// Writes `contents` at `name` in `dir`, owner-only; for files other
/// modules write (merchant.toml).
pub(crate) fn write_owner_only(path: &Path, contents: &[u8]) -> Result<(), IdentityError> {
    write_private(path, contents)?;
    // An existing file keeps its mode on open: narrow it too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    }
    Ok(())
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
        apiv3_key: String::new(),
        wechatpay_public_key_id: String::new(),
    }
}

impl Identity {
    /// Loads the identity in `dir`, creating whatever is missing on first start.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        create_private_dir(dir)?;
        let dir = dir.canonicalize().map_err(io(dir))?;
        let secrets_path = dir.join(files::SECRETS);
        if !secrets_path.exists() {
            create(&dir)?;
        }
        // A data directory from before APIv3 gains its keys (and an RSA
        // merchant certificate from the same CA) on its next start.
        if !dir.join(files::PLATFORM_KEY).exists() {
            create_v3(&dir)?;
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
            wechatpay_public_key_pem: read(files::PUB_KEY)?,
            wechatpay_private_key_pem: read(files::PUB_KEY_PRIVATE)?,
            platform_cert_pem: read(files::PLATFORM_CERT)?,
            platform_key_pem: read(files::PLATFORM_KEY)?,
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
        self.merchant_toml_with(name, api_base, api_base)
    }

    /// As [`Identity::merchant_toml`], with APIv3 served at `v3_base`.
    pub fn merchant_toml_with(&self, name: &str, api_base: &str, v3_base: &str) -> String {
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
             remark = \"sandbox\"\n\
             # APIv3 transfers (商家转账): the same API certificate signs.\n\
             apiv3_key = \"{apiv3_key}\"\n\
             wechatpay_public_key = {pub_key}\n\
             wechatpay_public_key_id = \"{pub_key_id}\"\n\
             # platform_certs = [{platform}]  # legacy; both may be given while switching\n\
             v3_base = \"{v3_base}\"\n\
             transfer_scene_id = \"1000\"\n\
             transfer_remark = \"sandbox reward\"\n\
             activity_name = \"sandbox\"\n\
             reward_description = \"sandbox reward\"\n",
            mch_id = s.mch_id,
            appid = s.appid,
            api_key = s.api_key,
            cert = path(files::CLIENT_CERT),
            key = path(files::CLIENT_KEY),
            p12 = path(files::CLIENT_P12),
            ca = path(files::CA),
            app_secret = s.app_secret,
            mini = s.miniprogram_appid,
            apiv3_key = s.apiv3_key,
            pub_key = path(files::PUB_KEY),
            pub_key_id = s.wechatpay_public_key_id,
            platform = path(files::PLATFORM_CERT),
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

    let (client_cert_pem, client_key_pem, p12) =
        merchant_certificate(&secrets.mch_id, &issuer, now)?;

    // Owner-only, certificates included: the directory holds secrets.
    let write = |name: &str, contents: &[u8]| write_private(&dir.join(name), contents);
    write(files::CA, ca_pem.as_bytes())?;
    write(files::CA_KEY, ca_key_pem.as_bytes())?;
    write(files::SERVER_CERT, server_cert.pem().as_bytes())?;
    write(files::SERVER_KEY, server_key.serialize_pem().as_bytes())?;
    write(files::CLIENT_CERT, client_cert_pem.as_bytes())?;
    write(files::CLIENT_KEY, client_key_pem.as_bytes())?;
    write(files::CLIENT_P12, &p12)?;
    // Written last: its presence means the identity is complete.
    let json = serde_json::to_string_pretty(&secrets).expect("secrets serialise");
    write_private(&dir.join(files::SECRETS), json.as_bytes())
}

/// A new RSA 2048 private key, PKCS#8 PEM. ring cannot generate RSA keys,
/// so RustCrypto's `rsa` does, for the sandbox's own throwaway keys only.
fn rsa_key_pem() -> Result<String, IdentityError> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::PrivateKey::new(&mut rand::rng(), 2048)
        .map_err(|e| IdentityError::Generate(format!("RSA key: {e}")))?;
    let pem = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| IdentityError::Generate(format!("RSA key: {e}")))?;
    Ok(pem.to_string())
}

fn is_rsa(key_pem: &str) -> bool {
    KeyPair::from_pem(key_pem).is_ok_and(|k| k.algorithm() == &rcgen::PKCS_RSA_SHA256)
}

/// The merchant's API certificate, shaped like WeChat's: RSA 2048, CN =
/// mch_id, O = Tenpay.com, client authentication; with its key and the
/// legacy PKCS#12.
fn merchant_certificate(
    mch_id: &str,
    issuer: &Issuer<'_, KeyPair>,
    now: OffsetDateTime,
) -> Result<(String, String, Vec<u8>), IdentityError> {
    let key_pem = rsa_key_pem()?;
    let client_key = KeyPair::from_pem(&key_pem)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CountryName, "CN");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Tenpay.com");
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "hongbao sandbox merchant");
    params
        .distinguished_name
        .push(DnType::CommonName, mch_id.to_owned());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(random_serial());
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(1825);
    let cert = params.signed_by(&client_key, issuer)?;
    let p12 = legacy_pkcs12(cert.der().as_ref(), &client_key.serialize_der(), mch_id)?;
    Ok((cert.pem(), key_pem, p12))
}

/// A 20-byte serial like WeChat's (40 hex digits), positive.
fn random_serial() -> rcgen::SerialNumber {
    let mut bytes: [u8; 20] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    rcgen::SerialNumber::from_slice(&bytes)
}

/// APIv3: an RSA merchant certificate if the old one is not, the APIv3
/// key, the 微信支付公钥 with its id, and a platform certificate.
fn create_v3(dir: &Path) -> Result<(), IdentityError> {
    let read = |name: &str| -> Result<String, IdentityError> {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(io(&path))
    };
    let secrets_path = dir.join(files::SECRETS);
    let mut secrets: Secrets =
        serde_json::from_str(&read(files::SECRETS)?).map_err(|e| IdentityError::Corrupt {
            path: secrets_path.clone(),
            message: e.to_string(),
        })?;
    let now = OffsetDateTime::now_utc();
    let issuer =
        Issuer::from_ca_cert_pem(&read(files::CA)?, KeyPair::from_pem(&read(files::CA_KEY)?)?)?;
    let write = |name: &str, contents: &[u8]| write_private(&dir.join(name), contents);
    if !is_rsa(&read(files::CLIENT_KEY)?) {
        let (cert, key, p12) = merchant_certificate(&secrets.mch_id, &issuer, now)?;
        write(files::CLIENT_CERT, cert.as_bytes())?;
        write(files::CLIENT_KEY, key.as_bytes())?;
        write(files::CLIENT_P12, &p12)?;
    }

    let wechat_key_pem = rsa_key_pem()?;
    let wechat_key = KeyPair::from_pem(&wechat_key_pem)?;
    write(files::PUB_KEY, wechat_key.public_key_pem().as_bytes())?;
    write(files::PUB_KEY_PRIVATE, wechat_key_pem.as_bytes())?;

    let platform_key_pem = rsa_key_pem()?;
    let platform_key = KeyPair::from_pem(&platform_key_pem)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CountryName, "CN");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Tenpay.com");
    params.distinguished_name.push(
        DnType::CommonName,
        "Tenpay.com sign (hongbao sandbox platform certificate)",
    );
    params.serial_number = Some(random_serial());
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(1825);
    let platform = params.signed_by(&platform_key, &issuer)?;
    write(files::PLATFORM_CERT, platform.pem().as_bytes())?;

    if secrets.apiv3_key.is_empty() {
        secrets.apiv3_key = random_string(32, ALNUM);
    }
    if secrets.wechatpay_public_key_id.is_empty() {
        secrets.wechatpay_public_key_id = format!(
            "PUB_KEY_ID_01{}{}",
            secrets.mch_id,
            random_string(20, DIGITS)
        );
    }
    let json = serde_json::to_string_pretty(&secrets).expect("secrets serialise");
    write_private(&secrets_path, json.as_bytes())?;
    // Written last: its presence means the APIv3 part is complete.
    write(files::PLATFORM_KEY, platform_key_pem.as_bytes())
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
