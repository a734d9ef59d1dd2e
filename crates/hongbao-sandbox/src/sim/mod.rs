//! The simulated WeChat side: one merchant's red packet ledger and
//! balance, WeChat's validation and business rules, the packets'
//! lifecycle, fault injection, and the official account's API.
//!
//! Everything here is decided synchronously under one lock, from the
//! request, the simulated clock and a seeded random generator; the server
//! only moves bytes. Statuses are derived from the clock when asked, so
//! moving the clock forward (admin API) is all it takes to see a refund.
//!
//! # Layout
//!
//! - [`rules`]: WeChat's validation (mch_id, signature, fields, rate).
//! - [`orders`]: the orders, their lifecycle, sending and `gethbinfo`.
//! - [`faults`]: fault injection.
//! - [`journal`]: the state on disk.
//! - [`answers`]: answers in WeChat's shape.
//! - [`official_account`]: `token` and `user/info`.

mod answers;
mod faults;
mod journal;
mod official_account;
mod orders;
mod rules;
pub(crate) mod transfers;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use hongbao_wxpay::xml::{self, XmlDoc};
use hongbao_wxpay::{Api, ApiKey};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use time::{Date, OffsetDateTime};

pub use faults::FaultKind;
pub use orders::{Order, OrderState, Share};
pub use transfers::{
    BillState, CallbackDelivery, Decision, Settled, TransferBill, UserAction, V3Call,
};

use crate::identity::Secrets;
use crate::settings::{Faults, Followers, Lifecycle, Rules};
use journal::Event;
use rules::refuse;

/// What the server knows of the client certificate of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCert {
    /// None was presented.
    Missing,
    /// One was presented but not signed by the sandbox's CA.
    Untrusted,
    /// One signed by the sandbox's CA (which signs only the merchant's).
    Trusted,
}

/// What to send back for a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// An XML (or JSON) body.
    Body(String),
    /// Close the connection without an answer.
    Drop,
    /// A body that is not what the API returns.
    Garbage(Vec<u8>),
    /// An APIv3 answer: status, `Wechatpay-*` headers, JSON body.
    Json {
        /// The HTTP status.
        status: u16,
        /// Headers to send.
        headers: Vec<(&'static str, String)>,
        /// The body.
        body: Vec<u8>,
    },
}

/// A reply and how long to hold it back.
#[derive(Debug)]
pub struct Answer {
    /// The reply.
    pub reply: Reply,
    /// Added latency, in milliseconds.
    pub delay_ms: u64,
}

/// Counts of what the sandbox saw and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Calls per API (and `token`, `user_info`).
    pub requests: BTreeMap<String, u64>,
    /// Answers per err_code (`SUCCESS` for successes).
    pub answers: BTreeMap<String, u64>,
    /// Injected faults per kind.
    pub faults: BTreeMap<String, u64>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_owned()).or_default() += 1;
}

