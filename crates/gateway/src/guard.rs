//! The gate at the handshake and the guard each socket carries after it.
//!
//! [`authenticate`] is a connect middleware: it finds and verifies the
//! token before socketioxide answers the client's CONNECT, so a refused
//! client gets a CONNECT_ERROR with the reason and no handler ever runs for
//! it. An accepted socket gets a [`Guard`] in its extensions (its
//! permissions, claims and rate limiter), joins its user room, and is
//! disconnected when its token expires. The handlers ask the guard before
//! they act.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use socketioxide::{
    adapter::Adapter,
    extract::{SocketRef, State, TryData},
};
use tokio::sync::Notify;
use tracing::{debug, info};

use crate::{
    auth::{AuthConfig, AuthError, Verifier},
    limits::{LimitsConfig, TokenBucket, Verdict},
    membership,
    metrics::GatewayMetrics,
    permissions::{counted_rooms, Permissions},
    token::find_token,
};

/// What the gate and the guards apply, shared by every socket.
#[derive(Debug)]
pub struct Policy {
    /// `None` with auth off.
    pub verifier: Option<Verifier>,
    /// The `[auth]` section.
    pub auth: AuthConfig,
    /// The `[limits]` section.
    pub limits: LimitsConfig,
    /// The rights of sockets without a token, shared by all of them (every
    /// socket when auth is off: a few bytes each, not a copy each).
    anonymous: Arc<Permissions>,
}

impl Policy {
    /// The policy of `auth` and `limits`, verified by `verifier`.
    pub fn new(verifier: Option<Verifier>, auth: AuthConfig, limits: LimitsConfig) -> Self {
        let anonymous = Arc::new(Permissions::anonymous(&auth));
        Self {
            verifier,
            auth,
            limits,
            anonymous,
        }
    }
}

/// The state of one socket the handlers consult.
#[derive(Debug)]
pub struct Guard {
    /// What it may do.
    pub permissions: Arc<Permissions>,
    /// Its token's claims, when it has one.
    pub claims: Option<serde_json::Value>,
    /// Its user: the connect hook's, else the token's `sub`.
    pub user: Option<String>,
    /// What the connect hook gave as its data.
    pub data: Option<serde_json::Value>,
    policy: Arc<Policy>,
    bucket: Mutex<TokenBucket>,
    /// Held while a join is checked against the room limit and applied.
    joins: Mutex<()>,
    /// Notified at disconnect, to stop the expiry timer (shared with the
    /// guard a connect hook puts in this one's place).
    closed: Arc<Notify>,
}

impl Guard {
    fn new(
        permissions: Arc<Permissions>,
        claims: Option<serde_json::Value>,
        user: Option<String>,
        policy: Arc<Policy>,
    ) -> Self {
        let bucket = Mutex::new(TokenBucket::new(&policy.limits, Instant::now()));
        Self {
            permissions,
            claims,
            user,
            data: None,
            policy,
            bucket,
            joins: Mutex::new(()),
            closed: Arc::new(Notify::new()),
        }
    }

    /// The guard of a socket the connect hook admitted as `user` with
    /// `data`: the same token and expiry, the backend's rights.
    pub fn admitted_by_backend(
        &self,
        permissions: Permissions,
        user: Option<String>,
        data: Option<serde_json::Value>,
    ) -> Self {
        Self {
            permissions: Arc::new(permissions),
            claims: self.claims.clone(),
            user: user.or_else(|| self.user.clone()),
            data,
            policy: self.policy.clone(),
            bucket: Mutex::new(TokenBucket::new(&self.policy.limits, Instant::now())),
            joins: Mutex::new(()),
            closed: self.closed.clone(),
        }
    }

    /// What `fetchSockets` shows of the socket: the backend's data, else
    /// its token's claims.
    pub fn socket_data(&self) -> Option<&serde_json::Value> {
        self.data.as_ref().or(self.claims.as_ref())
    }

    /// The `[auth]` section, for the user room's prefix.
    pub fn auth_config(&self) -> &AuthConfig {
        &self.policy.auth
    }

    /// The guard of `socket`; `None` when the gate did not run (handlers
    /// registered without [`authenticate`] keep the unrestricted behaviour).
    pub fn of<A: Adapter>(socket: &SocketRef<A>) -> Option<Arc<Guard>> {
        socket.extensions.get::<Arc<Guard>>()
    }

