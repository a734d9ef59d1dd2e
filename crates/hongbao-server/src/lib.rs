//! hongbao's HTTP service: the JSON API (red packets, merchants, campaigns,
//! prizes), bearer authentication per tenant, health, Prometheus metrics and
//! the OpenAPI
//! document; and [`start`], which wires the database, the merchants, the
//! payout service, the dispatcher and the listener together.
//!
//! It must never decide how a payment is made (that is `hongbao-core`),
//! nor print or answer a secret, nor show a tenant another's merchants.
//!
//! # Layout
//!
//! - [`error`]: every error answer, with its status and code.
//! - [`listener`]: connections, their timeouts and their cap.
//! - [`extract`]: the checks every request passes (head, query, path, body).
//! - [`json`]: requests read field by field, records written.
//! - [`routes`], [`campaigns`], [`prizes`], [`console`]: the endpoints.

pub mod campaigns;
pub mod console;
pub mod error;
pub mod extract;
pub mod json;
pub mod listener;
pub mod prizes;
pub mod routes;
pub mod transfers;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use hongbao_core::config::Config;
use hongbao_core::dispatch::{DispatchConfig, Dispatcher};
use hongbao_core::events::Events;
use hongbao_core::merchant::{MerchantRuntime, Merchants};
use hongbao_core::metrics::Metrics;
use hongbao_core::model::Scope;
use hongbao_core::payouts::Payouts;
use hongbao_core::store::Ledger;
use hongbao_core::store::db::{Db, DbError};
use listener::{HttpStats, Limits};
use tokio::net::TcpListener;
use tokio::sync::watch;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

pub use routes::AppState;

