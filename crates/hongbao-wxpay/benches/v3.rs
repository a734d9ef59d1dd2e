//! APIv3 costs per core: request signatures, answer verification, the
//! OAEP encryption of `user_name`, callback decryption, and the SDK's whole
//! CPU per create call (validate, sign, JSON, verify, parse, classify) with
//! the network replaced by a transport that answers a pre-signed bill.
//!
//! `cargo bench -p hongbao-wxpay --bench v3` prints the best of five
//! rounds and the median. Calls against the sandbox over HTTPS:
//! `cargo bench -p hongbao-sandbox --bench transfers`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use hongbao_wxpay::outcome::CallError;
use hongbao_wxpay::transport::BoxFuture;
use hongbao_wxpay::v3::crypto::answer_message;
use hongbao_wxpay::v3::*;
use hongbao_wxpay::*;
use time::OffsetDateTime;

const CERT: &[u8] = include_bytes!("../tests/data/apiclient_cert.pem");
const KEY: &[u8] = include_bytes!("../tests/data/apiclient_key.pem");
const PUB: &[u8] = include_bytes!("../tests/data/apiclient_pub_key.pem");
const ID: &str = "PUB_KEY_ID_0119000001092026120100000000000001";
const ANSWER: &str = r#"{"out_bill_no":"plfk2020042013","transfer_bill_no":"1330000071100999991182020050700019480001","create_time":"2015-05-20T13:29:35.120+08:00","state":"WAIT_USER_CONFIRM","package_info":"affffddafdfafddffda=="}"#;

fn signer() -> MerchantSigner {
    let identity = ClientIdentity::from_pem(CERT, KEY).unwrap();
    MerchantSigner::from_identity(MchId::parse("1900000109").unwrap(), &identity).unwrap()
}

fn keys() -> WechatPayKeys {
    WechatPayKeys::new()
        .with_public_key(&PublicKeyId::parse(ID).unwrap(), PUB)
        .unwrap()
}

fn headers(body: &[u8]) -> SignatureHeaders {
    let timestamp = OffsetDateTime::now_utc().unix_timestamp().to_string();
    SignatureHeaders {
        signature: Some(signer().sign(&answer_message(&timestamp, "n", body))),
        timestamp: Some(timestamp),
        nonce: Some("n".into()),
        serial: Some(ID.into()),
        request_id: None,
    }
}

/// Answers every call with the same signed bill.
#[derive(Debug)]
struct Canned(SignatureHeaders);

impl V3Transport for Canned {
    fn send(&self, _: V3Request) -> BoxFuture<'_, Result<V3Response, CallError>> {
        let response = V3Response {
            status: 200,
            headers: self.0.clone(),
            body: ANSWER.as_bytes().to_vec(),
        };
        Box::pin(async move { Ok(response) })
    }
}

fn transfer() -> CreateTransfer {
    CreateTransfer {
        appid: AppId::parse("wxf636efh567hg4356").unwrap(),
        out_bill_no: OutBillNo::parse("plfk2020042013").unwrap(),
        transfer_scene_id: TransferSceneId::cash_marketing(),
        openid: OpenId::parse("o-MYE42l80oelYMDE34nYD456Xoy").unwrap(),
        user_name: None,
        transfer_amount: Fen::new(100),
        transfer_remark: "新会员开通有礼".into(),
        notify_url: Some("https://www.weixin.qq.com/wxpay/pay.php".into()),
        user_recv_perception: Some(Perception::CashReward),
        transfer_scene_report_infos: CreateTransfer::cash_marketing_reports(
            "新会员有礼",
            "注册会员抽奖一等奖",
        ),
    }
}

fn rate(name: &str, n: u32, mut f: impl FnMut()) {
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        rounds.push(start.elapsed());
    }
    rounds.sort();
    let per_second = |d: std::time::Duration| u128::from(n) * 1_000_000 / d.as_micros().max(1);
    let micros = |d: std::time::Duration| d.as_nanos() / u128::from(n) / 1000;
    println!(
        "{name:<44} {:>8}/s best ({} µs), {:>8}/s median",
        per_second(rounds[0]),
        micros(rounds[0]),
        per_second(rounds[2])
    );
}

fn main() {
    let signer = signer();
    let keys = keys();
    let message = "POST\n/v3/fund-app/mch-transfer/transfer-bills\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n";
    rate("sign a request (RSA-2048 SHA-256, ring)", 400, || {
        black_box(signer.sign(black_box(message.as_bytes())));
    });
    let signed = headers(ANSWER.as_bytes());
    rate("verify an answer (RSA-2048 SHA-256, ring)", 4_000, || {
        keys.verify(&signed, ANSWER.as_bytes(), OffsetDateTime::now_utc())
            .unwrap();
    });
    let encryptor = keys.encryptor().unwrap();
    rate("encrypt user_name (OAEP-SHA1, rsa)", 2_000, || {
        black_box(encryptor.encrypt("张三").unwrap());
    });
    let apiv3 = ApiV3Key::parse("0123456789abcdefghijklmnopqrstuv").unwrap();
    let sealed = apiv3
        .encrypt("mch_payment", "fdasflkja484", ANSWER.as_bytes())
        .unwrap();
    rate("decrypt a callback resource (AES-256-GCM)", 50_000, || {
        black_box(
            apiv3
                .decrypt("mch_payment", "fdasflkja484", &sealed)
                .unwrap(),
        );
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let client = TransferClient::new(signer, keys, Arc::new(Canned(signed)));
    rate("SDK CPU per create (no network)", 400, || {
        let prepared = client.prepare(&transfer()).unwrap();
        let outcome = runtime.block_on(client.create(&prepared));
        assert!(matches!(outcome, TransferOutcome::AwaitingUser(_)));
    });
}
