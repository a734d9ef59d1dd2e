//! The admin API, plain HTTP on loopback only: the ledger of committed
//! payments, the balance, counters, reset, top-up, followers, foreign
//! openids, faults and limits, and a clock that moves forward; for
//! transfers, the bills, the operations account, the user's confirm,
//! ignore and fail, and the confirm page a person sees in WeChat.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::settings::{Faults, Followers, Lifecycle, Rules, Transfers};
use crate::sim::{BillState, Order, OrderState, Simulator, TransferBill, UserAction};

type Shared = Arc<Mutex<Simulator>>;

/// One committed (or failed) red packet, as the admin API lists it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
pub struct LedgerEntry {
    /// The merchant's order number.
    pub mch_billno: String,
    /// The API that created it.
    pub api: String,
    /// The receiver.
    pub openid: String,
    /// The amount in fen.
    pub amount: u64,
    /// The number of shares.
    pub total_num: u32,
    /// WeChat's order number.
    pub send_listid: String,
    /// `SENDING`, `SENT`, `FAILED`, `RECEIVED`, `RFUND_ING` or `REFUND`.
    pub status: String,
    /// Whether money left the balance for it (everything but `FAILED`).
    pub paid: bool,
    /// Why it failed.
    pub failed_reason: Option<String>,
    /// How many times its mch_billno was requested (first call and replays).
    pub times_requested: u32,
    /// Refunded fen.
    pub refund_amount: Option<u64>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Opened shares: (openid, fen).
    pub received: Vec<(String, u64)>,
}

impl LedgerEntry {
    /// The admin view of an order.
    pub fn new(order: &Order, state: &OrderState) -> Self {
        LedgerEntry {
            mch_billno: order.mch_billno.clone(),
            api: order.api.name().to_owned(),
            openid: order.re_openid.clone(),
            amount: order.total_amount,
            total_num: order.total_num,
            send_listid: order.send_listid.clone(),
            status: state.status.as_str().to_owned(),
            paid: order.failed_reason.is_none(),
            failed_reason: order.failed_reason.clone(),
            times_requested: order.requests,
            refund_amount: state.refund_amount,
            created_at: order.created_at,
            received: state
                .opened
                .iter()
                .map(|s| (s.openid.clone().unwrap_or_default(), s.amount))
                .collect(),
        }
    }
}

/// One transfer bill, as the admin API lists it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
pub struct TransferEntry {
    /// The merchant's number.
    pub out_bill_no: String,
    /// WeChat's number.
    pub transfer_bill_no: String,
    /// The payee.
    pub openid: String,
    /// Fen.
    pub transfer_amount: u64,
    /// The remark.
    pub transfer_remark: String,
    /// The state now.
    pub state: String,
    /// Why it failed.
    pub fail_reason: Option<String>,
    /// What `requestMerchantTransfer` needs (and the confirm page takes).
    pub package_info: String,
    /// Whether money left the operations account for good (`SUCCESS`).
    pub paid: bool,
    /// How many creates named it.
    pub times_requested: u32,
    /// Whether a callback was acknowledged.
    pub callback_delivered: bool,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its state last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub update_time: OffsetDateTime,
}

impl TransferEntry {
    /// The admin view of a bill.
    pub fn new(bill: &TransferBill, state: &BillState) -> Self {
        TransferEntry {
            out_bill_no: bill.out_bill_no.clone(),
            transfer_bill_no: bill.transfer_bill_no.clone(),
            openid: bill.openid.clone(),
            transfer_amount: bill.transfer_amount,
            transfer_remark: bill.transfer_remark.clone(),
            state: state.state.as_str().to_owned(),
            fail_reason: state.fail_reason.clone(),
            package_info: bill.package_info.clone(),
            paid: state.state == hongbao_wxpay::v3::TransferState::Success,
            times_requested: bill.requests,
            callback_delivered: bill.callback_delivered,
            created_at: bill.created_at,
            update_time: state.update_time,
        }
    }
}

