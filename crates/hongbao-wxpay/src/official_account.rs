//! The official account's API, for the follow check: `access_token` and
//! user info (`subscribe`).
//!
//! The token is fetched once, cached until shortly before it expires, and
//! refreshed by one caller at a time; an "invalid credential" answer
//! refreshes it once (only if nobody refreshed it meanwhile) and retries.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::transport::{TransportBuildError, error_chain, tls_client_config};
use crate::{AppId, OpenId};

/// The official account API's host.
pub const DEFAULT_OA_BASE: &str = "https://api.weixin.qq.com";

/// errcodes meaning the token is not (or no longer) valid.
const INVALID_TOKEN_CODES: [i64; 3] = [40001, 40014, 42001];

/// How to reach the official account API.
#[derive(Clone)]
pub struct OfficialAccountConfig {
    /// The API host ([`DEFAULT_OA_BASE`] or a sandbox's).
    pub base_url: String,
    /// The official account's appid.
    pub appid: AppId,
    /// Its app secret (AppSecret).
    pub secret: SecretString,
    /// CAs to trust besides the system's.
    pub extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// A token is refreshed this long before WeChat says it expires.
    pub refresh_margin: Duration,
    /// Timeout of each call.
    pub timeout: Duration,
}

impl fmt::Debug for OfficialAccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfficialAccountConfig")
            .field("base_url", &self.base_url)
            .field("appid", &self.appid)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl OfficialAccountConfig {
    /// WeChat's host, a 5-minute refresh margin, 10 s per call.
    pub fn new(appid: AppId, secret: SecretString) -> Self {
        Self {
            base_url: DEFAULT_OA_BASE.into(),
            appid,
            secret,
            extra_roots: Vec::new(),
            refresh_margin: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

/// An error of the official account API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfficialAccountError {
    /// The call failed (network, TLS, timeout).
    #[error("official account API unreachable: {0}")]
    Http(String),
    /// WeChat answered with an `errcode`.
    #[error("official account API error {errcode}: {errmsg}")]
    Api {
        /// WeChat's code (e.g. 40013 invalid appid, 40125 invalid secret).
        errcode: i64,
        /// WeChat's text.
        errmsg: String,
    },
    /// The answer was not the expected JSON.
    #[error("official account API answered something unreadable: {0}")]
    Unreadable(String),
}

/// An access token (a credential: never shown in `Debug`).
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    /// Counts refreshes, so that a token found invalid is only replaced if
    /// it is still the cached one.
    generation: u64,
}

impl AccessToken {
    /// The token, to put in a request.
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessToken(<redacted>, generation {})", self.generation)
    }
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// What `user/info` says of a user.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    /// The user.
    pub openid: String,
    /// Whether the user follows the official account (`subscribe` = 1).
    #[serde(deserialize_with = "bool_from_int")]
    pub subscribe: bool,
    /// When they followed (unix seconds), if they do.
    #[serde(default)]
    pub subscribe_time: Option<i64>,
    /// Their unionid, if the account is bound to an open platform account.
    #[serde(default)]
    pub unionid: Option<String>,
}

fn bool_from_int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(i64::deserialize(d)? == 1)
}

#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

