//! The state shared by every namespace of one gateway: its bus to the other
//! nodes ([`crate::transport`]), what it sends ([`crate::outbound`]) and
//! receives ([`crate::dispatch`]), the namespaces registered on it, and the
//! node count.
//! The rest of it is in the modules around: [`crate::handle`] (what the
//! application sees), [`crate::startup`] (connecting it all),
//! and [`crate::pending`] (requests waiting for answers).

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, RwLock, Weak},
    time::Instant,
};

use socketioxide_core::Sid;
use tokio::sync::{mpsc, watch};
use wire::{Channels, Response};

use crate::{
    config::AdapterConfig,
    dispatch::{Dispatcher, NamespaceRoute},
    error::Error,
    garbage::GarbageLog,
    inbound::InboundSink,
    metrics::{AdapterMetrics, RequestKind, RequestOutcome},
    outbound::Outbound,
    server_side::{ServerSideAck, ServerSideEmitHandler},
    socket_details::{SocketDetails, SocketDetailsProvider},
    transport::Transport,
};

/// What the cluster API needs from a namespace, without knowing socketioxide's
/// emitter type.
pub(crate) trait NamespaceOps: Send + Sync {
    /// Local sockets matching `rooms`/`except`, with their rooms and details.
    fn local_fetch(&self, rooms: &[String], except: &[String]) -> Vec<wire::FetchedSocket>;
}

pub(crate) struct Shared {
    pub config: AdapterConfig,
    pub uid: String,
    /// Redis, or the in-memory bus of tests.
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) outbound: Outbound,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) namespaces: RwLock<HashMap<String, Weak<dyn NamespaceOps>>>,
    pub(crate) emit_handlers: RwLock<HashMap<String, ServerSideEmitHandler>>,
    pub(crate) socket_details: RwLock<Option<SocketDetailsProvider>>,
    pub(crate) pending: Mutex<HashMap<String, mpsc::Sender<Response>>>,
    pub metrics: Arc<AdapterMetrics>,
    pub garbage: Arc<GarbageLog>,
    pub(crate) shutdown: watch::Sender<bool>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("uid", &self.uid)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The state of a node on the bus `make_transport` builds, and that
    /// bus. The transport is handed the sink its subscriptions deliver to
    /// (this node's dispatcher) and the shutdown signal.
    pub(crate) fn build<T: Transport + 'static>(
        config: AdapterConfig,
        uid: String,
        metrics: Arc<AdapterMetrics>,
        make_transport: impl FnOnce(InboundSink, watch::Receiver<bool>) -> T,
    ) -> (Arc<Self>, Arc<T>) {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let garbage = Arc::new(GarbageLog::default());
        let dispatcher = Arc::new(Dispatcher::new(
            uid.clone(),
            config.prefix.clone(),
            metrics.clone(),
            garbage.clone(),
        ));
        let transport = Arc::new(make_transport(dispatcher.sink(), shutdown_rx));
        let outbound = Outbound {
            transport: transport.clone(),
            metrics: metrics.clone(),
        };
        let shared = Arc::new(Shared {
            uid,
            transport: transport.clone(),
            outbound,
            dispatcher,
            namespaces: RwLock::default(),
            emit_handlers: RwLock::default(),
            socket_details: RwLock::default(),
            pending: Mutex::default(),
            metrics,
            garbage,
            shutdown,
            config,
        });
        (shared, transport)
    }

    pub(crate) fn channels(&self, nsp: &str) -> Channels {
        Channels::new(&self.config.prefix, nsp)
    }

    /// The legacy emitter's channel.
    pub(crate) fn legacy_channel(&self) -> &str {
        &self.dispatcher.legacy_channel
    }

    pub(crate) fn register_route(
        &self,
        nsp: &str,
        route: NamespaceRoute,
        ops: Weak<dyn NamespaceOps>,
    ) {
        self.dispatcher.add_route(nsp, route);
        if let Ok(mut namespaces) = self.namespaces.write() {
            namespaces.insert(nsp.to_owned(), ops);
        }
    }

    pub(crate) fn unregister_route(&self, nsp: &str) {
        self.dispatcher.remove_route(nsp);
        if let Ok(mut namespaces) = self.namespaces.write() {
            namespaces.remove(nsp);
        }
    }

    pub(crate) fn namespace_ops(&self, nsp: &str) -> Option<Arc<dyn NamespaceOps>> {
        self.namespaces.read().ok()?.get(nsp)?.upgrade()
    }

    pub(crate) fn emit_handler(&self, nsp: &str) -> Option<ServerSideEmitHandler> {
        self.emit_handlers.read().ok()?.get(nsp).cloned()
    }

    pub(crate) fn socket_details(&self, nsp: &str, sid: Sid) -> SocketDetails {
        let provider = self.socket_details.read().ok().and_then(|p| p.clone());
        provider
            .and_then(|provider| provider(nsp, sid))
            .unwrap_or_else(SocketDetails::unknown)
    }

    pub(crate) fn server_side_ack(&self, channel: String, request_id: String) -> ServerSideAck {
        ServerSideAck::new(self.outbound.clone(), channel, request_id)
    }

    /// `PUBSUB NUMSUB` of the request channel over every server, bounded by
    /// the request timeout here rather than by the caller, so that a
    /// request Redis does not answer is counted (as a timeout) and not
    /// lost with a cancelled future.
    pub(crate) async fn server_count(&self, nsp: &str) -> Result<usize, Error> {
        let started = Instant::now();
        let channel = self.channels(nsp).request().to_owned();
        let result = tokio::time::timeout(
            self.config.request_timeout(),
            self.transport.subscriber_count(&channel),
        )
        .await
        .unwrap_or_else(|_| Err(Error::timeout("PUBSUB NUMSUB")));
        let outcome = match &result {
            Ok(count) => {
                self.metrics.set_counted_nodes(*count as u64);
                RequestOutcome::Complete
            }
            Err(err) if err.is_timeout() => RequestOutcome::Timeout,
            Err(_) => RequestOutcome::Error,
        };
        self.metrics
            .request_done(RequestKind::ServerCount, outcome, started.elapsed());
        result
    }

    /// Nodes other than this one that will answer a request on `nsp`.
    pub(crate) async fn remote_node_count(&self, nsp: &str) -> Result<usize, Error> {
        let total = self.server_count(nsp).await?;
        // We are only in the count while our request subscriber is subscribed.
        let own = usize::from(self.transport.readiness().request_subscriber_ready);
        Ok(total.saturating_sub(own))
    }
}
