//! Errors of the adapter.
//!
//! socketioxide wants `Into<AdapterError>` (a boxed error) from adapter
//! methods; inside the crate every failure keeps its type so callers of the
//! [`crate::ClusterHandle`] API can match on it.

use socketioxide_core::adapter::errors::AdapterError;

/// What can go wrong talking to Redis or the other nodes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Redis command failed (connection lost, timeout, refused).
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// A configured URL, TLS file or sentinel cannot be used (see
    /// [`redis_layer::Error`]; its Redis failures become [`Error::Redis`]).
    #[error(transparent)]
    Connection(redis_layer::Error),
    /// A configuration field cannot be used.
    #[error("invalid adapter configuration: {0}")]
    InvalidConfig(#[from] InvalidField),
    /// A namespace name cannot be used in a channel name.
    #[error("namespace {0:?} contains '#', which the channel names cannot carry")]
    InvalidNamespace(String),
    /// The namespace is not served by this adapter state (not created yet, or closed).
    #[error("namespace {0:?} is not registered with this adapter")]
    UnknownNamespace(String),
    /// Local data could not be converted to the wire format.
    #[error("cannot encode payload: {0}")]
    Encode(String),
    /// A subscriber could not move to its preferred server (it stays put).
    #[error("subscriber handoff: {0}")]
    Handoff(String),
    /// The adapter state has been shut down.
    #[error("adapter is closed")]
    Closed,
}

impl Error {
    /// A Redis operation that did not finish in time.
    pub(crate) fn timeout(what: &'static str) -> Self {
        redis_layer::Error::timeout(what).into()
    }

    /// Whether this is a Redis operation that did not finish in time (as
    /// opposed to one Redis refused or a lost connection).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Redis(err) if *err.kind() == fred::error::ErrorKind::Timeout)
    }
}

impl From<redis_layer::Error> for Error {
    fn from(err: redis_layer::Error) -> Self {
        match err {
            redis_layer::Error::Redis(err) => Error::Redis(err),
            other => Error::Connection(other),
        }
    }
}

impl From<Error> for AdapterError {
    fn from(err: Error) -> Self {
        AdapterError::from(Box::new(err) as Box<dyn std::error::Error + Send>)
    }
}

/// A configuration field that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// The field's name, as in [`crate::AdapterConfig`] (and after `redis.` in the
    /// gateway's keys).
    pub field: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// Errors of namespace initialisation (`io.ns(..).await`).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// See [`Error`].
    #[error(transparent)]
    Adapter(#[from] Error),
}
