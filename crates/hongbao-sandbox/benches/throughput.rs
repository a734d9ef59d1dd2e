//! sendredpack calls per second the sandbox answers over TLS with
//! keep-alive on loopback: `cargo bench -p hongbao-sandbox --bench throughput`.
//!
//! The clients run in the same process and share the machine's cores with
//! the sandbox, so the figure is a floor for the sandbox alone. Every call
//! is a full one: client-side validation and MD5 signing, XML, TLS,
//! signature check, rules, ledger, journal line, answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hongbao_sandbox::{Probability, Rules, Sandbox, SandboxConfig, files};
use hongbao_wxpay::transport::certificates_from_pem;
use hongbao_wxpay::*;

const CALLS: u64 = 20_000;
const CONNECTIONS: u64 = 16;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SandboxConfig::new(dir.path());
    config.balance = Fen::new(u64::MAX / 4);
    config.rules = Rules {
        rate_per_minute: 0,
        sendnum_limit: u32::MAX,
        rcvd_amount_limit: Fen::new(u64::MAX / 4),
        send_amount_limit: Fen::new(u64::MAX / 4),
        ..Rules::default()
    };
    config.lifecycle.receive_probability = Probability::NEVER;
    let sandbox = Sandbox::start(config).await.unwrap();
    let id = sandbox.identity();
    let identity = ClientIdentity::from_pem(
        &std::fs::read(id.path(files::CLIENT_CERT)).unwrap(),
        &std::fs::read(id.path(files::CLIENT_KEY)).unwrap(),
    )
    .unwrap();
    let merchant = Merchant {
        mch_id: MchId::parse(&id.secrets.mch_id).unwrap(),
        appid: AppId::parse(&id.secrets.appid).unwrap(),
        service_provider: None,
    };
    let key = ApiKey::parse(&id.secrets.api_key).unwrap();
    let roots = certificates_from_pem(id.ca_pem.as_bytes()).unwrap();

    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..CONNECTIONS {
        // One client per worker: one keep-alive TLS connection each.
        let mut transport = TransportConfig::new(sandbox.api_base());
        transport.identity = Some(identity.clone());
        transport.extra_roots = roots.clone();
        let client = Client::new(
            merchant.clone(),
            key.clone(),
            Arc::new(HttpTransport::new(&transport).unwrap()),
        );
        let merchant = merchant.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..CALLS / CONNECTIONS {
                let seq = worker * 1_000_000 + i;
                let request = SendRedpack {
                    mch_billno: MchBillNo::generate(
                        &merchant.mch_id,
                        time::macros::date!(2026 - 11 - 22),
                        seq,
                    )
                    .unwrap(),
                    re_openid: OpenId::parse(&format!("oBench{seq:022}")).unwrap(),
                    total_amount: Fen::new(188),
                    send_name: "天虹百货".into(),
                    wishing: "恭喜发财".into(),
                    act_name: "新年红包".into(),
                    remark: "新年红包".into(),
                    client_ip: "10.0.0.1".into(),
                    scene_id: None,
                    risk_info: None,
                };
                let call = Instant::now();
                let outcome = client.send(&request).await.unwrap();
                latencies.push(call.elapsed());
                assert!(matches!(outcome, SendOutcome::Sent(_)), "{outcome:?}");
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let paid = sandbox.ledger().len();
    assert_eq!(u64::try_from(paid).unwrap(), CALLS);
    let per_second = u128::from(CALLS) * 1_000_000 / elapsed.as_micros().max(1);
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!("sandbox sendredpack over TLS, {CONNECTIONS} keep-alive connections, {CALLS} calls");
    println!("  {per_second} calls/s ({} ms in all)", elapsed.as_millis());
    println!(
        "  latency p50 {:?}  p99 {:?}  max {:?}",
        pct(50),
        pct(99),
        latencies[latencies.len() - 1]
    );
    println!("  ledger: {paid} payments");
}
