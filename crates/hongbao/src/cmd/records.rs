//! `hongbao records list|show`, `hongbao status` and `hongbao merchant`.

use std::path::PathBuf;

use hongbao_core::model::{Rail, Redpack};
use hongbao_core::payouts::{Selector, StatusError};
use hongbao_core::store::ListFilter;
use hongbao_server::json::{record_json, rfc3339, wechat_json};

use super::{Error, setup};
use crate::Outcome;

/// Read the ledger.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RecordsCommand {
    /// The newest records.
    List {
        /// Only this status (pending, sending, sent, received, refunding, refunded, failed;
        /// for transfers awaiting_confirmation, transferring, succeeded, cancelling, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only this rail: redpack or transfer.
        #[arg(long)]
        rail: Option<String>,
        /// Only this merchant.
        #[arg(long)]
        merchant: Option<String>,
        /// Only this campaign: its name (as `campaign run --name` gave it) or id.
        #[arg(long, value_name = "NAME")]
        campaign: Option<String>,
        /// Only this receiver.
        #[arg(long)]
        openid: Option<String>,
        /// Only this order number.
        #[arg(long, value_name = "MCH_BILLNO")]
        billno: Option<String>,
        /// Created at or after (RFC 3339, or YYYY-MM-DD in Beijing time), as the API's created_from.
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Created before (RFC 3339, or YYYY-MM-DD in Beijing time), as the API's created_to.
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u64,
        /// How many to skip.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// JSON, as the API answers.
        #[arg(long)]
        json: bool,
    },
    /// One record and every call made for it.
    Show {
        /// Its id (rp_…, tr_…) or order number (mch_billno, out_bill_no).
        record: String,
        /// JSON, as the API answers.
        #[arg(long)]
        json: bool,
    },
}

/// Pause or resume a merchant's payouts.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum MerchantCommand {
    /// Stop the merchant's payouts; records stay pending.
    Pause {
        /// The merchant's name.
        name: String,
    },
    /// Let them go on (after a top-up, or once the configuration is fixed).
    Resume {
        /// The merchant's name.
        name: String,
    },
    /// Every merchant and whether it is paused.
    List,
}

fn line(r: &Redpack) -> String {
    format!(
        "{:<30} {:<9} {:<28} {:<28} {:>9} {:<8} {}",
        r.id,
        r.status.as_str(),
        r.mch_billno,
        r.re_openid,
        r.total_amount.to_yuan_string(),
        r.attempts,
        r.err_code.as_deref().unwrap_or("")
    )
}

pub(crate) async fn find(
    payouts: &hongbao_core::payouts::Payouts,
    config: &hongbao_core::config::Config,
    key: &str,
) -> Result<Redpack, Error> {
    let operator = setup::operator(config);
    let found = if key.starts_with("rp_") || key.starts_with("tr_") {
        payouts.get(&operator, key).await
    } else {
        payouts
            .ledger()
            .get_by_billno(&operator.merchants, key)
            .await
    }
    .map_err(|e| Error::Runtime(e.into()))?;
    found.ok_or_else(|| Error::Usage(format!("no record with id or mch_billno {key:?}")))
}

