//! The `hongbao` binary's integration tests: the real commands and `serve`,
//! against a sandbox in the test process. One test binary (one link on
//! two cores instead of one per file); each module is one concern.

mod support;

mod api;
mod campaign_api;
mod campaigns;
mod cli_payouts;
mod cli_tools;
mod connections;
mod console;
mod database_faults;
mod exactly_once;
mod instances;
mod prizes;
mod transfers;
