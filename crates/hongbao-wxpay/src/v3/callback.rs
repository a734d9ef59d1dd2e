//! WeChat's callback for a transfer bill (`MCHTRANSFER.BILL.FINISHED`):
//! verified first, then decrypted with the APIv3 key (facts §5).

use serde::Deserialize;
use time::OffsetDateTime;

use crate::v3::bill::Bill;
use crate::v3::crypto::{ApiV3Key, DecryptError, SignatureHeaders, VerifyError, WechatPayKeys};

/// The event of a transfer bill's outcome.
pub const EVENT_TYPE: &str = "MCHTRANSFER.BILL.FINISHED";
/// The resource's `original_type`.
pub const ORIGINAL_TYPE: &str = "mch_payment";
/// The resource's algorithm.
pub const ALGORITHM: &str = "AEAD_AES_256_GCM";
/// The longest callback body read.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// A verified, decrypted callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferNotification {
    /// The notification's id (the same for every retry of it).
    pub id: String,
    /// When WeChat created it.
    pub create_time: Option<String>,
    /// `MCHTRANSFER.BILL.FINISHED`.
    pub event_type: String,
    /// WeChat's summary, e.g. `商家转账单据终态通知`.
    pub summary: Option<String>,
    /// The bill, decrypted.
    pub bill: Bill,
}

/// Why a callback is refused (answer it with a non-2xx status so that
/// WeChat retries; never store anything from it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// Too long to be a callback.
    #[error("the body is longer than {MAX_CALLBACK_BYTES} bytes")]
    TooLarge,
    /// The signature does not verify (checked before anything else is read).
    #[error("signature: {0}")]
    Signature(#[from] VerifyError),
    /// Not a callback's JSON.
    #[error("not a WeChat Pay notification: {0}")]
    Unreadable(String),
    /// Another event than a bill's outcome.
    #[error("event_type {0:?} is not {EVENT_TYPE}")]
    Event(String),
    /// The resource cannot be decrypted.
    #[error("resource: {0}")]
    Decrypt(#[from] DecryptError),
    /// The decrypted resource is not a bill.
    #[error("the decrypted resource is not a transfer bill: {0}")]
    Resource(String),
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(default)]
    create_time: Option<String>,
    event_type: String,
    #[serde(default)]
    summary: Option<String>,
    resource: Resource,
}

#[derive(Deserialize)]
struct Resource {
    algorithm: String,
    ciphertext: String,
    nonce: String,
    #[serde(default)]
    associated_data: String,
    #[serde(default)]
    original_type: Option<String>,
}

/// Verifies and decrypts a callback.
pub fn parse_callback(
    keys: &WechatPayKeys,
    apiv3_key: &ApiV3Key,
    headers: &SignatureHeaders,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<TransferNotification, CallbackError> {
    if body.len() > MAX_CALLBACK_BYTES {
        return Err(CallbackError::TooLarge);
    }
    keys.verify(headers, body, now)?;
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| CallbackError::Unreadable(e.to_string()))?;
    if envelope.event_type != EVENT_TYPE {
        return Err(CallbackError::Event(envelope.event_type));
    }
    let resource = envelope.resource;
    if resource.algorithm != ALGORITHM {
        return Err(DecryptError::Algorithm(resource.algorithm).into());
    }
    if let Some(t) = &resource.original_type
        && t != ORIGINAL_TYPE
    {
        return Err(CallbackError::Resource(format!("original_type {t:?}")));
    }
    let plain = apiv3_key.decrypt(
        &resource.associated_data,
        &resource.nonce,
        &resource.ciphertext,
    )?;
    let bill = Bill::parse(&plain).map_err(CallbackError::Resource)?;
    Ok(TransferNotification {
        id: envelope.id,
        create_time: envelope.create_time,
        event_type: envelope.event_type,
        summary: envelope.summary,
        bill,
    })
}
