//! Subscribers that survive the loss of the server they sit on.
//!
//! fred's own reconnection only ever returns to the same server, so a
//! subscriber here runs without a fred reconnect policy: a supervisor task
//! connects to one candidate server, subscribes every registered channel and
//! pattern, watches the connection (fred's connection task ending, or two
//! missed PINGs), and on loss moves to the next candidate (the next replica,
//! then the master) and subscribes everything again. The set of
//! subscriptions is owned here, not by the connection, so no reconnect can
//! lose one (the Node adapter's #446 / socket.io #4845 failure mode). A
//! subscriber that is not on its preferred server (after a failover) tries
//! every few seconds to move back, through the handoff of
//! [`crate::handoff`], which neither loses nor repeats a message.
//!
//! The servers come from [`Candidates`], read again before every connection
//! attempt, so a Sentinel topology change is followed.

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use fred::{
    clients::Client,
    interfaces::{ClientLike, EventInterface, PubsubInterface},
    types::{InfoKind, Message, RespVersion, Value as RedisValue},
};
use tokio::{
    sync::{broadcast::error::RecvError, watch, Mutex},
    task::JoinHandle,
};
use tracing::Instrument;

use redis_layer::{
    client::{self, Attempts},
    info::not_in_sync,
    quit_in_background, subscribe_applied, Endpoint,
};

use crate::{
    candidates::{topology_changed, Candidates},
    config::AdapterConfig,
    error::Error,
    handoff::{self, Gate},
    inbound::{Inbound, InboundSink},
    metrics::{AdapterMetrics, DropReason, GarbageKind},
};

#[derive(Debug, Default)]
struct SubscriptionSet {
    channels: BTreeSet<String>,
    patterns: BTreeSet<String>,
    /// The live connection, when there is one. Changes only under the lock,
    /// together with the sets, so a subscription added during a failover is
    /// either applied by the new session's full resubscribe or by the adder.
    session: Option<Client>,
}

/// A subscriber connection with failover across candidate servers.
pub(crate) struct Subscriber {
    /// `broadcast` or `requests`, for logs.
    role: &'static str,
    candidates: Candidates,
    subscriptions: Mutex<SubscriptionSet>,
    subscribed: AtomicBool,
    /// `host:port` of the server subscribed on, while subscribed.
    server: std::sync::Mutex<Option<String>>,
    ready: watch::Sender<bool>,
    sink: InboundSink,
    /// The publisher (on the master), for handoff markers.
    marker_publisher: Client,
    /// Where handoff marker channels begin.
    marker_prefix: String,
    metrics: Arc<AdapterMetrics>,
    connect_timeout: Duration,
    ping_interval: Duration,
    channel_capacity: usize,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("role", &self.role)
            .field(
                "candidates",
                &self
                    .candidates
                    .current()
                    .iter()
                    .map(|e| e.label.clone())
                    .collect::<Vec<_>>(),
            )
            .field("subscribed", &self.subscribed.load(Ordering::Relaxed))
            .finish()
    }
}

enum SessionEnd {
    Lost(String),
    Moved(String),
    /// Replaced by a session on the preferred server.
    HandedOver(Box<Session>),
    Shutdown,
}

impl Subscriber {
    /// `host:port` of the server it is subscribed on, if it is.
    pub(crate) fn server_addr(&self) -> Option<String> {
        self.server.lock().ok()?.clone()
    }

    fn set_server(&self, addr: Option<String>) {
        if let Ok(mut server) = self.server.lock() {
            *server = addr;
        }
    }

