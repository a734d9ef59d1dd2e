//! `hongbao serve`.

use std::path::PathBuf;

use super::Error;

pub(crate) fn run(_config: Option<PathBuf>) -> super::Result {
    Err(Error::Runtime(anyhow::anyhow!(
        "`hongbao serve` is not available in this version yet: the payout ledger, dispatcher and API \
         are still being built. Available now: `hongbao sign` and `hongbao doctor`."
    )))
}