/// The whole state, as `GET /state` returns it.
#[derive(Debug, Serialize)]
struct StateView {
    mch_id: String,
    appid: String,
    miniprogram_appid: String,
    balance_fen: u64,
    operations_balance_fen: u64,
    orders: usize,
    transfer_bills: usize,
    #[serde(with = "time::serde::rfc3339")]
    clock: OffsetDateTime,
    rules: Rules,
    lifecycle: Lifecycle,
    faults: Faults,
    transfers: Transfers,
    wechatpay_public_key_id: String,
    counters: crate::sim::Counters,
}

#[derive(Deserialize)]
struct Amount {
    fen: u64,
}

#[derive(Deserialize)]
struct Seconds {
    seconds: u64,
}

#[derive(Deserialize)]
struct Openids {
    openids: BTreeSet<String>,
}

struct AdminError(StatusCode, String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({"error": self.1}))).into_response()
    }
}

fn lock(sim: &Shared) -> std::sync::MutexGuard<'_, Simulator> {
    sim.lock().expect("sandbox lock")
}

async fn ledger(State(sim): State<Shared>) -> Json<Vec<LedgerEntry>> {
    let entries = lock(&sim).ledger();
    Json(
        entries
            .iter()
            .map(|(o, s)| LedgerEntry::new(o, s))
            .collect(),
    )
}

async fn ledger_entry(
    State(sim): State<Shared>,
    Path(billno): Path<String>,
) -> Result<Json<LedgerEntry>, AdminError> {
    let found = lock(&sim).order(&billno);
    found
        .map(|(o, s)| Json(LedgerEntry::new(&o, &s)))
        .ok_or_else(|| AdminError(StatusCode::NOT_FOUND, format!("no order {billno}")))
}

async fn state(State(sim): State<Shared>) -> Json<StateView> {
    let mut sim = lock(&sim);
    let balance_fen = sim.balance();
    let orders = sim.ledger().len();
    let transfer_bills = sim.transfer_ledger().len();
    let operations_balance_fen = sim.operations_balance();
    Json(StateView {
        operations_balance_fen,
        transfer_bills,
        transfers: sim.transfer_settings().clone(),
        wechatpay_public_key_id: sim.secrets().wechatpay_public_key_id.clone(),
        mch_id: sim.secrets().mch_id.clone(),
        appid: sim.secrets().appid.clone(),
        miniprogram_appid: sim.secrets().miniprogram_appid.clone(),
        balance_fen,
        orders,
        clock: sim.now(),
        rules: sim.rules.clone(),
        lifecycle: sim.lifecycle.clone(),
        faults: sim.faults.clone(),
        counters: sim.counters(),
    })
}

async fn top_up(State(sim): State<Shared>, Json(amount): Json<Amount>) -> Json<serde_json::Value> {
    let balance = lock(&sim).top_up(amount.fen);
    Json(serde_json::json!({"balance_fen": balance}))
}

async fn set_balance(
    State(sim): State<Shared>,
    Json(amount): Json<Amount>,
) -> Json<serde_json::Value> {
    lock(&sim).set_balance(amount.fen);
    Json(serde_json::json!({"balance_fen": amount.fen}))
}

async fn reset(State(sim): State<Shared>) -> StatusCode {
    lock(&sim).reset();
    StatusCode::NO_CONTENT
}

async fn followers(State(sim): State<Shared>, Json(followers): Json<Followers>) -> StatusCode {
    lock(&sim).set_followers(followers);
    StatusCode::NO_CONTENT
}

async fn foreign(State(sim): State<Shared>, Json(body): Json<Openids>) -> StatusCode {
    lock(&sim).set_foreign(body.openids);
    StatusCode::NO_CONTENT
}

async fn advance(State(sim): State<Shared>, Json(body): Json<Seconds>) -> Json<serde_json::Value> {
    let now = lock(&sim).advance_clock(body.seconds);
    let text = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Json(serde_json::json!({"clock": text}))
}

/// A JSON body, or our error naming what is wrong (an unknown key included).
fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AdminError> {
    body.map(|Json(v)| v)
        .map_err(|e| AdminError(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))
}

