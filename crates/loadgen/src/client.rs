//! A minimal Socket.IO v5 client over an Engine.IO 4 WebSocket.
//!
//! The load generator needs tens of thousands of cheap connections bound to
//! chosen 127.0.0.x source addresses, which no off-the-shelf client offers;
//! `siocat` needs the same handshake with friendlier event decoding. Both
//! share [`Connection`]: it owns the WebSocket, performs the Engine.IO open
//! and Socket.IO CONNECT exchange, and exposes the raw frames so the hot
//! receive path can stay allocation-light.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::engineio::{EioPacket, OpenPacket};
use protocol::socketio::{Packet, PacketType};
use thiserror::Error;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// How long the Engine.IO open and Socket.IO CONNECT replies may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything that can go wrong while connecting or talking to a server.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("invalid server URL {0:?}: expected http://host:port[/path]")]
    InvalidUrl(String),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket error: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("protocol error: {0}")]
    Protocol(#[from] protocol::ProtocolError),
    #[error("server refused the namespace: {0}")]
    ConnectRefused(String),
    #[error("unexpected packet during the handshake: {0:?}")]
    UnexpectedHandshake(String),
    #[error("connection closed by the server")]
    Closed,
    #[error("handshake timed out")]
    Timeout,
}

/// A Socket.IO server address, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    /// The socket address to connect to.
    pub addr: SocketAddr,
    /// `host:port` as written, for the `Host` header.
    pub authority: String,
    /// The Engine.IO path, `/socket.io/` unless the URL names another.
    pub path: String,
}

impl Target {
    /// Parses `http://host:port[/path]` (or `ws://`, or a bare `host:port`)
    /// and resolves the host.
    pub async fn resolve(url: &str) -> Result<Self, ClientError> {
        let rest = ["http://", "ws://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .unwrap_or(url);
        if url.starts_with("https://") || url.starts_with("wss://") {
            return Err(ClientError::InvalidUrl(url.to_owned()));
        }
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(ClientError::InvalidUrl(url.to_owned()));
        }
        let path = match path.trim_end_matches('/') {
            "" => "/socket.io/".to_owned(),
            p => format!("{p}/"),
        };
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(with_port.as_str())
            .await
            .map_err(|_| ClientError::Resolve(with_port.clone()))?
            .next()
            .ok_or_else(|| ClientError::Resolve(with_port.clone()))?;
        Ok(Self {
            addr,
            authority: with_port,
            path,
        })
    }

    /// The WebSocket URL of the Engine.IO 4 endpoint.
    pub fn ws_url(&self) -> String {
        format!(
            "ws://{}{}?EIO=4&transport=websocket",
            self.authority, self.path
        )
    }
}

/// The prefix of every Socket.IO message of namespace `nsp` after the
/// Engine.IO `4` and packet-type digit: empty for `/`, else `/nsp,`.
pub fn nsp_prefix(nsp: &str) -> String {
    if nsp == "/" || nsp.is_empty() {
        String::new()
    } else {
        format!("{nsp},")
    }
}

/// WebSocket buffers sized for many mostly idle connections: tungstenite
/// eagerly allocates its read buffer (128 KiB by default), which would cost
/// gigabytes at 20k connections.
pub fn lean_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// A connected Socket.IO client on one namespace.
#[derive(Debug)]
pub struct Connection {
    pub ws: WebSocketStream<TcpStream>,
    /// The Engine.IO session id.
    pub eio_sid: String,
    /// The Socket.IO socket id in the namespace.
    pub sid: String,
    pub open: OpenPacket,
    nsp: String,
    next_ack_id: u64,
}

