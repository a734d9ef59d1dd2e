//! Payout rails: what is particular to each way of paying (build the
//! request, call WeChat, read the answer, map it to statuses, how to ask
//! about an order, how to go on under a new number), behind one shape, as
//! a payment provider's connectors are. The dispatcher, leases, pace,
//! reconciliation, campaigns, prizes and idempotency do not know which
//! rail they drive: they speak [`crate::model::verdict`].
//!
//! - [`redpack`]: cash red packets (WeChat Pay v2);
//! - [`transfer`]: transfer bills the user confirms (APIv3 商家转账).
//!
//! A rail's records may wait long for their user (a transfer bill waits up
//! to 24 hours to be confirmed), may be cancelled, and may be settled by a
//! callback before the dispatcher asks: all of that is an accepted order
//! followed (queried on a schedule) until its state can change no more,
//! which the same vocabulary already speaks.

pub mod redpack;
pub mod transfer;

use std::time::Duration;

use hongbao_wxpay::Client;
use hongbao_wxpay::v3::{OutBillNo, TransferClient};

use crate::model::{
    AttemptOutcome, AttemptRow, Awaiting, Claimed, QueryVerdict, Rail, RailRequest, SendVerdict,
};

/// A call made for a record: what it told, and the attempt to keep.
#[derive(Debug)]
pub struct Call<V> {
    /// What WeChat's answer means.
    pub verdict: V,
    /// The call, for the record's history.
    pub attempt: AttemptRow,
    /// How long it took.
    pub latency: Duration,
}

/// A query ready to be made: built before the pace is waited for, so that
/// a record whose query cannot even be built costs no slot.
#[derive(Debug)]
pub enum Query {
    /// A red packet's `gethbinfo`.
    Redpack {
        /// The signed request.
        request: hongbao_wxpay::Prepared,
        /// The order number asked about.
        mch_billno: String,
    },
    /// A transfer bill's query by `out_bill_no`.
    Transfer {
        /// The bill asked about.
        out_bill_no: OutBillNo,
    },
}

/// A merchant's clients, one per rail it pays on.
#[derive(Debug)]
pub struct Rails {
    redpack: Option<Client>,
    transfer: Option<TransferClient>,
}

/// What a call on a rail the merchant has no client for answers.
fn no_client(rail: Rail) -> String {
    format!("this merchant is not configured to pay by {rail}")
}

impl Rails {
    /// The clients of a merchant paying by red packet and, with its
    /// APIv3 keys, by transfer.
    pub fn new(redpack: Option<Client>, transfer: Option<TransferClient>) -> Rails {
        Rails { redpack, transfer }
    }

    /// The red packet client (WeChat Pay v2), if the merchant has the v2 key.
    pub fn redpack(&self) -> Option<&Client> {
        self.redpack.as_ref()
    }

    /// The transfer client (APIv3), if the merchant has its keys.
    pub fn transfer(&self) -> Option<&TransferClient> {
        self.transfer.as_ref()
    }

    /// What a claimed record's previous outcome waits to have confirmed.
    pub fn awaiting(claimed: &Claimed) -> Awaiting {
        match claimed.request.rail() {
            Rail::Redpack => redpack::awaiting(claimed.err_code.as_deref()),
            Rail::Transfer => transfer::awaiting(claimed.err_code.as_deref()),
        }
    }

    /// The query of the order `order_no` of `rail`.
    pub fn query(&self, rail: Rail, order_no: &str) -> Result<Query, String> {
        match rail {
            Rail::Redpack => {
                let client = self.redpack.as_ref().ok_or_else(|| no_client(rail))?;
                Ok(Query::Redpack {
                    request: redpack::query_request(client, order_no)?,
                    mch_billno: order_no.to_owned(),
                })
            }
            Rail::Transfer => {
                if self.transfer.is_none() {
                    return Err(no_client(rail));
                }
                Ok(Query::Transfer {
                    out_bill_no: OutBillNo::parse(order_no).map_err(|e| e.to_string())?,
                })
            }
        }
    }

    /// Sends a claimed record's request, unchanged.
    pub async fn send(&self, claimed: &Claimed) -> Call<SendVerdict> {
        match &claimed.request {
            RailRequest::Redpack { kind, prepared } => {
                let Some(client) = &self.redpack else {
                    return not_configured(Rail::Redpack, prepared.mch_billno(), "send");
                };
                let called = redpack::call(client, prepared).await;
                let (verdict, attempt) = redpack::send_outcome(*kind, prepared, &called);
                Call {
                    verdict,
                    attempt,
                    latency: called.latency,
                }
            }
            RailRequest::Transfer { prepared } => {
                let Some(client) = &self.transfer else {
                    return not_configured(Rail::Transfer, prepared.out_bill_no().as_str(), "send");
                };
                let called = transfer::create(client, prepared).await;
                let verdict = transfer::send_verdict(&called.outcome());
                let attempt = transfer::attempt_row(
                    prepared.out_bill_no().as_str(),
                    &called,
                    AttemptOutcome::of_send(&verdict),
                );
                Call {
                    verdict,
                    attempt,
                    latency: called.latency,
                }
            }
        }
    }