pub(crate) async fn records(config: Option<PathBuf>, command: RecordsCommand) -> super::Result {
    let setup = setup::load(config.as_deref()).await?;
    let payouts = hongbao_server::services(&setup.config)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let operator = setup::operator(&setup.config);
    match command {
        RecordsCommand::List {
            status,
            rail,
            merchant,
            campaign,
            openid,
            billno,
            from,
            to,
            limit,
            offset,
            json,
        } => {
            if let Some(name) = &merchant {
                known_merchant(&setup.config, name)?;
            }
            let campaign_id = match &campaign {
                Some(name) => Some(super::campaign::find_campaign(&payouts, name).await?.id),
                None => None,
            };
            let time = |flag: &str, text: Option<&String>| {
                text.map(|t| {
                    hongbao_server::json::parse_list_time_ms(t).ok_or_else(|| {
                        Error::Usage(format!(
                            "--{flag} {t:?} must be an RFC 3339 time (2026-11-22T04:00:00Z) or a date (2026-11-22, Beijing time)"
                        ))
                    })
                })
                .transpose()
            };
            let filter = ListFilter {
                merchants: merchant.into_iter().collect(),
                status: status.as_deref().map(str::parse).transpose().map_err(
                    |e: hongbao_wxpay::InvalidField| {
                        Error::Usage(format!("--status: {}", e.message))
                    },
                )?,
                re_openid: openid,
                mch_billno: billno,
                campaign_id,
                rail: rail.as_deref().map(str::parse).transpose().map_err(
                    |e: hongbao_wxpay::InvalidField| Error::Usage(format!("--rail: {}", e.message)),
                )?,
                created_from_ms: time("from", from.as_ref())?,
                created_to_ms: time("to", to.as_ref())?,
            };
            let (records, total) = payouts
                .list(&operator, filter, offset, limit.clamp(1, 1000))
                .await
                .map_err(|e| Error::Runtime(e.into()))?;
            if json {
                let objects: Vec<_> = records.iter().map(|r| any_json(&payouts, r)).collect();
                out!(
                    "{}",
                    serde_json::json!({"total_count": total, "objects": objects})
                );
            } else {
                out!(
                    "{:<30} {:<9} {:<28} {:<28} {:>9} {:<8} err_code",
                    "id",
                    "status",
                    "mch_billno",
                    "re_openid",
                    "yuan",
                    "attempts"
                );
                for r in &records {
                    out!("{}", line(r));
                }
                out!("{} of {total}", records.len());
            }
            Ok(Outcome::Done)
        }
        RecordsCommand::Show { record, json } => {
            let r = find(&payouts, &setup.config, &record).await?;
            let attempts = payouts
                .ledger()
                .attempts(&r.id)
                .await
                .map_err(|e| Error::Runtime(e.into()))?;
            if json {
                out!(
                    "{}",
                    serde_json::json!({"record": any_json(&payouts, &r), "attempts": attempts})
                );
                return Ok(Outcome::Done);
            }
            if r.rail == Rail::Transfer {
                show_transfer(&payouts, &r);
            } else {
                show_redpack(&payouts, &r);
            }
            out!(
                "created       {}   updated {}",
                rfc3339(r.created_at),
                rfc3339(r.updated_at)
            );
            out!("attempts:");
            for a in attempts {
                out!(
                    "  {}  {:<20} {:<28} {:<18} {:>6} ms  {}{}",
                    rfc3339(a.started_at),
                    a.api,
                    a.mch_billno,
                    a.outcome,
                    a.latency_ms,
                    a.err_code.as_deref().unwrap_or(""),
                    a.detail.map(|d| format!(" {d}")).unwrap_or_default()
                );
            }
            Ok(Outcome::Done)
        }
    }
}

fn show_transfer(payouts: &hongbao_core::payouts::Payouts, r: &Redpack) {
    let json = hongbao_server::transfers::json_of(payouts, r);
    out!("id            {}", r.id);
    out!("merchant      {} (mch_id {})", r.merchant, r.mch_id);
    out!("rail          transfer (商家转账)");
    out!("status        {}", r.status);
    out!("out_bill_no   {}", r.mch_billno);
    out!("openid        {}", r.re_openid);
    out!(
        "amount        {} yuan ({} fen)",
        r.total_amount,
        r.total_amount.get()
    );
    out!(
        "texts         {} / {} / {}",
        r.remark,
        r.act_name,
        r.wishing
    );
    out!(
        "transfer_bill_no {}",
        r.send_listid.as_deref().unwrap_or("-")
    );
    out!(
        "wechat        {}",
        r.wechat_status.as_deref().unwrap_or("-")
    );
    if let Some(confirm) = &json.confirm {
        out!("requestMerchantTransfer (the user's page confirms with these; docs/transfers.md):");
        out!("  mchId       {}", confirm.mch_id);
        out!("  appId       {}", confirm.appid);
        out!("  package     {}", confirm.package);
    }
    if let Some(at) = &json.expires_at {
        out!("expires       {at} (unconfirmed, WeChat closes it then)");
    }
    if let Some(code) = &r.err_code {
        out!(
            "err_code      {code}: {} / {}",
            r.message.as_deref().unwrap_or(""),
            r.zh_message.as_deref().unwrap_or("")
        );
    }
}

