//! The configuration file (`hongbao.toml`), its environment overrides, and
//! what it resolves to: merchants with their secrets read, tenants with
//! their hashed API keys.
//!
//! Where: `--config FILE`, else `$HONGBAO_CONFIG`, else `./hongbao.toml`,
//! else none (sandbox mode). Every key can be overridden by
//! `HONGBAO_<SECTION>__<KEY>` (e.g. `HONGBAO_MERCHANTS__MAIN__RATE_PER_MINUTE`).
//! Relative paths are relative to the file. Secrets may be given as the
//! value, `*_file` or `*_env`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use figment::value::magic::RelativePathBuf;
use hongbao_wxpay::v3::{ApiV3Key, PublicKeyId, TransferSceneId};
use hongbao_wxpay::{ApiKey, AppId, MchId, ServiceProvider};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

mod merchant;

use merchant::{RawMerchant, resolve_merchant};

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "HONGBAO_CONFIG";
/// The config file looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "hongbao.toml";
/// The default `rate_per_minute` of a merchant (WeChat's documented 1800/min).
pub const DEFAULT_RATE_PER_MINUTE: u32 = 1800;

/// Where the configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file.
    File(PathBuf),
    /// No file: sandbox mode.
    Sandbox,
}

/// Finds the config file: `explicit`, else `$HONGBAO_CONFIG`, else
/// `./hongbao.toml` if it exists, else sandbox mode.
pub fn locate(explicit: Option<&Path>) -> ConfigSource {
    if let Some(path) = explicit {
        return ConfigSource::File(path.to_owned());
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return ConfigSource::File(PathBuf::from(path));
    }
    let default = Path::new(DEFAULT_CONFIG_FILE);
    if default.exists() {
        return ConfigSource::File(default.to_owned());
    }
    ConfigSource::Sandbox
}

/// A problem with the configuration: the key and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The key, e.g. `merchants.main.api_key`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Every problem found in a configuration (all of them, not just the first).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, if there was one.
    pub file: Option<PathBuf>,
    /// The problems.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "configuration {} is not usable:", file.display())?,
            None => write!(f, "configuration is not usable:")?,
        }
        for p in &self.problems {
            write!(f, "\n  - {}: {}", p.key, p.message)?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn one(file: Option<PathBuf>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file,
            problems: vec![Problem {
                key: key.into(),
                message: message.into(),
            }],
        }
    }
}

/// A string that may also be written as a number (`mch_id = 1900000109`,
/// or any value from the environment, which arrives typed).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Text, E> {
                Err(E::custom(
                    "this value was read as a decimal number; write it as a quoted string",
                ))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number that may also be written as a string (environment values).
fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(text) = Option::<Text>::deserialize(d)? else {
        return Ok(None);
    };
    text.0
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{:?} is not a whole number", text.0)))
}

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    dispatch: RawDispatch,
    #[serde(default)]
    merchants: BTreeMap<String, RawMerchant>,
    #[serde(default)]
    tenants: BTreeMap<String, RawTenant>,
}

#[derive(Debug, Default, Deserialize)]
struct RawServer {
    listen: Option<Text>,
    data_dir: Option<RelativePathBuf>,
    #[serde(default, deserialize_with = "lenient_u32")]
    header_timeout_seconds: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    body_timeout_seconds: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    idle_timeout_seconds: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    max_connections: Option<u32>,
    metrics_listen: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDatabase {
    url: Option<Text>,
    migrate: Option<Text>,
    billno_deployment: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDispatch {
    #[serde(default, deserialize_with = "lenient_u32")]
    lease_seconds: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    max_in_flight: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTenant {
    #[serde(default)]
    api_keys_sha256: Vec<Text>,
    #[serde(default)]
    merchants: Vec<Text>,
}

/// The whole configuration, resolved.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    /// Where the API listens and where data lives.
    pub server: ServerConfig,
    /// The database.
    pub database: DatabaseConfig,
    /// How dispatchers share the ledger.
    pub dispatch: DispatchSettings,
    /// Merchants by name.
    pub merchants: BTreeMap<String, MerchantConfig>,
    /// Tenants by name.
    pub tenants: BTreeMap<String, TenantConfig>,
}

/// `[server]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// `listen`, default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `data_dir`, default `hongbao-data` (next to the config file).
    pub data_dir: PathBuf,
    /// `header_timeout_seconds`, default 10: how long a client has to send
    /// a whole request head once it has begun.
    pub header_timeout: std::time::Duration,
    /// `body_timeout_seconds`, default 60: how long a request body may take
    /// to arrive whole, and an answer to be taken by a client that stalls.
    pub body_timeout: std::time::Duration,
    /// `idle_timeout_seconds`, default 75: how long a connection may wait
    /// for its next request (longer than the usual 60 s of load balancers,
    /// so that they close first).
    pub idle_timeout: std::time::Duration,
    /// `max_connections`: client connections open at once (default: half
    /// the process's open-file limit, decided at start).
    pub max_connections: Option<u32>,
    /// `metrics_listen`: an operator address serving `/metrics` and
    /// `/healthz` without a key (default: none).
    pub metrics_listen: Option<SocketAddr>,
}

/// `[database]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `url`: `sqlite://…` (default: `hongbao.db` in the data directory) or `postgres://…`.
    pub url: String,
    /// `migrate`, default true: apply pending migrations at start. Off for
    /// operators who run `hongbao migrate` themselves; then a process
    /// refuses to start on a database that lacks a migration.
    pub migrate: bool,
    /// `billno_deployment`, default none: up to four digits that open the
    /// daily sequence of every mch_billno this database makes. Give each
    /// database that pays for the same merchant (production, staging, a
    /// restored copy) its own, so that none makes another's numbers.
    pub billno_deployment: hongbao_wxpay::BillnoDeployment,
}

