//! The state shared by every namespace of one gateway: the Redis
//! connections, the routing of inbound messages to namespaces, the pending
//! requests, and the [`ClusterHandle`] the application uses for what
//! socketioxide's adapter trait has no method for.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, RwLock, Weak},
    time::{Duration, Instant},
};

use bytes::Bytes;
use fred::{
    clients::Client,
    interfaces::{ClientLike, PubsubInterface},
    types::{InfoKind, Value as RedisValue},
};
use socketioxide_core::Sid;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;
use wire::{Channels, Request, Response};

use crate::{
    config::candidate_order,
    config::AdapterConfig,
    connection::{
        build_counter, build_publisher, Candidates, Endpoint, Inbound, InboundSink, Subscriber,
    },
    error::Error,
    garbage::GarbageLog,
    metrics::{AdapterMetrics, DropReason, GarbageKind, MessageKind, RequestKind, RequestOutcome},
};
use redis_layer::{connected_addr, info::info_int, Topology, TopologyRx};

/// A command connection used for `PUBSUB NUMSUB` on one replica.
#[derive(Debug, Clone)]
struct Counter {
    addr: String,
    label: String,
    client: Client,
}

/// A broadcast waiting for its namespace worker.
#[derive(Debug)]
pub(crate) enum BroadcastItem {
    /// Raw `[uid, packet, opts]`, with the room of a single-room channel.
    Raw {
        room: Option<String>,
        payload: Bytes,
        channel: String,
    },
    /// An already decoded legacy emitter message.
    Legacy(wire::LegacyEmitterMessage),
}

/// A request or response waiting for its namespace worker.
#[derive(Debug)]
pub(crate) enum ControlItem {
    Request { payload: Bytes, channel: String },
    Response { payload: Bytes, channel: String },
}

/// The inbound queues of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct NamespaceRoute {
    pub broadcasts: mpsc::Sender<BroadcastItem>,
    pub control: mpsc::Sender<ControlItem>,
}

/// What the cluster API needs from a namespace, without knowing socketioxide's
/// emitter type.
pub(crate) trait NamespaceOps: Send + Sync {
    /// Local sockets matching `rooms`/`except`, with their rooms and details.
    fn local_fetch(&self, rooms: &[String], except: &[String]) -> Vec<wire::FetchedSocket>;
}

/// Extra information about a local socket for remote `fetchSockets`
/// answers: Node's `handshake` and `data`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SocketDetails {
    /// `{headers,time,address,xdomain,secure,issued,url,query,auth}`.
    pub handshake: serde_json::Value,
    /// The application's `socket.data`.
    pub data: serde_json::Value,
}

/// Looks up [`SocketDetails`] of a local socket: `(namespace, socket id)`.
pub type SocketDetailsProvider = Arc<dyn Fn(&str, Sid) -> Option<SocketDetails> + Send + Sync>;

/// Handler of incoming server-side emits of one namespace.
pub type ServerSideEmitHandler = Arc<dyn Fn(ServerSideEmit) + Send + Sync>;

/// A server-side emit (`io.serverSideEmit`) received from another node.
#[derive(Debug)]
pub struct ServerSideEmit {
    /// The namespace it was emitted on.
    pub nsp: String,
    /// The uid of the sending node (`"emitter"` for redis-emitter).
    pub from: Option<String>,
    /// `[event, ..args]`.
    pub data: Vec<serde_json::Value>,
    /// Present when the sender waits for an acknowledgement.
    pub ack: Option<ServerSideAck>,
}

impl ServerSideEmit {
    /// The event name, when the first element is a string.
    pub fn event(&self) -> Option<&str> {
        self.data.first().and_then(|v| v.as_str())
    }
    /// The arguments after the event name.
    pub fn args(&self) -> &[serde_json::Value] {
        self.data.get(1..).unwrap_or(&[])
    }
}

/// Answers one server-side emit. Only the first answer counts, as in Node.
pub struct ServerSideAck {
    shared: Arc<Shared>,
    channel: String,
    request_id: String,
}

impl fmt::Debug for ServerSideAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSideAck")
            .field("channel", &self.channel)
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl ServerSideAck {
    /// Send the acknowledgement back to the emitting node.
    pub async fn send(self, data: serde_json::Value) -> Result<(), Error> {
        let response = Response::ServerSideEmitAck {
            request_id: self.request_id,
            data: Some(data),
        };
        self.shared
            .publish(&self.channel, response.encode(), MessageKind::Response)
            .await
    }
}

/// What a cluster request gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct Gathered<T> {
    /// Every answer that arrived, local contributions included where the
    /// operation has any.
    pub items: Vec<T>,
    /// How many other nodes were expected to answer.
    pub expected: usize,
    /// How many other nodes answered before the timeout.
    pub answered: usize,
}

