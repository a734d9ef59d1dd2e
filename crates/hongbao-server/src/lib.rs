//! hongbao's HTTP service: the JSON API (red packets, merchants, campaigns,
//! prizes), bearer authentication per tenant, health, Prometheus metrics and
//! the OpenAPI
//! document; and [`start`], which wires the database, the merchants, the
//! payout service, the dispatcher and the listener together.
//!
//! It must never decide how a payment is made (that is `hongbao-core`),
//! nor print or answer a secret.

pub mod campaigns;
pub mod console;
pub mod error;
pub mod json;
pub mod prizes;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use hongbao_core::config::Config;
use hongbao_core::db::{Db, DbError};
use hongbao_core::dispatch::{DispatchConfig, Dispatcher, Events, MerchantRuntime, Merchants};
use hongbao_core::ledger::Ledger;
use hongbao_core::metrics::Metrics;
use hongbao_core::payouts::Payouts;
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
        description = "Pay WeChat cash red packets (现金红包) exactly once. Money is integer fen; times are RFC 3339 in UTC.",
    ),
    paths(
        routes::create_redpack,
        routes::list_redpacks,
        routes::get_redpack,
        routes::get_attempts,
        routes::redpack_status,
        routes::list_merchants,
        routes::pause_merchant,
        routes::resume_merchant,
        campaigns::create_campaign,
        campaigns::list_campaigns,
        campaigns::get_campaign,
        campaigns::campaign_report,
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
        routes::MerchantJson,
        console::StatsJson,
        console::PeriodJson,
        console::CountJson,
        console::BucketJson,
        campaigns::CampaignJson,
        campaigns::BadRowsJson,
        campaigns::RowErrorJson,
        campaigns::DryRunJson,
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
        .route("/v1/merchants", get(routes::list_merchants))
        .route("/v1/merchants/{name}/pause", post(routes::pause_merchant))
        .route("/v1/merchants/{name}/resume", post(routes::resume_merchant))
        .route("/v1/campaigns/{id}", get(campaigns::get_campaign))
        .route(
            "/v1/campaigns/{id}/report.csv",
            get(campaigns::campaign_report),
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
        .route("/console", get(console::index))
        .route("/console/", get(console::index))
        .route("/console/app.js", get(console::script))
        .route("/console/app.css", get(console::style))
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(openapi))
        // A little over the cap, so that the handler answers 413 in our shape.
        .layer(DefaultBodyLimit::max(routes::MAX_BODY + 1))
        .merge(uploads)
        .fallback(routes::not_found)
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
    payouts: Arc<Payouts>,
    stop: watch::Sender<bool>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    dispatcher: Dispatcher,
}

/// Starts everything `config` describes, listening on `listen` (port 0
/// picks one).
pub async fn start(config: &Config, listen: SocketAddr) -> Result<Running, StartError> {
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
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: listen,
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let mut dispatch = DispatchConfig::new();
    dispatch.lease = config.dispatch.lease;
    dispatch.max_in_flight = config.dispatch.max_in_flight;
    let dispatcher = Dispatcher::start(
        payouts.ledger().clone(),
        payouts.merchants(),
        payouts.events().clone(),
        payouts.metrics().clone(),
        dispatch,
        &stopped,
    );
    let app = router(AppState {
        payouts: payouts.clone(),
    });
    let mut stopped_http = stopped;
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped_http.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(Running {
        addr,
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

    /// The payout service.
    pub fn payouts(&self) -> &Arc<Payouts> {
        &self.payouts
    }

    /// Stops: no new requests, calls in flight finish and are recorded,
    /// leases are handed back.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.http.await;
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
