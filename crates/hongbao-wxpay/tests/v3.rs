//! APIv3 security and the transfer client, with the RSA test identity of
//! `tests/data` (made with OpenSSL: the expected signature below is
//! `openssl dgst -sha256 -sign apiclient_key.pem`).

mod common;

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::fixture;
use hongbao_wxpay::outcome::CallError;
use hongbao_wxpay::transport::BoxFuture;
use hongbao_wxpay::v3::crypto::{answer_message, request_message};
use hongbao_wxpay::v3::*;
use hongbao_wxpay::{AppId, ClientIdentity, Fen, MchId, OpenId, PauseReason};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

const PUB_KEY_ID: &str = "PUB_KEY_ID_0119000001092026120100000000000001";

fn signer() -> MerchantSigner {
    let identity = ClientIdentity::from_pem(
        &fixture("apiclient_cert.pem"),
        &fixture("apiclient_key.pem"),
    )
    .unwrap();
    MerchantSigner::from_identity(MchId::parse("1900000109").unwrap(), &identity).unwrap()
}

fn public_keys() -> WechatPayKeys {
    WechatPayKeys::new()
        .with_public_key(
            &PublicKeyId::parse(PUB_KEY_ID).unwrap(),
            &fixture("apiclient_pub_key.pem"),
        )
        .unwrap()
}

/// Headers of an answer signed as WeChat signs (with the test key on both sides).
fn signed(serial: &str, body: &[u8], at: OffsetDateTime) -> SignatureHeaders {
    let timestamp = at.unix_timestamp().to_string();
    let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
    SignatureHeaders {
        signature: Some(signer().sign(&answer_message(&timestamp, nonce, body))),
        timestamp: Some(timestamp),
        nonce: Some(nonce.into()),
        serial: Some(serial.into()),
        request_id: None,
    }
}

#[test]
fn the_request_signature_is_openssls_sha256_with_rsa() {
    let s = signer();
    assert_eq!(s.serial(), "1AAEDFCA0DC34C2B4049C8DB7F1597251D0EF0F2");
    let message = request_message(
        "GET",
        "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/plfk2020042013",
        1554208460,
        "593BEC0C930BF1AFEB40B4A08C8FB242",
        "",
    );
    assert_eq!(
        s.sign(message.as_bytes()),
        "jxB1JKN2W2ZClbvSRRe3V/hA0E7xAUzy9JgMzDsAKpsY9LLvXPiFBbyh12WsMmr5mebjIBKYRjhTBKaWQHpwCWxk4TuPjQhBOpRXGlDfOZq5DBV7JiZUsle3JhDNxsSbc34z1r6rMdNgx65S1Yo/cjYpiG/aXaxVAcrQZRpJ4tbZ0zNQJGcu1MasZQWpb4DqL42xuMQ94v6aM7WNS3E9w9sqGIBRjubmxRcR67Ua6ycvsddA+41NojBvbLIbO8piznc0uQc2zUkZE42Jqbv3eS6PPcYS7d3I+FLNkFnt4z6NU4sLoBePEbTgNRXMeHw0MGULhuPIiTLYWYsopY78Bg=="
    );
    let header = s.authorization(
        "GET",
        "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/plfk2020042013",
        "",
        1554208460,
        "593BEC0C930BF1AFEB40B4A08C8FB242",
    );
    let auth = Authorization::parse(&header).unwrap();
    assert_eq!(auth.mchid, "1900000109");
    assert_eq!(auth.serial_no, s.serial());
    assert_eq!(auth.timestamp, "1554208460");
    assert!(header.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900000109\","));
}

#[test]
fn a_pkcs1_key_signs_the_same_and_a_foreign_key_is_refused() {
    let cert =
        rustls_pki_types::CertificateDer::from_pem_slice(&fixture("apiclient_cert.pem")).unwrap();
    let pkcs1 = PrivateKeyDer::from_pem_slice(&fixture("apiclient_key_pkcs1.pem")).unwrap();
    let mch = MchId::parse("1900000109").unwrap();
    let s = MerchantSigner::new(mch.clone(), cert.as_ref(), &pkcs1).unwrap();
    assert_eq!(s.sign(b"x"), signer().sign(b"x"));
    // The CA's certificate with the merchant's key: not its key.
    let ca = rustls_pki_types::CertificateDer::from_pem_slice(&fixture("ca.pem")).unwrap();
    assert_eq!(
        MerchantSigner::new(mch, ca.as_ref(), &pkcs1).unwrap_err(),
        KeyError::Mismatch
    );
    assert!(!format!("{s:?}").contains("BEGIN"));
}