/// The OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "hongbao",
        description = "Pay WeChat users cash exactly once: cash red packets (现金红包) and transfer bills (商家转账) the user confirms. Money is integer fen; times are RFC 3339 in UTC.",
    ),
    paths(
        routes::create_redpack,
        routes::list_redpacks,
        routes::get_redpack,
        routes::get_attempts,
        routes::redpack_status,
        transfers::create_transfer,
        transfers::list_transfers,
        transfers::get_transfer,
        transfers::get_attempts,
        transfers::transfer_status,
        transfers::cancel_transfer,
        transfers::notify_transfer,
        routes::list_merchants,
        routes::pause_merchant,
        routes::resume_merchant,
        campaigns::create_campaign,
        campaigns::list_campaigns,
        campaigns::get_campaign,
        campaigns::campaign_report,
        campaigns::campaign_confirms,
        campaigns::pause_campaign,
        campaigns::resume_campaign,
        prizes::create_activity,
        prizes::list_activities,
        prizes::get_activity,
        prizes::update_activity,
        prizes::grant_prize,
        prizes::list_prizes,
        prizes::get_prize,
        prizes::claim_prize,
        console::stats,
        routes::healthz,
        routes::tenant_health,
        routes::metrics,
    ),
    components(schemas(
        json::RecordJson,
        json::RecordList,
        json::Meta,
        json::StatusJson,
        json::WechatJson,
        json::HbInfoJson,
        json::MiniProgramJson,
        json::WarningJson,
        json::RedpackRequest,
        transfers::TransferRequest,
        transfers::TransferJson,
        transfers::TransferList,
        transfers::ConfirmJson,
        transfers::BillJson,
        transfers::TransferStatusJson,
        json::AttemptJson,
        json::EmptyRequest,
        routes::MerchantJson,
        routes::HealthJson,
        routes::TenantHealthJson,
        console::StatsJson,
        console::PeriodJson,
        console::CountJson,
        console::BucketJson,
        campaigns::CampaignJson,
        campaigns::BadRowsJson,
        campaigns::RowErrorJson,
        campaigns::DryRunJson,
        campaigns::CampaignRequest,
        campaigns::CampaignRowRequest,
        prizes::ActivityRequest,
        prizes::ActivityPatch,
        prizes::PrizeRequest,
        prizes::ClaimRequest,
        prizes::ActivityJson,
        prizes::ActivityList,
        prizes::PrizeJson,
        prizes::PrizeList,
        error::ErrorBody,
        error::ErrorDetail,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "redpacks", description = "Red packets: create, list, look up, ask WeChat"),
        (name = "transfers", description = "Transfer bills (APIv3 商家转账) the user confirms: create, list, look up, ask WeChat, cancel; WeChat's callback"),
        (name = "merchants", description = "Merchants and their pauses"),
        (name = "campaigns", description = "Campaigns: a whole list of payouts, validated whole, paid at the merchant's rate"),
        (name = "prizes", description = "The lottery flow: activities, prizes granted to users, claimed once"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    // Uploads of whole campaigns may be large; every other body is small.
    let uploads = Router::new()
        .route(
            "/v1/campaigns",
            post(campaigns::create_campaign).get(campaigns::list_campaigns),
        )
        .layer(DefaultBodyLimit::max(campaigns::MAX_UPLOAD + 1));
    Router::new()
        .route(
            "/v1/redpacks",
            post(routes::create_redpack).get(routes::list_redpacks),
        )
        .route("/v1/redpacks/status", get(routes::redpack_status))
        .route("/v1/redpacks/{id}", get(routes::get_redpack))
        .route("/v1/redpacks/{id}/attempts", get(routes::get_attempts))
        .route(
            "/v1/transfers",
            post(transfers::create_transfer).get(transfers::list_transfers),
        )
        .route("/v1/transfers/status", get(transfers::transfer_status))
        .route("/v1/transfers/{id}", get(transfers::get_transfer))
        .route("/v1/transfers/{id}/attempts", get(transfers::get_attempts))
        .route(
            "/v1/transfers/{id}/cancel",
            post(transfers::cancel_transfer),
        )
        .route(
            "/v1/notify/transfers/{merchant}",
            post(transfers::notify_transfer),
        )
        .route("/v1/merchants", get(routes::list_merchants))
        .route("/v1/merchants/{name}/pause", post(routes::pause_merchant))
        .route("/v1/merchants/{name}/resume", post(routes::resume_merchant))
        .route("/v1/campaigns/{id}", get(campaigns::get_campaign))
        .route(
            "/v1/campaigns/{id}/report.csv",
            get(campaigns::campaign_report),
        )
        .route(
            "/v1/campaigns/{id}/confirms.csv",
            get(campaigns::campaign_confirms),
        )
        .route("/v1/campaigns/{id}/pause", post(campaigns::pause_campaign))
        .route(
            "/v1/campaigns/{id}/resume",
            post(campaigns::resume_campaign),
        )
        .route(
            "/v1/activities",
            post(prizes::create_activity).get(prizes::list_activities),
        )
        .route(
            "/v1/activities/{id}",
            get(prizes::get_activity).patch(prizes::update_activity),
        )
        .route(
            "/v1/prizes",
            post(prizes::grant_prize).get(prizes::list_prizes),
        )
        .route("/v1/prizes/{id}", get(prizes::get_prize))
        .route("/v1/prizes/{id}/claim", post(prizes::claim_prize))
        .route("/v1/stats", get(console::stats))
        .route("/v1/health", get(routes::tenant_health))
        .route("/console", get(console::index))
        .route("/console/", get(console::index))
        .route("/console/app.js", get(console::script))
        .route("/console/app.css", get(console::style))
        .merge(console::modules())
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(openapi))
        // A little over the cap, so that the handler answers 413 in our shape.
        .layer(DefaultBodyLimit::max(routes::MAX_BODY + 1))
        .merge(uploads)
        .fallback(routes::not_found)
        // After every route: it applies to those already there.
        .method_not_allowed_fallback(extract::method_not_allowed)
        .layer(axum::middleware::from_fn(extract::check_head))
        .with_state(state)
}

/// The operator listener's routes (`[server] metrics_listen`): every
/// merchant's metrics and health, without a key, for a private address.
pub fn operator_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(routes::operator_metrics))
        .route("/healthz", get(routes::operator_health))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(extract::method_not_allowed)
        .layer(axum::middleware::from_fn(extract::check_head))
        .with_state(state)
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database {url}: {source}")]
    Database {
        /// The URL, without its password.
        url: String,
        /// Why.
        source: DbError,
    },
    /// `[database] migrate = false` and the database lacks migrations.
    #[error(
        "database {url} lacks migrations ({pending}): run `hongbao migrate` (or set [database] migrate = true)"
    )]
    NotMigrated {
        /// The URL, without its password.
        url: String,
        /// The migrations not applied.
        pending: String,
    },
    /// The database can be read but not written.
    #[error(
        "database {url} cannot be written ({source}): hongbao stores every payout before paying it. Check that the file and its directory are writable by the user running hongbao (SQLite keeps its -wal and -shm files beside the database), that the disk has room, and that the URL does not ask for mode=ro"
    )]
    NotWritable {
        /// The URL, without its password.
        url: String,
        /// Why.
        source: DbError,
    },
    /// A merchant's certificate, key or address is not usable.
    #[error(transparent)]
    Merchant(#[from] hongbao_core::merchant::SetupError),
    /// The address could not be listened on.
    #[error(
        "cannot listen on {addr}: {source}; choose another with [server] listen or HONGBAO_SERVER__LISTEN"
    )]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The database URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Opens and migrates the database, builds every merchant's client, and
