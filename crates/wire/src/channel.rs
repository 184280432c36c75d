//! Redis channel names of the classic (non-sharded) Node adapter.
//!
//! Every node and emitter must agree on these strings to the byte, so they are
//! built in one place. [`Channels`] precomputes the fixed names of one
//! (prefix, namespace) pair because they are needed on every publish.

use std::borrow::Cow;

/// The default channel prefix (the Node adapter's `key` option).
pub const DEFAULT_PREFIX: &str = "socket.io";

/// Channel names for one namespace under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    nsp: String,
    /// `prefix#nsp#`
    broadcast: String,
    /// `prefix-request#nsp#`
    request: String,
    /// `prefix-response#nsp#`
    response: String,
}

impl Channels {
    /// Channels of namespace `nsp` (with its leading slash, e.g. `/` or
    /// `/chat`) under `prefix` (usually [`DEFAULT_PREFIX`]).
    pub fn new(prefix: &str, nsp: &str) -> Self {
        Channels {
            nsp: nsp.to_owned(),
            broadcast: format!("{prefix}#{nsp}#"),
            request: format!("{prefix}-request#{nsp}#"),
            response: format!("{prefix}-response#{nsp}#"),
        }
    }

    /// The namespace these channels belong to.
    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    /// Broadcasts to zero or several rooms: `socket.io#/#`.
    pub fn broadcast(&self) -> &str {
        &self.broadcast
    }

    /// Broadcasts to exactly one room: `socket.io#/#room1#`.
    pub fn broadcast_room(&self, room: &str) -> String {
        let mut channel = String::with_capacity(self.broadcast.len() + room.len() + 1);
        channel.push_str(&self.broadcast);
        channel.push_str(room);
        channel.push('#');
        channel
    }

    /// The channel a broadcast to `rooms` is published on: the room channel
    /// when there is exactly one room, else the base channel. Both the Node
    /// adapter 8.3 (`broadcast`) and the redis-emitter 5.x use this rule; it
    /// lets a receiver drop a single-room broadcast before decoding it.
    pub fn broadcast_for(&self, rooms: &[String]) -> Cow<'_, str> {
        match rooms {
            [room] => Cow::Owned(self.broadcast_room(room)),
            _ => Cow::Borrowed(&self.broadcast),
        }
    }

    /// The `PSUBSCRIBE` pattern matching the base and every room channel of
    /// this namespace: `socket.io#/#*`.
    ///
    /// Node appends `*` to the raw name; glob characters in the prefix or the
    /// namespace are escaped here so the pattern cannot match another
    /// namespace's channels.
    pub fn broadcast_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.broadcast.len() + 8);
        for c in self.broadcast.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// Requests to every node: `socket.io-request#/#`.
    pub fn request(&self) -> &str {
        &self.request
    }

    /// Responses on the shared channel: `socket.io-response#/#`.
    pub fn response(&self) -> &str {
        &self.response
    }

    /// Responses addressed to node `uid` (used by responders configured with
    /// `publishOnSpecificResponseChannel`): `socket.io-response#/#<uid>#`.
    pub fn response_for(&self, uid: &str) -> String {
        let mut channel = String::with_capacity(self.response.len() + uid.len() + 1);
        channel.push_str(&self.response);
        channel.push_str(uid);
        channel.push('#');
        channel
    }

    /// Splits a channel received through the broadcast pattern.
    ///
    /// `Some(None)` is the base channel, `Some(Some(room))` a single-room
    /// channel, `None` a channel that is not a broadcast channel of this
    /// namespace. Like Node, the room is everything between the base name and
    /// the final `#` (so room names may themselves contain `#`), and an empty
    /// room means the base channel. Unlike Node, a suffix without the final
    /// `#` is rejected instead of being misread.
    pub fn parse_broadcast<'a>(&self, channel: &'a str) -> Option<Option<&'a str>> {
        let rest = channel.strip_prefix(self.broadcast.as_str())?;
        if rest.is_empty() {
            return Some(None);
        }
        let room = rest.strip_suffix('#')?;
        if room.is_empty() {
            Some(None)
        } else {
            Some(Some(room))
        }
    }
}

/// The single channel of the 2014 `socket.io-emitter` 0.2.0 (shared by every
/// namespace): `socket.io#emitter`.
pub fn legacy_emitter_channel(prefix: &str) -> String {
    format!("{prefix}#emitter")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_root_namespace() {
        let channels = Channels::new(DEFAULT_PREFIX, "/");
        assert_eq!(channels.nsp(), "/");
        assert_eq!(channels.broadcast(), "socket.io#/#");
        assert_eq!(channels.broadcast_room("room1"), "socket.io#/#room1#");
        assert_eq!(channels.request(), "socket.io-request#/#");
        assert_eq!(channels.response(), "socket.io-response#/#");
        assert_eq!(
            channels.response_for("Ab12Cd"),
            "socket.io-response#/#Ab12Cd#"
        );
        assert_eq!(channels.broadcast_pattern(), "socket.io#/#*");
        assert_eq!(legacy_emitter_channel(DEFAULT_PREFIX), "socket.io#emitter");
    }

    #[test]
    fn custom_prefix_and_namespace() {
        let channels = Channels::new("app", "/chat");
        assert_eq!(channels.broadcast(), "app#/chat#");
        assert_eq!(channels.request(), "app-request#/chat#");
        assert_eq!(channels.response_for("x"), "app-response#/chat#x#");
    }

    #[test]
    fn channel_for_a_broadcast_depends_on_the_room_count() {
        let channels = Channels::new(DEFAULT_PREFIX, "/");
        assert_eq!(channels.broadcast_for(&[]), "socket.io#/#");
        assert_eq!(channels.broadcast_for(&["a".into()]), "socket.io#/#a#");
        assert_eq!(
            channels.broadcast_for(&["a".into(), "b".into()]),
            "socket.io#/#"
        );
    }

    #[test]
    fn pattern_escapes_glob_characters() {
        let channels = Channels::new("p*", "/a?[b]\\c");
        assert_eq!(channels.broadcast_pattern(), "p\\*#/a\\?\\[b\\]\\\\c#*");
    }

    #[test]
    fn parse_broadcast_channels() {
        let channels = Channels::new(DEFAULT_PREFIX, "/");
        assert_eq!(channels.parse_broadcast("socket.io#/#"), Some(None));
        assert_eq!(
            channels.parse_broadcast("socket.io#/#room1#"),
            Some(Some("room1"))
        );
        assert_eq!(
            channels.parse_broadcast("socket.io#/#a#b#"),
            Some(Some("a#b"))
        );
        assert_eq!(channels.parse_broadcast("socket.io#/##"), Some(None));
        assert_eq!(channels.parse_broadcast("socket.io#/#room1"), None);
        assert_eq!(channels.parse_broadcast("socket.io#/chat#"), None);
        assert_eq!(channels.parse_broadcast("socket.io-request#/#"), None);
        let chat = Channels::new(DEFAULT_PREFIX, "/chat");
        assert_eq!(chat.parse_broadcast("socket.io#/#"), None);
        assert_eq!(chat.parse_broadcast("socket.io#/chat#r#"), Some(Some("r")));
    }

    #[test]
    fn room_channel_round_trips_through_parse() {
        let channels = Channels::new(DEFAULT_PREFIX, "/nsp");
        for room in ["r", "with#hash", "ünï", "12"] {
            let channel = channels.broadcast_room(room);
            assert_eq!(channels.parse_broadcast(&channel), Some(Some(room)));
        }
    }
}
