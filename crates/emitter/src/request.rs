//! Validation of the HTTP API's JSON bodies.
//!
//! Backends in any language call the service, so a bad body must come back
//! with an answer that says which field is wrong (`{"error": ..., "field":
//! "rooms"}`), not a generic "unprocessable". Each body is read as a JSON
//! object of raw values and every field is then converted on its own, so the
//! error carries the field's name; unknown fields are refused too, because a
//! misspelt `"room"` silently broadcasting to everyone would be worse.

use std::collections::BTreeMap;

use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::emitter::{is_reserved_event, normalize_nsp};
use crate::value::ArgValue;

/// What is wrong with a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The offending field, `None` when the body as a whole is unusable.
    pub field: Option<String>,
    pub message: String,
}

impl ValidationError {
    fn body(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }

    fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Which sockets an operation targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Namespace, normalised with a leading slash (default `/`).
    pub nsp: String,
    /// Target rooms; empty means every socket of the namespace.
    pub rooms: Vec<String>,
    /// Excluded rooms.
    pub except: Vec<String>,
}

/// `POST /v1/emit`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmitCommand {
    pub selector: Selector,
    pub event: String,
    pub args: Vec<Value>,
    pub volatile: bool,
    pub compress: Option<bool>,
}

/// `POST /v1/sockets/join` and `POST /v1/sockets/leave`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomsCommand {
    pub selector: Selector,
    pub target_rooms: Vec<String>,
}

/// `POST /v1/sockets/disconnect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectCommand {
    pub selector: Selector,
    pub close: bool,
}

/// `POST /v1/server-side-emit`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSideEmitCommand {
    pub nsp: String,
    pub event: String,
    /// Sent as JSON, as Node's `serverSideEmit` does (no binary conversion).
    pub args: Vec<serde_json::Value>,
}

/// The fields of one JSON object body, taken out one by one.
struct Fields {
    raw: BTreeMap<String, Box<RawValue>>,
}

/// serde_json positions refer to the field's own text: useless to a caller.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_owned(),
        None => text,
    }
}

impl Fields {
    fn parse(body: &[u8]) -> Result<Self, ValidationError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ValidationError::body("empty body: expected a JSON object"));
        }
        serde_json::from_slice::<BTreeMap<String, Box<RawValue>>>(body)
            .map(|raw| Self { raw })
            .map_err(|err| {
                if err.is_data() {
                    ValidationError::body(format!(
                        "body must be a JSON object: {}",
                        without_position(&err)
                    ))
                } else {
                    ValidationError::body(format!("malformed JSON: {err}"))
                }
            })
    }

    fn optional<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, ValidationError> {
        match self.raw.remove(name) {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<Option<T>>(raw.get())
                .map_err(|err| ValidationError::field(name, without_position(&err))),
        }
    }

    fn required<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ValidationError> {
        self.optional(name)?
            .ok_or_else(|| ValidationError::field(name, "missing field"))
    }

    fn selector(&mut self) -> Result<Selector, ValidationError> {
        let nsp = self
            .optional::<String>("nsp")?
            .unwrap_or_else(|| "/".to_owned());
        let rooms = self.rooms("rooms")?.unwrap_or_default();
        let except = self.rooms("except")?.unwrap_or_default();
        Ok(Selector {
            nsp: normalize_nsp(&nsp),
            rooms,
            except,
        })
    }

    /// A room list: an array of non-empty strings, or one string.
    fn rooms(&mut self, name: &str) -> Result<Option<Vec<String>>, ValidationError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let rooms = match self.optional::<serde_json::Value>(name)? {
            None => return Ok(None),
            Some(value) => match OneOrMany::deserialize(value) {
                Ok(OneOrMany::One(room)) => vec![room],
                Ok(OneOrMany::Many(rooms)) => rooms,
                Err(_) => {
                    return Err(ValidationError::field(
                        name,
                        "expected an array of room names (strings)",
                    ))
                }
            },
        };
        if let Some(index) = rooms.iter().position(String::is_empty) {
            return Err(ValidationError::field(
                &format!("{name}[{index}]"),
                "room names must not be empty",
            ));
        }
        Ok(Some(rooms))
    }

    fn event(&mut self) -> Result<String, ValidationError> {
        let event: String = self.required("event")?;
        if event.is_empty() {
            return Err(ValidationError::field("event", "must not be empty"));
        }
        if is_reserved_event(&event) {
            return Err(ValidationError::field(
                "event",
                format!("\"{event}\" is a reserved event name"),
            ));
        }
        Ok(event)
    }

    /// Refuses whatever field was not taken.
    fn finish(self) -> Result<(), ValidationError> {
        match self.raw.into_keys().next() {
            None => Ok(()),
            Some(unknown) => Err(ValidationError::field(&unknown, "unknown field")),
        }
    }
}

