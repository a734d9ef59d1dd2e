//! `hongbao serve`: the API, the dispatcher and reconciliation, until
//! SIGTERM or Ctrl-C.

use std::path::PathBuf;

use super::{Error, setup};
use crate::Outcome;

pub(crate) async fn run(config: Option<PathBuf>) -> super::Result {
    let setup = setup::load(config.as_deref()).await?;
    if setup.sandbox.as_ref().is_some_and(|s| s.embedded.is_none()) {
        return Err(Error::Usage(
            "another `hongbao serve` already runs in sandbox mode with this data directory; stop it, or set HONGBAO_SERVER__DATA_DIR to another directory".into(),
        ));
    }
    let config = &setup.config;
    if config.tenants.is_empty() {
        tracing::warn!("no [tenants.NAME] section: the API will refuse every request (401)");
    }
    // In sandbox mode the sandbox's callbacks come back to this instance.
    let admin = setup
        .sandbox
        .as_ref()
        .map(|s| s.admin_base.clone().unwrap_or_default());
    let running = hongbao_server::start_with(config, config.server.listen, admin)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let api = format!("http://{}", running.addr());
    match &setup.sandbox {
        Some(sandbox) => {
            let merchant = config
                .merchants
                .values()
                .next()
                .expect("sandbox mode has its merchant");
            out!("hongbao — SANDBOX MODE: a simulated WeChat Pay. No real money moves.");
            out!();
            out!("  API        {api}   (OpenAPI: {api}/openapi.json)");
            out!("  API key    {}", sandbox.api_key);
            out!("  console    {api}/console   (sign in with the API key)");
            out!(
                "  database   {}",
                sandbox.data_dir.join("hongbao.db").display()
            );
            out!(
                "  sandbox    {} (merchant {}, mch_id {})",
                sandbox.api_base,
                merchant.name,
                merchant.mch_id
            );
            if let Some(admin) = &sandbox.admin_base {
                out!("  sandbox admin  {admin}/ledger");
            }
            out!();
            out!("Send a red packet of 1.88 yuan and wait up to 5 s for the outcome:");
            out!(
                "  curl -s -X POST '{api}/v1/redpacks?wait=5' -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{\"re_openid\":\"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o\",\"total_amount\":188}}'",
                sandbox.api_key
            );
            out!();
            out!(
                "Pay 1.00 yuan by transfer bill (商家转账); the answer's confirm.package is what the user confirms:"
            );
            out!(
                "  curl -s -X POST '{api}/v1/transfers?wait=5' -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{\"openid\":\"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o\",\"transfer_amount\":100}}'",
                sandbox.api_key
            );
            if let Some(admin) = &sandbox.admin_base {
                out!(
                    "  then play the user: open {admin}/confirm?package=PACKAGE (docs/transfers.md)"
                );
            }
            out!();
            out!(
                "Use your own merchant with a configuration file: see docs/configuration.md. Stop with Ctrl-C."
            );
        }
        None => {
            let names: Vec<&str> = config.merchants.keys().map(String::as_str).collect();
            out!("hongbao serving {api} for merchants {}", names.join(", "));
            out!("console at {api}/console");
        }
    }
    if let Some(operator) = running.operator_addr() {
        out!(
            "every merchant's metrics and health for the operator at http://{operator}/metrics and /healthz (no API key)"
        );
    }
    tracing::info!(%api, "serving");
    super::wait_for_shutdown().await;
    tracing::info!("stopping: finishing calls in flight");
    running.stop().await;
    if let Some(sandbox) = setup.sandbox.and_then(|s| s.embedded) {
        sandbox.stop();
    }
    Ok(Outcome::Done)
}
