//! `hongbao sandbox`: the simulated WeChat Pay on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hongbao_sandbox::{
    Faults, Followers, Lifecycle, Probability, Rules, Sandbox, SandboxConfig, Transfers, V3Signer,
    files,
};
use hongbao_wxpay::Fen;

use super::Error;
use crate::Outcome;

/// Run the simulated WeChat Pay (red packet APIs, gethbinfo lifecycle,
/// official account API, APIv3 transfer bills with callbacks and a
/// confirm page) with its admin API. No real money moves.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where the HTTPS API listens.
    #[arg(long, default_value = "127.0.0.1:9443", value_name = "ADDR")]
    listen: SocketAddr,
    /// Where the admin API listens (plain HTTP, loopback only); default: the next port on loopback.
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,
    /// Where certificates, secrets, merchant.toml and the journal live (created on first start).
    #[arg(long, default_value = "hongbao-sandbox", value_name = "DIR")]
    data_dir: PathBuf,
    /// The merchant's starting balance, in yuan.
    #[arg(long, default_value = "1000000.00", value_name = "YUAN")]
    balance: String,
    /// Calls per minute before FREQ_LIMIT (0: unlimited).
    #[arg(long, default_value_t = 1800, value_name = "N")]
    rate_per_minute: u32,
    /// Red packets per openid per day before SENDNUM_LIMIT.
    #[arg(long, default_value_t = 10, value_name = "N")]
    sendnum_limit: u32,
    /// Yuan per openid per day before RCVDAMOUNT_LIMIT.
    #[arg(long, default_value = "1000.00", value_name = "YUAN")]
    rcvd_amount_limit: String,
    /// Yuan per merchant per day before SENDAMOUNT_LIMIT.
    #[arg(long, default_value = "1000000.00", value_name = "YUAN")]
    send_amount_limit: String,
    /// The chance that a user opens a packet (else it is refunded).
    #[arg(long, default_value = "0.9", value_name = "P")]
    receive_probability: Probability,
    /// How long after sending users open packets (e.g. 60s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    receive_after: Duration,
    /// How long an unopened packet waits before its refund.
    #[arg(long, default_value = "24h", value_parser = parse_duration, value_name = "DURATION")]
    refund_after: Duration,
    /// How long a packet answered with PROCESSING stays SENDING.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    processing_for: Duration,
    /// How long every accepted packet stays SENDING before SENT (0: SENT at once).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    sending_for: Duration,
    /// Who follows the official account: all, none, or a comma-separated list of openids.
    #[arg(long, default_value = "all", value_name = "WHO")]
    followers: Followers,
    /// Seed of the random choices, for reproducible faults and lifecycles.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Chance of SYSTEMERROR before committing (nothing paid).
    #[arg(long, default_value = "0", value_name = "P")]
    fault_systemerror_before: Probability,
    /// Chance of SYSTEMERROR after committing (paid, caller told otherwise).
    #[arg(long, default_value = "0", value_name = "P")]
    fault_systemerror_after: Probability,
    /// Chance of closing the connection without an answer after committing.
    #[arg(long, default_value = "0", value_name = "P")]
    fault_drop_after: Probability,
    /// Chance of PROCESSING (committed, SENDING for a while).
    #[arg(long, default_value = "0", value_name = "P")]
    fault_processing: Probability,
    /// Chance of a garbage body.
    #[arg(long, default_value = "0", value_name = "P")]
    fault_garbage: Probability,
    /// Chance of added latency (see --latency).
    #[arg(long, default_value = "0", value_name = "P")]
    fault_latency: Probability,
    /// The added latency.
    #[arg(long, default_value = "0ms", value_parser = parse_duration, value_name = "DURATION")]
    latency: Duration,
    /// Let sendgroupredpack (fission, retired by WeChat on 2024-06-05) pay, for legacy tests.
    #[arg(long)]
    legacy_fission: bool,
    /// The operations account's starting balance (运营账户: transfers), in yuan.
    #[arg(long, default_value = "1000000.00", value_name = "YUAN")]
    operations_balance: String,
    /// The chance that a user confirms a transfer bill by themself.
    #[arg(long, default_value = "0.9", value_name = "P")]
    confirm_probability: Probability,
    /// How long after creation users confirm.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    confirm_after: Duration,
    /// How long a confirmed bill stays TRANSFERING.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    transferring_for: Duration,
    /// How long a bill waits for the user before FAIL / OVERDUE_CLOSE.
    #[arg(long, default_value = "24h", value_parser = parse_duration, value_name = "DURATION")]
    expire_after: Duration,
    /// How long a cancelled bill stays CANCELING.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    canceling_for: Duration,
    /// Creates per second before FREQUENCY_LIMITED (0: unlimited).
    #[arg(long, default_value_t = 100, value_name = "N")]
    create_per_second: u32,
    /// Queries per second before FREQUENCY_LIMITED (0: unlimited).
    #[arg(long, default_value_t = 100, value_name = "N")]
    query_per_second: u32,
    /// The largest transfer bill the merchant platform allows, in yuan.
    #[arg(long, default_value = "5000.00", value_name = "YUAN")]
    max_transfer: String,
    /// Which key signs APIv3 answers and callbacks: public-key or platform-certificate.
    #[arg(long, default_value = "public-key", value_name = "KEY")]
    v3_signer: V3Signer,
    /// The first wait before a refused callback is sent again (then 20x, then 120x).
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    callback_retry_after: Duration,
    /// The chance that a delivered callback is sent once more.
    #[arg(long, default_value = "0.1", value_name = "P")]
    callback_duplicate_probability: Probability,
}

