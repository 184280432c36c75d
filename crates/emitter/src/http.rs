//! The HTTP JSON API (`emitter serve`), for backends in any language that
//! want to push events into the cluster without a Redis client or msgpack.
//!
//! An operation answers `202 Accepted` only once Redis has acknowledged the
//! PUBLISH, so nothing accepted is silently dropped; when Redis cannot take
//! it the answer is `503` and nothing was confirmed. Bodies are validated
//! field by field (`400` names the field). Binary arguments are written as
//! `{"$binary": "<base64>"}` objects (see [`crate::value`]).
//!
//! Routes: `POST /v1/emit`, `POST /v1/sockets/join`, `POST /v1/sockets/leave`,
//! `POST /v1/sockets/disconnect`, `POST /v1/server-side-emit` (bearer token
//! when configured); `GET /healthz` (liveness, reports the Redis link),
//! `GET /readyz` (`503` while Redis is down) and `GET /metrics` (Prometheus),
//! which need no token so probes and scrapers work unchanged.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::emitter::{BroadcastOperator, Emitter};
use crate::error::EmitterError;
use crate::metrics::{Metrics, OperationKind};
use crate::request::{self, Selector, ValidationError};

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    emitter: Emitter,
    api_token: Option<Arc<str>>,
    metrics: Metrics,
}

impl AppState {
    /// `api_token`: when set, `/v1/*` requests need `Authorization: Bearer <token>`.
    pub fn new(emitter: Emitter, api_token: Option<String>, metrics: Metrics) -> Self {
        Self {
            emitter,
            api_token: api_token.map(Arc::from),
            metrics,
        }
    }

    fn operator(&self, selector: &Selector) -> BroadcastOperator {
        self.emitter
            .of(&selector.nsp)
            .to(selector.rooms.clone())
            .except(selector.except.clone())
    }

    /// Turns the outcome of a publish into the HTTP answer, counting it.
    fn answer(&self, kind: OperationKind, outcome: Result<usize, EmitterError>) -> Response {
        match outcome {
            Ok(master_subscribers) => {
                self.metrics.record_published(kind);
                // What PUBLISH counts: subscribers on the master only, not the
                // gateways reading replicas; the name says so.
                (
                    StatusCode::ACCEPTED,
                    Json(json!({"status": "published", "master_subscribers": master_subscribers})),
                )
                    .into_response()
            }
            Err(EmitterError::ReservedEvent(event)) => bad_request(&ValidationError {
                field: Some("event".to_owned()),
                message: format!("\"{event}\" is a reserved event name"),
            }),
            Err(EmitterError::InvalidArgument(err)) => bad_request(&ValidationError {
                field: Some("args".to_owned()),
                message: err.to_string(),
            }),
            Err(err) if err.is_unavailable() => {
                self.metrics.record_publish_error(kind);
                tracing::warn!(kind = kind.label(), error = %err, "publish failed");
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("redis unavailable: {err}"),
                )
            }
            Err(err) => {
                self.metrics.record_publish_error(kind);
                tracing::error!(kind = kind.label(), error = %err, "publish failed");
                error_response(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
            }
        }
    }
}

/// The application router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/emit", post(emit))
        .route("/v1/sockets/join", post(sockets_join))
        .route("/v1/sockets/leave", post(sockets_leave))
        .route("/v1/sockets/disconnect", post(disconnect_sockets))
        .route("/v1/server-side-emit", post(server_side_emit))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), count_status))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

fn bad_request(err: &ValidationError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": err.to_string(), "field": err.field})),
    )
        .into_response()
}

/// Compares without an early exit, so the answer time does not reveal how
/// much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.api_token {
        let authorized = bearer_token(request.headers())
            .is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()));
        if !authorized {
            let mut response = error_response(
                StatusCode::UNAUTHORIZED,
                "missing or invalid bearer token (Authorization: Bearer <token>)",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

async fn count_status(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.metrics.record_http_status(response.status().as_u16());
    response
}

async fn emit(State(state): State<AppState>, body: Bytes) -> Response {
    let command = match request::parse_emit(&body) {
        Ok(command) => command,
        Err(err) => return bad_request(&err),
    };
    let mut operator = state.operator(&command.selector);
    if command.volatile {
        operator = operator.volatile();
    }
    if let Some(compress) = command.compress {
        operator = operator.compress(compress);
    }
    let outcome = operator.emit(&command.event, command.args).await;
    state.answer(OperationKind::Emit, outcome)
}

async fn sockets_join(State(state): State<AppState>, body: Bytes) -> Response {
    let command = match request::parse_rooms_command(&body) {
        Ok(command) => command,
        Err(err) => return bad_request(&err),
    };
    let outcome = state
        .operator(&command.selector)
        .sockets_join(command.target_rooms)
        .await;
    state.answer(OperationKind::SocketsJoin, outcome)
}

async fn sockets_leave(State(state): State<AppState>, body: Bytes) -> Response {
    let command = match request::parse_rooms_command(&body) {
        Ok(command) => command,
        Err(err) => return bad_request(&err),
    };
    let outcome = state
        .operator(&command.selector)
        .sockets_leave(command.target_rooms)
        .await;
    state.answer(OperationKind::SocketsLeave, outcome)
}

async fn disconnect_sockets(State(state): State<AppState>, body: Bytes) -> Response {
    let command = match request::parse_disconnect(&body) {
        Ok(command) => command,
        Err(err) => return bad_request(&err),
    };
    let outcome = state
        .operator(&command.selector)
        .disconnect_sockets(command.close)
        .await;
    state.answer(OperationKind::DisconnectSockets, outcome)
}

async fn server_side_emit(State(state): State<AppState>, body: Bytes) -> Response {
    let command = match request::parse_server_side_emit(&body) {
        Ok(command) => command,
        Err(err) => return bad_request(&err),
    };
    let outcome = state
        .emitter
        .of(&command.nsp)
        .server_side_emit(&command.event, command.args)
        .await;
    state.answer(OperationKind::ServerSideEmit, outcome)
}

fn redis_status(state: &AppState) -> &'static str {
    if state.emitter.is_connected() {
        "connected"
    } else {
        "disconnected"
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    Json(json!({"status": "ok", "redis": redis_status(&state)})).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let status = if state.emitter.is_connected() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"redis": redis_status(&state)}))).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(err) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert_eq!(bearer_token(&headers), Some("s3cret"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  s3cret "),
        );
        assert_eq!(bearer_token(&headers), Some("s3cret"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic s3cret"),
        );
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
