//! Event arguments: from JSON text (HTTP bodies, CLI words) to the msgpack
//! values the wire format carries.
//!
//! Node builds its arguments from JavaScript values, so we convert JSON the
//! way `JSON.parse` followed by notepack would: object keys keep their
//! document order, a number with no fractional part becomes a msgpack
//! integer (`1.0` is the integer `1` in JavaScript), other numbers float64.
//! JSON has no bytes, so an object whose only key is `"$binary"` with a
//! base64 string value stands for a binary argument (a Node `Buffer`), e.g.
//! `{"$binary":"AQID"}` is the three bytes 1, 2, 3.
//!
//! [`value_to_json`] goes the other way, for what the gateway's hooks tell
//! a backend: bytes become the same `$binary` objects, so what a backend
//! receives it can send back unchanged.

use std::fmt;

use base64::Engine as _;
use rmpv::Value;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use thiserror::Error;

/// Key of the JSON object that stands for binary data.
pub const BINARY_KEY: &str = "$binary";

/// A command-line argument or JSON value that cannot become an event argument.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArgError {
    /// Looks like JSON (starts with `{`, `[` or `"`) but does not parse.
    #[error("argument {text:?} looks like JSON but is malformed: {reason}")]
    MalformedJson { text: String, reason: String },
    /// A JSON value that cannot be converted (bad `$binary` object...).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// A msgpack value deserialized from JSON with the rules of this module.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgValue(pub Value);

impl From<ArgValue> for Value {
    fn from(arg: ArgValue) -> Self {
        arg.0
    }
}

/// Converts one `emitter emit EVENT [ARG]...` word.
///
/// Valid JSON is taken as JSON (`42`, `true`, `null`, `{"a":1}`, `"quoted"`);
/// a word that starts like JSON text (`{`, `[`, `"` after optional spaces)
/// but does not parse is an error, because the user clearly meant JSON; any
/// other word is sent as a plain string, so `emitter emit message Hello!`
/// sends the string `"Hello!"`. To send a numeric-looking string, quote it:
/// `'"42"'`.
pub fn parse_cli_arg(text: &str) -> Result<Value, ArgError> {
    match serde_json::from_str::<ArgValue>(text) {
        Ok(ArgValue(value)) => Ok(value),
        Err(err) => {
            let looks_like_json = matches!(text.trim_start().chars().next(), Some('{' | '[' | '"'));
            if looks_like_json || err.is_data() {
                // A data error means the JSON parsed but its content was
                // refused (bad `$binary`): never fall back to a string then.
                Err(ArgError::MalformedJson {
                    text: text.to_owned(),
                    reason: err.to_string(),
                })
            } else {
                Ok(Value::String(text.into()))
            }
        }
    }
}

/// Converts a `serde_json::Value` (library convenience). Object keys come in
/// the order `serde_json::Map` iterates them.
pub fn json_to_value(json: &serde_json::Value) -> Result<Value, ArgError> {
    ArgValue::deserialize(json)
        .map(Value::from)
        .map_err(|err| ArgError::Invalid(err.to_string()))
}

/// Mirrors notepack: integral finite numbers are integers, others float64.
fn number_from_f64(number: f64) -> Value {
    // Bounds where the integer conversion is exact (2^63 and 2^64 are
    // representable as f64; the upper bounds are exclusive).
    const I64_MIN: f64 = -9_223_372_036_854_775_808.0;
    const U64_END: f64 = 18_446_744_073_709_551_616.0;
    if number.is_finite() && number.fract() == 0.0 && (I64_MIN..U64_END).contains(&number) {
        if number >= 0.0 {
            return Value::from(number as u64);
        }
        return Value::from(number as i64);
    }
    Value::F64(number)
}

impl<'de> Deserialize<'de> for ArgValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ArgVisitor)
    }
}

struct ArgVisitor;

