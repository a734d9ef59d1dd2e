//! `hongbao campaign run|resume|status|report`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hongbao_core::campaign::{self, Campaign, CampaignOptions, Totals};
use hongbao_core::dispatch::DispatchConfig;
use hongbao_core::model::Scope;
use hongbao_core::payouts::Payouts;
use hongbao_wxpay::Fen;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use super::{Error, setup};
use crate::Outcome;

/// Pay a whole list.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CampaignCommand {
    /// Validate the whole file, store its rows, and pay them at the
    /// merchant's rate. Run it again after any interruption: it goes on
    /// where it stopped and pays nobody twice.
    Run(Box<RunArgs>),
    /// Go on with a paused or interrupted campaign (e.g. after a top-up).
    Resume {
        /// The campaign's name.
        name: String,
    },
    /// Counts and sums by status and err_code.
    Status {
        /// The campaign's name.
        name: String,
        /// JSON.
        #[arg(long)]
        json: bool,
    },
    /// One line per row: openid, amount, mch_billno, status, err_code, message, send_listid, times.
    Report {
        /// The campaign's name.
        name: String,
        /// Where to write the CSV.
        #[arg(long, value_name = "FILE.csv")]
        out: PathBuf,
    },
    /// A transfer campaign's bills awaiting their users: line, openid,
    /// amount, out_bill_no, mch_id, appid, package, expires_at (what each
    /// user's page passes to requestMerchantTransfer).
    Confirms {
        /// The campaign's name.
        name: String,
        /// Where to write the CSV.
        #[arg(long, value_name = "FILE.csv")]
        out: PathBuf,
    },
}

/// `campaign run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The CSV: a header `openid,amount` (yuan) or `openid,total_amount` (fen), optional columns wishing, act_name, remark, scene_id.
    file: PathBuf,
    /// The campaign's name: the same name resumes; another file under it is refused.
    #[arg(long)]
    name: String,
    /// The merchant (required when several are configured).
    #[arg(long)]
    merchant: Option<String>,
    /// The amount in yuan of rows without one.
    #[arg(long, value_name = "YUAN")]
    amount: Option<String>,
    /// Texts of the rows without their own.
    #[command(flatten)]
    texts: super::texts::TextArgs,
    /// The most the whole file may pay, in yuan.
    #[arg(long, value_name = "YUAN")]
    budget: Option<String>,
    /// Allow the same openid on several rows.
    #[arg(long)]
    allow_repeat: bool,
    /// The most payouts an openid gets from the merchant's campaigns in a
    /// day (Beijing time), this one included: rows over it are recorded as
    /// failed (CAMPAIGN_DAILY_CAP) and never sent.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    per_openid_daily: Option<u64>,
    /// redpack (default) or transfer: every row becomes a transfer bill
    /// its user confirms in WeChat (--remark is its remark, --act-name its
    /// 活动名称, --wishing its 奖励说明).
    #[arg(long, default_value = "redpack", value_name = "RAIL")]
    rail: String,
    /// Validate and print the totals; pay nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write every bad row (line, field, message, zh_message) to this CSV
    /// file; the output shows the first 1,000.
    #[arg(long, value_name = "FILE.csv")]
    errors: Option<PathBuf>,
}

fn yuan(flag: &str, text: Option<&String>) -> Result<Option<Fen>, Error> {
    text.map(|t| Fen::parse_yuan(t).map_err(|e| Error::Usage(format!("--{flag}: {}", e.message))))
        .transpose()
}

