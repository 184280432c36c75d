//! The server: binds the Socket.IO and admin listeners, builds socketioxide
//! with the in-memory adapter (no Redis configured) or the Redis adapter,
//! registers the default handlers on every configured namespace, serves
//! until the shutdown future resolves, then drains.
//!
//! Draining, in order: `/readyz` turns 503 and the Socket.IO listener stops
//! accepting; open client connections are closed a few at a time over the
//! drain period so that their clients reconnect elsewhere without a
//! thundering herd; socketioxide is closed; the Redis connections go last,
//! so that broadcasts keep reaching the clients still connected until then.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adapter::{ClusterHandle, RedisAdapter};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use http::HeaderValue;
use serde_json::json;
use socketioxide::adapter::{Adapter, Emitter, LocalAdapter};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::{info, warn};

use crate::adapter_metrics::{spawn_replication_lag_sampler, AdapterExporter};
use crate::admission::{self, Admission};
use crate::auth::Verifier;
use crate::config::GatewayConfig;
use crate::conn::{ConnectionTracker, TrackedListener};
use crate::guard::{self, Guard, Policy};
use crate::handlers;
use crate::hooks::{self, Hooks};
use crate::metrics::GatewayMetrics;
use crate::request_head::detach_request_head;

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
    #[error("cannot connect to redis: {0}")]
    Redis(adapter::Error),
    /// The adapter of a namespace could not subscribe.
    #[error("namespace {ns}: {source}")]
    Namespace {
        /// The namespace.
        ns: String,
        /// What failed.
        source: adapter::InitError,
    },
    /// The token key could not be loaded.
    #[error("auth: {0}")]
    Auth(#[from] crate::auth::KeyError),
    /// The hooks' HTTP client could not be built.
    #[error(transparent)]
    Hooks(#[from] crate::hooks::HooksError),
    /// The metrics could not be registered (a programming error).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The server failed while running.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// The Socket.IO server of either mode, for what draining needs.
enum Cluster {
    Single(SocketIo<LocalAdapter>),
    Redis {
        io: SocketIo<RedisAdapter<Emitter>>,
        cluster: ClusterHandle,
    },
}

impl Cluster {
    async fn close(self) {
        match self {
            Cluster::Single(io) => io.close().await,
            Cluster::Redis { io, cluster } => {
                io.close().await;
                cluster.shutdown().await;
            }
        }
    }
}

/// What the admin endpoints read.
#[derive(Clone)]
struct AdminState {
    metrics: GatewayMetrics,
    draining: Arc<AtomicBool>,
    cluster: Option<ClusterHandle>,
    exporter: Option<Arc<AdapterExporter>>,
}

/// Runs the gateway until `shutdown` resolves, then drains and returns.
pub async fn run(
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let metrics = GatewayMetrics::new()?;
    let socket_listener = bind(config.listen).await?;
    let admin_listener = bind(config.admin_listen).await?;
    let cors = cors_layer(&config.cors_origins)?;
    let (app, cluster) = socket_io(&config, &metrics, cors).await?;
    let (admin_state, lag_sampler) = admin_state(&metrics, &cluster)?;

    info!(
        socketio = %local_addr(&socket_listener),
        admin = %local_addr(&admin_listener),
        namespaces = ?config.namespaces,
        "gateway listening"
    );

    let tracker = ConnectionTracker::default();
    let app = app.layer(axum::middleware::from_fn_with_state(
        admission(&config, &tracker, &metrics),
        admission::admit,
    ));
    let listener = TrackedListener::new(socket_listener, tracker.clone(), metrics.bytes.clone());
    let (stop_accepting_tx, stop_accepting) = watch::channel(false);
    let (stop_admin_tx, stop_admin) = watch::channel(false);
    let sockets = tokio::spawn(
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<admission::PeerAddr>(),
        )
        .with_graceful_shutdown(wait_for(stop_accepting))
        .into_future(),
    );
    let admin = tokio::spawn(
        axum::serve(admin_listener, admin_app(admin_state.clone()))
            .with_graceful_shutdown(wait_for(stop_admin))
            .into_future(),
    );

    shutdown.await;
    let drain_period = Duration::from_millis(config.drain_period_ms);
    info!(open = tracker.open_count(), ?drain_period, "draining");
    admin_state.draining.store(true, Ordering::Release);
    let _ = stop_accepting_tx.send(true);
    drain_connections(&tracker, drain_period).await;
    if let Some(sampler) = lag_sampler {
        sampler.abort();
    }
    cluster.close().await;
    let _ = stop_admin_tx.send(true);

    // The servers finish once their last connection is gone; never wait
    // past a short grace for a client that keeps a request open.
    let grace = Duration::from_secs(1);
    for (name, task) in [("socket.io", sockets), ("admin", admin)] {
        match tokio::time::timeout(grace, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => return Err(GatewayError::Serve(err)),
            Ok(Err(err)) => warn!(server = name, %err, "server task failed"),
            Err(_) => warn!(
                server = name,
                "connections still open after the drain; closing"
            ),
        }
    }
    info!("drained, bye");
    Ok(())
}

/// socketioxide with the default handlers on every configured namespace:
/// the in-memory adapter without Redis, the Redis adapter with it.
async fn socket_io(
    config: &GatewayConfig,
    metrics: &GatewayMetrics,
    cors: Option<CorsLayer>,
) -> Result<(Router, Cluster), GatewayError> {
    let policy = policy(config)?;
    let hooks = hooks(config, metrics)?;
    let max_payload = config.limits.max_payload_bytes;
    let ws_max = usize::try_from(max_payload).unwrap_or(usize::MAX);
    // One builder for both modes, so their settings cannot differ.
    let builder = SocketIo::builder()
        .ws_read_buffer_size(config.ws_read_buffer_bytes)
        .max_buffer_size(config.client_buffer_packets)
        .max_payload(max_payload)
        .ws_max_message_size(ws_max)
        .ws_max_frame_size(ws_max)
        .with_state(metrics.clone())
        .with_state(policy)
        .with_state(hooks);
    let Some(adapter_config) = config.redis.adapter_config() else {
        info!("no redis.url: single-node mode with the in-memory adapter");
        let (layer, io) = builder.build_layer();
        for ns in &config.namespaces {
            io.ns(
                ns.clone(),
                handlers::on_connect::<LocalAdapter>
                    .with(handlers::register::<LocalAdapter>)
                    .with(hooks::connect::connect::<LocalAdapter>)
                    .with(guard::authenticate::<LocalAdapter>),
            );
        }
        return Ok((socket_app(layer, cors), Cluster::Single(io)));
    };
    let cluster = ClusterHandle::connect(adapter_config)
        .await
        .map_err(GatewayError::Redis)?;
    info!(uid = cluster.uid(), "connected to redis");
    let (layer, io) = builder
        .with_adapter::<RedisAdapter<_>>(cluster.clone())
        .build_layer();
    for ns in &config.namespaces {
        handlers::on_server_side_emit(&cluster, ns, metrics.clone());
        io.ns(
            ns.clone(),
            handlers::on_connect::<RedisAdapter<_>>
                .with(handlers::register::<RedisAdapter<_>>)
                .with(hooks::connect::connect::<RedisAdapter<_>>)
                .with(guard::authenticate::<RedisAdapter<_>>),
        )
        .await
        .map_err(|source| GatewayError::Namespace {
            ns: ns.clone(),
            source,
        })?;
    }
    share_claims(&cluster, &io);
    Ok((socket_app(layer, cors), Cluster::Redis { io, cluster }))
}

/// The connection limits: the configured maximum, or the open-files limit
/// (raised to the hard limit first) minus a reserve.
fn admission(
    config: &GatewayConfig,
    tracker: &ConnectionTracker,
    metrics: &GatewayMetrics,
) -> Admission {
    let open_files = admission::raise_open_files_limit();
    let max_connections = config
        .limits
        .max_connections
        .or_else(|| open_files.map(admission::default_max_connections))
        .unwrap_or(usize::MAX);
    metrics
        .connection_limit
        .set(i64::try_from(max_connections).unwrap_or(i64::MAX));
    info!(
        open_files = open_files.unwrap_or_default(),
        max_connections,
        connects_per_ip_per_second = config.limits.connects_per_ip_per_second,
        "connection limits"
    );
    Admission {
        tracker: tracker.clone(),
        max_connections,
        connects_per_ip_per_second: config.limits.connects_per_ip_per_second,
        rate: Arc::new(std::sync::Mutex::new(admission::ConnectRate::new(
            std::time::Instant::now(),
        ))),
        metrics: metrics.clone(),
    }
}

/// The gate's policy: the verifier of the configured key and the limits.
fn policy(config: &GatewayConfig) -> Result<Arc<Policy>, GatewayError> {
    let verifier = Verifier::from_config(&config.auth)?;
    match &verifier {
        Some(verifier) => info!(
            ?verifier,
            required = config.auth.required,
            "client authentication on"
        ),
        None => info!("client authentication off: no auth.jwt_secret or auth.jwt_public_key_file"),
    }
    Ok(Arc::new(Policy::new(
        verifier,
        config.auth.clone(),
        config.limits.clone(),
    )))
}

/// The backend hooks and their client (idle when none is configured).
fn hooks(config: &GatewayConfig, metrics: &GatewayMetrics) -> Result<Arc<Hooks>, GatewayError> {
    let hooks = &config.hooks;
    if hooks.enabled() {
        info!(
            connect = hooks.connect_url.as_deref().unwrap_or("-"),
            event = hooks.event_url.as_deref().unwrap_or("-"),
            events = ?hooks.events,
            disconnect = hooks.disconnect_url.as_deref().unwrap_or("-"),
            timeout_ms = hooks.timeout_ms,
            max_inflight = hooks.max_inflight,
            signed = hooks.secret.is_some(),
            tls_ca_file = hooks.tls_ca_file.as_deref().unwrap_or("-"),
            "backend hooks on"
        );
    }
    // A backend's answer is bounded like a client's packet.
    let max_answer = usize::try_from(config.limits.max_payload_bytes).unwrap_or(usize::MAX);
    Ok(Arc::new(Hooks::new(
        hooks.clone(),
        max_answer,
        metrics.registry(),
    )?))
}

/// Remote `fetchSockets` (Rust and Node nodes alike) get each socket's
/// data: the connect hook's, else its token claims.
fn share_claims(cluster: &ClusterHandle, io: &SocketIo<RedisAdapter<Emitter>>) {
    let io = io.clone();
    cluster.set_socket_details(move |ns, sid| {
        let socket = io.of(ns)?.get_socket(sid)?;
        let data = Guard::of(&socket)?.socket_data()?.clone();
        Some(adapter::SocketDetails {
            handshake: json!({}),
            data,
        })
    });
}

/// What the admin endpoints read, and (with Redis) the replication lag
/// sampler to stop when draining.
fn admin_state(
    metrics: &GatewayMetrics,
    cluster: &Cluster,
) -> Result<(AdminState, Option<tokio::task::JoinHandle<()>>), GatewayError> {
    let cluster_handle = match cluster {
        Cluster::Redis { cluster, .. } => Some(cluster.clone()),
        Cluster::Single(_) => None,
    };
    let (exporter, lag_sampler) = match &cluster_handle {
        Some(handle) => (
            Some(Arc::new(AdapterExporter::register(
                metrics.registry(),
                handle.clone(),
                metrics.packets_sent.clone(),
            )?)),
            Some(spawn_replication_lag_sampler(
                metrics.registry(),
                handle.clone(),
            )?),
        ),
        None => (None, None),
    };
    let state = AdminState {
        metrics: metrics.clone(),
        draining: Arc::new(AtomicBool::new(false)),
        cluster: cluster_handle,
        exporter,
    };
    Ok((state, lag_sampler))
}

/// Closes every open connection, spread evenly over `period`.
async fn drain_connections(tracker: &ConnectionTracker, period: Duration) {
    const STEPS: u32 = 20;
    let step = period / STEPS;
    for remaining_steps in (1..=STEPS).rev() {
        let open = tracker.open_count();
        if open == 0 {
            return;
        }
        // Close an equal share now, so the last step closes what is left.
        let share = open.div_ceil(remaining_steps as usize);
        tracker.close_some(share);
        tokio::time::sleep(step).await;
    }
    tracker.close_some(usize::MAX);
}

async fn wait_for(mut stop: watch::Receiver<bool>) {
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
    let router = Router::new()
        .layer(layer)
        .layer(axum::middleware::map_request(detach_request_head));
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

fn admin_app(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/cluster/nodes", get(cluster_nodes))
        .with_state(state)
}

/// `?nsp=/admin` for [`cluster_nodes`]; the main namespace by default.
#[derive(Debug, serde::Deserialize)]
struct NodesQuery {
    #[serde(default = "main_namespace")]
    nsp: String,
}

fn main_namespace() -> String {
    "/".to_owned()
}

/// `GET /cluster/nodes`: how many nodes serve a namespace, counted through
/// Redis like `io.of(nsp).serverCount()`. It lets an operator (and the stall
/// test) see a cross-node request end in bounded time when Redis does not
/// answer: 504 after the request timeout rather than a hung probe.
async fn cluster_nodes(
    State(state): State<AdminState>,
    Query(query): Query<NodesQuery>,
) -> impl IntoResponse {
    let Some(cluster) = &state.cluster else {
        return (StatusCode::OK, Json(json!({"nodes": 1, "mode": "single"})));
    };
    // The adapter bounds the count by its request timeout (and counts it).
    match cluster.server_count(&query.nsp).await {
        Ok(nodes) => (StatusCode::OK, Json(json!({"nodes": nodes}))),
        Err(err) if err.is_timeout() => {
            let timeout_ms = cluster.config().request_timeout_ms;
            (
                StatusCode::GATEWAY_TIMEOUT,
                Json(
                    json!({"error": format!("redis did not answer within {timeout_ms} ms: {err}")}),
                ),
            )
        }
        Err(err) => {
            warn!(nsp = %query.nsp, %err, "counting the cluster nodes failed");
            (
                StatusCode::BAD_GATEWAY,
                Json(json!({"error": err.to_string()})),
            )
        }
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if state.draining.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": "draining"})),
        );
    }
    match &state.cluster {
        None => (
            StatusCode::OK,
            Json(json!({"ready": true, "mode": "single"})),
        ),
        Some(cluster) => {
            let readiness = cluster.readiness();
            let redis = json!({
                "publisher_connected": readiness.publisher_connected,
                "subscriber_ready": readiness.subscriber_ready,
                "request_subscriber_ready": readiness.request_subscriber_ready,
            });
            if readiness.is_ready() {
                (StatusCode::OK, Json(json!({"ready": true, "redis": redis})))
            } else {
                let reason = if !readiness.publisher_connected {
                    "redis publisher (master) not connected"
                } else if !readiness.subscriber_ready {
                    "redis subscriber not connected or not subscribed"
                } else {
                    "redis request subscriber not connected or not subscribed"
                };
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"ready": false, "reason": reason, "redis": redis})),
                )
            }
        }
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    if let Some(exporter) = &state.exporter {
        exporter.refresh();
    }
    (
        [(http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
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
