//! The mutual-TLS transport against a local HTTPS server that asks for a
//! client certificate, with PEM and PKCS#12 identities, and every way a
//! call can fail classified as it must be.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, Pki, Seen, fixture};
use hongbao_wxpay::outcome::CallError;
use hongbao_wxpay::transport::certificates_from_pem;
use hongbao_wxpay::*;

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

fn merchant() -> Merchant {
    Merchant {
        mch_id: MchId::parse("1900000109").unwrap(),
        appid: AppId::parse("wx8888888888888888").unwrap(),
        service_provider: None,
    }
}

fn redpack(seq: u64) -> SendRedpack {
    SendRedpack {
        mch_billno: MchBillNo::generate(
            &merchant().mch_id,
            time::macros::date!(2026 - 11 - 22),
            seq,
        )
        .unwrap(),
        re_openid: OpenId::parse("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o").unwrap(),
        total_amount: Fen::new(188),
        send_name: "天虹百货".into(),
        wishing: "恭喜发财".into(),
        act_name: "新年红包".into(),
        remark: "新年红包".into(),
        client_ip: "10.0.0.1".into(),
        scene_id: None,
        risk_info: None,
    }
}

fn xml_answer(pairs: &[(&'static str, &str)]) -> Answer {
    let params: Params = pairs.iter().copied().collect();
    Answer::Ok(xml::to_xml(&params, None).into_bytes())
}

/// Answers like WeChat: CA_ERROR without a client certificate, SIGN_ERROR
/// on a bad signature, success otherwise (echoing the subject's DER length
/// so tests can tell which certificate was presented).
fn wechat_like(expected_cert: Option<Vec<u8>>) -> impl Fn(&Seen) -> Answer + Send + Sync + 'static {
    move |seen: &Seen| {
        let Some(cert) = &seen.client_cert else {
            return xml_answer(&[
                ("return_code", "SUCCESS"),
                ("return_msg", "证书已过期"),
                ("result_code", "FAIL"),
                ("err_code", "CA_ERROR"),
                ("err_code_des", "证书已过期"),
            ]);
        };
        if let Some(expected) = &expected_cert {
            assert_eq!(cert, expected, "the server saw another client certificate");
        }
        let doc = xml::parse(&seen.body).expect("the client sends valid XML");
        let params = doc.to_params();
        let given = params.get("sign").unwrap_or_default().to_owned();
        if given != sign(&params, &ApiKey::any(KEY), SignType::Md5) {
            return xml_answer(&[
                ("return_code", "SUCCESS"),
                ("result_code", "FAIL"),
                ("err_code", "SIGN_ERROR"),
            ]);
        }
        xml_answer(&[
            ("return_code", "SUCCESS"),
            ("return_msg", "发放成功"),
            ("result_code", "SUCCESS"),
            ("err_code", "SUCCESS"),
            ("mch_billno", params.get("mch_billno").unwrap_or_default()),
            ("send_listid", "1000041701202611223000109811129"),
        ])
    }
}

struct Setup {
    server_pki: Pki,
    client_ca: Vec<rustls_pki_types::CertificateDer<'static>>,
}

fn setup() -> Setup {
    let server_pki = Pki::new("test server CA");
    // The merchant fixtures' CA: the server trusts client certificates it signed.
    let client_ca = certificates_from_pem(&fixture("ca.pem")).unwrap();
    Setup {
        server_pki,
        client_ca,
    }
}

fn client_for(
    server: &common::Server,
    pki: &Pki,
    identity: Option<ClientIdentity>,
    timeout: Duration,
) -> Client {
    let mut config = TransportConfig::new(server.base("https"));
    config.identity = identity;
    config.extra_roots = certificates_from_pem(pki.ca_pem.as_bytes()).unwrap();
    config.request_timeout = timeout;
    config.connect_timeout = Duration::from_secs(2);
    Client::new(
        merchant(),
        ApiKey::parse(KEY).unwrap(),
        Arc::new(HttpTransport::new(&config).unwrap()),
    )
}

fn pem_identity() -> ClientIdentity {
    ClientIdentity::from_pem(
        &fixture("apiclient_cert.pem"),
        &fixture("apiclient_key.pem"),
    )
    .unwrap()
}

#[tokio::test]
async fn pem_identity_is_presented_and_a_red_packet_is_sent() {
    let s = setup();
    let identity = pem_identity();
    let expected = identity.certificate_der().to_vec();
    let server = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        wechat_like(Some(expected)),
    )
    .await;
    let client = client_for(
        &server,
        &s.server_pki,
        Some(identity),
        Duration::from_secs(5),
    );
    match client.send(&redpack(1)).await.unwrap() {
        SendOutcome::Sent(result) => {
            assert_eq!(
                result.mch_billno.as_deref(),
                Some("1900000109202611220000000001")
            );
            assert_eq!(
                result.send_listid.as_deref(),
                Some("1000041701202611223000109811129")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_demands_a_certificate_accepts_pem_and_pkcs12_identities() {
    let s = setup();
    let config = s.server_pki.server_config_with(&s.client_ca, true);
    let p12 = ClientIdentity::from_pkcs12(&fixture("apiclient_cert.p12"), "1900000109").unwrap();
    for (seq, identity) in [(30, pem_identity()), (31, p12)] {
        let expected = identity.certificate_der().to_vec();
        let server = common::start(Some(config.clone()), wechat_like(Some(expected))).await;
        let client = client_for(
            &server,
            &s.server_pki,
            Some(identity),
            Duration::from_secs(5),
        );
        assert!(matches!(
            client.send(&redpack(seq)).await.unwrap(),
            SendOutcome::Sent(_)
        ));
    }
    // Without one, the handshake is refused: nothing is answered, and the
    // outcome is never taken for a failure.
    let server = common::start(Some(config), wechat_like(None)).await;
    let client = client_for(&server, &s.server_pki, None, Duration::from_secs(5));
    let outcome = client.send(&redpack(32)).await.unwrap();
    assert!(
        matches!(
            outcome,
            SendOutcome::QueryFirst { .. } | SendOutcome::RetrySameBillno(_)
        ),
        "{outcome:?}"
    );
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn pkcs1_key_is_accepted() {
    let identity = ClientIdentity::from_pem(
        &fixture("apiclient_cert.pem"),
        &fixture("apiclient_key_pkcs1.pem"),
    )
    .unwrap();
    assert_eq!(identity.certificate_der(), pem_identity().certificate_der());
}

#[tokio::test]
async fn wechats_legacy_pkcs12_is_read_without_openssl() {
    let s = setup();
    // Made by `openssl pkcs12 -export -legacy`: RC2-40 certificates, 3DES key.
    let identity =
        ClientIdentity::from_pkcs12(&fixture("apiclient_cert.p12"), "1900000109").unwrap();
    assert_eq!(identity.certificate_der(), pem_identity().certificate_der());
    let expected = identity.certificate_der().to_vec();
    let server = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        wechat_like(Some(expected)),
    )
    .await;
    let client = client_for(
        &server,
        &s.server_pki,
        Some(identity),
        Duration::from_secs(5),
    );
    assert!(matches!(
        client.send(&redpack(2)).await.unwrap(),
        SendOutcome::Sent(_)
    ));
}

#[tokio::test]
async fn pkcs12_written_with_rc2_and_3des_is_read() {
    let s = setup();
    let client_pki = Pki::new("client CA");
    let (cert_pem, key_pem) = client_pki.leaf(&[], "1900000109");
    let cert_der = certificates_from_pem(cert_pem.as_bytes())
        .unwrap()
        .remove(0);
    let key_der = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    for algorithm in [
        p12_keystore::EncryptionAlgorithm::PbeWithShaAnd40BitRc4Cbc, // RC2-40, despite the name
        p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
    ] {
        let chain = p12_keystore::PrivateKeyChain::new(
            b"1".to_vec(),
            p12_keystore::PrivateKey::from_der(key_der.secret_der()).unwrap(),
            [p12_keystore::Certificate::from_der(cert_der.as_ref()).unwrap()],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(
            "Tenpay Certificate",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
        );
        let der = store
            .writer("1900000109")
            .encryption_algorithm(algorithm)
            .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1)
            .write()
            .unwrap();
        let identity = ClientIdentity::from_pkcs12(&der, "1900000109").unwrap();
        let mut cas = s.client_ca.clone();
        cas.push(client_pki.ca_der.clone());
        let server = common::start(
            Some(s.server_pki.server_config(&cas)),
            wechat_like(Some(cert_der.to_vec())),
        )
        .await;
        let client = client_for(
            &server,
            &s.server_pki,
            Some(identity),
            Duration::from_secs(5),
        );
        assert!(
            matches!(
                client.send(&redpack(3)).await.unwrap(),
                SendOutcome::Sent(_)
            ),
            "{algorithm:?}"
        );
    }
}

use rustls_pki_types::pem::PemObject;

#[test]
fn a_wrong_pkcs12_password_says_the_default_is_the_mch_id() {
    let err = ClientIdentity::from_pkcs12(&fixture("apiclient_cert.p12"), "wrong").unwrap_err();
    assert!(matches!(err, IdentityError::Pkcs12(_)));
    assert!(err.to_string().contains("mch_id"), "{err}");
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let other = Pki::new("other");
    let (_, other_key) = other.leaf(&[], "x");
    let err =
        ClientIdentity::from_pem(&fixture("apiclient_cert.pem"), other_key.as_bytes()).unwrap_err();
    assert_eq!(err, IdentityError::KeyMismatch);
    assert_eq!(
        ClientIdentity::from_pem(b"not a certificate", &fixture("apiclient_key.pem")).unwrap_err(),
        IdentityError::NoCertificate
    );
    assert_eq!(
        ClientIdentity::from_pem(
            &fixture("apiclient_cert.pem"),
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
        .unwrap_err(),
        IdentityError::NoPrivateKey
    );
}

#[test]
fn identity_debug_hides_the_key() {
    let text = format!("{:?}", pem_identity());
    assert!(
        text.contains("redacted") && !text.contains("PRIVATE"),
        "{text}"
    );
}

#[tokio::test]
async fn without_a_certificate_wechat_answers_ca_error_and_the_merchant_pauses() {
    let s = setup();
    let server = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        wechat_like(None),
    )
    .await;
    let client = client_for(&server, &s.server_pki, None, Duration::from_secs(5));
    match client.send(&redpack(4)).await.unwrap() {
        SendOutcome::PauseMerchant(PauseReason::Configuration, code) => {
            assert_eq!(code, ErrCode::CaError)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn connections_are_reused() {
    let s = setup();
    let server = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        wechat_like(None),
    )
    .await;
    let client = client_for(
        &server,
        &s.server_pki,
        Some(pem_identity()),
        Duration::from_secs(5),
    );
    for seq in 10..15 {
        assert!(matches!(
            client.send(&redpack(seq)).await.unwrap(),
            SendOutcome::Sent(_)
        ));
    }
    assert_eq!(server.requests(), 5);
    assert_eq!(
        server.connections(),
        1,
        "five calls should share one TLS connection"
    );
}

#[tokio::test]
async fn every_call_is_one_attempt_even_when_the_answer_is_lost() {
    let s = setup();
    let server = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        |_: &Seen| Answer::Close,
    )
    .await;
    let client = client_for(
        &server,
        &s.server_pki,
        Some(pem_identity()),
        Duration::from_secs(5),
    );
    let prepared = client.prepare(&redpack(20)).unwrap();
    let result = client.call(&prepared).await;
    assert!(matches!(result, Err(CallError::NoAnswer(_))), "{result:?}");
    assert!(matches!(
        classify_send(&result),
        SendOutcome::QueryFirst { .. }
    ));
    // No hidden retry: the server saw exactly one request.
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_timeout_after_writing_means_query_first() {
    let s = setup();
    let server = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        |_: &Seen| Answer::Hang,
    )
    .await;
    let client = client_for(
        &server,
        &s.server_pki,
        Some(pem_identity()),
        Duration::from_millis(300),
    );
    let prepared = client.prepare(&redpack(21)).unwrap();
    let result = client.call(&prepared).await;
    assert!(
        matches!(&result, Err(CallError::NoAnswer(m)) if m.contains("timed out")),
        "{result:?}"
    );
    assert!(matches!(
        classify_send(&result),
        SendOutcome::QueryFirst { .. }
    ));
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_refused_connection_was_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = TransportConfig::new(format!("https://{addr}"));
    config.connect_timeout = Duration::from_secs(2);
    let client = Client::new(
        merchant(),
        ApiKey::parse(KEY).unwrap(),
        Arc::new(HttpTransport::new(&config).unwrap()),
    );
    let outcome = client.send(&redpack(22)).await.unwrap();
    assert!(
        matches!(outcome, SendOutcome::RetrySameBillno(_)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_untrusted_server_certificate_fails_before_anything_is_sent() {
    let s = setup();
    let server = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        wechat_like(None),
    )
    .await;
    // A client that does not trust the server's CA.
    let mut config = TransportConfig::new(server.base("https"));
    config.identity = Some(pem_identity());
    let client = Client::new(
        merchant(),
        ApiKey::parse(KEY).unwrap(),
        Arc::new(HttpTransport::new(&config).unwrap()),
    );
    let prepared = client.prepare(&redpack(23)).unwrap();
    let result = client.call(&prepared).await;
    assert!(matches!(result, Err(CallError::NotSent(_))), "{result:?}");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn gateway_errors_and_oversize_answers_are_ambiguous() {
    let s = setup();
    let gateway = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        |_: &Seen| Answer::Status(502, b"<html>Bad Gateway</html>".to_vec()),
    )
    .await;
    let client = client_for(
        &gateway,
        &s.server_pki,
        Some(pem_identity()),
        Duration::from_secs(5),
    );
    let result = client.call(&client.prepare(&redpack(24)).unwrap()).await;
    assert_eq!(result, Err(CallError::HttpStatus(502)));

    let huge = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        |_: &Seen| Answer::Ok(vec![b'x'; xml::MAX_BODY_BYTES + 1]),
    )
    .await;
    let client = client_for(
        &huge,
        &s.server_pki,
        Some(pem_identity()),
        Duration::from_secs(5),
    );
    let result = client.call(&client.prepare(&redpack(25)).unwrap()).await;
    assert!(
        matches!(result, Err(CallError::Unparseable(_))),
        "{result:?}"
    );
    assert!(matches!(
        classify_send(&result),
        SendOutcome::QueryFirst { .. }
    ));
}

#[tokio::test]
async fn the_same_prepared_request_sends_byte_identical_bodies() {
    let s = setup();
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_bodies = bodies.clone();
    let inner = wechat_like(None);
    let server = common::start(
        Some(s.server_pki.server_config(&s.client_ca)),
        move |seen: &Seen| {
            seen_bodies.lock().unwrap().push(seen.body.clone());
            inner(seen)
        },
    )
    .await;
    let client = client_for(
        &server,
        &s.server_pki,
        Some(pem_identity()),
        Duration::from_secs(5),
    );
    let prepared = client.prepare(&redpack(26)).unwrap();
    // As a ledger would: store, read back, resend.
    let stored = serde_json::to_string(&prepared).unwrap();
    let restored: Prepared = serde_json::from_str(&stored).unwrap();
    client.call(&prepared).await.unwrap();
    client.call(&restored).await.unwrap();
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1]);
}

#[test]
fn an_x509_v1_certificate_is_named_as_such_not_as_a_bad_key() {
    let err =
        ClientIdentity::from_pem(&fixture("v1_cert.pem"), &fixture("v1_key.pem")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("X.509 v1"), "{text}");
    assert!(!text.contains("private key"), "{text}");
}
