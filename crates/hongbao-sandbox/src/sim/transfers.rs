//! APIv3 商家转账 as WeChat runs it (facts: `wechat-transfer-v3.md`):
//! request signatures, signed answers, the create rules with WeChat's codes
//! and texts, idempotency per `out_bill_no`, the operations account, the
//! bills' state machine on the sandbox's clock, queries, cancel, and the
//! user who confirms (or not).
//!
//! Signatures and timestamps use real time (a client checks them against
//! its own clock); the bills' lifecycle uses the sandbox's clock, so
//! moving it forward closes unconfirmed bills after 24 h.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hongbao_wxpay::v3::TransferState;
use hongbao_wxpay::v3::crypto::{
    Authorization, MAX_SKEW_SECONDS, request_message, verify_rsa_sha256,
};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{FaultKind, Reply, Simulator, bump};
use crate::settings::{Transfers, V3Signer};
use crate::v3keys::V3Keys;

/// The create path.
pub(crate) const CREATE_PATH: &str = "/v3/fund-app/mch-transfer/transfer-bills";

/// What the user did (or will do) with a bill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum UserAction {
    /// Confirmed it (确认收款): `TRANSFERING`, then `SUCCESS`.
    Confirm,
    /// Confirmed, then WeChat refused to pay: `TRANSFERING`, then `FAIL`.
    Fail {
        /// The `fail_reason`, e.g. `TRANSFER_RISK`.
        reason: String,
    },
}

/// A user's action at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What.
    pub action: UserAction,
    /// When (sandbox clock).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// How a bill ended, fixed once it did (so a replayed journal does not
/// depend on today's settings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    /// `SUCCESS`, `FAIL` or `CANCELLED`.
    pub state: TransferState,
    /// Why it failed.
    pub fail_reason: Option<String>,
    /// When (sandbox clock).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A transfer bill WeChat created, keyed by `out_bill_no`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferBill {
    /// The merchant's number.
    pub out_bill_no: String,
    /// WeChat's number.
    pub transfer_bill_no: String,
    /// The appid.
    pub appid: String,
    /// The payee.
    pub openid: String,
    /// Fen.
    pub transfer_amount: u64,
    /// The remark.
    pub transfer_remark: String,
    /// The scene.
    pub transfer_scene_id: String,
    /// 现金奖励 or 活动奖励, if given.
    pub user_recv_perception: Option<String>,
    /// The scene's reports, (info_type, info_content).
    pub reports: Vec<(String, String)>,
    /// Where the callback goes.
    pub notify_url: Option<String>,
    /// The payee's name, decrypted (sandbox only; never answered).
    pub user_name: Option<String>,
    /// What `requestMerchantTransfer` needs.
    pub package_info: String,
    /// When it was created (sandbox clock).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Until when it stays `PROCESSING` (a `processing` fault).
    #[serde(with = "time::serde::rfc3339::option")]
    pub processing_until: Option<OffsetDateTime>,
    /// A failure decided at creation (`OPENID_INVALID`): no money locked.
    pub refused: Option<String>,
    /// The user's action and when (done, or scheduled by auto-confirm).
    pub user: Option<Decision>,
    /// When the merchant cancelled it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancel_at: Option<OffsetDateTime>,
    /// How it ended, once it did.
    pub settled: Option<Settled>,
    /// Whether a callback was acknowledged with 2xx.
    pub callback_delivered: bool,
    /// How many creates named it (first and replays).
    pub requests: u32,
}

/// A bill's state at a moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BillState {
    /// The state.
    pub state: TransferState,
    /// Why it failed.
    pub fail_reason: Option<String>,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub update_time: OffsetDateTime,
}

enum Next {
    Cancel(OffsetDateTime),
    User(UserAction, OffsetDateTime),
    Expire(OffsetDateTime),
}

impl Next {
    fn at(&self) -> OffsetDateTime {
        match self {
            Next::Cancel(t) | Next::User(_, t) | Next::Expire(t) => *t,
        }
    }
}

impl TransferBill {
    fn open_from(&self) -> OffsetDateTime {
        self.processing_until.unwrap_or(self.created_at)
    }

    /// The first of cancel, the user's action and the expiry.
    fn first_event(&self, s: &Transfers) -> Next {
        let mut next = Next::Expire(self.open_from() + s.expire_after);
        if let Some(decision) = &self.user
            && decision.at < next.at()
        {
            next = Next::User(decision.action.clone(), decision.at);
        }
        if let Some(at) = self.cancel_at
            && at <= next.at()
        {
            next = Next::Cancel(at);
        }
        next
    }

    /// The bill's state at `now`.
    pub fn state_at(&self, now: OffsetDateTime, s: &Transfers) -> BillState {
        let at = |state, fail_reason, update_time| BillState {
            state,
            fail_reason,
            update_time,
        };
        if let Some(settled) = &self.settled {
            return at(settled.state, settled.fail_reason.clone(), settled.at);
        }
        if let Some(reason) = &self.refused {
            return at(TransferState::Fail, Some(reason.clone()), self.created_at);
        }
        if now < self.open_from() {
            return at(TransferState::Processing, None, self.created_at);
        }
        let next = self.first_event(s);
        if now < next.at() {
            return at(TransferState::WaitUserConfirm, None, self.open_from());
        }
        match next {
            Next::Cancel(t) if now < t + s.canceling_for => at(TransferState::Canceling, None, t),
            Next::Cancel(t) => at(TransferState::Cancelled, None, t + s.canceling_for),
            Next::User(_, t) if now < t + s.transferring_for => {
                at(TransferState::Transfering, None, t)
            }
            Next::User(UserAction::Confirm, t) => {
                at(TransferState::Success, None, t + s.transferring_for)
            }
            Next::User(UserAction::Fail { reason }, t) => {
                at(TransferState::Fail, Some(reason), t + s.transferring_for)
            }
            Next::Expire(t) => at(TransferState::Fail, Some("OVERDUE_CLOSE".into()), t),
        }
    }

