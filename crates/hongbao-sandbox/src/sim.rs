//! The simulated WeChat side: one merchant's red packet ledger and
//! balance, WeChat's validation and business rules, the packets'
//! lifecycle, fault injection, and the official account's API.
//!
//! Everything here is decided synchronously under one lock, from the
//! request, the simulated clock and a seeded random generator; the server
//! only moves bytes. Statuses are derived from the clock when asked, so
//! moving the clock forward (admin API) is all it takes to see a refund.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use hongbao_wxpay::xml::{self, XmlDoc};
use hongbao_wxpay::{Api, ApiKey, HbStatus, Params, SignType, format_beijing_time, sign};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::identity::Secrets;
use crate::settings::{Faults, Followers, Lifecycle, Probability, Rules};

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
}

/// A reply and how long to hold it back.
#[derive(Debug)]
pub struct Answer {
    /// The reply.
    pub reply: Reply,
    /// Added latency, in milliseconds.
    pub delay_ms: u64,
}

/// One opened or unopened share of a red packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Who opened it (the receiver of a normal packet; a made-up user for
    /// the other shares of a fission packet).
    pub openid: Option<String>,
    /// Its amount in fen.
    pub amount: u64,
    /// When it is (or will be) opened, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub opened_at: Option<OffsetDateTime>,
}

/// A red packet order WeChat created, keyed by mch_billno.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The merchant's order number.
    pub mch_billno: String,
    /// The API that created it.
    pub api: Api,
    /// The receiver (the seed user of a fission packet; empty for a pre-order).
    pub re_openid: String,
    /// The amount in fen.
    pub total_amount: u64,
    /// The number of shares.
    pub total_num: u32,
    /// The texts, for `gethbinfo`.
    pub wishing: String,
    /// The activity's name.
    pub act_name: String,
    /// The remark.
    pub remark: String,
    /// WeChat's order number (also `detail_id`).
    pub send_listid: String,
    /// When it was created (simulated clock).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Why it failed, for an order refused after creation (`FAILED`).
    pub failed_reason: Option<String>,
    /// Until when it stays `SENDING` (after a `PROCESSING` answer).
    #[serde(with = "time::serde::rfc3339::option")]
    pub sending_until: Option<OffsetDateTime>,
    /// The shares.
    pub shares: Vec<Share>,
    /// When unopened money starts being refunded.
    #[serde(with = "time::serde::rfc3339")]
    pub refund_at: OffsetDateTime,
    /// Whether the refund went back to the balance.
    pub refunded: bool,
    /// How many times this mch_billno was requested (first call and replays).
    pub requests: u32,
    /// The mini program's `package`.
    pub package: Option<String>,
    /// The Shake-Nearby ticket of a pre-order.
    pub sp_ticket: Option<String>,
}

/// The state of an order at a given moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderState {
    /// `gethbinfo`'s status.
    pub status: HbStatus,
    /// Refunded fen, once refunding began.
    pub refund_amount: Option<u64>,
    /// When the refund completed.
    pub refund_time: Option<OffsetDateTime>,
    /// Shares opened so far.
    pub opened: Vec<Share>,
}

impl Order {
    fn paid(&self) -> bool {
        self.failed_reason.is_none()
    }

    /// The order's state at `now`.
    pub fn state_at(&self, now: OffsetDateTime, lifecycle: &Lifecycle) -> OrderState {
        if self.failed_reason.is_some() {
            return OrderState {
                status: HbStatus::Failed,
                refund_amount: None,
                refund_time: None,
                opened: Vec::new(),
            };
        }
        if self.sending_until.is_some_and(|until| now < until) {
            return OrderState {
                status: HbStatus::Sending,
                refund_amount: None,
                refund_time: None,
                opened: Vec::new(),
            };
        }
        let opened: Vec<Share> = self
            .shares
            .iter()
            .filter(|s| s.opened_at.is_some_and(|t| t <= now && t < self.refund_at))
            .cloned()
            .collect();
        if opened.len() == self.shares.len() {
            return OrderState {
                status: HbStatus::Received,
                refund_amount: None,
                refund_time: None,
                opened,
            };
        }
        if now < self.refund_at {
            return OrderState {
                status: HbStatus::Sent,
                refund_amount: None,
                refund_time: None,
                opened,
            };
        }
        let unopened: u64 = self.total_amount - opened.iter().map(|s| s.amount).sum::<u64>();
        let done_at = self.refund_at + lifecycle.refunding_for;
        if now < done_at {
            OrderState {
                status: HbStatus::Refunding,
                refund_amount: Some(unopened),
                refund_time: None,
                opened,
            }
        } else {
            OrderState {
                status: HbStatus::Refund,
                refund_amount: Some(unopened),
                refund_time: Some(done_at),
                opened,
            }
        }
    }
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

/// A line of the journal: the sandbox's state survives restarts.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    /// An order, created or changed.
    Order(Box<Order>),
    /// The balance after a top-up or reset.
    Balance { fen: u64 },
    /// The followers.
    Followers { followers: Followers },
    /// Openids that do not belong to the merchant's appids.
    Foreign { openids: BTreeSet<String> },
    /// The simulated clock's offset from real time.
    Clock { offset_seconds: i64 },
    /// Everything forgotten.
    Reset,
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

/// The failure answer's shape: `err_code`, its text, and the echoed fields.
struct Refusal {
    code: &'static str,
    des: String,
}

fn refuse(code: &'static str, des: impl Into<String>) -> Refusal {
    Refusal {
        code,
        des: des.into(),
    }
}

const OPENID_LEN: usize = 28;

fn well_formed_openid(openid: &str) -> bool {
    openid.len() == OPENID_LEN
        && openid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Text length as WeChat's PARAM_ERROR texts count it: characters.
fn chars(s: &str) -> usize {
    s.chars().count()
}

fn compact_time(at: OffsetDateTime) -> String {
    at.to_offset(hongbao_wxpay::BEIJING)
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default()
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
        }
    }

