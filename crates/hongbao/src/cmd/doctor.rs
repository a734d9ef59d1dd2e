//! `hongbao doctor`: every merchant's checks, printed with their fixes.

use std::path::PathBuf;

use hongbao_core::config::{self, Config, ConfigSource};
use hongbao_core::doctor::{Status, check_merchant};

use super::Error;
use crate::Outcome;

pub(crate) async fn run(config: Option<PathBuf>) -> super::Result {
    let file = match config::locate(config.as_deref()) {
        ConfigSource::File(file) => file,
        ConfigSource::Sandbox => {
            return Err(Error::Usage(
                "no configuration: give --config FILE, set HONGBAO_CONFIG, or create ./hongbao.toml (see docs/configuration.md)".into(),
            ));
        }
    };
    let config = match Config::load(&file) {
        Ok(config) => config,
        Err(e) => {
            println!("✗ {e}");
            return Ok(Outcome::Failed);
        }
    };
    if config.merchants.is_empty() {
        println!("✗ {} defines no [merchants.NAME] section", file.display());
        return Ok(Outcome::Failed);
    }
    let mut all_pass = true;
    for merchant in config.merchants.values() {
        println!(
            "merchant {} (mch_id {}, {})",
            merchant.name, merchant.mch_id, merchant.api_base
        );
        for check in check_merchant(merchant).await {
            let mark = match check.status {
                Status::Pass => "✓",
                Status::Warn => "!",
                Status::Fail => "✗",
                Status::Skipped => "-",
            };
            if matches!(check.status, Status::Fail | Status::Skipped) {
                all_pass = false;
            }
            println!("  {mark} {}: {}", check.name, check.message);
        }
    }
    Ok(if all_pass {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}
