//! Responses to requests, on `prefix-response#nsp#[uid#]`: JSON text except
//! BROADCAST_ACK (9), a msgpack map because it carries packet data that may
//! hold binary; a receiver tells them apart by the first byte (`{` is JSON).
//! Key order and optional keys follow the Node source, for byte-compatible
//! encoding.

use rmpv::Value;
use serde::{Deserialize, Serialize};

use crate::msgpack::{encoded_len_hint, Dialect, Reader, Token, Writer};
use crate::request::{
    deserialize_present, deserialize_rooms, number_to_i64, rooms_from, to_json, JsonRoom,
    RequestType,
};
use crate::DecodeError;

/// One socket in a fetch response: `{id, handshake, rooms, data}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchedSocket {
    /// The socket id.
    pub id: String,
    /// The handshake as Node serialises it
    /// (`{headers,time,address,xdomain,secure,issued,url,query,auth}`).
    #[serde(default)]
    pub handshake: serde_json::Value,
    /// Rooms the socket is in (its own id included).
    #[serde(deserialize_with = "deserialize_rooms", default)]
    pub rooms: Vec<String>,
    /// The application's `socket.data`.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// A response to a [`crate::Request`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Response {
    /// To 0: `{requestId,sockets:[sid..]}`.
    ///
    /// An empty `sockets` array is also what a node with no matching socket
    /// answers to a fetch (5): the two cannot be told apart on the wire, so
    /// it decodes as this variant; [`Response::into_fetched_sockets`]
    /// handles that.
    Sockets {
        request_id: String,
        sockets: Vec<String>,
    },
    /// To 1: `{requestId,rooms:[..]}`.
    AllRooms {
        request_id: String,
        rooms: Vec<String>,
    },
    /// To a legacy 2/3/4: `{requestId}`.
    RemoteAck { request_id: String },
    /// To 5: `{requestId,sockets:[{id,handshake,rooms,data}..]}`.
    FetchedSockets {
        request_id: String,
        sockets: Vec<FetchedSocket>,
    },
    /// To 6: `{type:6,requestId,data}`; `data` is `None` when the
    /// acknowledgement argument was `undefined`.
    ServerSideEmitAck {
        request_id: String,
        data: Option<serde_json::Value>,
    },
    /// To 7: `{type:8,requestId,clientCount}` (JSON).
    BroadcastClientCount {
        request_id: String,
        client_count: u64,
    },
    /// To 7 (msgpack): `{type:9,requestId,packet}`, `packet` being the
    /// client's first acknowledgement argument (`Nil` if absent).
    BroadcastAck { request_id: String, packet: Value },
}

impl Response {
    /// The id of the request this answers.
    pub fn request_id(&self) -> &str {
        match self {
            Response::Sockets { request_id, .. }
            | Response::AllRooms { request_id, .. }
            | Response::RemoteAck { request_id }
            | Response::FetchedSockets { request_id, .. }
            | Response::ServerSideEmitAck { request_id, .. }
            | Response::BroadcastClientCount { request_id, .. }
            | Response::BroadcastAck { request_id, .. } => request_id,
        }
    }

    /// The sockets of a response to a fetch request (5), counting an empty
    /// [`Response::Sockets`] as zero fetched sockets; `None` for any other
    /// response.
    pub fn into_fetched_sockets(self) -> Option<Vec<FetchedSocket>> {
        match self {
            Response::FetchedSockets { sockets, .. } => Some(sockets),
            Response::Sockets { sockets, .. } if sockets.is_empty() => Some(Vec::new()),
            _ => None,
        }
    }

    /// Encodes as Node does: JSON, except BROADCAST_ACK which is msgpack.
    pub fn encode(&self) -> Vec<u8> {
        let base = JsonResponseOut {
            request_id: self.request_id(),
            ..Default::default()
        };
        let json = match self {
            Response::Sockets { sockets, .. } => JsonResponseOut {
                sockets: Some(SocketsOut::Ids(sockets)),
                ..base
            },
            Response::AllRooms { rooms, .. } => JsonResponseOut {
                rooms: Some(rooms),
                ..base
            },
            Response::RemoteAck { .. } => base,
            Response::FetchedSockets { sockets, .. } => JsonResponseOut {
                sockets: Some(SocketsOut::Fetched(sockets)),
                ..base
            },
            Response::ServerSideEmitAck { data, .. } => JsonResponseOut {
                ty: Some(RequestType::ServerSideEmit.code()),
                data: data.as_ref(),
                ..base
            },
            Response::BroadcastClientCount { client_count, .. } => JsonResponseOut {
                ty: Some(RequestType::BroadcastClientCount.code()),
                client_count: Some(*client_count),
                ..base
            },
            Response::BroadcastAck { request_id, packet } => {
                let mut writer =
                    Writer::with_capacity(48 + request_id.len() + encoded_len_hint(packet));
                writer.map_len(3);
                writer.str("type");
                writer.uint(u64::from(RequestType::BroadcastAck.code()));
                writer.str("requestId");
                writer.str(request_id);
                writer.str("packet");
                writer.value(packet);
                return writer.into_vec();
            }
        };
        to_json(&json)
    }

