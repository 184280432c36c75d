//! What a backend's answer means, decided apart from the HTTP client: the
//! status and body of a hook call (or why there was none) go in, the
//! gateway's action and the `outcome` label of
//! `gateway_hook_requests_total` come out. Every rule of the README's
//! "Backend hooks" section is a row of the tables below.

use rmpv::Value;
use serde::Deserialize;

use crate::handlers::MAX_ROOM_LEN;

/// How one hook call ended, as `gateway_hook_requests_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer the gateway could use.
    Ok,
    /// The backend said no: 401/403 to a connect, `{"error": ...}` to an
    /// event.
    Refused,
    /// Any other status.
    HttpStatus,
    /// No answer within `hooks.timeout_ms`.
    Timeout,
    /// No connection, or it broke before the answer.
    Unreachable,
    /// A 2xx answer whose body is not what the hook expects.
    InvalidAnswer,
}

impl Outcome {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::HttpStatus => "http_status",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::InvalidAnswer => "invalid_answer",
        }
    }

    /// Every label, to export them at zero.
    pub const LABELS: [&'static str; 6] = [
        "ok",
        "refused",
        "http_status",
        "timeout",
        "unreachable",
        "invalid_answer",
    ];
}

/// A call that got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// Past `hooks.timeout_ms`.
    Timeout,
    /// Connection refused, reset, DNS, TLS...: the text says which.
    Unreachable(String),
    /// The body was longer than the gateway reads.
    TooLarge,
}

/// What came back from one call.
pub type Reply<'a> = Result<(u16, &'a [u8]), &'a NoAnswer>;

/// The message a client reads when the backend could not decide.
pub const UNAVAILABLE: &str = "backend unavailable";

/// Rights granted by the connect hook; each absent field keeps the socket's
/// rights from its token or the configured defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Room patterns the socket may join.
    pub rooms: Option<Vec<String>>,
    /// Room patterns the socket may publish to.
    pub publish: Option<Vec<String>>,
    /// Whether its `message` events are relayed.
    pub broadcast: Option<bool>,
}

/// The body of a connect hook's 200.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Admission {
    /// The user: the socket joins `<user_room_prefix><user>`.
    pub user: Option<String>,
    /// Rooms the socket joins at once.
    pub rooms: Vec<String>,
    /// The socket's data (what `fetchSockets` shows of it).
    pub data: Option<serde_json::Value>,
    /// Its rights.
    pub permissions: Grant,
}

/// The connect hook's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectVerdict {
    /// Let it in, with these.
    Accept(Admission),
    /// Refuse it with this message (the backend's, or [`UNAVAILABLE`]).
    Refuse(String),
}

/// Reads the connect hook's answer: 2xx accepts (an empty body is `{}`),
/// 401/403 refuse with the body's `message`, anything else fails closed.
pub fn connect_verdict(reply: Reply<'_>) -> (ConnectVerdict, Outcome) {
    let unavailable = |outcome| (ConnectVerdict::Refuse(UNAVAILABLE.into()), outcome);
    let (status, body) = match reply {
        Ok(answer) => answer,
        Err(no_answer) => return unavailable(no_answer_outcome(no_answer)),
    };
    match status {
        200..=299 => match parse_admission(body) {
            Some(admission) => (ConnectVerdict::Accept(admission), Outcome::Ok),
            None => unavailable(Outcome::InvalidAnswer),
        },
        401 | 403 => {
            let fallback = if status == 401 {
                "unauthorized"
            } else {
                "forbidden"
            };
            let message = message_field(body, "message").unwrap_or_else(|| fallback.into());
            (ConnectVerdict::Refuse(message), Outcome::Refused)
        }
        _ => unavailable(Outcome::HttpStatus),
    }
}

fn parse_admission(body: &[u8]) -> Option<Admission> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(Admission::default());
    }
    let admission: Admission = serde_json::from_slice(body).ok()?;
    let room_ok = |room: &String| !room.is_empty() && room.len() <= MAX_ROOM_LEN;
    let user_ok = admission.user.as_ref().is_none_or(room_ok);
    (user_ok && admission.rooms.iter().all(room_ok)).then_some(admission)
}