/// Validates a `POST /v1/emit` body.
pub fn parse_emit(body: &[u8]) -> Result<EmitCommand, ValidationError> {
    let mut fields = Fields::parse(body)?;
    let selector = fields.selector()?;
    let event = fields.event()?;
    let args = fields
        .optional::<Vec<ArgValue>>("args")?
        .unwrap_or_default()
        .into_iter()
        .map(Value::from)
        .collect();
    let volatile = fields.optional::<bool>("volatile")?.unwrap_or(false);
    let compress = fields.optional::<bool>("compress")?;
    fields.finish()?;
    Ok(EmitCommand {
        selector,
        event,
        args,
        volatile,
        compress,
    })
}

/// Validates a `POST /v1/sockets/join` or `/leave` body.
pub fn parse_rooms_command(body: &[u8]) -> Result<RoomsCommand, ValidationError> {
    let mut fields = Fields::parse(body)?;
    let selector = fields.selector()?;
    let target_rooms = fields
        .rooms("target_rooms")?
        .ok_or_else(|| ValidationError::field("target_rooms", "missing field"))?;
    if target_rooms.is_empty() {
        return Err(ValidationError::field(
            "target_rooms",
            "must name at least one room",
        ));
    }
    fields.finish()?;
    Ok(RoomsCommand {
        selector,
        target_rooms,
    })
}

/// Validates a `POST /v1/sockets/disconnect` body.
pub fn parse_disconnect(body: &[u8]) -> Result<DisconnectCommand, ValidationError> {
    let mut fields = Fields::parse(body)?;
    let selector = fields.selector()?;
    let close = fields.optional::<bool>("close")?.unwrap_or(false);
    fields.finish()?;
    Ok(DisconnectCommand { selector, close })
}

