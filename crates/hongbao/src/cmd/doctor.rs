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
    // A broken part of the file is reported, and every merchant that is
    // usable on its own is still checked; the exit code is then 2, as for
    // every command given an unusable configuration.
    let (merchants, usable) = match Config::load(&file) {
        Ok(config) => (config.merchants, true),
        Err(e) => {
            out!("✗ {e}");
            match Config::load_merchants(&file) {
                Ok((merchants, _)) => (merchants, false),
                Err(_) => return Err(unusable(&file)),
            }
        }
    };
    if merchants.is_empty() {
        if usable {
            out!("✗ {} defines no [merchants.NAME] section", file.display());
        }
        return Err(unusable(&file));
    }
    let mut all_pass = true;
    for merchant in merchants.values() {
        out!(
            "merchant {} (mch_id {}, {})",
            merchant.name,
            merchant.mch_id,
            merchant.api_base
        );
        if let Some(v3) = &merchant.v3
            && v3.v3_base != merchant.api_base
        {
            println!("  APIv3 at {}", v3.v3_base);
        }
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
            out!("  {mark} {}: {}", check.name, check.message);
        }
    }
    if !usable {
        return Err(unusable(&file));
    }
    Ok(if all_pass {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

fn unusable(file: &std::path::Path) -> Error {
    Error::Usage(format!(
        "the configuration {} is not usable: fix the problems above (see docs/configuration.md)",
        file.display()
    ))
}