/// The simulated WeChat.
pub struct Simulator {
    secrets: Secrets,
    api_key: ApiKey,
    workwx_secret: ApiKey,
    /// The balance to start from (and to go back to on reset).
    initial_balance: u64,
    /// WeChat's limits (changeable while running).
    pub rules: Rules,
    /// The packets' lifecycle (changeable while running).
    pub lifecycle: Lifecycle,
    /// Faults to inject (changeable while running).
    pub faults: Faults,
    rng: StdRng,
    clock_offset: time::Duration,
    balance: u64,
    orders: HashMap<String, Order>,
    next_listid: u64,
    /// (Beijing day, openid) → (packets, fen) received that day.
    daily_user: HashMap<(Date, String), (u32, u64)>,
    /// Beijing day → fen paid that day.
    daily_merchant: HashMap<Date, u64>,
    /// Orders whose refund has not been credited yet, by completion time.
    refund_queue: BTreeSet<(OffsetDateTime, String)>,
    /// Real times of the calls of the last minute (FREQ_LIMIT).
    rate_window: VecDeque<Instant>,
    followers: Followers,
    foreign: BTreeSet<String>,
    /// Access token → expiry (simulated clock).
    tokens: HashMap<String, OffsetDateTime>,
    counters: Counters,
    journal: Option<std::io::BufWriter<std::fs::File>>,
    /// The transfer bills (APIv3).
    desk: transfers::Desk,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("mch_id", &self.secrets.mch_id)
            .field("orders", &self.orders.len())
            .field("balance", &self.balance)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator for the merchant in `secrets`.
    pub fn new(
        secrets: Secrets,
        initial_balance: u64,
        rules: Rules,
        lifecycle: Lifecycle,
        faults: Faults,
        followers: Followers,
        seed: Option<u64>,
    ) -> Simulator {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => rand::make_rng(),
        };
        Simulator {
            api_key: ApiKey::any(&secrets.api_key),
            workwx_secret: ApiKey::any(&secrets.workwx_secret),
            secrets,
            initial_balance,
            rules,
            lifecycle,
            faults,
            rng,
            clock_offset: time::Duration::ZERO,
            balance: initial_balance,
            orders: HashMap::new(),
            next_listid: 1,
            daily_user: HashMap::new(),
            daily_merchant: HashMap::new(),
            refund_queue: BTreeSet::new(),
            rate_window: VecDeque::new(),
            followers,
            foreign: BTreeSet::new(),
            tokens: HashMap::new(),
            counters: Counters::default(),
            journal: None,
            desk: transfers::Desk::default(),
        }
    }

    fn clear(&mut self) {
        self.orders.clear();
        self.daily_user.clear();
        self.daily_merchant.clear();
        self.refund_queue.clear();
        self.rate_window.clear();
        self.tokens.clear();
        self.foreign.clear();
        self.followers = Followers::All;
        self.counters = Counters::default();
        self.clock_offset = time::Duration::ZERO;
        self.balance = self.initial_balance;
        self.next_listid = 1;
        self.desk.clear();
    }

    /// Serves APIv3 transfers with `keys`, `settings`, and an operations
    /// account holding `operations_balance` fen.
    pub(crate) fn enable_v3(
        &mut self,
        keys: crate::v3keys::V3Keys,
        settings: crate::settings::Transfers,
        operations_balance: u64,
    ) {
        self.desk.keys = Some(keys);
        self.desk.settings = settings;
        self.desk.initial_operations_balance = operations_balance;
        self.desk.operations_balance = operations_balance;
    }

    /// The simulated clock: real time plus the offset the admin set.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }

    /// Handles a call to a red packet API.
    pub fn pay(&mut self, api: Api, body: &[u8], cert: &ClientCert, arrival: Instant) -> Answer {
        bump(&mut self.counters.requests, api.name());
        let delay_ms = self.latency();
        let reply = self.pay_inner(api, body, cert, arrival);
        if let Reply::Body(text) = &reply {
            let code = xml::parse(text.as_bytes())
                .ok()
                .and_then(|d| d.get("err_code").map(str::to_owned))
                .unwrap_or_else(|| "SUCCESS".to_owned());
            bump(&mut self.counters.answers, &code);
        }
        Answer { reply, delay_ms }
    }

    fn pay_inner(&mut self, api: Api, body: &[u8], cert: &ClientCert, arrival: Instant) -> Reply {
        let doc = xml::parse(body);
        let echo = doc.as_ref().map(XmlDoc::to_params).unwrap_or_default();
        match cert {
            ClientCert::Trusted => {}
            ClientCert::Missing => {
                return self.failure(&echo, refuse("CA_ERROR", "请求未携带证书"));
            }
            ClientCert::Untrusted => {
                return self.failure(&echo, refuse("CA_ERROR", "证书已过期或无效"));
            }
        }
        let doc = match doc {
            Ok(doc) => doc,
            Err(e) => {
                let des = match e {
                    xml::XmlError::Empty => "输入xml参数格式错误,xml为空".to_owned(),
                    xml::XmlError::Declaration => {
                        "输入xml参数格式错误,不允许DOCTYPE或ENTITY".to_owned()
                    }
                    xml::XmlError::TooLarge { .. } => "输入xml参数格式错误,请求过长".to_owned(),
                    _ => "输入xml参数格式错误".to_owned(),
                };
                return self.failure(&echo, refuse("XML_ERROR", des));
            }
        };
        if self.rate_limited(arrival) {
            return self.failure(&echo, refuse("FREQ_LIMIT", "超过频率限制,请稍后再试"));
        }
        let params = doc.to_params();
        if let Err(refusal) = self.authenticate(api, &params) {
            return self.failure(&echo, refusal);
        }
        if api == Api::SendGroupRedpack && !self.rules.legacy_fission {
            // Fission has been offline since 2024-06-05. What WeChat answers
            // now is not documented; this is the sandbox's guess.
            return self.failure(
                &echo,
                refuse("NO_AUTH", "裂变红包已于2024年6月5日下线，该接口已停止服务"),
            );
        }
        if let Err(refusal) = self.validate(api, &params) {
            return self.failure(&echo, refusal);
        }
        if api.is_send() {
            self.send(api, &params)
        } else {
            self.query(api, &params)
        }
    }

    fn random_hex(&mut self, len: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..len)
            .map(|_| char::from(HEX[self.rng.random_range(0..16)]))
            .collect()
    }

    fn random_openid(&mut self) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let rest: String = (0..27)
            .map(|_| char::from(CHARS[self.rng.random_range(0..CHARS.len())]))
            .collect();
        format!("o{rest}")
    }

    // ---- admin ----

    /// The balance in fen.
    pub fn balance(&mut self) -> u64 {
        let now = self.now();
        self.settle(now);
        self.balance
    }

    /// Adds `fen` to the balance.
    pub fn top_up(&mut self, fen: u64) -> u64 {
        let now = self.now();
        self.settle(now);
        self.balance = self.balance.saturating_add(fen);
        self.record(&Event::Balance { fen: self.balance });
        self.balance
    }

    /// Sets the balance.
    pub fn set_balance(&mut self, fen: u64) {
        self.balance = fen;
        self.record(&Event::Balance { fen });
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// Forgets every order, token, follower setting and counter; the balance
    /// goes back to its initial value and the clock to real time.
    pub fn reset(&mut self) {
        self.clear();
        self.record(&Event::Reset);
    }

    /// Sets who follows the official account.
    pub fn set_followers(&mut self, followers: Followers) {
        self.followers = followers.clone();
        self.record(&Event::Followers { followers });
    }

    /// Declares openids that belong to no appid of the merchant.
    pub fn set_foreign(&mut self, openids: BTreeSet<String>) {
        self.foreign = openids.clone();
        self.record(&Event::Foreign { openids });
    }

    /// Moves the simulated clock forward.
    pub fn advance_clock(&mut self, seconds: u64) -> OffsetDateTime {
        self.clock_offset += time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
        self.record(&Event::Clock {
            offset_seconds: self.clock_offset.whole_seconds(),
        });
        self.now()
    }

    /// The merchant's ids.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hongbao_wxpay::HbStatus;

    fn secrets() -> Secrets {
        Secrets {
            mch_id: "1900000109".into(),
            appid: "wx8888888888888888".into(),
            app_secret: "0123456789abcdef0123456789abcdef".into(),
            miniprogram_appid: "wx1111111111111111".into(),
            api_key: "192006250b4c09247ec02edce69f6a2d".into(),
            workwx_corpid: "ww1234567890abcdef".into(),
            workwx_secret: "workwxsecret0123456789".into(),
            apiv3_key: "0123456789abcdefghijklmnopqrstuv".into(),
            wechatpay_public_key_id: "PUB_KEY_ID_0119000001090000000000000001".into(),
        }
    }

    fn sim() -> Simulator {
        Simulator::new(
            secrets(),
            1_000_000,
            Rules::default(),
            Lifecycle::default(),
            Faults::default(),
            Followers::All,
            Some(7),
        )
    }

    #[test]
    fn fission_shares_are_at_least_one_yuan_and_add_up() {
        let mut s = sim();
        for (amount, num) in [(300, 3), (400_000, 20), (1_000, 5), (60_000, 3)] {
            let shares = s.split(amount, num);
            assert_eq!(shares.len(), usize::try_from(num).unwrap());
            assert_eq!(shares.iter().sum::<u64>(), amount);
            assert!(
                shares.iter().all(|s| (100..=100_000).contains(s)),
                "{shares:?}"
            );
        }
    }

    #[test]
    fn status_follows_the_clock() {
        let s = sim();
        let t0 = OffsetDateTime::now_utc();
        let order = |opened: Option<OffsetDateTime>| Order {
            mch_billno: "B".into(),
            api: Api::SendRedpack,
            re_openid: "o".into(),
            total_amount: 100,
            total_num: 1,
            wishing: String::new(),
            act_name: String::new(),
            remark: String::new(),
            send_listid: "1".into(),
            created_at: t0,
            failed_reason: None,
            sending_until: None,
            shares: vec![Share {
                openid: Some("o".into()),
                amount: 100,
                opened_at: opened,
            }],
            refund_at: t0 + time::Duration::hours(24),
            refunded: false,
            requests: 1,
            package: None,
            sp_ticket: None,
        };
        let opened = order(Some(t0 + time::Duration::minutes(1)));
        assert_eq!(opened.state_at(t0, &s.lifecycle).status, HbStatus::Sent);
        assert_eq!(
            opened
                .state_at(t0 + time::Duration::minutes(2), &s.lifecycle)
                .status,
            HbStatus::Received
        );
        let unopened = order(None);
        let refunding = unopened.state_at(t0 + time::Duration::hours(24), &s.lifecycle);
        assert_eq!(refunding.status, HbStatus::Refunding);
        assert_eq!(refunding.refund_amount, Some(100));
        let refunded = unopened.state_at(t0 + time::Duration::hours(26), &s.lifecycle);
        assert_eq!(refunded.status, HbStatus::Refund);
        assert!(refunded.refund_time.is_some());
    }
}
