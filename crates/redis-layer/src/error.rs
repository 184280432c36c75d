//! Errors of the Redis layer: what a caller must tell apart to report it
//! (a bad URL or CA file is the operator's to fix, a sentinel that knows no
//! master and a Redis failure are the servers').

/// What can go wrong configuring or reaching Redis.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Redis command failed (connection lost, timeout, refused).
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// A configured URL (or the TLS settings that go with it) cannot be used.
    #[error("invalid redis url {url:?}: {source}")]
    InvalidUrl {
        /// The URL as configured, without credentials.
        url: String,
        /// Why it was rejected.
        source: fred::error::Error,
    },
    /// No sentinel answered, or they do not know the master group.
    #[error("sentinel: {0}")]
    Sentinel(String),
}

impl Error {
    /// A Redis operation that did not finish in time.
    pub fn timeout(what: &'static str) -> Self {
        Error::Redis(fred::error::Error::new(
            fred::error::ErrorKind::Timeout,
            what,
        ))
    }
}
