//! The `hongbao` command: thin glue from the command line to the crates.
//!
//! Exit codes: 0 done, 1 runtime failure, 2 bad usage or bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc, not the system's: a payout makes many small allocations on
/// several threads, and glibc's malloc took about a tenth of `serve`'s CPU
/// (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;

/// Pay WeChat cash red packets (现金红包) exactly once.
#[derive(Debug, Parser)]
#[command(name = "hongbao", version, about, propagate_version = true)]
struct Cli {
    /// The configuration file (else $HONGBAO_CONFIG, else ./hongbao.toml, else sandbox mode).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API, the dispatcher and the console (sandbox mode without a configuration).
    Serve,
    /// Send one red packet through the ledger and wait for its outcome.
    Send(Box<cmd::send::Args>),
    /// Pay by transfer bill (商家转账), which the user confirms in WeChat;
    /// `transfer cancel ID` cancels one the user has not confirmed.
    Transfer(Box<cmd::transfer::Args>),
    /// Read the ledger.
    #[command(subcommand)]
    Records(cmd::records::RecordsCommand),
    /// Ask WeChat (gethbinfo, or a transfer bill's query) about a record now,
    /// and update the ledger.
    ///
    /// An order number that is not in the ledger (one sent by another
    /// system) is asked about too; nothing is stored for it.
    Status {
        /// The order number (a red packet's mch_billno, a transfer's out_bill_no).
        #[arg(long)]
        billno: Option<String>,
        /// Or the record's id.
        #[arg(long)]
        id: Option<String>,
        /// The merchant whose order it is (needed for an order not in the
        /// ledger when several merchants are configured).
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Pause or resume a merchant's payouts.
    #[command(subcommand)]
    Merchant(cmd::records::MerchantCommand),
    /// Pay a whole list from a CSV file, resumably.
    #[command(subcommand)]
    Campaign(cmd::campaign::CampaignCommand),
    /// Print the string WeChat signs and its signature (the #1 SIGN_ERROR helper).
    Sign(cmd::sign::Args),
    /// Check each merchant's key, certificate and connection, without moving money.
    Doctor,
    /// Apply the database migrations (for `[database] migrate = false`).
    Migrate {
        /// Only list the migrations not applied; exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Run the simulated WeChat Pay on its own.
    Sandbox(Box<cmd::sandbox::Args>),
}

/// What a command ended with.
pub(crate) enum Outcome {
    Done,
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every client is built with ring explicitly; this makes ring the
    // default for anything that asks for the process-wide provider.
    let _ = hongbao_wxpay::transport::provider().install_default();
    cmd::init_logging(matches!(cli.command, Command::Serve | Command::Sandbox(_)));
    let result = match cli.command {
        Command::Sign(args) => cmd::sign::run(&args),
        Command::Doctor => cmd::run_async(cmd::doctor::run(cli.config)),
        Command::Migrate { check } => cmd::run_async(cmd::migrate::run(cli.config, check)),
        Command::Serve => cmd::run_async(cmd::serve::run(cli.config)),
        Command::Send(args) => cmd::run_async(cmd::send::run(cli.config, *args)),
        Command::Transfer(args) => cmd::run_async(cmd::transfer::run(cli.config, *args)),
        Command::Records(command) => cmd::run_async(cmd::records::records(cli.config, command)),
        Command::Status {
            billno,
            id,
            merchant,
        } => cmd::run_async(cmd::records::status(cli.config, billno, id, merchant)),
        Command::Merchant(command) => cmd::run_async(cmd::records::merchant(cli.config, command)),
        Command::Campaign(command) => cmd::run_async(cmd::campaign::run(cli.config, command)),
        Command::Sandbox(args) => cmd::run_async(cmd::sandbox::run(*args)),
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(cmd::Error::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(cmd::Error::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