/// `[dispatch]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchSettings {
    /// `lease_seconds`, default 60: how long a dispatcher owns a record it
    /// claimed. A record left by a crashed process is taken over (after a
    /// gethbinfo) once its lease runs out, so shorter means faster recovery;
    /// it must outlast two calls to WeChat (`timeout_seconds`).
    pub lease: std::time::Duration,
    /// `max_in_flight`, default 64: calls in flight per merchant.
    pub max_in_flight: usize,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            lease: std::time::Duration::from_secs(60),
            max_in_flight: 64,
        }
    }
}

/// Where a merchant's API certificate comes from.
#[derive(Clone, Debug)]
pub enum CertificateSource {
    /// `cert` + `key`: the PEM pair.
    Pem {
        /// `apiclient_cert.pem`.
        cert: PathBuf,
        /// `apiclient_key.pem`.
        key: PathBuf,
    },
    /// `p12` (+ `p12_password`, default the mch_id).
    Pkcs12 {
        /// `apiclient_cert.p12`.
        path: PathBuf,
        /// Its password.
        password: SecretString,
    },
}

/// `[merchants.NAME]`, resolved: secrets read, ids parsed.
#[derive(Clone, Debug)]
pub struct MerchantConfig {
    /// The section's name.
    pub name: String,
    /// `mch_id`.
    pub mch_id: MchId,
    /// `appid`: the official account's appid.
    pub appid: AppId,
    /// `api_key` (or `_file`, `_env`): the v2 key, for red packets. `None`
    /// for a merchant that pays by transfer alone (it has the v3 keys).
    pub api_key: Option<ApiKey>,
    /// `cert` + `key`, or `p12`.
    pub certificate: CertificateSource,
    /// `api_base`, default WeChat's.
    pub api_base: String,
    /// `root_ca`: an extra CA to trust.
    pub root_ca: Option<PathBuf>,
    /// `rate_per_minute`, default 1800.
    pub rate_per_minute: u32,
    /// `timeout_seconds`, default 15: how long one call to WeChat may take.
    pub timeout_seconds: u32,
    /// Defaults for the texts of a red packet.
    pub defaults: TextDefaults,
    /// `sub_mch_id`, `msgappid`, `consume_mch_id`.
    pub service_provider: Option<ServiceProvider>,
    /// `app_secret` (or `_file`, `_env`): for the follow check.
    pub app_secret: Option<SecretString>,
    /// `oa_base`: the official account API's host (default WeChat's;
    /// the sandbox serves it on its own address).
    pub oa_base: String,
    /// `miniprogram_appid`: the mini program for `type = "miniprogram"` red packets.
    pub miniprogram_appid: Option<AppId>,
    /// The APIv3 transfer keys, when any is given.
    pub v3: Option<V3Config>,
}

/// A merchant's APIv3 keys for transfers (商家转账). The API certificate
/// (`cert` + `key` or `p12`) signs; these verify, decrypt and fill in bills.
#[derive(Clone, Debug)]
pub struct V3Config {
    /// `apiv3_key` (or `_file`, `_env`): decrypts callbacks.
    pub apiv3_key: ApiV3Key,
    /// `wechatpay_public_key` + `wechatpay_public_key_id`: the 微信支付公钥.
    pub wechatpay_public_key: Option<(PathBuf, PublicKeyId)>,
    /// `platform_certs`: legacy verification (both may be given while switching).
    pub platform_certs: Vec<PathBuf>,
    /// `v3_base`, default WeChat's host.
    pub v3_base: String,
    /// `notify_url`: where WeChat posts outcomes.
    pub notify_url: Option<String>,
    /// `transfer_scene_id`, default `1000`.
    pub transfer_scene_id: TransferSceneId,
    /// `transfer_remark`: the default remark.
    pub transfer_remark: Option<String>,
    /// `activity_name`: scene 1000's 活动名称.
    pub activity_name: Option<String>,
    /// `reward_description`: scene 1000's 奖励说明.
    pub reward_description: Option<String>,
}

impl MerchantConfig {
    /// The ids the protocol library needs.
    pub fn wxpay_merchant(&self) -> hongbao_wxpay::Merchant {
        hongbao_wxpay::Merchant {
            mch_id: self.mch_id.clone(),
            appid: self.appid.clone(),
            service_provider: self.service_provider.clone(),
        }
    }
}