    /// When the bill becomes final.
    pub fn final_at(&self, s: &Transfers) -> OffsetDateTime {
        if let Some(settled) = &self.settled {
            return settled.at;
        }
        if self.refused.is_some() {
            return self.created_at;
        }
        match self.first_event(s) {
            Next::Cancel(t) => t + s.canceling_for,
            Next::User(_, t) => t + s.transferring_for,
            Next::Expire(t) => t,
        }
    }

    /// Whether the money is (to be) locked for it.
    fn locks_money(&self) -> bool {
        self.refused.is_none()
    }

    fn same_parameters(&self, other: &TransferBill) -> bool {
        (
            &self.appid,
            &self.openid,
            self.transfer_amount,
            &self.transfer_remark,
            &self.transfer_scene_id,
            &self.user_recv_perception,
            &self.reports,
            &self.notify_url,
            &self.user_name,
        ) == (
            &other.appid,
            &other.openid,
            other.transfer_amount,
            &other.transfer_remark,
            &other.transfer_scene_id,
            &other.user_recv_perception,
            &other.reports,
            &other.notify_url,
            &other.user_name,
        )
    }
}

/// A callback waiting to be delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingCallback {
    pub(crate) out_bill_no: String,
    /// The notification's id: the same for every retry.
    pub(crate) id: String,
    pub(crate) attempt: u32,
    pub(crate) due: OffsetDateTime,
    /// A second delivery of one already acknowledged.
    pub(crate) duplicate: bool,
}

/// One delivery to make now.
#[derive(Clone, Debug)]
pub struct CallbackDelivery {
    /// The bill.
    pub out_bill_no: String,
    /// The attempt (1 for the first).
    pub attempt: u32,
    /// Whether it repeats one already acknowledged.
    pub duplicate: bool,
    /// Where.
    pub url: String,
    /// The headers (`Wechatpay-*`).
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
    pub(crate) id: String,
}

/// The longest a callback is retried (WeChat: 1 + 10 + 10 + 44 attempts).
pub(crate) const MAX_CALLBACK_ATTEMPTS: u32 = 65;

/// The transfer side of the simulator.
#[derive(Debug, Default)]
pub(crate) struct Desk {
    pub(crate) settings: Transfers,
    pub(crate) keys: Option<V3Keys>,
    pub(crate) initial_operations_balance: u64,
    pub(crate) operations_balance: u64,
    pub(crate) bills: HashMap<String, TransferBill>,
    by_transfer_bill_no: HashMap<String, String>,
    pub(crate) by_package: HashMap<String, String>,
    /// Bills not yet final, by when they may be.
    queue: BTreeSet<(OffsetDateTime, String)>,
    pub(crate) outbox: VecDeque<PendingCallback>,
    next_seq: u64,
    create_window: VecDeque<Instant>,
    query_window: VecDeque<Instant>,
}

/// An APIv3 call as the server hands it over.
#[derive(Debug)]
pub struct V3Call<'a> {
    /// The method.
    pub method: &'a str,
    /// Path and query.
    pub path: &'a str,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `Wechatpay-Serial`.
    pub wechatpay_serial: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
    /// The caller's address.
    pub peer: IpAddr,
}

struct V3Error {
    status: u16,
    code: &'static str,
    message: String,
}

fn v3_error(status: u16, code: &'static str, message: impl Into<String>) -> V3Error {
    V3Error {
        status,
        code,
        message: message.into(),
    }
}

fn param(field: &str, label: &str, rule: &str) -> V3Error {
    v3_error(
        400,
        "PARAM_ERROR",
        format!("输入源“/body/{field}”映射到值字段“{label}”{rule}"),
    )
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(hongbao_wxpay::BEIJING)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn rate_exceeded(window: &mut VecDeque<Instant>, limit: u32, arrival: Instant) -> bool {
    if limit == 0 {
        return false;
    }
    let second = std::time::Duration::from_secs(1);
    while window
        .front()
        .is_some_and(|t| arrival.saturating_duration_since(*t) >= second)
    {
        window.pop_front();
    }
    if window.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
        return true;
    }
    window.push_back(arrival);
    false
}

const CREATE_FIELDS: [&str; 11] = [
    "appid",
    "out_bill_no",
    "transfer_scene_id",
    "openid",
    "user_name",
    "transfer_amount",
    "transfer_remark",
    "notify_url",
    "user_recv_perception",
    "transfer_scene_report_infos",
    "user_recv_style",
];

impl Desk {
    pub(crate) fn clear(&mut self) {
        self.bills.clear();
        self.by_transfer_bill_no.clear();
        self.by_package.clear();
        self.queue.clear();
        self.outbox.clear();
        self.create_window.clear();
        self.query_window.clear();
        self.operations_balance = self.initial_operations_balance;
        self.next_seq = 1;
    }

