//! The subcommands.

pub(crate) mod doctor;
pub(crate) mod sandbox;
pub(crate) mod serve;
pub(crate) mod sign;

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

/// Runs an async command on a multi-threaded runtime.
pub(crate) fn run_async(command: impl Future<Output = Result>) -> Result {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(e.into()))?;
    runtime.block_on(command)
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