/// A merchant's default texts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextDefaults {
    /// `send_name`.
    pub send_name: Option<String>,
    /// `client_ip`.
    pub client_ip: Option<String>,
    /// `wishing`.
    pub wishing: Option<String>,
    /// `act_name`.
    pub act_name: Option<String>,
    /// `remark`.
    pub remark: Option<String>,
}

/// `[tenants.NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantConfig {
    /// The section's name.
    pub name: String,
    /// SHA-256 of each bearer token (lower-case hex), never the tokens.
    pub api_keys_sha256: Vec<[u8; 32]>,
    /// The merchants this tenant may use and see.
    pub merchants: Vec<String>,
}

/// Collects problems while resolving.
struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

impl Config {
    /// Loads `file` with its environment overrides.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given (for tests).
    pub fn load_with_env(
        file: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (raw, mut problems) = raw_config(file, env)?;
        let base_dir = file.parent().map(Path::to_owned).unwrap_or_default();
        match resolve(raw, Some(file.to_owned()), &base_dir) {
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(ConfigError {
                file: Some(file.to_owned()),
                problems,
            }),
            Err(e) => {
                // A key left out for its type is not also "required".
                let left_out: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
                problems.extend(
                    e.problems
                        .into_iter()
                        .filter(|p| !left_out.contains(&p.key)),
                );
                Err(ConfigError {
                    file: Some(file.to_owned()),
                    problems,
                })
            }
        }
    }

    /// Each merchant of `file` that is usable on its own, and the problems
    /// of those that are not: `hongbao doctor` checks every usable merchant
    /// even when another part of the file is broken.
    pub fn load_merchants(
        file: &Path,
    ) -> Result<(BTreeMap<String, MerchantConfig>, Vec<Problem>), ConfigError> {
        let (raw, early) = raw_config(file, std::env::vars())?;
        let mut problems = Problems { list: Vec::new() };
        let mut merchants = BTreeMap::new();
        for (name, raw) in raw.merchants {
            let prefix = format!("merchants.{name}.");
            let flawed = early.iter().any(|p| p.key.starts_with(&prefix));
            if let Some(merchant) = resolve_merchant(&name, raw, &mut problems)
                && !flawed
            {
                merchants.insert(name, merchant);
            }
        }
        let mut all = early;
        all.extend(problems.list);
        Ok((merchants, all))
    }
}

/// The file with its `HONGBAO_*` overrides, as written (nothing resolved),
/// and a problem for each key that is unknown or of the wrong type. Such a
/// key is left out, so that everything else is still read and checked:
/// every problem of the file is reported at once.
fn raw_config(
    file: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(RawConfig, Vec<Problem>), ConfigError> {
    if !file.is_file() {
        return Err(ConfigError::one(
            Some(file.to_owned()),
            "--config",
            format!(
                "{} does not exist; give an existing file, or none for sandbox mode",
                file.display()
            ),
        ));
    }
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("HONGBAO_") && k.as_str() != CONFIG_ENV)
        .collect();
    let figment = Figment::new()
        .merge(Toml::file_exact(file))
        .merge(EnvOverrides(env));
    let mut problems: Vec<Problem> = Vec::new();
    let mut left_out = LeftOut(Vec::new());
    // Each round leaves out one more key; a key is tried with up to three
    // stand-ins (nothing, an empty table, an empty list) before giving up.
    for _ in 0..LEFT_OUT_MAX {
        let attempt = figment.clone().merge(left_out.clone());
        let error = match attempt.extract::<Tracked>() {
            Ok(Tracked { raw, unknown }) => {
                let mut all: Vec<Problem> = unknown
                    .into_iter()
                    .map(|key| {
                        let name = key.rsplit('.').next().unwrap_or(&key).to_owned();
                        let message = from_source(
                            &attempt,
                            &key,
                            format!("unknown key {name:?}; see docs/configuration.md for the keys"),
                        );
                        Problem { key, message }
                    })
                    .collect();
                all.extend(problems);
                return Ok((raw, all));
            }
            Err(e) => e,
        };
        let path: Vec<String> = error
            .path
            .iter()
            .take_while(|segment| !segment.bytes().all(|b| b.is_ascii_digit()))
            .cloned()
            .collect();
        let found = from_figment(file, error).problems;
        if path.is_empty() || !left_out.leave_out(path.join(".")) {
            // A syntax error, or a key no stand-in fits: nothing more to read.
            problems.extend(found);
            return Err(ConfigError {
                file: Some(file.to_owned()),
                problems,
            });
        }
        for problem in found {
            if !problems.iter().any(|p| p.key == problem.key) {
                problems.push(problem);
            }
        }
    }
    Err(ConfigError {
        file: Some(file.to_owned()),
        problems,
    })
}

/// How many keys may be left out of one file (wrong types) before the
/// rest is not read.
const LEFT_OUT_MAX: usize = 64;

/// A configuration, and the keys of it that are no configuration key.
struct Tracked {
    raw: RawConfig,
    unknown: Vec<String>,
}

