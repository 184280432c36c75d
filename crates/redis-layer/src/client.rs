//! fred builders with the timeouts every client of the cluster needs: a
//! connection attempt and an internal command bounded by the connect
//! timeout, every command by a timeout of its own, and (for commands that
//! must not run twice, or whose caller retries elsewhere) one attempt only.

use std::time::Duration;

use fred::{prelude::Config, types::Builder};

/// Whether fred may replay a command written when the connection dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// fred's default: replayed after a reconnection.
    Replayed,
    /// Sent once; the caller gets the error (and retries elsewhere, or
    /// decides rather than risk a duplicate PUBLISH).
    Once,
}

/// A builder for `config` with its timeouts set.
pub fn builder(
    config: Config,
    connect_timeout: Duration,
    command_timeout: Duration,
    attempts: Attempts,
) -> Builder {
    let mut builder = Builder::from_config(config);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = connect_timeout;
            c.internal_command_timeout = connect_timeout;
            if attempts == Attempts::Once {
                c.max_command_attempts = 1;
            }
        })
        .with_performance_config(|p| p.default_command_timeout = command_timeout);
    builder
}
