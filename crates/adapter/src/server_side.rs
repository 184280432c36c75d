//! Server-side emits (`io.serverSideEmit`) as the application receives
//! them: the event, who sent it, and the acknowledgement to answer with
//! when the sender waits for one.

use std::{fmt, sync::Arc};

use wire::Response;

use crate::{error::Error, metrics::MessageKind, outbound::Outbound};

/// Handler of incoming server-side emits of one namespace.
pub type ServerSideEmitHandler = Arc<dyn Fn(ServerSideEmit) + Send + Sync>;

/// A server-side emit (`io.serverSideEmit`) received from another node.
#[derive(Debug)]
pub struct ServerSideEmit {
    /// The namespace it was emitted on.
    pub nsp: String,
    /// The uid of the sending node (`"emitter"` for redis-emitter).
    pub from: Option<String>,
    /// `[event, ..args]`.
    pub data: Vec<serde_json::Value>,
    /// Present when the sender waits for an acknowledgement.
    pub ack: Option<ServerSideAck>,
}

impl ServerSideEmit {
    /// The event name, when the first element is a string.
    pub fn event(&self) -> Option<&str> {
        self.data.first().and_then(|v| v.as_str())
    }
    /// The arguments after the event name.
    pub fn args(&self) -> &[serde_json::Value] {
        self.data.get(1..).unwrap_or(&[])
    }
}

/// Answers one server-side emit. Only the first answer counts, as in Node.
pub struct ServerSideAck {
    outbound: Outbound,
    channel: String,
    request_id: String,
}

impl fmt::Debug for ServerSideAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSideAck")
            .field("channel", &self.channel)
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl ServerSideAck {
    /// An answer to request `request_id`, sent on `channel`.
    pub(crate) fn new(outbound: Outbound, channel: String, request_id: String) -> Self {
        Self {
            outbound,
            channel,
            request_id,
        }
    }

    /// Send the acknowledgement back to the emitting node.
    pub async fn send(self, data: serde_json::Value) -> Result<(), Error> {
        let response = Response::ServerSideEmitAck {
            request_id: self.request_id,
            data: Some(data),
        };
        self.outbound
            .publish(&self.channel, response.encode(), MessageKind::Response)
            .await
    }
}
