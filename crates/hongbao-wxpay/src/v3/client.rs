//! Getting a signed APIv3 request to WeChat and its answer back, and the
//! client that validates, signs, sends, verifies and classifies.
//!
//! APIv3 presents no client certificate (the signature is the
//! authentication): the transport is plain HTTPS with rustls (ring), with
//! the merchant's `root_ca` trusted for a sandbox or test server.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::InvalidField;
use crate::outcome::CallError;
use crate::transport::{
    BoxFuture, TransportBuildError, TransportConfig, call_error, error_chain, tls_client_config,
};
use crate::v3::bill::{CreateTransfer, OutBillNo, PreparedTransfer, TransferBillNo};
use crate::v3::crypto::{MerchantSigner, SignatureHeaders, WechatPayKeys};
use crate::v3::outcome::{Operation, TransferOutcome, V3Reply, classify};

/// The longest answer read (a bill is well under 2 KiB).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The path of create.
pub const CREATE_PATH: &str = "/v3/fund-app/mch-transfer/transfer-bills";

/// The path of a query by `out_bill_no`.
pub fn query_path(out_bill_no: &OutBillNo) -> String {
    format!("{CREATE_PATH}/out-bill-no/{out_bill_no}")
}

/// The path of a query by `transfer_bill_no`.
pub fn query_by_transfer_bill_no_path(transfer_bill_no: &TransferBillNo) -> String {
    format!("{CREATE_PATH}/transfer-bill-no/{transfer_bill_no}")
}

/// The path of a cancel.
pub fn cancel_path(out_bill_no: &OutBillNo) -> String {
    format!("{CREATE_PATH}/out-bill-no/{out_bill_no}/cancel")
}

/// An HTTP method APIv3 uses here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET (queries).
    Get,
    /// POST (create, cancel).
    Post,
}

impl Method {
    /// The method's name as signed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A signed request, ready for the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V3Request {
    /// The method.
    pub method: Method,
    /// Path and query, as signed.
    pub path: String,
    /// The JSON body (empty for GET).
    pub body: String,
    /// `Authorization`.
    pub authorization: String,
    /// `Wechatpay-Serial`, when the body holds an encrypted field.
    pub wechatpay_serial: Option<String>,
}

/// An answer off the wire, before verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V3Response {
    /// The HTTP status.
    pub status: u16,
    /// The `Wechatpay-*` headers.
    pub headers: SignatureHeaders,
    /// The body.
    pub body: Vec<u8>,
}

/// Carries a signed request to WeChat and brings the answer back.
/// [`HttpV3Transport`] talks to WeChat or the sandbox; tests may put
/// anything in its place. It must not retry on its own.
pub trait V3Transport: Send + Sync + fmt::Debug {
    /// Sends `request` once.
    fn send(&self, request: V3Request) -> BoxFuture<'_, Result<V3Response, CallError>>;
}

/// The HTTPS transport: one pooled reqwest client, no client certificate,
/// timeouts on connect and on the whole call, no retries.
#[derive(Clone, Debug)]
pub struct HttpV3Transport {
    client: reqwest::Client,
    base: String,
}

impl HttpV3Transport {
    /// Builds the transport; `config.api_base` is the merchant's `v3_base`
    /// and `config.identity` is ignored (APIv3 presents none).
    pub fn new(config: &TransportConfig) -> Result<HttpV3Transport, TransportBuildError> {
        let base = config.api_base.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(TransportBuildError::BadBase(config.api_base.clone()));
        }
        let tls = tls_client_config(None, &config.extra_roots)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .retry(reqwest::retry::never())
            .no_proxy()
            .user_agent(concat!("hongbao-wxpay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportBuildError::Http(error_chain(&e.without_url())))?;
        Ok(HttpV3Transport { client, base })
    }

    async fn send_inner(&self, request: V3Request) -> Result<V3Response, CallError> {
        let url = format!("{}{}", self.base, request.path);
        let builder = match request.method {
            Method::Get => self.client.get(url),
            Method::Post => self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(request.body),
        };
        let mut builder = builder
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::AUTHORIZATION, request.authorization);
        if let Some(serial) = request.wechatpay_serial {
            builder = builder.header("Wechatpay-Serial", serial);
        }
        let mut response = builder.send().await.map_err(call_error)?;
        let status = response.status().as_u16();
        let headers = SignatureHeaders::from_pairs(
            response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(call_error)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(CallError::Unparseable(format!(
                    "answer longer than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(V3Response {
            status,
            headers,
            body,
        })
    }
}

impl V3Transport for HttpV3Transport {
    fn send(&self, request: V3Request) -> BoxFuture<'_, Result<V3Response, CallError>> {
        Box::pin(self.send_inner(request))
    }
}

/// A transfer client for one merchant: its signer, WeChat's keys and a
/// transport.
///
/// ```no_run
/// # async fn demo(signer: hongbao_wxpay::v3::MerchantSigner, keys: hongbao_wxpay::v3::WechatPayKeys,
/// #     transport: std::sync::Arc<dyn hongbao_wxpay::v3::V3Transport>, transfer: hongbao_wxpay::v3::CreateTransfer) {
/// use hongbao_wxpay::v3::*;
/// let client = TransferClient::new(signer, keys, transport);
/// let prepared = client.prepare(&transfer).expect("valid");
/// // Store `prepared.body()` with the bill before the first attempt.
/// match client.create(&prepared).await {
///     TransferOutcome::AwaitingUser(bill) => println!("package {:?}", bill.package_info),
///     TransferOutcome::Ambiguous { .. } | TransferOutcome::RetrySameBill(_) => {
///         // Query the same out_bill_no; resend only the same prepared body.
///         let _ = client.query(prepared.out_bill_no()).await;
///     }
///     other => println!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct TransferClient {
    signer: MerchantSigner,
    keys: Arc<WechatPayKeys>,
    transport: Arc<dyn V3Transport>,
}

