//! Pure (no I/O) codecs for the Socket.IO cluster.
//!
//! Gateways, the Redis adapter and the load generator all need to turn bytes
//! into packets and back without sharing any runtime state, so everything
//! here is a plain function or a small state machine over owned buffers:
//!
//! - [`socketio`]: Socket.IO packet text codec (socket.io-parser 4.2.4
//!   compatible) plus a stateful decoder that reassembles binary packets.
//! - [`engineio`]: Engine.IO v4 and v3 packet framing for WebSocket frames and
//!   HTTP long-polling payloads.
//! - [`convert`]: the hot path between the msgpack value trees carried on
//!   Redis (binary inline) and the Socket.IO JSON text plus attachments
//!   carried on sockets.
//! - [`json_args`]: event arguments to and from plain JSON, bytes as
//!   `{"$binary": "<base64>"}` (the emitter's HTTP API, the gateway's
//!   hooks).

pub mod convert;
pub mod engineio;
mod error;
mod jsfmt;
pub mod json_args;
pub mod socketio;

pub use error::ProtocolError;
