//! The sandbox's HTTPS listener: WeChat's paths, a client certificate
//! asked for but not required (a missing or untrusted one gets `CA_ERROR`
//! in XML, as WeChat answers), keep-alive, and faults that need the
//! connection itself (a dropped answer, added latency).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hongbao_wxpay::Api;
use hongbao_wxpay::xml::MAX_BODY_BYTES;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::sim::{ClientCert, Reply, Simulator, V3Call};

/// Accepts any client certificate during the handshake (still checking
/// that the client holds its key), so that trust can be judged afterwards
/// and refused in XML rather than by a TLS alert.
#[derive(Debug)]
struct AskForCertificate {
    webpki: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for AskForCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The TLS side of the listener.
pub(crate) struct Tls {
    pub(crate) config: Arc<ServerConfig>,
    /// Judges a presented certificate against the sandbox's CA.
    pub(crate) trust: Arc<dyn ClientCertVerifier>,
}

impl Tls {
    pub(crate) fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Tls, String> {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        let provider = Arc::new(hongbao_wxpay::transport::provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(ca.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let trust = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| e.to_string())?;
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| e.to_string())?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(Arc::new(AskForCertificate {
                webpki: trust.clone(),
            }))
            .with_single_cert(chain, key)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            trust,
        })
    }

    fn judge(&self, presented: Option<&[CertificateDer<'static>]>) -> ClientCert {
        match presented {
            None | Some([]) => ClientCert::Missing,
            Some([leaf, intermediates @ ..]) => {
                match self
                    .trust
                    .verify_client_cert(leaf, intermediates, UnixTime::now())
                {
                    Ok(_) => ClientCert::Trusted,
                    Err(_) => ClientCert::Untrusted,
                }
            }
        }
    }
}

/// Closes the connection without an answer (hyper drops a connection whose
/// service fails).
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

type Body = Full<Bytes>;

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

fn query_map(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// The longest APIv3 body read.
const MAX_V3_BODY: usize = 64 * 1024;

fn answer(reply: Reply) -> Result<Response<Body>, DropConnection> {
    match reply {
        Reply::Body(xml) => Ok(respond(StatusCode::OK, "text/xml; charset=utf-8", xml)),
        Reply::Garbage(bytes) => Ok(respond(StatusCode::OK, "text/xml; charset=utf-8", bytes)),
        Reply::Drop => Err(DropConnection),
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let mut response = Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .header(
                    hyper::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                );
            for (name, value) in headers {
                response = response.header(name, value);
            }
            Ok(response
                .body(Full::new(body.into()))
                .expect("header values are ASCII"))
        }
    }
}

/// APIv3: no client certificate (the signature authenticates).
async fn handle_v3(
    sim: Arc<Mutex<Simulator>>,
    peer: IpAddr,
    request: Request<Incoming>,
    arrival: Instant,
) -> Result<Response<Body>, DropConnection> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let wechatpay_serial = header("wechatpay-serial");
    let body = match Limited::new(request.into_body(), MAX_V3_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => {
            return Ok(respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "application/json",
                r#"{"code":"PARAM_ERROR","message":"请求体过大"}"#,
            ));
        }
    };
    let call = V3Call {
        method: &method,
        path: &path,
        authorization: authorization.as_deref(),
        wechatpay_serial: wechatpay_serial.as_deref(),
        body: &body,
        peer,
    };
    let reply = sim.lock().expect("sandbox lock").v3(&call, arrival);
    if reply.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(reply.delay_ms)).await;
    }
    answer(reply.reply)
}

async fn handle(
    sim: Arc<Mutex<Simulator>>,
    cert: ClientCert,
    peer: IpAddr,
    request: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let arrival = Instant::now();
    let path = request.uri().path().to_owned();
    if path.starts_with("/v3/") {
        return handle_v3(sim, peer, request, arrival).await;
    }
    let query = request.uri().query().map(str::to_owned);
    if request.method() == Method::GET && path.starts_with("/cgi-bin/") {
        let query = query_map(query.as_deref());
        let json = {
            let mut sim = sim.lock().expect("sandbox lock");
            match path.as_str() {
                "/cgi-bin/token" => Some(sim.token(&query)),
                "/cgi-bin/user/info" => Some(sim.user_info(&query)),
                _ => None,
            }
        };
        return Ok(match json {
            Some(json) => respond(
                StatusCode::OK,
                "application/json; charset=utf-8",
                json.to_string(),
            ),
            None => respond(StatusCode::NOT_FOUND, "text/plain", "not found"),
        });
    }
    let Some(api) = Api::from_path(&path) else {
        return Ok(respond(StatusCode::NOT_FOUND, "text/plain", "not found"));
    };
    if request.method() != Method::POST {
        return Ok(respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "POST only",
        ));
    }
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes().to_vec(),
        // Over the cap: the simulator answers XML_ERROR for an oversize body.
        Err(_) => vec![b' '; MAX_BODY_BYTES + 1],
    };
    let answer = sim
        .lock()
        .expect("sandbox lock")
        .pay(api, &body, &cert, arrival);
    if answer.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(answer.delay_ms)).await;
    }
    self::answer(answer.reply)
}

/// Serves HTTPS on `listener` until `shutdown` changes.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<Tls>,
    sim: Arc<Mutex<Simulator>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, peer)) = accepted else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, tls, sim, mut shutdown) =
            (acceptor.clone(), tls.clone(), sim.clone(), shutdown.clone());
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
            let Ok(Ok(stream)) = handshake else { return };
            let cert = tls.judge(stream.get_ref().1.peer_certificates());
            let service = hyper::service::service_fn(move |request| {
                handle(sim.clone(), cert.clone(), peer.ip(), request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}