#[test]
fn answers_verify_with_the_public_key_or_a_platform_certificate() {
    let now = OffsetDateTime::now_utc();
    let body = br#"{"state":"SUCCESS"}"#;
    let both = public_keys()
        .with_platform_certificate(&fixture("apiclient_cert.pem"))
        .unwrap();
    // Both keys are accepted while a merchant switches.
    assert_eq!(
        both.verify(&signed(PUB_KEY_ID, body, now), body, now),
        Ok(())
    );
    assert_eq!(
        both.verify(
            &signed("1AAEDFCA0DC34C2B4049C8DB7F1597251D0EF0F2", body, now),
            body,
            now
        ),
        Ok(())
    );
    // Only the public key configured: a certificate's serial is unknown.
    assert_eq!(
        public_keys().verify(
            &signed("1AAEDFCA0DC34C2B4049C8DB7F1597251D0EF0F2", body, now),
            body,
            now
        ),
        Err(VerifyError::UnknownSerial(
            "1AAEDFCA0DC34C2B4049C8DB7F1597251D0EF0F2".into()
        ))
    );
    // An altered body does not verify.
    assert!(matches!(
        both.verify(&signed(PUB_KEY_ID, body, now), br#"{"state":"FAIL"}"#, now),
        Err(VerifyError::BadSignature(_))
    ));
}

#[test]
fn timestamps_more_than_five_minutes_off_are_refused() {
    let now = OffsetDateTime::now_utc();
    let body = b"{}";
    let keys = public_keys();
    for offset in [-300, 300] {
        let at = now + time::Duration::seconds(offset);
        assert_eq!(
            keys.verify(&signed(PUB_KEY_ID, body, at), body, now),
            Ok(())
        );
    }
    for offset in [-301, 301, -86_400] {
        let at = now + time::Duration::seconds(offset);
        assert!(matches!(
            keys.verify(&signed(PUB_KEY_ID, body, at), body, now),
            Err(VerifyError::Stale { .. })
        ));
    }
}

#[test]
fn probe_signatures_and_missing_headers_are_refused() {
    let now = OffsetDateTime::now_utc();
    let mut probe = signed(PUB_KEY_ID, b"{}", now);
    probe.signature = Some("WECHATPAY/SIGNTEST/ZW5jcnlwdGVk".into());
    assert!(matches!(
        public_keys().verify(&probe, b"{}", now),
        Err(VerifyError::BadSignature(_))
    ));
    let mut missing = signed(PUB_KEY_ID, b"{}", now);
    missing.signature = None;
    assert_eq!(
        public_keys().verify(&missing, b"{}", now),
        Err(VerifyError::MissingHeader("Wechatpay-Signature"))
    );
}

#[test]
fn keys_of_the_wrong_kind_are_named() {
    let id = PublicKeyId::parse(PUB_KEY_ID).unwrap();
    let cert_as_key = WechatPayKeys::new()
        .with_public_key(&id, &fixture("apiclient_cert.pem"))
        .unwrap_err();
    assert!(
        cert_as_key.to_string().contains("platform_certs"),
        "{cert_as_key}"
    );
    let key_as_cert = WechatPayKeys::new()
        .with_platform_certificate(&fixture("apiclient_pub_key.pem"))
        .unwrap_err();
    assert!(
        key_as_cert.to_string().contains("wechatpay_public_key"),
        "{key_as_cert}"
    );
}

#[test]
fn user_name_is_oaep_sha1_under_wechats_public_key() {
    use rsa::pkcs8::DecodePrivateKey;
    let encryptor = public_keys().encryptor().unwrap();
    assert_eq!(encryptor.serial(), PUB_KEY_ID);
    let sealed = encryptor.encrypt("张三").unwrap();
    assert_ne!(sealed, encryptor.encrypt("张三").unwrap(), "randomised");
    // WeChat's side, decrypting with its private key (here the test key).
    let private = rsa::PrivateKey::from_pkcs8_pem(
        std::str::from_utf8(&fixture("apiclient_key.pem")).unwrap(),
    )
    .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&sealed)
        .unwrap();
    let plain = private
        .decrypt(rsa::Oaep::<sha1::Sha1>::new(), &bytes)
        .unwrap();
    assert_eq!(plain, "张三".as_bytes());
}