    /// Puts a bill in the ledger with its effect on the operations account
    /// (the same code live and when replaying the journal).
    pub(crate) fn apply_bill(&mut self, bill: TransferBill) {
        let previous = self.bills.get(&bill.out_bill_no);
        let is_new = previous.is_none();
        let newly_settled = previous.is_none_or(|p| p.settled.is_none()) && bill.settled.is_some();
        if is_new && bill.locks_money() {
            self.operations_balance = self.operations_balance.saturating_sub(bill.transfer_amount);
        }
        if newly_settled
            && bill.locks_money()
            && bill
                .settled
                .as_ref()
                .is_some_and(|s| s.state != TransferState::Success)
        {
            // FAIL and CANCELLED: the money goes back.
            self.operations_balance += bill.transfer_amount;
        }
        if bill.callback_delivered {
            self.outbox
                .retain(|c| c.out_bill_no != bill.out_bill_no || c.duplicate);
        }
        if bill.settled.is_none() {
            self.queue
                .insert((bill.final_at(&self.settings), bill.out_bill_no.clone()));
        } else if !bill.callback_delivered
            && bill.notify_url.is_some()
            && !self
                .outbox
                .iter()
                .any(|c| c.out_bill_no == bill.out_bill_no)
        {
            let at = bill.settled.as_ref().map_or(bill.created_at, |s| s.at);
            self.outbox.push_back(PendingCallback {
                out_bill_no: bill.out_bill_no.clone(),
                id: format!("EV-{}", bill.transfer_bill_no),
                attempt: 1,
                due: at,
                duplicate: false,
            });
        }
        let seq = bill
            .transfer_bill_no
            .get(18..)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        self.next_seq = self.next_seq.max(seq + 1);
        self.by_transfer_bill_no
            .insert(bill.transfer_bill_no.clone(), bill.out_bill_no.clone());
        self.by_package
            .insert(bill.package_info.clone(), bill.out_bill_no.clone());
        self.bills.insert(bill.out_bill_no.clone(), bill);
    }
}

impl Simulator {
    /// Bills that became final by `now`: fixed, money returned, callbacks queued.
    pub(crate) fn settle_transfers(&mut self, now: OffsetDateTime) {
        while let Some((at, out_bill_no)) = self.desk.queue.first().cloned() {
            if at > now {
                break;
            }
            self.desk.queue.pop_first();
            let Some(bill) = self.desk.bills.get(&out_bill_no).cloned() else {
                continue;
            };
            if bill.settled.is_some() || bill.final_at(&self.desk.settings) > now {
                // Changed since it was queued; its new time is queued too.
                continue;
            }
            let state = bill.state_at(now, &self.desk.settings);
            let mut settled = bill;
            settled.settled = Some(Settled {
                state: state.state,
                fail_reason: state.fail_reason,
                at: state.update_time,
            });
            self.record(&super::journal::Event::Bill(Box::new(settled.clone())));
            self.desk.apply_bill(settled);
        }
    }

    /// Handles an APIv3 call.
    pub fn v3(&mut self, call: &V3Call<'_>, arrival: Instant) -> super::Answer {
        let delay_ms = self.latency();
        let (op, result) = self.v3_inner(call, arrival);
        bump(&mut self.counters.requests, op);
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => self.v3_json(e.status, &json!({"code": e.code, "message": e.message})),
        };
        if let Reply::Json { status, body, .. } = &reply {
            let code = if *status < 300 {
                "SUCCESS".to_owned()
            } else {
                serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v["code"].as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            bump(&mut self.counters.answers, &code);
        }
        super::Answer { reply, delay_ms }
    }

    fn v3_inner(
        &mut self,
        call: &V3Call<'_>,
        arrival: Instant,
    ) -> (&'static str, Result<Reply, V3Error>) {
        let path = call.path.split('?').next().unwrap_or_default();
        if path.starts_with("/v3/transfer/batches") || path.starts_with("/v3/transfer-detail") {
            return (
                "transfer_batches",
                Err(v3_error(
                    403,
                    "NO_AUTH",
                    "当前商户号接入升级版本功能，暂不支持使用升级前功能，请使用升级后的功能",
                )),
            );
        }
        let rest = path.strip_prefix(CREATE_PATH);
        let (op, result) = match (call.method, rest) {
            ("POST", Some("")) => ("transfer_create", self.create(call, arrival)),
            ("GET", Some(rest)) if rest.starts_with("/out-bill-no/") => {
                let no = &rest["/out-bill-no/".len()..];
                (
                    "transfer_query",
                    self.query_bill(call, arrival, Some(no), None),
                )
            }
            ("GET", Some(rest)) if rest.starts_with("/transfer-bill-no/") => {
                let no = &rest["/transfer-bill-no/".len()..];
                (
                    "transfer_query",
                    self.query_bill(call, arrival, None, Some(no)),
                )
            }
            ("POST", Some(rest))
                if rest.starts_with("/out-bill-no/") && rest.ends_with("/cancel") =>
            {
                let no = &rest["/out-bill-no/".len()..rest.len() - "/cancel".len()];
                ("transfer_cancel", self.cancel_bill(call, no))
            }
            _ => (
                "v3_other",
                Err(v3_error(404, "NOT_FOUND", "请求的资源不存在")),
            ),
        };
        (op, result)
    }