    /// Joins `room` unless that would put the socket over the room limit
    /// or the socket has disconnected; whether it is in the room now.
    /// Check and join happen under one lock, so that two callers can never
    /// both see room for one more (the socket's own `join` events run one
    /// after another, see [`crate::relay_order`], but this does not rely
    /// on it).
    pub fn join_within_limit<A: Adapter>(&self, socket: &SocketRef<A>, room: String) -> bool {
        let _serial = self
            .joins
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let rooms = socket.rooms();
        if rooms.iter().any(|held| *held == room) {
            return true;
        }
        let sid = socket.id.to_string();
        let held = counted_rooms(
            rooms.iter().map(|held| held.as_ref()),
            &sid,
            self.permissions.own_user_room.as_deref(),
        );
        if held >= self.policy.limits.max_rooms_per_socket {
            return false;
        }
        membership::join_if_connected(socket, room)
    }

    /// The rate limiter's verdict on one more event now.
    pub fn admit_event(&self) -> Verdict {
        match self.bucket.lock() {
            Ok(mut bucket) => bucket.take(&self.policy.limits, Instant::now()),
            // Only a panic while holding it poisons it: let events through
            // rather than lock the socket out.
            Err(_) => Verdict::Allow,
        }
    }

    /// Stops the expiry timer; called at disconnect.
    pub fn closed(&self) {
        self.closed.notify_one();
    }
}

/// Connect middleware: refuses the socket (with the reason) unless its
/// token verifies or auth allows anonymous sockets; installs its guard.
pub async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<serde_json::Value>,
    State(policy): State<Arc<Policy>>,
    State(metrics): State<GatewayMetrics>,
) -> Result<(), AuthError> {
    let anonymous = |socket: &SocketRef<A>| {
        let guard = Guard::new(policy.anonymous.clone(), None, None, policy.clone());
        socket.extensions.insert(Arc::new(guard));
    };
    let Some(verifier) = &policy.verifier else {
        anonymous(&socket);
        return Ok(());
    };
    let parts = socket.req_parts();
    let authorization = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let token = find_token(auth.as_ref().ok(), authorization, parts.uri.query());
    let verified = match token {
        Some(token) => verifier.verify(&token).map(Some),
        None if policy.auth.required => Err(AuthError::NoToken),
        None => Ok(None),
    };
    let claims = match verified {
        Ok(claims) => claims,
        Err(err) => {
            metrics
                .auth_failures
                .with_label_values(&[err.label()])
                .inc();
            info!(ns = socket.ns(), sid = %socket.id, reason = err.label(), "handshake refused");
            return Err(err);
        }
    };
    let Some(claims) = claims else {
        anonymous(&socket);
        return Ok(());
    };
    let permissions = Permissions::from_claims(&claims, &policy.anonymous, &policy.auth);
    if let Some(room) = &permissions.own_user_room {
        socket.join(room.clone());
    }
    let permissions = Arc::new(permissions);
    debug!(ns = socket.ns(), sid = %socket.id, user = %claims.sub, "socket authenticated");
    let guard = Arc::new(Guard::new(
        permissions,
        Some(claims.all),
        Some(claims.sub.clone()),
        policy.clone(),
    ));
    socket.extensions.insert(guard.clone());
    if policy.auth.disconnect_on_expiry {
        if let Some(exp) = claims.exp {
            // Saturating: `exp` is whatever number the token carries.
            spawn_expiry(
                socket,
                guard,
                exp.saturating_add(policy.auth.leeway_s),
                metrics,
            );
        }
    }
    Ok(())
}

/// Disconnects `socket` at `deadline` (seconds since the epoch) unless it
/// is gone before.
fn spawn_expiry<A: Adapter>(
    socket: SocketRef<A>,
    guard: Arc<Guard>,
    deadline: u64,
    metrics: GatewayMetrics,
) {
    let left = deadline.saturating_sub(jsonwebtoken::get_current_timestamp());
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(left)) => {
                metrics.limit_disconnects.with_label_values(&["token_expired"]).inc();
                info!(ns = socket.ns(), sid = %socket.id, "token expired: disconnecting");
                let _ = socket.disconnect();
            }
            () = guard.closed.notified() => {}
        }
    });
}
