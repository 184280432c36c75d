//! The server: binds the Socket.IO and admin listeners, builds socketioxide
//! with the in-memory adapter (no Redis configured) or the Redis adapter,
//! registers the default handlers on every configured namespace, and serves
//! until the shutdown future resolves.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;

use adapter::{ClusterHandle, RedisAdapter};
use axum::routing::get;
use axum::Router;
use http::HeaderValue;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::info;

use crate::config::GatewayConfig;
use crate::handlers;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the configuration.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A configured CORS origin is not a valid header value.
    #[error("configuration key `cors_origins`: `{0}` is not a valid origin")]
    CorsOrigin(String),
    /// Redis could not be reached at start.
    #[error("redis: {0}")]
    Redis(adapter::Error),
    /// The adapter of a namespace could not subscribe.
    #[error("namespace {ns}: {source}")]
    Namespace {
        /// The namespace.
        ns: String,
        /// What failed.
        source: adapter::InitError,
    },
    /// Internal: Redis mode without a master URL.
    #[error("redis.url is not set")]
    NoRedis,
    /// The server failed while running.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Runs the gateway until `shutdown` resolves.
pub async fn run(
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let socket_listener = bind(config.listen).await?;
    let admin_listener = bind(config.admin_listen).await?;
    let cors = cors_layer(&config.cors_origins)?;

    let app = match config.redis.url {
        None => {
            info!("no redis.url: single-node mode with the in-memory adapter");
            let (layer, io) = SocketIo::builder().build_layer();
            for ns in &config.namespaces {
                io.ns(ns.clone(), handlers::on_connect::<LocalAdapter>);
            }
            socket_app(layer, cors)
        }
        Some(_) => {
            let adapter_config = config.redis.adapter_config().ok_or(GatewayError::NoRedis)?;
            let cluster = ClusterHandle::connect(adapter_config)
                .await
                .map_err(GatewayError::Redis)?;
            info!(uid = cluster.uid(), "connected to redis");
            let (layer, io) = SocketIo::builder()
                .with_adapter::<RedisAdapter<_>>(cluster.clone())
                .build_layer();
            for ns in &config.namespaces {
                io.ns(ns.clone(), handlers::on_connect::<RedisAdapter<_>>)
                    .await
                    .map_err(|source| GatewayError::Namespace {
                        ns: ns.clone(),
                        source,
                    })?;
            }
            socket_app(layer, cors)
        }
    };

    info!(
        socketio = %local_addr(&socket_listener),
        admin = %local_addr(&admin_listener),
        namespaces = ?config.namespaces,
        "gateway listening"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let admin =
        axum::serve(admin_listener, admin_app()).with_graceful_shutdown(wait_for(stop_rx.clone()));
    let sockets = axum::serve(socket_listener, app).with_graceful_shutdown(wait_for(stop_rx));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (admin, sockets) = tokio::join!(admin.into_future(), sockets.into_future());
    admin.and(sockets).map_err(GatewayError::Serve)
}

async fn wait_for(mut stop: tokio::sync::watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn socket_app<A: Adapter>(layer: SocketIoLayer<A>, cors: Option<CorsLayer>) -> Router {
    let router = Router::new().layer(layer);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

fn admin_app() -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" }))
}

fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, GatewayError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::mirror_request()
    } else {
        let values = origins
            .iter()
            .map(|o| HeaderValue::from_str(o).map_err(|_| GatewayError::CorsOrigin(o.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_credentials(true)
            .allow_methods([http::Method::GET, http::Method::POST, http::Method::OPTIONS])
            .allow_headers([http::header::CONTENT_TYPE]),
    ))
}