    pub(crate) fn new(
        role: &'static str,
        candidates: Candidates,
        config: &AdapterConfig,
        sink: InboundSink,
        marker_publisher: Client,
        metrics: Arc<AdapterMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Self {
            role,
            candidates,
            subscriptions: Mutex::new(SubscriptionSet::default()),
            subscribed: AtomicBool::new(false),
            server: std::sync::Mutex::new(None),
            ready: watch::channel(false).0,
            sink,
            marker_publisher,
            marker_prefix: handoff::marker_prefix(&config.prefix),
            metrics,
            connect_timeout: config.connect_timeout(),
            ping_interval: config.ping_interval(),
            // Independent of the namespace queues: this one only absorbs
            // scheduling hiccups of the forwarding task.
            channel_capacity: config.buffer_size.max(1024),
            shutdown,
        })
    }

    /// Whether a connection is up with every registered subscription applied.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Wait until [`Self::is_subscribed`], at most `timeout`.
    pub(crate) async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let mut ready = self.ready.subscribe();
        tokio::time::timeout(timeout, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Register channels and patterns and apply them to the live connection
    /// if any. They are re-applied on every future connection.
    pub(crate) async fn add(&self, channels: &[String], patterns: &[String]) -> Result<(), Error> {
        let mut set = self.subscriptions.lock().await;
        let new_channels: Vec<String> = channels
            .iter()
            .filter(|c| set.channels.insert((*c).clone()))
            .cloned()
            .collect();
        let new_patterns: Vec<String> = patterns
            .iter()
            .filter(|p| set.patterns.insert((*p).clone()))
            .cloned()
            .collect();
        if let Some(session) = set.session.clone() {
            if let Err(err) = subscribe_applied(&session, new_channels, new_patterns).await {
                // Still registered: the next session subscribes it. Say so
                // rather than fail, the supervisor is already on it.
                tracing::warn!(role = self.role, %err, "subscribe failed on the current connection, will retry on reconnect");
            }
        }
        Ok(())
    }

    /// Forget channels and patterns and unsubscribe them from the live connection.
    pub(crate) async fn remove(&self, channels: &[String], patterns: &[String]) {
        let mut set = self.subscriptions.lock().await;
        for channel in channels {
            set.channels.remove(channel);
        }
        for pattern in patterns {
            set.patterns.remove(pattern);
        }
        if let Some(session) = set.session.clone() {
            if !channels.is_empty() {
                let _ = session.unsubscribe(channels.to_vec()).await;
            }
            if !patterns.is_empty() {
                let _ = session.punsubscribe(patterns.to_vec()).await;
            }
        }
    }

    /// Start the supervisor task.
    pub(crate) fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.supervise().await })
    }

    async fn supervise(self: Arc<Self>) {
        let mut next = 0usize;
        let mut sessions = 0u64;
        let mut failed_in_a_row = 0usize;
        let mut handed_over: Option<Session> = None;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let candidates = self.candidates.current();
            let session = match handed_over.take() {
                Some(session) => session,
                None => {
                    if candidates.is_empty() {
                        return;
                    }
                    let Some(endpoint) = candidates.get(next % candidates.len()).cloned() else {
                        return;
                    };
                    let span = tracing::info_span!("redis_subscriber", role = self.role, endpoint = %endpoint.label);
                    match self.open_registered(&endpoint).instrument(span).await {
                        Ok(session) => session,
                        Err(err) => {
                            failed_in_a_row += 1;
                            tracing::warn!(
                                role = self.role,
                                endpoint = %endpoint.label,
                                %err,
                                "subscriber could not connect, trying the next server"
                            );
                            next = (next + 1) % candidates.len();
                            if failed_in_a_row >= candidates.len() {
                                // Every server refused: back off a little before another round.
                                failed_in_a_row = 0;
                                let mut shutdown = self.shutdown.clone();
                                tokio::select! {
                                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                                    _ = shutdown.changed() => return,
                                }
                            }
                            continue;
                        }
                    }
                }
            };
            let label = session.endpoint.label.clone();
            let span = tracing::info_span!("redis_subscriber", role = self.role, endpoint = %label);
            let end = self.watch(session, sessions).instrument(span).await;
            sessions += 1;
            failed_in_a_row = 0;
            match end {
                SessionEnd::Shutdown => return,
                SessionEnd::HandedOver(session) => {
                    tracing::info!(
                        role = self.role,
                        from = %label,
                        to = %session.endpoint.label,
                        "subscriber moved to its preferred server"
                    );
                    next = 0;
                    handed_over = Some(*session);
                }
                SessionEnd::Moved(reason) => {
                    // The topology changed: start over from the new
                    // preferred server rather than the next in the old order.
                    next = 0;
                    tracing::warn!(
                        role = self.role,
                        endpoint = %label,
                        %reason,
                        "subscriber leaving its server after a topology change"
                    );
                }
                SessionEnd::Lost(reason) => {
                    tracing::warn!(
                        role = self.role,
                        endpoint = %label,
                        %reason,
                        "subscriber lost its server, failing over"
                    );
                    next = (next + 1) % candidates.len().max(1);
                }
            }
        }
    }

    /// Opens a session on `endpoint` with every registered subscription and
    /// makes it the one new subscriptions go to.
    async fn open_registered(&self, endpoint: &Endpoint) -> Result<Session, Error> {
        let mut session = self
            .connect(endpoint, Gate::open(&self.marker_prefix))
            .await?;
        let mut set = self.subscriptions.lock().await;
        session = session.subscribe(&set, None).await?;
        set.session = Some(session.client.clone());
        Ok(session)
    }

    /// Connects to `endpoint`, with messages going through `gate`; nothing
    /// subscribed yet.
    async fn connect(&self, endpoint: &Endpoint, gate: Gate) -> Result<Session, Error> {
        let started = Instant::now();
        let mut config = endpoint.config.clone();
        // RESP3 lets PING run on a subscribed connection like any command.
        config.version = RespVersion::RESP3;
        let connect_timeout = self.connect_timeout;
        let capacity = self.channel_capacity;
        let mut builder = client::builder(config, connect_timeout, connect_timeout, Attempts::Once);
        builder.with_performance_config(|p| p.broadcast_channel_capacity = capacity);
        let client = builder.build()?;
        // Listen before subscribing so no message falls between the two.
        let messages = client.message_rx();
        let connection = match tokio::time::timeout(connect_timeout, client.init()).await {
            Ok(Ok(handle)) => handle,
            Ok(Err(err)) => return Err(err.into()),
            Err(_) => {
                quit_in_background(&client);
                return Err(Error::timeout("connection timed out"));
            }
        };
        let gate = Arc::new(gate);
        let forwarder = tokio::spawn(forward_messages(
            messages,
            gate.clone(),
            self.sink.clone(),
            self.metrics.clone(),
        ));
        Ok(Session {
            endpoint: endpoint.clone(),
            client,
            connection,
            forwarder,
            gate,
            started,
            channels: 0,
            patterns: 0,
        })
    }

    /// Watches a live session until it ends.
    async fn watch(&self, session: Session, previous_sessions: u64) -> SessionEnd {
        let master_at_start = self.candidates.master_addr();
        self.subscribed.store(true, Ordering::Release);
        self.set_server(Some(session.endpoint.addr.clone()));
        self.ready.send_replace(true);
        self.metrics.set_subscriber_endpoint(
            self.role == "requests",
            Some(session.endpoint.label.clone()),
        );
        if previous_sessions > 0 {
            self.metrics.subscriber_reconnected();
        }
        tracing::info!(
            channels = session.channels,
            patterns = session.patterns,
            took_ms = session.started.elapsed().as_millis() as u64,
            "subscriber connected and subscribed"
        );

        let mut ping = tokio::time::interval(self.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut move_back = tokio::time::interval_at(
            tokio::time::Instant::now() + MOVE_BACK_INTERVAL,
            MOVE_BACK_INTERVAL,
        );
        move_back.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut missed = 0u32;
        let mut shutdown = self.shutdown.clone();
        let mut topology = self.candidates.topology();
        let mut session = session;
        let end = loop {
            if let Some(reason) = self
                .candidates
                .abandon_reason(&session.endpoint, &master_at_start)
            {
                break SessionEnd::Moved(reason);
            }
            tokio::select! {
                changed = topology_changed(&mut topology) => {
                    if !changed {
                        // The watcher is gone (shutdown): nothing more to follow.
                        topology = None;
                    }
                }
                res = &mut session.connection => {
                    break SessionEnd::Lost(match res {
                        Ok(Ok(())) => "connection closed".to_owned(),
                        Ok(Err(err)) => format!("connection error: {err}"),
                        Err(err) => format!("connection task failed: {err}"),
                    });
                }
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(self.ping_interval, session.client.ping::<RedisValue>(None)).await;
                    if matches!(alive, Ok(Ok(_))) {
                        missed = 0;
                    } else {
                        missed += 1;
                        if missed >= 2 {
                            break SessionEnd::Lost("server stopped answering PING".to_owned());
                        }
                    }
                }
                _ = move_back.tick() => {
                    let preferred = self.candidates.current().into_iter().next();
                    if let Some(preferred) = preferred.filter(|p| p.addr != session.endpoint.addr) {
                        match self.hand_off(&session, &preferred).await {
                            Ok(new) => break SessionEnd::HandedOver(Box::new(new)),
                            Err(err) => tracing::debug!(
                                to = %preferred.label,
                                %err,
                                "subscriber stays: its preferred server is not usable yet"
                            ),
                        }
                    }
                }
                _ = shutdown.changed() => break SessionEnd::Shutdown,
            }
        };

        if !matches!(end, SessionEnd::HandedOver(_)) {
            // A handoff leaves the subscriber subscribed throughout.
            self.subscribed.store(false, Ordering::Release);
            self.set_server(None);
            self.ready.send_replace(false);
            self.metrics
                .set_subscriber_endpoint(self.role == "requests", None);
            self.subscriptions.lock().await.session = None;
        }
        session.close();
        end
    }

    /// Subscribes on `preferred` next to `old` and moves the stream there at
    /// a marker (see [`crate::handoff`]); `old` keeps delivering if anything
    /// fails.
    async fn hand_off(&self, old: &Session, preferred: &Endpoint) -> Result<Session, Error> {
        let marker = handoff::marker_channel(&self.marker_prefix, self.role);
        let (gate, new_seen) = Gate::from_marker(&self.marker_prefix, &marker);
        // Connected before taking the lock: an unreachable server must not
        // hold up new subscriptions for a connect timeout.
        let new = self.connect(preferred, gate).await?;
        // A replica still syncing would keep the subscriber counted on two
        // servers (NUMSUB) until the marker times out: ask it first.
        let info: Result<String, _> = new.client.info(Some(InfoKind::Replication)).await;
        let unready = match &info {
            Ok(info) => not_in_sync(info),
            Err(err) => Some(err.to_string()),
        };
        if let Some(reason) = unready {
            new.close();
            return Err(Error::Handoff(reason));
        }
        // New subscriptions wait until the handoff is decided, so each lands
        // on the connection that stays.
        let mut set = self.subscriptions.lock().await;
        let new = new.subscribe(&set, Some(&marker)).await?;
        let old_seen = old.gate.until_marker(&marker);
        let exchanged = async {
            // Applied before the marker is published, or the old server
            // could pass the marker before it listens for it.
            subscribe_applied(&old.client, vec![marker.clone()], Vec::new()).await?;
            let _: RedisValue = self.marker_publisher.publish(marker.clone(), "").await?;
            let both_seen = async { old_seen.await.is_ok() && new_seen.await.is_ok() };
            match tokio::time::timeout(self.connect_timeout, both_seen).await {
                Ok(true) => Ok(()),
                _ => Err(Error::timeout(
                    "handoff marker did not arrive on both servers",
                )),
            }
        }
        .await;
        let exchanged = exchanged.and_then(|()| {
            if old.gate.overflowing() || new.gate.overflowing() {
                Err(Error::timeout("handoff held too many messages"))
            } else {
                Ok(())
            }
        });
        match exchanged {
            Ok(()) => {
                old.gate.close();
                new.gate.open_and_flush(&self.sink);
                set.session = Some(new.client.clone());
                drop(set);
                let client = new.client.clone();
                tokio::spawn(async move {
                    let _ = client.unsubscribe(marker).await;
                });
                Ok(new)
            }
            Err(err) => {
                old.gate.open_and_flush(&self.sink);
                new.close();
                let client = old.client.clone();
                tokio::spawn(async move {
                    let _ = client.unsubscribe(marker).await;
                });
                Err(err)
            }
        }
    }
}

