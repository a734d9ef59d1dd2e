//! The official account's API: `cgi-bin/token` and `cgi-bin/user/info`
//! for the follow check.

use std::collections::HashMap;

use super::rules::well_formed_openid;
use super::{Simulator, bump};

impl Simulator {
    /// `cgi-bin/token`.
    pub fn token(&mut self, query: &HashMap<String, String>) -> serde_json::Value {
        bump(&mut self.counters.requests, "token");
        let get = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
        if get("grant_type") != "client_credential" {
            return serde_json::json!({"errcode": 40002, "errmsg": "invalid grant_type"});
        }
        if get("appid") != self.secrets.appid {
            return serde_json::json!({"errcode": 40013, "errmsg": "invalid appid"});
        }
        if get("secret") != self.secrets.app_secret {
            return serde_json::json!({"errcode": 40125, "errmsg": "invalid appsecret"});
        }
        let now = self.now();
        // A new token leaves the previous ones valid for five more minutes, as WeChat does.
        let grace = now + time::Duration::minutes(5);
        for expiry in self.tokens.values_mut() {
            *expiry = (*expiry).min(grace);
        }
        self.tokens.retain(|_, expiry| *expiry > now);
        let token = self.random_hex(64);
        let ttl = self.rules.token_ttl_seconds.max(1);
        self.tokens
            .insert(token.clone(), now + time::Duration::seconds(i64::from(ttl)));
        serde_json::json!({"access_token": token, "expires_in": ttl})
    }

    /// `cgi-bin/user/info`.
    pub fn user_info(&mut self, query: &HashMap<String, String>) -> serde_json::Value {
        bump(&mut self.counters.requests, "user_info");
        let token = query
            .get("access_token")
            .map(String::as_str)
            .unwrap_or_default();
        let now = self.now();
        match self.tokens.get(token) {
            None => {
                return serde_json::json!({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"});
            }
            Some(expiry) if *expiry <= now => {
                return serde_json::json!({"errcode": 42001, "errmsg": "access_token expired"});
            }
            Some(_) => {}
        }
        let openid = query.get("openid").map(String::as_str).unwrap_or_default();
        if !well_formed_openid(openid) || self.foreign.contains(openid) {
            return serde_json::json!({"errcode": 40003, "errmsg": "invalid openid"});
        }
        if self.followers.follows(openid) {
            serde_json::json!({
                "subscribe": 1, "openid": openid, "nickname": "沙盒用户", "sex": 0, "language": "zh_CN",
                "subscribe_time": (now - time::Duration::days(30)).unix_timestamp(),
                "subscribe_scene": "ADD_SCENE_QR_CODE", "remark": "", "groupid": 0, "tagid_list": []
            })
        } else {
            serde_json::json!({"subscribe": 0, "openid": openid, "tagid_list": []})
        }
    }

    /// Makes every access token invalid (`40001` on the next use).
    pub fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }
}