/// Reads the event hook's answer: the ack's arguments, or the text of the
/// error object the client's ack gets instead.
pub fn event_answer(reply: Reply<'_>) -> (Result<Vec<Value>, String>, Outcome) {
    let (status, body) = match reply {
        Ok(answer) => answer,
        Err(NoAnswer::Timeout) => return (Err("backend timeout".into()), Outcome::Timeout),
        Err(no_answer) => return (Err(UNAVAILABLE.into()), no_answer_outcome(no_answer)),
    };
    if !(200..=299).contains(&status) {
        let message = message_field(body, "error")
            .unwrap_or_else(|| format!("backend error (HTTP {status})"));
        return (Err(message), Outcome::HttpStatus);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return (Ok(Vec::new()), Outcome::Ok);
    }
    let invalid = || (Err("invalid backend answer".into()), Outcome::InvalidAnswer);
    let Ok(serde_json::Value::Object(answer)) = serde_json::from_slice(body) else {
        return invalid();
    };
    if let Some(error) = answer.get("error") {
        let message = match error {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        return (Err(message), Outcome::Refused);
    }
    match answer.get("ack") {
        None => (Ok(Vec::new()), Outcome::Ok),
        Some(serde_json::Value::Array(items)) => {
            let args: Result<Vec<Value>, _> = items
                .iter()
                .map(protocol::json_args::json_to_value)
                .collect();
            match args {
                Ok(args) => (Ok(args), Outcome::Ok),
                Err(_) => invalid(),
            }
        }
        Some(_) => invalid(),
    }
}

/// Whether a disconnect hook call may be given up as delivered: any 2xx.
/// The body is not read.
pub fn delivered(reply: Reply<'_>) -> (bool, Outcome) {
    match reply {
        Ok((200..=299, _)) => (true, Outcome::Ok),
        Ok(_) => (false, Outcome::HttpStatus),
        Err(no_answer) => (false, no_answer_outcome(no_answer)),
    }
}

/// How long to wait before retrying a disconnect hook call after
/// `failures` failed ones: 0.5 s, 1 s, 2 s...
pub fn retry_delay(failures: u32) -> std::time::Duration {
    std::time::Duration::from_millis(500u64.saturating_mul(1 << failures.min(10)))
        .min(std::time::Duration::from_secs(30))
}

fn no_answer_outcome(no_answer: &NoAnswer) -> Outcome {
    match no_answer {
        NoAnswer::Timeout => Outcome::Timeout,
        NoAnswer::Unreachable(_) => Outcome::Unreachable,
        NoAnswer::TooLarge => Outcome::InvalidAnswer,
    }
}

/// `{"<field>": "<text>"}` of a body, when it is one.
fn message_field(body: &[u8], field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = value.get(field)?.as_str()?;
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> &'static NoAnswer {
        static UNREACHABLE: std::sync::OnceLock<NoAnswer> = std::sync::OnceLock::new();
        UNREACHABLE.get_or_init(|| NoAnswer::Unreachable("connection refused".into()))
    }

    fn ok(status: u16, body: &str) -> (u16, &[u8]) {
        (status, body.as_bytes())
    }

    #[test]
    fn connect_answers() {
        let refuse = |m: &str| ConnectVerdict::Refuse(m.to_owned());
        let accept_all = Admission {
            user: Some("alice".into()),
            rooms: vec!["team:1".into()],
            data: Some(serde_json::json!({"plan": "pro"})),
            permissions: Grant {
                rooms: Some(vec!["chat:*".into()]),
                publish: None,
                broadcast: Some(false),
            },
        };
        let full = r#"{"user":"alice","rooms":["team:1"],"data":{"plan":"pro"},"permissions":{"rooms":["chat:*"],"broadcast":false}}"#;
        let table: Vec<(Reply<'_>, ConnectVerdict, Outcome)> = vec![
            (
                Ok(ok(200, full)),
                ConnectVerdict::Accept(accept_all),
                Outcome::Ok,
            ),
            (
                Ok(ok(200, "")),
                ConnectVerdict::Accept(Admission::default()),
                Outcome::Ok,
            ),
            (
                Ok(ok(204, " ")),
                ConnectVerdict::Accept(Admission::default()),
                Outcome::Ok,
            ),
            (
                Ok(ok(200, "{}")),
                ConnectVerdict::Accept(Admission::default()),
                Outcome::Ok,
            ),
            (
                Ok(ok(401, r#"{"message":"bad token"}"#)),
                refuse("bad token"),
                Outcome::Refused,
            ),
            (Ok(ok(403, "nope")), refuse("forbidden"), Outcome::Refused),
            (Ok(ok(401, "")), refuse("unauthorized"), Outcome::Refused),
            (
                Ok(ok(500, r#"{"message":"boom"}"#)),
                refuse(UNAVAILABLE),
                Outcome::HttpStatus,
            ),
            (Ok(ok(404, "")), refuse(UNAVAILABLE), Outcome::HttpStatus),
            (
                Ok(ok(200, "not json")),
                refuse(UNAVAILABLE),
                Outcome::InvalidAnswer,
            ),
            (
                Ok(ok(200, r#"{"rooms":"one"}"#)),
                refuse(UNAVAILABLE),
                Outcome::InvalidAnswer,
            ),
            (
                Ok(ok(200, r#"{"rooms":[""]}"#)),
                refuse(UNAVAILABLE),
                Outcome::InvalidAnswer,
            ),
            (
                Ok(ok(200, r#"{"user":""}"#)),
                refuse(UNAVAILABLE),
                Outcome::InvalidAnswer,
            ),
            (
                Ok(ok(200, r#"{"permissions":{"room":[]}}"#)),
                refuse(UNAVAILABLE),
                Outcome::InvalidAnswer,
            ),
            (
                Err(&NoAnswer::Timeout),
                refuse(UNAVAILABLE),
                Outcome::Timeout,
            ),
            (
                Err(unreachable()),
                refuse(UNAVAILABLE),
                Outcome::Unreachable,
            ),
            (
                Err(&NoAnswer::TooLarge),
                refuse(UNAVAILABLE),
                Outcome::InvalidAnswer,
            ),
        ];
        for (reply, verdict, outcome) in table {
            assert_eq!(
                connect_verdict(reply),
                (verdict.clone(), outcome),
                "{reply:?}"
            );
        }
    }

    #[test]
    fn event_answers() {
        let err = |m: &str| Err(m.to_owned());
        let table: Vec<(Reply<'_>, Result<Vec<Value>, String>, Outcome)> = vec![
            (
                Ok(ok(200, r#"{"ack":["hi",{"$binary":"AQID"},2]}"#)),
                Ok(vec![
                    Value::from("hi"),
                    Value::Binary(vec![1, 2, 3]),
                    Value::from(2),
                ]),
                Outcome::Ok,
            ),
            (Ok(ok(200, r#"{"ack":[]}"#)), Ok(vec![]), Outcome::Ok),
            (Ok(ok(200, "")), Ok(vec![]), Outcome::Ok),
            (Ok(ok(200, "{}")), Ok(vec![]), Outcome::Ok),
            (
                Ok(ok(200, r#"{"error":"no such room"}"#)),
                err("no such room"),
                Outcome::Refused,
            ),
            (
                Ok(ok(200, r#"{"error":{"code":7}}"#)),
                err(r#"{"code":7}"#),
                Outcome::Refused,
            ),
            (
                Ok(ok(500, "")),
                err("backend error (HTTP 500)"),
                Outcome::HttpStatus,
            ),
            (
                Ok(ok(422, r#"{"error":"too long"}"#)),
                err("too long"),
                Outcome::HttpStatus,
            ),
            (
                Ok(ok(200, r#"{"ack":"hi"}"#)),
                err("invalid backend answer"),
                Outcome::InvalidAnswer,
            ),
            (
                Ok(ok(200, "[1]")),
                err("invalid backend answer"),
                Outcome::InvalidAnswer,
            ),
            (
                Ok(ok(200, r#"{"ack":[{"$binary":"!"}]}"#)),
                err("invalid backend answer"),
                Outcome::InvalidAnswer,
            ),
            (
                Err(&NoAnswer::Timeout),
                err("backend timeout"),
                Outcome::Timeout,
            ),
            (Err(unreachable()), err(UNAVAILABLE), Outcome::Unreachable),
            (
                Err(&NoAnswer::TooLarge),
                err(UNAVAILABLE),
                Outcome::InvalidAnswer,
            ),
        ];
        for (reply, expected, outcome) in table {
            assert_eq!(
                event_answer(reply),
                (expected.clone(), outcome),
                "{reply:?}"
            );
        }
    }

    #[test]
    fn disconnect_deliveries_and_retry_delays() {
        assert_eq!(delivered(Ok(ok(200, "x"))), (true, Outcome::Ok));
        assert_eq!(delivered(Ok(ok(204, ""))), (true, Outcome::Ok));
        assert_eq!(delivered(Ok(ok(503, ""))), (false, Outcome::HttpStatus));
        assert_eq!(
            delivered(Err(&NoAnswer::Timeout)),
            (false, Outcome::Timeout)
        );
        let delays: Vec<u64> = (0..4).map(|n| retry_delay(n).as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000]);
        assert_eq!(retry_delay(u32::MAX), std::time::Duration::from_secs(30));
    }
}