/// Validates a `POST /v1/server-side-emit` body.
pub fn parse_server_side_emit(body: &[u8]) -> Result<ServerSideEmitCommand, ValidationError> {
    let mut fields = Fields::parse(body)?;
    let nsp = fields
        .optional::<String>("nsp")?
        .unwrap_or_else(|| "/".to_owned());
    let event = fields.event()?;
    let args = fields
        .optional::<Vec<serde_json::Value>>("args")?
        .unwrap_or_default();
    fields.finish()?;
    Ok(ServerSideEmitCommand {
        nsp: normalize_nsp(&nsp),
        event,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ValidationError) -> Option<String> {
        err.field
    }

    #[test]
    fn full_emit_body() {
        let body = br#"{"nsp":"/chat","rooms":["a","b"],"except":["c"],"event":"message",
            "args":["hi",1,{"k":[true,null]},{"$binary":"AQID"}],"volatile":true,"compress":false}"#;
        let command = parse_emit(body).unwrap();
        assert_eq!(
            command.selector,
            Selector {
                nsp: "/chat".into(),
                rooms: vec!["a".into(), "b".into()],
                except: vec!["c".into()],
            }
        );
        assert_eq!(command.event, "message");
        assert_eq!(
            command.args,
            vec![
                Value::from("hi"),
                Value::from(1),
                Value::Map(vec![(
                    Value::from("k"),
                    Value::Array(vec![Value::Boolean(true), Value::Nil])
                )]),
                Value::Binary(vec![1, 2, 3]),
            ]
        );
        assert!(command.volatile);
        assert_eq!(command.compress, Some(false));
    }

    #[test]
    fn minimal_emit_body_uses_defaults() {
        let command = parse_emit(br#"{"event":"tick"}"#).unwrap();
        assert_eq!(command.selector.nsp, "/");
        assert!(command.selector.rooms.is_empty());
        assert!(command.selector.except.is_empty());
        assert!(command.args.is_empty());
        assert!(!command.volatile);
        assert_eq!(command.compress, None);
        // A namespace without its slash is normalised like the Node emitter's of().
        assert_eq!(
            parse_emit(br#"{"event":"x","nsp":"admin"}"#)
                .unwrap()
                .selector
                .nsp,
            "/admin"
        );
        // A single room as a string is accepted.
        assert_eq!(
            parse_emit(br#"{"event":"x","rooms":"r1"}"#)
                .unwrap()
                .selector
                .rooms,
            vec!["r1"]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases: [(&[u8], Option<&str>); 16] = [
            (br#"{"rooms":[]}"#, Some("event")),
            (br#"{"event":42}"#, Some("event")),
            (br#"{"event":""}"#, Some("event")),
            (br#"{"event":"disconnect"}"#, Some("event")),
            (br#"{"event":"connect"}"#, Some("event")),
            (br#"{"event":"x","rooms":[1]}"#, Some("rooms")),
            (br#"{"event":"x","rooms":["ok",""]}"#, Some("rooms[1]")),
            (br#"{"event":"x","except":{"a":1}}"#, Some("except")),
            (br#"{"event":"x","args":"hi"}"#, Some("args")),
            (br#"{"event":"x","args":[{"$binary":"!!"}]}"#, Some("args")),
            (br#"{"event":"x","volatile":"yes"}"#, Some("volatile")),
            (br#"{"event":"x","nsp":3}"#, Some("nsp")),
            (br#"{"event":"x","room":"r"}"#, Some("room")),
            (br#"{"event":"x""#, None),
            (br#"["event"]"#, None),
            (b"", None),
        ];
        for (body, field) in cases {
            let err = parse_emit(body).unwrap_err();
            assert_eq!(
                field_of(err.clone()).as_deref(),
                field,
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn rooms_commands() {
        let command =
            parse_rooms_command(br#"{"rooms":["a"],"except":["b"],"target_rooms":["x","y"]}"#)
                .unwrap();
        assert_eq!(command.selector.rooms, vec!["a"]);
        assert_eq!(command.selector.except, vec!["b"]);
        assert_eq!(command.target_rooms, vec!["x", "y"]);
        let err = parse_rooms_command(br#"{"rooms":["a"]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("target_rooms"));
        let err = parse_rooms_command(br#"{"target_rooms":[]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("target_rooms"));
        let err = parse_rooms_command(br#"{"target_rooms":["x"],"close":true}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("close"));
    }

    #[test]
    fn disconnect_commands() {
        let command = parse_disconnect(br#"{"nsp":"/a","close":true}"#).unwrap();
        assert_eq!(command.selector.nsp, "/a");
        assert!(command.close);
        assert!(!parse_disconnect(b"{}").unwrap().close);
        let err = parse_disconnect(br#"{"close":1}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("close"));
    }

    #[test]
    fn server_side_emit_commands() {
        let command = parse_server_side_emit(br#"{"event":"ping","args":[1,{"a":"b"}]}"#).unwrap();
        assert_eq!(command.nsp, "/");
        assert_eq!(command.event, "ping");
        assert_eq!(
            command.args,
            vec![serde_json::json!(1), serde_json::json!({"a":"b"})]
        );
        let err = parse_server_side_emit(br#"{"event":"ping","rooms":["a"]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("rooms"));
        let err = parse_server_side_emit(br#"{"args":[]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("event"));
    }
}