impl<'de> Deserialize<'de> for Tracked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut unknown = Vec::new();
        let raw = serde_ignored::deserialize(d, |path| unknown.push(dotted(&path)))?;
        Ok(Tracked { raw, unknown })
    }
}

/// `merchants.main.mch_idd`.
fn dotted(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => join(dotted(parent), &index.to_string()),
        Path::Map { parent, key } => join(dotted(parent), key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => dotted(parent),
    }
}

fn join(mut parent: String, key: &str) -> String {
    if !parent.is_empty() {
        parent.push('.');
    }
    parent.push_str(key);
    parent
}

/// Says so when the value at `key` came from an environment variable.
fn from_source(figment: &Figment, key: &str, message: String) -> String {
    match figment.find_metadata(key) {
        Some(meta) if meta.name == "environment variable" => {
            format!("{message} (from the environment)")
        }
        _ => message,
    }
}

/// Keys left out of the file (each replaced by a stand-in that reads as
/// "not given"), so that one bad value does not hide the other problems.
#[derive(Clone)]
struct LeftOut(Vec<(String, u8)>);

impl LeftOut {
    /// Leaves `key` out, or tries its next stand-in; false when none is left.
    fn leave_out(&mut self, key: String) -> bool {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, tries)) if *tries >= 2 => false,
            Some((_, tries)) => {
                *tries += 1;
                true
            }
            None => {
                self.0.push((key, 0));
                true
            }
        }
    }
}

