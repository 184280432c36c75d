//! The one error type of every decoder in this crate.
//!
//! Messages come from the network, so every malformed input must end up here
//! rather than in a panic; the variants say enough to log a useful line
//! without echoing the (possibly large) payload.

/// Why a message received from Redis could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("unexpected end of input")]
    UnexpectedEof,
    /// A byte that is not a valid marker in the msgpack dialect being read.
    #[error("invalid msgpack marker 0x{0:02x}")]
    InvalidMarker(u8),
    /// Nesting deeper than the decoder accepts.
    #[error("value nested deeper than {0} levels")]
    TooDeep(usize),
    /// Bytes left over after the message (Node rejects these too).
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// A value of the wrong kind where the message structure needs a given one.
    #[error("expected {expected} for {context}")]
    UnexpectedType {
        /// Which part of the message was being read.
        context: &'static str,
        /// What kind of value was required there.
        expected: &'static str,
    },
    /// A field the message cannot be used without.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A Socket.IO packet type other than EVENT (2) or BINARY_EVENT (5).
    #[error("unsupported packet type {0}")]
    UnsupportedPacketType(i64),
    /// A request or response type this crate does not know.
    #[error("unknown request type {0}")]
    UnknownType(i64),
    /// A known type in the encoding Node never uses for it (for example a
    /// JSON BROADCAST request).
    #[error("request type {0} is not expected in {1}")]
    UnexpectedEncoding(i64, &'static str),
    /// A JSON response whose fields match no known response shape.
    #[error("unrecognised response shape")]
    UnrecognisedResponse,
    /// The JSON text did not parse or did not have the expected shape.
    #[error("invalid JSON: {0}")]
    Json(String),
}

impl From<serde_json::Error> for DecodeError {
    fn from(err: serde_json::Error) -> Self {
        DecodeError::Json(err.to_string())
    }
}
