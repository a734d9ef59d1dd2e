//! The transfer side of the payout service: creating bills, asking WeChat
//! about one, cancelling one, and taking WeChat's callbacks.

use hongbao_wxpay::v3::{
    Bill, CallbackError, OutBillNo, SignatureHeaders, TransferOutcome, TransferState,
    parse_callback,
};

use super::{CreateError, Payouts, Selector, StatusError};
use crate::config::TenantConfig;
use crate::merchant::MerchantRuntime;
use crate::model::{
    AttemptOutcome, Code, QueryVerdict, Rail, Redpack, Status, TransferInput, ValidTransfer,
};
use crate::rail::transfer;
use crate::store::db::DbError;
use crate::store::{Idempotency, NewRecord, Noted, Notification, Stored};

/// A transfer record, with what WeChat answered about its bill now.
#[derive(Clone, Debug)]
pub struct TransferStatus {
    /// The record, brought up to date.
    pub record: Redpack,
    /// The bill as WeChat showed it.
    pub bill: Option<Bill>,
    /// WeChat has no bill under the record's number (yet).
    pub not_found: bool,
}

/// Why a bill was not cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such transfer for the caller.
    #[error("no such transfer")]
    NotFound,
    /// The record's status allows no cancel (the user confirmed, or it is settled).
    #[error("a transfer that is {0} cannot be cancelled: only one awaiting confirmation can")]
    NotCancellable(Status),
    /// WeChat refused the cancel (the user confirmed meanwhile, ...).
    #[error("WeChat refused the cancel: {}", .0.message)]
    Refused(Code),
    /// No usable answer: cancelling again is safe.
    #[error("WeChat did not answer usably ({0}); cancelling again is safe")]
    Wechat(String),
    /// The database is away.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why a callback was not taken (WeChat sends it again).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No such merchant paying by transfer.
    #[error("no merchant {0:?} pays by transfer here")]
    UnknownMerchant(String),
    /// The signature does not verify, or the body cannot be read: nothing
    /// was stored.
    #[error(transparent)]
    Refused(#[from] CallbackError),
    /// The database is away: nothing was stored.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn client(merchant: &MerchantRuntime) -> Result<&hongbao_wxpay::v3::TransferClient, String> {
    merchant.rails.transfer().ok_or_else(|| {
        format!(
            "merchant {} is not configured to pay by transfer",
            merchant.name()
        )
    })
}

impl Payouts {
    /// Counts a call made outside the dispatcher and keeps it with its
    /// record, as the dispatcher's are.
    async fn keep_call(
        &self,
        merchant: &MerchantRuntime,
        record: &Redpack,
        called: &transfer::Called,
        outcome: AttemptOutcome,
    ) -> Result<(), DbError> {
        let row = transfer::attempt_row(&record.mch_billno, called, outcome);
        self.metrics
            .call(merchant.name(), row.api, row.outcome.as_str());
        self.metrics.wechat_latency(row.api, called.latency);
        self.ledger.add_attempt(&record.id, row).await
    }

    /// Validates and stores a transfer bill for `tenant` (its
    /// `out_bill_no` allocated in the storing transaction). Nothing is
    /// stored if any rule is broken.
    pub async fn create_transfer(
        &self,
        tenant: &TenantConfig,
        input: &TransferInput,
        idempotency: Option<Idempotency>,
        campaign_id: Option<String>,
        prize_id: Option<String>,
    ) -> Result<Stored, CreateError> {
        let merchant = self
            .resolve_merchant(tenant, input.merchant.as_deref())
            .map_err(CreateError::Invalid)?;
        let encryptor = merchant.rails.transfer().and_then(|c| c.keys().encryptor());
        let valid = ValidTransfer::validate(input, &merchant.config, encryptor.as_ref())
            .map_err(CreateError::Invalid)?;
        self.enqueue(NewRecord {
            tenant: tenant.name.clone(),
            mch_id: merchant.config.mch_id.clone(),
            valid: valid.into(),
            idempotency,
            campaign_id,
            campaign_line: None,
            prize_id,
            daily_cap: None,
        })
        .await
    }

    async fn transfer_record(
        &self,
        tenant: &TenantConfig,
        selector: &Selector,
    ) -> Result<Option<Redpack>, DbError> {
        let record = match selector {
            Selector::Id(id) => self.get(tenant, id).await?,
            Selector::Billno(b) => self.ledger.get_by_billno(&tenant.merchants, b).await?,
        };
        Ok(record.filter(|r| r.rail == Rail::Transfer))
    }

    /// Asks WeChat about a transfer's bill now, keeps the call with the
    /// record, and brings the record up to date with what it shows (a
    /// record whose create is still in doubt is the dispatcher's to settle).
    pub async fn transfer_status(
        &self,
        tenant: &TenantConfig,
        selector: &Selector,
    ) -> Result<TransferStatus, StatusError> {
        let record = self
            .transfer_record(tenant, selector)
            .await?
            .ok_or(StatusError::NotFound)?;
        let merchant = self
            .merchants
            .get(&record.merchant)
            .ok_or(StatusError::NotFound)?;
        let client = client(merchant).map_err(StatusError::Wechat)?;
        let out_bill_no =
            OutBillNo::parse(&record.mch_billno).map_err(|e| StatusError::Wechat(e.to_string()))?;
        merchant.pacer_for(Rail::Transfer, false).wait().await?;
        let called = transfer::query(client, &out_bill_no).await;
        let outcome = called.outcome();
        let verdict = transfer::query_verdict(None, &crate::model::Awaiting::Nothing, &outcome);
        self.keep_call(
            merchant,
            &record,
            &called,
            AttemptOutcome::of_query(&verdict),
        )
        .await?;
        match (verdict, outcome.bill().cloned()) {
            (QueryVerdict::Found(state), Some(bill)) => {
                let follow = crate::decide::follow_in_ms(&state, 0, 0);
                if self.ledger.record_news(&record.id, &state, follow).await? {
                    self.events.outcomes(vec![record.id.clone()]);
                }
                let record = self
                    .ledger
                    .get(&record.id)
                    .await?
                    .ok_or(StatusError::NotFound)?;
                Ok(TransferStatus {
                    record,
                    bill: Some(bill),
                    not_found: false,
                })
            }
            (QueryVerdict::NotFound, _) => Ok(TransferStatus {
                record,
                bill: None,
                not_found: true,
            }),
            (other, _) => Err(StatusError::Wechat(format!("{other:?}"))),
        }
    }

