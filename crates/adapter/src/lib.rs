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
mod metrics;
mod payload;
mod pending;
mod requests;
mod startup;
mod state;
mod subscriber;
mod worker;

pub use ack::ClusterAckStream;
pub use adapter::{InitRes, RedisAdapter};
pub use config::{AdapterConfig, InvalidField, SubscriberSelection};
pub use error::{Error, InitError};
pub use fields::{FieldDoc, FIELDS};
pub use handle::{
    ClusterHandle, Gathered, Readiness, ServerSideAck, ServerSideEmit, ServerSideEmitHandler,
    SocketDetails, SocketDetailsProvider,
};
pub use metrics::{
    AdapterMetrics, DropReason, GarbageKind, MessageKind, MetricsSnapshot, RequestKind,
    RequestOutcome, SendFailure,
};
pub use wire::FetchedSocket;