/// `90`, `90s`, `500ms`, `5m`, `24h`, `1d`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 5m, 24h"))?;
    let seconds = |s: u64| Duration::from_secs(n.saturating_mul(s));
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(seconds(1)),
        "m" => Ok(seconds(60)),
        "h" => Ok(seconds(3600)),
        "d" => Ok(seconds(86_400)),
        _ => Err(format!("{text:?}: the unit must be ms, s, m, h or d")),
    }
}

fn yuan(flag: &str, text: &str) -> Result<Fen, Error> {
    Fen::parse_yuan(text).map_err(|e| Error::Usage(format!("--{flag}: {}", e.message)))
}

pub(crate) fn config(args: &Args) -> Result<SandboxConfig, Error> {
    let admin_listen = args.admin_listen.unwrap_or_else(|| {
        let port = if args.listen.port() == 0 {
            0
        } else {
            args.listen.port().saturating_add(1)
        };
        // Loopback whatever the API listens on: the admin API moves money
        // and clocks, and is never exposed.
        let ip = if args.listen.ip().is_loopback() {
            args.listen.ip()
        } else if args.listen.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, port)
    });
    let faults = Faults {
        systemerror_before: args.fault_systemerror_before,
        systemerror_after: args.fault_systemerror_after,
        drop_after: args.fault_drop_after,
        processing: args.fault_processing,
        garbage: args.fault_garbage,
        latency: args.fault_latency,
        latency_ms: u64::try_from(args.latency.as_millis()).unwrap_or(u64::MAX),
    };
    faults.validate().map_err(Error::Usage)?;
    let mut config = SandboxConfig::new(&args.data_dir);
    config.listen = args.listen;
    config.admin_listen = Some(admin_listen);
    config.balance = yuan("balance", &args.balance)?;
    config.rules = Rules {
        rate_per_minute: args.rate_per_minute,
        sendnum_limit: args.sendnum_limit,
        rcvd_amount_limit: yuan("rcvd-amount-limit", &args.rcvd_amount_limit)?,
        send_amount_limit: yuan("send-amount-limit", &args.send_amount_limit)?,
        legacy_fission: args.legacy_fission,
        ..Rules::default()
    };
    config.operations_balance = yuan("operations-balance", &args.operations_balance)?;
    config.transfers = Transfers {
        confirm_probability: args.confirm_probability,
        confirm_after: args.confirm_after,
        transferring_for: args.transferring_for,
        expire_after: args.expire_after,
        canceling_for: args.canceling_for,
        create_per_second: args.create_per_second,
        query_per_second: args.query_per_second,
        max_amount: yuan("max-transfer", &args.max_transfer)?,
        signer: args.v3_signer,
        callback_retry_after: args.callback_retry_after,
        callback_duplicate_probability: args.callback_duplicate_probability,
        ..Transfers::default()
    };
    config.lifecycle = Lifecycle {
        receive_probability: args.receive_probability,
        receive_after: args.receive_after,
        refund_after: args.refund_after,
        processing_for: args.processing_for,
        sending_for: args.sending_for,
        ..Lifecycle::default()
    };
    config.faults = faults;
    config.followers = args.followers.clone();
    config.seed = args.seed;
    Ok(config)
}