impl Connection {
    /// Opens a TCP connection (from `source` when given, so that more than
    /// one ephemeral port range is available), upgrades it to an Engine.IO 4
    /// WebSocket and connects to namespace `nsp`.
    pub async fn connect(
        target: &Target,
        source: Option<IpAddr>,
        nsp: &str,
        auth: Option<&str>,
        config: WebSocketConfig,
    ) -> Result<Self, ClientError> {
        let socket = if target.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = source {
            // Lets a port whose previous connection is in TIME_WAIT be reused
            // for the next run's connections.
            socket.set_reuseaddr(true)?;
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let handshake = async {
            let stream = socket.connect(target.addr).await?;
            stream.set_nodelay(true)?;
            let (ws, _response) =
                tokio_tungstenite::client_async_with_config(target.ws_url(), stream, Some(config))
                    .await?;
            Self::handshake(ws, nsp, auth).await
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// `auth` is the CONNECT payload (`{"token": "..."}`), as JSON text.
    async fn handshake(
        mut ws: WebSocketStream<TcpStream>,
        nsp: &str,
        auth: Option<&str>,
    ) -> Result<Self, ClientError> {
        let text = next_text(&mut ws).await?;
        let open = match EioPacket::decode_v4_text(&text)? {
            EioPacket::Open(open) => open,
            _ => return Err(ClientError::UnexpectedHandshake(text)),
        };
        let payload = auth.unwrap_or_default();
        ws.send(Message::text(format!("40{}{payload}", nsp_prefix(nsp))))
            .await?;
        loop {
            let text = next_text(&mut ws).await?;
            match EioPacket::decode_v4_text(&text)? {
                EioPacket::Ping(data) => {
                    let pong = EioPacket::Pong(data).encode_v4_text();
                    ws.send(Message::text(pong)).await?;
                }
                EioPacket::Message(body) => {
                    let packet = Packet::decode(&body)?;
                    if packet.nsp != nsp {
                        continue;
                    }
                    match packet.kind {
                        PacketType::Connect => {
                            let sid = packet
                                .data
                                .as_deref()
                                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                                .and_then(|v| {
                                    v.get("sid").and_then(|s| s.as_str()).map(str::to_owned)
                                })
                                .unwrap_or_default();
                            return Ok(Self {
                                ws,
                                eio_sid: open.sid.clone(),
                                sid,
                                open,
                                nsp: nsp.to_owned(),
                                next_ack_id: 0,
                            });
                        }
                        PacketType::ConnectError => {
                            return Err(ClientError::ConnectRefused(
                                packet.data.unwrap_or_default(),
                            ))
                        }
                        _ => return Err(ClientError::UnexpectedHandshake(body)),
                    }
                }
                EioPacket::Noop => {}
                _ => return Err(ClientError::UnexpectedHandshake(text)),
            }
        }
    }

    /// The namespace this connection joined.
    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    /// The Engine.IO text frame of an EVENT with `args_json` (a JSON array
    /// whose first element is the event name) and an optional ack id.
    pub fn event_frame(&self, args_json: &str, ack_id: Option<u64>) -> String {
        let mut packet = Packet::event(&self.nsp, args_json);
        packet.id = ack_id;
        let mut text = String::with_capacity(args_json.len() + 16);
        text.push('4');
        packet.encode_into(&mut text);
        text
    }

    /// Emits `event` with `args` (JSON values), without an ack.
    pub async fn emit(
        &mut self,
        event: &str,
        args: &[serde_json::Value],
    ) -> Result<(), ClientError> {
        let frame = self.event_frame(&event_json(event, args), None);
        self.ws.send(Message::text(frame)).await?;
        Ok(())
    }

    /// Emits `event` with `args` asking for an ack; returns the ack id to
    /// match against [`Incoming::Ack`].
    pub async fn emit_with_ack(
        &mut self,
        event: &str,
        args: &[serde_json::Value],
    ) -> Result<u64, ClientError> {
        let id = self.next_ack_id;
        self.next_ack_id += 1;
        let frame = self.event_frame(&event_json(event, args), Some(id));
        self.ws.send(Message::text(frame)).await?;
        Ok(id)
    }

    /// Waits for the next event or ack on this namespace, answering pings.
    /// Binary attachments are left as placeholders: the tools built on this
    /// only exchange JSON.
    pub async fn next_incoming(&mut self) -> Result<Incoming, ClientError> {
        loop {
            let text = match self.ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
                Some(Ok(_)) => continue,
                Some(Err(err)) => return Err(err.into()),
            };
            match EioPacket::decode_v4_text(text.as_str())? {
                EioPacket::Ping(data) => {
                    let pong = EioPacket::Pong(data).encode_v4_text();
                    self.ws.send(Message::text(pong)).await?;
                }
                EioPacket::Close => return Err(ClientError::Closed),
                EioPacket::Message(body) => {
                    let packet = Packet::decode(&body)?;
                    if packet.nsp != self.nsp {
                        continue;
                    }
                    match packet.kind {
                        PacketType::Event | PacketType::BinaryEvent => {
                            let (name, args) = split_event(packet.data.as_deref().unwrap_or("[]"));
                            return Ok(Incoming::Event { name, args });
                        }
                        PacketType::Ack | PacketType::BinaryAck => {
                            let args = parse_array(packet.data.as_deref().unwrap_or("[]"));
                            return Ok(Incoming::Ack {
                                id: packet.id.unwrap_or_default(),
                                args,
                            });
                        }
                        PacketType::Disconnect => return Err(ClientError::Closed),
                        _ => continue,
                    }
                }
                _ => continue,
            }
        }
    }

    /// Sends DISCONNECT for the namespace, then closes the WebSocket.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let disconnect = format!("41{}", nsp_prefix(&self.nsp));
        self.ws.send(Message::text(disconnect)).await?;
        self.ws.close(None).await?;
        Ok(())
    }
}

/// Something received on the namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Event {
        name: String,
        args: Vec<serde_json::Value>,
    },
    Ack {
        id: u64,
        args: Vec<serde_json::Value>,
    },
}