impl fmt::Debug for TransferClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransferClient")
            .field("signer", &self.signer)
            .field(
                "keys",
                &self.keys.serials().map(|(s, _)| s).collect::<Vec<_>>(),
            )
            .field("transport", &self.transport)
            .finish()
    }
}

impl TransferClient {
    /// A client signing with `signer`, verifying with `keys`.
    pub fn new(
        signer: MerchantSigner,
        keys: WechatPayKeys,
        transport: Arc<dyn V3Transport>,
    ) -> TransferClient {
        TransferClient {
            signer,
            keys: Arc::new(keys),
            transport,
        }
    }

    /// The signer.
    pub fn signer(&self) -> &MerchantSigner {
        &self.signer
    }

    /// WeChat's keys.
    pub fn keys(&self) -> &WechatPayKeys {
        &self.keys
    }

    /// Validates `transfer`, encrypts `user_name` and fixes the body.
    pub fn prepare(&self, transfer: &CreateTransfer) -> Result<PreparedTransfer, InvalidField> {
        transfer.validate()?;
        let (ciphertext, serial) = match &transfer.user_name {
            None => (None, None),
            Some(name) => {
                let encryptor = self.keys.encryptor().ok_or_else(|| {
                    InvalidField::new(
                        "user_name",
                        "needs WeChat's public key to be encrypted: configure wechatpay_public_key (or platform_certs)",
                        "需要微信支付公钥加密：请配置 wechatpay_public_key（或 platform_certs）",
                    )
                })?;
                (
                    Some(encryptor.encrypt(name)?),
                    Some(encryptor.serial().to_owned()),
                )
            }
        };
        Ok(PreparedTransfer {
            out_bill_no: transfer.out_bill_no.clone(),
            body: transfer.to_body(ciphertext.as_deref()),
            wechatpay_serial: serial,
        })
    }

    /// Signs a request for `method` and `path` with `body`.
    pub fn sign(&self, method: Method, path: &str, body: &str, now: OffsetDateTime) -> V3Request {
        let nonce = crate::nonce_str();
        V3Request {
            method,
            path: path.to_owned(),
            body: body.to_owned(),
            authorization: self.signer.authorization(
                method.as_str(),
                path,
                body,
                now.unix_timestamp(),
                &nonce,
            ),
            wechatpay_serial: None,
        }
    }

    /// Sends a signed request once and verifies the answer's signature.
    pub async fn call(&self, request: V3Request) -> Result<V3Reply, CallError> {
        let response = self.transport.send(request).await?;
        let verified =
            self.keys
                .verify(&response.headers, &response.body, OffsetDateTime::now_utc());
        Ok(V3Reply {
            status: response.status,
            body: response.body,
            verified,
            request_id: response.headers.request_id,
        })
    }

    /// Sends `prepared` once: the raw reply.
    pub async fn call_create(&self, prepared: &PreparedTransfer) -> Result<V3Reply, CallError> {
        let mut request = self.sign(
            Method::Post,
            CREATE_PATH,
            &prepared.body,
            OffsetDateTime::now_utc(),
        );
        request.wechatpay_serial = prepared.wechatpay_serial.clone();
        self.call(request).await
    }

    /// Creates the bill (once; no retries) and classifies the outcome.
    pub async fn create(&self, prepared: &PreparedTransfer) -> TransferOutcome {
        classify(Operation::Create, &self.call_create(prepared).await)
    }

    /// Asks WeChat about the bill `out_bill_no`.
    pub async fn query(&self, out_bill_no: &OutBillNo) -> TransferOutcome {
        let request = self.sign(
            Method::Get,
            &query_path(out_bill_no),
            "",
            OffsetDateTime::now_utc(),
        );
        classify(Operation::Query, &self.call(request).await)
    }

    /// Asks WeChat about the bill `transfer_bill_no`.
    pub async fn query_by_transfer_bill_no(
        &self,
        transfer_bill_no: &TransferBillNo,
    ) -> TransferOutcome {
        let request = self.sign(
            Method::Get,
            &query_by_transfer_bill_no_path(transfer_bill_no),
            "",
            OffsetDateTime::now_utc(),
        );
        classify(Operation::Query, &self.call(request).await)
    }

    /// Cancels the bill `out_bill_no` (allowed until the user confirms).
    pub async fn cancel(&self, out_bill_no: &OutBillNo) -> TransferOutcome {
        let request = self.sign(
            Method::Post,
            &cancel_path(out_bill_no),
            "{}",
            OffsetDateTime::now_utc(),
        );
        classify(Operation::Cancel, &self.call(request).await)
    }
}
