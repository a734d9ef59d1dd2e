//! WeChat Pay API v2 cash red packets (现金红包) and APIv3 transfer bills
//! (商家转账, in [`v3`]), as a library.
//!
//! This crate owns the protocol: signing (MD5, HMAC-SHA256, WeCom's
//! `workwx_sign`, the mini program's `paySign`), XML in and out (safe: no
//! DTD, no entities, bounded), typed and validated requests for every red
//! packet API, typed answers, the classification of every outcome into what
//! the caller must do, mch_billno layout, the mutual-TLS transport (PEM or
//! legacy PKCS#12, without OpenSSL), and the official account's
//! `access_token` and user info for the follow check.
//!
//! It must never hold a database or a server, and never retry on its own:
//! a red packet is money, so every attempt is the caller's to record.
//!
//! The rule behind [`classify_send`]: an outcome not *known* to be final is
//! never a failure. After a timeout, a reset, `SYSTEMERROR`, `PROCESSING`,
//! an unknown code or an unreadable answer, query with `gethbinfo` and
//! resend only with the same mch_billno and the same parameters.
//!
//! See `examples/send_one.rs` for a whole send against the sandbox or WeChat,
//! and `examples/transfer_one.rs` for a transfer bill.

#![warn(missing_docs)]

mod api;
mod client;
mod errcode;
mod http1;
mod ids;
mod invalid;
mod miniprogram;
mod money;
pub mod official_account;
pub mod outcome;
mod params;
pub mod request;
mod response;
pub mod sign;
pub mod transport;
pub mod v3;
pub mod xml;

pub use api::Api;
pub use client::Client;
pub use errcode::ErrCode;
pub use ids::{
    ApiKey, AppId, BEIJING, BillnoDeployment, MchBillNo, MchId, OpenId, SceneId, beijing_date,
    nonce_str,
};
pub use invalid::InvalidField;
pub use miniprogram::BizRedPacket;
pub use money::Fen;
pub use official_account::{
    OfficialAccount, OfficialAccountConfig, OfficialAccountError, UserInfo,
};
pub use outcome::{
    CallError, PauseReason, QueryOutcome, SendOutcome, classify_query, classify_send, send_action,
};
pub use params::{Fields, Params};
pub use request::{
    GetHbInfo, HbPreorder, HbType, Merchant, Prepared, QueryWorkWxRedpack, Request, RiskControl,
    SendGroupRedpack, SendMiniProgramHb, SendRedpack, SendWorkWxRedpack, ServiceProvider,
    WorkWxSender,
};
pub use response::{
    HbInfo, HbReceiver, HbStatus, Reply, SendResult, format_beijing_time, parse_beijing_time,
};
pub use sign::{SignType, sign};
pub use transport::{
    ClientIdentity, DEFAULT_API_BASE, HttpTransport, IdentityError, Transport, TransportConfig,
};
