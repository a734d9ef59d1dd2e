//! Throughput of signing and of the XML round trip.
//!
//! `cargo bench -p hongbao-wxpay --bench sign_xml` prints operations per
//! second per core: the best of five rounds (the least disturbed by other
//! work on the machine) and the median.

use std::hint::black_box;
use std::time::Instant;

use hongbao_wxpay::*;

fn request_params() -> Params {
    [
        ("act_name", "猜灯谜抢红包活动"),
        ("client_ip", "192.168.0.1"),
        ("mch_billno", "1900000109202611220000000042"),
        ("mch_id", "1900000109"),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("re_openid", "oxTWIuGaIt6gTKsQRLau2M0yL16E"),
        ("remark", "猜越多得越多，快来抢！"),
        ("send_name", "天虹百货"),
        ("total_amount", "1000"),
        ("total_num", "1"),
        ("wishing", "感谢您参加猜灯谜活动，祝您元宵节快乐！"),
        ("wxappid", "wx8888888888888888"),
    ]
    .into_iter()
    .collect()
}

fn answer_body() -> String {
    let fields: Params = [
        ("return_code", "SUCCESS"),
        ("return_msg", "发放成功"),
        ("result_code", "SUCCESS"),
        ("err_code", "SUCCESS"),
        ("err_code_des", "发放成功"),
        ("mch_billno", "1900000109202611220000000042"),
        ("mch_id", "1900000109"),
        ("wxappid", "wx8888888888888888"),
        ("re_openid", "oxTWIuGaIt6gTKsQRLau2M0yL16E"),
        ("total_amount", "1000"),
        ("send_listid", "1000041701202611223000109811129"),
    ]
    .into_iter()
    .collect();
    xml::to_xml(&fields, None)
}

/// Runs `op` `iterations` times per round, five rounds; returns (best, median) ops/s.
fn measure(iterations: u32, mut op: impl FnMut()) -> (u128, u128) {
    for _ in 0..iterations / 10 {
        op();
    }
    let mut rates: Vec<u128> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                op();
            }
            u128::from(iterations) * 1_000_000_000 / start.elapsed().as_nanos().max(1)
        })
        .collect();
    rates.sort_unstable();
    (rates[4], rates[2])
}

fn report(name: &str, (best, median): (u128, u128)) {
    println!("{name:<52} {best:>10} ops/s   (median {median})");
}

fn main() {
    let key = ApiKey::any("192006250b4c09247ec02edce69f6a2d");
    let params = request_params();
    let body = answer_body();
    let n = 100_000;

    report(
        "sign MD5 (sendredpack, 12 fields)",
        measure(n, || {
            black_box(sign(black_box(&params), &key, SignType::Md5));
        }),
    );
    report(
        "sign HMAC-SHA256 (same fields)",
        measure(n, || {
            black_box(sign(black_box(&params), &key, SignType::HmacSha256));
        }),
    );
    report(
        "request: sign + write XML",
        measure(n, || {
            let signature = sign(black_box(&params), &key, SignType::Md5);
            black_box(xml::to_xml(&params, Some(&signature)));
        }),
    );
    report(
        "answer: parse XML + classify",
        measure(n, || {
            let reply = Reply::parse(Api::SendRedpack, black_box(body.as_bytes()), &key);
            black_box(classify_send(&reply));
        }),
    );
    report(
        "round trip: sign, write, parse, verify",
        measure(n, || {
            let signature = sign(black_box(&params), &key, SignType::Md5);
            let text = xml::to_xml(&params, Some(&signature));
            let doc = xml::parse(text.as_bytes()).expect("own XML parses");
            assert!(sign::verify(
                doc.fields.iter(),
                &key,
                SignType::Md5,
                doc.get("sign").unwrap_or_default()
            ));
        }),
    );
}
