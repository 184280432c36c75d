//! Who may open a new Socket.IO session: a new handshake (a request to the
//! Engine.IO path without a `sid`) is refused at once, before any session
//! state exists, when the gateway holds its maximum of connections (503) or
//! when the client's address is over its connect rate (429). Requests of
//! existing sessions always pass, so a full gateway keeps serving the
//! clients it has.
//!
//! The maximum defaults to the process's open-files limit, raised to its
//! hard limit at start, minus a reserve: the admin listener, the Redis
//! connections and their reconnections must always find a descriptor.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::{connect_info::Connected, ConnectInfo, Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    serve::IncomingStream,
};

use crate::{
    conn::{ConnectionTracker, TrackedListener},
    metrics::GatewayMetrics,
};

/// Descriptors kept for everything but client connections, out of `limit`.
pub fn reserve(limit: u64) -> u64 {
    (64 + limit / 50).min(limit / 2)
}

/// Raises the soft open-files limit to the hard one; the limit in force.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(err) => {
            tracing::warn!(%err, "cannot read or raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The default `limits.max_connections` under an open-files `limit`.
pub fn default_max_connections(limit: u64) -> usize {
    usize::try_from(limit.saturating_sub(reserve(limit))).unwrap_or(usize::MAX)
}

/// Connects per address, counted in one-second windows.
#[derive(Debug)]
pub struct ConnectRate {
    window: Instant,
    counts: HashMap<IpAddr, u32>,
}

impl ConnectRate {
    /// An empty window starting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            window: now,
            counts: HashMap::new(),
        }
    }

    /// Whether `ip` may connect at `now` with at most `per_second` connects
    /// per second. Each window forgets the last, so memory follows the
    /// addresses of one second.
    pub fn allow(&mut self, ip: IpAddr, now: Instant, per_second: u32) -> bool {
        if now.saturating_duration_since(self.window).as_secs() >= 1 {
            self.window = now;
            self.counts.clear();
        }
        let count = self.counts.entry(ip).or_insert(0);
        if *count >= per_second {
            return false;
        }
        *count += 1;
        true
    }
}

/// What the admission middleware reads.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The socket listener's open connections.
    pub tracker: ConnectionTracker,
    /// Connections beyond which handshakes are refused.
    pub max_connections: usize,
    /// Connects per address and second, when limited.
    pub connects_per_ip_per_second: Option<u32>,
    /// The per-address windows.
    pub rate: Arc<Mutex<ConnectRate>>,
    /// For the refusal counters.
    pub metrics: GatewayMetrics,
}

/// Whether a request opens a new Engine.IO session.
pub fn is_handshake(query: Option<&str>) -> bool {
    !query.is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "sid")
    })
}

/// The client's address, as axum's `ConnectInfo` of the socket listener.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TrackedListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TrackedListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// axum middleware: refuses new sessions over the limits.
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|info| info.0 .0);
    // CORS preflights open nothing.
    if request.method() == http::Method::OPTIONS || !is_handshake(request.uri().query()) {
        return next.run(request).await;
    }
    // This request's own connection is one of the open ones.
    if admission.tracker.open_count() > admission.max_connections {
        return refuse(
            &admission,
            "max_connections",
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    if let (Some(limit), Some(peer)) = (admission.connects_per_ip_per_second, peer) {
        let allowed = admission
            .rate
            .lock()
            .map(|mut rate| rate.allow(peer.ip(), Instant::now(), limit))
            .unwrap_or(true);
        if !allowed {
            return refuse(&admission, "ip_rate", StatusCode::TOO_MANY_REQUESTS);
        }
    }
    next.run(request).await
}

fn refuse(admission: &Admission, reason: &str, status: StatusCode) -> Response {
    admission
        .metrics
        .refused_handshakes
        .with_label_values(&[reason])
        .inc();
    let mut response = (status, format!("{reason}\n")).into_response();
    // Give the descriptor back at once rather than keep the connection alive.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reserves_and_defaults() {
        // (open-files limit, reserve, default max connections)
        let table = [
            (1024, 84, 940),
            (128, 64, 64),
            (100, 50, 50),
            (1_048_576, 21_035, 1_027_541),
            (0, 0, 0),
        ];
        for (limit, kept, max) in table {
            assert_eq!(reserve(limit), kept, "{limit}");
            assert_eq!(default_max_connections(limit), max, "{limit}");
        }
    }

    #[test]
    fn handshakes_are_requests_without_a_sid() {
        assert!(is_handshake(None));
        assert!(is_handshake(Some("EIO=4&transport=polling")));
        assert!(is_handshake(Some("EIO=4&transport=websocket&token=x")));
        assert!(!is_handshake(Some("EIO=4&transport=polling&sid=abc")));
        assert!(!is_handshake(Some("sid=abc&EIO=4&transport=websocket")));
    }

    #[test]
    fn connects_per_address_per_second() {
        let t0 = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let mut rate = ConnectRate::new(t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        // (address, time in ms, allowed) at 2 connects per second.
        let table = [
            (a, 0, true),
            (a, 10, true),
            (a, 20, false),
            (b, 30, true),
            (a, 999, false),
            (a, 1000, true),
            (a, 1001, true),
            (a, 1002, false),
        ];
        for (ip, ms, allowed) in table {
            assert_eq!(rate.allow(ip, at(ms), 2), allowed, "{ip} at {ms} ms");
        }
    }
}
