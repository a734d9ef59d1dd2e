//! `hongbao sign` and `hongbao doctor`, run as the real binary.

use std::path::Path;
use std::process::{Command, Output};

use hongbao_sandbox::{Sandbox, SandboxConfig};

fn hongbao(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args(args)
        .env_remove("HONGBAO_CONFIG")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("the hongbao binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

#[test]
fn sign_prints_the_signed_string_with_the_key_masked() {
    let output = hongbao(&[
        "sign",
        "--key",
        KEY,
        "appid=wxd930ea5d5a258f4f",
        "mch_id=10000100",
        "device_info=1000",
        "body=test",
        "nonce_str=ibuaiVcKdpRxkhJA",
    ]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains(
        "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&key=********************************"
    ), "{out}");
    assert!(
        out.contains("sign (MD5): 9A0A8659F005D6984697E2CA0A9CF3B7"),
        "{out}"
    );
    assert!(!out.contains(KEY), "the key is never printed");

    let hmac = hongbao(&[
        "sign",
        "--key",
        KEY,
        "--sign-type",
        "HMAC-SHA256",
        "appid=wxd930ea5d5a258f4f",
        "mch_id=10000100",
        "device_info=1000",
        "body=test",
        "nonce_str=ibuaiVcKdpRxkhJA",
    ]);
    assert!(
        text(&hmac).contains("6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6")
    );
}

#[test]
fn sign_checks_a_request_body_and_names_what_breaks_it() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("request.xml");
    let good = "<xml><appid>wxd930ea5d5a258f4f</appid><mch_id>10000100</mch_id><device_info>1000</device_info>\
                <body>test</body><nonce_str>ibuaiVcKdpRxkhJA</nonce_str><sign>9A0A8659F005D6984697E2CA0A9CF3B7</sign></xml>";
    std::fs::write(&body, good).unwrap();
    let path = body.to_str().unwrap();
    let output = hongbao(&["sign", "--key", KEY, "--xml", path]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("the given sign matches"));

    std::fs::write(&body, good.replace("9A0A8659", "0A0A8659")).unwrap();
    let output = hongbao(&["sign", "--key", KEY, "--xml", path, "--api", "gethbinfo"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("does NOT match"), "{out}");
    assert!(
        out.contains("device_info is not a documented field of gethbinfo"),
        "{out}"
    );

    let no_key = hongbao(&["sign", "a=1"]);
    assert_eq!(no_key.status.code(), Some(2));
    assert!(text(&no_key).contains("--key"));
    let not_pair = hongbao(&["sign", "--key", KEY, "oops"]);
    assert_eq!(not_pair.status.code(), Some(2));

    // A bad argument is refused before anything is printed.
    let bad_api = hongbao(&["sign", "--key", KEY, "--api", "bogusapi", "a=1"]);
    assert_eq!(bad_api.status.code(), Some(2), "{}", text(&bad_api));
    assert!(
        text(&bad_api).contains("--api \"bogusapi\" is not one of"),
        "{}",
        text(&bad_api)
    );
    assert!(
        bad_api.stdout.is_empty(),
        "nothing printed before the error: {}",
        String::from_utf8_lossy(&bad_api.stdout)
    );
}

/// A sandbox on its own thread's runtime, alive while the handle is.
struct Running {
    sandbox: Sandbox,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn sandbox() -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = runtime
        .block_on(Sandbox::start(SandboxConfig::new(dir.path())))
        .unwrap();
    Running {
        sandbox,
        _runtime: runtime,
        _dir: dir,
    }
}

fn merchant_toml(running: &Running) -> std::path::PathBuf {
    running
        .sandbox
        .identity()
        .path(hongbao_sandbox::files::MERCHANT_TOML)
}

fn with_replaced(path: &Path, dir: &Path, from: &str, to: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(path).unwrap();
    let changed: String = text
        .lines()
        .map(|line| {
            if line.starts_with(from) {
                to.to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let out = dir.join("hongbao.toml");
    std::fs::write(&out, changed).unwrap();
    out
}

#[test]
fn doctor_passes_against_the_sandbox() {
    let running = sandbox();
    let config = merchant_toml(&running);
    // --config is global: before or after the subcommand.
    for args in [
        vec!["doctor", "--config", config.to_str().unwrap()],
        vec!["--config", config.to_str().unwrap(), "doctor"],
    ] {
        let output = hongbao(&args);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(0), "{out}");
        assert!(out.contains("✓ key and certificate with WeChat"), "{out}");
        assert!(out.contains("✓ official account"), "{out}");
        assert!(
            !out.contains(&running.sandbox.identity().secrets.api_key),
            "no secret in the output"
        );
    }
}

/// A standard output whose reader has already gone, as with `| head -1`
/// once `head` has its line.
fn closed_stdout() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

#[test]
fn doctor_piped_into_a_reader_that_stops_early_ends_quietly() {
    let running = sandbox();
    let config = merchant_toml(&running);
    let output = Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args(["doctor", "--config", config.to_str().unwrap()])
        .env_remove("HONGBAO_CONFIG")
        .current_dir(std::env::temp_dir())
        .stdout(closed_stdout())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn doctor_checks_the_v3_keys_and_names_the_v2_key_given_as_the_apiv3_key() {
    let running = sandbox();
    let secrets = &running.sandbox.identity().secrets;
    let output = hongbao(&[
        "doctor",
        "--config",
        merchant_toml(&running).to_str().unwrap(),
    ]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("✓ transfer query with WeChat"), "{out}");
    assert!(
        out.contains("✓ 微信支付公钥") && out.contains(&secrets.wechatpay_public_key_id),
        "{out}"
    );
    assert!(!out.contains(&secrets.apiv3_key), "no secret in the output");
    let dir = tempfile::tempdir().unwrap();
    let mixed_up = with_replaced(
        &merchant_toml(&running),
        dir.path(),
        "apiv3_key",
        &format!("apiv3_key = \"{}\"", secrets.api_key),
    );
    let output = hongbao(&["doctor", "--config", mixed_up.to_str().unwrap()]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("✗ APIv3 key: apiv3_key is the v2 API key"),
        "{out}"
    );
    assert!(!out.contains(&secrets.api_key), "{out}");
}

#[test]
fn doctor_names_a_wrong_key_without_printing_it() {
    let running = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let wrong_key = with_replaced(
        &merchant_toml(&running),
        dir.path(),
        "api_key",
        "api_key = \"0123456789abcdef0123456789abcdef\"",
    );
    let output = hongbao(&["doctor", "--config", wrong_key.to_str().unwrap()]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("SIGN_ERROR") && out.contains("APIv3"), "{out}");
    assert!(!out.contains("0123456789abcdef0123456789abcdef"), "{out}");
}

#[test]
fn doctor_refuses_a_certificate_from_another_merchant() {
    let running = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../hongbao-wxpay/tests/data");
    let original = std::fs::read_to_string(merchant_toml(&running)).unwrap();
    let changed: String = original
        .lines()
        .map(|line| {
            if line.starts_with("cert =") {
                format!("cert = \"{fixtures}/apiclient_cert.pem\"")
            } else if line.starts_with("key =") {
                format!("key = \"{fixtures}/apiclient_key.pem\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.path().join("hongbao.toml");
    std::fs::write(&path, changed).unwrap();
    let output = hongbao(&["doctor", "--config", path.to_str().unwrap()]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("CA_ERROR"), "{out}");
    assert!(out.contains("another merchant's certificate"), "{out}");
}

#[test]
fn doctor_checks_every_usable_merchant_when_another_is_broken() {
    let running = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(merchant_toml(&running)).unwrap();
    let path = dir.path().join("hongbao.toml");
    std::fs::write(
        &path,
        format!("{good}\n[merchants.broken]\nmch_id = \"1900000109\"\n"),
    )
    .unwrap();
    let output = hongbao(&["doctor", "--config", path.to_str().unwrap()]);
    let out = text(&output);
    // An unusable configuration is bad input (2), as for every command.
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(out.contains("merchants.broken.api_key"), "{out}");
    assert!(out.contains("✓ key and certificate with WeChat"), "{out}");
}

#[test]
fn doctor_reports_configuration_problems_and_needs_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hongbao.toml");
    std::fs::write(&path, "[merchants.main]\nmch_id = \"1900000109\"\n").unwrap();
    let output = hongbao(&["doctor", "--config", path.to_str().unwrap()]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(
        out.contains("merchants.main.appid") && out.contains("merchants.main.api_key"),
        "{out}"
    );

    let none = hongbao(&["doctor"]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    let missing = hongbao(&["doctor", "--config", "/nonexistent/hongbao.toml"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("does not exist"));
}

#[test]
fn unknown_keys_are_reported_with_every_other_problem_and_the_same_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hongbao.toml");
    std::fs::write(
        &path,
        "[servr]\nlisten = \"127.0.0.1:1\"\n\n[merchants.main]\nmch_id = \"1900000109\"\nmch_idd = \"1\"\nrate_per_minute = \"fast\"\n",
    )
    .unwrap();
    for command in ["doctor", "send", "serve", "records"] {
        let mut args = vec![command, "--config", path.to_str().unwrap()];
        match command {
            "send" => args.extend(["--openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "--amount", "1"]),
            "records" => args.insert(1, "list"),
            _ => {}
        }
        let output = hongbao(&args);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(2), "{command}: {out}");
        for key in [
            "servr",
            "merchants.main.mch_idd",
            "merchants.main.rate_per_minute",
            "merchants.main.appid",
            "merchants.main.api_key",
            "merchants.main.cert",
        ] {
            assert!(
                out.contains(key),
                "{command}: {key} is not reported:\n{out}"
            );
        }
    }
}