/// A client of one official account's API.
pub struct OfficialAccount {
    http: reqwest::Client,
    config: OfficialAccountConfig,
    /// Held while a token is fetched, so that one caller refreshes and the
    /// others wait for its result.
    cache: Mutex<Option<Cached>>,
    /// Refreshes so far; the generation of the next token.
    refreshes: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for OfficialAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfficialAccount")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OfficialAccount {
    /// Builds the client.
    pub fn new(config: OfficialAccountConfig) -> Result<Self, TransportBuildError> {
        let tls = tls_client_config(None, &config.extra_roots)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .retry(reqwest::retry::never())
            .no_proxy()
            .build()
            .map_err(|e| TransportBuildError::Http(error_chain(&e.without_url())))?;
        Ok(Self {
            http,
            config,
            cache: Mutex::new(None),
            refreshes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many tokens have been fetched so far.
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A valid access token: the cached one, or a fresh one if it is about
    /// to expire. Concurrent callers share one fetch.
    pub async fn access_token(&self) -> Result<AccessToken, OfficialAccountError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch_token().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// Drops `stale` from the cache if it is still the cached token, so
    /// that the next [`OfficialAccount::access_token`] fetches a new one.
    pub async fn invalidate(&self, stale: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.generation == stale.generation)
        {
            *cache = None;
        }
    }

    async fn fetch_token(&self) -> Result<Cached, OfficialAccountError> {
        let url = format!(
            "{}/cgi-bin/token",
            self.config.base_url.trim_end_matches('/')
        );
        let answer = self
            .http
            .get(url)
            .query(&[
                ("grant_type", "client_credential"),
                ("appid", self.config.appid.as_str()),
                ("secret", self.config.secret.expose_secret()),
            ])
            .send()
            .await;
        let body = read_body(answer).await?;
        let token: TokenAnswer = match serde_json::from_slice(&body) {
            Ok(token) => token,
            Err(_) => return Err(api_error(&body)),
        };
        let generation = self
            .refreshes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        // Refreshed `refresh_margin` early, or halfway through a short-lived token.
        let expires_in = Duration::from_secs(token.expires_in);
        let lifetime = expires_in - self.config.refresh_margin.min(expires_in / 2);
        Ok(Cached {
            token: AccessToken {
                value: SecretString::from(token.access_token),
                generation,
            },
            refresh_at: Instant::now() + lifetime,
        })
    }

    /// `cgi-bin/user/info` for `openid`: whether they follow the account.
    pub async fn user_info(&self, openid: &OpenId) -> Result<UserInfo, OfficialAccountError> {
        let mut token = self.access_token().await?;
        let mut refreshed = false;
        loop {
            let url = format!(
                "{}/cgi-bin/user/info",
                self.config.base_url.trim_end_matches('/')
            );
            let answer = self
                .http
                .get(url)
                .query(&[
                    ("access_token", token.expose()),
                    ("openid", openid.as_str()),
                    ("lang", "zh_CN"),
                ])
                .send()
                .await;
            let body = read_body(answer).await?;
            if let Ok(info) = serde_json::from_slice::<UserInfo>(&body) {
                return Ok(info);
            }
            match api_error(&body) {
                OfficialAccountError::Api { errcode, .. }
                    if INVALID_TOKEN_CODES.contains(&errcode) && !refreshed =>
                {
                    // Expired or revoked early (another system fetched a new
                    // token, which invalidates ours): refresh once.
                    self.invalidate(&token).await;
                    token = self.access_token().await?;
                    refreshed = true;
                }
                other => return Err(other),
            }
        }
    }

    /// Whether `openid` follows the official account.
    pub async fn is_follower(&self, openid: &OpenId) -> Result<bool, OfficialAccountError> {
        Ok(self.user_info(openid).await?.subscribe)
    }
}

async fn read_body(
    answer: Result<reqwest::Response, reqwest::Error>,
) -> Result<Vec<u8>, OfficialAccountError> {
    // URLs are left out of errors: they carry the secret or the token.
    let http = |e: reqwest::Error| OfficialAccountError::Http(error_chain(&e.without_url()));
    let response = answer.map_err(http)?;
    let status = response.status();
    let body = response.bytes().await.map_err(http)?;
    if !status.is_success() {
        return Err(OfficialAccountError::Http(format!(
            "HTTP status {}",
            status.as_u16()
        )));
    }
    Ok(body.to_vec())
}

fn api_error(body: &[u8]) -> OfficialAccountError {
    match serde_json::from_slice::<ErrorAnswer>(body) {
        Ok(e) if e.errcode != 0 => OfficialAccountError::Api {
            errcode: e.errcode,
            errmsg: e.errmsg,
        },
        _ => OfficialAccountError::Unreadable(
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    }
}
