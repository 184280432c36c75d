//! A [socketioxide] adapter on Redis pub/sub that speaks the wire format of
//! Node's `@socket.io/redis-adapter` 8.x and `@socket.io/redis-emitter` 5.x,
//! so Rust gateways and Node servers can share one Redis.
//!
//! Topology: each gateway PUBLISHes on the master and SUBSCRIBEs on one
//! replica (spread by a hash of the node uid), failing over to the next
//! replica and then the master when its server dies, and resubscribing
//! everything on every new connection. With Redis Sentinel
//! (`sentinel_urls`), the master and the replicas are discovered and followed
//! across failovers instead. See [`AdapterConfig`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use adapter::{AdapterConfig, ClusterHandle, RedisAdapter};
//! let cluster = ClusterHandle::connect(AdapterConfig::new("redis://127.0.0.1:6379")).await?;
//! # Ok(()) }
//! // let (layer, io) = SocketIo::builder()
//! //     .with_adapter::<RedisAdapter<_>>(cluster.clone())
//! //     .build_layer();
//! // io.ns("/", on_connect).await?;
//! // cluster.on_server_side_emit("/", |emit| { .. });
//! ```
//!
//! For tests, [`MemoryBus`] stands in for Redis: nodes of one process on an
//! in-memory bus that routes as one Redis server does.
//!
//! What socketioxide's adapter trait cannot express (server-side emit,
//! fetching Node sockets whose ids are not socketioxide ids, node counts,
//! metrics, readiness) is on [`ClusterHandle`].
//!
//! [socketioxide]: https://docs.rs/socketioxide

mod ack;
mod adapter;
mod candidates;
mod config;
mod connection;
mod dispatch;
mod error;
mod fields;
mod garbage;
mod handle;
mod handoff;
mod inbound;
mod memory;
mod metrics;
mod outbound;
mod payload;
mod pending;
mod redis_transport;
mod requests;
mod server_side;
mod socket_details;
mod startup;
mod state;
mod subscriber;
mod transport;
mod worker;

pub use ack::ClusterAckStream;
pub use adapter::{InitRes, RedisAdapter};
pub use config::{AdapterConfig, SubscriberSelection};
pub use error::{Error, InitError, InvalidField};
pub use fields::{FieldDoc, FIELDS};
pub use handle::{ClusterHandle, Gathered};
pub use memory::{MemoryBus, Watcher};
pub use metrics::{
    AdapterMetrics, DropReason, GarbageKind, MessageKind, MetricsSnapshot, RequestKind,
    RequestOutcome, SendFailure,
};
pub use server_side::{ServerSideAck, ServerSideEmit, ServerSideEmitHandler};
pub use socket_details::{SocketDetails, SocketDetailsProvider};
pub use transport::Readiness;
pub use wire::FetchedSocket;