    /// Makes `query`. With the claimed record it is about, the order WeChat
    /// shows is compared with the record's request (another order under
    /// the same number is never taken for the record's own).
    pub async fn ask(&self, query: &Query, claimed: Option<&Claimed>) -> Call<QueryVerdict> {
        match query {
            Query::Redpack {
                request,
                mch_billno,
            } => {
                let Some(client) = &self.redpack else {
                    return not_configured(Rail::Redpack, mch_billno, "query");
                };
                let called = redpack::call(client, request).await;
                let (stored, awaiting) = match claimed.map(|c| (&c.request, &c.awaiting)) {
                    Some((RailRequest::Redpack { prepared, .. }, awaiting)) => {
                        (Some(prepared), awaiting.clone())
                    }
                    _ => (None, Awaiting::Nothing),
                };
                let (verdict, attempt, _) =
                    redpack::query_outcome(mch_billno, stored, &awaiting, &called);
                Call {
                    verdict,
                    attempt,
                    latency: called.latency,
                }
            }
            Query::Transfer { out_bill_no } => {
                let Some(client) = &self.transfer else {
                    return not_configured(Rail::Transfer, out_bill_no.as_str(), "query");
                };
                let called = transfer::query(client, out_bill_no).await;
                let (stored, awaiting) = match claimed.map(|c| (&c.request, &c.awaiting)) {
                    Some((RailRequest::Transfer { prepared }, awaiting)) => {
                        (Some(prepared), awaiting.clone())
                    }
                    _ => (None, Awaiting::Nothing),
                };
                let verdict = transfer::query_verdict(stored, &awaiting, &called.outcome());
                let attempt = transfer::attempt_row(
                    out_bill_no.as_str(),
                    &called,
                    AttemptOutcome::of_query(&verdict),
                );
                Call {
                    verdict,
                    attempt,
                    latency: called.latency,
                }
            }
        }
    }
}

/// How much of an answer an attempt keeps: its first 4,096 characters.
const ANSWER_KEPT_CHARS: usize = 4096;

/// The part of an answer an attempt keeps, cut at a character's boundary.
fn kept_answer(raw: &str) -> String {
    // A character is at least a byte: a short answer is kept whole
    // without counting its characters.
    if raw.len() <= ANSWER_KEPT_CHARS {
        return raw.to_owned();
    }
    raw.char_indices()
        .nth(ANSWER_KEPT_CHARS)
        .map_or(raw, |(end, _)| &raw[..end])
        .to_owned()
}

/// A call on a rail the merchant has no client for: nothing is sent, and
/// the record waits (the configuration must change for it to go on).
fn not_configured<V: From<String>>(rail: Rail, order_no: &str, what: &'static str) -> Call<V> {
    let detail = no_client(rail);
    Call {
        verdict: V::from(detail.clone()),
        attempt: AttemptRow {
            api: what,
            sends: false,
            order_no: order_no.to_owned(),
            started_at_ms: 0,
            latency_ms: 0,
            outcome: AttemptOutcome::NotSent,
            err_code: None,
            detail: Some(detail),
            answer: None,
        },
        latency: Duration::ZERO,
    }
}

impl From<String> for SendVerdict {
    fn from(detail: String) -> Self {
        SendVerdict::NotSent(detail)
    }
}

impl From<String> for QueryVerdict {
    fn from(detail: String) -> Self {
        QueryVerdict::RetryLater(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_keeps_the_first_4096_characters_of_an_answer() {
        assert_eq!(kept_answer("<xml/>"), "<xml/>");
        let ascii = "a".repeat(5000);
        assert_eq!(kept_answer(&ascii), "a".repeat(4096));
        // 3 bytes a character: longer than 4,096 bytes, shorter in characters.
        let short = "红".repeat(2000);
        assert_eq!(kept_answer(&short), short);
        let long = format!("{}包", "红".repeat(4096));
        assert_eq!(kept_answer(&long), "红".repeat(4096));
        let exact = "红".repeat(4096);
        assert_eq!(kept_answer(&exact), exact);
    }
}