/// How often a subscriber that is not on its preferred server tries to move
/// back there (after a failover, or a replica's restart).
const MOVE_BACK_INTERVAL: Duration = Duration::from_secs(5);

/// One live subscriber connection and the task forwarding its messages.
struct Session {
    endpoint: Endpoint,
    client: Client,
    connection: fred::types::ConnectHandle,
    forwarder: JoinHandle<()>,
    gate: Arc<Gate>,
    started: Instant,
    channels: usize,
    patterns: usize,
}

impl Session {
    /// Subscribes everything in `set` (and `extra_channel`); closes the
    /// session on failure.
    async fn subscribe(
        mut self,
        set: &SubscriptionSet,
        extra_channel: Option<&str>,
    ) -> Result<Self, Error> {
        let mut channels: Vec<String> = set.channels.iter().cloned().collect();
        channels.extend(extra_channel.map(str::to_owned));
        let patterns: Vec<String> = set.patterns.iter().cloned().collect();
        self.channels = set.channels.len();
        self.patterns = patterns.len();
        // Applied by the server when this returns: a handoff publishes its
        // marker next, and a pattern the server applied only after the
        // marker passed would miss the messages right after it.
        match subscribe_applied(&self.client, channels, patterns).await {
            Ok(()) => Ok(self),
            Err(err) => {
                self.close();
                Err(err.into())
            }
        }
    }

    fn close(self) {
        self.forwarder.abort();
        quit_in_background(&self.client);
        if !self.connection.is_finished() {
            self.connection.abort();
        }
    }
}

async fn forward_messages(
    mut messages: tokio::sync::broadcast::Receiver<Message>,
    gate: Arc<Gate>,
    sink: InboundSink,
    metrics: Arc<AdapterMetrics>,
) {
    loop {
        match messages.recv().await {
            Ok(message) => {
                let payload = match message.value {
                    RedisValue::Bytes(bytes) => bytes,
                    RedisValue::String(text) => text.into_inner(),
                    other => {
                        metrics.garbage(GarbageKind::Channel);
                        tracing::debug!(channel = &*message.channel, kind = ?other.kind(), "non-bulk pub/sub payload");
                        continue;
                    }
                };
                let inbound = Inbound {
                    channel: message.channel.to_string(),
                    payload,
                };
                gate.pass(inbound, &sink);
            }
            Err(RecvError::Lagged(missed)) => {
                metrics.dropped_many(DropReason::SubscriberLagged, missed);
                tracing::warn!(missed, "subscriber fell behind, messages dropped");
            }
            Err(RecvError::Closed) => return,
        }
    }
}
