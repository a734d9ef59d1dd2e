//! What every command that pays or reads the ledger needs first: the
//! configuration, or sandbox mode when there is none.
//!
//! Sandbox mode keeps its state in the data directory (`./hongbao-data` by
//! default): the sandbox's identity and journal, the database, and the API
//! key. One process owns the embedded sandbox at a time (a lock file);
//! another command started meanwhile uses that process's sandbox.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hongbao_core::config::{self, Config, ConfigSource, TenantConfig};
use hongbao_sandbox::{Sandbox, SandboxConfig};
use rand::RngExt;

use super::Error;

/// The configuration in force, and what sandbox mode keeps alive.
pub(crate) struct Setup {
    /// The configuration (a file, or the one sandbox mode wrote).
    pub(crate) config: Config,
    /// Sandbox mode only.
    pub(crate) sandbox: Option<SandboxMode>,
}

/// Sandbox mode's parts.
pub(crate) struct SandboxMode {
    /// The data directory.
    pub(crate) data_dir: PathBuf,
    /// The bearer token of the sandbox tenant.
    pub(crate) api_key: String,
    /// The embedded sandbox, if this process owns it.
    pub(crate) embedded: Option<Sandbox>,
    /// The sandbox's API base (this process's or another's).
    pub(crate) api_base: String,
    /// The sandbox's admin API, if known.
    pub(crate) admin_base: Option<String>,
    /// Held while this process owns the sandbox.
    _lock: Option<File>,
}

/// The operator running a command: may use every merchant.
pub(crate) fn operator(config: &Config) -> TenantConfig {
    TenantConfig {
        name: "cli".into(),
        api_keys_sha256: Vec::new(),
        merchants: config.merchants.keys().cloned().collect(),
    }
}

/// Loads the configuration, or prepares sandbox mode.
pub(crate) async fn load(explicit: Option<&Path>) -> Result<Setup, Error> {
    match config::locate(explicit) {
        ConfigSource::File(file) => {
            let config = Config::load(&file).map_err(|e| Error::Usage(e.to_string()))?;
            if config.merchants.is_empty() {
                return Err(Error::Usage(format!(
                    "{} defines no merchant: add a [merchants.NAME] section (see docs/configuration.md)",
                    file.display()
                )));
            }
            Ok(Setup {
                config,
                sandbox: None,
            })
        }
        ConfigSource::Sandbox => sandbox_mode().await,
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

fn sandbox_api_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("sandbox-api-key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        let key = key.trim().to_owned();
        if !key.is_empty() {
            return Ok(key);
        }
    }
    let mut rng = rand::rng();
    let suffix: String = (0..32)
        .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
        .collect();
    let key = format!("hb_sandbox_{suffix}");
    write_private(&path, &format!("{key}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

async fn sandbox_mode() -> Result<Setup, Error> {
    let data_dir = std::env::var_os("HONGBAO_SERVER__DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("hongbao-data"));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .context("resolving the data directory")?;
    let api_key = sandbox_api_key(&data_dir)?;
    let config_path = data_dir.join("sandbox-mode.toml");
    let lock_path = data_dir.join("sandbox.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    let owned = lock.try_lock().is_ok();

    let (embedded, api_base, admin_base) = if owned {
        let mut sandbox_config = SandboxConfig::new(data_dir.join("sandbox"));
        sandbox_config.admin_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        let sandbox = Sandbox::start(sandbox_config)
            .await
            .map_err(|e| Error::Runtime(e.into()))?;
        let text = format!(
            "# Written by hongbao in sandbox mode; rewritten at every start.\n\
             [server]\nlisten = \"127.0.0.1:8080\"\ndata_dir = \".\"\n\n\
             [database]\nurl = \"sqlite://hongbao.db\"\n\n{}\n\
             [tenants.sandbox]\napi_keys_sha256 = [\"{}\"]\nmerchants = [\"sandbox\"]\n\n\
             # admin = \"{}\"\n",
            sandbox.merchant_toml("sandbox"),
            sha256_hex(&api_key),
            sandbox.admin_base().unwrap_or_default(),
        );
        write_private(&config_path, &text)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let (base, admin) = (sandbox.api_base(), sandbox.admin_base());
        (Some(sandbox), base, admin)
    } else {
        // Another hongbao process runs the sandbox: use it, through the
        // configuration it wrote.
        let text = std::fs::read_to_string(&config_path).map_err(|_| {
            Error::Usage(format!(
                "{} is locked by another hongbao process but has no sandbox-mode.toml; stop that process and try again",
                lock_path.display()
            ))
        })?;
        let admin = text
            .lines()
            .find_map(|l| l.strip_prefix("# admin = \""))
            .map(|a| a.trim_end_matches('"').to_owned())
            .filter(|a| !a.is_empty());
        let base = text
            .lines()
            .find_map(|l| l.strip_prefix("api_base = \""))
            .map(|a| a.trim_end_matches('"').to_owned())
            .unwrap_or_default();
        (None, base, admin)
    };
    let config = Config::load(&config_path).map_err(|e| Error::Runtime(anyhow::anyhow!("{e}")))?;
    Ok(Setup {
        config,
        sandbox: Some(SandboxMode {
            data_dir,
            api_key,
            embedded,
            api_base,
            admin_base,
            _lock: owned.then_some(lock),
        }),
    })
}
