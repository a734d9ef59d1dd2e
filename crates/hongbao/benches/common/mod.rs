//! What the benchmarks of the command share: a sandbox that limits nothing.

use std::path::Path;

use hongbao_sandbox::{Probability, Rules, Sandbox, SandboxConfig};
use hongbao_wxpay::Fen;

/// Starts a sandbox in `dir` with no rate limit, no daily caps, a balance
/// that never runs out and packets nobody opens (no lifecycle work); returns
/// it with its `[merchants.main]` section, paced at ten million a minute.
/// `configure` changes the sandbox's settings after that.
pub(crate) async fn unlimited_sandbox(
    dir: &Path,
    configure: impl FnOnce(&mut SandboxConfig),
) -> (Sandbox, String) {
    let mut config = SandboxConfig::new(dir.join("sandbox"));
    config.balance = Fen::new(u64::MAX / 4);
    config.rules = Rules {
        rate_per_minute: 0,
        sendnum_limit: u32::MAX,
        rcvd_amount_limit: Fen::new(u64::MAX / 4),
        send_amount_limit: Fen::new(u64::MAX / 4),
        ..Rules::default()
    };
    config.lifecycle.receive_probability = Probability::NEVER;
    configure(&mut config);
    let sandbox = Sandbox::start(config).await.unwrap();
    let merchant = sandbox
        .merchant_toml("main")
        .replace("rate_per_minute = 1800", "rate_per_minute = 10000000");
    (sandbox, merchant)
}