fn merchant_name(
    config: &hongbao_core::config::Config,
    given: Option<&String>,
) -> Result<String, Error> {
    let names: Vec<&String> = config.merchants.keys().collect();
    match given {
        Some(name) if config.merchants.contains_key(name) => Ok(name.clone()),
        Some(name) => Err(Error::Usage(format!(
            "--merchant {name:?} is not configured; configured: {}",
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => Err(Error::Usage(
            "several merchants are configured: choose one with --merchant".into(),
        )),
    }
}

fn summary(campaign: &Campaign, totals: &Totals) {
    let (paid, paid_amount) = totals.paid();
    let (failed, failed_amount) = totals.failed();
    let (open, open_amount) = totals.open();
    out!(
        "campaign {}: {} rows, {} yuan (merchant {})",
        campaign.name,
        campaign.rows,
        campaign.total_amount,
        campaign.merchant
    );
    out!("  paid     {paid:>8}  {paid_amount:>12} yuan");
    let (awaiting, awaiting_amount) = totals.awaiting();
    if awaiting > 0 || campaign.options.rail == hongbao_core::model::Rail::Transfer {
        out!(
            "  awaiting {awaiting:>8}  {awaiting_amount:>12} yuan  (bills waiting for their users to confirm, 24 h)"
        );
        let expired = totals.expired();
        if expired > 0 {
            out!("  expired  {expired:>8}  (not confirmed within 24 h; among the failed)");
        }
    }
    let codes: Vec<String> = totals
        .by_err_code
        .iter()
        .map(|(c, n)| format!("{c} × {n}"))
        .collect();
    out!(
        "  failed   {failed:>8}  {failed_amount:>12} yuan  {}",
        codes.join(", ")
    );
    out!("  pending  {open:>8}  {open_amount:>12} yuan");
    if campaign.imported < campaign.rows {
        out!(
            "  not yet stored: {} rows",
            campaign.rows - campaign.imported
        );
    }
    for (status, (n, amount)) in &totals.by_status {
        out!("    {status:<10} {n:>8}  {:>12} yuan", Fen::new(*amount));
    }
}

/// A campaign by name: the CLI's own first, else one uploaded through the
/// API (by any tenant: the operator sees them all), or by its id.
pub(crate) async fn find_campaign(payouts: &Payouts, name: &str) -> Result<Campaign, Error> {
    let runtime = |e: hongbao_core::store::db::DbError| Error::Runtime(e.into());
    if let Some(found) = campaign::find(payouts.ledger(), "cli", name)
        .await
        .map_err(runtime)?
    {
        return Ok(found);
    }
    if let Some(found) = campaign::get(payouts.ledger(), name)
        .await
        .map_err(runtime)?
    {
        return Ok(found);
    }
    let mut found = campaign::find_in_any_tenant(payouts.ledger(), name)
        .await
        .map_err(runtime)?;
    match found.len() {
        0 => Err(Error::Usage(format!(
            "no campaign named {name:?}: start one with `hongbao campaign run FILE --name {name}`"
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(Error::Usage(format!(
            "several tenants have a campaign named {name:?}; give its id instead: {}",
            found
                .iter()
                .map(|c| format!("{} (tenant {})", c.id, c.tenant))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub(crate) async fn run(config: Option<PathBuf>, command: CampaignCommand) -> super::Result {
    let setup = setup::load(config.as_deref()).await?;
    let payouts = hongbao_server::services(&setup.config)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    match command {
        CampaignCommand::Run(args) => run_file(&setup, &payouts, &args).await,
        CampaignCommand::Resume { name } => {
            let campaign = find_campaign(&payouts, &name).await?;
            if campaign.imported < campaign.rows {
                return Err(Error::Usage(format!(
                    "campaign {name} is not fully stored yet ({} of {} rows): run `hongbao campaign run FILE --name {name}` again with its file",
                    campaign.imported, campaign.rows
                )));
            }
            if payouts
                .resume(&campaign.merchant)
                .await
                .map_err(|e| Error::Runtime(e.into()))?
            {
                out!("merchant {} resumed", campaign.merchant);
            }
            campaign::set_paused(payouts.ledger(), &campaign.id, false)
                .await
                .map_err(|e| Error::Runtime(e.into()))?;
            pay(&setup, &payouts, &campaign, None).await
        }
        CampaignCommand::Status { name, json } => {
            let campaign = find_campaign(&payouts, &name).await?;
            let totals = campaign::totals(payouts.ledger(), &campaign.id)
                .await
                .map_err(|e| Error::Runtime(e.into()))?;
            if json {
                out!(
                    "{}",
                    serde_json::json!({"campaign": campaign, "totals": totals})
                );
            } else {
                summary(&campaign, &totals);
                if campaign.paused {
                    out!("  PAUSED by an operator: hongbao campaign resume {name}");
                }
                if let Some(p) = payouts
                    .ledger()
                    .pauses()
                    .await
                    .unwrap_or_default()
                    .iter()
                    .find(|p| p.merchant == campaign.merchant)
                {
                    out!(
                        "  merchant {} PAUSED: {}\n    {}",
                        p.merchant,
                        p.message,
                        p.zh_message
                    );
                }
            }
            Ok(Outcome::Done)
        }
        CampaignCommand::Report { name, out } => {
            let campaign = find_campaign(&payouts, &name).await?;
            let rows = write_report(&payouts, &campaign, &out).await?;
            out!("{rows} rows written to {}", out.display());
            Ok(Outcome::Done)
        }
        CampaignCommand::Confirms { name, out } => {
            let campaign = find_campaign(&payouts, &name).await?;
            let appid = setup.config.merchants[&campaign.merchant]
                .appid
                .as_str()
                .to_owned();
            let file = std::fs::File::create(&out)
                .map_err(|e| Error::Usage(format!("cannot write {}: {e}", out.display())))?;
            let (_, rows) = campaign::write_confirms(payouts.ledger(), &campaign.id, &appid, file)
                .await
                .map_err(|e| Error::Runtime(anyhow::anyhow!("{e}")))?;
            out!(
                "{rows} bill(s) awaiting their users written to {}",
                out.display()
            );
            Ok(Outcome::Done)
        }
    }
}

async fn run_file(setup: &setup::Setup, payouts: &Arc<Payouts>, args: &RunArgs) -> super::Result {
    let merchant = merchant_name(&setup.config, args.merchant.as_ref())?;
    let merchant_config = setup.config.merchants[&merchant].clone();
    let options = CampaignOptions {
        merchant: merchant.clone(),
        amount: yuan("amount", args.amount.as_ref())?,
        send_name: args.texts.send_name.clone(),
        wishing: args.texts.wishing.clone(),
        act_name: args.texts.act_name.clone(),
        remark: args.texts.remark.clone(),
        scene_id: args.texts.scene_id.clone(),
        budget: yuan("budget", args.budget.as_ref())?,
        allow_repeat: args.allow_repeat,
        per_openid_daily: args.per_openid_daily,
        rail: args
            .rail
            .parse()
            .map_err(|e: hongbao_wxpay::InvalidField| {
                Error::Usage(format!("--rail: {}", e.message))
            })?,
    };
    let open = |path: &Path| {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))
    };

    // The whole file first: with any bad row, nothing is paid.
    let started = Instant::now();
    let mut errors = args.errors.as_deref().map(ErrorFile::create).transpose()?;
    let mut shown = 0usize;
    let checked = campaign::validate(open(&args.file)?, &options, &merchant_config, |e| {
        // As many as the API lists: a million bad rows are not 2 million lines.
        if shown < campaign::ROW_ERRORS_SHOWN {
            shown += 1;
            eprintln!("{e}");
            eprintln!("    {}", e.zh_message);
        }
        if let Some(file) = &mut errors {
            file.write(e);
        }
    })
    .map_err(|e| Error::Usage(format!("{e}\n    {}", e.zh_message)))?;
    if let Some(file) = errors {
        file.finish()?;
    }
    let not_shown = checked.errors.saturating_sub(shown as u64);
    if not_shown > 0 {
        match &args.errors {
            Some(path) => eprintln!(
                "… and {not_shown} more bad row(s) not shown: all {} are in {}",
                checked.errors,
                path.display()
            ),
            None => eprintln!(
                "… and {not_shown} more bad row(s) not shown: write them all to a file with --errors FILE.csv"
            ),
        }
    }
    if checked.errors > 0 {
        return Err(Error::Usage(format!(
            "{} bad row(s) in {} ({} rows): nothing was paid. Fix them and run the command again.",
            checked.errors,
            args.file.display(),
            checked.rows
        )));
    }
    out!(
        "{}: {} rows, {} yuan, valid ({} ms)",
        args.file.display(),
        checked.rows,
        checked.total,
        started.elapsed().as_millis()
    );
    if args.dry_run {
        out!("dry run: nothing stored, nothing paid");
        return Ok(Outcome::Done);
    }
    if checked.rows == 0 {
        return Err(Error::Usage("the file has no rows".into()));
    }

    let ledger = payouts.ledger();
    let campaign = match campaign::find(ledger, "cli", &args.name)
        .await
        .map_err(|e| Error::Runtime(e.into()))?
    {
        Some(existing) if existing.file_sha256 != checked.sha256 => {
            return Err(Error::Usage(format!(
                "campaign {} was started from another file (SHA-256 {}…); this one is {}…. Use the original file, or another --name",
                args.name,
                &existing.file_sha256[..12],
                &checked.sha256[..12]
            )));
        }
        Some(existing) if !existing.options.same_payouts(&options) => {
            return Err(Error::Usage(format!(
                "campaign {} was started with other options (merchant, --amount or texts): {}; run it with the same ones",
                args.name,
                serde_json::to_string(&existing.options).unwrap_or_default()
            )));
        }
        Some(existing) => {
            out!("campaign {} exists: going on where it stopped", args.name);
            existing
        }
        None => campaign::create(ledger, "cli", &args.name, &options, &checked)
            .await
            .map_err(|e| Error::Runtime(e.into()))?,
    };

    if campaign.imported < campaign.rows {
        let bar = progress_bar(campaign.rows, "storing", Speed::new(campaign.imported));
        bar.set_position(campaign.imported);
        let mut last_line = Instant::now();
        let import = campaign::import(
            ledger,
            &campaign,
            open(&args.file)?,
            &merchant_config,
            |n| {
                bar.set_position(n);
                if bar.is_hidden() && last_line.elapsed() >= Duration::from_secs(10) {
                    last_line = Instant::now();
                    out!("storing: {n} of {} rows", campaign.rows);
                }
            },
        );
        // Ctrl-C while storing: the batch being written is rolled back (each
        // batch and the position it reaches are one transaction), so the
        // same command goes on exactly where this one stopped.
        tokio::select! {
            imported = import => imported.map_err(|e| Error::Runtime(e.into()))?,
            () = super::wait_for_shutdown() => {
                bar.finish_and_clear();
                let stored = campaign::get(ledger, &campaign.id)
                    .await
                    .ok()
                    .flatten()
                    .map_or(campaign.imported, |c| c.imported);
                out!(
                    "stopped while storing: {stored} of {} rows stored. Go on with: hongbao campaign run {} --name {}",
                    campaign.rows,
                    args.file.display(),
                    args.name
                );
                return Ok(Outcome::Failed);
            }
        }
        bar.finish_and_clear();
        out!("stored {} rows", campaign.rows);
    }
    let campaign = campaign::get(ledger, &campaign.id)
        .await
        .map_err(|e| Error::Runtime(e.into()))?
        .context("the campaign vanished")?;
    pay(setup, payouts, &campaign, Some(&args.file)).await
}

/// How fast this run goes: rows done before it started (a resumed
/// campaign's) are not speed. Integer arithmetic: tenths of a row a second.
#[derive(Clone, Copy, Debug)]
struct Speed {
    /// Rows already done when this run started.
    baseline: u64,
    started: Instant,
}

impl Speed {
    fn new(baseline: u64) -> Speed {
        Speed {
            baseline,
            started: Instant::now(),
        }
    }

    /// Tenths of a row a second in this run, once there is a second of it
    /// and a row done.
    fn tenths_per_second(&self, done: u64) -> Option<u64> {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let rows = done.saturating_sub(self.baseline);
        (ms >= 1_000 && rows > 0).then(|| rows.saturating_mul(10_000) / ms)
    }

    /// `12/s`, `4.5/s`, or `-/s` before there is anything to measure.
    fn rate(&self, done: u64) -> String {
        match self.tenths_per_second(done) {
            None => "-/s".into(),
            Some(t) if t >= 100 => format!("{}/s", (t + 5) / 10),
            Some(t) => format!("{}.{}/s", t / 10, t % 10),
        }
    }

    /// `2m05s` for `remaining` rows at this run's rate.
    fn eta(&self, done: u64, remaining: u64) -> String {
        match self.tenths_per_second(done) {
            Some(t) if t > 0 => {
                let seconds = (remaining * 10).div_ceil(t);
                format!("{}m{:02}s", seconds / 60, seconds % 60)
            }
            _ => "-".into(),
        }
    }
}

/// `--errors FILE`: every bad row, as CSV.
struct ErrorFile {
    path: PathBuf,
    writer: csv::Writer<std::io::BufWriter<std::fs::File>>,
    /// The first write error; the rest are not tried.
    failed: Option<csv::Error>,
}

impl ErrorFile {
    fn create(path: &Path) -> Result<ErrorFile, Error> {
        let file = std::fs::File::create(path)
            .map_err(|e| Error::Usage(format!("cannot write --errors {}: {e}", path.display())))?;
        let mut file = ErrorFile {
            path: path.to_owned(),
            writer: csv::Writer::from_writer(std::io::BufWriter::new(file)),
            failed: None,
        };
        file.record(["line", "field", "message", "zh_message"].map(String::from));
        Ok(file)
    }

    fn write(&mut self, e: &campaign::RowError) {
        self.record([
            e.line.to_string(),
            e.field.clone().unwrap_or_default(),
            e.message.clone(),
            e.zh_message.clone(),
        ]);
    }

    fn record(&mut self, fields: [String; 4]) {
        if self.failed.is_none()
            && let Err(e) = self.writer.write_record(fields)
        {
            self.failed = Some(e);
        }
    }

    fn finish(mut self) -> Result<(), Error> {
        let flushed = self.writer.flush().map_err(csv::Error::from);
        match self.failed.map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(e) => Err(Error::Runtime(anyhow::anyhow!(
                "writing --errors {}: {e}",
                self.path.display()
            ))),
        }
    }
}

fn progress_bar(len: u64, what: &str, speed: Speed) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} {{msg}} {{rate}} ETA {{run_eta}}"
        ))
        .expect("a valid template")
        .with_key(
            "rate",
            move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&speed.rate(state.pos()));
            },
        )
        .with_key(
            "run_eta",
            move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let remaining = state.len().unwrap_or(0).saturating_sub(state.pos());
                let _ = w.write_str(&speed.eta(state.pos(), remaining));
            },
        ),
    );
    bar
}

