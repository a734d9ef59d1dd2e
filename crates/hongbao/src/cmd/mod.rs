//! The subcommands.

/// `println!` for the commands' output. The reader may stop reading early
/// (`hongbao doctor | head -1`): then the rest of the output is dropped and
/// the command goes on to its normal end, rather than panicking midway,
/// perhaps with a payment in flight.
macro_rules! out {
    () => {
        $crate::cmd::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cmd::write_line(format_args!($($arg)*))
    };
}

pub(crate) mod campaign;
pub(crate) mod doctor;
pub(crate) mod migrate;
pub(crate) mod records;
pub(crate) mod sandbox;
pub(crate) mod send;
pub(crate) mod serve;
pub(crate) mod setup;
pub(crate) mod sign;
pub(crate) mod texts;
pub(crate) mod transfer;

use std::future::Future;

use crate::Outcome;

/// Why a command stopped.
pub(crate) enum Error {
    /// Bad usage or bad input (exit code 2).
    Usage(String),
    /// Something failed at run time (exit code 1).
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Error::Runtime(e)
    }
}

pub(crate) type Result = std::result::Result<Outcome, Error>;

/// Writes one line to standard output, unless it is closed; see `out!`.
pub(crate) fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    // Set at the first failed write: nothing more is written after it.
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"));
    if let Err(e) = written {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::warn!(
                "cannot write to standard output ({e}); the rest of the output is dropped"
            );
        }
    }
}

/// Runs an async command on a multi-threaded runtime.
pub(crate) fn run_async(command: impl Future<Output = Result>) -> Result {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(e.into()))?;
    runtime.block_on(command)
}

/// Ctrl-C or SIGTERM. Listening starts when this is called, not when it is
/// first awaited: from then on a signal is the command's to handle (say what
/// is stored, finish the call in flight), never an exit mid-way.
pub(crate) fn wait_for_shutdown() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `ARG` as a shell word: quoted unless it is plainly safe, so that a
/// printed command can be pasted as it is.
pub(crate) fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@%".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// ` --config FILE` when the command was given one, for printed commands.
/// Dispatches `record` in this process until it has an outcome, `wait`
/// seconds pass or `interrupt` comes; the call in flight is finished and
/// recorded before this returns. Returns the record as then stored, and
/// whether it was interrupted.
pub(crate) async fn dispatch_one(
    payouts: &hongbao_core::payouts::Payouts,
    settings: &hongbao_core::config::DispatchSettings,
    record: hongbao_core::model::Redpack,
    wait: u64,
    interrupt: impl Future<Output = ()>,
) -> std::result::Result<(hongbao_core::model::Redpack, bool), Error> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dispatcher = payouts.start_dispatcher(
        hongbao_core::dispatch::DispatchConfig::from_settings(
            settings,
            hongbao_core::model::Scope::Records(vec![record.id.clone()]),
        ),
        &stopped,
    );
    let interrupted = tokio::select! {
        waited = payouts.wait(&record.id, std::time::Duration::from_secs(wait)) => {
            if let Err(e) = waited {
                tracing::warn!("waiting for {}: {e}", record.id);
            }
            false
        }
        () = interrupt => true,
    };
    if interrupted {
        eprintln!("stopping: finishing the call in flight…");
    }
    let _ = stop.send(true);
    // The call in flight, if any, ends and is recorded before this returns:
    // what is printed next is the outcome on record, not a guess.
    dispatcher.finish().await;
    let settled = payouts
        .ledger()
        .get(&record.id)
        .await
        .map_err(|e| Error::Runtime(e.into()))?
        .unwrap_or(record);
    Ok((settled, interrupted))
}

pub(crate) fn config_flag(config: Option<&std::path::Path>) -> String {
    config.map_or_else(String::new, |path| {
        format!(" --config {}", shell_word(&path.to_string_lossy()))
    })
}

/// Logs to standard error: `RUST_LOG` chooses what (default: info for
/// long-running commands, warnings otherwise).
pub(crate) fn init_logging(long_running: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if long_running {
        "info,sqlx=warn"
    } else {
        "warn,sqlx=warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