/// `["event", arg...]` as JSON text.
pub fn event_json(event: &str, args: &[serde_json::Value]) -> String {
    let mut all = Vec::with_capacity(args.len() + 1);
    all.push(serde_json::Value::String(event.to_owned()));
    all.extend_from_slice(args);
    serde_json::Value::Array(all).to_string()
}

fn parse_array(json: &str) -> Vec<serde_json::Value> {
    match serde_json::from_str(json) {
        Ok(serde_json::Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

fn split_event(json: &str) -> (String, Vec<serde_json::Value>) {
    let mut items = parse_array(json);
    if items.is_empty() {
        return (String::new(), items);
    }
    let name = match items.remove(0) {
        serde_json::Value::String(name) => name,
        other => other.to_string(),
    };
    (name, items)
}

async fn next_text(ws: &mut WebSocketStream<TcpStream>) -> Result<String, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn targets_parse_scheme_host_port_and_path() {
        let t = Target::resolve("http://127.0.0.1:3000").await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(
            t.ws_url(),
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        let t = Target::resolve("ws://127.0.0.1:4000/custom/")
            .await
            .unwrap();
        assert_eq!(
            t.ws_url(),
            "ws://127.0.0.1:4000/custom/?EIO=4&transport=websocket"
        );
        let t = Target::resolve("127.0.0.1:5000").await.unwrap();
        assert_eq!(t.addr.port(), 5000);
        assert!(Target::resolve("https://127.0.0.1:1").await.is_err());
        assert!(Target::resolve("http://").await.is_err());
    }

    #[test]
    fn events_encode_and_split() {
        let json = event_json("message", &[serde_json::json!("hi"), serde_json::json!(1)]);
        assert_eq!(json, r#"["message","hi",1]"#);
        assert_eq!(
            split_event(&json),
            (
                "message".to_owned(),
                vec![serde_json::json!("hi"), serde_json::json!(1)]
            )
        );
        assert_eq!(nsp_prefix("/"), "");
        assert_eq!(nsp_prefix("/chat"), "/chat,");
    }
}