impl<T> Gathered<T> {
    /// Whether every expected node answered.
    pub fn complete(&self) -> bool {
        self.answered >= self.expected
    }
}

/// Whether the adapter can do its job right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The publisher connection to the master is up.
    pub publisher_connected: bool,
    /// The broadcast subscriber is connected with every subscription applied.
    pub subscriber_ready: bool,
    /// The request subscriber is ready (same as `subscriber_ready` unless
    /// `requests_on_master`).
    pub request_subscriber_ready: bool,
}

impl Readiness {
    /// All connections are up.
    pub fn is_ready(&self) -> bool {
        self.publisher_connected && self.subscriber_ready && self.request_subscriber_ready
    }
}

pub(crate) struct Shared {
    pub config: AdapterConfig,
    pub uid: String,
    pub publisher: Client,
    /// One per replica; follows the topology under Sentinel.
    counters: RwLock<Vec<Counter>>,
    pub broadcast_subscriber: Arc<Subscriber>,
    pub request_subscriber: Arc<Subscriber>,
    routes: RwLock<HashMap<String, NamespaceRoute>>,
    namespaces: RwLock<HashMap<String, Weak<dyn NamespaceOps>>>,
    emit_handlers: RwLock<HashMap<String, ServerSideEmitHandler>>,
    socket_details: RwLock<Option<SocketDetailsProvider>>,
    pending: Mutex<HashMap<String, mpsc::Sender<Response>>>,
    pub metrics: Arc<AdapterMetrics>,
    pub garbage: GarbageLog,
    legacy_channel: String,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("uid", &self.uid)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The adapter state: give a clone to
/// `SocketIo::builder().with_adapter::<RedisAdapter<_>>(handle.clone())` and
/// keep one to reach the cluster (server-side emit, full `fetchSockets`,
/// node count, metrics, readiness).
#[derive(Clone, Debug)]
pub struct ClusterHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ClusterHandle {
    /// Connect the publisher to the master and start the subscribers.
    ///
    /// Fails when a URL is invalid or the master cannot be reached. Waits
    /// (bounded) for the subscribers' first connection; if none is
    /// reachable yet they keep trying in the background and
    /// [`Self::readiness`] says so.
    pub async fn connect(config: AdapterConfig) -> Result<Self, Error> {
        let uid = Sid::new().to_string();
        let fixed_replicas = config
            .replica_urls
            .iter()
            .map(|url| Endpoint::parse(url, config.tls_ca_file.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let random_seed = Instant::now().elapsed().subsec_nanos() as u64
            ^ std::process::id() as u64
            ^ fnv(uid.as_bytes());

        // Where the master is, and whether it can move.
        let (master, sentinel) = if config.uses_sentinel() {
            let settings = config.sentinel_settings()?;
            let discovered = tokio::time::timeout(
                redis_layer::topology::discovery_timeout(&settings),
                redis_layer::discover(&settings),
            )
            .await
            .map_err(|_| {
                Error::from(redis_layer::Error::Sentinel(
                    "timed out asking the sentinels".to_owned(),
                ))
            })??;
            tracing::info!(
                master = %discovered.master.label,
                replicas = discovered.replicas.len(),
                "topology discovered through sentinel"
            );
            let master = discovered.master.clone();
            let (topology_tx, topology_rx) = watch::channel(Arc::new(discovered));
            (master, Some((settings, topology_tx, topology_rx)))
        } else {
            (
                Endpoint::parse(&config.url, config.tls_ca_file.as_deref())?,
                None,
            )
        };

        let metrics = Arc::new(AdapterMetrics::default());
        let publisher = match &sentinel {
            Some((settings, _, _)) => {
                let mut endpoint = master.clone();
                endpoint.config = settings.publisher_config();
                build_publisher(&endpoint, &config)?
            }
            None => build_publisher(&master, &config)?,
        };
        let span = tracing::info_span!("redis_publisher", endpoint = %master.label);
        tokio::time::timeout(config.connect_timeout() * 3, publisher.init())
            .instrument(span)
            .await
            .map_err(|_| Error::timeout("timed out connecting to the master"))??;
        metrics.set_publisher_connected(true);
        {
            let metrics = metrics.clone();
            let mut errors = fred::interfaces::EventInterface::error_rx(&publisher);
            let mut reconnects = fred::interfaces::EventInterface::reconnect_rx(&publisher);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        err = errors.recv() => match err {
                            Ok((err, _)) => {
                                metrics.set_publisher_connected(false);
                                tracing::warn!(%err, "publisher connection error");
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                            Err(_) => {}
                        },
                        server = reconnects.recv() => match server {
                            Ok(server) => {
                                metrics.set_publisher_connected(true);
                                tracing::info!(%server, "publisher reconnected");
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                            Err(_) => {}
                        },
                    }
                }
            });
        }

        // Which servers the subscribers try, in order. Configured replicas
        // take precedence over discovered ones; the master may still move.
        let selection = config.subscriber_selection;
        let (broadcast_candidates, request_candidates, counted_replicas) = match &sentinel {
            None => {
                let order = candidate_order(selection, fixed_replicas.len(), &uid, random_seed)
                    .into_iter()
                    .map(|choice| match choice {
                        Some(i) => fixed_replicas[i].clone(),
                        None => master.clone(),
                    })
                    .collect();
                (
                    Candidates::Fixed(order),
                    Candidates::Fixed(vec![master.clone()]),
                    fixed_replicas.clone(),
                )
            }
            Some((_, _, topology_rx)) => {
                let order_uid = uid.clone();
                let fixed = fixed_replicas.clone();
                let order = move |topology: &Topology| {
                    let replicas = if fixed.is_empty() {
                        &topology.replicas
                    } else {
                        &fixed
                    };
                    candidate_order(selection, replicas.len(), &order_uid, random_seed)
                        .into_iter()
                        .map(|choice| match choice {
                            Some(i) => replicas[i].clone(),
                            None => topology.master.clone(),
                        })
                        .collect()
                };
                let counted = if fixed_replicas.is_empty() {
                    topology_rx.borrow().replicas.clone()
                } else {
                    fixed_replicas.clone()
                };
                (
                    Candidates::Discovered {
                        topology: topology_rx.clone(),
                        order: Box::new(order),
                    },
                    Candidates::Discovered {
                        topology: topology_rx.clone(),
                        order: Box::new(|topology: &Topology| vec![topology.master.clone()]),
                    },
                    counted,
                )
            }
        };
        let counters = counted_replicas
            .iter()
            .map(|endpoint| new_counter(endpoint, &config))
            .collect::<Result<Vec<_>, Error>>()?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let legacy_channel = wire::legacy_emitter_channel(&config.prefix);
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| {
            let sink: InboundSink = {
                let weak = weak.clone();
                Arc::new(move |inbound: Inbound| {
                    if let Some(shared) = weak.upgrade() {
                        shared.dispatch(inbound);
                    }
                })
            };
            let broadcast_subscriber = Subscriber::new(
                if config.requests_on_master {
                    "broadcast"
                } else {
                    "all"
                },
                broadcast_candidates,
                &config,
                sink.clone(),
                publisher.clone(),
                metrics.clone(),
                shutdown_rx.clone(),
            );
            let request_subscriber = if config.requests_on_master {
                Subscriber::new(
                    "requests",
                    request_candidates,
                    &config,
                    sink,
                    publisher.clone(),
                    metrics.clone(),
                    shutdown_rx.clone(),
                )
            } else {
                broadcast_subscriber.clone()
            };
            Shared {
                uid,
                publisher,
                counters: RwLock::new(counters),
                broadcast_subscriber,
                request_subscriber,
                routes: RwLock::default(),
                namespaces: RwLock::default(),
                emit_handlers: RwLock::default(),
                socket_details: RwLock::default(),
                pending: Mutex::default(),
                metrics,
                garbage: GarbageLog::default(),
                legacy_channel,
                shutdown,
                config,
            }
        });