impl figment::Provider for LeftOut {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("left out")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Empty, Tag, Value};
        let mut dict = Dict::new();
        for (key, tries) in &self.0 {
            let stand_in = match tries {
                0 => Value::Empty(Tag::Default, Empty::None),
                1 => Value::Dict(Tag::Default, Dict::new()),
                _ => Value::Array(Tag::Default, Vec::new()),
            };
            if let Value::Dict(_, nested) = figment::util::nest(key, stand_in) {
                merge_dict(&mut dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

impl Config {
    /// The tenant owning `token`'s SHA-256, compared in constant time.
    pub fn tenant_for_token(&self, token: &str) -> Option<&TenantConfig> {
        find_tenant(self.tenants.values(), token)
    }
}

/// The tenant among `tenants` whose key hashes include SHA-256(`token`).
/// Every hash is compared, in constant time, so timing says nothing about
/// which one matched, or how much of it.
pub fn find_tenant<'a>(
    tenants: impl IntoIterator<Item = &'a TenantConfig>,
    token: &str,
) -> Option<&'a TenantConfig> {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
    let mut found = None;
    for tenant in tenants {
        for key in &tenant.api_keys_sha256 {
            if bool::from(key.ct_eq(&digest)) && found.is_none() {
                found = Some(tenant);
            }
        }
    }
    found
}

/// `HONGBAO_A__B__C=v` → `a.b.c = v`, from a given list of variables
/// (the process environment in production, a list in tests). Values are
/// read as figment reads environment values (`600` is a number, `[a, b]`
/// a list); string keys accept numbers.
struct EnvOverrides(Vec<(String, String)>);

impl figment::Provider for EnvOverrides {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("environment variable")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut dict = figment::value::Dict::new();
        for (name, value) in &self.0 {
            let key = name
                .trim_start_matches("HONGBAO_")
                .to_ascii_lowercase()
                .replace("__", ".");
            let value: figment::value::Value =
                value.parse().expect("parsing a value is infallible");
            if let figment::value::Value::Dict(_, nested) = figment::util::nest(&key, value) {
                merge_dict(&mut dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

fn merge_dict(into: &mut figment::value::Dict, from: figment::value::Dict) {
    use figment::value::Value;
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, incoming)) => {
                merge_dict(existing, incoming)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn from_figment(file: &Path, e: figment::Error) -> ConfigError {
    let problems = e
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "(file)".to_owned()
            } else {
                e.path.join(".")
            };
            let message = match &e.kind {
                figment::error::Kind::UnknownField(field, _) => {
                    format!("unknown key {field:?}; see docs/configuration.md for the keys")
                }
                _ => e.kind.to_string(),
            };
            let message = match &e.metadata {
                Some(meta) if meta.name == "environment variable" => {
                    format!("{message} (from the environment)")
                }
                _ => message,
            };
            Problem { key, message }
        })
        .collect();
    ConfigError {
        file: Some(file.to_owned()),
        problems,
    }
}

fn relative(path: &RelativePathBuf) -> PathBuf {
    path.relative()
}

fn resolve(raw: RawConfig, file: Option<PathBuf>, base_dir: &Path) -> Result<Config, ConfigError> {
    let mut problems = Problems { list: Vec::new() };

    let listen = match raw.server.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(Text(text)) => text.parse().unwrap_or_else(|_| {
            problems.add(
                "server.listen",
                format!("{text:?} is not an address; write it as \"127.0.0.1:8080\""),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }),
    };
    let seconds = |key: &str, value: Option<u32>, default: u64, problems: &mut Problems| match value
    {
        None => std::time::Duration::from_secs(default),
        Some(0) => {
            problems.add(format!("server.{key}"), "must be at least 1");
            std::time::Duration::from_secs(default)
        }
        Some(s) => std::time::Duration::from_secs(u64::from(s)),
    };
    let header_timeout = seconds(
        "header_timeout_seconds",
        raw.server.header_timeout_seconds,
        10,
        &mut problems,
    );
    let body_timeout = seconds(
        "body_timeout_seconds",
        raw.server.body_timeout_seconds,
        60,
        &mut problems,
    );
    let idle_timeout = seconds(
        "idle_timeout_seconds",
        raw.server.idle_timeout_seconds,
        75,
        &mut problems,
    );
    let max_connections = raw.server.max_connections;
    if max_connections == Some(0) {
        problems.add("server.max_connections", "must be at least 1");
    }
    let metrics_listen = raw.server.metrics_listen.as_ref().and_then(|Text(text)| {
        let parsed = text.parse().ok();
        if parsed.is_none() {
            problems.add(
                "server.metrics_listen",
                format!("{text:?} is not an address; write it as \"127.0.0.1:9090\""),
            );
        }
        parsed
    });
    let data_dir = raw
        .server
        .data_dir
        .as_ref()
        .map_or_else(|| base_dir.join("hongbao-data"), relative);
    let url = match raw.database.url {
        None => sqlite_url(&data_dir.join("hongbao.db")),
        Some(Text(url)) => resolve_database_url(&url, base_dir).unwrap_or_else(|message| {
            problems.add("database.url", message);
            url
        }),
    };

    let migrate = match raw.database.migrate.as_ref().map(|t| t.0.trim()) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            problems.add(
                "database.migrate",
                format!("{other:?} is not true or false"),
            );
            true
        }
    };

    let billno_deployment = match &raw.database.billno_deployment {
        None => hongbao_wxpay::BillnoDeployment::default(),
        Some(Text(text)) => {
            hongbao_wxpay::BillnoDeployment::parse(text.trim()).unwrap_or_else(|e| {
                problems.add("database.billno_deployment", e.message);
                hongbao_wxpay::BillnoDeployment::default()
            })
        }
    };

    let mut merchants = BTreeMap::new();
    for (name, raw) in raw.merchants {
        if let Some(merchant) = resolve_merchant(&name, raw, &mut problems) {
            merchants.insert(name, merchant);
        }
    }

    let dispatch = resolve_dispatch(&raw.dispatch, &merchants, &mut problems);

    let mut tenants = BTreeMap::new();
    for (name, raw) in raw.tenants {
        let mut keys = Vec::new();
        for (i, Text(hex)) in raw.api_keys_sha256.iter().enumerate() {
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(hex.trim(), &mut digest).is_ok() {
                keys.push(digest);
            } else {
                problems.add(
                    format!("tenants.{name}.api_keys_sha256[{i}]"),
                    "must be the 64 hex digits of a SHA-256 (e.g. `printf %s \"$TOKEN\" | sha256sum`), never the token itself",
                );
            }
        }
        if keys.is_empty() && raw.api_keys_sha256.is_empty() {
            problems.add(
                format!("tenants.{name}.api_keys_sha256"),
                "a tenant needs at least one key hash to be usable",
            );
        }
        let mut tenant_merchants = Vec::new();
        for Text(merchant) in raw.merchants {
            if !merchants.contains_key(&merchant)
                && !problems
                    .list
                    .iter()
                    .any(|p| p.key.starts_with(&format!("merchants.{merchant}.")))
            {
                problems.add(
                    format!("tenants.{name}.merchants"),
                    format!("no merchant named {merchant:?}; define [merchants.{merchant}]"),
                );
            }
            tenant_merchants.push(merchant);
        }
        tenants.insert(
            name.clone(),
            TenantConfig {
                name,
                api_keys_sha256: keys,
                merchants: tenant_merchants,
            },
        );
    }

    if !problems.list.is_empty() {
        return Err(ConfigError {
            file,
            problems: problems.list,
        });
    }
    Ok(Config {
        file,
        server: ServerConfig {
            listen,
            data_dir,
            header_timeout,
            body_timeout,
            idle_timeout,
            max_connections,
            metrics_listen,
        },
        database: DatabaseConfig {
            url,
            migrate,
            billno_deployment,
        },
        dispatch,
        merchants,
        tenants,
    })
}

fn resolve_dispatch(
    raw: &RawDispatch,
    merchants: &BTreeMap<String, MerchantConfig>,
    problems: &mut Problems,
) -> DispatchSettings {
    let defaults = DispatchSettings::default();
    let lease = raw.lease_seconds.map_or(defaults.lease, |s| {
        std::time::Duration::from_secs(u64::from(s))
    });
    let slowest = merchants
        .values()
        .map(|m| m.timeout_seconds)
        .max()
        .unwrap_or(15);
    if lease < std::time::Duration::from_secs(u64::from(slowest) * 2) {
        problems.add(
            "dispatch.lease_seconds",
            format!(
                "{} s is too short: a lease must outlast two calls to WeChat ({slowest} s each, timeout_seconds); use at least {}",
                lease.as_secs(),
                slowest * 2
            ),
        );
    }
    let max_in_flight = raw
        .max_in_flight
        .map_or(defaults.max_in_flight, |n| usize::try_from(n).unwrap_or(64));
    if max_in_flight == 0 {
        problems.add("dispatch.max_in_flight", "must be at least 1");
    }
    DispatchSettings {
        lease,
        max_in_flight,
    }
}