    /// Cancels a transfer's bill (allowed until its user confirms it). The
    /// record becomes `cancelling`, then `cancelled` (its prize, if any,
    /// claimable again); cancelling again is safe.
    pub async fn cancel_transfer(
        &self,
        tenant: &TenantConfig,
        id: &str,
    ) -> Result<Redpack, CancelError> {
        let record = self
            .transfer_record(tenant, &Selector::Id(id.to_owned()))
            .await?
            .ok_or(CancelError::NotFound)?;
        match record.status {
            Status::AwaitingConfirmation | Status::Cancelling => {}
            Status::Cancelled => return Ok(record),
            other => return Err(CancelError::NotCancellable(other)),
        }
        let merchant = self
            .merchants
            .get(&record.merchant)
            .ok_or(CancelError::NotFound)?;
        let client = client(merchant).map_err(CancelError::Wechat)?;
        let out_bill_no =
            OutBillNo::parse(&record.mch_billno).map_err(|e| CancelError::Wechat(e.to_string()))?;
        merchant.pacer_for(Rail::Transfer, true).wait().await?;
        let called = transfer::cancel(client, &out_bill_no).await;
        let outcome = called.outcome();
        let kept = match &outcome {
            TransferOutcome::Pending(_) | TransferOutcome::Closed(_) => AttemptOutcome::Found,
            TransferOutcome::Refused(_) | TransferOutcome::NotFound(_) => AttemptOutcome::Invalid,
            TransferOutcome::RateLimited(_) => AttemptOutcome::RateLimited,
            _ => AttemptOutcome::Unknown,
        };
        self.keep_call(merchant, &record, &called, kept).await?;
        let bill = match outcome {
            TransferOutcome::Pending(bill)
            | TransferOutcome::Closed(bill)
            | TransferOutcome::Succeeded(bill)
            | TransferOutcome::AwaitingUser(bill) => bill,
            TransferOutcome::Refused(e) | TransferOutcome::NotFound(e) => {
                return Err(CancelError::Refused(transfer::code(&e)));
            }
            TransferOutcome::ParametersChanged(e) | TransferOutcome::PauseMerchant(_, e) => {
                return Err(CancelError::Wechat(e.to_string()));
            }
            TransferOutcome::RateLimited(e) => return Err(CancelError::Wechat(e.to_string())),
            TransferOutcome::Ambiguous { detail, .. } | TransferOutcome::RetrySameBill(detail) => {
                return Err(CancelError::Wechat(detail));
            }
        };
        let state = transfer::state_of(&bill);
        let follow = crate::decide::follow_in_ms(&state, 0, 0);
        if self.ledger.record_news(&record.id, &state, follow).await? {
            self.events.outcomes(vec![record.id.clone()]);
        }
        let record = self
            .ledger
            .get(&record.id)
            .await?
            .ok_or(CancelError::NotFound)?;
        match bill.state {
            TransferState::Canceling | TransferState::Cancelled => Ok(record),
            _ => Err(CancelError::NotCancellable(record.status)),
        }
    }

    /// Takes WeChat's callback for `merchant`: verified first (nothing is
    /// read or stored from one that does not verify), decrypted, stored
    /// with its outcome in one transaction. `Ok` means durable.
    pub async fn notify_transfer(
        &self,
        merchant: &str,
        headers: &SignatureHeaders,
        body: &[u8],
    ) -> Result<Noted, NotifyError> {
        let runtime = self.merchants.get(merchant);
        let (Some(client), Some(v3)) = (
            runtime.and_then(|m| m.rails.transfer()),
            runtime.and_then(|m| m.config.v3.as_ref()),
        ) else {
            return Err(NotifyError::UnknownMerchant(merchant.to_owned()));
        };
        let n = parse_callback(
            client.keys(),
            &v3.apiv3_key,
            headers,
            body,
            time::OffsetDateTime::now_utc(),
        )?;
        let notification = Notification {
            merchant: merchant.to_owned(),
            id: n.id.clone(),
            out_bill_no: n.bill.out_bill_no.as_str().to_owned(),
            transfer_amount: n.bill.transfer_amount,
            openid: n.bill.openid.clone(),
            state: transfer::state_of(&n.bill),
            resource: serde_json::to_string(&n.bill).expect("a bill serialises"),
        };
        let noted = self.ledger.record_notification(&notification).await?;
        match &noted {
            Noted::Applied { id, changed: true } => self.events.outcomes(vec![id.clone()]),
            Noted::Unknown => tracing::warn!(
                %merchant,
                out_bill_no = %notification.out_bill_no,
                state = %notification.state.wechat_status,
                "a transfer callback for a bill no record has (kept for the operator)"
            ),
            _ => {}
        }
        Ok(noted)
    }
}
