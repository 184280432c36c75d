//! Conversion between socketioxide's packet payloads and the msgpack value
//! trees carried in Redis messages.
//!
//! socketioxide hands the adapter payloads already encoded by the namespace's
//! parser: JSON text plus binary attachments for the common parser, one
//! msgpack document for the msgpack parser. Node carries `[event, ..args]` as
//! one msgpack tree with binary inline. Conversion happens once per publish
//! and once per received message, never per recipient.

use std::collections::VecDeque;

use bytes::Bytes;
use socketioxide_core::{
    packet::{Packet, PacketData},
    parser::Parse,
    Str, Value as SioValue,
};

use crate::error::Error;

/// Which encoding the namespace's parser produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadFormat {
    /// JSON text plus attachments (`ParserConfig::common()`).
    Json,
    /// One msgpack document (`ParserConfig::msgpack()`).
    Msgpack,
}

impl PayloadFormat {
    /// Ask the parser how it encodes a value: the two parsers give
    /// different `Value` variants.
    pub(crate) fn detect(parser: impl Parse) -> Self {
        match parser.encode_value(&(), Some("probe")) {
            Ok(SioValue::Bytes(_)) => PayloadFormat::Msgpack,
            _ => PayloadFormat::Json,
        }
    }

    /// socketioxide payload -> msgpack tree. For events the tree is
    /// `[event, ..args]`; for acks it is `[..args]`.
    pub(crate) fn encode_msgpack(self, value: &SioValue) -> Result<rmpv::Value, Error> {
        match value {
            SioValue::Str(json, attachments) => {
                let attachments: Vec<Bytes> = attachments
                    .as_ref()
                    .map(|a| a.iter().cloned().collect())
                    .unwrap_or_default();
                protocol::convert::socketio_to_msgpack(json.as_str(), &attachments)
                    .map_err(|e| Error::Encode(e.to_string()))
            }
            SioValue::Bytes(bytes) => {
                let mut reader: &[u8] = bytes;
                rmpv::decode::read_value_ref(&mut reader)
                    .map(|v| v.to_owned())
                    .map_err(|e| Error::Encode(e.to_string()))
            }
        }
    }

    /// msgpack tree -> socketioxide payload.
    pub(crate) fn decode_msgpack(self, data: &rmpv::Value) -> Result<SioValue, Error> {
        match self {
            PayloadFormat::Json => {
                let (json, attachments) = protocol::convert::msgpack_to_socketio(data)
                    .map_err(|e| Error::Encode(e.to_string()))?;
                let attachments = (!attachments.is_empty())
                    .then(|| attachments.into_iter().collect::<VecDeque<Bytes>>());
                Ok(SioValue::Str(Str::from(json), attachments))
            }
            PayloadFormat::Msgpack => {
                let mut buf = Vec::new();
                rmpv::encode::write_value(&mut buf, data)
                    .map_err(|e| Error::Encode(e.to_string()))?;
                Ok(SioValue::Bytes(Bytes::from(buf)))
            }
        }
    }
}

/// The event payload of a packet the application broadcasts.
pub(crate) fn event_payload(packet: &Packet) -> Result<&SioValue, Error> {
    match &packet.inner {
        PacketData::Event(value, _) | PacketData::BinaryEvent(value, _) => Ok(value),
        other => Err(Error::Encode(format!(
            "only events can be broadcast across nodes, got packet type {}",
            other.index()
        ))),
    }
}

/// The first argument of an acknowledgement (what Node carries in a
/// BROADCAST_ACK response), from the `[..args]` tree.
pub(crate) fn first_ack_arg(args: rmpv::Value) -> rmpv::Value {
    match args {
        rmpv::Value::Array(mut args) if !args.is_empty() => args.swap_remove(0),
        rmpv::Value::Array(_) => rmpv::Value::Nil,
        // A parser that does not wrap acks in an array: take it as the argument.
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    #[test]
    fn first_ack_arg_takes_the_first() {
        let args = Value::Array(vec![Value::from("a"), Value::from(2)]);
        assert_eq!(first_ack_arg(args), Value::from("a"));
        assert_eq!(first_ack_arg(Value::Array(vec![])), Value::Nil);
    }

    #[test]
    fn json_round_trip_with_binary() {
        let tree = Value::Array(vec![
            Value::from("ev"),
            Value::Binary(vec![1, 2, 3]),
            Value::Map(vec![(Value::from("k"), Value::Binary(vec![4]))]),
        ]);
        let sio = PayloadFormat::Json.decode_msgpack(&tree).unwrap();
        match &sio {
            SioValue::Str(json, Some(att)) => {
                assert_eq!(att.len(), 2);
                assert!(json.as_str().contains("_placeholder"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(PayloadFormat::Json.encode_msgpack(&sio).unwrap(), tree);
    }

    #[test]
    fn msgpack_round_trip() {
        let tree = Value::Array(vec![Value::from("ev"), Value::Binary(vec![9])]);
        let sio = PayloadFormat::Msgpack.decode_msgpack(&tree).unwrap();
        assert!(matches!(sio, SioValue::Bytes(_)));
        assert_eq!(PayloadFormat::Msgpack.encode_msgpack(&sio).unwrap(), tree);
    }
}