/// A `sqlite://` URL for a file path.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Makes a relative SQLite path relative to the config file's directory.
fn resolve_database_url(url: &str, base_dir: &Path) -> Result<String, String> {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path.is_empty() || path == ":memory:" {
            return Ok(url.to_owned());
        }
        let path = Path::new(path);
        let full = if path.is_absolute() {
            path.to_owned()
        } else {
            base_dir.join(path)
        };
        let mut resolved = sqlite_url(&full);
        if let Some(q) = query {
            resolved.push('?');
            resolved.push_str(q);
        }
        return Ok(resolved);
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_owned());
    }
    Err(format!(
        "{url:?} is neither sqlite://PATH nor postgres://USER@HOST/DB"
    ))
}

/// A merchant for unit tests: the documentation's example account, with
/// PEM paths that are never read.
#[cfg(test)]
pub(crate) fn example_merchant() -> MerchantConfig {
    MerchantConfig {
        name: "main".into(),
        mch_id: MchId::parse("1900000109").expect("an example mch_id"),
        appid: AppId::parse("wx8888888888888888").expect("an example appid"),
        api_key: Some(ApiKey::parse("192006250b4c09247ec02edce69f6a2d").expect("an example key")),
        certificate: CertificateSource::Pem {
            cert: "c".into(),
            key: "k".into(),
        },
        api_base: "https://api.mch.weixin.qq.com".into(),
        root_ca: None,
        rate_per_minute: 1800,
        timeout_seconds: 15,
        defaults: TextDefaults {
            send_name: Some("天虹百货".into()),
            client_ip: None,
            wishing: Some("恭喜发财".into()),
            act_name: Some("新年红包".into()),
            remark: Some("新年红包".into()),
        },
        service_provider: None,
        app_secret: None,
        oa_base: "https://api.weixin.qq.com".into(),
        miniprogram_appid: None,
        v3: None,
    }
}

