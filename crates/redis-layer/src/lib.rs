//! The Redis side of the cluster, shared by the adapter and the emitter.
//!
//! Both talk to the same servers the same way: data-node URLs with an
//! optional private CA, Redis Sentinel to find the master and its usable
//! replicas, and a publisher that must stay on the master across failovers.
//! Written once here, so the two cannot drift apart. Nothing here knows
//! about Socket.IO; the decisions (which replica is usable, which master is
//! current) are pure functions in [`replicas`], apart from the I/O.

pub mod client;
pub mod endpoint;
pub mod error;
pub mod follower;
pub mod info;
pub mod pubsub;
pub mod replicas;
pub mod sentinel;
pub mod topology;

pub use endpoint::{
    connected_addr, node_config, quit_in_background, redact, server_addr, Endpoint,
};
pub use error::Error;
pub use follower::{spawn_publisher_follower, MasterFollower};
pub use pubsub::subscribe_applied;
pub use sentinel::SentinelSettings;
pub use topology::{discover, spawn_watcher, Topology, TopologyRx};
