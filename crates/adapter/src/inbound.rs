//! A message as it comes off a subscriber connection, and where the
//! subscriber hands it: the one type the subscriber, the handoff gate and
//! the dispatcher share, so none of them imports another.

use std::sync::Arc;

use bytes::Bytes;

/// A message as it comes off a subscriber connection.
#[derive(Debug, Clone)]
pub(crate) struct Inbound {
    pub channel: String,
    pub payload: Bytes,
}

/// Where a subscriber hands its messages (the dispatcher).
pub(crate) type InboundSink = Arc<dyn Fn(Inbound) + Send + Sync>;
