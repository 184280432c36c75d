//! The value trees a ClusterAdapter message is read from and written to.
//!
//! Node writes one message either as `JSON.stringify` text or as notepack
//! msgpack, from the same JS object. Both decode here into one `rmpv::Value`
//! tree (JSON numbers follow notepack's rule: integral values are
//! integers), so the typed reading in [`super`] is written once for both
//! encodings; and one tree, built in the key order of Node's object
//! literals, is written as either.

use rmpv::Value;

use crate::msgpack::{number_to_room, Dialect, Reader, Writer};
use crate::DecodeError;

/// Integers within this magnitude are exact JS numbers.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Decodes a whole message: JSON when it starts with `{` (as Node's
/// `onRawMessage` decides), msgpack otherwise.
pub(super) fn decode(buf: &[u8]) -> Result<Value, DecodeError> {
    match buf.first() {
        None => Err(DecodeError::UnexpectedEof),
        Some(b'{') => {
            // serde_json bounds the nesting (128 levels) by itself.
            let json: serde_json::Value = serde_json::from_slice(buf)?;
            Ok(from_json(json))
        }
        Some(_) => {
            let mut reader = Reader::new(buf, Dialect::Notepack);
            let value = reader.read_value(0)?;
            reader.finish()?;
            Ok(value)
        }
    }
}

/// A JSON value as the tree notepack would have written for the JS value
/// `JSON.parse` makes of it.
fn from_json(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (_, Some(i), _) => Value::from(i),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER => {
                if f < 0.0 {
                    Value::from(f as i64)
                } else {
                    Value::from(f as u64)
                }
            }
            (_, _, f) => Value::F64(f.unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.into_iter()
                .map(|(key, value)| (Value::from(key), from_json(value)))
                .collect(),
        ),
    }
}

/// Writes `tree` as Node would: msgpack when `binary_allowed` and the tree
/// holds bytes, `JSON.stringify` text otherwise.
pub(super) fn encode(tree: &Value, binary_allowed: bool) -> Vec<u8> {
    if !(binary_allowed && has_binary(tree)) {
        let mut text = String::with_capacity(128);
        let mut attachments = Vec::new();
        // Fails only past protocol's JSON depth or on bytes where binary
        // is not expected; msgpack carries both, and Node reads it.
        if protocol::convert::write_socketio_json(tree, &mut text, &mut attachments).is_ok()
            && attachments.is_empty()
        {
            return text.into_bytes();
        }
    }
    let mut writer = Writer::with_capacity(crate::msgpack::encoded_len_hint(tree));
    writer.value(tree);
    writer.into_vec()
}

/// Whether bytes appear anywhere in `value` (socket.io's `hasBinary`).
pub(super) fn has_binary(value: &Value) -> bool {
    match value {
        Value::Binary(_) => true,
        Value::Array(items) => items.iter().any(has_binary),
        Value::Map(entries) => entries.iter().any(|(_, value)| has_binary(value)),
        _ => false,
    }
}

/// A map's entries, for reading fields by name.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields<'a> {
    entries: &'a [(Value, Value)],
    context: &'static str,
}

impl<'a> Fields<'a> {
    /// The entries of `value`, which must be a map.
    pub(super) fn of(value: &'a Value, context: &'static str) -> Result<Self, DecodeError> {
        match value {
            Value::Map(entries) => Ok(Self { entries, context }),
            _ => Err(DecodeError::UnexpectedType {
                context,
                expected: "a map",
            }),
        }
    }

    /// The value of `key`; the last one when repeated, as `JSON.parse`
    /// and notepack keep it.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .rev()
            .find(|(name, _)| name.as_str() == Some(key))
            .map(|(_, value)| value)
            .filter(|value| !value.is_nil())
    }

    /// The value of `key`, which must be there.
    pub(super) fn require(&self, key: &'static str) -> Result<&'a Value, DecodeError> {
        self.get(key).ok_or(DecodeError::MissingField(key))
    }

    /// The string `key`, which must be there.
    pub(super) fn string(&self, key: &'static str) -> Result<String, DecodeError> {
        match self.require(key)? {
            Value::String(s) => Ok(s.as_str().unwrap_or_default().to_owned()),
            _ => Err(DecodeError::UnexpectedType {
                context: key,
                expected: "a string",
            }),
        }
    }

    /// The string `key`, when present.
    pub(super) fn opt_string(&self, key: &'static str) -> Result<Option<String>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.string(key).map(Some),
        }
    }

    /// The room names of `key` (absent: none; numbers print as JS does).
    pub(super) fn rooms(&self, key: &'static str) -> Result<Vec<String>, DecodeError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    room_name(item).ok_or(DecodeError::UnexpectedType {
                        context: key,
                        expected: "room names",
                    })
                })
                .collect(),
            Some(_) => Err(DecodeError::UnexpectedType {
                context: key,
                expected: "an array of rooms",
            }),
        }
    }

    /// Which map this is, for errors.
    pub(super) fn context(&self) -> &'static str {
        self.context
    }
}

/// A room as Node names it: strings as they are, numbers as `String(n)`.
fn room_name(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.as_str().unwrap_or_default().to_owned()),
        Value::Integer(n) => Some(n.to_string()),
        Value::F64(f) => Some(number_to_room(*f)),
        Value::F32(f) => Some(number_to_room(f64::from(*f))),
        _ => None,
    }
}

/// JS truthiness of a decoded value.
pub(super) fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Nil) => false,
        Some(Value::Boolean(b)) => *b,
        Some(Value::Integer(n)) => n.as_i64() != Some(0) && n.as_u64() != Some(0),
        Some(Value::F64(f)) => *f != 0.0 && !f.is_nan(),
        Some(Value::F32(f)) => *f != 0.0 && !f.is_nan(),
        Some(Value::String(s)) => !s.as_bytes().is_empty(),
        Some(_) => true,
    }
}

/// A non-negative integer (integral floats included).
pub(super) fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Integer(n) => n.as_u64(),
        Value::F64(f) if *f >= 0.0 && f.fract() == 0.0 && *f <= MAX_SAFE_INTEGER => Some(*f as u64),
        _ => None,
    }
}

/// A map with string keys, in the given order.
pub(super) fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(key, value)| (Value::from(key), value))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_follow_notepack() {
        let cases = [
            ("1", Value::from(1u64)),
            ("-2", Value::from(-2i64)),
            ("1.0", Value::from(1u64)),
            ("1.5", Value::F64(1.5)),
            ("1e+21", Value::F64(1e21)),
            ("-0", Value::from(0i64)),
            ("18446744073709551615", Value::from(u64::MAX)),
        ];
        for (text, expected) in cases {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(from_json(json), expected, "{text}");
        }
    }

    #[test]
    fn binary_is_found_at_any_depth() {
        let nested = Value::Array(vec![map(vec![("a", Value::Binary(vec![1]))])]);
        assert!(has_binary(&nested));
        assert!(!has_binary(&Value::Array(vec![Value::from("x")])));
        assert_eq!(encode(&nested, true)[0], 0x91);
        // Bytes where Node never expects them still leave as msgpack.
        assert_eq!(encode(&nested, false)[0], 0x91);
        assert_eq!(
            encode(&map(vec![("a", Value::from(1))]), true),
            b"{\"a\":1}"
        );
    }

    #[test]
    fn the_last_of_repeated_keys_wins() {
        let tree = decode(br#"{"a":1,"a":2}"#).unwrap();
        let fields = Fields::of(&tree, "test").unwrap();
        assert_eq!(fields.get("a"), Some(&Value::from(2)));
    }
}
