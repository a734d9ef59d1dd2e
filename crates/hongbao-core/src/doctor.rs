//! `hongbao doctor`: checks a merchant's key, certificate and reachability
//! without moving money, and names the fix for each problem; with APIv3
//! keys, also the APIv3 key, WeChat's keys, the serial and a signed query.

use std::time::Duration;

use hongbao_wxpay::{
    CallError, ErrCode, GetHbInfo, MchBillNo, OfficialAccount, OfficialAccountConfig, QueryOutcome,
    classify_query,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use hongbao_wxpay::TransportConfig;
use hongbao_wxpay::v3::{
    HttpV3Transport, MerchantSigner, OutBillNo, TransferClient, TransferOutcome, V3Code,
    WechatPayKeys,
};

use crate::config::{MerchantConfig, V3Config};
use crate::merchant;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but needs attention soon.
    Warn,
    /// Broken: payouts would fail.
    Fail,
    /// Not run, because an earlier check failed.
    Skipped,
}

/// One check of one merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. "certificate".
    pub name: &'static str,
    /// The result.
    pub status: Status,
    /// What was found, and the fix when it is not a pass.
    pub message: String,
}

impl Check {
    fn new(name: &'static str, status: Status, message: impl Into<String>) -> Self {
        Self {
            name,
            status,
            message: message.into(),
        }
    }
}

/// What a certificate says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject, e.g. `C=CN, O=Tenpay.com, CN=1900000109`.
    pub subject: String,
    /// The subject's common name.
    pub common_name: Option<String>,
    /// Not valid before.
    pub not_before: OffsetDateTime,
    /// Not valid after.
    pub not_after: OffsetDateTime,
}

/// Reads a DER certificate's subject and validity.
pub fn certificate_info(der: &[u8]) -> Result<CertificateInfo, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        common_name,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
    })
}

/// The check of a certificate's dates and subject at `now`.
pub fn check_certificate(info: &CertificateInfo, mch_id: &str, now: OffsetDateTime) -> Check {
    let days_left = (info.not_after - now).whole_days();
    if now < info.not_before {
        return Check::new(
            "certificate",
            Status::Fail,
            format!(
                "not valid before {}; check the machine's clock",
                info.not_before.date()
            ),
        );
    }
    if now > info.not_after {
        return Check::new(
            "certificate",
            Status::Fail,
            format!(
                "expired on {}: download a new API certificate (商户平台 → 账户中心 → API安全 → API证书)",
                info.not_after.date()
            ),
        );
    }
    let subject_note = match &info.common_name {
        Some(cn) if cn.contains(mch_id) => String::new(),
        Some(cn) => format!(
            "; its subject CN is {cn:?}, not the mch_id {mch_id}: is this another merchant's certificate?"
        ),
        None => String::new(),
    };
    if days_left < 30 {
        return Check::new(
            "certificate",
            Status::Warn,
            format!(
                "expires in {days_left} days ({}): renew it on the merchant platform now{subject_note}",
                info.not_after.date()
            ),
        );
    }
    let status = if subject_note.is_empty() {
        Status::Pass
    } else {
        Status::Warn
    };
    Check::new(
        "certificate",
        status,
        format!(
            "valid until {} ({days_left} days){subject_note}",
            info.not_after.date()
        ),
    )
}

/// A mch_billno no real order can have: the `DOCTOR` prefix is not WeChat's
/// layout (which starts with the mch_id) and the rest is random.
fn probe_billno() -> MchBillNo {
    let nonce = hongbao_wxpay::nonce_str();
    MchBillNo::parse(&format!("DOCTOR{}", &nonce[..22])).expect("28 ASCII alphanumerics")
}