/// the payout service.
pub async fn services(config: &Config) -> Result<Arc<Payouts>, StartError> {
    let url = &config.database.url;
    let fail = |source| StartError::Database {
        url: redact_url(url),
        source,
    };
    let db = Db::connect(url)
        .await
        .map_err(fail)?
        .with_billno_deployment(config.database.billno_deployment.clone());
    if config.database.migrate {
        db.migrate().await.map_err(fail)?;
    } else {
        let pending = db.pending_migrations().await.map_err(fail)?;
        if !pending.is_empty() {
            return Err(StartError::NotMigrated {
                url: redact_url(url),
                pending: pending
                    .iter()
                    .map(|(version, name)| format!("{version} {name}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let mut merchants = Merchants::new();
    for merchant in config.merchants.values() {
        merchants.insert(
            merchant.name.clone(),
            Arc::new(MerchantRuntime::new(merchant.clone(), &db)?),
        );
    }
    Ok(Arc::new(Payouts::new(
        Ledger::new(db),
        Arc::new(merchants),
        config.tenants.clone(),
        Arc::new(Events::default()),
        Arc::new(Metrics::new()),
    )))
}

/// A running service: API, dispatcher and reconciliation.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    operator_addr: Option<SocketAddr>,
    payouts: Arc<Payouts>,
    stop: watch::Sender<bool>,
    http: Vec<tokio::task::JoinHandle<()>>,
    dispatcher: Dispatcher,
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let fail = |source| StartError::Listen { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(fail)?;
    let local = listener.local_addr().map_err(fail)?;
    Ok((listener, local))
}

/// Starts everything `config` describes, listening on `listen` (port 0
/// picks one), and on `[server] metrics_listen` for the operator if set.
pub async fn start(config: &Config, listen: SocketAddr) -> Result<Running, StartError> {
    start_with(config, listen, None).await
}

/// As [`start`], in sandbox mode when `sandbox_admin` (the sandbox's admin
/// API) is given: a merchant paying by transfer without a `notify_url` is
/// given this instance's own callback address (on loopback, where the
/// sandbox reaches it), and transfers awaiting their user link to the
/// sandbox's confirm page.
pub async fn start_with(
    config: &Config,
    listen: SocketAddr,
    sandbox_admin: Option<String>,
) -> Result<Running, StartError> {
    let (listener, addr) = bind(listen).await?;
    let mut config = config.clone();
    if sandbox_admin.is_some() {
        for (name, merchant) in &mut config.merchants {
            if let Some(v3) = &mut merchant.v3
                && v3.notify_url.is_none()
            {
                v3.notify_url = Some(format!("http://{addr}/v1/notify/transfers/{name}"));
            }
        }
    }
    let config = &config;
    let payouts = services(config).await?;
    // A database that can be read but not written (a read-only file, a
    // full disk) would take every payout's request and store none of them.
    payouts
        .ledger()
        .db()
        .probe_write()
        .await
        .map_err(|source| StartError::NotWritable {
            url: redact_url(&config.database.url),
            source,
        })?;
    let operator = match config.server.metrics_listen {
        Some(at) => Some(bind(at).await?),
        None => None,
    };
    let limits = Limits::of(&config.server);
    tracing::info!(
        max_connections = limits.max_connections,
        header_timeout_s = limits.header_timeout.as_secs(),
        body_timeout_s = limits.body_timeout.as_secs(),
        idle_timeout_s = limits.idle_timeout.as_secs(),
        "client connection limits"
    );
    let (stop, stopped) = watch::channel(false);
    let dispatcher = payouts.start_dispatcher(
        DispatchConfig::from_settings(&config.dispatch, Scope::All),
        &stopped,
    );
    let state = AppState {
        payouts: payouts.clone(),
        http: Arc::new(HttpStats::default()),
        sandbox_admin,
    };
    let mut http = vec![tokio::spawn(listener::serve(
        listener,
        router(state.clone()),
        limits,
        state.http.clone(),
        stopped.clone(),
    ))];
    let operator_addr = operator.map(|(listener, at)| {
        tracing::info!(addr = %at, "operator listener: /metrics and /healthz without a key");
        // A few scrapers and probes; the same timeouts.
        let limits = Limits {
            max_connections: 64,
            ..limits
        };
        http.push(tokio::spawn(listener::serve(
            listener,
            operator_router(state.clone()),
            limits,
            state.http.clone(),
            stopped,
        )));
        at
    });
    Ok(Running {
        addr,
        operator_addr,
        payouts,
        stop,
        http,
        dispatcher,
    })
}

impl Running {
    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The operator listener's address (`[server] metrics_listen`), if any.
    pub fn operator_addr(&self) -> Option<SocketAddr> {
        self.operator_addr
    }

    /// The payout service.
    pub fn payouts(&self) -> &Arc<Payouts> {
        &self.payouts
    }

    /// Stops: no new requests, calls in flight finish and are recorded,
    /// leases are handed back.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for http in self.http {
            let _ = http.await;
        }
        self.dispatcher.finish().await;
        self.payouts.ledger().db().close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/hb"),
            "postgres://app:***@db:5432/hb"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            redact_url("sqlite://hongbao-data/hongbao.db"),
            "sqlite://hongbao-data/hongbao.db"
        );
    }

    /// The published document (docs/openapi.json) is what the code serves;
    /// `UPDATE_OPENAPI=1 cargo test -p hongbao-server` rewrites it after a
    /// deliberate change.
    #[test]
    fn the_published_openapi_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let current = format!(
            "{}\n",
            serde_json::to_string_pretty(&ApiDoc::openapi()).unwrap()
        );
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let published = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            published == current,
            "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p hongbao-server` and review the change"
        );
    }

    /// A schema, with a `$ref` followed into the components.
    fn resolve<'a>(
        doc: &'a serde_json::Value,
        schema: &'a serde_json::Value,
    ) -> &'a serde_json::Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                &doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    fn property_names(schema: &serde_json::Value) -> Vec<String> {
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn every_request_body_has_a_schema_with_its_fields() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut bodies = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let Some(content) = operation["requestBody"]["content"].as_object() else {
                    continue;
                };
                for (media, entry) in content {
                    bodies += 1;
                    let schema = resolve(&doc, &entry["schema"]);
                    // `{}` is spelt with `additionalProperties: false`.
                    let bare = schema.get("properties").is_none()
                        && schema["additionalProperties"] != false
                        && schema["type"].as_str() != Some("string");
                    assert!(
                        !bare,
                        "{method} {path} ({media}): the request body has no real schema: {schema}"
                    );
                }
            }
        }
        assert!(bodies >= 9, "{bodies} request bodies");

        let fields = |path: &str, method: &str, media: &str| {
            property_names(resolve(
                &doc,
                &doc["paths"][path][method]["requestBody"]["content"][media]["schema"],
            ))
        };
        let sorted = |names: &[&str]| {
            let mut names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            names.sort();
            names
        };
        assert_eq!(
            fields("/v1/redpacks", "post", "application/json"),
            sorted(&json::REDPACK_FIELDS)
        );
        assert_eq!(
            fields("/v1/activities", "post", "application/json"),
            sorted(&prizes::ACTIVITY_FIELDS)
        );
        assert_eq!(
            fields("/v1/activities/{id}", "patch", "application/json"),
            sorted(&prizes::ACTIVITY_FIELDS)
        );
        assert_eq!(
            fields("/v1/prizes", "post", "application/json"),
            sorted(&prizes::PRIZE_FIELDS)
        );
        assert_eq!(
            fields("/v1/prizes/{id}/claim", "post", "application/json"),
            ["openid"]
        );
        let mut campaign = campaigns::UPLOAD_OPTIONS.to_vec();
        campaign.push("rows");
        assert_eq!(
            fields("/v1/campaigns", "post", "application/json"),
            sorted(&campaign)
        );

        let attempts = &doc["paths"]["/v1/redpacks/{id}/attempts"]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        assert_eq!(attempts["type"], "array", "{attempts}");
        assert!(
            property_names(resolve(&doc, &attempts["items"])).contains(&"outcome".to_owned()),
            "{attempts}"
        );
    }

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/v1/redpacks",
            "/v1/redpacks/{id}",
            "/v1/redpacks/{id}/attempts",
            "/v1/redpacks/status",
            "/v1/merchants",
            "/v1/merchants/{name}/pause",
            "/v1/merchants/{name}/resume",
            "/v1/campaigns",
            "/v1/campaigns/{id}",
            "/v1/campaigns/{id}/report.csv",
            "/v1/campaigns/{id}/pause",
            "/v1/campaigns/{id}/resume",
            "/v1/activities",
            "/v1/activities/{id}",
            "/v1/prizes",
            "/v1/prizes/{id}",
            "/v1/prizes/{id}/claim",
            "/v1/stats",
            "/v1/health",
            "/healthz",
            "/metrics",
        ] {
            assert!(paths.contains_key(path), "{path} is not documented");
        }
        assert!(
            paths["/v1/redpacks"].get("post").is_some()
                && paths["/v1/redpacks"].get("get").is_some()
        );
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
