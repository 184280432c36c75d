//! The state shared by every namespace of one gateway: the Redis
//! connections, the namespaces registered with them, and the node count.
//! The rest of it is in the modules around: [`crate::handle`] (what the
//! application sees), [`crate::startup`] (connecting it all),
//! [`crate::pending`] (requests waiting for answers) and
//! [`crate::dispatch`] (routing what the subscribers receive).

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
use wire::{Channels, Response};

use redis_layer::info::info_int;

use crate::{
    config::AdapterConfig,
    dispatch::NamespaceRoute,
    error::Error,
    garbage::GarbageLog,
    handle::{ServerSideAck, ServerSideEmitHandler, SocketDetails, SocketDetailsProvider},
    metrics::{AdapterMetrics, MessageKind, RequestKind, RequestOutcome},
    subscriber::Subscriber,
};

/// A command connection used for `PUBSUB NUMSUB` on one replica.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    pub addr: String,
    pub label: String,
    pub client: Client,
}

/// What the cluster API needs from a namespace, without knowing socketioxide's
/// emitter type.
pub(crate) trait NamespaceOps: Send + Sync {
    /// Local sockets matching `rooms`/`except`, with their rooms and details.
    fn local_fetch(&self, rooms: &[String], except: &[String]) -> Vec<wire::FetchedSocket>;
}

pub(crate) struct Shared {
    pub config: AdapterConfig,
    pub uid: String,
    pub publisher: Client,
    /// One per replica; follows the topology under Sentinel.
    pub(crate) counters: RwLock<Vec<Counter>>,
    pub broadcast_subscriber: Arc<Subscriber>,
    pub request_subscriber: Arc<Subscriber>,
    pub(crate) routes: RwLock<HashMap<String, NamespaceRoute>>,
    pub(crate) namespaces: RwLock<HashMap<String, Weak<dyn NamespaceOps>>>,
    pub(crate) emit_handlers: RwLock<HashMap<String, ServerSideEmitHandler>>,
    pub(crate) socket_details: RwLock<Option<SocketDetailsProvider>>,
    pub(crate) pending: Mutex<HashMap<String, mpsc::Sender<Response>>>,
    pub metrics: Arc<AdapterMetrics>,
    pub garbage: GarbageLog,
    pub(crate) legacy_channel: String,
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
}

/// One offset of `INFO replication` on `client`'s server, `None` if it did
/// not answer within `timeout`.
pub(crate) async fn replication_offset(
    client: &Client,
    field: &str,
    timeout: Duration,
) -> Option<i64> {
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
