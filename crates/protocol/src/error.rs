//! One error type for every decoder in the crate.
//!
//! Errors are plain data (`Clone + PartialEq`) so callers can match on them,
//! count them in metrics and compare them in tests; the underlying JSON parser
//! message is kept as text because `serde_json::Error` is neither.

use crate::socketio::PacketType;

/// Everything that can go wrong while decoding or converting a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An empty string or buffer where a packet was expected.
    #[error("empty packet")]
    Empty,
    /// The first character is not a known Socket.IO packet type (`0`..=`6`).
    #[error("unknown socket.io packet type {0:?}")]
    UnknownPacketType(char),
    /// The first character is not a known Engine.IO packet type (`0`..=`6`).
    #[error("unknown engine.io packet type {0:?}")]
    UnknownEioPacketType(char),
    /// A binary Engine.IO frame whose type byte is not `message` (4).
    #[error("unexpected engine.io binary packet type {0}")]
    UnexpectedBinaryPacketType(u8),
    /// The `<n>-` attachment count of a binary packet is malformed.
    #[error("illegal attachments count")]
    InvalidAttachmentCount,
    /// A binary packet announces more attachments than the decoder accepts.
    #[error("too many attachments: {announced} (limit {limit})")]
    TooManyAttachments { announced: u64, limit: usize },
    /// The ack id is not a number that fits in 64 bits.
    #[error("invalid ack id")]
    InvalidAckId,
    /// The JSON part does not parse.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The JSON parses but is not allowed for this packet type (e.g. an EVENT
    /// whose first element is not an event name, or data on a DISCONNECT).
    #[error("invalid payload for {0:?} packet")]
    InvalidPayload(PacketType),
    /// A text packet arrived while the decoder was still waiting for binary
    /// attachments of the previous packet.
    #[error("got plaintext data when reconstructing a packet")]
    UnexpectedText,
    /// A binary frame arrived while no binary packet was announced.
    #[error("got binary data when not reconstructing a packet")]
    UnexpectedBinary,
    /// A `{"_placeholder":true,"num":N}` refers to a missing attachment.
    #[error("illegal attachments: placeholder {num:?} with {available} attachment(s)")]
    InvalidPlaceholder { num: Option<u64>, available: usize },
    /// The value tree nests deeper than the codec allows.
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    /// The Engine.IO open packet JSON is malformed.
    #[error("invalid open packet: {0}")]
    InvalidOpenPacket(String),
    /// `b`-prefixed polling packet whose body is not base64.
    #[error("invalid base64 in binary packet")]
    InvalidBase64,
    /// Engine.IO v3 payload with a malformed or out-of-range length prefix.
    #[error("invalid payload length prefix")]
    InvalidPayloadLength,
    /// Bytes that must be UTF-8 text are not.
    #[error("invalid UTF-8")]
    InvalidUtf8,
}