enum Ended {
    Done,
    MerchantPaused(String),
    CampaignPaused,
    Interrupted,
}

/// Pays the campaign's open rows until none is left, the merchant or the
/// campaign is paused, or the operator interrupts.
async fn pay(
    setup: &setup::Setup,
    payouts: &Arc<Payouts>,
    campaign: &Campaign,
    file: Option<&Path>,
) -> super::Result {
    let ledger = payouts.ledger();
    // Rate and ETA count the rows this run pays, not those paid before.
    let before = campaign::totals(ledger, &campaign.id)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let speed = Speed::new(before.paid().0 + before.failed().0);
    let (stop, stopped) = watch::channel(false);
    let dispatcher = payouts.start_dispatcher(
        DispatchConfig::from_settings(&setup.config.dispatch, Scope::Campaign(campaign.id.clone())),
        &stopped,
    );
    let bar = progress_bar(campaign.rows, "paying", speed);
    let mut last_line = Instant::now();
    let mut interrupt = Box::pin(super::wait_for_shutdown());
    let ended = loop {
        let totals = campaign::totals(ledger, &campaign.id)
            .await
            .map_err(|e| Error::Runtime(e.into()))?;
        let ((paid, _), (failed, _), (open, _)) = (totals.paid(), totals.failed(), totals.open());
        let (awaiting, _) = totals.awaiting();
        let done = paid + failed + awaiting;
        bar.set_position(done);
        bar.set_message(if awaiting > 0 {
            format!("paid {paid} · awaiting users {awaiting} · failed {failed} · pending {open}")
        } else {
            format!("paid {paid} · failed {failed} · pending {open}")
        });
        if bar.is_hidden() && last_line.elapsed() >= Duration::from_secs(10) {
            last_line = Instant::now();
            out!(
                "campaign {}: paid {paid}, failed {failed}, pending {open}, {}, ETA {}",
                campaign.name,
                speed.rate(done),
                speed.eta(done, open)
            );
        }
        if open == 0 {
            break Ended::Done;
        }
        if let Some(pause) = ledger
            .pauses()
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.merchant == campaign.merchant)
        {
            break Ended::MerchantPaused(format!("{}\n    {}", pause.message, pause.zh_message));
        }
        if campaign::get(ledger, &campaign.id)
            .await
            .ok()
            .flatten()
            .is_some_and(|c| c.paused)
        {
            break Ended::CampaignPaused;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = &mut interrupt => break Ended::Interrupted,
        }
    };
    if matches!(ended, Ended::Interrupted) {
        bar.suspend(|| eprintln!("stopping: finishing the calls in flight…"));
    }
    let _ = stop.send(true);
    dispatcher.finish().await;
    bar.finish_and_clear();
    let totals = campaign::totals(ledger, &campaign.id)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    summary(campaign, &totals);
    let again = match file {
        Some(file) => format!(
            "hongbao campaign run {} --name {} (or hongbao campaign resume {})",
            file.display(),
            campaign.name,
            campaign.name
        ),
        None => format!("hongbao campaign resume {}", campaign.name),
    };
    let (open, open_amount) = totals.open();
    match ended {
        Ended::Done if totals.failed().0 == 0 && totals.awaiting().0 > 0 => {
            out!(
                "every row is a bill: {} await their users' confirmation (24 h); a running `hongbao serve` follows them to their end",
                totals.awaiting().0
            );
            out!(
                "  what each user's page needs: hongbao campaign confirms {} --out FILE.csv",
                campaign.name
            );
            Ok(Outcome::Done)
        }
        Ended::Done if totals.failed().0 == 0 => {
            out!("every row is paid");
            Ok(Outcome::Done)
        }
        Ended::Done => {
            out!(
                "finished: {} row(s) failed (see err_code above, and `hongbao campaign report {} --out FILE.csv`)",
                totals.failed().0,
                campaign.name
            );
            Ok(Outcome::Failed)
        }
        Ended::MerchantPaused(message) => {
            out!("PAUSED: {message}");
            out!(
                "still to pay: {open} row(s), {open_amount} yuan — the balance this campaign still needs."
            );
            out!(
                "when fixed (e.g. after a top-up), go on with: hongbao campaign resume {}",
                campaign.name
            );
            Ok(Outcome::Failed)
        }
        Ended::CampaignPaused => {
            out!(
                "PAUSED by an operator; go on with: hongbao campaign resume {}",
                campaign.name
            );
            Ok(Outcome::Failed)
        }
        Ended::Interrupted => {
            out!(
                "stopped: {open} row(s) still to pay ({open_amount} yuan). Nobody is paid twice when you go on: {again}"
            );
            Ok(Outcome::Failed)
        }
    }
}

async fn write_report(payouts: &Payouts, campaign: &Campaign, out: &Path) -> Result<u64, Error> {
    let file = std::fs::File::create(out)
        .map_err(|e| Error::Usage(format!("cannot write {}: {e}", out.display())))?;
    let (_, written) = campaign::write_report(
        payouts.ledger(),
        &campaign.id,
        std::io::BufWriter::new(file),
    )
    .await
    .map_err(|e| Error::Runtime(e.into()))?;
    Ok(written)
}
