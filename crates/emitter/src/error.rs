//! Errors of the emitter library.
//!
//! Callers need to tell three situations apart: they asked for something
//! Socket.IO refuses (a reserved event name), Redis could not take the message
//! (unreachable, timed out, refused the command), or the configuration is
//! wrong. The HTTP service maps them to 400, 503 and a start-up failure.

use thiserror::Error;

/// Everything that can go wrong while emitting.
#[derive(Debug, Error)]
pub enum EmitterError {
    /// Socket.IO reserves these names for its own lifecycle events; a Node
    /// emitter throws on them, so do we.
    #[error("\"{0}\" is a reserved event name")]
    ReservedEvent(String),

    /// A JSON argument could not be converted (a malformed `$binary` object).
    #[error("{0}")]
    InvalidArgument(#[from] crate::value::ArgError),

    /// Redis did not acknowledge the PUBLISH: it is unreachable, the publish
    /// timed out, or the server answered with an error. The message may or
    /// may not have been delivered; it was not confirmed.
    ///
    /// The fred error is part of the message rather than a `source`, so that
    /// error chains do not print it twice.
    #[error("redis error: {0}")]
    Redis(fred::error::Error),

    /// The Redis settings cannot be used (bad URL, bad timeout...).
    #[error("invalid redis configuration: {0}")]
    Config(String),
}

impl From<fred::error::Error> for EmitterError {
    fn from(err: fred::error::Error) -> Self {
        EmitterError::Redis(err)
    }
}

impl EmitterError {
    /// True when the failure comes from Redis rather than from the caller's
    /// input: the right answer is "try again later" (HTTP 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, EmitterError::Redis(_))
    }
}
