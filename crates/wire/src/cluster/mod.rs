//! The ClusterAdapter message format of socket.io-adapter 2.5: one object
//! `{type, data, uid, nsp}` per message, shared by Node's sharded Redis
//! adapter, its Redis Streams adapter, and its Postgres, MongoDB and
//! cluster adapters. Nothing here knows about Redis: a transport carries
//! the bytes [`ClusterMessage::encode`] writes and hands received ones to
//! [`ClusterMessage::decode`].
//!
//! Node writes `JSON.stringify(message)`, unless the message is of a type
//! that may carry binary and its data does hold some; then it writes
//! notepack msgpack. A reader tells them apart by the first byte (`{` is
//! JSON). Encoding here writes the keys in the order of Node's object
//! literals, so a message encodes to Node's bytes exactly (flags aside,
//! whose order Node takes from the application's calls).

pub mod channel;
mod tree;

use rmpv::Value;
use serde::Serialize;

use crate::broadcast::{BroadcastFlags, BroadcastOpts, BroadcastPacket, PacketKind};
use crate::DecodeError;
use tree::{as_u64, map, truthy, Fields};

pub use channel::{looks_like_a_socket_id, room_has_channel, ShardedChannels, SubscriptionMode};

/// socket.io-adapter's `MessageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[repr(u8)]
pub enum ClusterMessageType {
    /// 1: a node announces itself (heartbeat flavour only).
    InitialHeartbeat = 1,
    /// 2: a node is still there (heartbeat flavour only).
    Heartbeat = 2,
    /// 3: a packet for the sockets matching `opts`, acked when it has a
    /// `requestId`.
    Broadcast = 3,
    /// 4: `socketsJoin`.
    SocketsJoin = 4,
    /// 5: `socketsLeave`.
    SocketsLeave = 5,
    /// 6: `disconnectSockets`.
    DisconnectSockets = 6,
    /// 7: `fetchSockets`.
    FetchSockets = 7,
    /// 8: a node's sockets, to 7.
    FetchSocketsResponse = 8,
    /// 9: `serverSideEmit`, acked when it has a `requestId`.
    ServerSideEmit = 9,
    /// 10: a node's ack, to 9.
    ServerSideEmitResponse = 10,
    /// 11: how many of a node's clients a broadcast with ack reached.
    BroadcastClientCount = 11,
    /// 12: one client's ack of a broadcast.
    BroadcastAck = 12,
    /// 13: a node leaves (heartbeat flavour only).
    AdapterClose = 13,
}

impl ClusterMessageType {
    /// Every type, in code order from 1.
    const ALL: [ClusterMessageType; 13] = [
        Self::InitialHeartbeat,
        Self::Heartbeat,
        Self::Broadcast,
        Self::SocketsJoin,
        Self::SocketsLeave,
        Self::DisconnectSockets,
        Self::FetchSockets,
        Self::FetchSocketsResponse,
        Self::ServerSideEmit,
        Self::ServerSideEmitResponse,
        Self::BroadcastClientCount,
        Self::BroadcastAck,
        Self::AdapterClose,
    ];

    /// The number on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The type numbered `code`.
    pub fn from_code(code: u64) -> Option<Self> {
        let index = usize::try_from(code).ok()?.checked_sub(1)?;
        Self::ALL.get(index).copied()
    }

    /// Whether Node may write this type as msgpack (its `encode`'s list).
    pub fn may_carry_binary(self) -> bool {
        matches!(
            self,
            Self::Broadcast
                | Self::BroadcastAck
                | Self::FetchSocketsResponse
                | Self::ServerSideEmit
                | Self::ServerSideEmitResponse
        )
    }

    /// Whether this is an answer to a request, which Node routes to
    /// `onResponse` whatever channel it came on.
    pub fn is_response(self) -> bool {
        matches!(
            self,
            Self::FetchSocketsResponse
                | Self::ServerSideEmitResponse
                | Self::BroadcastClientCount
                | Self::BroadcastAck
        )
    }
}