    /// A signed JSON answer.
    fn v3_json(&mut self, status: u16, value: &Value) -> Reply {
        let body = value.to_string();
        let headers = self.v3_sign_headers(body.as_bytes());
        Reply::Json {
            status,
            headers,
            body: body.into_bytes(),
        }
    }

    /// `Wechatpay-*` headers over `body`, signed with the configured key.
    pub(crate) fn v3_sign_headers(&mut self, body: &[u8]) -> Vec<(&'static str, String)> {
        let nonce = self.random_hex(32).to_uppercase();
        let request_id = self.random_hex(24);
        let timestamp = OffsetDateTime::now_utc().unix_timestamp().to_string();
        let Some(keys) = &self.desk.keys else {
            return vec![("Request-ID", request_id)];
        };
        let (serial, signature) = keys.sign(self.desk.settings.signer, &timestamp, &nonce, body);
        vec![
            ("Wechatpay-Timestamp", timestamp),
            ("Wechatpay-Nonce", nonce),
            ("Wechatpay-Signature", signature),
            ("Wechatpay-Serial", serial),
            (
                "Wechatpay-Signature-Type",
                "WECHATPAY2-SHA256-RSA2048".to_owned(),
            ),
            ("Request-ID", request_id),
        ]
    }

    /// The merchant's signature (401 `SIGN_ERROR` when it does not verify).
    fn authenticate_v3(&self, call: &V3Call<'_>) -> Result<(), V3Error> {
        let Some(keys) = &self.desk.keys else {
            return Err(v3_error(500, "SYSTEM_ERROR", "APIv3 keys are missing"));
        };
        let sign_error = |m: &str| Err(v3_error(401, "SIGN_ERROR", m));
        let Some(header) = call.authorization else {
            return sign_error(
                "Http头缺少Authorization或格式错误，请参考《微信支付商户REST API签名规则》",
            );
        };
        let Some(auth) = Authorization::parse(header) else {
            return sign_error(
                "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》",
            );
        };
        if auth.mchid != self.secrets.mch_id {
            return sign_error("商户号与证书不匹配，请检查mchid");
        }
        if !auth.serial_no.eq_ignore_ascii_case(&keys.merchant_serial) {
            return sign_error("商户证书序列号有误。请使用签名私钥匹配的证书序列号");
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let Ok(timestamp) = auth.timestamp.parse::<i64>() else {
            return sign_error("Http头Authorization中timestamp格式错误");
        };
        if (timestamp - now).abs() > MAX_SKEW_SECONDS {
            return sign_error("Http头Authorization中的timestamp与服务器时间相差超过5分钟");
        }
        let body = std::str::from_utf8(call.body).unwrap_or_default();
        let message = request_message(call.method, call.path, timestamp, &auth.nonce_str, body);
        if !verify_rsa_sha256(
            &keys.merchant_public_key,
            message.as_bytes(),
            &auth.signature,
        ) {
            return sign_error("错误的签名，验签失败");
        }
        Ok(())
    }

    fn create(&mut self, call: &V3Call<'_>, arrival: Instant) -> Result<Reply, V3Error> {
        self.authenticate_v3(call)?;
        let per_second = self.desk.settings.create_per_second;
        if rate_exceeded(&mut self.desk.create_window, per_second, arrival) {
            return Err(v3_error(
                429,
                "FREQUENCY_LIMITED",
                "请求频率超过限制，请降低频率后重试",
            ));
        }
        let allow = &self.desk.settings.ip_allowlist;
        if !allow.is_empty() && !allow.contains(&call.peer) {
            return Err(v3_error(400, "INVALID_REQUEST", "此IP地址不允许调用该接口"));
        }
        let now = self.now();
        self.settle_transfers(now);
        let bill = self.parse_create(call, now)?;

        if let Some(existing) = self.desk.bills.get(&bill.out_bill_no).cloned() {
            if !existing.same_parameters(&bill) {
                return Err(v3_error(
                    400,
                    "INVALID_REQUEST",
                    "单号已存在但信息不一致，请查单后比较确认",
                ));
            }
            let mut replayed = existing;
            replayed.requests += 1;
            self.record(&super::journal::Event::Bill(Box::new(replayed.clone())));
            self.desk.apply_bill(replayed.clone());
            let fault = self.draw_fault().filter(|f| !f.before_commit());
            return Ok(self.create_answer(&replayed, now, fault));
        }

        let fault = self.draw_fault();
        if fault == Some(FaultKind::SystemerrorBefore) {
            self.count_fault("transfer_systemerror_before");
            return Err(v3_error(
                500,
                "SYSTEM_ERROR",
                "系统异常，请使用相同参数稍后重新调用",
            ));
        }
        if bill.locks_money() && self.desk.operations_balance < bill.transfer_amount {
            return Err(v3_error(
                403,
                "NOT_ENOUGH",
                "商户运营账户资金不足，充值后可以原单号发起重试，请勿更换商户单号",
            ));
        }
        let mut bill = bill;
        if fault == Some(FaultKind::Processing) {
            bill.processing_until = Some(now + self.lifecycle.processing_for);
        }
        if bill.refused.is_none() && self.draw(self.desk.settings.confirm_probability) {
            let at = bill.open_from() + self.desk.settings.confirm_after;
            bill.user = Some(Decision {
                action: UserAction::Confirm,
                at,
            });
        }
        self.record(&super::journal::Event::Bill(Box::new(bill.clone())));
        self.desk.apply_bill(bill.clone());
        Ok(self.create_answer(&bill, now, fault))
    }

    fn create_answer(
        &mut self,
        bill: &TransferBill,
        now: OffsetDateTime,
        fault: Option<FaultKind>,
    ) -> Reply {
        match fault {
            Some(FaultKind::SystemerrorAfter) => {
                self.count_fault("transfer_systemerror_after");
                return self.v3_json(
                    500,
                    &json!({"code": "SYSTEM_ERROR", "message": "系统异常，请使用相同参数稍后重新调用"}),
                );
            }
            Some(FaultKind::DropAfter) => {
                self.count_fault("transfer_drop_after");
                return Reply::Drop;
            }
            Some(FaultKind::Garbage) => {
                self.count_fault("transfer_garbage");
                return Reply::Garbage(self.garbage());
            }
            Some(FaultKind::Processing) => self.count_fault("transfer_processing"),
            Some(FaultKind::SystemerrorBefore) | None => {}
        }
        let state = bill.state_at(now, &self.desk.settings);
        let mut answer = json!({
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "create_time": rfc3339(bill.created_at),
            "state": state.state.as_str(),
        });
        if state.state == TransferState::WaitUserConfirm {
            answer["package_info"] = bill.package_info.clone().into();
        }
        if let Some(reason) = state.fail_reason {
            answer["fail_reason"] = reason.into();
        }
        self.v3_json(200, &answer)
    }

    /// WeChat's field rules, in the order it checks them.
    fn parse_create(
        &mut self,
        call: &V3Call<'_>,
        now: OffsetDateTime,
    ) -> Result<TransferBill, V3Error> {
        let value: Value = serde_json::from_slice(call.body)
            .map_err(|_| v3_error(400, "PARAM_ERROR", "请求体不是合法的JSON"))?;
        let Value::Object(body) = value else {
            return Err(v3_error(400, "PARAM_ERROR", "请求体不是合法的JSON对象"));
        };
        for (key, v) in &body {
            if v.is_null() || !CREATE_FIELDS.contains(&key.as_str()) {
                return Err(v3_error(
                    400,
                    "PARAM_ERROR",
                    format!("请求中含有未在API文档中定义的参数: {key}"),
                ));
            }
        }
        let text = |field: &str,
                    label: &str,
                    max_chars: usize,
                    required: bool|
         -> Result<Option<String>, V3Error> {
            match body.get(field) {
                None if required => Err(param(field, label, "为必填项")),
                None => Ok(None),
                Some(Value::String(s)) if s.is_empty() && required => Err(param(
                    field,
                    label,
                    "字符串规则校验失败，字符数 0，小于最小值 1",
                )),
                Some(Value::String(s)) if s.chars().count() > max_chars => Err(param(
                    field,
                    label,
                    &format!(
                        "字符串规则校验失败，字符数 {}，大于最大值 {max_chars}",
                        s.chars().count()
                    ),
                )),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(param(field, label, "类型错误，应为字符串")),
            }
        };
        let appid = text("appid", "商户AppID", 32, true)?.unwrap_or_default();
        let out_bill_no = text("out_bill_no", "商户单号", 32, true)?.unwrap_or_default();
        if !out_bill_no.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(param(
                "out_bill_no",
                "商户单号",
                "只能由数字、大小写字母组成",
            ));
        }
        let scene = text("transfer_scene_id", "转账场景ID", 32, true)?.unwrap_or_default();
        let openid = text("openid", "收款用户OpenID", 64, true)?.unwrap_or_default();
        let amount = match body.get("transfer_amount") {
            None => return Err(param("transfer_amount", "转账金额", "为必填项")),
            Some(v) => v.as_u64().ok_or_else(|| {
                param(
                    "transfer_amount",
                    "转账金额",
                    "类型错误，应为整数（单位：分）",
                )
            })?,
        };
        let remark = text("transfer_remark", "转账备注", 32, true)?.unwrap_or_default();
        let notify_url = text("notify_url", "通知地址", 256, false)?;
        let perception = text("user_recv_perception", "用户收款感知", 32, false)?;
        let user_name = text("user_name", "收款用户姓名", 2048, false)?;
        let reports = match body.get("transfer_scene_report_infos") {
            None => {
                return Err(param(
                    "transfer_scene_report_infos",
                    "转账场景报备背景信息",
                    "为必填项",
                ));
            }
            Some(Value::Array(items)) => {
                let mut reports = Vec::new();
                for item in items {
                    let (Some(t), Some(c)) = (
                        item.get("info_type").and_then(Value::as_str),
                        item.get("info_content").and_then(Value::as_str),
                    ) else {
                        return Err(param(
                            "transfer_scene_report_infos",
                            "转账场景报备背景信息",
                            "每一项须包含字符串 info_type 和 info_content",
                        ));
                    };
                    if c.is_empty() || c.chars().count() > 32 {
                        return Err(param(
                            "transfer_scene_report_infos/info_content",
                            "报备信息内容",
                            "字符数须在 1 到 32 之间",
                        ));
                    }
                    reports.push((t.to_owned(), c.to_owned()));
                }
                reports
            }
            Some(_) => {
                return Err(param(
                    "transfer_scene_report_infos",
                    "转账场景报备背景信息",
                    "类型错误，应为数组",
                ));
            }
        };
        if let Some(style) = body.get("user_recv_style")
            && !matches!(
                style.get("type").and_then(Value::as_str),
                Some("CONFIRM_PAGE" | "RED_PACKET")
            )
        {
            return Err(param(
                "user_recv_style",
                "用户收款方式",
                "type 只能是 CONFIRM_PAGE 或 RED_PACKET",
            ));
        }
        if appid != self.secrets.appid && appid != self.secrets.miniprogram_appid {
            return Err(v3_error(
                400,
                "INVALID_REQUEST",
                "APPID不存在或与商户号不匹配",
            ));
        }
        if scene != "1000" {
            return Err(v3_error(
                400,
                "INVALID_REQUEST",
                "该商户号未开通此转账场景，请前往商户平台开通",
            ));
        }
        let count = |t: &str| reports.iter().filter(|(ty, _)| ty == t).count();
        if reports.len() != 2 || count("活动名称") != 1 || count("奖励说明") != 1 {
            return Err(v3_error(
                400,
                "PARAM_ERROR",
                "转账场景报备信息不正确：现金营销场景须填写“活动名称”和“奖励说明”各一项",
            ));
        }
        if let Some(p) = &perception
            && p != "现金奖励"
            && p != "活动奖励"
        {
            return Err(v3_error(
                400,
                "INVALID_REQUEST",
                "用户收款感知不正确，现金营销场景只能为“现金奖励”或“活动奖励”",
            ));
        }
        if amount < 10 {
            return Err(param(
                "transfer_amount",
                "转账金额",
                "值低于最小值 10（0.1元）",
            ));
        }
        if amount > self.desk.settings.max_amount.get() {
            return Err(v3_error(
                400,
                "INVALID_REQUEST",
                "转账金额超过单笔转账上下限，请在商户平台调整",
            ));
        }
        if let Some(url) = &notify_url
            && hongbao_wxpay::v3::bill::check_notify_url(url).is_err()
        {
            return Err(param(
                "notify_url",
                "通知地址",
                "须为不带查询参数的HTTPS地址",
            ));
        }
        let user_name = match user_name {
            None if amount >= 200_000 => {
                return Err(param(
                    "user_name",
                    "收款用户姓名",
                    "转账金额大于等于2000元时必填",
                ));
            }
            None => None,
            Some(cipher) => Some(self.decrypt_user_name(call.wechatpay_serial, &cipher)?),
        };
        if !super::rules::well_formed_openid(&openid) {
            return Err(param("openid", "收款用户OpenID", "格式错误"));
        }
        let refused = self
            .foreign
            .contains(&openid)
            .then(|| "OPENID_INVALID".to_owned());
        let seq = self.desk.next_seq;
        self.desk.next_seq += 1;
        let day = hongbao_wxpay::beijing_date(now);
        let transfer_bill_no = format!(
            "1330000071{:04}{:02}{:02}{seq:022}",
            day.year(),
            u8::from(day.month()),
            day.day()
        );
        let mut package = [0u8; 48];
        self.rng.fill(&mut package[..]);
        Ok(TransferBill {
            out_bill_no,
            transfer_bill_no,
            appid,
            openid,
            transfer_amount: amount,
            transfer_remark: remark,
            transfer_scene_id: scene,
            user_recv_perception: perception,
            reports,
            notify_url,
            user_name,
            package_info: BASE64.encode(package),
            created_at: now,
            processing_until: None,
            refused,
            user: None,
            cancel_at: None,
            settled: None,
            callback_delivered: false,
            requests: 1,
        })
    }