/// [`example_merchant`] with APIv3 keys and transfer defaults.
#[cfg(test)]
pub(crate) fn example_merchant_v3() -> MerchantConfig {
    MerchantConfig {
        v3: Some(V3Config {
            apiv3_key: ApiV3Key::parse("0123456789abcdefghijABCDEFGHIJkl").expect("32 characters"),
            wechatpay_public_key: None,
            platform_certs: Vec::new(),
            v3_base: "https://api.mch.weixin.qq.com".into(),
            notify_url: None,
            transfer_scene_id: TransferSceneId::cash_marketing(),
            transfer_remark: Some("活动奖励".into()),
            activity_name: Some("新年抽奖".into()),
            reward_description: Some("抽奖现金奖励".into()),
        }),
        ..example_merchant()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hongbao-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    const V2_MERCHANT: &str = r#"
[merchants.main]
mch_id = "1900000109"
appid = "wx8888888888888888"
api_key = "192006250b4c09247ec02edce69f6a2d"
cert = "apiclient_cert.pem"
key = "apiclient_key.pem"
"#;

    #[test]
    fn the_v3_keys_are_optional_and_read_with_paths_relative_to_the_file() {
        let dir = temp_dir("v3-keys");
        write(&dir, "apiv3_key", "0123456789abcdefghijklmnopqrstuv\n");
        let text = format!(
            "{V2_MERCHANT}apiv3_key_file = \"apiv3_key\"\n\
             wechatpay_public_key = \"certs/pub_key.pem\"\n\
             wechatpay_public_key_id = \"PUB_KEY_ID_0114232134912410000000000000\"\n\
             platform_certs = [\"certs/wechatpay_platform.pem\"]\n\
             v3_base = \"https://api.mch.weixin.qq.com/\"\n\
             notify_url = \"https://pay.example.com/v1/notify/transfers/main\"\n\
             transfer_remark = \"活动奖励\"\n\
             activity_name = \"新年抽奖\"\n\
             reward_description = \"抽奖现金奖励\"\n"
        );
        let file = write(&dir, "hongbao.toml", &text);
        let config = Config::load_with_env(&file, []).unwrap();
        let v3 = config.merchants["main"].v3.clone().unwrap();
        let (path, id) = v3.wechatpay_public_key.unwrap();
        assert_eq!(path, dir.join("certs/pub_key.pem"));
        assert_eq!(id.as_str(), "PUB_KEY_ID_0114232134912410000000000000");
        assert_eq!(
            v3.platform_certs,
            vec![dir.join("certs/wechatpay_platform.pem")]
        );
        assert_eq!(v3.v3_base, "https://api.mch.weixin.qq.com");
        assert_eq!(v3.transfer_scene_id.as_str(), "1000");
        assert_eq!(v3.activity_name.as_deref(), Some("新年抽奖"));
        assert!(!format!("{:?}", v3.apiv3_key).contains("0123456789"));
        // Without any v3 key, a merchant is a red packet merchant only.
        let plain = write(&dir, "plain.toml", V2_MERCHANT);
        assert!(
            Config::load_with_env(&plain, []).unwrap().merchants["main"]
                .v3
                .is_none()
        );
    }

    #[test]
    fn v3_problems_name_their_field_and_never_repeat_the_secret() {
        let dir = temp_dir("v3-problems");
        let text = format!(
            "{V2_MERCHANT}apiv3_key = \"tooshortsecretvalue\"\n\
             wechatpay_public_key = \"pub_key.pem\"\n\
             wechatpay_public_key_id = \"5157F09EFDC096DE15EBE81A47057A7232F1B8E1\"\n\
             notify_url = \"https://pay.example.com/notify?merchant=main\"\n\
             transfer_scene_id = \"cash\"\n\
             activity_name = \"{}\"\n",
            "活".repeat(33)
        );
        let file = write(&dir, "hongbao.toml", &text);
        let err = Config::load_with_env(&file, []).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "merchants.main.apiv3_key",
            "merchants.main.wechatpay_public_key_id",
            "merchants.main.notify_url",
            "merchants.main.transfer_scene_id",
            "merchants.main.activity_name",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        assert!(!err.to_string().contains("tooshortsecretvalue"), "{err}");
        // A verification key is needed.
        let only_key = write(
            &dir,
            "only_key.toml",
            &format!("{V2_MERCHANT}apiv3_key = \"0123456789abcdefghijklmnopqrstuv\"\n"),
        );
        let err = Config::load_with_env(&only_key, []).unwrap_err();
        assert_eq!(
            err.problems[0].key, "merchants.main.wechatpay_public_key",
            "{err}"
        );
        assert!(err.to_string().contains("platform_certs"));
    }

    #[test]
    fn the_documented_file_loads_with_paths_relative_to_it() {
        let dir = temp_dir("documented");
        std::fs::create_dir_all(dir.join("secrets")).unwrap();
        write(&dir, "secrets/wxpay_api_key", &format!("{KEY}\n"));
        let file = write(
            &dir,
            "hongbao.toml",
            r#"
[server]
listen = "127.0.0.1:8080"
data_dir = "hongbao-data"

[database]
url = "sqlite://hongbao-data/hongbao.db"

[merchants.main]
mch_id = "1900000109"
appid = "wx8888888888888888"
api_key_file = "secrets/wxpay_api_key"
cert = "certs/apiclient_cert.pem"
key = "certs/apiclient_key.pem"
api_base = "https://api.mch.weixin.qq.com"
root_ca = "certs/ca.pem"
rate_per_minute = 1800
send_name = "天虹百货"
client_ip = "10.0.0.1"
act_name = "新年红包"
wishing = "恭喜发财"
remark = "新年红包"

[tenants.acme]
api_keys_sha256 = ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
merchants = ["main"]
"#,
        );
        let config = Config::load_with_env(&file, []).unwrap();
        assert_eq!(config.server.data_dir, dir.join("hongbao-data"));
        assert_eq!(
            config.database.url,
            format!("sqlite://{}", dir.join("hongbao-data/hongbao.db").display())
        );
        let main = &config.merchants["main"];
        assert_eq!(main.mch_id.as_str(), "1900000109");
        assert_eq!(main.rate_per_minute, 1800);
        assert_eq!(main.defaults.send_name.as_deref(), Some("天虹百货"));
        match &main.certificate {
            CertificateSource::Pem { cert, .. } => {
                assert_eq!(cert, &dir.join("certs/apiclient_cert.pem"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            main.root_ca.as_deref(),
            Some(dir.join("certs/ca.pem").as_path())
        );
        // sha256("test")
        assert_eq!(
            config.tenant_for_token("test").map(|t| t.name.as_str()),
            Some("acme")
        );
        assert!(config.tenant_for_token("other").is_none());
    }

    #[test]
    fn environment_overrides_any_key_and_numbers_are_fine_as_strings() {
        let dir = temp_dir("env");
        let file = write(
            &dir,
            "hongbao.toml",
            &format!(
                "[merchants.main]\nmch_id = 1900000109\nappid = \"wx8888888888888888\"\napi_key = \"{KEY}\"\np12 = \"apiclient_cert.p12\"\n"
            ),
        );
        let env = [
            (
                "HONGBAO_MERCHANTS__MAIN__RATE_PER_MINUTE".to_owned(),
                "600".to_owned(),
            ),
            (
                "HONGBAO_SERVER__LISTEN".to_owned(),
                "0.0.0.0:9000".to_owned(),
            ),
        ];
        let config = Config::load_with_env(&file, env).unwrap();
        let main = &config.merchants["main"];
        assert_eq!(main.rate_per_minute, 600);
        assert_eq!(config.server.listen, "0.0.0.0:9000".parse().unwrap());
        match &main.certificate {
            CertificateSource::Pkcs12 { path, password } => {
                assert_eq!(path, &dir.join("apiclient_cert.p12"));
                use secrecy::ExposeSecret;
                assert_eq!(
                    password.expose_secret(),
                    "1900000109",
                    "the default p12 password is the mch_id"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_key_and_fix() {
        let dir = temp_dir("problems");
        let file = write(
            &dir,
            "hongbao.toml",
            r#"
[server]
listen = "localhost"

[merchants.main]
mch_id = "19000x"
api_key = "short"
cert = "apiclient_cert.pem"
client_ip = "::1"

[tenants.acme]
api_keys_sha256 = ["not-hex"]
merchants = ["nope"]
"#,
        );
        let err = Config::load_with_env(&file, []).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "server.listen",
            "merchants.main.mch_id",
            "merchants.main.appid",
            "merchants.main.api_key",
            "merchants.main.key",
            "merchants.main.client_ip",
            "tenants.acme.api_keys_sha256[0]",
            "tenants.acme.merchants",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        let text = err.to_string();
        assert!(text.contains("api_key_file"), "{text}");
        assert!(
            !text.contains("short\""),
            "the API key must not be repeated: {text}"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_named() {
        let dir = temp_dir("unknown");
        let file = write(&dir, "hongbao.toml", "[merchants.main]\nmch_idd = \"1\"\n");
        let err = Config::load_with_env(&file, []).unwrap_err();
        assert_eq!(err.problems[0].key, "merchants.main.mch_idd");
        assert!(err.problems[0].message.contains("unknown key"), "{err}");
        let file = write(
            &dir,
            "hongbao.toml",
            "[merchants.main]\nrate_per_minute = \"fast\"\n",
        );
        let err = Config::load_with_env(&file, []).unwrap_err();
        assert_eq!(err.problems[0].key, "merchants.main.rate_per_minute");
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_reported_with_every_other_problem() {
        let dir = temp_dir("all-at-once");
        let file = write(
            &dir,
            "hongbao.toml",
            r#"
[servr]
listen = "127.0.0.1:1"

[server]
listen = "localhost"

[merchants.main]
mch_id = 1900000109.5
mch_idd = "1"
rate_per_minute = "fast"
api_key = "short"

[tenants.acme]
api_keys_sha256 = 7
merchants = ["main"]
"#,
        );
        let env = [("HONGBAO_DISPATCH__LEASE".to_owned(), "30".to_owned())];
        let err = Config::load_with_env(&file, env).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "servr",
            "dispatch.lease",
            "merchants.main.mch_idd",
            "merchants.main.mch_id",
            "merchants.main.rate_per_minute",
            "tenants.acme.api_keys_sha256",
            "server.listen",
            "merchants.main.appid",
            "merchants.main.api_key",
            "merchants.main.cert",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        // Each once: a value of the wrong type is not also "required".
        for key in &keys {
            assert_eq!(keys.iter().filter(|k| *k == key).count(), 1, "{keys:?}");
        }
        let text = err.to_string();
        assert!(text.contains("unknown key \"lease\""), "{text}");
        assert!(text.contains("(from the environment)"), "{text}");
        assert!(text.contains("decimal number"), "{text}");
        assert!(text.contains("\"fast\" is not a whole number"), "{text}");
    }

    #[test]
    fn a_syntax_error_is_reported_alone() {
        let dir = temp_dir("syntax");
        let file = write(&dir, "hongbao.toml", "[merchants.main\nmch_id = 1\n");
        let err = Config::load_with_env(&file, []).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
    }

    #[test]
    fn a_missing_file_says_so() {
        let err = Config::load_with_env(Path::new("/nonexistent/hongbao.toml"), []).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn connection_limits_are_read_from_server_and_zero_is_refused() {
        let dir = temp_dir("limits");
        let file = write(
            &dir,
            "hongbao.toml",
            "[server]\nheader_timeout_seconds = 3\nmetrics_listen = \"127.0.0.1:9090\"\n",
        );
        let env = [(
            "HONGBAO_SERVER__MAX_CONNECTIONS".to_owned(),
            "100".to_owned(),
        )];
        let server = Config::load_with_env(&file, env).unwrap().server;
        assert_eq!(server.header_timeout, std::time::Duration::from_secs(3));
        assert_eq!(server.body_timeout, std::time::Duration::from_secs(60));
        assert_eq!(server.idle_timeout, std::time::Duration::from_secs(75));
        assert_eq!(server.max_connections, Some(100));
        assert_eq!(
            server.metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );

        let file = write(
            &dir,
            "hongbao.toml",
            "[server]\nidle_timeout_seconds = 0\nmax_connections = 0\nmetrics_listen = \"metrics\"\n",
        );
        let err = Config::load_with_env(&file, []).unwrap_err().to_string();
        for key in [
            "server.idle_timeout_seconds",
            "server.max_connections",
            "server.metrics_listen",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
