//! What the application holds: the [`ClusterHandle`], for what socketioxide's
//! adapter trait has no method for (server-side emits, readiness, node
//! counts, socket details), and the public types it hands out.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use socketioxide_core::Sid;
use wire::{Channels, Request, Response};

use crate::{
    config::AdapterConfig,
    error::Error,
    metrics::{AdapterMetrics, MessageKind, RequestKind},
    server_side::ServerSideEmit,
    socket_details::SocketDetails,
    state::Shared,
    transport::Readiness,
};

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
    /// No other node to ask: nothing expected, nothing answered.
    pub(crate) fn nobody() -> Self {
        Self {
            items: Vec::new(),
            expected: 0,
            answered: 0,
        }
    }

    /// Whether every expected node answered.
    pub fn complete(&self) -> bool {
        self.answered >= self.expected
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
        self.shared.transport.replication_lag_bytes().await
    }

    /// Connection and subscription state, for a readiness probe.
    pub fn readiness(&self) -> Readiness {
        self.shared.transport.readiness()
    }

    /// Wait until [`Readiness::is_ready`], at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        self.shared.transport.wait_subscribed(timeout).await && self.readiness().is_ready()
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
            .outbound
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
            return Ok(Gathered::nobody());
        }
        let request_id = Sid::new().to_string();
        let mut pending = shared.register_pending(&request_id, expected);
        let request = Request::ServerSideEmit {
            uid: Some(shared.uid.clone()),
            request_id: Some(request_id),
            data,
        };
        shared
            .outbound
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
        self.shared.transport.close().await;
    }
}