    fn decrypt_user_name(&self, serial: Option<&str>, cipher: &str) -> Result<String, V3Error> {
        let keys = self
            .desk
            .keys
            .as_ref()
            .ok_or_else(|| v3_error(500, "SYSTEM_ERROR", "no keys"))?;
        let Some(serial) = serial else {
            return Err(v3_error(
                400,
                "PARAM_ERROR",
                "加密字段须在Http头Wechatpay-Serial中指明加密所用的微信支付公钥ID或平台证书序列号",
            ));
        };
        let plain = keys.decrypt(serial, cipher).ok_or_else(|| {
            v3_error(
                400,
                "PARAM_ERROR",
                "Wechatpay-Serial对应的公钥或证书不存在，或user_name解密失败",
            )
        })?;
        Ok(plain)
    }

    fn query_bill(
        &mut self,
        call: &V3Call<'_>,
        arrival: Instant,
        out_bill_no: Option<&str>,
        transfer_bill_no: Option<&str>,
    ) -> Result<Reply, V3Error> {
        self.authenticate_v3(call)?;
        let per_second = self.desk.settings.query_per_second;
        if rate_exceeded(&mut self.desk.query_window, per_second, arrival) {
            return Err(v3_error(
                429,
                "FREQUENCY_LIMITED",
                "请求频率超过限制，请降低频率后重试",
            ));
        }
        match self.draw_fault() {
            Some(FaultKind::SystemerrorBefore) => {
                self.count_fault("transfer_systemerror_query");
                return Err(v3_error(500, "SYSTEM_ERROR", "系统异常，请稍后重试"));
            }
            Some(FaultKind::Garbage) => {
                self.count_fault("transfer_garbage");
                return Ok(Reply::Garbage(self.garbage()));
            }
            _ => {}
        }
        let now = self.now();
        self.settle_transfers(now);
        let key = match (out_bill_no, transfer_bill_no) {
            (Some(no), _) => Some(no.to_owned()),
            (None, Some(no)) => self.desk.by_transfer_bill_no.get(no).cloned(),
            (None, None) => None,
        };
        let window = time::Duration::days(i64::from(self.desk.settings.query_window_days));
        let Some(bill) = key
            .and_then(|k| self.desk.bills.get(&k))
            .filter(|b| b.created_at + window > now)
            .cloned()
        else {
            return Err(v3_error(404, "NOT_FOUND", "记录不存在"));
        };
        let state = bill.state_at(now, &self.desk.settings);
        let mut answer = json!({
            "mch_id": self.secrets.mch_id,
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "appid": bill.appid,
            "state": state.state.as_str(),
            "transfer_amount": bill.transfer_amount,
            "transfer_remark": bill.transfer_remark,
            "openid": bill.openid,
            "create_time": rfc3339(bill.created_at),
            "update_time": rfc3339(state.update_time),
        });
        if let Some(reason) = state.fail_reason {
            answer["fail_reason"] = reason.into();
        }
        Ok(self.v3_json(200, &answer))
    }

