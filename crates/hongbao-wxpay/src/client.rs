//! One merchant's client: validates, signs, sends and classifies.

use std::fmt;
use std::sync::Arc;

use crate::outcome::{CallError, QueryOutcome, SendOutcome, classify_query, classify_send};
use crate::request::{GetHbInfo, Merchant, Prepared, Request};
use crate::{ApiKey, InvalidField, MchBillNo, Reply, SignType, Transport, sign, xml};

/// A client for one merchant: its ids, its API key and a transport.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use hongbao_wxpay::*;
///
/// let identity = ClientIdentity::from_pem(
///     &std::fs::read("apiclient_cert.pem")?,
///     &std::fs::read("apiclient_key.pem")?,
/// )?;
/// let mut config = TransportConfig::default();
/// config.identity = Some(identity);
/// let client = Client::new(
///     Merchant {
///         mch_id: MchId::parse("1900000109")?,
///         appid: AppId::parse("wx8888888888888888")?,
///         service_provider: None,
///     },
///     ApiKey::parse(&std::env::var("WXPAY_API_KEY")?)?,
///     Arc::new(HttpTransport::new(&config)?),
/// );
/// let outcome = client
///     .send(&SendRedpack {
///         mch_billno: MchBillNo::parse("1900000109202611220000000001")?,
///         re_openid: OpenId::parse("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")?,
///         total_amount: Fen::parse_yuan("1.88")?,
///         send_name: "天虹百货".into(),
///         wishing: "恭喜发财".into(),
///         act_name: "新年红包".into(),
///         remark: "新年红包".into(),
///         client_ip: "10.0.0.1".into(),
///         scene_id: None,
///         risk_info: None,
///     })
///     .await?;
/// match outcome {
///     SendOutcome::Sent(result) => println!("sent: {:?}", result.send_listid),
///     SendOutcome::QueryFirst { .. } | SendOutcome::RetrySameBillno(_) => {
///         // Unknown outcome: query with gethbinfo, resend the SAME mch_billno.
///     }
///     other => println!("not sent: {other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    merchant: Merchant,
    key: ApiKey,
    transport: Arc<dyn Transport>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("merchant", &self.merchant)
            .field("key", &self.key)
            .field("transport", &self.transport)
            .finish()
    }
}

impl Client {
    /// A client for `merchant`, signing with `key`, calling through `transport`.
    pub fn new(merchant: Merchant, key: ApiKey, transport: Arc<dyn Transport>) -> Self {
        Self {
            merchant,
            key,
            transport,
        }
    }

    /// The merchant this client pays from.
    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    /// Validates `request` and fixes its parameters (with a fresh nonce),
    /// ready to be stored and sent, possibly several times.
    pub fn prepare<R: Request>(&self, request: &R) -> Result<Prepared, InvalidField> {
        Prepared::new(request, &self.merchant)
    }

    /// The signed XML body of `prepared`: always the same for the same
    /// parameters and key.
    pub fn signed_body(&self, prepared: &Prepared) -> String {
        let signature = sign(prepared.params(), &self.key, SignType::Md5);
        xml::to_xml(prepared.params(), Some(&signature))
    }

    /// Sends `prepared` once and reads the answer. No retries.
    pub async fn call(&self, prepared: &Prepared) -> Result<Reply, CallError> {
        let api = prepared.api();
        let body = self.signed_body(prepared);
        let answer = self.transport.post(api, body).await?;
        Reply::parse(api, &answer, &self.key)
    }

    /// Validates, sends once and classifies a send request.
    pub async fn send<R: Request>(&self, request: &R) -> Result<SendOutcome, InvalidField> {
        let prepared = self.prepare(request)?;
        Ok(classify_send(&self.call(&prepared).await))
    }

    /// Asks `gethbinfo` about `mch_billno` and classifies the answer.
    pub async fn query(&self, mch_billno: &MchBillNo) -> QueryOutcome {
        let request = GetHbInfo {
            mch_billno: mch_billno.clone(),
        };
        match self.prepare(&request) {
            Ok(prepared) => classify_query(&self.call(&prepared).await),
            // GetHbInfo holds only typed values: this cannot happen, and if
            // it did, "ask again later" is the safe reading.
            Err(e) => QueryOutcome::RetryLater(e.to_string()),
        }
    }
}
