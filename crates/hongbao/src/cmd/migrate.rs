//! `hongbao migrate`: applies the database migrations, for operators who
//! run them as a step of their own (with `[database] migrate = false`, the
//! instances then only check that the database is current).

use std::path::PathBuf;

use anyhow::Context;
use hongbao_core::store::db::Db;

use super::setup;
use crate::Outcome;

pub(crate) async fn run(config: Option<PathBuf>, check: bool) -> super::Result {
    let setup = setup::load(config.as_deref()).await?;
    let url = &setup.config.database.url;
    let shown = hongbao_server::redact_url(url);
    let db = Db::connect(url)
        .await
        .with_context(|| format!("database {shown}"))?;
    let pending = db
        .pending_migrations()
        .await
        .with_context(|| format!("database {shown}"))?;
    if pending.is_empty() {
        out!("{shown}: up to date");
        return Ok(Outcome::Done);
    }
    for (version, name) in &pending {
        out!("{shown}: migration {version} {name} is not applied");
    }
    if check {
        out!("run `hongbao migrate` to apply them");
        return Ok(Outcome::Failed);
    }
    db.migrate()
        .await
        .with_context(|| format!("database {shown}"))?;
    out!("{shown}: applied {} migrations; up to date", pending.len());
    Ok(Outcome::Done)
}
