//! Backend hooks: the application behind the gateway hears its clients
//! over plain HTTP, in any language.
//!
//! - [`connect`]: at each namespace CONNECT (after the JWT, whose claims it
//!   receives) the backend admits the socket, with its user, rooms, data and
//!   rights, or refuses it with a message; an unanswered call refuses it
//!   ("backend unavailable"), since a gate that opens when its keeper is
//!   away is no gate.
//! - [`event`]: the configured events go to the backend, one socket's in the
//!   order it sent them, and the answer is the client's ack. At most
//!   `hooks.max_inflight` wait per gateway; beyond that the client is told
//!   "backend busy" at once rather than queued without bound.
//! - [`event::on_disconnect`]: the backend learns when a socket leaves,
//!   retried with backoff, never holding anything up.
//!
//! Decisions on answers are pure ([`answer`]); [`client`] carries them.

pub mod answer;
pub mod client;
pub mod config;
pub mod connect;
pub mod event;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

pub use answer::{Admission, Grant, Outcome};
pub use client::{ClientError, Hook, HookClient, HookMetrics};
pub use config::HooksConfig;

/// What the hook handlers share: the configuration, the client and the
/// gateway-wide bound on waiting events.
#[derive(Debug)]
pub struct Hooks {
    /// The `[hooks]` section.
    pub config: HooksConfig,
    /// The HTTP client.
    pub client: HookClient,
    /// One permit per event waiting for or in a call to the event hook.
    inflight: Arc<Semaphore>,
}

impl Hooks {
    /// The hooks of `config`, reading answers of at most
    /// `max_answer_bytes`, with their metrics in `registry`.
    pub fn new(
        config: HooksConfig,
        max_answer_bytes: usize,
        registry: &prometheus::Registry,
    ) -> Result<Self, HooksError> {
        let metrics = HookMetrics::register(registry)?;
        let client = HookClient::new(
            Duration::from_millis(config.timeout_ms),
            config.secret.as_deref(),
            config.tls_ca_file.as_deref(),
            max_answer_bytes,
            metrics,
        )?;
        let inflight = Arc::new(Semaphore::new(config.max_inflight));
        Ok(Self {
            config,
            client,
            inflight,
        })
    }
}

/// Why the hooks could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    /// The HTTP client.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The metrics (a programming error).
    #[error("hooks: metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}