async fn faults(
    State(sim): State<Shared>,
    faults: Result<Json<Faults>, JsonRejection>,
) -> Result<StatusCode, AdminError> {
    let faults = body(faults)?;
    faults
        .validate()
        .map_err(|e| AdminError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    lock(&sim).faults = faults;
    Ok(StatusCode::NO_CONTENT)
}

async fn rules(
    State(sim): State<Shared>,
    rules: Result<Json<Rules>, JsonRejection>,
) -> Result<StatusCode, AdminError> {
    lock(&sim).rules = body(rules)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn lifecycle(
    State(sim): State<Shared>,
    lifecycle: Result<Json<Lifecycle>, JsonRejection>,
) -> Result<StatusCode, AdminError> {
    lock(&sim).lifecycle = body(lifecycle)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_tokens(State(sim): State<Shared>) -> StatusCode {
    lock(&sim).revoke_tokens();
    StatusCode::NO_CONTENT
}

async fn transfers(State(sim): State<Shared>) -> Json<Vec<TransferEntry>> {
    let bills = lock(&sim).transfer_ledger();
    Json(
        bills
            .iter()
            .map(|(b, s)| TransferEntry::new(b, s))
            .collect(),
    )
}

async fn transfer(
    State(sim): State<Shared>,
    Path(no): Path<String>,
) -> Result<Json<TransferEntry>, AdminError> {
    let found = lock(&sim).transfer_bill(&no);
    found
        .map(|(b, s)| Json(TransferEntry::new(&b, &s)))
        .ok_or_else(|| AdminError(StatusCode::NOT_FOUND, format!("no transfer bill {no}")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Payee {
    /// Who confirms: refused unless the bill's payee.
    openid: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Failure {
    reason: String,
}

fn act(
    sim: &Shared,
    no: &str,
    action: Option<UserAction>,
    openid: Option<&str>,
) -> Result<Json<TransferEntry>, AdminError> {
    let mut sim = lock(sim);
    if sim.transfer_bill(no).is_none() {
        return Err(AdminError(
            StatusCode::NOT_FOUND,
            format!("no transfer bill {no}"),
        ));
    }
    sim.user_acts(no, action, openid)
        .map_err(|e| AdminError(StatusCode::CONFLICT, e))?;
    let (bill, state) = sim
        .transfer_bill(no)
        .ok_or_else(|| AdminError(StatusCode::NOT_FOUND, format!("no transfer bill {no}")))?;
    Ok(Json(TransferEntry::new(&bill, &state)))
}

async fn confirm(
    State(sim): State<Shared>,
    Path(no): Path<String>,
    payee: Option<Json<Payee>>,
) -> Result<Json<TransferEntry>, AdminError> {
    let payee = payee.map(|Json(p)| p).unwrap_or_default();
    act(
        &sim,
        &no,
        Some(UserAction::Confirm),
        payee.openid.as_deref(),
    )
}

async fn ignore(
    State(sim): State<Shared>,
    Path(no): Path<String>,
) -> Result<Json<TransferEntry>, AdminError> {
    act(&sim, &no, None, None)
}

async fn fail(
    State(sim): State<Shared>,
    Path(no): Path<String>,
    failure: Result<Json<Failure>, JsonRejection>,
) -> Result<Json<TransferEntry>, AdminError> {
    let Failure { reason } = body(failure)?;
    act(&sim, &no, Some(UserAction::Fail { reason }), None)
}

async fn transfer_settings(
    State(sim): State<Shared>,
    settings: Result<Json<Transfers>, JsonRejection>,
) -> Result<StatusCode, AdminError> {
    let settings = body(settings)?;
    lock(&sim).set_transfer_settings(settings);
    Ok(StatusCode::NO_CONTENT)
}

async fn operations_top_up(
    State(sim): State<Shared>,
    Json(amount): Json<Amount>,
) -> Json<serde_json::Value> {
    let balance = lock(&sim).top_up_operations(amount.fen);
    Json(serde_json::json!({"operations_balance_fen": balance}))
}

async fn set_operations_balance(
    State(sim): State<Shared>,
    Json(amount): Json<Amount>,
) -> Json<serde_json::Value> {
    lock(&sim).set_operations_balance(amount.fen);
    Json(serde_json::json!({"operations_balance_fen": amount.fen}))
}

#[derive(Deserialize)]
struct Package {
    package: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, inner: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:sans-serif;background:#ededed;margin:0}}\
         .card{{background:#fff;max-width:420px;margin:40px auto;padding:32px;border-radius:8px;text-align:center}}\
         .amount{{font-size:40px;font-weight:600;margin:16px 0}} .muted{{color:#888;font-size:14px}}\
         button{{background:#07c160;color:#fff;border:0;border-radius:6px;font-size:17px;padding:12px 0;width:100%;margin-top:24px}}\
         </style></head><body><div class=\"card\">{inner}\
         <p class=\"muted\">hongbao sandbox：模拟的微信收款确认页，不涉及真实资金</p></div></body></html>"
    ))
}

/// The page a payee sees in WeChat after `requestMerchantTransfer`.
async fn confirm_page(State(sim): State<Shared>, Query(q): Query<Package>) -> Response {
    let found = lock(&sim).bill_by_package(&q.package);
    let Some((bill, state)) = found else {
        return (
            StatusCode::NOT_FOUND,
            page(
                "确认收款",
                "<p>package信息有误</p><p class=\"muted\">no bill has this package</p>",
            ),
        )
            .into_response();
    };
    let yuan = hongbao_wxpay::Fen::new(bill.transfer_amount).to_yuan_string();
    let mch = escape(&lock(&sim).secrets().mch_id);
    let head = format!(
        "<p>商户 {mch} 向你转账</p><div class=\"amount\">¥{yuan}</div><p>{}</p>",
        escape(&bill.transfer_remark)
    );
    let body = if state.state == hongbao_wxpay::v3::TransferState::WaitUserConfirm {
        format!(
            "{head}<form method=\"post\" action=\"/confirm\">\
             <input type=\"hidden\" name=\"package\" value=\"{}\">\
             <button type=\"submit\">确认收款</button></form>",
            escape(&q.package)
        )
    } else {
        format!("{head}<p>{}</p>", escape(state.state.as_str()))
    };
    page("确认收款", &body).into_response()
}

/// The 确认收款 button.
async fn confirm_submit(State(sim): State<Shared>, Form(form): Form<Package>) -> Response {
    let mut guard = lock(&sim);
    let Some((bill, _)) = guard.bill_by_package(&form.package) else {
        return (
            StatusCode::NOT_FOUND,
            page("确认收款", "<p>package信息有误</p>"),
        )
            .into_response();
    };
    match guard.user_acts(&bill.out_bill_no, Some(UserAction::Confirm), None) {
        Ok(state) => page(
            "收款成功",
            &format!(
                "<p>已确认收款</p><div class=\"amount\">¥{}</div><p>{}</p>",
                hongbao_wxpay::Fen::new(bill.transfer_amount).to_yuan_string(),
                escape(state.state.as_str())
            ),
        )
        .into_response(),
        Err(e) => (
            StatusCode::CONFLICT,
            page("确认收款", &format!("<p>{}</p>", escape(&e))),
        )
            .into_response(),
    }
}

/// The admin routes.
pub(crate) fn router(sim: Shared) -> Router {
    Router::new()
        .route("/ledger", get(ledger))
        .route("/ledger/{mch_billno}", get(ledger_entry))
        .route("/state", get(state))
        .route("/balance", put(set_balance))
        .route("/balance/topup", post(top_up))
        .route("/reset", post(reset))
        .route("/followers", put(followers))
        .route("/foreign-openids", put(foreign))
        .route("/clock/advance", post(advance))
        .route("/faults", put(faults))
        .route("/rules", put(rules))
        .route("/lifecycle", put(lifecycle))
        .route("/tokens/revoke", post(revoke_tokens))
        .route("/transfers", get(transfers))
        .route("/transfers/settings", put(transfer_settings))
        .route("/transfers/{out_bill_no}", get(transfer))
        .route("/transfers/{out_bill_no}/confirm", post(confirm))
        .route("/transfers/{out_bill_no}/ignore", post(ignore))
        .route("/transfers/{out_bill_no}/fail", post(fail))
        .route("/operations-balance", put(set_operations_balance))
        .route("/operations-balance/topup", post(operations_top_up))
        .route("/confirm", get(confirm_page).post(confirm_submit))
        .with_state(sim)
}
