//! Transfer creates per second the sandbox answers over HTTPS (keep-alive,
//! loopback), each a full APIv3 call through the SDK: validation, RSA
//! request signature, TLS, the sandbox's signature check, rules, journal,
//! its signed answer, the SDK's verification and classification; and the
//! process CPU per create (SDK and sandbox together, from /proc/self/stat).
//! The SDK's share alone: `cargo bench -p hongbao-wxpay --bench v3`.
//!
//! `cargo bench -p hongbao-sandbox --bench transfers`.

use std::sync::Arc;
use std::time::Instant;

use hongbao_sandbox::{Probability, Sandbox, SandboxConfig, files};
use hongbao_wxpay::transport::certificates_from_pem;
use hongbao_wxpay::v3::*;
use hongbao_wxpay::*;

const CALLS: u64 = 2_000;
const CONNECTIONS: u64 = 4;

/// User plus system CPU of this process, in clock ticks (1/100 s on Linux).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

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
    config.operations_balance = Fen::new(u64::MAX / 4);
    config.transfers.create_per_second = 0;
    config.transfers.confirm_probability = Probability::NEVER;
    let sandbox = Sandbox::start(config).await.unwrap();
    let id = sandbox.identity();
    let identity = ClientIdentity::from_pem(
        &std::fs::read(id.path(files::CLIENT_CERT)).unwrap(),
        &std::fs::read(id.path(files::CLIENT_KEY)).unwrap(),
    )
    .unwrap();
    let mch_id = MchId::parse(&id.secrets.mch_id).unwrap();
    let signer = MerchantSigner::from_identity(mch_id, &identity).unwrap();
    let keys = WechatPayKeys::new()
        .with_public_key(
            &PublicKeyId::parse(&id.secrets.wechatpay_public_key_id).unwrap(),
            id.wechatpay_public_key_pem.as_bytes(),
        )
        .unwrap();
    let roots = certificates_from_pem(id.ca_pem.as_bytes()).unwrap();
    let appid = AppId::parse(&id.secrets.appid).unwrap();

    let cpu_before = cpu_ticks();
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..CONNECTIONS {
        let mut transport = TransportConfig::new(sandbox.api_base());
        transport.extra_roots = roots.clone();
        let client = TransferClient::new(
            signer.clone(),
            keys.clone(),
            Arc::new(HttpV3Transport::new(&transport).unwrap()),
        );
        let appid = appid.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..CALLS / CONNECTIONS {
                let seq = worker * 1_000_000 + i;
                let transfer = CreateTransfer {
                    appid: appid.clone(),
                    out_bill_no: OutBillNo::parse(&format!("BENCH{seq:012}")).unwrap(),
                    transfer_scene_id: TransferSceneId::cash_marketing(),
                    openid: OpenId::parse(&format!("oBench{seq:022}")).unwrap(),
                    user_name: None,
                    transfer_amount: Fen::new(100),
                    transfer_remark: "新年抽奖".into(),
                    notify_url: None,
                    user_recv_perception: None,
                    transfer_scene_report_infos: CreateTransfer::cash_marketing_reports(
                        "新年抽奖",
                        "抽奖现金奖励",
                    ),
                };
                let prepared = client.prepare(&transfer).unwrap();
                let outcome = client.create(&prepared).await;
                assert!(
                    matches!(outcome, TransferOutcome::AwaitingUser(_)),
                    "{outcome:?}"
                );
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    let per_second = u128::from(CALLS) * 1_000_000 / elapsed.as_micros().max(1);
    println!(
        "sandbox transfer creates over HTTPS, {CONNECTIONS} keep-alive connections, {CALLS} calls"
    );
    println!(
        "  {per_second} creates/s ({} ms in all)",
        elapsed.as_millis()
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_ticks()) {
        let micros = (after - before) * 10_000 / CALLS;
        println!("  process CPU per create (SDK + sandbox): {micros} µs");
    }
    println!("  bills: {}", sandbox.transfers().len());
}
