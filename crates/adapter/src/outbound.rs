//! Publishing, counted: every message this node sends goes through
//! [`Outbound::publish`], which records it in the metrics (and, for
//! broadcasts, keeps its bytes to time the echo) before handing it to the
//! transport. A small clonable handle, so an acknowledgement can publish
//! without holding the whole state.

use std::sync::Arc;

use bytes::Bytes;

use crate::{
    error::Error,
    metrics::{AdapterMetrics, MessageKind},
    transport::Transport,
};

/// The sending side of one node.
#[derive(Clone)]
pub(crate) struct Outbound {
    pub transport: Arc<dyn Transport>,
    pub metrics: Arc<AdapterMetrics>,
}

impl Outbound {
    pub(crate) async fn publish(
        &self,
        channel: &str,
        payload: Vec<u8>,
        kind: MessageKind,
    ) -> Result<(), Error> {
        if kind == MessageKind::Broadcast {
            self.metrics.broadcast_published(&payload);
        }
        match self.transport.publish(channel, Bytes::from(payload)).await {
            Ok(()) => {
                self.metrics.published(kind);
                Ok(())
            }
            Err(err) => {
                tracing::warn!(channel, %err, "publish failed");
                Err(err)
            }
        }
    }
}
