//! Payout rails: what is particular to each way of paying (build the
//! request, call WeChat, read the answer, map it to statuses, how to ask
//! about an order, how to go on under a new number), behind one shape, as
//! a payment provider's connectors are. The dispatcher, leases, pace,
//! reconciliation, campaigns, prizes and idempotency do not know which
//! rail they drive: they speak [`crate::model::verdict`].
//!
//! - [`redpack`]: cash red packets (WeChat Pay v2).
//!
//! A rail's records may wait long for their user (a transfer bill waits up
//! to 24 hours to be confirmed), may be cancelled, and may be settled by a
//! callback before the dispatcher asks: all of that is an accepted order
//! followed (queried on a schedule) until its state can change no more,
//! which the same vocabulary already speaks.

pub mod redpack;

use std::time::Duration;

use hongbao_wxpay::Client;

use crate::model::{AttemptRow, Awaiting, Claimed, QueryVerdict, Rail, RailRequest, SendVerdict};

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
}

/// A merchant's clients, one per rail it pays on.
#[derive(Debug)]
pub struct Rails {
    redpack: Client,
}

impl Rails {
    /// The clients of a merchant paying by red packet.
    pub fn new(redpack: Client) -> Rails {
        Rails { redpack }
    }

    /// The red packet client (WeChat Pay v2).
    pub fn redpack(&self) -> &Client {
        &self.redpack
    }

    /// What a claimed record's previous outcome waits to have confirmed.
    pub fn awaiting(claimed: &Claimed) -> Awaiting {
        match claimed.request.rail() {
            Rail::Redpack => redpack::awaiting(claimed.err_code.as_deref()),
        }
    }

    /// The query of the order `order_no` of `rail`.
    pub fn query(&self, rail: Rail, order_no: &str) -> Result<Query, String> {
        match rail {
            Rail::Redpack => Ok(Query::Redpack {
                request: redpack::query_request(&self.redpack, order_no)?,
                mch_billno: order_no.to_owned(),
            }),
        }
    }

    /// Sends a claimed record's request, unchanged.
    pub async fn send(&self, claimed: &Claimed) -> Call<SendVerdict> {
        match &claimed.request {
            request @ RailRequest::Redpack { prepared, .. } => {
                let called = redpack::call(&self.redpack, prepared).await;
                let (verdict, attempt) = redpack::send_outcome(request, &called);
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
                let called = redpack::call(&self.redpack, request).await;
                let (stored, awaiting) = match claimed.map(|c| (&c.request, &c.awaiting)) {
                    Some((RailRequest::Redpack { prepared, .. }, awaiting)) => {
                        (Some(prepared), awaiting.clone())
                    }
                    None => (None, Awaiting::Nothing),
                };
                let (verdict, attempt, _) =
                    redpack::query_outcome(mch_billno, stored, &awaiting, &called);
                Call {
                    verdict,
                    attempt,
                    latency: called.latency,
                }
            }
        }
    }
}