/// One socket of a [`ClusterBody::FetchSocketsResponse`]:
/// `{id, handshake, rooms, data}`. `handshake` and `data` are the
/// application's, binary included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSocket {
    /// The socket id.
    pub id: String,
    /// Node's handshake object (`{headers, time, address, ...}`).
    pub handshake: Value,
    /// Its rooms, its own id included.
    pub rooms: Vec<String>,
    /// `socket.data`.
    pub data: Value,
}

/// What a message says, by type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ClusterBody {
    /// 1.
    InitialHeartbeat,
    /// 2.
    Heartbeat,
    /// 3: `{packet, requestId?, opts}`. The packet's namespace is the
    /// message's: Node writes the packet as `{type, data}`.
    Broadcast {
        /// What to deliver.
        packet: BroadcastPacket,
        /// Set when the sender waits for acks.
        request_id: Option<String>,
        /// Which sockets.
        opts: BroadcastOpts,
    },
    /// 4: `{opts, rooms}`.
    SocketsJoin {
        /// Which sockets.
        opts: BroadcastOpts,
        /// The rooms they join.
        rooms: Vec<String>,
    },
    /// 5: `{opts, rooms}`.
    SocketsLeave {
        /// Which sockets.
        opts: BroadcastOpts,
        /// The rooms they leave.
        rooms: Vec<String>,
    },
    /// 6: `{opts, close}`.
    DisconnectSockets {
        /// Which sockets.
        opts: BroadcastOpts,
        /// Whether the underlying connection closes too.
        close: bool,
    },
    /// 7: `{opts, requestId}`.
    FetchSockets {
        /// Which sockets.
        opts: BroadcastOpts,
        /// The request the answers name.
        request_id: String,
    },
    /// 8: `{requestId, sockets}`.
    FetchSocketsResponse {
        /// The request answered.
        request_id: String,
        /// This node's matching sockets.
        sockets: Vec<ClusterSocket>,
    },
    /// 9: `{requestId?, packet}`; `packet` is `[event, ...args]`.
    ServerSideEmit {
        /// Set when the sender waits for answers.
        request_id: Option<String>,
        /// The event and its arguments.
        packet: Vec<Value>,
    },
    /// 10: `{requestId, packet}`; `packet` is the handler's one argument.
    ServerSideEmitResponse {
        /// The request answered.
        request_id: String,
        /// The answer (`Nil` for none).
        packet: Value,
    },
    /// 11: `{requestId, clientCount}`.
    BroadcastClientCount {
        /// The broadcast answered.
        request_id: String,
        /// Clients of this node the broadcast went to.
        client_count: u64,
    },
    /// 12: `{requestId, packet}`; `packet` is the client's ack argument.
    BroadcastAck {
        /// The broadcast answered.
        request_id: String,
        /// The ack (`Nil` for none).
        packet: Value,
    },
    /// 13.
    AdapterClose,
}

impl ClusterBody {
    /// Its type.
    pub fn message_type(&self) -> ClusterMessageType {
        use ClusterMessageType as T;
        match self {
            Self::InitialHeartbeat => T::InitialHeartbeat,
            Self::Heartbeat => T::Heartbeat,
            Self::Broadcast { .. } => T::Broadcast,
            Self::SocketsJoin { .. } => T::SocketsJoin,
            Self::SocketsLeave { .. } => T::SocketsLeave,
            Self::DisconnectSockets { .. } => T::DisconnectSockets,
            Self::FetchSockets { .. } => T::FetchSockets,
            Self::FetchSocketsResponse { .. } => T::FetchSocketsResponse,
            Self::ServerSideEmit { .. } => T::ServerSideEmit,
            Self::ServerSideEmitResponse { .. } => T::ServerSideEmitResponse,
            Self::BroadcastClientCount { .. } => T::BroadcastClientCount,
            Self::BroadcastAck { .. } => T::BroadcastAck,
            Self::AdapterClose => T::AdapterClose,
        }
    }

