//! A campaign's report: one CSV line per row of its file, as the command
//! line writes it to a file and the API answers it.

use std::io::Write;

use crate::model::rfc3339;
use crate::store::Ledger;
use crate::store::db::DbError;

/// The report's columns.
pub const REPORT_COLUMNS: [&str; 10] = [
    "line",
    "openid",
    "amount",
    "mch_billno",
    "status",
    "err_code",
    "message",
    "send_listid",
    "created_at",
    "updated_at",
];

/// The columns of a transfer campaign's confirm parameters.
pub const CONFIRM_COLUMNS: [&str; 8] = [
    "line",
    "openid",
    "amount",
    "out_bill_no",
    "mch_id",
    "appid",
    "package",
    "expires_at",
];

/// Records read per page while writing.
const PAGE: u64 = 5_000;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The output failed.
    #[error("cannot write the report: {0}")]
    Write(#[from] csv::Error),
}

/// Writes the confirm parameters of campaign `id`'s bills that await
/// their users (what each user's page passes to `requestMerchantTransfer`:
/// `mch_id`, `appid` — the merchant's `appid` — and `package`), in file order.
pub async fn write_confirms<W: Write>(
    ledger: &Ledger,
    id: &str,
    appid: &str,
    out: W,
) -> Result<(W, u64), ReportError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CONFIRM_COLUMNS)?;
    let mut written = 0u64;
    each_row(ledger, id, |line, r| {
        let Some(package) = r
            .package
            .as_ref()
            .filter(|_| r.status == crate::model::Status::AwaitingConfirmation)
        else {
            return Ok(());
        };
        writer.write_record([
            line.to_string(),
            r.re_openid.clone(),
            r.total_amount.to_yuan_string(),
            r.mch_billno.clone(),
            r.mch_id.clone(),
            appid.to_owned(),
            package.clone(),
            r.expires_at.map(rfc3339).unwrap_or_default(),
        ])?;
        written += 1;
        Ok(())
    })
    .await?;
    finish(writer, written)
}

/// Calls `each` with campaign `id`'s rows (their line and record), in
/// file order, a page at a time.
async fn each_row(
    ledger: &Ledger,
    id: &str,
    mut each: impl FnMut(i64, &crate::model::Redpack) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    let mut after = 0i64;
    loop {
        let page = crate::store::campaigns::records(ledger, id, after, PAGE).await?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = *last;
        for (line, r) in &page {
            each(*line, r)?;
        }
    }
}

/// The output, flushed, and the rows written.
fn finish<W: Write>(writer: csv::Writer<W>, written: u64) -> Result<(W, u64), ReportError> {
    let out = writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok((out, written))
}

/// Writes campaign `id`'s report to `out`, in file order; answers `out`
/// (flushed) and the count of rows written.
pub async fn write_report<W: Write>(
    ledger: &Ledger,
    id: &str,
    out: W,
) -> Result<(W, u64), ReportError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(REPORT_COLUMNS)?;
    let mut written = 0u64;
    each_row(ledger, id, |line, r| {
        writer.write_record([
            line.to_string(),
            r.re_openid.clone(),
            r.total_amount.to_yuan_string(),
            r.mch_billno.clone(),
            r.status.as_str().to_owned(),
            r.err_code.clone().unwrap_or_default(),
            r.message.clone().unwrap_or_default(),
            r.send_listid.clone().unwrap_or_default(),
            rfc3339(r.created_at),
            rfc3339(r.updated_at),
        ])?;
        written += 1;
        Ok(())
    })
    .await?;
    finish(writer, written)
}
