//! `hongbao send`: one payout through the ledger, dispatched in this
//! process, waiting for its outcome.

use std::path::PathBuf;
use std::time::Duration;

use hongbao_core::dispatch::{DispatchConfig, Dispatcher};
use hongbao_core::ledger::{Idempotency, Scope};
use hongbao_core::model::{Kind, RedpackInput, Status};
use hongbao_wxpay::Fen;
use tokio::sync::watch;

use super::{Error, setup};
use crate::Outcome;

/// Send one red packet and wait for its outcome.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The receiver's openid.
    #[arg(long)]
    openid: String,
    /// The amount in yuan, e.g. 1.88 (of the whole group for --type group).
    #[arg(long, value_name = "YUAN")]
    amount: String,
    /// normal, group (fission) or miniprogram.
    #[arg(long = "type", default_value = "normal", value_name = "TYPE")]
    kind: String,
    /// The number of shares of a group red packet (3 to 20).
    #[arg(long, value_name = "N")]
    num: Option<u32>,
    /// The merchant (required when several are configured).
    #[arg(long)]
    merchant: Option<String>,
    /// The sender's name (default: the merchant's send_name).
    #[arg(long)]
    send_name: Option<String>,
    /// The blessing (default: the merchant's wishing).
    #[arg(long)]
    wishing: Option<String>,
    /// The activity's name (default: the merchant's act_name).
    #[arg(long)]
    act_name: Option<String>,
    /// A remark (default: the merchant's remark).
    #[arg(long)]
    remark: Option<String>,
    /// The scene (PRODUCT_1 … PRODUCT_8), required outside 1.00–200.00 yuan.
    #[arg(long)]
    scene_id: Option<String>,
    /// Risk information, URL-encoded.
    #[arg(long)]
    risk_info: Option<String>,
    /// Makes the command safe to repeat: the same key and parameters pay once.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// How long to wait for the outcome, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    wait: u64,
}

pub(crate) async fn run(config: Option<PathBuf>, args: Args) -> super::Result {
    let kind: Kind = args
        .kind
        .parse()
        .map_err(|e: hongbao_wxpay::InvalidField| Error::Usage(format!("--type: {}", e.message)))?;
    let amount = Fen::parse_yuan(&args.amount)
        .map_err(|e| Error::Usage(format!("--amount: {}", e.message)))?;
    let setup = setup::load(config.as_deref()).await?;
    let payouts = hongbao_server::services(&setup.config)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let operator = setup::operator(&setup.config);
    let input = RedpackInput {
        kind,
        merchant: args.merchant.clone(),
        re_openid: args.openid.clone(),
        total_amount: amount.get(),
        total_num: args.num,
        send_name: args.send_name.clone(),
        wishing: args.wishing.clone(),
        act_name: args.act_name.clone(),
        remark: args.remark.clone(),
        scene_id: args.scene_id.clone(),
        risk_info: args.risk_info.clone(),
    };
    let idempotency = args.idempotency_key.clone().map(|key| {
        use sha2::Digest;
        let text = serde_json::to_string(&input).unwrap_or_default();
        Idempotency {
            key,
            request_hash: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        }
    });
    let stored = payouts
        .create(&operator, &input, idempotency, None, None)
        .await
        .map_err(|e| match e {
            hongbao_core::payouts::CreateError::Invalid(f) => Error::Usage(format!(
                "{} {}\n       {} {}",
                f.field, f.message, f.field, f.zh_message
            )),
            other => Error::Runtime(other.into()),
        })?;
    let record = stored.record().clone();
    out!(
        "stored {}  mch_billno {}  {} yuan to {}",
        record.id,
        record.mch_billno,
        record.total_amount,
        record.re_openid
    );

    let (stop, stopped) = watch::channel(false);
    let mut dispatch = DispatchConfig::new();
    dispatch.lease = setup.config.dispatch.lease;
    dispatch.scope = Scope::Records(vec![record.id.clone()]);
    dispatch.reconcile = false;
    let dispatcher = Dispatcher::start(
        payouts.ledger().clone(),
        payouts.merchants(),
        payouts.events().clone(),
        payouts.metrics().clone(),
        dispatch,
        &stopped,
    );
    let settled = payouts
        .wait(&record.id, Duration::from_secs(args.wait))
        .await;
    let _ = stop.send(true);
    dispatcher.finish().await;
    let settled = settled
        .map_err(|e| Error::Runtime(e.into()))?
        .unwrap_or(record);
    match settled.status {
        Status::Sent | Status::Received | Status::Refunding | Status::Refunded => {
            out!(
                "{}  send_listid {}  after {} attempt(s)",
                settled.status,
                settled.send_listid.as_deref().unwrap_or("-"),
                settled.attempts
            );
            Ok(Outcome::Done)
        }
        Status::Failed => {
            out!(
                "failed  {}: {}\n        {}",
                settled.err_code.as_deref().unwrap_or("-"),
                settled.message.as_deref().unwrap_or_default(),
                settled.zh_message.as_deref().unwrap_or_default()
            );
            Ok(Outcome::Failed)
        }
        Status::Pending | Status::Sending => {
            let paused = payouts.ledger().pauses().await.unwrap_or_default();
            match paused.iter().find(|p| p.merchant == settled.merchant) {
                Some(pause) => out!(
                    "{}  merchant {} is paused: {}",
                    settled.status,
                    pause.merchant,
                    pause.message
                ),
                None => out!(
                    "{}  no outcome within {} s; it stays in the ledger and `hongbao serve` (or this command again) finishes it: hongbao records show {}",
                    settled.status,
                    args.wait,
                    settled.id
                ),
            }
            Ok(Outcome::Failed)
        }
    }
}
