//! `hongbao send`: one payout through the ledger, dispatched in this
//! process, waiting for its outcome; `send --resume ID` finishes one that
//! is stored.
//!
//! What it prints is safe to follow: a payout without an outcome yet is
//! named by its record id, and the command that finishes it is
//! `send --resume ID`, never "the same command again" (which, without an
//! `--idempotency-key`, stores and pays a second payout).

use std::path::PathBuf;

use hongbao_core::model::{Kind, Redpack, RedpackInput, Status};
use hongbao_core::payouts::Payouts;
use hongbao_core::store::{Idempotency, Stored};
use hongbao_wxpay::Fen;

use super::{Error, setup};
use crate::Outcome;

/// Send one red packet and wait for its outcome.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The receiver's openid.
    #[arg(long, required_unless_present = "resume")]
    openid: Option<String>,
    /// The amount in yuan, e.g. 1.88 (of the whole group for --type group).
    #[arg(long, value_name = "YUAN", required_unless_present = "resume")]
    amount: Option<String>,
    /// normal, group or miniprogram. group (fission) has been offline at
    /// WeChat since 2024-06-05: WeChat refuses it unless the merchant kept
    /// legacy access.
    #[arg(long = "type", default_value = "normal", value_name = "TYPE")]
    kind: String,
    /// The number of shares of a group red packet (3 to 20).
    #[arg(long, value_name = "N")]
    num: Option<u32>,
    /// The merchant (required when several are configured).
    #[arg(long)]
    merchant: Option<String>,
    #[command(flatten)]
    texts: super::texts::TextArgs,
    /// Risk information, URL-encoded.
    #[arg(long)]
    risk_info: Option<String>,
    /// Makes the command safe to repeat: the same key and parameters pay once.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Finish a stored payout instead of storing one: dispatch record ID
    /// (rp_… or its mch_billno) and wait for its outcome. Pays nobody twice.
    #[arg(
        long,
        value_name = "ID",
        conflicts_with_all = [
            "openid", "amount", "num", "merchant", "send_name", "wishing", "act_name",
            "remark", "scene_id", "risk_info", "idempotency_key",
        ]
    )]
    resume: Option<String>,
    /// How long to wait for the outcome, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    wait: u64,
}

pub(crate) async fn run(config: Option<PathBuf>, args: Args) -> super::Result {
    // From here on Ctrl-C is handled: once a payout is stored, the command
    // says what is stored and how to go on instead of vanishing.
    let interrupt = super::wait_for_shutdown();
    let input = match &args.resume {
        Some(_) => None,
        None => Some(input(&args)?),
    };
    let setup = setup::load(config.as_deref()).await?;
    let payouts = hongbao_server::services(&setup.config)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let record = match input {
        Some(input) => store(&setup, &payouts, &args, &input).await?,
        None => {
            let key = args.resume.as_deref().unwrap_or_default();
            let record = super::records::find(&payouts, &setup.config, key).await?;
            out!(
                "resuming {}  mch_billno {}  {} yuan to {}  ({})",
                record.id,
                record.mch_billno,
                record.total_amount,
                record.re_openid,
                record.status
            );
            record
        }
    };
    let advice = Advice {
        id: record.id.clone(),
        config: super::config_flag(config.as_deref()),
        idempotency_key: args.idempotency_key.clone(),
    };
    if record.status.is_settled() {
        return Ok(report(&payouts, &record, &advice, args.wait, false).await);
    }

    let (settled, interrupted) = super::dispatch_one(
        &payouts,
        &setup.config.dispatch,
        record,
        args.wait,
        interrupt,
    )
    .await?;
    Ok(report(&payouts, &settled, &advice, args.wait, interrupted).await)
}

/// The payout the flags describe.
fn input(args: &Args) -> Result<RedpackInput, Error> {
    let kind: Kind = args
        .kind
        .parse()
        .map_err(|e: hongbao_wxpay::InvalidField| Error::Usage(format!("--type: {}", e.message)))?;
    if let Some(retired) = kind.retired() {
        eprintln!("warning: {}", retired.message);
    }
    let amount = Fen::parse_yuan(args.amount.as_deref().unwrap_or_default())
        .map_err(|e| Error::Usage(format!("--amount: {}", e.message)))?;
    Ok(RedpackInput {
        kind,
        merchant: args.merchant.clone(),
        re_openid: args.openid.clone().unwrap_or_default(),
        total_amount: amount.get(),
        total_num: args.num,
        send_name: args.texts.send_name.clone(),
        wishing: args.texts.wishing.clone(),
        act_name: args.texts.act_name.clone(),
        remark: args.texts.remark.clone(),
        scene_id: args.texts.scene_id.clone(),
        risk_info: args.risk_info.clone(),
    })
}