    /// Decodes a response from any Node adapter version.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        match buf.first() {
            None => Err(DecodeError::UnexpectedEof),
            Some(b'{') => decode_json_response(buf),
            Some(_) => decode_msgpack_response(buf),
        }
    }
}

#[derive(Serialize, Default)]
struct JsonResponseOut<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    ty: Option<u8>,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sockets: Option<SocketsOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a serde_json::Value>,
    #[serde(rename = "clientCount", skip_serializing_if = "Option::is_none")]
    client_count: Option<u64>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SocketsOut<'a> {
    Ids(&'a [String]),
    Fetched(&'a [FetchedSocket]),
}

#[derive(Deserialize)]
struct JsonResponseIn {
    #[serde(rename = "type", default)]
    ty: Option<serde_json::Number>,
    #[serde(rename = "requestId", default)]
    request_id: Option<String>,
    #[serde(default)]
    sockets: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    rooms: Option<Vec<JsonRoom>>,
    #[serde(default, deserialize_with = "deserialize_present")]
    data: Option<serde_json::Value>,
    #[serde(rename = "clientCount", default)]
    client_count: Option<serde_json::Number>,
}

fn decode_json_response(buf: &[u8]) -> Result<Response, DecodeError> {
    let raw: JsonResponseIn = serde_json::from_slice(buf)?;
    let request_id = raw
        .request_id
        .ok_or(DecodeError::MissingField("requestId"))?;
    if let Some(code) = raw.ty {
        let code = number_to_i64(&code).ok_or(DecodeError::UnexpectedType {
            context: "type",
            expected: "an integer",
        })?;
        return match RequestType::from_code(code) {
            Some(RequestType::ServerSideEmit) => Ok(Response::ServerSideEmitAck {
                request_id,
                data: raw.data,
            }),
            Some(RequestType::BroadcastClientCount) => {
                let count = raw
                    .client_count
                    .ok_or(DecodeError::MissingField("clientCount"))?;
                Ok(Response::BroadcastClientCount {
                    request_id,
                    client_count: client_count_from(&count)?,
                })
            }
            Some(_) => Err(DecodeError::UnexpectedEncoding(code, "JSON")),
            None => Err(DecodeError::UnknownType(code)),
        };
    }
    if let Some(sockets) = raw.sockets {
        if sockets.iter().all(serde_json::Value::is_string) {
            let sockets = sockets
                .into_iter()
                .filter_map(|s| match s {
                    serde_json::Value::String(s) => Some(s),
                    _ => None,
                })
                .collect();
            return Ok(Response::Sockets {
                request_id,
                sockets,
            });
        }
        let sockets = sockets
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<Vec<FetchedSocket>, _>>()?;
        return Ok(Response::FetchedSockets {
            request_id,
            sockets,
        });
    }
    if let Some(rooms) = raw.rooms {
        return Ok(Response::AllRooms {
            request_id,
            rooms: rooms_from(Some(rooms)),
        });
    }
    Ok(Response::RemoteAck { request_id })
}

fn client_count_from(n: &serde_json::Number) -> Result<u64, DecodeError> {
    number_to_i64(n)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(DecodeError::UnexpectedType {
            context: "clientCount",
            expected: "a non-negative integer",
        })
}

fn decode_msgpack_response(buf: &[u8]) -> Result<Response, DecodeError> {
    let mut reader = Reader::new(buf, Dialect::Notepack);
    let len = match reader.next_token()? {
        Token::Map(len) => len,
        _ => {
            return Err(DecodeError::UnexpectedType {
                context: "response",
                expected: "a map",
            })
        }
    };
    let (mut request_id, mut code, mut packet, mut client_count) = (None, None, None, None);
    for _ in 0..len {
        let Some(key) = reader.read_key(1)? else {
            reader.skip_value(1)?;
            continue;
        };
        match key {
            b"requestId" => request_id = reader.read_opt_string("requestId")?,
            b"type" => code = Some(reader.read_i64("type")?),
            b"packet" => packet = Some(reader.read_value(1)?),
            b"clientCount" => client_count = Some(reader.read_i64("clientCount")?),
            _ => reader.skip_value(1)?,
        }
    }
    reader.finish()?;
    let request_id = || {
        request_id
            .clone()
            .ok_or(DecodeError::MissingField("requestId"))
    };
    match code {
        Some(9) => Ok(Response::BroadcastAck {
            request_id: request_id()?,
            packet: packet.unwrap_or(Value::Nil),
        }),
        Some(8) => {
            let count = client_count.ok_or(DecodeError::MissingField("clientCount"))?;
            let client_count = u64::try_from(count).map_err(|_| DecodeError::UnexpectedType {
                context: "clientCount",
                expected: "a non-negative integer",
            })?;
            Ok(Response::BroadcastClientCount {
                request_id: request_id()?,
                client_count,
            })
        }
        Some(code) if RequestType::from_code(code).is_none() => Err(DecodeError::UnknownType(code)),
        Some(code) => Err(DecodeError::UnexpectedEncoding(code, "msgpack")),
        None => Err(DecodeError::UnrecognisedResponse),
    }
}