        if shared.config.legacy_emitter {
            shared
                .broadcast_subscriber
                .add(std::slice::from_ref(&shared.legacy_channel), &[])
                .await?;
        }
        if let Some((settings, topology_tx, topology_rx)) = sentinel {
            redis_layer::spawn_watcher(settings, topology_tx, shared.shutdown.subscribe());
            spawn_topology_follower(
                Arc::downgrade(&shared),
                topology_rx,
                !shared.config.replica_urls.is_empty(),
            );
        }
        let _supervisor = shared.broadcast_subscriber.spawn();
        if shared.config.requests_on_master {
            let _supervisor = shared.request_subscriber.spawn();
        }
        let known_replicas = shared.counters.read().map(|c| c.len()).unwrap_or(0);
        let wait = shared.config.connect_timeout() * (known_replicas as u32 + 2);
        let subscribed = shared.broadcast_subscriber.wait_subscribed(wait).await
            && shared.request_subscriber.wait_subscribed(wait).await;
        if !subscribed {
            tracing::warn!("no subscriber connection yet, retrying in the background");
        }
        tracing::info!(uid = %shared.uid, "redis adapter connected");
        Ok(Self { shared })
    }

    /// This node's uid on the wire.
    pub fn uid(&self) -> &str {
        &self.shared.uid
    }