    fn cancel_bill(&mut self, call: &V3Call<'_>, out_bill_no: &str) -> Result<Reply, V3Error> {
        self.authenticate_v3(call)?;
        if !(call.body.is_empty() || call.body == b"{}") {
            return Err(v3_error(
                400,
                "PARAM_ERROR",
                "请求中含有未在API文档中定义的参数",
            ));
        }
        let now = self.now();
        self.settle_transfers(now);
        let Some(bill) = self.desk.bills.get(out_bill_no).cloned() else {
            return Err(v3_error(404, "NOT_FOUND", "记录不存在"));
        };
        let state = bill.state_at(now, &self.desk.settings);
        let state = match state.state {
            TransferState::Accepted
            | TransferState::Processing
            | TransferState::WaitUserConfirm => {
                let mut cancelled = bill.clone();
                cancelled.cancel_at = Some(now);
                self.record(&super::journal::Event::Bill(Box::new(cancelled.clone())));
                self.desk.apply_bill(cancelled.clone());
                self.settle_transfers(now);
                let current = self
                    .desk
                    .bills
                    .get(out_bill_no)
                    .cloned()
                    .unwrap_or(cancelled);
                current.state_at(now, &self.desk.settings)
            }
            TransferState::Canceling | TransferState::Cancelled => state,
            _ => {
                return Err(v3_error(400, "INVALID_REQUEST", "当前单据状态不支持撤销"));
            }
        };
        Ok(self.v3_json(
            200,
            &json!({
                "out_bill_no": bill.out_bill_no,
                "transfer_bill_no": bill.transfer_bill_no,
                "state": state.state.as_str(),
                "update_time": rfc3339(state.update_time),
            }),
        ))
    }

