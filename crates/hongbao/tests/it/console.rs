//! The web console end to end, in headless Chromium driven over WebDriver
//! (chromedriver), against the real `hongbao serve` in sandbox mode: a
//! wrong key is refused; sign in, send a payout and see it sent, open its
//! detail and ask WeChat, upload a bad and then a good campaign and watch
//! it finish, switch to Chinese, and fit a phone's screen. Screenshots go
//! to `target/tmp/console/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them); without them the test says so and passes without running,
//! except in CI (`CI` set), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{free_port, missing, served_address};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The WebDriver name of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Kills its process when dropped, whatever happened.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills its process and every process of its group when dropped:
/// chromedriver, and the Chromium it started (which would outlive a
/// chromedriver killed alone).
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// A WebDriver session.
struct Browser {
    http: reqwest::Client,
    session: String,
    shots: PathBuf,
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = answer["value"].get("error") {
            panic!("WebDriver {path}: {error} {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` in the page (`arguments` as given) and returns its value.
    async fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits (bounded) until `script` returns something truthy; returns it.
    async fn until(&self, what: &str, script: &str, args: Value) -> Value {
        for _ in 0..150 {
            let value = self.js(script, args.clone()).await;
            if !(value.is_null() || value == false || value == "") {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.shot("timeout").await;
        panic!("timed out waiting for {what}");
    }

    /// Waits (bounded) until the transfer detail shows `status`.
    async fn transfer_status(&self, status: &str) {
        self.until(
            &format!("the transfer to be {status}"),
            "return document.querySelector(`#transfer-status[data-status=\"${arguments[0]}\"]`) !== null",
            json!([status]),
        )
        .await;
    }

    async fn find(&self, css: &str) -> String {
        self.until(
            css,
            "return document.querySelector(arguments[0]) !== null",
            json!([css]),
        )
        .await;
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {found}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Replaces the value of an input with `text` (typed as a user would).
    async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Fills the campaign form with `name` and the file at `path` (the
    /// browser reads it from disk, as a file chooser would), and submits.
    async fn upload_campaign(&self, name: &str, path: &Path) {
        self.fill("#campaign-name", name).await;
        let file = self.find("#campaign-file").await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{file}/value"),
            Some(json!({ "text": path.to_str().unwrap() })),
        )
        .await;
        self.click("#campaign-submit").await;
    }

    async fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn shot(&self, name: &str) {
        use base64::Engine;
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn window(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }
}

/// `GET base + path` with the API key, as JSON.
async fn api_get(http: &reqwest::Client, base: &str, key: &str, path: &str) -> Value {
    http.get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Starts `hongbao serve` with no configuration (sandbox mode) in `dir`;
/// returns the process, the console's address and the printed API key.
async fn serve_in_sandbox_mode(dir: &Path) -> (Process, String, String) {
    let log = dir.join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .arg("serve")
        .env_remove("HONGBAO_CONFIG")
        .env("HONGBAO_SERVER__LISTEN", "127.0.0.1:0")
        .current_dir(dir)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    for _ in 0..300 {
        let printed = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(key) = printed
            .lines()
            .find_map(|l| l.trim().strip_prefix("API key"))
            .map(|k| k.trim().to_owned())
            && let Some(base) = served_address(&log)
        {
            return (process, base, key);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "hongbao serve printed no API key: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

async fn start_browser(http: &reqwest::Client, shots: PathBuf) -> (Group, Browser) {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let driver = Group(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let capabilities = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
            ]
        }
    }}});
    for _ in 0..100 {
        if let Ok(response) = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
        {
            let answer: Value = response.json().await.unwrap();
            let id = answer["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no WebDriver session: {answer}"));
            let browser = Browser {
                http: http.clone(),
                session: format!("{base}/session/{id}"),
                shots,
            };
            return (driver, browser);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

/// What a console test starts with: `hongbao serve` in sandbox mode, where
/// the screenshots go, and an HTTP client.
struct Console {
    dir: tempfile::TempDir,
    shots: PathBuf,
    serve: Process,
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Console {
    /// `None` (said, and failing under CI) without Chromium.
    async fn start() -> Option<Console> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            missing(
                &format!("{CHROMIUM} and {CHROMEDRIVER}"),
                "apt-get install chromium chromium-driver",
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console");
        std::fs::create_dir_all(&shots).unwrap();
        let (serve, base, key) = serve_in_sandbox_mode(dir.path()).await;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                hongbao_wxpay::transport::tls_client_config(None, &[]).unwrap(),
            )
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Some(Console {
            dir,
            shots,
            serve,
            base,
            key,
            http,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_sends_watches_and_uploads_in_a_real_browser() {
    let Some(Console {
        dir,
        shots,
        serve: _serve,
        base,
        key,
        http,
    }) = Console::start().await
    else {
        return;
    };
    let (_driver, browser) = start_browser(&http, shots.clone()).await;

    // A wrong key is refused, and the page says so.
    browser.go(&format!("{base}/console")).await;
    browser.fill("#api-key", "hb_sandbox_not-the-key").await;
    browser.click("#sign-in").await;
    let refused = browser
        .until(
            "the refusal",
            "const e = document.querySelector('#sign-in-error'); return e && e.innerText.trim()",
            json!([]),
        )
        .await;
    assert!(!refused.as_str().unwrap().is_empty());
    assert!(
        browser.text("#nav-payouts").await.is_empty(),
        "signed in with a wrong key"
    );
    browser.shot("01-wrong-key").await;

    // The right key signs in; it is kept for the browser session only.
    browser.fill("#api-key", &key).await;
    browser.click("#sign-in").await;
    browser.find("#nav-payouts").await;
    let kept = browser
        .js(
            "return [sessionStorage.length > 0, JSON.stringify(localStorage).includes(arguments[0]), location.href.includes(arguments[0])]",
            json!([key]),
        )
        .await;
    assert_eq!(kept, json!([true, false, false]), "where the key is kept");
    browser.find("#chart-svg").await;
    browser.shot("02-overview").await;

    // Send a red packet from the form; it shows up sent, with its attempt.
    // The texts are left empty (placeholders only): the body carries none,
    // and the merchant's defaults apply.
    browser.click("#nav-payouts").await;
    browser
        .fill("#send-openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
        .await;
    browser.fill("#send-amount", "1.88").await;
    let texts = browser
        .js(
            "return ['#send-wishing', '#send-act-name', '#send-remark'].map(c => { const e = document.querySelector(c); return [e.value, e.placeholder !== ''] })",
            json!([]),
        )
        .await;
    assert_eq!(
        texts,
        json!([["", true], ["", true], ["", true]]),
        "the texts start empty, with placeholders"
    );
    browser
        .js(
            "window.sentBodies = []; const send = window.fetch; window.fetch = (url, options) => { if (options && options.body && String(url).includes('/v1/redpacks')) window.sentBodies.push(String(options.body)); return send(url, options); }; return true",
            json!([]),
        )
        .await;
    browser.click("#send-submit").await;
    let status = browser
        .until(
            "the payout to be sent",
            "const e = document.querySelector('#detail-status'); const s = e && e.getAttribute('data-status'); return ['sent', 'received'].includes(s) && s",
            json!([]),
        )
        .await;
    println!("payout {status}");
    let id = browser
        .js("return location.hash.split('/').pop()", json!([]))
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("rp_"), "{id}");
    let record = api_get(&http, &base, &key, &format!("/v1/redpacks/{id}")).await;
    assert_eq!(record["total_amount"], 188, "{record}");
    let sent = browser.js("return window.sentBodies", json!([])).await;
    let sent: Value = serde_json::from_str(sent[0].as_str().unwrap()).unwrap();
    for text in ["wishing", "act_name", "remark"] {
        assert!(sent.get(text).is_none(), "the form sent {text}: {sent}");
    }
    // The sandbox merchant's configured texts.
    assert_eq!(
        (&record["wishing"], &record["act_name"], &record["remark"]),
        (&json!("恭喜发财"), &json!("sandbox"), &json!("sandbox")),
        "{record}"
    );
    assert!(
        browser
            .text("#attempts-table")
            .await
            .contains("sendredpack")
    );
    browser.click("#refresh-wechat").await;
    browser
        .until(
            "WeChat's status",
            "const e = document.querySelector('#wechat-status'); return e && /SENT|RECEIVED/.test(e.innerText)",
            json!([]),
        )
        .await;
    browser.shot("03-payout-detail").await;

    // The table lists it with its status.
    browser.click("#nav-payouts").await;
    browser
        .until(
            "the payout in the table",
            "const r = document.querySelector(`#payouts-table tr[data-id=\"${arguments[0]}\"] .status`); return r && ['sent', 'received'].includes(r.getAttribute('data-status'))",
            json!([id]),
        )
        .await;
    browser.shot("04-payouts").await;

    // A campaign file with bad rows: each reported with its line, nothing stored.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "openid,amount\noE2eConsole00000000000000001,1.00\nnot-an-openid,1.00\noE2eConsole00000000000000002,0.10\noE2eConsole00000000000000001,1.00\n",
    )
    .unwrap();
    browser.click("#nav-campaigns").await;
    browser.upload_campaign("console-e2e", &bad).await;
    let lines = browser
        .until(
            "the bad rows",
            "const rows = [...document.querySelectorAll('#campaign-errors tr.bad-row')]; return rows.length >= 3 && rows.map(r => r.getAttribute('data-line'))",
            json!([]),
        )
        .await;
    assert_eq!(lines, json!(["3", "4", "5"]), "bad rows by line");
    // The repeated openid names the form's checkbox, not a command's flag.
    let repeat = browser
        .text("#campaign-errors tr.bad-row[data-line=\"5\"]")
        .await;
    assert!(
        repeat.contains("Allow an openid on several rows")
            && !repeat.contains("allow-repeat")
            && !repeat.contains("allow_repeat"),
        "{repeat}"
    );
    browser.shot("05-campaign-bad-rows").await;

    // The good file runs to the end.
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "openid,amount\noE2eConsole00000000000000001,1.00\noE2eConsole00000000000000002,1.20\noE2eConsole00000000000000003,2.00\n",
    )
    .unwrap();
    browser.go(&format!("{base}/console#/campaigns")).await;
    browser.upload_campaign("console-e2e", &good).await;
    browser
        .until(
            "the campaign to finish",
            "const e = document.querySelector('#campaign-status'); return e && e.getAttribute('data-status') === 'done'",
            json!([]),
        )
        .await;
    browser.shot("06-campaign-done").await;

    // The overview's figures: one payout and three campaign rows, today.
    let stats = api_get(&http, &base, &key, "/v1/stats?bucket=hour").await;
    assert_eq!(stats["today"]["count"], 4, "{stats}");
    assert_eq!(stats["today"]["amount"], 188 + 100 + 120 + 200, "{stats}");
    assert_eq!(
        stats["month"]["amount"], stats["today"]["amount"],
        "{stats}"
    );
    let series = stats["series"].as_array().unwrap();
    assert_eq!(series.len(), 48);
    let charted: u64 = series.iter().map(|b| b["amount"].as_u64().unwrap()).sum();
    assert_eq!(charted, 608, "{stats}");

    // In Chinese, and at a phone's width.
    browser.click("#lang-toggle").await;
    browser
        .until(
            "Chinese labels",
            "return /[\\u4e00-\\u9fff]/.test(document.querySelector('#nav-payouts').innerText)",
            json!([]),
        )
        .await;
    browser.window(390, 844).await;
    browser.click("#nav-overview").await;
    browser.find("#chart-svg").await;
    let overflow = browser
        .js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            json!([]),
        )
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page scrolls sideways at phone width by {overflow}px"
    );
    browser.shot("07-phone-chinese").await;
    println!("screenshots in {}", shots.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_walks_a_transfer_through_the_sandbox_confirm_page() {
    let Some(Console {
        dir: _dir,
        shots,
        serve: _serve,
        base,
        key,
        http,
    }) = Console::start().await
    else {
        return;
    };

    // A transfer made through the API, awaiting its user.
    let response = http
        .post(format!("{base}/v1/transfers?wait=10"))
        .bearer_auth(&key)
        .json(&json!({"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "transfer_amount": 100}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let record: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{record}");
    let id = record["id"].as_str().unwrap().to_owned();

    let (_driver, browser) = start_browser(&http, shots.clone()).await;
    browser.go(&format!("{base}/console")).await;
    browser.fill("#api-key", &key).await;
    browser.click("#sign-in").await;
    browser.click("#nav-transfers").await;
    browser
        .click(&format!("#transfers-table tr[data-id=\"{id}\"]"))
        .await;
    browser.transfer_status("awaiting_confirmation").await;

    // The play-the-user link opens the sandbox's confirm page for this bill.
    let link = browser
        .until(
            "the play-the-user link",
            "const a = document.querySelector('#play-user-confirm'); return a && !a.hidden && a.getAttribute('href') && [a.getAttribute('href'), a.getAttribute('target')]",
            json!([])
        )
        .await;
    assert_eq!(link[1], "_blank", "{link}");
    let href = link[0].as_str().unwrap().to_owned();
    let (admin, package) = href
        .split_once("/confirm?package=")
        .unwrap_or_else(|| panic!("not the sandbox's confirm page: {href}"));
    assert!(admin.starts_with("http://127.0.0.1:"), "{href}");
    assert!(!package.is_empty(), "{href}");
    browser.shot("transfer-01-awaiting").await;

    // The user confirms on the sandbox's page.
    browser.go(&href).await;
    let submit = "form[action=\"/confirm\"] button[type=\"submit\"]";
    let label = browser
        .until(
            "the 确认收款 button",
            "const b = document.querySelector(arguments[0]); return b && b.innerText.trim()",
            json!([submit]),
        )
        .await;
    assert_eq!(label, "确认收款");
    browser.click(submit).await;
    browser
        .until(
            "the sandbox to take the confirmation",
            "return document.body.innerText.includes('已确认收款')",
            json!([]),
        )
        .await;
    browser.shot("transfer-02-confirmed").await;

    // Back in the console, the callback settles it: paid, and no more link.
    browser.go(&format!("{base}/console#/transfers/{id}")).await;
    browser.transfer_status("succeeded").await;
    let hidden = browser
        .js(
            "return document.querySelector('#play-user-confirm').hidden",
            json!([]),
        )
        .await;
    assert_eq!(hidden, true, "a link to confirm a paid bill");
    browser.shot("transfer-03-succeeded").await;
    let settled = api_get(&http, &base, &key, &format!("/v1/transfers/{id}")).await;
    assert_eq!(settled["status"], "succeeded", "{settled}");
    assert_eq!(settled["wechat_state"], "SUCCESS", "{settled}");
    let bill = api_get(
        &http,
        admin,
        &key,
        &format!("/transfers/{}", record["out_bill_no"].as_str().unwrap()),
    )
    .await;
    assert_eq!(bill["paid"], true, "{bill}");
    println!("screenshots in {}", shots.display());
}