#[test]
fn callbacks_are_verified_then_decrypted() {
    let now = OffsetDateTime::now_utc();
    let key = ApiV3Key::parse("0123456789abcdefghijklmnopqrstuv").unwrap();
    let resource = br#"{"out_bill_no":"plfk2020042013","transfer_bill_no":"1330000071100999991182020050700019480001","state":"SUCCESS","mch_id":"1900000109","transfer_amount":2000,"openid":"o-MYE42l80oelYMDE34nYD456Xoy","create_time":"2015-05-20T13:29:35+08:00","update_time":"2015-05-20T13:29:35+08:00"}"#;
    let body = serde_json::json!({
        "id": "EV-2018022511223320873",
        "create_time": "2015-05-20T13:29:35+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "MCHTRANSFER.BILL.FINISHED",
        "summary": "商家转账单据终态通知",
        "resource": {
            "original_type": "mch_payment",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": key.encrypt("mch_payment", "fdasflkja484", resource).unwrap(),
            "associated_data": "mch_payment",
            "nonce": "fdasflkja484"
        }
    })
    .to_string();
    let headers = signed(PUB_KEY_ID, body.as_bytes(), now);
    let n = parse_callback(&public_keys(), &key, &headers, body.as_bytes(), now).unwrap();
    assert_eq!(n.bill.state, TransferState::Success);
    assert_eq!(n.bill.transfer_amount, Some(2000));
    assert_eq!(n.id, "EV-2018022511223320873");
    // Another APIv3 key (the v2 key given by mistake) cannot decrypt.
    let wrong = ApiV3Key::parse("192006250b4c09247ec02edce69f6a2d").unwrap();
    assert!(matches!(
        parse_callback(&public_keys(), &wrong, &headers, body.as_bytes(), now),
        Err(CallbackError::Decrypt(DecryptError::Authentication))
    ));
    // The signature is checked first: an unsigned callback is refused whatever it holds.
    let unsigned = SignatureHeaders::default();
    assert!(matches!(
        parse_callback(&public_keys(), &key, &unsigned, body.as_bytes(), now),
        Err(CallbackError::Signature(_))
    ));
    let tampered = body.replace("商家转账单据终态通知", "x");
    assert!(matches!(
        parse_callback(&public_keys(), &key, &headers, tampered.as_bytes(), now),
        Err(CallbackError::Signature(_))
    ));
}

/// A WeChat stand-in: checks the request signature as WeChat does and
/// answers what the test says, signed or not.
#[derive(Debug)]
struct Fake {
    answers: Mutex<Vec<(u16, String, bool)>>,
    seen: Mutex<Vec<V3Request>>,
}

impl V3Transport for Fake {
    fn send(&self, request: V3Request) -> BoxFuture<'_, Result<V3Response, CallError>> {
        Box::pin(async move {
            let auth =
                Authorization::parse(&request.authorization).expect("an Authorization header");
            let message = request_message(
                request.method.as_str(),
                &request.path,
                auth.timestamp.parse().unwrap(),
                &auth.nonce_str,
                &request.body,
            );
            let cert =
                rustls_pki_types::CertificateDer::from_pem_slice(&fixture("apiclient_cert.pem"))
                    .unwrap();
            assert_eq!(auth.serial_no, certificate_serial(cert.as_ref()).unwrap());
            // The merchant's signature verifies with its certificate's key.
            assert!(hongbao_wxpay::v3::crypto::verify_rsa_sha256(
                &public_der(),
                message.as_bytes(),
                &auth.signature
            ));
            self.seen.lock().unwrap().push(request);
            let (status, body, sign) = self.answers.lock().unwrap().remove(0);
            let headers = if sign {
                signed(PUB_KEY_ID, body.as_bytes(), OffsetDateTime::now_utc())
            } else {
                SignatureHeaders::default()
            };
            Ok(V3Response {
                status,
                headers,
                body: body.into_bytes(),
            })
        })
    }
}

fn public_der() -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let der = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(&fixture(
        "apiclient_pub_key.pem",
    ))
    .unwrap();
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der.as_ref()).unwrap();
    spki.subject_public_key.data.to_vec()
}