    // ---- the user and the admin ----

    /// Every bill with its state now.
    pub fn transfer_ledger(&mut self) -> Vec<(TransferBill, BillState)> {
        let now = self.now();
        self.settle_transfers(now);
        let mut bills: Vec<_> = self
            .desk
            .bills
            .values()
            .map(|b| (b.clone(), b.state_at(now, &self.desk.settings)))
            .collect();
        bills.sort_by(|a, b| {
            (a.0.created_at, &a.0.out_bill_no).cmp(&(b.0.created_at, &b.0.out_bill_no))
        });
        bills
    }

    /// One bill with its state now.
    pub fn transfer_bill(&mut self, out_bill_no: &str) -> Option<(TransferBill, BillState)> {
        let now = self.now();
        self.settle_transfers(now);
        self.desk
            .bills
            .get(out_bill_no)
            .map(|b| (b.clone(), b.state_at(now, &self.desk.settings)))
    }

    /// The bill whose `package_info` is `package`.
    pub fn bill_by_package(&mut self, package: &str) -> Option<(TransferBill, BillState)> {
        let no = self.desk.by_package.get(package).cloned()?;
        self.transfer_bill(&no)
    }

    /// The user confirms (`Confirm`) or confirms and is refused (`Fail`),
    /// or does nothing (`None`: the bill will expire unless cancelled).
    /// Only a bill waiting for the user can be acted on, and only by its
    /// payee when `openid` is given.
    pub fn user_acts(
        &mut self,
        out_bill_no: &str,
        action: Option<UserAction>,
        openid: Option<&str>,
    ) -> Result<BillState, String> {
        let now = self.now();
        self.settle_transfers(now);
        let Some(bill) = self.desk.bills.get(out_bill_no).cloned() else {
            return Err(format!("no bill {out_bill_no}"));
        };
        if let Some(openid) = openid
            && openid != bill.openid
        {
            return Err("你的微信号与商家指定的微信号不一致 (only the payee can confirm)".into());
        }
        let state = bill.state_at(now, &self.desk.settings);
        if state.state != TransferState::WaitUserConfirm {
            return Err(format!(
                "the bill is {}, not WAIT_USER_CONFIRM",
                state.state.as_str()
            ));
        }
        let mut changed = bill;
        changed.user = action.map(|action| Decision { action, at: now });
        self.record(&super::journal::Event::Bill(Box::new(changed.clone())));
        self.desk.apply_bill(changed);
        self.settle_transfers(now);
        Ok(self
            .transfer_bill(out_bill_no)
            .map(|(_, s)| s)
            .unwrap_or(state))
    }

    /// The operations account's balance in fen.
    pub fn operations_balance(&mut self) -> u64 {
        let now = self.now();
        self.settle_transfers(now);
        self.desk.operations_balance
    }