/// Runs every check of `merchant`, in order; a check that cannot run after
/// an earlier failure is skipped.
pub async fn check_merchant(merchant: &MerchantConfig) -> Vec<Check> {
    let mut checks = vec![match merchant.api_key {
        Some(_) => Check::new(
            "api key",
            Status::Pass,
            "32 ASCII letters and digits, as a v2 API key must be",
        ),
        None => Check::new(
            "api key",
            Status::Skipped,
            "none: this merchant pays by transfer alone (its APIv3 keys are checked below)",
        ),
    }];

    let identity = match merchant::identity(merchant) {
        Ok(identity) => {
            checks.push(Check::new(
                "certificate and key",
                Status::Pass,
                "parse, and the key belongs to the certificate",
            ));
            Some(identity)
        }
        Err(e) => {
            checks.push(Check::new(
                "certificate and key",
                Status::Fail,
                e.to_string(),
            ));
            None
        }
    };
    if let Some(identity) = &identity {
        match certificate_info(identity.certificate_der()) {
            Ok(info) => checks.push(check_certificate(
                &info,
                merchant.mch_id.as_str(),
                OffsetDateTime::now_utc(),
            )),
            Err(e) => checks.push(Check::new("certificate", Status::Fail, e)),
        }
    }

    if merchant.api_key.is_some() {
        check_v2(merchant, identity.is_some(), &mut checks).await;
    }
    if let Some(secret) = &merchant.app_secret {
        checks.push(check_app_secret(merchant, secret.clone()).await);
    }
    if let Some(v3) = &merchant.v3 {
        checks.extend(check_v3(merchant, v3, identity.as_ref()).await);
    }
    checks
}

