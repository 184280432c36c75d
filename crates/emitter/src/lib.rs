//! Push Socket.IO events into a Redis-backed Socket.IO cluster from any
//! process, without being a Socket.IO server: the Rust counterpart of Node's
//! `@socket.io/redis-emitter` 5.x, speaking its exact wire format (through the
//! shared `wire` crate) so Node servers and our gateways both accept it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), emitter::EmitterError> {
//! use emitter::{Emitter, RedisConfig};
//! let io = Emitter::connect(&RedisConfig::new("redis://127.0.0.1:6379")).await?;
//! io.emit("message", ["Hello!"]).await?;
//! io.of("/chat").to("room1").except("room2").emit("news", [1, 2]).await?;
//! io.to(["a", "b"]).sockets_join("c").await?;
//! # Ok(()) }
//! ```
//!
//! The crate also holds what the `emitter` binary needs (configuration,
//! argument parsing, the HTTP service) so it can be unit tested.

pub mod config;
pub mod emitter;
pub mod error;
pub mod http;
pub mod metrics;
pub mod request;
/// Event arguments from JSON (`{"$binary": ...}` for bytes), shared with
/// the gateway's hooks.
pub use protocol::json_args as value;

pub use config::{RedisConfig, Settings, SettingsError};
pub use emitter::{is_reserved_event, BroadcastOperator, Emitter, IntoRooms, RESERVED_EVENTS};
pub use error::EmitterError;
pub use value::{json_to_value, parse_cli_arg, ArgError};
pub use wire::EMITTER_UID;
