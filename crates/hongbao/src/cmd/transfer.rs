//! `hongbao transfer`: one transfer bill through the ledger, created in
//! this process, printed with what the user's page needs to confirm it;
//! `hongbao transfer cancel ID` cancels one before its user confirms.

use std::path::PathBuf;

use hongbao_core::model::{Rail, Redpack, Status, TransferInput};
use hongbao_core::payouts::{CancelError, CreateError, Payouts};
use hongbao_core::store::{Idempotency, Stored};
use hongbao_wxpay::Fen;

use super::{Error, setup};
use crate::Outcome;

/// Pay by transfer bill (商家转账): the user confirms it in WeChat.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<TransferCommand>,
    /// The payee's openid (under the merchant's appid).
    #[arg(long, required = true)]
    openid: Option<String>,
    /// The amount in yuan, at least 0.10, e.g. 1.00.
    #[arg(long, value_name = "YUAN", required = true)]
    amount: Option<String>,
    /// Shown to the user (≤ 32 characters); the merchant's transfer_remark if left out.
    #[arg(long)]
    remark: Option<String>,
    /// Scene 1000's 活动名称; the merchant's activity_name if left out.
    #[arg(long)]
    activity_name: Option<String>,
    /// Scene 1000's 奖励说明; the merchant's reward_description if left out.
    #[arg(long)]
    reward_description: Option<String>,
    /// 现金奖励 or 活动奖励.
    #[arg(long, value_name = "TEXT")]
    perception: Option<String>,
    /// The payee's real name (required from 2000.00 yuan); encrypted, never stored in clear.
    #[arg(long, value_name = "NAME")]
    user_name: Option<String>,
    /// The merchant (required when several are configured).
    #[arg(long)]
    merchant: Option<String>,
    /// Makes the command safe to repeat: the same key and parameters create one bill.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// How long to wait for the bill to be created, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    wait: u64,
}

/// What else `hongbao transfer` does.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TransferCommand {
    /// Cancel a bill its user has not confirmed yet.
    Cancel {
        /// The record's id (tr_…) or out_bill_no.
        id: String,
    },
}

fn input(args: &Args) -> Result<TransferInput, Error> {
    let amount = Fen::parse_yuan(args.amount.as_deref().unwrap_or_default())
        .map_err(|e| Error::Usage(format!("--amount: {}", e.message)))?;
    Ok(TransferInput {
        merchant: args.merchant.clone(),
        openid: args.openid.clone().unwrap_or_default(),
        transfer_amount: amount.get(),
        transfer_remark: args.remark.clone(),
        activity_name: args.activity_name.clone(),
        reward_description: args.reward_description.clone(),
        user_recv_perception: args.perception.clone(),
        user_name: args.user_name.clone(),
    })
}

