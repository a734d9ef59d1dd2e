//! A sandbox per test, with clients of every kind.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use hongbao_sandbox::{Sandbox, SandboxConfig, files};
use hongbao_wxpay::transport::certificates_from_pem;
use hongbao_wxpay::*;

pub struct Env {
    pub sandbox: Sandbox,
    pub client: Client,
    pub transport: Arc<HttpTransport>,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn secrets(&self) -> &hongbao_sandbox::Secrets {
        &self.sandbox.identity().secrets
    }

    pub fn key(&self) -> ApiKey {
        ApiKey::parse(&self.secrets().api_key).unwrap()
    }

    pub fn merchant(&self) -> Merchant {
        Merchant {
            mch_id: MchId::parse(&self.secrets().mch_id).unwrap(),
            appid: AppId::parse(&self.secrets().appid).unwrap(),
            service_provider: None,
        }
    }

    pub fn billno(&self, seq: u64) -> MchBillNo {
        MchBillNo::generate(
            &self.merchant().mch_id,
            time::macros::date!(2026 - 11 - 22),
            seq,
        )
        .unwrap()
    }

    pub fn redpack(&self, seq: u64, openid: &str, fen: u64) -> SendRedpack {
        SendRedpack {
            mch_billno: self.billno(seq),
            re_openid: OpenId::parse(openid).unwrap(),
            total_amount: Fen::new(fen),
            send_name: "天虹百货".into(),
            wishing: "恭喜发财".into(),
            act_name: "新年红包".into(),
            remark: "新年红包".into(),
            client_ip: "10.0.0.1".into(),
            scene_id: None,
            risk_info: None,
        }
    }

    /// Posts `params`, signed with `key`, bypassing the client's validation.
    pub async fn raw(&self, api: Api, params: &Params, key: &ApiKey) -> Result<Reply, CallError> {
        let signature = sign(params, key, SignType::Md5);
        self.raw_body(api, xml::to_xml(params, Some(&signature)))
            .await
    }

    pub async fn raw_body(&self, api: Api, body: String) -> Result<Reply, CallError> {
        let answer = self.transport.post(api, body).await?;
        Reply::parse(api, &answer, &self.key())
    }

    /// The parameters of a valid sendredpack.
    pub fn raw_redpack(&self, seq: u64, openid: &str, fen: u64) -> Params {
        Prepared::new(&self.redpack(seq, openid, fen), &self.merchant())
            .unwrap()
            .params()
            .clone()
    }

    pub fn client_with(&self, identity: Option<ClientIdentity>) -> (Client, Arc<HttpTransport>) {
        let mut config = TransportConfig::new(self.sandbox.api_base());
        config.identity = identity;
        config.extra_roots =
            certificates_from_pem(self.sandbox.identity().ca_pem.as_bytes()).unwrap();
        let transport = Arc::new(HttpTransport::new(&config).unwrap());
        (
            Client::new(self.merchant(), self.key(), transport.clone()),
            transport,
        )
    }

    /// A transfer client verifying with the 微信支付公钥 (and the platform
    /// certificate too when `with_platform` is set).
    pub fn transfers(&self, with_platform: bool) -> v3::TransferClient {
        let id = self.sandbox.identity();
        let signer =
            v3::MerchantSigner::from_identity(self.merchant().mch_id, &self.identity()).unwrap();
        let mut keys = v3::WechatPayKeys::new()
            .with_public_key(
                &v3::PublicKeyId::parse(&id.secrets.wechatpay_public_key_id).unwrap(),
                id.wechatpay_public_key_pem.as_bytes(),
            )
            .unwrap();
        if with_platform {
            keys = keys
                .with_platform_certificate(id.platform_cert_pem.as_bytes())
                .unwrap();
        }
        let mut config = TransportConfig::new(self.sandbox.api_base());
        config.extra_roots = certificates_from_pem(id.ca_pem.as_bytes()).unwrap();
        let transport = Arc::new(v3::HttpV3Transport::new(&config).unwrap());
        v3::TransferClient::new(signer, keys, transport)
    }

    /// A valid scene-1000 transfer of `fen` to `openid`.
    pub fn transfer(&self, out_bill_no: &str, openid: &str, fen: u64) -> v3::CreateTransfer {
        v3::CreateTransfer {
            appid: AppId::parse(&self.secrets().appid).unwrap(),
            out_bill_no: v3::OutBillNo::parse(out_bill_no).unwrap(),
            transfer_scene_id: v3::TransferSceneId::cash_marketing(),
            openid: OpenId::parse(openid).unwrap(),
            user_name: None,
            transfer_amount: Fen::new(fen),
            transfer_remark: "新年抽奖".into(),
            notify_url: None,
            user_recv_perception: None,
            transfer_scene_report_infos: v3::CreateTransfer::cash_marketing_reports(
                "新年抽奖",
                "抽奖现金奖励",
            ),
        }
    }

    pub fn identity(&self) -> ClientIdentity {
        let id = self.sandbox.identity();
        ClientIdentity::from_pem(
            &std::fs::read(id.path(files::CLIENT_CERT)).unwrap(),
            &std::fs::read(id.path(files::CLIENT_KEY)).unwrap(),
        )
        .unwrap()
    }
}

pub async fn start(configure: impl FnOnce(&mut SandboxConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir, configure).await
}

pub async fn start_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut SandboxConfig)) -> Env {
    let mut config = SandboxConfig::new(dir.path());
    config.seed = Some(42);
    configure(&mut config);
    let sandbox = Sandbox::start(config).await.unwrap();
    let id = sandbox.identity();
    let identity = ClientIdentity::from_pem(
        &std::fs::read(id.path(files::CLIENT_CERT)).unwrap(),
        &std::fs::read(id.path(files::CLIENT_KEY)).unwrap(),
    )
    .unwrap();
    let mut config = TransportConfig::new(sandbox.api_base());
    config.identity = Some(identity);
    config.extra_roots = certificates_from_pem(id.ca_pem.as_bytes()).unwrap();
    let transport = Arc::new(HttpTransport::new(&config).unwrap());
    let secrets = &id.secrets;
    let client = Client::new(
        Merchant {
            mch_id: MchId::parse(&secrets.mch_id).unwrap(),
            appid: AppId::parse(&secrets.appid).unwrap(),
            service_provider: None,
        },
        ApiKey::parse(&secrets.api_key).unwrap(),
        transport.clone(),
    );
    Env {
        sandbox,
        client,
        transport,
        dir,
    }
}

/// Openid number `n`, well-formed.
pub fn openid(n: u32) -> String {
    format!("oSandbox{n:020}")
}

pub fn fail_code(result: &Result<Reply, CallError>) -> String {
    match result {
        Ok(reply) => reply
            .err_code()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_else(|| "SUCCESS".into()),
        Err(e) => format!("{e:?}"),
    }
}