    /// The configuration in use.
    pub fn config(&self) -> &AdapterConfig {
        &self.shared.config
    }

    /// The adapter's counters.
    pub fn metrics(&self) -> &Arc<AdapterMetrics> {
        &self.shared.metrics
    }

    /// How many bytes of the master's replication stream (its PUBLISHes
    /// included) the server the broadcast subscriber is on has not applied
    /// yet: the master's `master_repl_offset` minus that replica's
    /// `slave_repl_offset`, from `INFO replication` on the connections the
    /// adapter already holds (so credentials, TLS and Sentinel discovery
    /// apply). `Some(0)` when subscribed on the master; `None` when the
    /// subscriber is not connected or a server did not answer in time.
    pub async fn replication_lag_bytes(&self) -> Option<i64> {
        let addr = self.shared.broadcast_subscriber.server_addr()?;
        if connected_addr(&self.shared.publisher).as_ref() == Some(&addr) {
            return Some(0);
        }
        let replica = self
            .shared
            .counters
            .read()
            .ok()?
            .iter()
            .find(|counter| counter.addr == addr)
            .map(|counter| counter.client.clone())?;
        let timeout = self.shared.config.connect_timeout();
        let (master, replica) = futures_util::future::join(
            replication_offset(&self.shared.publisher, "master_repl_offset", timeout),
            replication_offset(&replica, "slave_repl_offset", timeout),
        )
        .await;
        Some((master? - replica?).max(0))
    }

    /// Connection and subscription state, for a readiness probe.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            publisher_connected: self.shared.publisher.is_connected(),
            subscriber_ready: self.shared.broadcast_subscriber.is_subscribed(),
            request_subscriber_ready: self.shared.request_subscriber.is_subscribed(),
        }
    }

    /// Wait until [`Readiness::is_ready`], at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let left = |now: Instant| deadline.saturating_duration_since(now);
        self.shared
            .broadcast_subscriber
            .wait_subscribed(left(Instant::now()))
            .await
            && self
                .shared
                .request_subscriber
                .wait_subscribed(left(Instant::now()))
                .await
            && self.readiness().is_ready()
    }

    /// Number of nodes serving namespace `nsp`, this one included: the sum of
    /// `PUBSUB NUMSUB` of its request channel over the master and every
    /// replica. Unreachable replicas count zero.
    pub async fn server_count(&self, nsp: &str) -> Result<usize, Error> {
        self.shared.server_count(nsp).await
    }

    /// Register the handler of server-side emits arriving on `nsp`
    /// (replacing any previous one). It runs on the namespace's inbound
    /// worker: it must not block (spawn for anything slow, e.g. the ack).
    pub fn on_server_side_emit(
        &self,
        nsp: impl Into<String>,
        handler: impl Fn(ServerSideEmit) + Send + Sync + 'static,
    ) {
        if let Ok(mut handlers) = self.shared.emit_handlers.write() {
            handlers.insert(nsp.into(), Arc::new(handler));
        }
    }

    /// Register how to find the handshake and data of a local socket for
    /// remote `fetchSockets` answers. Without it, sockets are reported with
    /// an empty handshake and `null` data.
    pub fn set_socket_details(
        &self,
        provider: impl Fn(&str, Sid) -> Option<SocketDetails> + Send + Sync + 'static,
    ) {
        if let Ok(mut slot) = self.shared.socket_details.write() {
            *slot = Some(Arc::new(provider));
        }
    }

    /// `io.of(nsp).serverSideEmit(event, ..args)` without acknowledgement:
    /// every other node's handler gets `data` (`[event, ..args]`) once. Not
    /// delivered to this node, as in Node.
    pub async fn server_side_emit(
        &self,
        nsp: &str,
        data: Vec<serde_json::Value>,
    ) -> Result<(), Error> {
        let channels = Channels::new(&self.shared.config.prefix, nsp);
        let request = Request::ServerSideEmit {
            uid: Some(self.shared.uid.clone()),
            request_id: None,
            data,
        };
        self.shared
            .publish(channels.request(), request.encode(), MessageKind::Request)
            .await
    }

    /// `serverSideEmitWithAck`: waits for one answer per other node, at most
    /// the request timeout, and returns what arrived.
    pub async fn server_side_emit_with_ack(
        &self,
        nsp: &str,
        data: Vec<serde_json::Value>,
    ) -> Result<Gathered<serde_json::Value>, Error> {
        let started = Instant::now();
        let shared = &self.shared;
        let channels = Channels::new(&shared.config.prefix, nsp);
        let expected = shared.remote_node_count(nsp).await?;
        if expected == 0 {
            return Ok(Gathered {
                items: Vec::new(),
                expected,
                answered: 0,
            });
        }
        let request_id = Sid::new().to_string();
        let mut pending = shared.register_pending(&request_id, expected);
        let request = Request::ServerSideEmit {
            uid: Some(shared.uid.clone()),
            request_id: Some(request_id),
            data,
        };
        shared
            .publish(channels.request(), request.encode(), MessageKind::Request)
            .await?;
        let mut items = Vec::new();
        let answered = pending
            .collect(expected, started, |response| {
                if let Response::ServerSideEmitAck { data, .. } = response {
                    items.push(data.unwrap_or(serde_json::Value::Null));
                    true
                } else {
                    false
                }
            })
            .await;
        shared.finish_request(RequestKind::ServerSideEmit, expected, answered, started);
        Ok(Gathered {
            items,
            expected,
            answered,
        })
    }

    /// Node's `fetchSockets` with everything Node returns (ids that are not
    /// socketioxide ids included, handshake, rooms, data), local sockets
    /// first. The namespace must be served by this node.
    pub async fn fetch_sockets(
        &self,
        nsp: &str,
        rooms: Vec<String>,
        except: Vec<String>,
    ) -> Result<Gathered<wire::FetchedSocket>, Error> {
        let ops = self
            .shared
            .namespace_ops(nsp)
            .ok_or_else(|| Error::UnknownNamespace(nsp.to_owned()))?;
        let mut gathered = self
            .shared
            .remote_fetch(nsp, rooms.clone(), except.clone())
            .await?;
        let mut items = ops.local_fetch(&rooms, &except);
        items.append(&mut gathered.items);
        gathered.items = items;
        Ok(gathered)
    }

    /// Stop the subscribers and close the connections.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.shared.publisher.quit()).await;
        let counters: Vec<Counter> = self
            .shared
            .counters
            .read()
            .map(|c| c.clone())
            .unwrap_or_default();
        for counter in counters {
            let _ = tokio::time::timeout(Duration::from_millis(200), counter.client.quit()).await;
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Responses of one pending request; unregisters itself when dropped.
pub(crate) struct Pending {
    shared: Arc<Shared>,
    request_id: String,
    rx: mpsc::Receiver<Response>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.remove(&self.request_id);
        }
    }
}