fn show_redpack(payouts: &hongbao_core::payouts::Payouts, r: &Redpack) {
    out!("id            {}", r.id);
    out!("merchant      {} (mch_id {})", r.merchant, r.mch_id);
    out!("type          {}", r.kind);
    if let Some(retired) = r.kind.retired() {
        out!("              warning: {}", retired.message);
    }
    out!("status        {}", r.status);
    out!("mch_billno    {}", r.mch_billno);
    out!("re_openid     {}", r.re_openid);
    out!(
        "amount        {} yuan ({} fen), {} share(s)",
        r.total_amount,
        r.total_amount.get(),
        r.total_num
    );
    out!(
        "texts         {} / {} / {} / {}",
        r.send_name,
        r.wishing,
        r.act_name,
        r.remark
    );
    out!("send_listid   {}", r.send_listid.as_deref().unwrap_or("-"));
    out!(
        "wechat        {}",
        r.wechat_status.as_deref().unwrap_or("-")
    );
    if let Some(mini) = json_of(payouts, r).mini_program {
        out!("wx.sendBizRedPacket (the mini program opens the packet with these; docs/api.md):");
        out!("  timeStamp   {}", mini.time_stamp);
        out!("  nonceStr    {}", mini.nonce_str);
        out!("  package     {}", mini.package);
        out!("  signType    {}", mini.sign_type);
        out!("  paySign     {}", mini.pay_sign);
    } else if r.kind == hongbao_core::model::Kind::MiniProgram {
        out!("wx.sendBizRedPacket: its package and paySign are shown once the packet is sent");
    }
    if let Some(refund) = r.refund_amount {
        out!("refunded      {refund} yuan");
    }
    if let Some(code) = &r.err_code {
        out!(
            "err_code      {code}: {} / {}",
            r.message.as_deref().unwrap_or(""),
            r.zh_message.as_deref().unwrap_or("")
        );
    }
}

pub(crate) async fn status(
    config: Option<PathBuf>,
    billno: Option<String>,
    id: Option<String>,
    merchant: Option<String>,
) -> super::Result {
    let selector = match (id, billno) {
        (Some(id), _) => Selector::Id(id),
        (None, Some(b)) => Selector::Billno(b),
        (None, None) => return Err(Error::Usage("give --billno B or --id ID".into())),
    };
    let setup = setup::load(config.as_deref()).await?;
    let payouts = hongbao_server::services(&setup.config)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let mut operator = setup::operator(&setup.config);
    if let Some(name) = &merchant {
        known_merchant(&setup.config, name)?;
        operator.merchants = vec![name.clone()];
    }
    match payouts.wechat_status(&operator, &selector).await {
        Ok(status) => {
            let wechat = wechat_json(status.info.as_ref());
            out!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "record": json_of(&payouts, &status.record),
                    "wechat": wechat,
                }))
                .unwrap_or_default()
            );
            Ok(Outcome::Done)
        }
        // Not a red packet: a transfer's bill, asked about by out_bill_no.
        Err(StatusError::NotFound) => match payouts.transfer_status(&operator, &selector).await {
            Ok(status) => {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "record": hongbao_server::transfers::json_of(&payouts, &status.record),
                        "wechat": status.bill.as_ref().map_or_else(
                            || serde_json::json!({"state": "NOT_FOUND"}),
                            |b| serde_json::to_value(b).unwrap_or_default(),
                        ),
                    }))
                    .unwrap_or_default()
                );
                Ok(Outcome::Done)
            }
            Err(StatusError::NotFound) => match selector {
                Selector::Billno(billno) => {
                    unrecorded_status(&payouts, &setup.config, &billno, merchant).await
                }
                Selector::Id(id) => Err(Error::Usage(format!("no record {id:?} in the ledger"))),
            },
            Err(e) => Err(Error::Runtime(e.into())),
        },
        Err(e) => Err(Error::Runtime(e.into())),
    }
}

