//! A merchant's section resolved: its identity, secrets (a value, a file
//! or an environment variable), certificate, texts, service-provider
//! fields and APIv3 settings, every problem named by its key.

use std::path::PathBuf;

use figment::value::magic::RelativePathBuf;
use hongbao_wxpay::v3::{ApiV3Key, PublicKeyId, TransferSceneId};
use hongbao_wxpay::{ApiKey, AppId, MchId, ServiceProvider};
use secrecy::SecretString;
use serde::Deserialize;

use super::{
    CertificateSource, DEFAULT_RATE_PER_MINUTE, MerchantConfig, Problems, Text, TextDefaults,
    V3Config, lenient_u32, relative,
};

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawMerchant {
    mch_id: Option<Text>,
    appid: Option<Text>,
    api_key: Option<Text>,
    api_key_file: Option<RelativePathBuf>,
    api_key_env: Option<Text>,
    cert: Option<RelativePathBuf>,
    key: Option<RelativePathBuf>,
    p12: Option<RelativePathBuf>,
    p12_password: Option<Text>,
    p12_password_file: Option<RelativePathBuf>,
    p12_password_env: Option<Text>,
    api_base: Option<Text>,
    root_ca: Option<RelativePathBuf>,
    #[serde(default, deserialize_with = "lenient_u32")]
    rate_per_minute: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    timeout_seconds: Option<u32>,
    send_name: Option<Text>,
    client_ip: Option<Text>,
    wishing: Option<Text>,
    act_name: Option<Text>,
    remark: Option<Text>,
    sub_mch_id: Option<Text>,
    msgappid: Option<Text>,
    consume_mch_id: Option<Text>,
    app_secret: Option<Text>,
    app_secret_file: Option<RelativePathBuf>,
    app_secret_env: Option<Text>,
    oa_base: Option<Text>,
    miniprogram_appid: Option<Text>,
    // APIv3 transfers (商家转账).
    apiv3_key: Option<Text>,
    apiv3_key_file: Option<RelativePathBuf>,
    apiv3_key_env: Option<Text>,
    wechatpay_public_key: Option<RelativePathBuf>,
    wechatpay_public_key_id: Option<Text>,
    platform_certs: Option<Vec<RelativePathBuf>>,
    v3_base: Option<Text>,
    notify_url: Option<Text>,
    transfer_scene_id: Option<Text>,
    transfer_remark: Option<Text>,
    activity_name: Option<Text>,
    reward_description: Option<Text>,
}

/// Reads a secret given as a value, a file or an environment variable.
fn secret(
    problems: &mut Problems,
    key: &str,
    value: Option<Text>,
    file: Option<&RelativePathBuf>,
    env: Option<Text>,
) -> Option<String> {
    let given =
        usize::from(value.is_some()) + usize::from(file.is_some()) + usize::from(env.is_some());
    if given > 1 {
        problems.add(
            key,
            format!("give only one of {key}, {key}_file and {key}_env"),
        );
        return None;
    }
    if let Some(Text(v)) = value {
        return Some(v);
    }
    if let Some(file) = file {
        let path = relative(file);
        return match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().to_owned()),
            Err(e) => {
                problems.add(
                    format!("{key}_file"),
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        };
    }
    if let Some(Text(var)) = env {
        return match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Some(v.trim().to_owned()),
            _ => {
                problems.add(
                    format!("{key}_env"),
                    format!("the environment variable {var} is not set"),
                );
                None
            }
        };
    }
    None
}