impl Pending {
    /// Feed responses to `accept` (which says whether a response counts as
    /// one node's answer) until `expected` answers or the request timeout
    /// counted from `started` (node counting included). Returns the number
    /// of answers.
    pub(crate) async fn collect(
        &mut self,
        expected: usize,
        started: Instant,
        mut accept: impl FnMut(Response) -> bool,
    ) -> usize {
        let deadline =
            tokio::time::Instant::from_std(started) + self.shared.config.request_timeout();
        let mut answered = 0;
        while answered < expected {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(response)) => {
                    if accept(response) {
                        answered += 1;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        answered
    }

    pub(crate) fn into_receiver(self) -> PendingReceiver {
        PendingReceiver {
            pending: Some(self),
        }
    }
}

/// A [`Pending`] whose receiver is polled directly (ack streams).
pub(crate) struct PendingReceiver {
    pending: Option<Pending>,
}

impl PendingReceiver {
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Response>> {
        match self.pending.as_mut() {
            Some(pending) => pending.rx.poll_recv(cx),
            None => std::task::Poll::Ready(None),
        }
    }
    pub(crate) fn close(&mut self) {
        self.pending = None;
    }
}

impl Shared {
    pub(crate) fn channels(&self, nsp: &str) -> Channels {
        Channels::new(&self.config.prefix, nsp)
    }

    pub(crate) async fn publish(
        &self,
        channel: &str,
        payload: Vec<u8>,
        kind: MessageKind,
    ) -> Result<(), Error> {
        if kind == MessageKind::Broadcast {
            self.metrics.broadcast_published(&payload);
        }
        let result: Result<i64, _> = self
            .publisher
            .publish(channel, Bytes::from(payload))
            .instrument(tracing::debug_span!("redis_publish", channel))
            .await;
        match result {
            Ok(_) => {
                self.metrics.published(kind);
                Ok(())
            }
            Err(err) => {
                tracing::warn!(channel, %err, "publish failed");
                Err(err.into())
            }
        }
    }

    pub(crate) fn register_route(
        &self,
        nsp: &str,
        route: NamespaceRoute,
        ops: Weak<dyn NamespaceOps>,
    ) {
        if let Ok(mut routes) = self.routes.write() {
            routes.insert(nsp.to_owned(), route);
        }
        if let Ok(mut namespaces) = self.namespaces.write() {
            namespaces.insert(nsp.to_owned(), ops);
        }
    }

    pub(crate) fn unregister_route(&self, nsp: &str) {
        if let Ok(mut routes) = self.routes.write() {
            routes.remove(nsp);
        }
        if let Ok(mut namespaces) = self.namespaces.write() {
            namespaces.remove(nsp);
        }
    }

    fn namespace_ops(&self, nsp: &str) -> Option<Arc<dyn NamespaceOps>> {
        self.namespaces.read().ok()?.get(nsp)?.upgrade()
    }

    pub(crate) fn emit_handler(&self, nsp: &str) -> Option<ServerSideEmitHandler> {
        self.emit_handlers.read().ok()?.get(nsp).cloned()
    }

    pub(crate) fn socket_details(&self, nsp: &str, sid: Sid) -> SocketDetails {
        let provider = self.socket_details.read().ok().and_then(|p| p.clone());
        provider
            .and_then(|provider| provider(nsp, sid))
            .unwrap_or_else(|| SocketDetails {
                handshake: serde_json::json!({}),
                data: serde_json::Value::Null,
            })
    }

    pub(crate) fn server_side_ack(
        self: &Arc<Self>,
        channel: String,
        request_id: String,
    ) -> ServerSideAck {
        ServerSideAck {
            shared: self.clone(),
            channel,
            request_id,
        }
    }

    pub(crate) fn register_pending(self: &Arc<Self>, request_id: &str, capacity: usize) -> Pending {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(request_id.to_owned(), tx);
        }
        Pending {
            shared: self.clone(),
            request_id: request_id.to_owned(),
            rx,
        }
    }

    /// Hand a response to the request waiting for it.
    pub(crate) fn deliver_response(&self, response: Response) {
        let sender = self
            .pending
            .lock()
            .ok()
            .and_then(|pending| pending.get(response.request_id()).cloned());
        match sender {
            Some(sender) => {
                if sender.try_send(response).is_err() {
                    self.metrics.dropped(DropReason::QueueFull);
                }
            }
            // Responses to other nodes' requests on the shared channel.
            None => self.metrics.dropped(DropReason::UnknownRequest),
        }
    }

    pub(crate) async fn server_count(&self, nsp: &str) -> Result<usize, Error> {
        let started = Instant::now();
        let channel = self.channels(nsp).request().to_owned();
        let span = tracing::debug_span!("redis_numsub", channel = %channel);
        let result = async {
            let master = numsub(&self.publisher, &channel).await;
            let counters: Vec<Counter> = self
                .counters
                .read()
                .map(|c| c.clone())
                .unwrap_or_default();
            let replicas = futures_util::future::join_all(counters.iter().map(|Counter { label, client, .. }| {
                let channel = channel.clone();
                async move {
                    match tokio::time::timeout(self.config.connect_timeout(), numsub(client, &channel)).await {
                        Ok(Ok(count)) => count,
                        Ok(Err(err)) => {
                            tracing::debug!(replica = %label, %err, "NUMSUB failed, counting 0");
                            0
                        }
                        Err(_) => {
                            tracing::debug!(replica = %label, "NUMSUB timed out, counting 0");
                            0
                        }
                    }
                }
            }))
            .await;
            Ok::<_, Error>(master? + replicas.into_iter().sum::<usize>())
        }
        .instrument(span)
        .await;
        match &result {
            Ok(count) => {
                self.metrics.set_counted_nodes(*count as u64);
                self.metrics.request_done(
                    RequestKind::ServerCount,
                    RequestOutcome::Complete,
                    started.elapsed(),
                );
            }
            Err(_) => self.metrics.request_done(
                RequestKind::ServerCount,
                RequestOutcome::Error,
                started.elapsed(),
            ),
        }
        result
    }

    /// Nodes other than this one that will answer a request on `nsp`.
    pub(crate) async fn remote_node_count(&self, nsp: &str) -> Result<usize, Error> {
        let total = self.server_count(nsp).await?;
        // We are only in the count while our request subscriber is subscribed.
        let own = usize::from(self.request_subscriber.is_subscribed());
        Ok(total.saturating_sub(own))
    }

    pub(crate) fn finish_request(
        &self,
        kind: RequestKind,
        expected: usize,
        answered: usize,
        started: Instant,
    ) {
        let outcome = if answered >= expected {
            RequestOutcome::Complete
        } else {
            tracing::warn!(
                request = kind.as_str(),
                expected,
                answered,
                "request timed out, returning partial result"
            );
            RequestOutcome::Timeout
        };
        self.metrics.request_done(kind, outcome, started.elapsed());
    }

    /// Remote part of `fetchSockets` (type 5).
    pub(crate) async fn remote_fetch(
        self: &Arc<Self>,
        nsp: &str,
        rooms: Vec<String>,
        except: Vec<String>,
    ) -> Result<Gathered<wire::FetchedSocket>, Error> {
        let opts = wire::RequestOpts {
            rooms,
            except,
            flags: Default::default(),
        };
        self.gather(
            nsp,
            RequestKind::FetchSockets,
            |uid, request_id| Request::RemoteFetch {
                uid,
                request_id,
                opts,
            },
            Response::into_fetched_sockets,
        )
        .await
    }

    /// Remote part of `allRooms` (type 1).
    pub(crate) async fn remote_rooms(
        self: &Arc<Self>,
        nsp: &str,
    ) -> Result<Gathered<String>, Error> {
        self.gather(
            nsp,
            RequestKind::AllRooms,
            |uid, request_id| Request::AllRooms { uid, request_id },
            |response| match response {
                Response::AllRooms { rooms, .. } => Some(rooms),
                _ => None,
            },
        )
        .await
    }

    /// A request every other node answers with a list: publishes it, then
    /// gathers the answers' items until every node answered or the request
    /// timeout passes. `items` of a response that is not the expected kind
    /// returns `None` and does not count as an answer.
    async fn gather<T>(
        self: &Arc<Self>,
        nsp: &str,
        kind: RequestKind,
        request: impl FnOnce(Option<String>, String) -> Request,
        mut items_of: impl FnMut(Response) -> Option<Vec<T>>,
    ) -> Result<Gathered<T>, Error> {
        let started = Instant::now();
        let expected = self.remote_node_count(nsp).await?;
        if expected == 0 {
            return Ok(Gathered {
                items: Vec::new(),
                expected,
                answered: 0,
            });
        }
        let request_id = Sid::new().to_string();
        let mut pending = self.register_pending(&request_id, expected);
        let request = request(Some(self.uid.clone()), request_id);
        self.publish(
            self.channels(nsp).request(),
            request.encode(),
            MessageKind::Request,
        )
        .await?;
        let mut items = Vec::new();
        let answered = pending
            .collect(expected, started, |response| match items_of(response) {
                Some(mut answer) => {
                    items.append(&mut answer);
                    true
                }
                None => false,
            })
            .await;
        self.finish_request(kind, expected, answered, started);
        Ok(Gathered {
            items,
            expected,
            answered,
        })
    }

    /// Route one inbound message to its namespace queue. Runs on the
    /// subscriber's forwarding task: only cheap checks here.
    fn dispatch(&self, inbound: Inbound) {
        let Inbound { channel, payload } = inbound;
        let prefix = self.config.prefix.as_str();
        let Some(rest) = channel.strip_prefix(prefix) else {
            self.garbage.report(
                &self.metrics,
                GarbageKind::Channel,
                &channel,
                &"unexpected channel",
            );
            return;
        };
        if let Some(rest) = rest.strip_prefix('#') {
            if channel == self.legacy_channel {
                self.dispatch_legacy(&channel, &payload);
                return;
            }
            self.metrics.received(MessageKind::Broadcast);
            // `nsp#` or `nsp#room#`; namespaces never contain '#'.
            let Some((nsp, room)) = rest.split_once('#') else {
                self.garbage.report(
                    &self.metrics,
                    GarbageKind::Channel,
                    &channel,
                    &"no namespace",
                );
                return;
            };
            if wire::peek_uid(&payload) == Some(self.uid.as_str()) {
                self.metrics.own_echo(&payload);
                return;
            }
            let room = match room.strip_suffix('#') {
                Some(room) => Some(room.to_owned()),
                None if room.is_empty() => None,
                None => {
                    self.garbage.report(
                        &self.metrics,
                        GarbageKind::Channel,
                        &channel,
                        &"malformed room channel",
                    );
                    return;
                }
            };
            let Some(route) = self.route(nsp) else {
                self.metrics.dropped(DropReason::UnknownNamespace);
                return;
            };
            if route
                .broadcasts
                .try_send(BroadcastItem::Raw {
                    room,
                    payload,
                    channel: channel.clone(),
                })
                .is_err()
            {
                self.metrics.dropped(DropReason::QueueFull);
            }
        } else if let Some(rest) = rest.strip_prefix("-request#") {
            self.metrics.received(MessageKind::Request);
            let nsp = rest.strip_suffix('#').unwrap_or(rest);
            self.enqueue_control(
                nsp,
                ControlItem::Request {
                    payload,
                    channel: channel.clone(),
                },
            );
        } else if let Some(rest) = rest.strip_prefix("-response#") {
            self.metrics.received(MessageKind::Response);
            let nsp = rest.split('#').next().unwrap_or_default();
            self.enqueue_control(
                nsp,
                ControlItem::Response {
                    payload,
                    channel: channel.clone(),
                },
            );
        } else {
            self.garbage.report(
                &self.metrics,
                GarbageKind::Channel,
                &channel,
                &"unexpected channel",
            );
        }
    }

    fn enqueue_control(&self, nsp: &str, item: ControlItem) {
        let Some(route) = self.route(nsp) else {
            self.metrics.dropped(DropReason::UnknownNamespace);
            return;
        };
        if route.control.try_send(item).is_err() {
            self.metrics.dropped(DropReason::QueueFull);
        }
    }

    fn dispatch_legacy(&self, channel: &str, payload: &[u8]) {
        self.metrics.received(MessageKind::LegacyEmitter);
        match wire::LegacyEmitterMessage::decode(payload) {
            Ok(message) => {
                let Some(route) = self.route(&message.packet.nsp) else {
                    self.metrics.dropped(DropReason::UnknownNamespace);
                    return;
                };
                if route
                    .broadcasts
                    .try_send(BroadcastItem::Legacy(message))
                    .is_err()
                {
                    self.metrics.dropped(DropReason::QueueFull);
                }
            }
            Err(err) => {
                self.garbage
                    .report(&self.metrics, GarbageKind::LegacyEmitter, channel, &err);
            }
        }
    }

    fn route(&self, nsp: &str) -> Option<NamespaceRoute> {
        self.routes.read().ok()?.get(nsp).cloned()
    }
}

fn new_counter(endpoint: &Endpoint, config: &AdapterConfig) -> Result<Counter, Error> {
    let client = build_counter(endpoint, config)?;
    // Connect in the background: a dead replica must not block start-up.
    let _task = client.connect();
    Ok(Counter {
        addr: endpoint.addr.clone(),
        label: endpoint.label.clone(),
        client,
    })
}

/// Under Sentinel: keep the publisher on the master, and one node counter
/// per discovered replica.
fn spawn_topology_follower(shared: Weak<Shared>, mut topology: TopologyRx, fixed_replicas: bool) {
    if let Some(strong) = shared.upgrade() {
        // Ends with the topology watcher, at shutdown.
        redis_layer::spawn_publisher_follower(
            strong.publisher.clone(),
            topology.clone(),
            strong.config.sentinel_poll_interval(),
            strong.config.connect_timeout() * 2,
        );
    }
    if fixed_replicas {
        return;
    }
    tokio::spawn(async move {
        while topology.changed().await.is_ok() {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let current = topology.borrow_and_update().clone();
            let (removed, added) = {
                let Ok(mut counters) = shared.counters.write() else {
                    return;
                };
                let (kept, removed): (Vec<Counter>, Vec<Counter>) = counters
                    .drain(..)
                    .partition(|c| current.replicas.iter().any(|r| r.addr == c.addr));
                let mut added = Vec::new();
                *counters = kept;
                for replica in &current.replicas {
                    if counters.iter().all(|c| c.addr != replica.addr) {
                        match new_counter(replica, &shared.config) {
                            Ok(counter) => {
                                added.push(counter.label.clone());
                                counters.push(counter);
                            }
                            Err(err) => {
                                tracing::warn!(replica = %replica.label, %err, "cannot count nodes on replica")
                            }
                        }
                    }
                }
                (removed, added)
            };
            if !removed.is_empty() || !added.is_empty() {
                tracing::info!(
                    added = ?added,
                    removed = ?removed.iter().map(|c| c.label.as_str()).collect::<Vec<_>>(),
                    "node counters follow the topology"
                );
            }
            for counter in removed {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_millis(500), counter.client.quit())
                        .await;
                });
            }
        }
    });
}

/// One offset of `INFO replication` on `client`'s server, `None` if it did
/// not answer within `timeout`.
async fn replication_offset(client: &Client, field: &str, timeout: Duration) -> Option<i64> {
    let info: String = tokio::time::timeout(timeout, client.info(Some(InfoKind::Replication)))
        .await
        .ok()?
        .ok()?;
    info_int(&info, field)
}

async fn numsub(client: &Client, channel: &str) -> Result<usize, Error> {
    let reply: RedisValue = client.pubsub_numsub(channel).await?;
    // [channel, count] (RESP2 array) or {channel: count} (RESP3 map).
    let count = match reply {
        RedisValue::Array(items) => items.get(1).and_then(|v| v.as_i64()),
        RedisValue::Map(map) => map.inner().into_iter().next().and_then(|(_, v)| v.as_i64()),
        _ => None,
    };
    Ok(count.and_then(|c| usize::try_from(c).ok()).unwrap_or(0))
}