/// `status --billno` for an order the ledger does not have: operators
/// moving from another system query their old orders too. WeChat's answer
/// is printed; nothing is stored.
async fn unrecorded_status(
    payouts: &hongbao_core::payouts::Payouts,
    config: &hongbao_core::config::Config,
    billno: &str,
    merchant: Option<String>,
) -> super::Result {
    let parsed = hongbao_wxpay::MchBillNo::parse(billno)
        .map_err(|e| Error::Usage(format!("--billno {billno:?}: {}", e.message)))?;
    let names: Vec<&str> = config.merchants.keys().map(String::as_str).collect();
    let merchant = match (merchant, names.as_slice()) {
        (Some(name), _) => name,
        (None, [only]) => (*only).to_owned(),
        (None, _) => {
            return Err(Error::Usage(format!(
                "mch_billno {billno} is not in the ledger; to ask WeChat about it, say whose order it is with --merchant ({})",
                names.join(", ")
            )));
        }
    };
    let info = payouts
        .wechat_status_unrecorded(&merchant, &parsed)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    eprintln!(
        "mch_billno {billno} is not in the ledger: this is WeChat's answer for merchant {merchant}; nothing was stored"
    );
    out!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "record": null,
            "wechat": wechat_json(info.as_ref()),
        }))
        .unwrap_or_default()
    );
    match info {
        Some(_) => Ok(Outcome::Done),
        None => {
            eprintln!("WeChat has no order {billno} of merchant {merchant} either (NOT_FOUND)");
            Ok(Outcome::Failed)
        }
    }
}

fn known_merchant(config: &hongbao_core::config::Config, name: &str) -> Result<(), Error> {
    if config.merchants.contains_key(name) {
        return Ok(());
    }
    let names: Vec<&str> = config.merchants.keys().map(String::as_str).collect();
    Err(Error::Usage(format!(
        "--merchant {name:?} is not configured; configured: {}",
        names.join(", ")
    )))
}

/// The record as the API shows it, a mini program packet's
/// `wx.sendBizRedPacket` arguments included.
/// A record as the API shows it, on its rail.
fn any_json(payouts: &hongbao_core::payouts::Payouts, r: &Redpack) -> serde_json::Value {
    let value = match r.rail {
        Rail::Transfer => serde_json::to_value(hongbao_server::transfers::json_of(payouts, r)),
        Rail::Redpack => serde_json::to_value(json_of(payouts, r)),
    };
    value.unwrap_or_default()
}

fn json_of(
    payouts: &hongbao_core::payouts::Payouts,
    r: &Redpack,
) -> hongbao_server::json::RecordJson {
    let merchant = payouts.merchants().get(&r.merchant);
    record_json(
        r,
        merchant.and_then(|m| m.config.api_key.as_ref()),
        merchant.and_then(|m| m.config.miniprogram_appid.as_ref()),
    )
}

pub(crate) async fn merchant(config: Option<PathBuf>, command: MerchantCommand) -> super::Result {
    let setup = setup::load(config.as_deref()).await?;
    let payouts = hongbao_server::services(&setup.config)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let known = |name: &str| {
        if setup.config.merchants.contains_key(name) {
            Ok(())
        } else {
            let names: Vec<&str> = setup.config.merchants.keys().map(String::as_str).collect();
            Err(Error::Usage(format!(
                "no merchant {name:?}; configured: {}",
                names.join(", ")
            )))
        }
    };
    match command {
        MerchantCommand::Pause { name } => {
            known(&name)?;
            payouts
                .pause(&name)
                .await
                .map_err(|e| Error::Runtime(e.into()))?;
            out!("{name} paused: its records stay pending until `hongbao merchant resume {name}`");
        }
        MerchantCommand::Resume { name } => {
            known(&name)?;
            let was = payouts
                .resume(&name)
                .await
                .map_err(|e| Error::Runtime(e.into()))?;
            out!("{name} {}", if was { "resumed" } else { "was not paused" });
        }
        MerchantCommand::List => {
            for m in payouts.health().await.merchants {
                match m.paused {
                    Some(p) => out!(
                        "{}  mch_id {}  PAUSED since {} ({}): {}\n    {}",
                        m.name,
                        m.mch_id,
                        rfc3339(p.paused_at),
                        p.reason,
                        p.message,
                        p.zh_message
                    ),
                    None => out!("{}  mch_id {}  active", m.name, m.mch_id),
                }
            }
        }
    }
    Ok(Outcome::Done)
}
