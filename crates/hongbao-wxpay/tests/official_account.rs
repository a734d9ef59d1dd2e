//! The official account client against a local server: one token fetch
//! for many callers, refresh on expiry, exactly one refresh on an
//! invalid-credential answer, and no secret in any error.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Answer, Seen};
use hongbao_wxpay::*;
use secrecy::SecretString;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const FOLLOWER: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const STRANGER: &str = "oxTWIuGaIt6gTKsQRLau2M0yL16E";

/// A fake of `cgi-bin/token` and `cgi-bin/user/info`.
#[derive(Default)]
struct Fake {
    fetches: AtomicUsize,
    /// The token the server accepts now.
    valid: Mutex<String>,
    expires_in: AtomicUsize,
    /// Refuse every token, valid or not.
    reject_all: AtomicBool,
}

impl Fake {
    fn handle(&self, seen: &Seen) -> Answer {
        let json = |v: serde_json::Value| Answer::Ok(v.to_string().into_bytes());
        match seen.path.as_str() {
            "/cgi-bin/token" => {
                if seen.query.get("secret").map(String::as_str) != Some(SECRET) {
                    return json(
                        serde_json::json!({"errcode": 40125, "errmsg": "invalid appsecret"}),
                    );
                }
                // Slow enough that concurrent callers overlap.
                std::thread::sleep(Duration::from_millis(50));
                let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                let token = format!("TOKEN{n}");
                *self.valid.lock().unwrap() = token.clone();
                json(
                    serde_json::json!({"access_token": token, "expires_in": self.expires_in.load(Ordering::SeqCst)}),
                )
            }
            "/cgi-bin/user/info" => {
                let token = seen.query.get("access_token").cloned().unwrap_or_default();
                if self.reject_all.load(Ordering::SeqCst) || token != *self.valid.lock().unwrap() {
                    return json(
                        serde_json::json!({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}),
                    );
                }
                let openid = seen.query.get("openid").cloned().unwrap_or_default();
                let subscribe = i32::from(openid == FOLLOWER);
                json(
                    serde_json::json!({"subscribe": subscribe, "openid": openid, "subscribe_time": 1_700_000_000}),
                )
            }
            _ => Answer::Status(404, Vec::new()),
        }
    }
}

async fn setup(
    expires_in: usize,
    margin: Duration,
) -> (Arc<Fake>, common::Server, Arc<OfficialAccount>) {
    let fake = Arc::new(Fake::default());
    fake.expires_in.store(expires_in, Ordering::SeqCst);
    let handler = fake.clone();
    let server = common::start(None, move |seen: &Seen| handler.handle(seen)).await;
    let mut config = OfficialAccountConfig::new(
        AppId::parse("wx8888888888888888").unwrap(),
        SecretString::from(SECRET),
    );
    config.base_url = server.base("http");
    config.refresh_margin = margin;
    (
        fake,
        server,
        Arc::new(OfficialAccount::new(config).unwrap()),
    )
}

fn openid(s: &str) -> OpenId {
    OpenId::parse(s).unwrap()
}

async fn many_lookups(
    oa: &Arc<OfficialAccount>,
    n: usize,
) -> Vec<Result<bool, OfficialAccountError>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let oa = oa.clone();
            tokio::spawn(async move { oa.is_follower(&openid(FOLLOWER)).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test]
async fn followers_and_strangers_are_told_apart() {
    let (_, _server, oa) = setup(7200, Duration::from_secs(300)).await;
    assert!(oa.is_follower(&openid(FOLLOWER)).await.unwrap());
    let info = oa.user_info(&openid(STRANGER)).await.unwrap();
    assert!(!info.subscribe);
    assert_eq!(info.openid, STRANGER);
}

#[tokio::test]
async fn many_concurrent_callers_share_one_token_fetch() {
    let (fake, _server, oa) = setup(7200, Duration::from_secs(300)).await;
    let results = many_lookups(&oa, 50).await;
    assert!(results.iter().all(|r| r == &Ok(true)), "{results:?}");
    assert_eq!(fake.fetches.load(Ordering::SeqCst), 1);
    assert_eq!(oa.refresh_count(), 1);
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_once() {
    // Expires in 2 s, refreshed 1 s early: stale after 1 s.
    let (fake, _server, oa) = setup(2, Duration::from_secs(1)).await;
    assert!(oa.is_follower(&openid(FOLLOWER)).await.unwrap());
    assert_eq!(fake.fetches.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let results = many_lookups(&oa, 20).await;
    assert!(results.iter().all(|r| r == &Ok(true)), "{results:?}");
    assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_invalid_credential_answer_leads_to_exactly_one_refresh() {
    let (fake, _server, oa) = setup(7200, Duration::from_secs(300)).await;
    assert!(oa.is_follower(&openid(FOLLOWER)).await.unwrap());
    // Another system fetched a token: ours is no longer the latest.
    *fake.valid.lock().unwrap() = "SOMEONE_ELSES".into();
    let results = many_lookups(&oa, 30).await;
    assert!(results.iter().all(|r| r == &Ok(true)), "{results:?}");
    assert_eq!(
        fake.fetches.load(Ordering::SeqCst),
        2,
        "one initial fetch, one refresh"
    );
}

#[tokio::test]
async fn a_token_refused_again_after_refresh_is_an_error_not_a_loop() {
    let (fake, server, oa) = setup(7200, Duration::from_secs(300)).await;
    fake.reject_all.store(true, Ordering::SeqCst);
    let err = oa.is_follower(&openid(FOLLOWER)).await.unwrap_err();
    assert!(
        matches!(err, OfficialAccountError::Api { errcode: 40001, .. }),
        "{err:?}"
    );
    assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(server.requests(), 4, "token, info, token, info");
}

#[tokio::test]
async fn no_secret_or_token_appears_in_errors_or_debug() {
    let (fake, server, oa) = setup(7200, Duration::from_secs(300)).await;
    oa.is_follower(&openid(FOLLOWER)).await.unwrap();
    let token = oa.access_token().await.unwrap();
    let token_value = fake.valid.lock().unwrap().clone();
    assert_eq!(token.expose(), token_value);

    // The token URL carries the secret in its query: a failed fetch must not show it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = OfficialAccountConfig::new(
        AppId::parse("wx8888888888888888").unwrap(),
        SecretString::from(SECRET),
    );
    config.base_url = format!("http://{closed}");
    let unreachable = OfficialAccount::new(config.clone()).unwrap();
    let err = unreachable.access_token().await.unwrap_err();
    assert!(matches!(err, OfficialAccountError::Http(_)), "{err:?}");

    let text = format!("{err} {err:?} {oa:?} {unreachable:?} {config:?} {token:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains(&token_value), "{text}");

    let mut wrong = OfficialAccountConfig::new(
        AppId::parse("wx8888888888888888").unwrap(),
        SecretString::from("wrong"),
    );
    wrong.base_url = server.base("http");
    let err = OfficialAccount::new(wrong)
        .unwrap()
        .access_token()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        OfficialAccountError::Api {
            errcode: 40125,
            errmsg: "invalid appsecret".into()
        }
    );
}