pub(super) fn resolve_merchant(
    name: &str,
    raw: RawMerchant,
    problems: &mut Problems,
) -> Option<MerchantConfig> {
    let key = |k: &str| format!("merchants.{name}.{k}");
    let before = problems.list.len();

    let mch_id = match raw.mch_id {
        None => {
            problems.add(
                key("mch_id"),
                "is required: the merchant id (商户号) from the merchant platform",
            );
            None
        }
        Some(Text(v)) => MchId::parse(v.trim())
            .map_err(|e| problems.add(key("mch_id"), e.message))
            .ok(),
    };
    let appid = match raw.appid {
        None => {
            problems.add(
                key("appid"),
                "is required: the official account's appid (wx…) bound to the merchant",
            );
            None
        }
        Some(Text(v)) => AppId::parse(v.trim())
            .map_err(|e| problems.add(key("appid"), e.message))
            .ok(),
    };
    let v3_given = raw.apiv3_key.is_some()
        || raw.apiv3_key_file.is_some()
        || raw.apiv3_key_env.is_some()
        || raw.wechatpay_public_key.is_some()
        || raw.platform_certs.is_some();
    let api_key = match secret(
        problems,
        &key("api_key"),
        raw.api_key,
        raw.api_key_file.as_ref(),
        raw.api_key_env,
    ) {
        None if problems
            .list
            .iter()
            .any(|p| p.key.starts_with(&key("api_key"))) =>
        {
            None
        }
        // A merchant with the APIv3 keys alone pays by transfer alone.
        None if v3_given => None,
        None => {
            problems.add(key("api_key"), "is required: set api_key, api_key_file or api_key_env to the 32-character v2 API key (API密钥), or give the APIv3 keys (apiv3_key, wechatpay_public_key) to pay by transfer alone");
            None
        }
        Some(v) => ApiKey::parse(&v)
            .map_err(|e| {
                problems.add(
                    key("api_key"),
                    format!(
                        "{} (given through api_key, api_key_file or api_key_env)",
                        e.message
                    ),
                )
            })
            .ok(),
    };
    let certificate = match (raw.cert.as_ref(), raw.key.as_ref(), raw.p12.as_ref()) {
        (Some(cert), Some(k), None) => Some(CertificateSource::Pem {
            cert: relative(cert),
            key: relative(k),
        }),
        (None, None, Some(p12)) => {
            let password = secret(
                problems,
                &key("p12_password"),
                raw.p12_password,
                raw.p12_password_file.as_ref(),
                raw.p12_password_env,
            )
            .or_else(|| mch_id.as_ref().map(|m| m.as_str().to_owned()));
            password.map(|password| CertificateSource::Pkcs12 {
                path: relative(p12),
                password: SecretString::from(password),
            })
        }
        (Some(_), None, None) => {
            problems.add(
                key("key"),
                "is required with cert: the path of apiclient_key.pem",
            );
            None
        }
        (None, Some(_), None) => {
            problems.add(
                key("cert"),
                "is required with key: the path of apiclient_cert.pem",
            );
            None
        }
        (None, None, None) => {
            problems.add(
                key("cert"),
                "the API certificate is required: set cert and key (apiclient_cert.pem, apiclient_key.pem) or p12 (apiclient_cert.p12)",
            );
            None
        }
        _ => {
            problems.add(key("p12"), "give either cert + key or p12, not both");
            None
        }
    };
    let api_base = raw.api_base.map_or_else(
        || hongbao_wxpay::DEFAULT_API_BASE.to_owned(),
        |Text(v)| v.trim_end_matches('/').to_owned(),
    );
    if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
        problems.add(
            key("api_base"),
            format!("{api_base:?} must start with https://"),
        );
    }
    let rate_per_minute = raw.rate_per_minute.unwrap_or(DEFAULT_RATE_PER_MINUTE);
    if rate_per_minute == 0 {
        problems.add(
            key("rate_per_minute"),
            "must be at least 1 (WeChat's default quota is 1800)",
        );
    }
    let timeout_seconds = raw.timeout_seconds.unwrap_or(15);
    if timeout_seconds == 0 {
        problems.add(key("timeout_seconds"), "must be at least 1");
    }
    let text = |v: Option<Text>| v.map(|Text(t)| t);
    let defaults = TextDefaults {
        send_name: text(raw.send_name),
        client_ip: text(raw.client_ip),
        wishing: text(raw.wishing),
        act_name: text(raw.act_name),
        remark: text(raw.remark),
    };
    if let Some(ip) = &defaults.client_ip
        && let Err(e) = hongbao_wxpay::request::check_client_ip(ip)
    {
        problems.add(key("client_ip"), e.message);
    }
    let parse_mch = |v: Option<Text>, k: &str, problems: &mut Problems| {
        v.and_then(|Text(v)| {
            MchId::parse(v.trim())
                .map_err(|e| problems.add(key(k), e.message))
                .ok()
        })
    };
    let sub_mch_id = parse_mch(raw.sub_mch_id, "sub_mch_id", problems);
    let consume_mch_id = parse_mch(raw.consume_mch_id, "consume_mch_id", problems);
    let msgappid = raw.msgappid.and_then(|Text(v)| {
        AppId::parse(v.trim())
            .map_err(|e| problems.add(key("msgappid"), e.message))
            .ok()
    });
    let service_provider = match (sub_mch_id, msgappid) {
        (Some(sub_mch_id), Some(msgappid)) => Some(ServiceProvider {
            sub_mch_id,
            msgappid,
            consume_mch_id,
        }),
        (None, None) => {
            if consume_mch_id.is_some() {
                problems.add(
                    key("consume_mch_id"),
                    "only applies in service-provider mode (with sub_mch_id and msgappid)",
                );
            }
            None
        }
        (Some(_), None) => {
            problems.add(
                key("msgappid"),
                "is required with sub_mch_id (service-provider mode)",
            );
            None
        }
        (None, Some(_)) => {
            problems.add(
                key("sub_mch_id"),
                "is required with msgappid (service-provider mode)",
            );
            None
        }
    };
    let app_secret = secret(
        problems,
        &key("app_secret"),
        raw.app_secret,
        raw.app_secret_file.as_ref(),
        raw.app_secret_env,
    )
    .map(SecretString::from);
    let oa_base = raw.oa_base.map_or_else(
        || hongbao_wxpay::official_account::DEFAULT_OA_BASE.to_owned(),
        |Text(v)| v.trim_end_matches('/').to_owned(),
    );
    let miniprogram_appid = raw.miniprogram_appid.and_then(|Text(v)| {
        AppId::parse(v.trim())
            .map_err(|e| problems.add(key("miniprogram_appid"), e.message))
            .ok()
    });

    let raw_v3 = RawV3 {
        apiv3_key: raw.apiv3_key,
        apiv3_key_file: raw.apiv3_key_file,
        apiv3_key_env: raw.apiv3_key_env,
        wechatpay_public_key: raw.wechatpay_public_key,
        wechatpay_public_key_id: raw.wechatpay_public_key_id,
        platform_certs: raw.platform_certs,
        v3_base: raw.v3_base,
        notify_url: raw.notify_url,
        transfer_scene_id: raw.transfer_scene_id,
        transfer_remark: raw.transfer_remark,
        activity_name: raw.activity_name,
        reward_description: raw.reward_description,
    };
    let v3 = resolve_v3(&key, raw_v3, problems);

    if problems.list.len() > before {
        return None;
    }
    Some(MerchantConfig {
        name: name.to_owned(),
        mch_id: mch_id?,
        appid: appid?,
        api_key,
        certificate: certificate?,
        api_base,
        root_ca: raw.root_ca.as_ref().map(relative),
        rate_per_minute,
        timeout_seconds,
        defaults,
        service_provider,
        app_secret,
        oa_base,
        miniprogram_appid,
        v3,
    })
}