/// Stores the payout (or finds the one stored under the same idempotency
/// key) and says so.
async fn store(
    setup: &setup::Setup,
    payouts: &Payouts,
    args: &Args,
    input: &RedpackInput,
) -> Result<Redpack, Error> {
    let operator = setup::operator(&setup.config);
    let idempotency = args.idempotency_key.clone().map(|key| {
        use sha2::Digest;
        let text = serde_json::to_string(input).unwrap_or_default();
        Idempotency {
            key,
            request_hash: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        }
    });
    let stored = payouts
        .create(&operator, input, idempotency, None, None)
        .await
        .map_err(|e| match e {
            hongbao_core::payouts::CreateError::Invalid(f) => Error::Usage(format!(
                "{} {}\n       {} {}",
                f.field, f.message, f.field, f.zh_message
            )),
            hongbao_core::payouts::CreateError::IdempotencyConflict => Error::Usage(format!(
                "--idempotency-key {:?} was used for another payout; use a new key for a new payout",
                args.idempotency_key.as_deref().unwrap_or_default()
            )),
            other => Error::Runtime(other.into()),
        })?;
    let record = stored.record().clone();
    let key = match (&args.idempotency_key, &stored) {
        (None, _) => String::new(),
        (Some(key), Stored::Created(_)) => format!("  idempotency key {key}"),
        (Some(key), Stored::Replayed(_)) => {
            format!("  idempotency key {key} (stored before: nothing new is paid)")
        }
    };
    out!(
        "stored {}  mch_billno {}  {} yuan to {}{key}",
        record.id,
        record.mch_billno,
        record.total_amount,
        record.re_openid
    );
    Ok(record)
}

/// What a payout without an outcome yet needs to be finished or checked.
struct Advice {
    id: String,
    /// ` --config FILE`, when one was given.
    config: String,
    idempotency_key: Option<String>,
}

impl Advice {
    fn print(&self) {
        // One command per line, at its end: ready to copy.
        let Advice { id, config, .. } = self;
        out!(
            "  finish it (a `hongbao serve` on this database does too): hongbao send --resume {id}{config}"
        );
        out!("  check it: hongbao records show {id}{config}");
        out!("  ask WeChat now: hongbao status --id {id}{config}");
        match &self.idempotency_key {
            Some(_) => out!(
                "  the same command (same --idempotency-key) is safe to run again: it finds this record"
            ),
            None => out!(
                "  do not repeat the send itself: without --idempotency-key it stores and pays a second payout"
            ),
        }
    }
}

/// Prints the record's outcome; the command's outcome follows from it.
async fn report(
    payouts: &Payouts,
    record: &Redpack,
    advice: &Advice,
    wait: u64,
    interrupted: bool,
) -> Outcome {
    match record.status {
        Status::Sent | Status::Received | Status::Refunding | Status::Refunded => {
            out!(
                "{}  send_listid {}  after {} attempt(s)",
                record.status,
                record.send_listid.as_deref().unwrap_or("-"),
                record.attempts
            );
            if record.kind == Kind::MiniProgram {
                out!(
                    "  the mini program opens it with wx.sendBizRedPacket: its package and paySign are in `hongbao records show {}{}`",
                    record.id,
                    advice.config
                );
            }
            Outcome::Done
        }
        // A transfer's statuses: `send` pays red packets only.
        Status::AwaitingConfirmation
        | Status::Transferring
        | Status::Succeeded
        | Status::Cancelling
        | Status::Cancelled => {
            out!(
                "{}  (a transfer: see hongbao records show {})",
                record.status,
                record.id
            );
            Outcome::Done
        }
        Status::Failed => {
            out!(
                "failed  {}: {}\n        {}",
                record.err_code.as_deref().unwrap_or("-"),
                record.message.as_deref().unwrap_or_default(),
                record.zh_message.as_deref().unwrap_or_default()
            );
            Outcome::Failed
        }
        Status::Pending | Status::Sending => {
            let paused = payouts.ledger().pauses().await.unwrap_or_default();
            let pause = paused.iter().find(|p| p.merchant == record.merchant);
            if interrupted {
                out!(
                    "stopped: {} is stored and {}; nobody is paid twice when you go on:",
                    record.id,
                    record.status
                );
            } else if pause.is_none() {
                out!(
                    "{}  no outcome within {wait} s; {} stays in the ledger:",
                    record.status,
                    record.id
                );
            }
            if let Some(pause) = pause {
                out!(
                    "{}  merchant {} is paused: {}\n    {}",
                    record.status,
                    pause.merchant,
                    pause.message,
                    pause.zh_message
                );
            }
            advice.print();
            Outcome::Failed
        }
    }
}