    /// The request a message answers or opens, when it has one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Broadcast { request_id, .. } | Self::ServerSideEmit { request_id, .. } => {
                request_id.as_deref()
            }
            Self::FetchSockets { request_id, .. }
            | Self::FetchSocketsResponse { request_id, .. }
            | Self::ServerSideEmitResponse { request_id, .. }
            | Self::BroadcastClientCount { request_id, .. }
            | Self::BroadcastAck { request_id, .. } => Some(request_id),
            _ => None,
        }
    }
}

/// A message between the nodes of a ClusterAdapter cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterMessage {
    /// The sender's node uid.
    pub uid: String,
    /// The namespace, with its leading slash.
    pub nsp: String,
    /// What it says.
    pub body: ClusterBody,
}

impl ClusterMessage {
    /// Decodes what a Node (or Rust) node published. Unknown fields are
    /// ignored, as Node ignores them; an unknown type is an error (Node
    /// logs and drops it).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let tree = tree::decode(buf)?;
        let fields = Fields::of(&tree, "message")?;
        let code = fields
            .get("type")
            .and_then(as_u64)
            .ok_or(DecodeError::MissingField("type"))?;
        let ty = ClusterMessageType::from_code(code).ok_or(DecodeError::UnknownType(
            i64::try_from(code).unwrap_or(i64::MAX),
        ))?;
        let uid = fields.string("uid")?;
        let nsp = fields.string("nsp")?;
        let body = decode_body(ty, fields.get("data"), &nsp)?;
        Ok(Self { uid, nsp, body })
    }

    /// Encodes as Node does: JSON, or msgpack when the type may carry
    /// binary and the data holds some.
    pub fn encode(&self) -> Vec<u8> {
        let ty = self.body.message_type();
        tree::encode(&self.to_tree(), ty.may_carry_binary())
    }

    /// The object Node would build for this message, keys in its order:
    /// `{type, data?, uid, nsp}`.
    pub fn to_tree(&self) -> Value {
        let mut entries = vec![("type", Value::from(self.body.message_type().code()))];
        if let Some(data) = body_tree(&self.body) {
            entries.push(("data", data));
        }
        entries.push(("uid", Value::from(self.uid.as_str())));
        entries.push(("nsp", Value::from(self.nsp.as_str())));
        map(entries)
    }
}

fn decode_body(
    ty: ClusterMessageType,
    data: Option<&Value>,
    nsp: &str,
) -> Result<ClusterBody, DecodeError> {
    use ClusterMessageType as T;
    // Borrowed: only the parts a body keeps are copied out of the tree.
    let no_data = Value::Map(Vec::new());
    let data_tree = data.unwrap_or(&no_data);
    let fields = || Fields::of(data_tree, "data");
    Ok(match ty {
        T::InitialHeartbeat => ClusterBody::InitialHeartbeat,
        T::Heartbeat => ClusterBody::Heartbeat,
        T::AdapterClose => ClusterBody::AdapterClose,
        T::Broadcast => {
            let fields = fields()?;
            ClusterBody::Broadcast {
                packet: packet_from(fields.require("packet")?, nsp)?,
                request_id: fields.opt_string("requestId")?,
                opts: opts_from(fields.get("opts"))?,
            }
        }
        T::SocketsJoin | T::SocketsLeave => {
            let fields = fields()?;
            let opts = opts_from(fields.get("opts"))?;
            let rooms = fields.rooms("rooms")?;
            if ty == T::SocketsJoin {
                ClusterBody::SocketsJoin { opts, rooms }
            } else {
                ClusterBody::SocketsLeave { opts, rooms }
            }
        }
        T::DisconnectSockets => {
            let fields = fields()?;
            ClusterBody::DisconnectSockets {
                opts: opts_from(fields.get("opts"))?,
                close: truthy(fields.get("close")),
            }
        }
        T::FetchSockets => {
            let fields = fields()?;
            ClusterBody::FetchSockets {
                opts: opts_from(fields.get("opts"))?,
                request_id: fields.string("requestId")?,
            }
        }
        T::FetchSocketsResponse => {
            let fields = fields()?;
            let sockets = match fields.get("sockets") {
                None => Vec::new(),
                Some(Value::Array(items)) => {
                    items.iter().map(socket_from).collect::<Result<_, _>>()?
                }
                Some(_) => {
                    return Err(DecodeError::UnexpectedType {
                        context: "data.sockets",
                        expected: "an array",
                    })
                }
            };
            ClusterBody::FetchSocketsResponse {
                request_id: fields.string("requestId")?,
                sockets,
            }
        }
        T::ServerSideEmit => {
            let fields = fields()?;
            let packet = match fields.require("packet")? {
                Value::Array(items) => items.clone(),
                _ => {
                    return Err(DecodeError::UnexpectedType {
                        context: "data.packet",
                        expected: "an array",
                    })
                }
            };
            ClusterBody::ServerSideEmit {
                request_id: fields.opt_string("requestId")?,
                packet,
            }
        }
        T::ServerSideEmitResponse | T::BroadcastAck => {
            let fields = fields()?;
            let request_id = fields.string("requestId")?;
            let packet = fields.get("packet").cloned().unwrap_or(Value::Nil);
            if ty == T::BroadcastAck {
                ClusterBody::BroadcastAck { request_id, packet }
            } else {
                ClusterBody::ServerSideEmitResponse { request_id, packet }
            }
        }
        T::BroadcastClientCount => {
            let fields = fields()?;
            ClusterBody::BroadcastClientCount {
                request_id: fields.string("requestId")?,
                client_count: fields.get("clientCount").and_then(as_u64).ok_or(
                    DecodeError::UnexpectedType {
                        context: "data.clientCount",
                        expected: "a non-negative integer",
                    },
                )?,
            }
        }
    })
}