/// The APIv3 keys of a merchant, as given.
#[derive(Default)]
struct RawV3 {
    apiv3_key: Option<Text>,
    apiv3_key_file: Option<RelativePathBuf>,
    apiv3_key_env: Option<Text>,
    wechatpay_public_key: Option<RelativePathBuf>,
    wechatpay_public_key_id: Option<Text>,
    platform_certs: Option<Vec<RelativePathBuf>>,
    v3_base: Option<Text>,
    notify_url: Option<Text>,
    transfer_scene_id: Option<Text>,
    transfer_remark: Option<Text>,
    activity_name: Option<Text>,
    reward_description: Option<Text>,
}

impl RawV3 {
    fn is_empty(&self) -> bool {
        self.apiv3_key.is_none()
            && self.apiv3_key_file.is_none()
            && self.apiv3_key_env.is_none()
            && self.wechatpay_public_key.is_none()
            && self.wechatpay_public_key_id.is_none()
            && self.platform_certs.is_none()
            && self.v3_base.is_none()
            && self.notify_url.is_none()
            && self.transfer_scene_id.is_none()
            && self.transfer_remark.is_none()
            && self.activity_name.is_none()
            && self.reward_description.is_none()
    }
}

/// A text of at most `max` characters, without control characters or padding.
fn v3_text(problems: &mut Problems, key: &str, value: Option<Text>, max: usize) -> Option<String> {
    let Text(v) = value?;
    let n = v.chars().count();
    if v.is_empty() || n > max {
        problems.add(key, format!("must be 1 to {max} characters, not {n}"));
        return None;
    }
    if v.chars().any(char::is_control) || v.trim() != v {
        problems.add(
            key,
            "must not contain control characters or leading or trailing spaces",
        );
        return None;
    }
    Some(v)
}

