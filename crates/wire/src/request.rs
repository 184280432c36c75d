//! Requests and responses between nodes, on `prefix-request#nsp#` and
//! `prefix-response#nsp#[uid#]`.
//!
//! The Node adapter 8.3 writes every request and response as JSON text except
//! BROADCAST (7) requests and BROADCAST_ACK (9) responses, which are msgpack
//! maps because they carry packet data that may hold binary. A receiver tells
//! them apart by the first byte: `{` means JSON. Key order and optional keys
//! below follow the Node source so that encoding is byte-compatible.

use serde::{Deserialize, Deserializer, Serialize};

use crate::broadcast::{
    opts_len_hint, packet_len_hint, read_opts, read_packet, write_opts, write_packet,
    BroadcastOpts, BroadcastPacket,
};
use crate::msgpack::{number_to_room, Dialect, Reader, Token, Writer};
use crate::DecodeError;

/// The numeric `type` of requests and responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RequestType {
    /// 0: socket ids in some rooms.
    Sockets,
    /// 1: every room name.
    AllRooms,
    /// 2: make matching sockets join rooms.
    RemoteJoin,
    /// 3: make matching sockets leave rooms.
    RemoteLeave,
    /// 4: disconnect matching sockets.
    RemoteDisconnect,
    /// 5: fetch matching sockets (id, handshake, rooms, data).
    RemoteFetch,
    /// 6: an event for the other servers.
    ServerSideEmit,
    /// 7: a broadcast that expects client acknowledgements.
    Broadcast,
    /// 8: response to 7: how many clients will acknowledge.
    BroadcastClientCount,
    /// 9: response to 7: one client acknowledgement.
    BroadcastAck,
}

impl RequestType {
    /// The number on the wire.
    pub fn code(self) -> u8 {
        match self {
            RequestType::Sockets => 0,
            RequestType::AllRooms => 1,
            RequestType::RemoteJoin => 2,
            RequestType::RemoteLeave => 3,
            RequestType::RemoteDisconnect => 4,
            RequestType::RemoteFetch => 5,
            RequestType::ServerSideEmit => 6,
            RequestType::Broadcast => 7,
            RequestType::BroadcastClientCount => 8,
            RequestType::BroadcastAck => 9,
        }
    }

    /// The type for a number on the wire.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => RequestType::Sockets,
            1 => RequestType::AllRooms,
            2 => RequestType::RemoteJoin,
            3 => RequestType::RemoteLeave,
            4 => RequestType::RemoteDisconnect,
            5 => RequestType::RemoteFetch,
            6 => RequestType::ServerSideEmit,
            7 => RequestType::Broadcast,
            8 => RequestType::BroadcastClientCount,
            9 => RequestType::BroadcastAck,
            _ => return None,
        })
    }
}

/// Which sockets a request applies to: `{rooms, except}` (JSON requests)
/// or `{rooms, except, flags}` (BROADCAST). Flags are written only in
/// BROADCAST requests.
pub type RequestOpts = BroadcastOpts;

/// A request from a node or an emitter. `uid` is absent in emitter requests
/// (except server-side emit, where it is `"emitter"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Request {
    /// 0: `{uid,requestId,type:0,rooms}`; answered by [`crate::Response::Sockets`].
    Sockets {
        uid: Option<String>,
        request_id: String,
        rooms: Vec<String>,
    },
    /// 1: `{uid,requestId,type:1}`; answered by [`crate::Response::AllRooms`].
    AllRooms {
        uid: Option<String>,
        request_id: String,
    },
    /// 2: `{uid,type:2,opts:{rooms,except},rooms}`; no response.
    RemoteJoin {
        uid: Option<String>,
        opts: RequestOpts,
        rooms: Vec<String>,
    },
    /// 3: `{uid,type:3,opts:{rooms,except},rooms}`; no response.
    RemoteLeave {
        uid: Option<String>,
        opts: RequestOpts,
        rooms: Vec<String>,
    },
    /// 4: `{uid,type:4,opts:{rooms,except},close}`; no response.
    RemoteDisconnect {
        uid: Option<String>,
        opts: RequestOpts,
        close: bool,
    },
    /// Legacy 2 (socket.io-redis 5/6): `{uid,requestId,type:2,sid,room}`;
    /// the node holding `sid` answers [`crate::Response::RemoteAck`].
    LegacyRemoteJoin {
        uid: Option<String>,
        request_id: String,
        sid: String,
        room: String,
    },
    /// Legacy 3: `{uid,requestId,type:3,sid,room}`; answered like legacy 2.
    LegacyRemoteLeave {
        uid: Option<String>,
        request_id: String,
        sid: String,
        room: String,
    },
    /// Legacy 4: `{uid,requestId,type:4,sid,close}`; answered like legacy 2.
    LegacyRemoteDisconnect {
        uid: Option<String>,
        request_id: String,
        sid: String,
        close: bool,
    },
    /// 5: `{uid,requestId,type:5,opts:{rooms,except}}`; answered by
    /// [`crate::Response::FetchedSockets`].
    RemoteFetch {
        uid: Option<String>,
        request_id: String,
        opts: RequestOpts,
    },
    /// 6: `{uid,type:6,data:[event,..args]}`, with `requestId` when the
    /// sender wants acknowledgements ([`crate::Response::ServerSideEmitAck`]).
    ServerSideEmit {
        uid: Option<String>,
        request_id: Option<String>,
        data: Vec<serde_json::Value>,
    },
    /// 7 (msgpack): `{uid,requestId,type:7,packet,opts:{rooms,except,flags}}`;
    /// answered by one [`crate::Response::BroadcastClientCount`] then one
    /// [`crate::Response::BroadcastAck`] per client acknowledgement.
    Broadcast {
        uid: Option<String>,
        request_id: String,
        packet: BroadcastPacket,
        opts: RequestOpts,
    },
}

