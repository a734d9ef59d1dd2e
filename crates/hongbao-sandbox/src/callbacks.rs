//! Delivers transfer callbacks: polls the simulator for due ones, posts
//! each (signed, encrypted) to its `notify_url`, and reports the result so
//! that anything but a 2xx is retried on WeChat's schedule.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::sim::Simulator;

/// How often due callbacks are looked for.
const TICK: Duration = Duration::from_millis(100);
/// How many are delivered per tick.
const BATCH: usize = 16;

/// The HTTP client: system roots and the sandbox's CA, 5 s per delivery.
pub(crate) fn client(ca_pem: &str) -> Result<reqwest::Client, String> {
    let roots = hongbao_wxpay::transport::certificates_from_pem(ca_pem.as_bytes())
        .map_err(|e| e.to_string())?;
    let tls =
        hongbao_wxpay::transport::tls_client_config(None, &roots).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .retry(reqwest::retry::never())
        .no_proxy()
        .user_agent("Mozilla/4.0 (hongbao sandbox; WeChatPay callbacks)")
        .build()
        .map_err(|e| e.to_string())
}

/// Runs until `stop` changes.
pub(crate) async fn deliver(
    sim: Arc<Mutex<Simulator>>,
    client: reqwest::Client,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let due = sim.lock().expect("sandbox lock").due_callbacks(BATCH);
        for delivery in due {
            let mut request = client
                .post(&delivery.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(delivery.body.clone());
            for (name, value) in &delivery.headers {
                request = request.header(*name, value);
            }
            let acknowledged = matches!(request.send().await, Ok(r) if r.status().is_success());
            sim.lock()
                .expect("sandbox lock")
                .callback_result(&delivery, acknowledged);
        }
    }
}