fn resolve_v3(
    key: &dyn Fn(&str) -> String,
    raw: RawV3,
    problems: &mut Problems,
) -> Option<V3Config> {
    if raw.is_empty() {
        return None;
    }
    let before = problems.list.len();
    let apiv3_key = match secret(
        problems,
        &key("apiv3_key"),
        raw.apiv3_key,
        raw.apiv3_key_file.as_ref(),
        raw.apiv3_key_env,
    ) {
        Some(v) => ApiV3Key::parse(&v)
            .map_err(|e| {
                problems.add(
                    key("apiv3_key"),
                    format!(
                        "{} (given through apiv3_key, apiv3_key_file or apiv3_key_env)",
                        e.message
                    ),
                )
            })
            .ok(),
        None if problems.list.len() > before => None,
        None => {
            problems.add(
                key("apiv3_key"),
                "is required for transfers: set apiv3_key, apiv3_key_file or apiv3_key_env to the 32-character APIv3 key (APIv3密钥)",
            );
            None
        }
    };
    let public_key_id = raw.wechatpay_public_key_id.and_then(|Text(v)| {
        PublicKeyId::parse(v.trim())
            .map_err(|e| problems.add(key("wechatpay_public_key_id"), e.message))
            .ok()
    });
    let wechatpay_public_key = match (raw.wechatpay_public_key.as_ref(), public_key_id) {
        (Some(path), Some(id)) => Some((relative(path), id)),
        (Some(_), None) => {
            if !problems
                .list
                .iter()
                .any(|p| p.key == key("wechatpay_public_key_id"))
            {
                problems.add(
                    key("wechatpay_public_key_id"),
                    "is required with wechatpay_public_key: the PUB_KEY_ID_… shown next to the 微信支付公钥",
                );
            }
            None
        }
        (None, Some(_)) => {
            problems.add(
                key("wechatpay_public_key"),
                "is required with wechatpay_public_key_id: the path of the 微信支付公钥 (pub_key.pem)",
            );
            None
        }
        (None, None) => None,
    };
    let platform_certs: Vec<PathBuf> = raw
        .platform_certs
        .unwrap_or_default()
        .iter()
        .map(relative)
        .collect();
    if wechatpay_public_key.is_none()
        && platform_certs.is_empty()
        && !problems
            .list
            .iter()
            .any(|p| p.key.starts_with(&key("wechatpay_public_key")))
    {
        problems.add(
            key("wechatpay_public_key"),
            "is required for transfers: give wechatpay_public_key and wechatpay_public_key_id (the 微信支付公钥), or platform_certs",
        );
    }
    let v3_base = raw.v3_base.map_or_else(
        || hongbao_wxpay::DEFAULT_API_BASE.to_owned(),
        |Text(v)| v.trim_end_matches('/').to_owned(),
    );
    if !(v3_base.starts_with("https://") || v3_base.starts_with("http://")) {
        problems.add(
            key("v3_base"),
            format!("{v3_base:?} must start with https://"),
        );
    }
    let notify_url = raw.notify_url.and_then(|Text(v)| {
        hongbao_wxpay::v3::bill::check_notify_url(&v)
            .map_err(|e| problems.add(key("notify_url"), e.message))
            .ok()
            .map(|()| v)
    });
    let transfer_scene_id = match raw.transfer_scene_id {
        None => Some(TransferSceneId::cash_marketing()),
        Some(Text(v)) => TransferSceneId::parse(v.trim())
            .map_err(|e| problems.add(key("transfer_scene_id"), e.message))
            .ok(),
    };
    let transfer_remark = v3_text(problems, &key("transfer_remark"), raw.transfer_remark, 32);
    let activity_name = v3_text(problems, &key("activity_name"), raw.activity_name, 32);
    let reward_description = v3_text(
        problems,
        &key("reward_description"),
        raw.reward_description,
        32,
    );
    if problems.list.len() > before {
        return None;
    }
    Some(V3Config {
        apiv3_key: apiv3_key?,
        wechatpay_public_key,
        platform_certs,
        v3_base,
        notify_url,
        transfer_scene_id: transfer_scene_id?,
        transfer_remark,
        activity_name,
        reward_description,
    })
}
