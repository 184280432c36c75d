//! What a remote `fetchSockets` answer says about a local socket beyond its
//! id and rooms: Node's `handshake` and `data`, which socketioxide's
//! adapter cannot see, so the application provides them.

use std::sync::Arc;

use socketioxide_core::Sid;

/// Extra information about a local socket for remote `fetchSockets`
/// answers: Node's `handshake` and `data`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SocketDetails {
    /// `{headers,time,address,xdomain,secure,issued,url,query,auth}`.
    pub handshake: serde_json::Value,
    /// The application's `socket.data`.
    pub data: serde_json::Value,
}

impl SocketDetails {
    /// What is reported without a provider: an empty handshake, `null` data.
    pub(crate) fn unknown() -> Self {
        Self {
            handshake: serde_json::json!({}),
            data: serde_json::Value::Null,
        }
    }
}

/// Looks up [`SocketDetails`] of a local socket: `(namespace, socket id)`.
pub type SocketDetailsProvider = Arc<dyn Fn(&str, Sid) -> Option<SocketDetails> + Send + Sync>;
