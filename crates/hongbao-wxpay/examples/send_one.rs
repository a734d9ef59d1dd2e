//! Sends one red packet the safe way: one mch_billno, kept for every
//! retry; an unknown outcome is resolved with `gethbinfo` before resending.
//!
//! Against the sandbox (`hongbao sandbox --data-dir sandbox` prints these):
//!
//! ```sh
//! WXPAY_API_BASE=https://127.0.0.1:9443 WXPAY_ROOT_CA=sandbox/ca.pem \
//! WXPAY_CERT=sandbox/apiclient_cert.pem WXPAY_KEY=sandbox/apiclient_key.pem \
//! WXPAY_MCH_ID=... WXPAY_APPID=... WXPAY_API_KEY=... \
//! WXPAY_OPENID=oUpF8uMuAJO_M2pxb1Q9zNjWeS6o \
//! cargo run -p hongbao-wxpay --example send_one
//! ```
//!
//! Against WeChat, leave out `WXPAY_API_BASE` and `WXPAY_ROOT_CA`: real money moves.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hongbao_wxpay::transport::certificates_from_pem;
use hongbao_wxpay::*;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (see the top of examples/send_one.rs)"))
}

async fn run() -> Result<(), String> {
    let mch_id = MchId::parse(&var("WXPAY_MCH_ID")?).map_err(|e| e.to_string())?;
    let merchant = Merchant {
        appid: AppId::parse(&var("WXPAY_APPID")?).map_err(|e| e.to_string())?,
        mch_id: mch_id.clone(),
        service_provider: None,
    };
    let key = ApiKey::parse(&var("WXPAY_API_KEY")?).map_err(|e| e.to_string())?;
    let read = |name: &str| -> Result<Vec<u8>, String> {
        let path = var(name)?;
        std::fs::read(&path).map_err(|e| format!("{name}={path}: {e}"))
    };
    let mut config = TransportConfig::new(
        std::env::var("WXPAY_API_BASE").unwrap_or_else(|_| DEFAULT_API_BASE.into()),
    );
    config.identity = Some(
        ClientIdentity::from_pem(&read("WXPAY_CERT")?, &read("WXPAY_KEY")?)
            .map_err(|e| e.to_string())?,
    );
    if std::env::var("WXPAY_ROOT_CA").is_ok() {
        config.extra_roots =
            certificates_from_pem(&read("WXPAY_ROOT_CA")?).map_err(|e| e.to_string())?;
    }
    let transport = HttpTransport::new(&config).map_err(|e| e.to_string())?;
    let client = Client::new(merchant, key, Arc::new(transport));

    // A real service takes the sequence from its database (unique per
    // merchant and day) and stores the prepared request before sending.
    let now = time::OffsetDateTime::now_utc();
    let sequence = u64::try_from(now.unix_timestamp() % 10_000_000_000).unwrap_or(1);
    let request = SendRedpack {
        mch_billno: MchBillNo::generate(&mch_id, beijing_date(now), sequence)
            .map_err(|e| e.to_string())?,
        re_openid: OpenId::parse(&var("WXPAY_OPENID")?).map_err(|e| e.to_string())?,
        total_amount: Fen::parse_yuan("1.00").map_err(|e| e.to_string())?,
        send_name: "hongbao".into(),
        wishing: "恭喜发财".into(),
        act_name: "示例".into(),
        remark: "hongbao-wxpay example".into(),
        client_ip: "127.0.0.1".into(),
        scene_id: None,
        risk_info: None,
    };
    let prepared = client.prepare(&request).map_err(|e| e.to_string())?;
    println!("mch_billno {}", prepared.mch_billno());

    // Bounded: at most 5 attempts, at least 1 s apart (WeChat's minimum).
    for attempt in 1..=5 {
        let outcome = classify_send(&client.call(&prepared).await);
        match outcome {
            SendOutcome::Sent(result) => {
                println!(
                    "sent, send_listid {}",
                    result.send_listid.unwrap_or_default()
                );
                return Ok(());
            }
            SendOutcome::QueryFirst { detail, .. } => {
                println!("attempt {attempt}: outcome unknown ({detail}); asking gethbinfo");
                tokio::time::sleep(Duration::from_secs(1)).await;
                match client.query(&request.mch_billno).await {
                    QueryOutcome::Found(info) if info.status.was_sent() => {
                        println!("WeChat has it: {}", info.status.as_str());
                        return Ok(());
                    }
                    QueryOutcome::Found(info) if info.status == HbStatus::Failed => {
                        return Err(format!("failed: {}", info.reason.unwrap_or_default()));
                    }
                    other => println!("not settled yet ({other:?}); resending the same mch_billno"),
                }
            }
            SendOutcome::RetrySameBillno(detail) => {
                println!("attempt {attempt}: not sent ({detail}); retrying the same mch_billno");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            SendOutcome::RateLimited(_) => tokio::time::sleep(Duration::from_secs(2)).await,
            other => {
                let code = other
                    .err_code()
                    .cloned()
                    .unwrap_or(ErrCode::Other(String::new()));
                return Err(format!(
                    "{code}: {} / {}",
                    code.message(),
                    code.zh_message()
                ));
            }
        }
    }
    Err("still unknown after 5 attempts: ask gethbinfo later, never send a new mch_billno".into())
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
