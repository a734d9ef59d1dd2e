//! Any bytes as an APIv3 answer or callback: parsing, verification,
//! decryption and classification must never panic; an answer whose
//! signature did not verify is never success, failure or "not found".

#![no_main]

use hongbao_wxpay::outcome::CallError;
use hongbao_wxpay::v3::crypto::answer_message;
use hongbao_wxpay::v3::*;
use hongbao_wxpay::{ClientIdentity, MchId};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

const CERT: &[u8] = include_bytes!("../../crates/hongbao-wxpay/tests/data/apiclient_cert.pem");
const KEY: &[u8] = include_bytes!("../../crates/hongbao-wxpay/tests/data/apiclient_key.pem");
const PUB: &[u8] = include_bytes!("../../crates/hongbao-wxpay/tests/data/apiclient_pub_key.pem");
const ID: &str = "PUB_KEY_ID_0119000001092026120100000000000001";

fuzz_target!(|data: &[u8]| {
    for status in [200, 204, 400, 401, 403, 404, 429, 500, 502] {
        for operation in [Operation::Create, Operation::Query, Operation::Cancel] {
            let unverified = Ok(V3Reply {
                status,
                body: data.to_vec(),
                verified: Err(VerifyError::MissingHeader("Wechatpay-Signature")),
                request_id: None,
            });
            let outcome = classify(operation, &unverified);
            assert!(
                matches!(
                    outcome,
                    TransferOutcome::Ambiguous { .. }
                        | TransferOutcome::RateLimited(_)
                        | TransferOutcome::PauseMerchant(..)
                ),
                "{outcome:?}"
            );
            let verified = Ok(V3Reply {
                status,
                body: data.to_vec(),
                verified: Ok(()),
                request_id: None,
            });
            let _ = classify(operation, &verified);
        }
    }
    let _ = classify(Operation::Create, &Err(CallError::Unparseable(String::from_utf8_lossy(data).into())));
    let _ = Bill::parse(data);
    let _ = ApiError::parse(400, data);
    let text = String::from_utf8_lossy(data);
    let _ = Authorization::parse(&text);

    // The callback path, signed so that it gets past verification.
    let identity = ClientIdentity::from_pem(CERT, KEY).expect("fixture");
    let signer = MerchantSigner::from_identity(MchId::parse("1900000109").unwrap(), &identity).unwrap();
    let keys = WechatPayKeys::new()
        .with_public_key(&PublicKeyId::parse(ID).unwrap(), PUB)
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let timestamp = now.unix_timestamp().to_string();
    let headers = SignatureHeaders {
        signature: Some(signer.sign(&answer_message(&timestamp, "n", data))),
        timestamp: Some(timestamp),
        nonce: Some("n".into()),
        serial: Some(ID.into()),
        request_id: None,
    };
    let apiv3 = ApiV3Key::parse("0123456789abcdefghijklmnopqrstuv").unwrap();
    let _ = parse_callback(&keys, &apiv3, &headers, data, now);
    let _ = apiv3.decrypt("mch_payment", "0123456789ab", &text);
});
