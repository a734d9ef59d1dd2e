//! The admin API, plain HTTP on loopback only: the ledger of committed
//! payments, the balance, counters, reset, top-up, followers, foreign
//! openids, faults and limits, and a clock that moves forward.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::settings::{Faults, Followers, Lifecycle, Rules};
use crate::sim::{Order, OrderState, Simulator};

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

/// The whole state, as `GET /state` returns it.
#[derive(Debug, Serialize)]
struct StateView {
    mch_id: String,
    appid: String,
    miniprogram_appid: String,
    balance_fen: u64,
    orders: usize,
    #[serde(with = "time::serde::rfc3339")]
    clock: OffsetDateTime,
    rules: Rules,
    lifecycle: Lifecycle,
    faults: Faults,
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
    Json(StateView {
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
        .with_state(sim)
}