impl Request {
    /// The request's type.
    pub fn request_type(&self) -> RequestType {
        match self {
            Request::Sockets { .. } => RequestType::Sockets,
            Request::AllRooms { .. } => RequestType::AllRooms,
            Request::RemoteJoin { .. } | Request::LegacyRemoteJoin { .. } => {
                RequestType::RemoteJoin
            }
            Request::RemoteLeave { .. } | Request::LegacyRemoteLeave { .. } => {
                RequestType::RemoteLeave
            }
            Request::RemoteDisconnect { .. } | Request::LegacyRemoteDisconnect { .. } => {
                RequestType::RemoteDisconnect
            }
            Request::RemoteFetch { .. } => RequestType::RemoteFetch,
            Request::ServerSideEmit { .. } => RequestType::ServerSideEmit,
            Request::Broadcast { .. } => RequestType::Broadcast,
        }
    }

    /// The sender's uid, when it sent one.
    pub fn uid(&self) -> Option<&str> {
        match self {
            Request::Sockets { uid, .. }
            | Request::AllRooms { uid, .. }
            | Request::RemoteJoin { uid, .. }
            | Request::RemoteLeave { uid, .. }
            | Request::RemoteDisconnect { uid, .. }
            | Request::LegacyRemoteJoin { uid, .. }
            | Request::LegacyRemoteLeave { uid, .. }
            | Request::LegacyRemoteDisconnect { uid, .. }
            | Request::RemoteFetch { uid, .. }
            | Request::ServerSideEmit { uid, .. }
            | Request::Broadcast { uid, .. } => uid.as_deref(),
        }
    }

    /// The id responses must carry, for requests that expect responses.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Request::Sockets { request_id, .. }
            | Request::AllRooms { request_id, .. }
            | Request::LegacyRemoteJoin { request_id, .. }
            | Request::LegacyRemoteLeave { request_id, .. }
            | Request::LegacyRemoteDisconnect { request_id, .. }
            | Request::RemoteFetch { request_id, .. }
            | Request::Broadcast { request_id, .. } => Some(request_id),
            Request::ServerSideEmit { request_id, .. } => request_id.as_deref(),
            Request::RemoteJoin { .. }
            | Request::RemoteLeave { .. }
            | Request::RemoteDisconnect { .. } => None,
        }
    }

    /// Encodes as Node does: JSON text, except BROADCAST which is msgpack.
    pub fn encode(&self) -> Vec<u8> {
        let code = self.request_type().code();
        let base = JsonRequestOut {
            uid: self.uid(),
            request_id: self.request_id(),
            ty: code,
            ..Default::default()
        };
        let json = match self {
            Request::Sockets { rooms, .. } => JsonRequestOut {
                rooms: Some(rooms),
                ..base
            },
            Request::AllRooms { .. } => base,
            Request::RemoteJoin { opts, rooms, .. } | Request::RemoteLeave { opts, rooms, .. } => {
                JsonRequestOut {
                    opts: Some(JsonOptsOut::from(opts)),
                    rooms: Some(rooms),
                    ..base
                }
            }
            Request::RemoteDisconnect { opts, close, .. } => JsonRequestOut {
                opts: Some(JsonOptsOut::from(opts)),
                close: Some(*close),
                ..base
            },
            Request::LegacyRemoteJoin { sid, room, .. }
            | Request::LegacyRemoteLeave { sid, room, .. } => JsonRequestOut {
                sid: Some(sid),
                room: Some(room),
                ..base
            },
            Request::LegacyRemoteDisconnect { sid, close, .. } => JsonRequestOut {
                sid: Some(sid),
                close: Some(*close),
                ..base
            },
            Request::RemoteFetch { opts, .. } => JsonRequestOut {
                opts: Some(JsonOptsOut::from(opts)),
                ..base
            },
            Request::ServerSideEmit { data, .. } => JsonRequestOut {
                data: Some(data),
                ..base
            },
            Request::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            } => return encode_broadcast_request(uid.as_deref(), request_id, packet, opts),
        };
        to_json(&json)
    }

    /// Decodes a request from any Node adapter or emitter version.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        match buf.first() {
            None => Err(DecodeError::UnexpectedEof),
            Some(b'{') => decode_json_request(buf),
            Some(_) => decode_msgpack_request(buf),
        }
    }
}