    /// Sets the operations account's balance.
    pub fn set_operations_balance(&mut self, fen: u64) {
        self.desk.operations_balance = fen;
        self.record(&super::journal::Event::OperationsBalance { fen });
    }

    /// Adds to the operations account.
    pub fn top_up_operations(&mut self, fen: u64) -> u64 {
        let now = self.now();
        self.settle_transfers(now);
        let fen = self.desk.operations_balance.saturating_add(fen);
        self.set_operations_balance(fen);
        fen
    }

    /// The transfer settings.
    pub fn transfer_settings(&self) -> &Transfers {
        &self.desk.settings
    }

    /// Changes the transfer settings.
    pub fn set_transfer_settings(&mut self, settings: Transfers) {
        self.desk.settings = settings;
        // Final times depend on the settings: requeue every open bill.
        let open: Vec<_> = self
            .desk
            .bills
            .values()
            .filter(|b| b.settled.is_none())
            .map(|b| (b.final_at(&self.desk.settings), b.out_bill_no.clone()))
            .collect();
        self.desk.queue.extend(open);
    }

    // ---- callbacks ----

    /// Callbacks due now, signed and encrypted, at most `limit`.
    pub fn due_callbacks(&mut self, limit: usize) -> Vec<CallbackDelivery> {
        let now = self.now();
        self.settle_transfers(now);
        let mut due = Vec::new();
        let mut kept = VecDeque::new();
        while let Some(pending) = self.desk.outbox.pop_front() {
            if due.len() < limit && pending.due <= now {
                due.push(pending);
            } else {
                kept.push_back(pending);
            }
        }
        self.desk.outbox = kept;
        due.into_iter()
            .filter_map(|p| self.callback_delivery(p))
            .collect()
    }

    fn callback_delivery(&mut self, pending: PendingCallback) -> Option<CallbackDelivery> {
        let bill = self.desk.bills.get(&pending.out_bill_no)?.clone();
        let url = bill.notify_url.clone()?;
        let settled = bill.settled.clone()?;
        let nonce = self.random_hex(12);
        let keys = self.desk.keys.as_ref()?;
        let mut resource = json!({
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "state": settled.state.as_str(),
            "mch_id": self.secrets.mch_id,
            "transfer_amount": bill.transfer_amount,
            "openid": bill.openid,
            "create_time": rfc3339(bill.created_at),
            "update_time": rfc3339(settled.at),
        });
        if let Some(reason) = &settled.fail_reason {
            resource["fail_reason"] = reason.clone().into();
        }
        let ciphertext = keys
            .apiv3_key
            .encrypt("mch_payment", &nonce, resource.to_string().as_bytes())
            .ok()?;
        let body = json!({
            "id": pending.id,
            "create_time": rfc3339(settled.at),
            "resource_type": "encrypt-resource",
            "event_type": "MCHTRANSFER.BILL.FINISHED",
            "summary": "商家转账单据终态通知",
            "resource": {
                "original_type": "mch_payment",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": "mch_payment",
                "nonce": nonce,
            }
        })
        .to_string();
        let headers = self.v3_sign_headers(body.as_bytes());
        Some(CallbackDelivery {
            out_bill_no: pending.out_bill_no,
            attempt: pending.attempt,
            duplicate: pending.duplicate,
            url,
            headers,
            body,
            id: pending.id,
        })
    }

    /// Records how a delivery went: 2xx is done (and sometimes sent once
    /// more); anything else is retried on WeChat's schedule.
    pub fn callback_result(&mut self, delivery: &CallbackDelivery, acknowledged: bool) {
        let now = self.now();
        if acknowledged {
            bump(&mut self.counters.requests, "callback_acknowledged");
            if delivery.duplicate {
                return;
            }
            if let Some(bill) = self.desk.bills.get(&delivery.out_bill_no).cloned() {
                let mut done = bill;
                done.callback_delivered = true;
                self.record(&super::journal::Event::Bill(Box::new(done.clone())));
                self.desk.apply_bill(done);
            }
            if self.draw(self.desk.settings.callback_duplicate_probability) {
                bump(&mut self.counters.faults, "callback_duplicate");
                self.desk.outbox.push_back(PendingCallback {
                    out_bill_no: delivery.out_bill_no.clone(),
                    id: delivery.id.clone(),
                    attempt: delivery.attempt + 1,
                    due: now,
                    duplicate: true,
                });
            }
            return;
        }
        bump(&mut self.counters.requests, "callback_refused");
        if delivery.duplicate || delivery.attempt >= MAX_CALLBACK_ATTEMPTS {
            return;
        }
        let base = self.desk.settings.callback_retry_after;
        // WeChat's schedule: 15 s ×10, 300 s ×10, 1800 s ×44 (community).
        let wait = match delivery.attempt {
            0..=10 => base,
            11..=20 => base * 20,
            _ => base * 120,
        };
        self.desk.outbox.push_back(PendingCallback {
            out_bill_no: delivery.out_bill_no.clone(),
            id: delivery.id.clone(),
            attempt: delivery.attempt + 1,
            due: now + wait,
            duplicate: false,
        });
    }

    /// Whether a `V3Signer` is usable (both are, once the keys are loaded).
    pub fn v3_enabled(&self) -> bool {
        self.desk.keys.is_some()
    }
}

impl V3Signer {
    /// The name as the CLI takes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            V3Signer::PublicKey => "public-key",
            V3Signer::PlatformCertificate => "platform-certificate",
        }
    }
}