fn flag_of(field: &str) -> String {
    match field {
        "openid" => "--openid".into(),
        "transfer_amount" => "--amount".into(),
        "transfer_remark" => "--remark".into(),
        "user_recv_perception" => "--perception".into(),
        "merchant" => "--merchant".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

pub(crate) async fn run(config: Option<PathBuf>, args: Args) -> super::Result {
    if let Some(TransferCommand::Cancel { id }) = &args.command {
        return cancel(config, id).await;
    }
    let interrupt = super::wait_for_shutdown();
    let input = input(&args)?;
    let setup = setup::load(config.as_deref()).await?;
    let payouts = hongbao_server::services(&setup.config)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let operator = setup::operator(&setup.config);
    let idempotency = args.idempotency_key.clone().map(|key| {
        use sha2::Digest;
        let text = format!(
            "transfer:{}",
            serde_json::to_string(&input).unwrap_or_default()
        );
        Idempotency {
            key,
            request_hash: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        }
    });
    let stored = payouts
        .create_transfer(&operator, &input, idempotency, None, None)
        .await
        .map_err(|e| match e {
            CreateError::Invalid(f) => Error::Usage(format!(
                "{} {}\n       {} {}",
                flag_of(&f.field),
                f.message,
                flag_of(&f.field),
                f.zh_message
            )),
            CreateError::IdempotencyConflict => Error::Usage(format!(
                "--idempotency-key {:?} was used for another payout; use a new key for a new payout",
                args.idempotency_key.as_deref().unwrap_or_default()
            )),
            other => Error::Runtime(other.into()),
        })?;
    let record = stored.record().clone();
    out!(
        "stored {}  out_bill_no {}  {} yuan to {}{}",
        record.id,
        record.mch_billno,
        record.total_amount,
        record.re_openid,
        match stored {
            Stored::Replayed(_) => "  (stored before: nothing new is paid)",
            Stored::Created(_) => "",
        }
    );
    let config_flag = super::config_flag(config.as_deref());
    let settled = if record.status.is_settled() {
        record
    } else {
        super::dispatch_one(
            &payouts,
            &setup.config.dispatch,
            record,
            args.wait,
            interrupt,
        )
        .await?
        .0
    };
    Ok(report(&payouts, &setup, &settled, &config_flag))
}

fn report(payouts: &Payouts, setup: &setup::Setup, r: &Redpack, config: &str) -> Outcome {
    let json = hongbao_server::transfers::json_of(payouts, r);
    match r.status {
        Status::AwaitingConfirmation => {
            out!(
                "awaiting_confirmation  transfer_bill_no {}  the user has until {} to confirm",
                r.send_listid.as_deref().unwrap_or("-"),
                json.expires_at.as_deref().unwrap_or("24 h from now")
            );
            if let Some(confirm) = &json.confirm {
                out!("the user's page calls requestMerchantTransfer with (docs/transfers.md):");
                out!("  mchId    {}", confirm.mch_id);
                out!("  appId    {}", confirm.appid);
                out!("  package  {}", confirm.package);
                if let Some(admin) = setup.sandbox.as_ref().and_then(|s| s.admin_base.as_ref()) {
                    out!(
                        "play the user in the sandbox: open {admin}/confirm?package={}",
                        hongbao_wxpay::request::url_encode(&confirm.package)
                    );
                }
            }
            out!(
                "  the outcome comes from WeChat (callback or query), not from the page: a running `hongbao serve` on this database follows the bill to its end"
            );
            out!("  check it: hongbao records show {}{config}", r.id);
            out!(
                "  cancel it before the user confirms: hongbao transfer cancel {}{config}",
                r.id
            );
            Outcome::Done
        }
        Status::Transferring | Status::Succeeded | Status::Cancelling | Status::Cancelled => {
            out!(
                "{}  transfer_bill_no {}",
                r.status,
                r.send_listid.as_deref().unwrap_or("-")
            );
            if r.status == Status::Cancelled {
                Outcome::Failed
            } else {
                Outcome::Done
            }
        }
        Status::Failed => {
            out!(
                "failed  {}: {}\n        {}",
                r.err_code.as_deref().unwrap_or("-"),
                r.message.as_deref().unwrap_or_default(),
                r.zh_message.as_deref().unwrap_or_default()
            );
            Outcome::Failed
        }
        _ => {
            out!(
                "{}  no outcome yet; {} stays in the ledger with its out_bill_no, and only that bill is ever retried",
                r.status,
                r.id
            );
            out!("  a running `hongbao serve` on this database finishes it");
            out!("  check it: hongbao records show {}{config}", r.id);
            Outcome::Failed
        }
    }
}

async fn cancel(config: Option<PathBuf>, key: &str) -> super::Result {
    let setup = setup::load(config.as_deref()).await?;
    let payouts = hongbao_server::services(&setup.config)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let record = super::records::find(&payouts, &setup.config, key).await?;
    if record.rail != Rail::Transfer {
        return Err(Error::Usage(format!(
            "{} is a red packet, not a transfer: red packets cannot be cancelled",
            record.id
        )));
    }
    let operator = setup::operator(&setup.config);
    match payouts.cancel_transfer(&operator, &record.id).await {
        Ok(r) => {
            out!("{}  {}  out_bill_no {}", r.status, r.id, r.mch_billno);
            Ok(Outcome::Done)
        }
        Err(CancelError::NotCancellable(status)) => Err(Error::Usage(format!(
            "{} is {status}: only a transfer awaiting confirmation can be cancelled",
            record.id
        ))),
        Err(CancelError::Refused(code)) => {
            out!(
                "WeChat refused the cancel ({}): {}",
                code.code,
                code.message
            );
            Ok(Outcome::Failed)
        }
        Err(CancelError::NotFound) => Err(Error::Usage(format!("no transfer {key:?}"))),
        Err(e @ CancelError::Wechat(_)) => {
            out!("{e}");
            Ok(Outcome::Failed)
        }
        Err(CancelError::Db(e)) => Err(Error::Runtime(e.into())),
    }
}