// ---------------------------------------------------------------- encoding

pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these borrowed structs cannot fail: every map key is a
    // string and serde_json::Value / String / bool / integers always
    // serialise. An empty object is still a valid (ignored) request.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// Every JSON request field, in the order Node's object literals put them.
#[derive(Serialize, Default)]
struct JsonRequestOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(rename = "type")]
    ty: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    opts: Option<JsonOptsOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a [serde_json::Value]>,
}

#[derive(Serialize)]
struct JsonOptsOut<'a> {
    rooms: &'a [String],
    except: &'a [String],
}

impl<'a> From<&'a RequestOpts> for JsonOptsOut<'a> {
    fn from(opts: &'a RequestOpts) -> Self {
        JsonOptsOut {
            rooms: &opts.rooms,
            except: &opts.except,
        }
    }
}

fn encode_broadcast_request(
    uid: Option<&str>,
    request_id: &str,
    packet: &BroadcastPacket,
    opts: &RequestOpts,
) -> Vec<u8> {
    let capacity = 64
        + uid.map_or(0, str::len)
        + request_id.len()
        + packet_len_hint(packet)
        + opts_len_hint(opts);
    let mut writer = Writer::with_capacity(capacity);
    writer.map_len(if uid.is_some() { 5 } else { 4 });
    if let Some(uid) = uid {
        writer.str("uid");
        writer.str(uid);
    }
    writer.str("requestId");
    writer.str(request_id);
    writer.str("type");
    writer.uint(u64::from(RequestType::Broadcast.code()));
    writer.str("packet");
    write_packet(&mut writer, packet);
    writer.str("opts");
    write_opts(&mut writer, opts, true);
    writer.into_vec()
}

// ---------------------------------------------------------------- decoding

/// A room name in JSON: Node allows numbers.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum JsonRoom {
    Name(String),
    Number(serde_json::Number),
}

impl JsonRoom {
    fn into_string(self) -> String {
        match self {
            JsonRoom::Name(name) => name,
            JsonRoom::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => u.to_string(),
                (_, Some(i), _) => i.to_string(),
                (_, _, Some(f)) => number_to_room(f),
                _ => n.to_string(),
            },
        }
    }
}

pub(crate) fn rooms_from(list: Option<Vec<JsonRoom>>) -> Vec<String> {
    list.unwrap_or_default()
        .into_iter()
        .map(JsonRoom::into_string)
        .collect()
}

pub(crate) fn deserialize_rooms<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    Option::<Vec<JsonRoom>>::deserialize(deserializer).map(rooms_from)
}

/// Keeps `"key": null` apart from an absent key (`undefined` in Node).
pub(crate) fn deserialize_present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

pub(crate) fn number_to_i64(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
            .map(|f| f as i64)
    })
}

#[derive(Deserialize)]
struct JsonOptsIn {
    #[serde(default)]
    rooms: Option<Vec<JsonRoom>>,
    #[serde(default)]
    except: Option<Vec<JsonRoom>>,
}

impl From<JsonOptsIn> for RequestOpts {
    fn from(opts: JsonOptsIn) -> Self {
        RequestOpts {
            rooms: rooms_from(opts.rooms),
            except: rooms_from(opts.except),
            flags: Default::default(),
        }
    }
}

#[derive(Deserialize)]
struct JsonRequestIn {
    #[serde(default)]
    uid: Option<String>,
    #[serde(rename = "requestId", default)]
    request_id: Option<String>,
    #[serde(rename = "type", default)]
    ty: Option<serde_json::Number>,
    #[serde(default)]
    opts: Option<JsonOptsIn>,
    #[serde(default)]
    rooms: Option<Vec<JsonRoom>>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    room: Option<JsonRoom>,
    #[serde(default)]
    close: Option<serde_json::Value>,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

pub(crate) fn json_truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => true,
    }
}