impl<'de> Visitor<'de> for ArgVisitor {
    type Value = ArgValue;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ArgValue, E> {
        Ok(ArgValue(Value::Boolean(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ArgValue, E> {
        Ok(ArgValue(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ArgValue, E> {
        Ok(ArgValue(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ArgValue, E> {
        Ok(ArgValue(number_from_f64(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ArgValue, E> {
        Ok(ArgValue(Value::String(v.into())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<ArgValue, E> {
        Ok(ArgValue(Value::String(v.into())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<ArgValue, E> {
        Ok(ArgValue(Value::Nil))
    }

    fn visit_none<E: de::Error>(self) -> Result<ArgValue, E> {
        Ok(ArgValue(Value::Nil))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<ArgValue, D::Error> {
        ArgValue::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArgValue, A::Error> {
        // The hint comes from the input; cap it so it cannot reserve much.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(ArgValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(ArgValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ArgValue, A::Error> {
        let mut entries: Vec<(Value, Value)> =
            Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some((key, ArgValue(value))) = map.next_entry::<String, ArgValue>()? {
            // JSON.parse keeps the last duplicate at the first one's place.
            if let Some(entry) = entries.iter_mut().find(|(k, _)| k.as_str() == Some(&key)) {
                entry.1 = value;
            } else {
                entries.push((Value::String(key.into()), value));
            }
        }
        if entries
            .iter()
            .any(|(key, _)| key.as_str() == Some(BINARY_KEY))
        {
            return binary_from_entries(&entries)
                .map(ArgValue)
                .map_err(de::Error::custom);
        }
        Ok(ArgValue(Value::Map(entries)))
    }
}

/// The JSON a backend reads for `value`: bytes (and msgpack extensions'
/// data) as `{"$binary": "<base64>"}`, non-string map keys as their JSON
/// text (as JavaScript turns object keys into strings), non-finite floats
/// as `null` (as `JSON.stringify` writes them), text that is not UTF-8
/// with replacement characters.
pub fn value_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    let binary = |bytes: &[u8]| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        Json::Object(serde_json::Map::from_iter([(
            BINARY_KEY.to_owned(),
            Json::String(encoded),
        )]))
    };
    match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => Json::from(n),
            (None, Some(n)) => Json::from(n),
            (None, None) => Json::Null,
        },
        Value::F32(f) => float_to_json(f64::from(*f)),
        Value::F64(f) => float_to_json(*f),
        Value::String(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(bytes) => binary(bytes),
        Value::Ext(_, bytes) => binary(bytes),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(key, value)| (map_key(key), value_to_json(value)))
                .collect(),
        ),
    }
}

fn float_to_json(number: f64) -> serde_json::Value {
    serde_json::Number::from_f64(number)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

fn map_key(key: &Value) -> String {
    match key {
        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => value_to_json(other).to_string(),
    }
}

fn binary_from_entries(entries: &[(Value, Value)]) -> Result<Value, String> {
    match entries {
        [(_, Value::String(encoded))] => {
            let encoded = encoded
                .as_str()
                .ok_or_else(|| format!("`{BINARY_KEY}` is not valid UTF-8"))?;
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map(Value::Binary)
                .map_err(|err| format!("`{BINARY_KEY}` is not valid base64: {err}"))
        }
        [_] => Err(format!("`{BINARY_KEY}` must be a base64 string")),
        _ => Err(format!(
            "an object with a `{BINARY_KEY}` key stands for binary data and must have no other key"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn values_to_json_and_back() {
        let value = map(&[
            ("bytes", Value::Binary(vec![1, 2, 3])),
            ("n", Value::from(-7)),
            ("big", Value::from(u64::MAX)),
            ("f", Value::F64(1.5)),
            ("nan", Value::F64(f64::NAN)),
            ("list", Value::Array(vec![Value::Nil, Value::Boolean(true)])),
        ]);
        let json = value_to_json(&value);
        assert_eq!(
            json.to_string(),
            r#"{"bytes":{"$binary":"AQID"},"n":-7,"big":18446744073709551615,"f":1.5,"nan":null,"list":[null,true]}"#
        );
        let back = json_to_value(&json).unwrap();
        let expected_back = map(&[
            ("bytes", Value::Binary(vec![1, 2, 3])),
            ("n", Value::from(-7)),
            ("big", Value::from(u64::MAX)),
            ("f", Value::F64(1.5)),
            ("nan", Value::Nil),
            ("list", Value::Array(vec![Value::Nil, Value::Boolean(true)])),
        ]);
        assert_eq!(back, expected_back);
        let keyed = Value::Map(vec![(Value::from(1), Value::from("one"))]);
        assert_eq!(value_to_json(&keyed).to_string(), r#"{"1":"one"}"#);
    }

    #[test]
    fn bare_words_are_strings() {
        assert_eq!(parse_cli_arg("Hello!").unwrap(), Value::from("Hello!"));
        assert_eq!(
            parse_cli_arg("hello world").unwrap(),
            Value::from("hello world")
        );
        assert_eq!(parse_cli_arg("").unwrap(), Value::from(""));
        assert_eq!(parse_cli_arg("1.2.3").unwrap(), Value::from("1.2.3"));
        assert_eq!(parse_cli_arg("truex").unwrap(), Value::from("truex"));
        assert_eq!(parse_cli_arg("-").unwrap(), Value::from("-"));
    }

    #[test]
    fn json_words_are_json() {
        assert_eq!(parse_cli_arg("42").unwrap(), Value::from(42));
        assert_eq!(parse_cli_arg("-7").unwrap(), Value::from(-7));
        assert_eq!(parse_cli_arg("1.5").unwrap(), Value::F64(1.5));
        assert_eq!(parse_cli_arg("true").unwrap(), Value::Boolean(true));
        assert_eq!(parse_cli_arg("null").unwrap(), Value::Nil);
        assert_eq!(parse_cli_arg("\"42\"").unwrap(), Value::from("42"));
        assert_eq!(
            parse_cli_arg(" [1, \"a\"] ").unwrap(),
            Value::Array(vec![Value::from(1), Value::from("a")])
        );
    }

    #[test]
    fn object_keys_keep_document_order() {
        let value = parse_cli_arg(r#"{"z":1,"a":{"y":null,"b":[]}}"#).unwrap();
        let expected = map(&[
            ("z", Value::from(1)),
            ("a", map(&[("y", Value::Nil), ("b", Value::Array(vec![]))])),
        ]);
        assert_eq!(value, expected);
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_like_json_parse() {
        let value = parse_cli_arg(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(value, map(&[("a", Value::from(3)), ("b", Value::from(2))]));
    }

    #[test]
    fn integral_floats_become_integers_like_javascript() {
        assert_eq!(parse_cli_arg("1.0").unwrap(), Value::from(1));
        assert_eq!(parse_cli_arg("-2e3").unwrap(), Value::from(-2000));
        assert_eq!(parse_cli_arg("1e300").unwrap(), Value::F64(1e300));
        assert_eq!(
            parse_cli_arg("18446744073709551615").unwrap(),
            Value::from(u64::MAX)
        );
        assert_eq!(
            parse_cli_arg("-9223372036854775808").unwrap(),
            Value::from(i64::MIN)
        );
    }

    #[test]
    fn json_looking_but_malformed_words_are_errors() {
        for text in [
            "{",
            "{\"a\":}",
            "[1,",
            "\"unterminated",
            "  {oops}",
            "[1 2]",
        ] {
            let err = parse_cli_arg(text).unwrap_err();
            assert!(
                matches!(err, ArgError::MalformedJson { .. }),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn binary_objects_become_bytes() {
        assert_eq!(
            parse_cli_arg(r#"{"$binary":"AQID"}"#).unwrap(),
            Value::Binary(vec![1, 2, 3])
        );
        assert_eq!(
            parse_cli_arg(r#"{"$binary":""}"#).unwrap(),
            Value::Binary(vec![])
        );
        let nested = parse_cli_arg(r#"{"file":{"$binary":"/w=="},"n":1}"#).unwrap();
        assert_eq!(
            nested,
            map(&[("file", Value::Binary(vec![0xff])), ("n", Value::from(1))])
        );
    }

    #[test]
    fn bad_binary_objects_are_errors() {
        for text in [
            r#"{"$binary":"not base64!"}"#,
            r#"{"$binary":12}"#,
            r#"{"$binary":"AQID","other":1}"#,
            r#"[{"$binary":null}]"#,
        ] {
            assert!(parse_cli_arg(text).is_err(), "{text}");
        }
        let err = json_to_value(&serde_json::json!({"$binary": "%%"})).unwrap_err();
        assert!(err.to_string().contains("base64"), "{err}");
    }

    #[test]
    fn json_values_convert() {
        let value =
            json_to_value(&serde_json::json!(["a", 1, 2.5, true, null, {"$binary": "AA=="}]))
                .unwrap();
        assert_eq!(
            value,
            Value::Array(vec![
                Value::from("a"),
                Value::from(1),
                Value::F64(2.5),
                Value::Boolean(true),
                Value::Nil,
                Value::Binary(vec![0]),
            ])
        );
    }
}