    /// Replays the journal at `path` (if any) and appends to it from now on.
    pub fn attach_journal(&mut self, path: &Path) -> std::io::Result<()> {
        if let Ok(file) = std::fs::File::open(path) {
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Event>(&line) {
                    Ok(event) => self.apply(event),
                    // A torn last line (killed mid-write) is dropped; anything
                    // else is reported and skipped.
                    Err(e) => tracing::warn!("{}:{}: skipped: {e}", path.display(), n + 1),
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        self.journal = Some(std::io::BufWriter::new(file));
        Ok(())
    }

    fn record(&mut self, event: &Event) {
        if let Some(journal) = &mut self.journal {
            let line = serde_json::to_string(event).expect("events serialise");
            // Flushed per event: a crash of this process loses nothing.
            if let Err(e) = writeln!(journal, "{line}").and_then(|()| journal.flush()) {
                tracing::error!("sandbox journal: {e}");
            }
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Order(order) => self.apply_order(*order),
            Event::Balance { fen } => self.balance = fen,
            Event::Followers { followers } => self.followers = followers,
            Event::Foreign { openids } => self.foreign = openids,
            Event::Clock { offset_seconds } => {
                self.clock_offset = time::Duration::seconds(offset_seconds)
            }
            Event::Reset => self.clear(),
        }
    }

    /// Puts an order in the ledger, with its effect on the balance and the
    /// daily counters (the same code live and when replaying the journal).
    fn apply_order(&mut self, order: Order) {
        let previous = self.orders.get(&order.mch_billno);
        let is_new = previous.is_none();
        let newly_refunded = !previous.is_some_and(|p| p.refunded) && order.refunded;
        if is_new && order.paid() {
            self.balance = self.balance.saturating_sub(order.total_amount);
            let day = hongbao_wxpay::beijing_date(order.created_at);
            *self.daily_merchant.entry(day).or_default() += order.total_amount;
            if !order.re_openid.is_empty() {
                let entry = self
                    .daily_user
                    .entry((day, order.re_openid.clone()))
                    .or_default();
                entry.0 += 1;
                entry.1 += order.total_amount;
            }
            if !order.refunded {
                let done_at = order.refund_at + self.lifecycle.refunding_for;
                self.refund_queue
                    .insert((done_at, order.mch_billno.clone()));
            }
        }
        if newly_refunded {
            let state = order.state_at(
                order.refund_at + self.lifecycle.refunding_for,
                &self.lifecycle,
            );
            self.balance += state.refund_amount.unwrap_or(0);
            self.refund_queue
                .retain(|(_, billno)| billno != &order.mch_billno);
        }
        let listid_seq = order
            .send_listid
            .get(18..)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        self.next_listid = self.next_listid.max(listid_seq + 1);
        self.orders.insert(order.mch_billno.clone(), order);
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
    }

    /// The simulated clock: real time plus the offset the admin set.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }

    /// Credits the refunds of unopened packets whose refund completed.
    fn settle(&mut self, now: OffsetDateTime) {
        while let Some((done_at, billno)) = self.refund_queue.first().cloned() {
            if done_at > now {
                break;
            }
            self.refund_queue.pop_first();
            let Some(order) = self.orders.get(&billno).cloned() else {
                continue;
            };
            let state = order.state_at(done_at, &self.lifecycle);
            if state.refund_amount.unwrap_or(0) > 0 {
                let mut refunded = order;
                refunded.refunded = true;
                self.record(&Event::Order(Box::new(refunded.clone())));
                self.apply_order(refunded);
            }
        }
    }

    fn draw(&mut self, p: Probability) -> bool {
        p.ppm() > 0 && self.rng.random_range(0..Probability::SCALE) < p.ppm()
    }

    /// Which exclusive fault hits this call, if any.
    fn draw_fault(&mut self) -> Option<&'static str> {
        let f = &self.faults;
        let kinds = [
            ("systemerror_before", f.systemerror_before),
            ("systemerror_after", f.systemerror_after),
            ("drop_after", f.drop_after),
            ("processing", f.processing),
            ("garbage", f.garbage),
        ];
        if kinds.iter().all(|(_, p)| p.ppm() == 0) {
            return None;
        }
        let roll = self.rng.random_range(0..Probability::SCALE);
        let mut edge = 0u32;
        for (kind, p) in kinds {
            edge += p.ppm();
            if roll < edge {
                return Some(kind);
            }
        }
        None
    }

    fn latency(&mut self) -> u64 {
        let latency = self.faults.latency;
        if self.faults.latency_ms > 0 && self.draw(latency) {
            bump(&mut self.counters.faults, "latency");
            self.faults.latency_ms
        } else {
            0
        }
    }

    fn rate_limited(&mut self, arrival: Instant) -> bool {
        let limit = self.rules.rate_per_minute;
        if limit == 0 {
            return false;
        }
        let minute = std::time::Duration::from_secs(60);
        while self
            .rate_window
            .front()
            .is_some_and(|t| arrival.saturating_duration_since(*t) >= minute)
        {
            self.rate_window.pop_front();
        }
        if self.rate_window.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return true;
        }
        self.rate_window.push_back(arrival);
        false
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
        if let Err(refusal) = self.validate(api, &params) {
            return self.failure(&echo, refusal);
        }
        if api.is_send() {
            self.send(api, &params)
        } else {
            self.query(api, &params)
        }
    }

