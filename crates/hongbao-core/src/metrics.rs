//! Prometheus metrics: payouts by status and their amounts, calls to
//! WeChat by outcome, WeChat's latency, time waited for the rate limit.
//!
//! One registry per application (not process-global), so that tests can
//! run several.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::{Pause, StatusTotal};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    merchant: String,
    api: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MerchantLabels {
    merchant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    merchant: String,
    rail: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallbackLabels {
    merchant: String,
    outcome: String,
}

/// The application's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Family<ApiLabels, Histogram>,
    limiter_wait: Family<MerchantLabels, Histogram>,
    payouts: Family<StatusLabels, Gauge>,
    amount: Family<StatusLabels, Gauge>,
    paused: Family<MerchantLabels, Gauge>,
    database_errors: Counter,
    claims: Family<OutcomeLabels, Counter>,
    callbacks: Family<CallbackLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hongbao");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "wechat_calls",
            "Calls to WeChat by merchant, API and outcome",
            calls.clone(),
        );
        let latency = Family::<ApiLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "wechat_latency_seconds",
            "Time WeChat took to answer",
            latency.clone(),
        );
        let limiter_wait = Family::<MerchantLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_1, 4.0, 12))
        });
        registry.register(
            "limiter_wait_seconds",
            "Time a call waited for the merchant's rate limit",
            limiter_wait.clone(),
        );
        let payouts = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "payouts",
            "Payouts in the ledger by merchant, rail and status",
            payouts.clone(),
        );
        let amount = Family::<StatusLabels, Gauge>::default();
        registry.register("payout_amount_fen", "Their amount in fen", amount.clone());
        let paused = Family::<MerchantLabels, Gauge>::default();
        registry.register(
            "merchant_paused",
            "1 while a merchant's payouts are paused",
            paused.clone(),
        );
        let database_errors = Counter::default();
        registry.register(
            "database_errors",
            "Database operations that failed",
            database_errors.clone(),
        );
        let claims = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "prize_claims",
            "Prize claims by outcome (`accepted`, or the refusal's code)",
            claims.clone(),
        );
        let callbacks = Family::<CallbackLabels, Counter>::default();
        registry.register(
            "transfer_callbacks",
            "WeChat's transfer callbacks by merchant and outcome (`applied`, `duplicate`, `unknown`, `refused`)",
            callbacks.clone(),
        );
        Metrics {
            callbacks,
            claims,
            registry,
            calls,
            latency,
            limiter_wait,
            payouts,
            amount,
            paused,
            database_errors,
        }
    }

    /// Counts a transfer callback.
    pub fn callback(&self, merchant: &str, outcome: &str) {
        self.callbacks
            .get_or_create(&CallbackLabels {
                merchant: merchant.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a call to WeChat.
    pub fn call(&self, merchant: &str, api: &str, outcome: &str) {
        self.calls
            .get_or_create(&CallLabels {
                merchant: merchant.to_owned(),
                api: api.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Observes WeChat's latency.
    pub fn wechat_latency(&self, api: &str, latency: Duration) {
        self.latency
            .get_or_create(&ApiLabels {
                api: api.to_owned(),
            })
            .observe(latency.as_secs_f64());
    }

    /// Observes a wait for the rate limit.
    pub fn limiter_wait(&self, merchant: &str, waited: Duration) {
        self.limiter_wait
            .get_or_create(&MerchantLabels {
                merchant: merchant.to_owned(),
            })
            .observe(waited.as_secs_f64());
    }

    /// Counts a prize claim by its outcome.
    pub fn claim(&self, outcome: &str) {
        self.claims
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a failed database operation.
    pub fn database_error(&self) {
        self.database_errors.inc();
    }

    /// The metrics in Prometheus' text format, with the ledger's totals and
    /// pauses as of now.
    pub fn render(&self, totals: &[StatusTotal], pauses: &[Pause], merchants: &[String]) -> String {
        self.payouts.clear();
        self.amount.clear();
        for total in totals {
            let labels = StatusLabels {
                merchant: total.merchant.clone(),
                rail: total.rail.as_str().to_owned(),
                status: total.status.as_str().to_owned(),
            };
            self.payouts
                .get_or_create(&labels)
                .set(i64::try_from(total.count).unwrap_or(i64::MAX));
            self.amount
                .get_or_create(&labels)
                .set(i64::try_from(total.amount.get()).unwrap_or(i64::MAX));
        }
        for merchant in merchants {
            let paused = pauses.iter().any(|p| &p.merchant == merchant);
            self.paused
                .get_or_create(&MerchantLabels {
                    merchant: merchant.clone(),
                })
                .set(i64::from(paused));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