fn transfer(fen: u64, user_name: Option<&str>) -> CreateTransfer {
    CreateTransfer {
        appid: AppId::parse("wxf636efh567hg4356").unwrap(),
        out_bill_no: OutBillNo::parse("plfk2020042013").unwrap(),
        transfer_scene_id: TransferSceneId::cash_marketing(),
        openid: OpenId::parse("o-MYE42l80oelYMDE34nYD456Xoy").unwrap(),
        user_name: user_name.map(str::to_owned),
        transfer_amount: Fen::new(fen),
        transfer_remark: "新会员开通有礼".into(),
        notify_url: Some("https://www.weixin.qq.com/wxpay/pay.php".into()),
        user_recv_perception: Some(Perception::CashReward),
        transfer_scene_report_infos: CreateTransfer::cash_marketing_reports(
            "新会员有礼",
            "注册会员抽奖一等奖",
        ),
    }
}

fn client(answers: Vec<(u16, &str, bool)>) -> (TransferClient, Arc<Fake>) {
    let fake = Arc::new(Fake {
        answers: Mutex::new(
            answers
                .into_iter()
                .map(|(s, b, v)| (s, b.to_owned(), v))
                .collect(),
        ),
        seen: Mutex::new(Vec::new()),
    });
    (
        TransferClient::new(signer(), public_keys(), fake.clone()),
        fake,
    )
}

const CREATED: &str = r#"{"out_bill_no":"plfk2020042013","transfer_bill_no":"1330000071100999991182020050700019480001","create_time":"2015-05-20T13:29:35.120+08:00","state":"WAIT_USER_CONFIRM","package_info":"affffddafdfafddffda=="}"#;

#[tokio::test]
async fn a_create_is_signed_verified_and_awaits_the_user() {
    let (client, fake) = client(vec![(200, CREATED, true)]);
    let prepared = client.prepare(&transfer(200_000, Some("张三"))).unwrap();
    let outcome = client.create(&prepared).await;
    let TransferOutcome::AwaitingUser(bill) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(bill.package_info.as_deref(), Some("affffddafdfafddffda=="));
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen[0].path, "/v3/fund-app/mch-transfer/transfer-bills");
    // user_name went encrypted, with the key's id as Wechatpay-Serial.
    assert_eq!(seen[0].wechatpay_serial.as_deref(), Some(PUB_KEY_ID));
    assert!(!seen[0].body.contains("张三"));
    assert!(!seen[0].body.contains("null"));
}

#[tokio::test]
async fn an_unsigned_success_is_ambiguous_and_the_query_decides() {
    let found = CREATED.replace("WAIT_USER_CONFIRM", "SUCCESS");
    let (client, fake) = client(vec![(200, CREATED, false), (200, &found, true)]);
    let prepared = client.prepare(&transfer(100, None)).unwrap();
    assert!(matches!(
        client.create(&prepared).await,
        TransferOutcome::Ambiguous { .. }
    ));
    assert!(matches!(
        client.query(prepared.out_bill_no()).await,
        TransferOutcome::Succeeded(_)
    ));
    let seen = fake.seen.lock().unwrap();
    assert_eq!(
        seen[1].path,
        "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/plfk2020042013"
    );
    assert_eq!(seen[1].body, "");
}

#[tokio::test]
async fn not_enough_pauses_the_merchant_and_the_same_bill_goes_again() {
    let not_enough = r#"{"code":"NOT_ENOUGH","message":"商户运营账户资金不足，充值后可以原单号发起重试，请勿更换商户单号"}"#;
    let (client, fake) = client(vec![(403, not_enough, true), (200, CREATED, true)]);
    let prepared = client.prepare(&transfer(100, None)).unwrap();
    assert!(matches!(
        client.create(&prepared).await,
        TransferOutcome::PauseMerchant(PauseReason::InsufficientBalance, _)
    ));
    assert!(matches!(
        client.create(&prepared).await,
        TransferOutcome::AwaitingUser(_)
    ));
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen[0].body, seen[1].body, "the same bill, byte for byte");
}

#[test]
fn a_name_cannot_be_sent_without_wechats_key() {
    let keys = WechatPayKeys::new();
    let fake = Arc::new(Fake {
        answers: Mutex::new(Vec::new()),
        seen: Mutex::new(Vec::new()),
    });
    let client = TransferClient::new(signer(), keys, fake);
    assert_eq!(
        client
            .prepare(&transfer(300_000, Some("张三")))
            .unwrap_err()
            .field,
        "user_name"
    );
}