    /// mch_id and signatures.
    fn authenticate(&self, api: Api, params: &Params) -> Result<(), Refusal> {
        let mch_id = params.get("mch_id").unwrap_or_default();
        if mch_id.is_empty() {
            return Err(refuse("PARAM_ERROR", "mch_id字段必填"));
        }
        if mch_id != self.secrets.mch_id {
            return Err(refuse("PARAM_ERROR", "商户号不存在"));
        }
        // WeChat re-serialises integers: "1.00" cannot sign the same.
        for field in ["total_amount", "total_num", "agentid"] {
            if let Some(v) = params.get(field)
                && !v.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(refuse("SIGN_ERROR", "签名错误"));
            }
        }
        let Some(given) = params.get("sign") else {
            return Err(refuse("SIGN_ERROR", "签名错误"));
        };
        // Verified over the API's documented fields only, as WeChat does.
        let documented = params
            .iter()
            .filter(|(k, _)| *k != "sign" && api.fields().contains(k));
        if !sign::verify(documented, &self.api_key, SignType::Md5, given) {
            return Err(refuse("SIGN_ERROR", "签名错误"));
        }
        if api == Api::SendWorkWxRedpack {
            let expected = sign::workwx_sign(params, &self.workwx_secret);
            if params.get("workwx_sign") != Some(expected.as_str()) {
                return Err(refuse("SIGN_ERROR", "企业微信签名workwx_sign错误"));
            }
        }
        Ok(())
    }

    fn validate(&self, api: Api, p: &Params) -> Result<(), Refusal> {
        let text = |name: &'static str, max: usize, required: bool| -> Result<(), Refusal> {
            match p.get(name) {
                None if required => Err(refuse(
                    "PARAM_ERROR",
                    format!("{name}字段必填,并且少于{max}个字符"),
                )),
                Some(v) if chars(v) > max => Err(refuse(
                    "PARAM_ERROR",
                    format!("{name}字段必填,并且少于{max}个字符"),
                )),
                _ => Ok(()),
            }
        };
        text("nonce_str", 32, true)?;
        let billno = p.get("mch_billno").unwrap_or_default();
        if billno.is_empty() || billno.len() > 28 {
            return Err(refuse("PARAM_ERROR", "mch_billno字段必填,并且少于28个字符"));
        }
        if !billno.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(refuse("PARAM_ERROR", "mch_billno只能是数字和字母"));
        }
        if p.contains("sub_mch_id") || p.contains("msgappid") {
            return Err(refuse("ACCEPTMODE_ERROR", "服务商与子商户的受理关系不存在"));
        }
        let appid_field = match api {
            Api::GetHbInfo | Api::QueryWorkWxRedpack => "appid",
            _ => "wxappid",
        };
        let appid = p.get(appid_field).unwrap_or_default();
        if appid.is_empty() {
            return Err(refuse(
                "PARAM_ERROR",
                format!("{appid_field}字段必填,最长为32个字符"),
            ));
        }
        let bound = match api {
            Api::SendMiniProgramHb => appid == self.secrets.miniprogram_appid,
            Api::SendWorkWxRedpack | Api::QueryWorkWxRedpack => appid == self.secrets.workwx_corpid,
            Api::GetHbInfo => {
                appid == self.secrets.appid || appid == self.secrets.miniprogram_appid
            }
            _ => appid == self.secrets.appid,
        };
        if !bound {
            return Err(refuse(
                "PARAM_ERROR",
                format!("商户号和{appid_field}不匹配"),
            ));
        }
        match api {
            Api::GetHbInfo => {
                if p.get("bill_type") != Some("MCHT") {
                    return Err(refuse("PARAM_ERROR", "bill_type参数错误,必须为MCHT"));
                }
                return Ok(());
            }
            Api::QueryWorkWxRedpack => return Ok(()),
            _ => {}
        }

        let amount: u64 = match p.get("total_amount") {
            None => return Err(refuse("PARAM_ERROR", "total_amount字段必填")),
            Some(v) => v
                .parse()
                .map_err(|_| refuse("PARAM_ERROR", "红包金额参数错误"))?,
        };
        let num: u32 = match (api, p.get("total_num")) {
            (Api::SendWorkWxRedpack, _) => 1,
            (_, None) => return Err(refuse("PARAM_ERROR", "total_num字段必填")),
            (_, Some(v)) => v
                .parse()
                .map_err(|_| refuse("PARAM_ERROR", "total_num参数错误"))?,
        };
        match api {
            Api::HbPreorder => {
                text("send_name", 32, true)?;
                text("wishing", 16, true)?;
                text("act_name", 32, true)?;
                text("remark", 32, true)?;
                match p.get("hb_type") {
                    Some("NORMAL") if num != 1 => {
                        return Err(refuse("PARAM_ERROR", "total_num必须等于1"));
                    }
                    Some("GROUP") if num < 2 => {
                        return Err(refuse("PARAM_ERROR", "total_num必须大于1"));
                    }
                    Some("NORMAL" | "GROUP") => {}
                    _ => return Err(refuse("PARAM_ERROR", "hb_type参数错误")),
                }
                if p.get("auth_mchid") != Some("1000052601")
                    || p.get("auth_appid") != Some("wxbf42bd79c4391863")
                {
                    return Err(refuse("PARAM_ERROR", "auth_mchid或auth_appid参数错误"));
                }
                if !matches!(
                    p.get("risk_cntl"),
                    Some("NORMAL" | "IGN_FREQ_LMT" | "IGN_DAY_LMT" | "IGN_FREQ_DAY_LMT")
                ) {
                    return Err(refuse("PARAM_ERROR", "risk_cntl参数错误"));
                }
                if p.get("amt_type") != Some("ALL_RAND") {
                    return Err(refuse("PARAM_ERROR", "amt_type参数错误"));
                }
                return self.check_average(amount, num);
            }
            Api::SendWorkWxRedpack => {
                if p.contains("sender_name") == p.contains("agentid") {
                    return Err(refuse(
                        "PARAM_ERROR",
                        "sender_name和agentid必须且只能填写一个",
                    ));
                }
                text("sender_name", 128, false)?;
                text("sender_header_media_id", 128, false)?;
            }
            _ => {
                text("send_name", 32, true)?;
            }
        }
        let openid = p.get("re_openid").unwrap_or_default();
        if openid.is_empty() || chars(openid) > 32 {
            return Err(refuse("PARAM_ERROR", "re_openid字段必填,并且少于32个字符"));
        }
        text("wishing", 128, true)?;
        text("act_name", 32, true)?;
        text("remark", 256, true)?;
        text("risk_info", 128, false)?;
        if api == Api::SendRedpack {
            match p.get("client_ip") {
                None => return Err(refuse("PARAM_ERROR", "client_ip字段必填")),
                Some(ip) if ip.parse::<std::net::IpAddr>().is_err() || ip.len() > 15 => {
                    return Err(refuse("PARAM_ERROR", "client_ip必须是合法的IP字符串"));
                }
                _ => {}
            }
        }
        if api == Api::SendMiniProgramHb && p.get("notify_way") != Some("MINI_PROGRAM_JSAPI") {
            return Err(refuse(
                "PARAM_ERROR",
                "notify_way参数错误,必须为MINI_PROGRAM_JSAPI",
            ));
        }
        let scene = p.get("scene_id");
        if let Some(scene) = scene
            && !(scene.len() == 9
                && scene.starts_with("PRODUCT_")
                && ('1'..='8').contains(&scene.chars().last().unwrap_or('0')))
        {
            return Err(refuse("PARAM_ERROR", "scene_id参数错误"));
        }
        if !well_formed_openid(openid) || self.foreign.contains(openid) {
            return Err(refuse("OPENID_ERROR", "openid和appid不匹配"));
        }
        if api == Api::SendGroupRedpack {
            if !(3..=20).contains(&num) {
                return Err(refuse("PARAM_ERROR", "total_num必须介于(包括)3到20之间"));
            }
            if p.get("amt_type") != Some("ALL_RAND") {
                return Err(refuse("PARAM_ERROR", "amt_type参数错误"));
            }
            return self.check_average(amount, num);
        }
        if num != 1 {
            return Err(refuse("PARAM_ERROR", "total_num必须等于1"));
        }
        let default_range = (100..=20_000).contains(&amount);
        match scene {
            None if !default_range => Err(refuse(
                "MONEY_LIMIT",
                "每个红包的平均金额必须在1.00元到200.00元之间.",
            )),
            Some(_)
                if !(self.rules.scene_min.get()..=self.rules.scene_max.get()).contains(&amount) =>
            {
                Err(refuse("MONEY_LIMIT", "红包金额不在该场景允许的范围内"))
            }
            _ => Ok(()),
        }
    }

    fn check_average(&self, amount: u64, num: u32) -> Result<(), Refusal> {
        let n = u64::from(num);
        if amount < 100 * n || amount > 20_000 * n {
            return Err(refuse(
                "MONEY_LIMIT",
                "每个红包的平均金额必须在1.00元到200.00元之间.",
            ));
        }
        Ok(())
    }

    fn send(&mut self, api: Api, p: &Params) -> Reply {
        let now = self.now();
        self.settle(now);
        let billno = p.get("mch_billno").unwrap_or_default().to_owned();
        let openid = p.get("re_openid").unwrap_or_default().to_owned();
        let amount: u64 = p
            .get("total_amount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);

        if let Some(existing) = self.orders.get(&billno).cloned() {
            // Re-entry by mch_billno: the same order, never a second payment.
            if existing.api != api || existing.re_openid != openid {
                return self.failure(p, refuse("FATAL_ERROR", "该订单号已使用不同的参数发放"));
            }
            if existing.total_amount != amount {
                return self.failure(p, refuse("FATAL_ERROR", "金额和原始单参数不一致"));
            }
            let mut replayed = existing;
            replayed.requests += 1;
            self.record(&Event::Order(Box::new(replayed.clone())));
            self.apply_order(replayed.clone());
            let state = replayed.state_at(now, &self.lifecycle);
            return match state.status {
                HbStatus::Failed => self.failure(
                    p,
                    refuse("SEND_FAILED", "该红包已经发放失败，请更换单号重新发放"),
                ),
                HbStatus::Sending => self.failure(
                    p,
                    refuse("PROCESSING", "请求已受理，请稍后使用原单号查询发放结果"),
                ),
                _ => self.after_commit(api, p, &replayed, None),
            };
        }

        let fault = self.draw_fault();
        if fault == Some("systemerror_before") {
            bump(&mut self.counters.faults, "systemerror_before");
            // Both shapes WeChat has used for "busy": a protocol-level FAIL and SYSTEMERROR.
            if self.rng.random_range(0..2u8) == 0 {
                return Reply::Body(xml::to_xml_pairs([
                    ("return_code", "FAIL"),
                    ("return_msg", "系统繁忙,请稍后再试."),
                ]));
            }
            return self.failure(p, refuse("SYSTEMERROR", "系统繁忙,请稍后再试."));
        }

        let day = hongbao_wxpay::beijing_date(now);
        let merchant_today = self.daily_merchant.get(&day).copied().unwrap_or(0);
        if merchant_today + amount > self.rules.send_amount_limit.get() {
            return self.failure(
                p,
                refuse(
                    "SENDAMOUNT_LIMIT",
                    "您的商户号今日发放金额超过限制，如有需要请登录微信支付商户平台更改API安全配置",
                ),
            );
        }
        if self.balance < amount {
            let refusal = refuse("NOTENOUGH", "帐号余额不足，请到商户平台充值后再重试");
            if self.rules.notenough_fails_order {
                let order = self.new_order(api, p, now, Some(refusal.des.clone()), None);
                self.record(&Event::Order(Box::new(order.clone())));
                self.apply_order(order);
            }
            return self.failure(p, refusal);
        }
        if !openid.is_empty() {
            let (count, received) = self
                .daily_user
                .get(&(day, openid))
                .copied()
                .unwrap_or((0, 0));
            let limit = if count >= self.rules.sendnum_limit {
                Some(refuse("SENDNUM_LIMIT", "该用户今日领取红包个数超过限制"))
            } else if received + amount > self.rules.rcvd_amount_limit.get() {
                Some(refuse("RCVDAMOUNT_LIMIT", "该用户今日领取金额超过限制"))
            } else {
                None
            };
            if let Some(refusal) = limit {
                // The order exists, FAILED with the reason, so gethbinfo confirms it.
                let order = self.new_order(api, p, now, Some(refusal.des.clone()), None);
                self.record(&Event::Order(Box::new(order.clone())));
                self.apply_order(order);
                return self.failure(p, refusal);
            }
        }

        let sending_for = if fault == Some("processing") {
            self.lifecycle.processing_for
        } else {
            self.lifecycle.sending_for
        };
        let sending_until = (!sending_for.is_zero()).then(|| now + sending_for);
        let order = self.new_order(api, p, now, None, sending_until);
        self.record(&Event::Order(Box::new(order.clone())));
        self.apply_order(order.clone());
        self.after_commit(api, p, &order, fault)
    }

    fn after_commit(
        &mut self,
        api: Api,
        p: &Params,
        order: &Order,
        fault: Option<&'static str>,
    ) -> Reply {
        // A replay draws its own fault; the first call uses the one drawn before committing.
        let fault = match fault {
            Some(f) => Some(f),
            None if order.requests > 1 => self
                .draw_fault()
                .filter(|f| *f != "systemerror_before" && *f != "processing"),
            None => None,
        };
        match fault {
            Some("systemerror_after") => {
                bump(&mut self.counters.faults, "systemerror_after");
                self.failure(
                    p,
                    refuse("SYSTEMERROR", "请求已受理，请稍后使用原单号查询发放结果"),
                )
            }
            Some("drop_after") => {
                bump(&mut self.counters.faults, "drop_after");
                Reply::Drop
            }
            Some("processing") => {
                bump(&mut self.counters.faults, "processing");
                self.failure(
                    p,
                    refuse("PROCESSING", "请求已受理，请稍后使用原单号查询发放结果"),
                )
            }
            Some("garbage") => {
                bump(&mut self.counters.faults, "garbage");
                Reply::Garbage(self.garbage())
            }
            _ => self.success(api, p, order),
        }
    }

    fn garbage(&mut self) -> Vec<u8> {
        const SAMPLES: [&[u8]; 4] = [
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            b"<xml><return_code><![CDATA[SUCC",
            b"\x00\x01\x02 not xml at all",
            b"{\"error\":\"upstream timeout\"}",
        ];
        SAMPLES[self.rng.random_range(0..SAMPLES.len())].to_vec()
    }

    fn new_order(
        &mut self,
        api: Api,
        p: &Params,
        now: OffsetDateTime,
        failed_reason: Option<String>,
        sending_until: Option<OffsetDateTime>,
    ) -> Order {
        let amount: u64 = p
            .get("total_amount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let num: u32 = match api {
            Api::SendWorkWxRedpack => 1,
            _ => p.get("total_num").and_then(|v| v.parse().ok()).unwrap_or(1),
        };
        let seq = self.next_listid;
        self.next_listid += 1;
        let day = hongbao_wxpay::beijing_date(now);
        let send_listid = format!(
            "1000041701{:04}{:02}{:02}{seq:013}",
            day.year(),
            u8::from(day.month()),
            day.day()
        );
        let re_openid = p.get("re_openid").unwrap_or_default().to_owned();
        let amounts = if num > 1 {
            self.split(amount, num)
        } else {
            vec![amount]
        };
        let opened_from = sending_until.unwrap_or(now);
        let mut shares = Vec::with_capacity(amounts.len());
        for (i, amount) in amounts.into_iter().enumerate() {
            let opens = self.draw(self.lifecycle.receive_probability);
            let step = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let opened_at = opens.then(|| opened_from + self.lifecycle.receive_after * step);
            let openid = if i == 0 && !re_openid.is_empty() {
                Some(re_openid.clone())
            } else if opened_at.is_some() {
                Some(self.random_openid())
            } else {
                None
            };
            shares.push(Share {
                openid,
                amount,
                opened_at,
            });
        }
        let package = (api == Api::SendMiniProgramHb).then(|| {
            format!(
                "sendid={}&ver=8&sign={}&mchid={}&appid={}",
                self.random_hex(64),
                self.random_hex(128),
                self.secrets.mch_id,
                self.secrets.miniprogram_appid
            )
        });
        let sp_ticket = (api == Api::HbPreorder).then(|| self.random_hex(64));
        Order {
            mch_billno: p.get("mch_billno").unwrap_or_default().to_owned(),
            api,
            re_openid,
            total_amount: amount,
            total_num: num,
            wishing: p.get("wishing").unwrap_or_default().to_owned(),
            act_name: p.get("act_name").unwrap_or_default().to_owned(),
            remark: p.get("remark").unwrap_or_default().to_owned(),
            send_listid,
            created_at: now,
            failed_reason,
            sending_until,
            shares,
            refund_at: opened_from + self.lifecycle.refund_after,
            refunded: false,
            requests: 1,
            package,
            sp_ticket,
        }
    }

    /// Splits `amount` into `num` random shares of at least 1 yuan and at
    /// most 1000 yuan each.
    fn split(&mut self, amount: u64, num: u32) -> Vec<u64> {
        const MIN: u64 = 100;
        const MAX: u64 = 100_000;
        let n = usize::try_from(num).unwrap_or(1);
        let spare = amount.saturating_sub(MIN * u64::from(num));
        let mut cuts: Vec<u64> = (1..n).map(|_| self.rng.random_range(0..=spare)).collect();
        cuts.push(0);
        cuts.push(spare);
        cuts.sort_unstable();
        let mut shares: Vec<u64> = cuts.windows(2).map(|w| MIN + w[1] - w[0]).collect();
        // Move any excess over the cap to the smallest shares (bounded: n rounds).
        for _ in 0..n {
            let Some(big) = shares.iter().position(|s| *s > MAX) else {
                break;
            };
            let excess = shares[big] - MAX;
            shares[big] = MAX;
            let small = shares
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| **s)
                .map(|(i, _)| i)
                .unwrap_or(0);
            shares[small] += excess;
        }
        shares
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

    fn envelope_success(&self, api: Api, mut fields: Vec<(&'static str, String)>) -> Reply {
        let mut all = vec![
            ("return_code", "SUCCESS".to_owned()),
            (
                "return_msg",
                if api.is_send() { "发放成功" } else { "OK" }.to_owned(),
            ),
            ("result_code", "SUCCESS".to_owned()),
            ("err_code", "SUCCESS".to_owned()),
            (
                "err_code_des",
                if api.is_send() { "发放成功" } else { "OK" }.to_owned(),
            ),
        ];
        all.append(&mut fields);
        self.finish(api, all)
    }

    /// Writes the answer; the WeCom APIs sign theirs.
    fn finish(&self, api: Api, fields: Vec<(&'static str, String)>) -> Reply {
        let mut fields = fields;
        if api.signs_response() {
            let params: Params = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            fields.push(("sign", sign(&params, &self.api_key, SignType::Md5)));
        }
        Reply::Body(xml::to_xml_pairs(
            fields.iter().map(|(k, v)| (*k, v.as_str())),
        ))
    }

    fn success(&self, api: Api, p: &Params, order: &Order) -> Reply {
        let mut fields: Vec<(&'static str, String)> = Vec::new();
        for name in [
            "mch_billno",
            "mch_id",
            "wxappid",
            "re_openid",
            "total_amount",
        ] {
            if let Some(v) = p.get(name) {
                fields.push((name, v.to_owned()));
            }
        }
        match api {
            Api::HbPreorder => {
                fields.push(("sp_ticket", order.sp_ticket.clone().unwrap_or_default()));
                fields.push(("detail_id", order.send_listid.clone()));
                fields.push(("send_time", compact_time(order.created_at)));
            }
            _ => {
                fields.push(("send_listid", order.send_listid.clone()));
                fields.push(("send_time", compact_time(order.created_at)));
            }
        }
        if let Some(package) = &order.package {
            fields.push(("package", package.clone()));
        }
        if api == Api::SendWorkWxRedpack {
            for name in ["sender_name", "sender_header_media_id"] {
                if let Some(v) = p.get(name) {
                    fields.push((name, v.to_owned()));
                }
            }
        }
        self.envelope_success(api, fields)
    }

    fn failure(&self, p: &Params, refusal: Refusal) -> Reply {
        let mut fields: Vec<(&'static str, String)> = vec![
            ("return_code", "SUCCESS".to_owned()),
            ("return_msg", refusal.des.clone()),
            ("result_code", "FAIL".to_owned()),
            ("err_code", refusal.code.to_owned()),
            ("err_code_des", refusal.des),
        ];
        for name in [
            "mch_billno",
            "mch_id",
            "wxappid",
            "re_openid",
            "total_amount",
        ] {
            if let Some(v) = p.get(name) {
                fields.push((name, v.to_owned()));
            }
        }
        // WeChat's failures are not signed, WeCom's included.
        Reply::Body(xml::to_xml_pairs(
            fields.iter().map(|(k, v)| (*k, v.as_str())),
        ))
    }

    fn query(&mut self, api: Api, p: &Params) -> Reply {
        let now = self.now();
        self.settle(now);
        // Only the faults that mean something for a read apply to queries.
        match self.draw_fault() {
            Some("systemerror_before") => {
                bump(&mut self.counters.faults, "systemerror_query");
                return self.failure(p, refuse("SYSTEMERROR", "系统繁忙,请稍后再试."));
            }
            Some("garbage") => {
                bump(&mut self.counters.faults, "garbage");
                return Reply::Garbage(self.garbage());
            }
            _ => {}
        }
        let billno = p.get("mch_billno").unwrap_or_default();
        let Some(order) = self.orders.get(billno) else {
            return self.failure(p, refuse("NOT_FOUND", "指定单号数据不存在"));
        };
        let state = order.state_at(now, &self.lifecycle);
        let mut fields: Vec<(&'static str, String)> = vec![
            ("mch_billno", order.mch_billno.clone()),
            ("mch_id", self.secrets.mch_id.clone()),
            ("detail_id", order.send_listid.clone()),
            ("status", state.status.as_str().to_owned()),
            ("send_type", "API".to_owned()),
        ];
        if api == Api::GetHbInfo {
            let hb_type = if order.api == Api::SendGroupRedpack || order.total_num > 1 {
                "GROUP"
            } else {
                "NORMAL"
            };
            fields.push(("hb_type", hb_type.to_owned()));
            fields.push(("total_num", order.total_num.to_string()));
        }
        fields.push(("total_amount", order.total_amount.to_string()));
        if let Some(reason) = &order.failed_reason {
            fields.push(("reason", reason.clone()));
        }
        fields.push(("send_time", format_beijing_time(order.created_at)));
        if let Some(t) = state.refund_time {
            fields.push(("refund_time", format_beijing_time(t)));
        }
        if let Some(amount) = state.refund_amount {
            fields.push(("refund_amount", amount.to_string()));
        }
        fields.push(("wishing", order.wishing.clone()));
        fields.push(("remark", order.remark.clone()));
        fields.push(("act_name", order.act_name.clone()));
        if api == Api::QueryWorkWxRedpack {
            if let Some(share) = state.opened.first() {
                fields.push(("openid", share.openid.clone().unwrap_or_default()));
                fields.push(("amount", share.amount.to_string()));
                fields.push((
                    "rcv_time",
                    share.opened_at.map(format_beijing_time).unwrap_or_default(),
                ));
            }
            return self.envelope_success(api, fields);
        }
        // gethbinfo nests the receivers, which the flat writer cannot: splice them in.
        let Reply::Body(flat) = self.envelope_success(api, fields) else {
            unreachable!("success is a body")
        };
        if state.opened.is_empty() {
            return Reply::Body(flat);
        }
        let mut list = String::from("<hblist>");
        for share in &state.opened {
            let item = xml::to_xml_pairs([
                ("openid", share.openid.as_deref().unwrap_or_default()),
                ("amount", share.amount.to_string().as_str()),
                (
                    "rcv_time",
                    share
                        .opened_at
                        .map(format_beijing_time)
                        .unwrap_or_default()
                        .as_str(),
                ),
            ]);
            list.push_str(
                &item
                    .replacen("<xml>", "<hbinfo>", 1)
                    .replace("</xml>", "</hbinfo>"),
            );
        }
        list.push_str("</hblist></xml>");
        Reply::Body(flat.replace("</xml>", &list))
    }

    /// `cgi-bin/token`.
    pub fn token(&mut self, query: &HashMap<String, String>) -> serde_json::Value {
        bump(&mut self.counters.requests, "token");
        let get = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
        if get("grant_type") != "client_credential" {
            return serde_json::json!({"errcode": 40002, "errmsg": "invalid grant_type"});
        }
        if get("appid") != self.secrets.appid {
            return serde_json::json!({"errcode": 40013, "errmsg": "invalid appid"});
        }
        if get("secret") != self.secrets.app_secret {
            return serde_json::json!({"errcode": 40125, "errmsg": "invalid appsecret"});
        }
        let now = self.now();
        // A new token leaves the previous ones valid for five more minutes, as WeChat does.
        let grace = now + time::Duration::minutes(5);
        for expiry in self.tokens.values_mut() {
            *expiry = (*expiry).min(grace);
        }
        self.tokens.retain(|_, expiry| *expiry > now);
        let token = self.random_hex(64);
        let ttl = self.rules.token_ttl_seconds.max(1);
        self.tokens
            .insert(token.clone(), now + time::Duration::seconds(i64::from(ttl)));
        serde_json::json!({"access_token": token, "expires_in": ttl})
    }

    /// `cgi-bin/user/info`.
    pub fn user_info(&mut self, query: &HashMap<String, String>) -> serde_json::Value {
        bump(&mut self.counters.requests, "user_info");
        let token = query
            .get("access_token")
            .map(String::as_str)
            .unwrap_or_default();
        let now = self.now();
        match self.tokens.get(token) {
            None => {
                return serde_json::json!({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"});
            }
            Some(expiry) if *expiry <= now => {
                return serde_json::json!({"errcode": 42001, "errmsg": "access_token expired"});
            }
            Some(_) => {}
        }
        let openid = query.get("openid").map(String::as_str).unwrap_or_default();
        if !well_formed_openid(openid) || self.foreign.contains(openid) {
            return serde_json::json!({"errcode": 40003, "errmsg": "invalid openid"});
        }
        if self.followers.follows(openid) {
            serde_json::json!({
                "subscribe": 1, "openid": openid, "nickname": "沙盒用户", "sex": 0, "language": "zh_CN",
                "subscribe_time": (now - time::Duration::days(30)).unix_timestamp(),
                "subscribe_scene": "ADD_SCENE_QR_CODE", "remark": "", "groupid": 0, "tagid_list": []
            })
        } else {
            serde_json::json!({"subscribe": 0, "openid": openid, "tagid_list": []})
        }
    }

    // ---- admin ----

    /// Every order, with its state now.
    pub fn ledger(&mut self) -> Vec<(Order, OrderState)> {
        let now = self.now();
        self.settle(now);
        let mut orders: Vec<(Order, OrderState)> = self
            .orders
            .values()
            .map(|o| (o.clone(), o.state_at(now, &self.lifecycle)))
            .collect();
        orders.sort_by(|a, b| {
            (a.0.created_at, &a.0.mch_billno).cmp(&(b.0.created_at, &b.0.mch_billno))
        });
        orders
    }

    /// One order, with its state now.
    pub fn order(&mut self, mch_billno: &str) -> Option<(Order, OrderState)> {
        let now = self.now();
        self.settle(now);
        self.orders
            .get(mch_billno)
            .map(|o| (o.clone(), o.state_at(now, &self.lifecycle)))
    }

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

    /// Makes every access token invalid (`40001` on the next use).
    pub fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }

    /// The merchant's ids.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets {
            mch_id: "1900000109".into(),
            appid: "wx8888888888888888".into(),
            app_secret: "0123456789abcdef0123456789abcdef".into(),
            miniprogram_appid: "wx1111111111111111".into(),
            api_key: "192006250b4c09247ec02edce69f6a2d".into(),
            workwx_corpid: "ww1234567890abcdef".into(),
            workwx_secret: "workwxsecret0123456789".into(),
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
