//! `hongbao doctor`'s APIv3 checks against the sandbox: a good
//! configuration passes, and each usual mix-up is named.

use hongbao_core::config::Config;
use hongbao_core::doctor::{Check, Status, check_merchant};
use hongbao_sandbox::{Sandbox, SandboxConfig, V3Signer, files};

async fn sandbox(configure: impl FnOnce(&mut SandboxConfig)) -> (Sandbox, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SandboxConfig::new(dir.path().join("sandbox"));
    config.seed = Some(3);
    configure(&mut config);
    (Sandbox::start(config).await.unwrap(), dir)
}

/// The doctor's checks of the sandbox's merchant.toml, edited by `edit`.
async fn doctor(
    sandbox: &Sandbox,
    dir: &tempfile::TempDir,
    edit: impl FnOnce(String) -> String,
) -> Vec<Check> {
    let toml = edit(sandbox.merchant_toml("sandbox"));
    let file = dir.path().join("hongbao.toml");
    std::fs::write(&file, toml).unwrap();
    let config = Config::load_with_env(&file, []).unwrap();
    check_merchant(&config.merchants["sandbox"]).await
}

fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {checks:?}"))
}

#[tokio::test]
async fn the_sandbox_merchant_passes_every_v3_check() {
    let (sandbox, dir) = sandbox(|_| {}).await;
    let checks = doctor(&sandbox, &dir, |t| t).await;
    for name in [
        "APIv3 key",
        "微信支付公钥",
        "certificate serial",
        "transfer query with WeChat",
    ] {
        assert_eq!(find(&checks, name).status, Status::Pass, "{checks:?}");
    }
    assert!(
        find(&checks, "transfer query with WeChat")
            .message
            .contains("NOT_FOUND")
    );
}

#[tokio::test]
async fn the_v2_key_given_as_the_apiv3_key_is_named() {
    let (sandbox, dir) = sandbox(|_| {}).await;
    let v2 = sandbox.identity().secrets.api_key.clone();
    let v3 = sandbox.identity().secrets.apiv3_key.clone();
    let checks = doctor(&sandbox, &dir, |t| t.replace(&v3, &v2)).await;
    let check = find(&checks, "APIv3 key");
    assert_eq!(check.status, Status::Fail);
    assert!(check.message.contains("v2 API key"), "{}", check.message);
    assert!(!check.message.contains(&v2), "the key is never shown");
}

#[tokio::test]
async fn the_platform_certificate_given_as_the_public_key_is_named() {
    let (sandbox, dir) = sandbox(|_| {}).await;
    let checks = doctor(&sandbox, &dir, |t| {
        t.replace(files::PUB_KEY, files::PLATFORM_CERT)
    })
    .await;
    let check = find(&checks, "微信支付公钥");
    assert_eq!(check.status, Status::Fail);
    assert!(
        check.message.contains("platform_certs"),
        "{}",
        check.message
    );
}

#[tokio::test]
async fn answers_signed_by_a_key_not_configured_name_it() {
    // WeChat still signs with the platform certificate; only the public key is configured.
    let (sandbox, dir) = sandbox(|c| c.transfers.signer = V3Signer::PlatformCertificate).await;
    let checks = doctor(&sandbox, &dir, |t| t).await;
    let check = find(&checks, "transfer query with WeChat");
    assert_eq!(check.status, Status::Fail);
    assert!(
        check.message.contains("platform_certs"),
        "{}",
        check.message
    );
    // Configured with both (switching): passes.
    let checks = doctor(&sandbox, &dir, |t| {
        t.replace("# platform_certs", "platform_certs")
    })
    .await;
    assert_eq!(
        find(&checks, "transfer query with WeChat").status,
        Status::Pass,
        "{checks:?}"
    );
}

#[tokio::test]
async fn another_api_certificate_is_sign_error_naming_the_serial() {
    let (sandbox, dir) = sandbox(|_| {}).await;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../hongbao-wxpay/tests/data");
    let id = sandbox.identity();
    let checks = doctor(&sandbox, &dir, |t| {
        t.replace(
            &id.path(files::CLIENT_CERT).display().to_string(),
            &format!("{fixtures}/apiclient_cert.pem"),
        )
        .replace(
            &id.path(files::CLIENT_KEY).display().to_string(),
            &format!("{fixtures}/apiclient_key.pem"),
        )
    })
    .await;
    let check = find(&checks, "transfer query with WeChat");
    assert_eq!(check.status, Status::Fail, "{checks:?}");
    assert!(
        check.message.contains("SIGN_ERROR")
            && check
                .message
                .contains("1AAEDFCA0DC34C2B4049C8DB7F1597251D0EF0F2"),
        "{}",
        check.message
    );
    assert!(check.message.contains("wrong serial"), "{}", check.message);
}