/// The v2 connection, and a `gethbinfo` of an order that cannot exist.
async fn check_v2(merchant: &MerchantConfig, usable_identity: bool, checks: &mut Vec<Check>) {
    let client = match usable_identity.then(|| merchant::client(merchant)) {
        Some(Ok(client)) => client,
        Some(Err(e)) => {
            checks.push(Check::new("connection", Status::Fail, e.to_string()));
            None
        }
        None => None,
    };
    let Some(client) = client else {
        checks.push(Check::new(
            "connection",
            Status::Skipped,
            "needs a usable certificate",
        ));
        checks.push(Check::new(
            "key and certificate with WeChat",
            Status::Skipped,
            "needs a connection",
        ));
        return;
    };

    // A query of an order that cannot exist: NOT_FOUND proves that WeChat
    // accepted both the certificate (TLS) and the key (signature), and it
    // moves no money.
    let request = GetHbInfo {
        mch_billno: probe_billno(),
    };
    let prepared = match client.prepare(&request) {
        Ok(prepared) => prepared,
        Err(e) => {
            checks.push(Check::new("connection", Status::Fail, e.to_string()));
            return;
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(20), client.call(&prepared)).await;
    let (connection, remote) = match answer {
        Err(_) => (
            Check::new(
                "connection",
                Status::Fail,
                format!("{} did not answer within 20 s", merchant.api_base),
            ),
            None,
        ),
        Ok(Err(CallError::NotSent(detail))) => (
            Check::new(
                "connection",
                Status::Fail,
                format!(
                    "cannot reach {}: {detail}. Check the address, DNS and firewall, and root_ca for a sandbox or test server",
                    merchant.api_base
                ),
            ),
            None,
        ),
        Ok(result) => (
            Check::new(
                "connection",
                Status::Pass,
                format!("TLS handshake with {} succeeded", merchant.api_base),
            ),
            Some(remote_check(classify_query(&result))),
        ),
    };
    checks.push(connection);
    checks.push(remote.unwrap_or_else(|| {
        Check::new(
            "key and certificate with WeChat",
            Status::Skipped,
            "needs a connection",
        )
    }));
}

/// An `out_bill_no` no real bill can have: the `DOCTOR` prefix and the rest random.
fn probe_out_bill_no() -> OutBillNo {
    let nonce = hongbao_wxpay::nonce_str();
    OutBillNo::parse(&format!("DOCTOR{}", &nonce[..26])).expect("32 ASCII alphanumerics")
}

/// The APIv3 keys: the APIv3 key, WeChat's keys, the certificate's serial,
/// and a signed query of a bill that cannot exist.
pub async fn check_v3(
    merchant: &MerchantConfig,
    v3: &V3Config,
    identity: Option<&hongbao_wxpay::ClientIdentity>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    if merchant
        .api_key
        .as_ref()
        .is_some_and(|v2| v3.apiv3_key.is_the_v2_key(v2))
    {
        checks.push(Check::new(
            "APIv3 key",
            Status::Fail,
            "apiv3_key is the v2 API key (api_key): both are 32 characters, but the APIv3 key (APIv3密钥) is set separately on \
             商户平台 → 账户中心 → API安全 → 设置APIv3密钥; callbacks cannot be decrypted with the v2 key",
        ));
    } else {
        checks.push(Check::new(
            "APIv3 key",
            Status::Pass,
            "32 characters, and not the v2 API key",
        ));
    }

    let mut keys = WechatPayKeys::new();
    let mut keys_ok = true;
    if let Some((path, id)) = &v3.wechatpay_public_key {
        let loaded = std::fs::read(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|pem| {
                keys.clone()
                    .with_public_key(id, &pem)
                    .map_err(|e| e.to_string())
            });
        match loaded {
            Ok(with) => {
                keys = with;
                checks.push(Check::new(
                    "微信支付公钥",
                    Status::Pass,
                    format!("{id} ({}) is an RSA public key", path.display()),
                ));
            }
            Err(e) => {
                keys_ok = false;
                checks.push(Check::new(
                    "微信支付公钥",
                    Status::Fail,
                    format!("wechatpay_public_key: {e}"),
                ));
            }
        }
    }
    for path in &v3.platform_certs {
        let loaded = std::fs::read(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|pem| {
                keys.clone()
                    .with_platform_certificate(&pem)
                    .map_err(|e| e.to_string())
            });
        match loaded {
            Ok(with) => {
                keys = with;
                let (serial, source) = keys.serials().last().expect("just added");
                let (status, note) = match source {
                    hongbao_wxpay::v3::KeySource::PlatformCertificate { not_after }
                        if *not_after < OffsetDateTime::now_utc() =>
                    {
                        (
                            Status::Warn,
                            format!(
                                "expired on {}: WeChat no longer signs with it; switch to the 微信支付公钥",
                                not_after.date()
                            ),
                        )
                    }
                    hongbao_wxpay::v3::KeySource::PlatformCertificate { not_after } => {
                        (Status::Pass, format!("valid until {}", not_after.date()))
                    }
                    hongbao_wxpay::v3::KeySource::PublicKey => (Status::Pass, String::new()),
                };
                checks.push(Check::new(
                    "platform certificate",
                    status,
                    format!("{} (serial {serial}): {note}", path.display()),
                ));
            }
            Err(e) => {
                keys_ok = false;
                checks.push(Check::new(
                    "platform certificate",
                    Status::Fail,
                    format!("platform_certs {}: {e}", path.display()),
                ));
            }
        }
    }

    const REMOTE: &str = "transfer query with WeChat";
    let Some(identity) = identity else {
        checks.push(Check::new(
            REMOTE,
            Status::Skipped,
            "needs a usable certificate",
        ));
        return checks;
    };
    let signer = match MerchantSigner::from_identity(merchant.mch_id.clone(), identity) {
        Ok(signer) => {
            checks.push(Check::new(
                "certificate serial",
                Status::Pass,
                format!("requests name serial_no {}", signer.serial()),
            ));
            signer
        }
        Err(e) => {
            checks.push(Check::new(
                "certificate serial",
                Status::Fail,
                e.to_string(),
            ));
            checks.push(Check::new(
                REMOTE,
                Status::Skipped,
                "needs an RSA API certificate",
            ));
            return checks;
        }
    };
    if !keys_ok || keys.is_empty() {
        checks.push(Check::new(
            REMOTE,
            Status::Skipped,
            "needs WeChat's key to verify the answer",
        ));
        return checks;
    }
    let mut transport = TransportConfig::new(v3.v3_base.clone());
    transport.connect_timeout = Duration::from_secs(5);
    transport.request_timeout = Duration::from_secs(15);
    transport.extra_roots = match merchant::extra_roots(merchant) {
        Ok(roots) => roots,
        Err(e) => {
            checks.push(Check::new(REMOTE, Status::Fail, e.to_string()));
            return checks;
        }
    };
    let http = match HttpV3Transport::new(&transport) {
        Ok(http) => http,
        Err(e) => {
            checks.push(Check::new(REMOTE, Status::Fail, e.to_string()));
            return checks;
        }
    };
    let serial = signer.serial().to_owned();
    let client = TransferClient::new(signer, keys, std::sync::Arc::new(http));
    let outcome =
        tokio::time::timeout(Duration::from_secs(20), client.query(&probe_out_bill_no())).await;
    checks.push(match outcome {
        Err(_) => Check::new(
            REMOTE,
            Status::Fail,
            format!("{} did not answer within 20 s", v3.v3_base),
        ),
        Ok(outcome) => v3_remote_check(&outcome, &serial, &v3.v3_base),
    });
    checks
}

fn v3_remote_check(outcome: &TransferOutcome, serial: &str, base: &str) -> Check {
    const NAME: &str = "transfer query with WeChat";
    match outcome {
        TransferOutcome::NotFound(_) => Check::new(
            NAME,
            Status::Pass,
            "a signed query of a made-up out_bill_no answered NOT_FOUND, and the answer verified: WeChat accepts the key, serial and signature",
        ),
        TransferOutcome::PauseMerchant(_, e) if e.code == V3Code::SignError => Check::new(
            NAME,
            Status::Fail,
            format!(
                "WeChat answered SIGN_ERROR ({}): it refused the request signature. The requests are signed with `key` and name serial_no {serial} of `cert`; \
                 likely mix-ups: a wrong serial (a renewed or another merchant's API certificate: use the one on 商户平台 → 账户中心 → API安全 → API证书), \
                 or a wrong mch_id. The APIv3 key (checked above; often the v2 key by mistake) and the 微信支付公钥 (often the platform certificate by mistake) \
                 do not enter the request signature, but fix them too if flagged",
                e.message
            ),
        ),
        TransferOutcome::PauseMerchant(_, e) if e.code == V3Code::NoAuth => Check::new(
            NAME,
            Status::Fail,
            format!(
                "WeChat answered NO_AUTH ({}): the merchant is not enabled for 商家转账 (升级版); apply on the merchant platform",
                e.message
            ),
        ),
        TransferOutcome::PauseMerchant(_, e) if e.is_ip_refused() => Check::new(
            NAME,
            Status::Fail,
            format!(
                "WeChat answered {} ({}): add this machine's IP (IPv6 too) to the merchant platform's allow-list",
                e.code, e.message
            ),
        ),
        TransferOutcome::Ambiguous { detail, .. } if detail.contains("neither the configured") => {
            let named = detail
                .split_whitespace()
                .nth(3)
                .unwrap_or_default()
                .trim_end_matches(',');
            let fix = if named.starts_with("PUB_KEY_ID_") {
                format!(
                    "WeChat signs with its 微信支付公钥 {named}: give that public key as wechatpay_public_key with wechatpay_public_key_id = \"{named}\" (the platform certificate may have been given instead of the public key)"
                )
            } else {
                format!(
                    "WeChat signs with the platform certificate {named}: add it to platform_certs, or give the 微信支付公钥 if the merchant has switched"
                )
            };
            Check::new(
                NAME,
                Status::Fail,
                format!("WeChat's answer could not be verified: {fix}"),
            )
        }
        TransferOutcome::Ambiguous { detail, .. } if detail.contains("does not verify") => {
            Check::new(
                NAME,
                Status::Fail,
                format!(
                    "WeChat's answer does not verify ({detail}): the wechatpay_public_key file is not the key of wechatpay_public_key_id (or a platform certificate is not WeChat's)"
                ),
            )
        }
        TransferOutcome::Ambiguous { detail, .. } if detail.contains("5 minutes") => Check::new(
            NAME,
            Status::Fail,
            format!("{detail}: set this machine's clock (NTP)"),
        ),
        TransferOutcome::RetrySameBill(detail) => Check::new(
            NAME,
            Status::Fail,
            format!(
                "cannot reach {base}: {detail}. Check v3_base, DNS and firewall, and root_ca for a sandbox or test server"
            ),
        ),
        TransferOutcome::RateLimited(_) => Check::new(
            NAME,
            Status::Warn,
            "WeChat answered FREQUENCY_LIMITED; run the doctor again in a minute",
        ),
        other => Check::new(
            NAME,
            Status::Fail,
            format!(
                "unexpected answer: {}. Is v3_base a WeChat Pay endpoint?",
                describe(other)
            ),
        ),
    }
}

fn describe(outcome: &TransferOutcome) -> String {
    match outcome {
        TransferOutcome::Ambiguous { detail, .. } => detail.clone(),
        other => other
            .error()
            .map_or_else(|| format!("{other:?}"), |e| e.to_string()),
    }
}

fn remote_check(outcome: QueryOutcome) -> Check {
    const NAME: &str = "key and certificate with WeChat";
    match outcome {
        QueryOutcome::NotFound | QueryOutcome::Found(_) => Check::new(
            NAME,
            Status::Pass,
            "a signed gethbinfo of a made-up order answered NOT_FOUND: WeChat accepts both the key and the certificate",
        ),
        QueryOutcome::PauseMerchant(_, ErrCode::SignError) => Check::new(
            NAME,
            Status::Fail,
            "WeChat answered SIGN_ERROR: the API key is wrong. Use the v2 API key (API密钥) from 商户平台 → 账户中心 → API安全; \
             people often paste the APIv3 key (APIv3密钥) or the official account's AppSecret instead, which are also 32 characters",
        ),
        QueryOutcome::PauseMerchant(_, ErrCode::CaError) => Check::new(
            NAME,
            Status::Fail,
            "WeChat answered CA_ERROR: it refused the certificate. Use this mch_id's current apiclient_cert \
             (商户平台 → 账户中心 → API安全 → API证书), not another merchant's or an expired one",
        ),
        QueryOutcome::PauseMerchant(_, code) => Check::new(
            NAME,
            Status::Fail,
            format!(
                "WeChat answered {code}: {} ({})",
                code.message(),
                code.zh_message()
            ),
        ),
        QueryOutcome::RateLimited => Check::new(
            NAME,
            Status::Warn,
            "WeChat answered FREQ_LIMIT; run the doctor again in a minute",
        ),
        QueryOutcome::Invalid(code) => Check::new(
            NAME,
            Status::Fail,
            format!(
                "WeChat refused the query with {code}: check mch_id and appid (are they bound to each other?)"
            ),
        ),
        QueryOutcome::RetryLater(detail) => Check::new(
            NAME,
            Status::Fail,
            format!("no usable answer: {detail}. Is api_base a WeChat Pay endpoint?"),
        ),
    }
}

async fn check_app_secret(merchant: &MerchantConfig, secret: secrecy::SecretString) -> Check {
    const NAME: &str = "official account (app_secret)";
    let mut config = OfficialAccountConfig::new(merchant.appid.clone(), secret);
    config.base_url = merchant.oa_base.clone();
    config.extra_roots = match merchant::extra_roots(merchant) {
        Ok(roots) => roots,
        Err(e) => return Check::new(NAME, Status::Fail, e.to_string()),
    };
    let client = match OfficialAccount::new(config) {
        Ok(client) => client,
        Err(e) => return Check::new(NAME, Status::Fail, e.to_string()),
    };
    match client.access_token().await {
        Ok(_) => Check::new(NAME, Status::Pass, "an access_token was issued"),
        Err(hongbao_wxpay::OfficialAccountError::Api { errcode, errmsg }) => {
            let fix = match errcode {
                40013 => "the appid is not an official account's appid",
                40125 | 40001 => {
                    "the app_secret is wrong: reset it on mp.weixin.qq.com → 设置与开发 → 基本配置"
                }
                40164 => {
                    "this machine's IP is not on the account's IP whitelist (mp.weixin.qq.com → 基本配置 → IP白名单)"
                }
                _ => "see WeChat's global return codes",
            };
            Check::new(
                NAME,
                Status::Fail,
                format!("WeChat answered errcode {errcode} ({errmsg}): {fix}"),
            )
        }
        Err(e) => Check::new(NAME, Status::Fail, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn info(cn: &str, not_after: OffsetDateTime) -> CertificateInfo {
        CertificateInfo {
            subject: format!("CN={cn}"),
            common_name: Some(cn.into()),
            not_before: datetime!(2020-01-01 0:00 UTC),
            not_after,
        }
    }

    #[test]
    fn certificate_dates_are_judged() {
        let now = datetime!(2026-11-22 0:00 UTC);
        let ok = check_certificate(
            &info("1900000109", datetime!(2027-11-22 0:00 UTC)),
            "1900000109",
            now,
        );
        assert_eq!(ok.status, Status::Pass);
        let soon = check_certificate(
            &info("1900000109", datetime!(2026-12-10 0:00 UTC)),
            "1900000109",
            now,
        );
        assert_eq!(soon.status, Status::Warn);
        assert!(soon.message.contains("18 days"), "{}", soon.message);
        let expired = check_certificate(
            &info("1900000109", datetime!(2026-11-01 0:00 UTC)),
            "1900000109",
            now,
        );
        assert_eq!(expired.status, Status::Fail);
        let other = check_certificate(
            &info("1900000999", datetime!(2027-11-22 0:00 UTC)),
            "1900000109",
            now,
        );
        assert_eq!(other.status, Status::Warn);
        assert!(
            other.message.contains("another merchant"),
            "{}",
            other.message
        );
    }

    #[test]
    fn probe_billnos_are_valid_and_never_in_wechats_layout() {
        let billno = probe_billno();
        assert_eq!(billno.as_str().len(), 28);
        assert!(billno.as_str().starts_with("DOCTOR"));
        assert_ne!(probe_billno(), billno);
    }
}