/// `{type, data, nsp?}`; Node's ClusterAdapter never writes `nsp`.
fn packet_from(value: &Value, nsp: &str) -> Result<BroadcastPacket, DecodeError> {
    let fields = Fields::of(value, "data.packet")?;
    let code = fields
        .get("type")
        .and_then(as_u64)
        .ok_or(DecodeError::MissingField("packet.type"))?;
    let kind = PacketKind::from_code(i64::try_from(code).unwrap_or(i64::MAX)).ok_or(
        DecodeError::UnsupportedPacketType(i64::try_from(code).unwrap_or(i64::MAX)),
    )?;
    let data = fields
        .get("data")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    if !matches!(data, Value::Array(_)) {
        return Err(DecodeError::UnexpectedType {
            context: fields.context(),
            expected: "a data array",
        });
    }
    Ok(BroadcastPacket {
        kind,
        nsp: nsp.to_owned(),
        data,
    })
}

fn opts_from(value: Option<&Value>) -> Result<BroadcastOpts, DecodeError> {
    let Some(value) = value else {
        return Ok(BroadcastOpts::default());
    };
    let fields = Fields::of(value, "data.opts")?;
    Ok(BroadcastOpts {
        rooms: fields.rooms("rooms")?,
        except: fields.rooms("except")?,
        flags: match fields.get("flags") {
            None => BroadcastFlags::default(),
            Some(flags) => flags_from(Fields::of(flags, "opts.flags")?),
        },
    })
}

fn flags_from(fields: Fields<'_>) -> BroadcastFlags {
    let optional_bool = |key| fields.get(key).map(|value| truthy(Some(value)));
    BroadcastFlags {
        volatile: truthy(fields.get("volatile")),
        compress: optional_bool("compress"),
        local: truthy(fields.get("local")),
        broadcast: truthy(fields.get("broadcast")),
        binary: optional_bool("binary"),
        timeout: fields.get("timeout").and_then(as_u64),
        expect_single_response: truthy(fields.get("expectSingleResponse")),
    }
}

fn socket_from(value: &Value) -> Result<ClusterSocket, DecodeError> {
    let fields = Fields::of(value, "data.sockets[]")?;
    Ok(ClusterSocket {
        id: fields.string("id")?,
        handshake: fields.get("handshake").cloned().unwrap_or(Value::Nil),
        rooms: fields.rooms("rooms")?,
        data: fields.get("data").cloned().unwrap_or(Value::Nil),
    })
}

