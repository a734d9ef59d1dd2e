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
