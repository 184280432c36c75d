//! The Redis wire format of Node's `@socket.io/redis-adapter` 8.x and
//! `@socket.io/redis-emitter` 5.x (plus the 2014 `socket.io-emitter` 0.2.0),
//! as a pure codec with no I/O.
//!
//! The adapter and the emitter both depend on this crate so that there is
//! exactly one encoder and one decoder for every message that crosses Redis:
//! channel names ([`channel`]), broadcast messages ([`broadcast`]),
//! inter-node requests and responses ([`request`]) and the legacy emitter
//! message ([`legacy`]); and the ClusterAdapter format of socket.io-adapter
//! 2.5 ([`cluster`]), which Node's sharded and streams adapters speak.
//! Decoders accept what every Node version in the wild
//! writes (notepack.io 2 and 3, msgpack-js 0.3); encoders write what the
//! current Node packages expect, byte for byte where the Node side is
//! deterministic.

pub mod broadcast;
pub mod channel;
pub mod cluster;
mod error;
pub mod glob;
pub mod legacy;
mod msgpack;
pub mod request;
pub mod response;

pub use broadcast::{
    peek_uid, BroadcastFlags, BroadcastMessage, BroadcastOpts, BroadcastPacket, PacketKind,
};
pub use channel::{legacy_emitter_channel, Channels};
pub use cluster::{
    ClusterBody, ClusterMessage, ClusterMessageType, ClusterSocket, ShardedChannels,
    SubscriptionMode,
};
pub use error::DecodeError;
pub use glob::pattern_matches;
pub use legacy::LegacyEmitterMessage;
pub use request::{Request, RequestOpts, RequestType};
pub use response::{FetchedSocket, Response};

/// The uid that `@socket.io/redis-emitter` puts in its broadcasts and in its
/// server-side emits; a node uid is never this string.
pub const EMITTER_UID: &str = "emitter";
