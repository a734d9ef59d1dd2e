//! Campaigns: a file of payouts, validated whole before anything is paid,
//! imported in batches that an interruption cannot tear, and paid as
//! ordinary ledger records.
//!
//! The file is CSV with a header. Its columns: `openid`, then the amount as
//! `amount` (yuan, a decimal string, at most two decimals) or `total_amount`
//! (fen), and optionally `wishing`, `act_name`, `remark`, `scene_id`. The
//! file is read as a stream: memory stays flat whatever its length (but
//! for the set of openids seen, 37 bytes each, to refuse duplicates).

mod report;
mod rows;

use std::io::Read;

use crate::config::MerchantConfig;
use crate::store::codec;
use crate::store::db::DbError;
use crate::store::{Ledger, NewRecord, StoreError, Stored};

pub use crate::model::{Campaign, CampaignOptions, Checked, Totals};
pub use crate::store::campaigns::{
    create, create_with_key, find, find_by_key, find_in_any_tenant, get, list, records, set_paused,
    totals,
};
pub use report::{CONFIRM_COLUMNS, REPORT_COLUMNS, ReportError, write_confirms, write_report};
pub use rows::{CampaignReader, ROW_ERRORS_SHOWN, Row, RowError, validate};

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file no longer passes, or is not the one validated.
    #[error("the file changed since it was validated ({0}); run the command again")]
    Changed(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A batch could not be stored.
    #[error("{0}")]
    Store(String),
}

/// Rows per import transaction.
pub const IMPORT_BATCH: usize = 1_000;

/// Stores the rows of `campaign` not stored yet, from its (validated)
/// file, `IMPORT_BATCH` rows per transaction; `progress` hears the count of
/// rows stored after each batch.
pub async fn import<R: Read>(
    ledger: &Ledger,
    campaign: &Campaign,
    reader: R,
    merchant: &MerchantConfig,
    mut progress: impl FnMut(u64),
) -> Result<(), ImportError> {
    let mut rows = CampaignReader::new(reader, &campaign.options, merchant)
        .map_err(|e| ImportError::Changed(e.to_string()))?;
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut last = 0u64;
    let flush = |batch: Vec<NewRecord>, upto: u64| async move {
        let results = ledger
            .store_with_progress(batch, Some((campaign.id.clone(), codec::to_db(upto))))
            .await?;
        for result in results {
            match result {
                Ok(Stored::Created(_)) => {}
                Ok(Stored::Replayed(_)) => {
                    return Err(ImportError::Store("a row was stored twice".into()));
                }
                Err(StoreError::Unavailable(e) | StoreError::Failed(e)) => {
                    return Err(ImportError::Store(e));
                }
                Err(StoreError::IdempotencyConflict) => {
                    return Err(ImportError::Store("idempotency conflict".into()));
                }
            }
        }
        Ok::<(), ImportError>(())
    };
    while let Some(row) = rows.next_row() {
        last = row.index;
        if row.index <= campaign.imported {
            continue;
        }
        let valid = row
            .result
            .map_err(|e| ImportError::Changed(e.to_string()))?;
        batch.push(NewRecord {
            tenant: campaign.tenant.clone(),
            mch_id: merchant.mch_id.clone(),
            valid,
            idempotency: None,
            campaign_id: Some(campaign.id.clone()),
            campaign_line: Some(codec::to_db(row.line)),
            prize_id: None,
            daily_cap: campaign.options.per_openid_daily,
        });
        if batch.len() == IMPORT_BATCH {
            flush(
                std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH)),
                row.index,
            )
            .await?;
            progress(row.index);
        }
    }
    if !batch.is_empty() {
        flush(batch, last).await?;
        progress(last);
    }
    let sha256 = rows.finish();
    if sha256 != campaign.file_sha256 {
        return Err(ImportError::Changed("its SHA-256 differs".into()));
    }
    Ok(())
}
