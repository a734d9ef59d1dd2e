//! WeChat Pay APIv3 商家转账 (transfer bills in user-confirmation mode),
//! kept apart from the v2 red packet protocol.
//!
//! A merchant creates a transfer bill; the user confirms it in WeChat; only
//! then does money move. The rule behind [`classify`]: an outcome not
//! *known* to be final is never a failure, and an answer whose signature
//! does not verify is never taken at its word. After a timeout, a reset, a
//! non-200 answer or an unknown code, query the same `out_bill_no`; resend
//! only the same prepared body.
//!
//! # Layout
//!
//! - [`crypto`]: request signatures, verification of answers and callbacks
//!   (微信支付公钥 and platform certificates), OAEP for `user_name`,
//!   AES-256-GCM for callbacks.
//! - [`bill`]: ids, states, the create request and its field rules, answers.
//! - [`code`]: WeChat's APIv3 error codes.
//! - [`outcome`]: the classification of every outcome.
//! - [`client`]: the transport and the client.
//! - [`callback`]: a callback, verified and decrypted.
//!
//! See `examples/transfer_one.rs` for a whole transfer against the sandbox.

pub mod bill;
pub mod callback;
pub mod client;
pub mod code;
pub mod crypto;
pub mod outcome;

pub use bill::{
    Bill, CreateTransfer, OutBillNo, Perception, PreparedTransfer, ReportInfo, TransferBillNo,
    TransferSceneId, TransferState,
};
pub use callback::{CallbackError, TransferNotification, parse_callback};
pub use client::{HttpV3Transport, Method, TransferClient, V3Request, V3Response, V3Transport};
pub use code::{ApiError, V3Code};
pub use crypto::{
    ApiV3Key, Authorization, DecryptError, Encryptor, KeyError, KeySource, MerchantSigner,
    PublicKeyId, SignatureHeaders, VerifyError, WechatPayKeys, certificate_serial,
};
pub use outcome::{Operation, TransferOutcome, V3Reply, classify};