fn decode_json_request(buf: &[u8]) -> Result<Request, DecodeError> {
    let raw: JsonRequestIn = serde_json::from_slice(buf)?;
    let code = raw.ty.as_ref().ok_or(DecodeError::MissingField("type"))?;
    let code = number_to_i64(code).ok_or(DecodeError::UnexpectedType {
        context: "type",
        expected: "an integer",
    })?;
    let ty = RequestType::from_code(code).ok_or(DecodeError::UnknownType(code))?;
    let request_id = || {
        raw.request_id
            .clone()
            .ok_or(DecodeError::MissingField("requestId"))
    };
    let close = raw.close.as_ref().is_some_and(json_truthy);
    let uid = raw.uid.clone();
    Ok(match ty {
        RequestType::Sockets => Request::Sockets {
            request_id: request_id()?,
            uid,
            rooms: rooms_from(raw.rooms),
        },
        RequestType::AllRooms => Request::AllRooms {
            request_id: request_id()?,
            uid,
        },
        // Node takes the modern path whenever `opts` is present.
        RequestType::RemoteJoin | RequestType::RemoteLeave => match raw.opts {
            Some(opts) => {
                let (opts, rooms) = (opts.into(), rooms_from(raw.rooms));
                if ty == RequestType::RemoteJoin {
                    Request::RemoteJoin { uid, opts, rooms }
                } else {
                    Request::RemoteLeave { uid, opts, rooms }
                }
            }
            None => {
                let request_id = request_id()?;
                let sid = raw.sid.ok_or(DecodeError::MissingField("sid"))?;
                let room = raw
                    .room
                    .ok_or(DecodeError::MissingField("room"))?
                    .into_string();
                if ty == RequestType::RemoteJoin {
                    Request::LegacyRemoteJoin {
                        uid,
                        request_id,
                        sid,
                        room,
                    }
                } else {
                    Request::LegacyRemoteLeave {
                        uid,
                        request_id,
                        sid,
                        room,
                    }
                }
            }
        },
        RequestType::RemoteDisconnect => match raw.opts {
            Some(opts) => Request::RemoteDisconnect {
                uid,
                opts: opts.into(),
                close,
            },
            None => Request::LegacyRemoteDisconnect {
                request_id: request_id()?,
                sid: raw.sid.ok_or(DecodeError::MissingField("sid"))?,
                uid,
                close,
            },
        },
        RequestType::RemoteFetch => Request::RemoteFetch {
            request_id: request_id()?,
            opts: raw.opts.ok_or(DecodeError::MissingField("opts"))?.into(),
            uid,
        },
        RequestType::ServerSideEmit => match raw.data {
            Some(serde_json::Value::Array(data)) => Request::ServerSideEmit {
                uid,
                request_id: raw.request_id,
                data,
            },
            Some(_) => {
                return Err(DecodeError::UnexpectedType {
                    context: "data",
                    expected: "an array",
                })
            }
            None => return Err(DecodeError::MissingField("data")),
        },
        RequestType::Broadcast => return Err(DecodeError::UnexpectedEncoding(code, "JSON")),
        RequestType::BroadcastClientCount | RequestType::BroadcastAck => {
            return Err(DecodeError::UnexpectedEncoding(code, "a request"))
        }
    })
}

fn decode_msgpack_request(buf: &[u8]) -> Result<Request, DecodeError> {
    let mut reader = Reader::new(buf, Dialect::Notepack);
    let len = match reader.next_token()? {
        Token::Map(len) => len,
        _ => {
            return Err(DecodeError::UnexpectedType {
                context: "request",
                expected: "a map",
            })
        }
    };
    let (mut uid, mut request_id, mut code, mut packet, mut opts) = (None, None, None, None, None);
    for _ in 0..len {
        let Some(key) = reader.read_key(1)? else {
            reader.skip_value(1)?;
            continue;
        };
        match key {
            b"uid" => uid = reader.read_opt_string("uid")?,
            b"requestId" => request_id = reader.read_opt_string("requestId")?,
            b"type" => code = Some(reader.read_i64("type")?),
            b"packet" => packet = Some(read_packet(&mut reader, 1)?),
            b"opts" => opts = Some(read_opts(&mut reader, 1)?),
            _ => reader.skip_value(1)?,
        }
    }
    reader.finish()?;
    match code {
        Some(7) => Ok(Request::Broadcast {
            uid,
            request_id: request_id.ok_or(DecodeError::MissingField("requestId"))?,
            packet: packet.ok_or(DecodeError::MissingField("packet"))?,
            // Node reads `request.opts.rooms`, so a missing opts is fatal there too.
            opts: opts.ok_or(DecodeError::MissingField("opts"))?,
        }),
        Some(code) if RequestType::from_code(code).is_none() => Err(DecodeError::UnknownType(code)),
        Some(code) => Err(DecodeError::UnexpectedEncoding(code, "msgpack")),
        None => Err(DecodeError::MissingField("type")),
    }
}