/// `data`, keys in the order of socket.io-adapter's object literals.
fn body_tree(body: &ClusterBody) -> Option<Value> {
    let request = |id: &str| Value::from(id);
    Some(match body {
        ClusterBody::InitialHeartbeat | ClusterBody::Heartbeat | ClusterBody::AdapterClose => {
            return None
        }
        ClusterBody::Broadcast {
            packet,
            request_id,
            opts,
        } => {
            let mut entries = vec![("packet", packet_tree(packet))];
            if let Some(id) = request_id {
                entries.push(("requestId", request(id)));
            }
            entries.push(("opts", opts_tree(opts)));
            map(entries)
        }
        ClusterBody::SocketsJoin { opts, rooms } | ClusterBody::SocketsLeave { opts, rooms } => {
            map(vec![
                ("opts", opts_tree(opts)),
                ("rooms", rooms_tree(rooms)),
            ])
        }
        ClusterBody::DisconnectSockets { opts, close } => map(vec![
            ("opts", opts_tree(opts)),
            ("close", Value::Boolean(*close)),
        ]),
        ClusterBody::FetchSockets { opts, request_id } => map(vec![
            ("opts", opts_tree(opts)),
            ("requestId", request(request_id)),
        ]),
        ClusterBody::FetchSocketsResponse {
            request_id,
            sockets,
        } => map(vec![
            ("requestId", request(request_id)),
            (
                "sockets",
                Value::Array(sockets.iter().map(socket_tree).collect()),
            ),
        ]),
        ClusterBody::ServerSideEmit { request_id, packet } => {
            let mut entries = Vec::with_capacity(2);
            if let Some(id) = request_id {
                entries.push(("requestId", request(id)));
            }
            entries.push(("packet", Value::Array(packet.clone())));
            map(entries)
        }
        ClusterBody::ServerSideEmitResponse { request_id, packet }
        | ClusterBody::BroadcastAck { request_id, packet } => map(vec![
            ("requestId", request(request_id)),
            ("packet", packet.clone()),
        ]),
        ClusterBody::BroadcastClientCount {
            request_id,
            client_count,
        } => map(vec![
            ("requestId", request(request_id)),
            ("clientCount", Value::from(*client_count)),
        ]),
    })
}

fn packet_tree(packet: &BroadcastPacket) -> Value {
    map(vec![
        ("type", Value::from(packet.kind.code())),
        ("data", packet.data.clone()),
    ])
}

fn opts_tree(opts: &BroadcastOpts) -> Value {
    map(vec![
        ("rooms", rooms_tree(&opts.rooms)),
        ("except", rooms_tree(&opts.except)),
        ("flags", flags_tree(&opts.flags)),
    ])
}

fn rooms_tree(rooms: &[String]) -> Value {
    Value::Array(
        rooms
            .iter()
            .map(|room| Value::from(room.as_str()))
            .collect(),
    )
}

/// Only the flags that are set, as Node's flags object holds them.
fn flags_tree(flags: &BroadcastFlags) -> Value {
    let mut entries = Vec::new();
    let mut set = |key, value: Option<Value>| {
        if let Some(value) = value {
            entries.push((key, value));
        }
    };
    set("volatile", flags.volatile.then_some(Value::Boolean(true)));
    set("compress", flags.compress.map(Value::Boolean));
    set("local", flags.local.then_some(Value::Boolean(true)));
    set("broadcast", flags.broadcast.then_some(Value::Boolean(true)));
    set("binary", flags.binary.map(Value::Boolean));
    set("timeout", flags.timeout.map(Value::from));
    set(
        "expectSingleResponse",
        flags.expect_single_response.then_some(Value::Boolean(true)),
    );
    map(entries)
}

fn socket_tree(socket: &ClusterSocket) -> Value {
    map(vec![
        ("id", Value::from(socket.id.as_str())),
        ("handshake", socket.handshake.clone()),
        ("rooms", rooms_tree(&socket.rooms)),
        ("data", socket.data.clone()),
    ])
}

#[cfg(test)]
mod tests;
