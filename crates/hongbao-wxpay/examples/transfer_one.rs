//! Creates one transfer bill (商家转账) with the SDK alone, prints what the
//! front end passes to `requestMerchantTransfer`, and resolves an unknown
//! outcome by querying the same `out_bill_no`.
//!
//! Against the sandbox (`hongbao sandbox --data-dir sandbox`; its
//! `merchant.toml` has every value):
//!
//! ```sh
//! WXPAY_V3_BASE=https://127.0.0.1:9443 WXPAY_ROOT_CA=sandbox/ca.pem \
//! WXPAY_CERT=sandbox/apiclient_cert.pem WXPAY_KEY=sandbox/apiclient_key.pem \
//! WXPAY_PUB_KEY=sandbox/pub_key.pem WXPAY_PUB_KEY_ID=PUB_KEY_ID_... \
//! WXPAY_MCH_ID=... WXPAY_APPID=... WXPAY_OPENID=oUpF8uMuAJO_M2pxb1Q9zNjWeS6o \
//! cargo run -p hongbao-wxpay --example transfer_one
//! ```
//!
//! Against WeChat, leave out `WXPAY_V3_BASE` and `WXPAY_ROOT_CA`: real money
//! moves once the user confirms.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hongbao_wxpay::transport::certificates_from_pem;
use hongbao_wxpay::v3::*;
use hongbao_wxpay::*;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (see the top of examples/transfer_one.rs)"))
}

fn read(name: &str) -> Result<Vec<u8>, String> {
    let path = var(name)?;
    std::fs::read(&path).map_err(|e| format!("{name}={path}: {e}"))
}

async fn run() -> Result<(), String> {
    let mch_id = MchId::parse(&var("WXPAY_MCH_ID")?).map_err(|e| e.to_string())?;
    let appid = AppId::parse(&var("WXPAY_APPID")?).map_err(|e| e.to_string())?;
    let identity = ClientIdentity::from_pem(&read("WXPAY_CERT")?, &read("WXPAY_KEY")?)
        .map_err(|e| e.to_string())?;
    let signer =
        MerchantSigner::from_identity(mch_id.clone(), &identity).map_err(|e| e.to_string())?;
    let id = PublicKeyId::parse(&var("WXPAY_PUB_KEY_ID")?).map_err(|e| e.to_string())?;
    let keys = WechatPayKeys::new()
        .with_public_key(&id, &read("WXPAY_PUB_KEY")?)
        .map_err(|e| e.to_string())?;
    let mut config = TransportConfig::new(
        std::env::var("WXPAY_V3_BASE").unwrap_or_else(|_| DEFAULT_API_BASE.into()),
    );
    if std::env::var("WXPAY_ROOT_CA").is_ok() {
        config.extra_roots =
            certificates_from_pem(&read("WXPAY_ROOT_CA")?).map_err(|e| e.to_string())?;
    }
    let transport = HttpV3Transport::new(&config).map_err(|e| e.to_string())?;
    let client = TransferClient::new(signer, keys, Arc::new(transport));

    // A real service allocates the number in its database and stores the
    // prepared body before the first attempt.
    let now = time::OffsetDateTime::now_utc();
    let out_bill_no = OutBillNo::parse(&format!("{mch_id}T{}", now.unix_timestamp()))
        .map_err(|e| e.to_string())?;
    let transfer = CreateTransfer {
        appid: appid.clone(),
        out_bill_no: out_bill_no.clone(),
        transfer_scene_id: TransferSceneId::cash_marketing(),
        openid: OpenId::parse(&var("WXPAY_OPENID")?).map_err(|e| e.to_string())?,
        user_name: None,
        transfer_amount: Fen::parse_yuan("0.10").map_err(|e| e.to_string())?,
        transfer_remark: "hongbao 示例".into(),
        notify_url: None,
        user_recv_perception: Some(Perception::ActivityReward),
        transfer_scene_report_infos: CreateTransfer::cash_marketing_reports("示例活动", "示例奖励"),
    };
    let prepared = client.prepare(&transfer).map_err(|e| e.to_string())?;
    println!("out_bill_no {out_bill_no}");

    // Bounded: at most 5 attempts, the same prepared body every time.
    for attempt in 1..=5 {
        match client.create(&prepared).await {
            TransferOutcome::AwaitingUser(bill) => {
                println!(
                    "created {}; the front end calls requestMerchantTransfer with:",
                    bill.transfer_bill_no
                );
                println!("  mchId   {mch_id}");
                println!("  appId   {appid}");
                println!("  package {}", bill.package_info.unwrap_or_default());
                return Ok(());
            }
            TransferOutcome::Ambiguous { detail, .. } | TransferOutcome::RetrySameBill(detail) => {
                println!("attempt {attempt}: outcome unknown ({detail}); querying {out_bill_no}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                match client.query(&out_bill_no).await {
                    TransferOutcome::AwaitingUser(bill) | TransferOutcome::Pending(bill) => {
                        // The query has no package: create the same bill again to get it.
                        println!(
                            "WeChat has it ({}); creating the same bill again for its package",
                            bill.state
                        );
                    }
                    TransferOutcome::Succeeded(bill) | TransferOutcome::Closed(bill) => {
                        println!(
                            "WeChat has it: {} {}",
                            bill.state,
                            bill.fail_reason.unwrap_or_default()
                        );
                        return Ok(());
                    }
                    other => println!("not settled ({other:?}); sending the same bill again"),
                }
            }
            TransferOutcome::RateLimited(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            other => {
                let why = other.error().map_or_else(
                    || format!("{other:?}"),
                    |e| format!("{e}: {} / {}", e.code.message(), e.code.zh_message()),
                );
                return Err(why);
            }
        }
    }
    Err("still unknown after 5 attempts: query later, never create a new out_bill_no for it".into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
