//! The timestamped message payload and its fast scanner.
//!
//! Every published message is one JSON string argument
//! `"@<phase>.<micros>.<source>.<seq>;xxxx…"`: a phase number (so a
//! straggler from an earlier load step is not counted in the next one), the
//! publish time in microseconds since the run started, the publisher and
//! its message number (so a duplicate is told from a new message), and
//! padding up to the requested size.
//! A string survives every server's re-encoding unchanged (socketioxide, Node
//! and the Redis msgpack hop), and on the receive path the stamp is found
//! with one `memmem` and four digit loops instead of a JSON parse, so the
//! generator does not become the bottleneck.

use memchr::memmem;

/// The marker that opens a stamp inside a frame: a JSON string starting `@`.
const MARKER: &[u8] = b"\"@";

/// A decoded stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub phase: u64,
    pub sent_us: u64,
    /// The publisher: a client's connection index, or an emitter task's
    /// number above [`EMITTER_SOURCES`].
    pub source: u64,
    /// The publisher's message number, from 0, in publish order.
    pub seq: u64,
}

/// Emitter tasks' sources start here, above any connection index.
pub const EMITTER_SOURCES: u64 = 1 << 32;

/// The payload string (without JSON quotes) for `stamp`, padded with `x` to
/// `size` bytes when the stamp is shorter.
pub fn payload(stamp: Stamp, size: usize) -> String {
    let mut text = String::with_capacity(size.max(32));
    text.push('@');
    text.push_str(itoa::Buffer::new().format(stamp.phase));
    for number in [stamp.sent_us, stamp.source, stamp.seq] {
        text.push('.');
        text.push_str(itoa::Buffer::new().format(number));
    }
    text.push(';');
    while text.len() < size {
        text.push('x');
    }
    text
}

/// Finds the first stamp in a frame; `None` when there is none.
pub fn scan(frame: &[u8]) -> Option<Stamp> {
    let start = memmem::find(frame, MARKER)? + MARKER.len();
    let mut rest = frame.get(start..)?;
    let mut numbers = [0u64; 4];
    for (i, number) in numbers.iter_mut().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix(b".")?;
        }
        let (value, used) = digits(rest)?;
        *number = value;
        rest = rest.get(used..)?;
    }
    let [phase, sent_us, source, seq] = numbers;
    (rest.first() == Some(&b';')).then_some(Stamp {
        phase,
        sent_us,
        source,
        seq,
    })
}

/// A run of ASCII digits at the start of `bytes`: (value, length).
fn digits(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    let mut used = 0;
    for &b in bytes.iter().take(20) {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        used += 1;
    }
    (used > 0).then_some((value, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_through_frames() {
        let stamp = Stamp {
            phase: 3,
            sent_us: 1_234_567,
            source: EMITTER_SOURCES + 2,
            seq: 41,
        };
        let text = payload(stamp, 100);
        assert_eq!(text.len(), 100);
        assert!(text.starts_with("@3.1234567.4294967298.41;xx"));
        let frame = format!(r#"42["message","{text}"]"#);
        assert_eq!(scan(frame.as_bytes()), Some(stamp));
        // Through the `publish` handler the string sits inside an object.
        let frame =
            format!(r#"42/chat,["publish",{{"room":"r1","event":"message","data":"{text}"}}]"#);
        assert_eq!(scan(frame.as_bytes()), Some(stamp));
        // Shorter than the stamp: not padded, never truncated.
        assert_eq!(payload(stamp, 0), "@3.1234567.4294967298.41;");
    }

    #[test]
    fn frames_without_a_well_formed_stamp_are_ignored() {
        for frame in [
            r#"42["message","hello"]"#,
            r#"42["message","@12"]"#,
            r#"42["message","@1.x;"]"#,
            r#"42["message","@1.2"]"#,
            // The stamp of older runs: no source and number.
            r#"42["message","@1.2;"]"#,
            r#"42["message","@1.2.3;"]"#,
            r#"42["message","@1.2.3.4"]"#,
            r#"42["message","@1.2.3.4.5;"]"#,
            r#"42["message","@99999999999999999999999.1.0.0;"]"#,
            "2",
        ] {
            assert_eq!(scan(frame.as_bytes()), None, "{frame}");
        }
    }
}