pub(crate) async fn run(args: Args) -> super::Result {
    let config = config(&args)?;
    if config.admin_listen.is_some_and(|a| !a.ip().is_loopback()) {
        return Err(Error::Usage(
            "--admin-listen must be a loopback address (127.0.0.1 or ::1)".into(),
        ));
    }
    let sandbox = Sandbox::start(config)
        .await
        .map_err(|e| Error::Runtime(e.into()))?;
    let id = sandbox.identity();
    let path = |f: &str| id.path(f).display().to_string();
    out!("hongbao sandbox: a simulated WeChat Pay. No real money moves.");
    out!();
    out!("  API (HTTPS)     {}", sandbox.api_base());
    if let Some(admin) = sandbox.admin_base() {
        out!("  admin (HTTP)    {admin}   e.g. curl {admin}/ledger");
    }
    out!("  mch_id          {}", id.secrets.mch_id);
    out!("  appid           {} (official account)", id.secrets.appid);
    out!("  mini program    {}", id.secrets.miniprogram_appid);
    out!("  CA              {}", path(files::CA));
    out!(
        "  certificate     {} + {}",
        path(files::CLIENT_CERT),
        path(files::CLIENT_KEY)
    );
    out!(
        "  PKCS#12         {} (password: the mch_id)",
        path(files::CLIENT_P12)
    );
    out!(
        "  secrets         {} (API key, APIv3 key, AppSecret, WeCom secret)",
        path(files::SECRETS)
    );
    out!(
        "  APIv3 (HTTPS)   {} (transfers; no client certificate)",
        sandbox.api_base()
    );
    out!(
        "  微信支付公钥    {} ({})",
        path(files::PUB_KEY),
        id.secrets.wechatpay_public_key_id
    );
    out!("  platform cert   {} (legacy)", path(files::PLATFORM_CERT));
    out!(
        "  APIv3 key       in {} (apiv3_key)",
        path(files::MERCHANT_TOML)
    );
    if let Some(admin) = sandbox.admin_base() {
        out!("  confirm page    {admin}/confirm?package=PACKAGE_INFO");
    }
    out!("  merchant config {}", path(files::MERCHANT_TOML));
    out!();
    out!(
        "Check it: hongbao doctor --config {}",
        path(files::MERCHANT_TOML)
    );
    out!("Stop with Ctrl-C.");
    super::wait_for_shutdown().await;
    sandbox.stop();
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5 m").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn the_admin_api_stays_on_loopback_when_the_api_listens_everywhere() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::parse_from(["sandbox", "--listen", "0.0.0.0:9443", "--data-dir", "d"]);
        let Ok(config) = config(&cli.args) else {
            panic!("a valid sandbox configuration")
        };
        assert_eq!(
            config.admin_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9444)))
        );
    }
}
