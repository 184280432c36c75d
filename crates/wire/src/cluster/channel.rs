//! Channel names of Node's sharded Redis adapter (`createShardedAdapter`,
//! `@socket.io/redis-adapter` 8.3), and which channel a message goes to.
//!
//! Every node subscribes to the namespace's channel `<prefix>#<nsp>#` and
//! to its own response channel `<prefix>#<nsp>#<uid>#`. In the dynamic
//! subscription modes it also subscribes to one channel per room,
//! `<prefix>#<nsp>#<room>#`, for as long as it has the room, so a
//! broadcast to a single room reaches only the nodes that have it.

use super::{ClusterBody, ClusterMessage};

/// How rooms map to channels (the adapter's `subscriptionMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// One channel per namespace; every broadcast goes through it.
    Static,
    /// Also one channel per room, except the rooms that are socket ids
    /// (Node's default).
    #[default]
    Dynamic,
    /// Also one channel per room, socket-id rooms included.
    DynamicPrivate,
}

/// The channels of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedChannels {
    main: String,
}

impl ShardedChannels {
    /// The channels of namespace `nsp` under `prefix` (Node's
    /// `channelPrefix`, `socket.io` by default).
    pub fn new(prefix: &str, nsp: &str) -> Self {
        Self {
            main: format!("{prefix}#{nsp}#"),
        }
    }

    /// `<prefix>#<nsp>#`: broadcasts, requests, and what every node hears.
    pub fn main(&self) -> &str {
        &self.main
    }

    /// `<prefix>#<nsp>#<room>#`: broadcasts to that room alone.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }

    /// `<prefix>#<nsp>#<uid>#`: the answers to node `uid`'s requests.
    pub fn response(&self, uid: &str) -> String {
        self.room(uid)
    }

    /// Where `message` is published. A broadcast with ack never takes a
    /// room channel: its sender counts the answers it waits for over the
    /// whole namespace.
    pub fn publish_channel(&self, message: &ClusterMessage, mode: SubscriptionMode) -> String {
        match &message.body {
            ClusterBody::Broadcast {
                request_id: None,
                opts,
                ..
            } if opts.rooms.len() == 1 => {
                let room = &opts.rooms[0];
                let takes_room_channel = match mode {
                    SubscriptionMode::Static => false,
                    SubscriptionMode::Dynamic => !looks_like_a_socket_id(room),
                    SubscriptionMode::DynamicPrivate => true,
                };
                if takes_room_channel {
                    self.room(room)
                } else {
                    self.main.clone()
                }
            }
            _ => self.main.clone(),
        }
    }
}

/// Whether a node subscribes to the channel of a room it holds (Node's
/// `shouldUseASeparateNamespace`): in dynamic mode only for public rooms,
/// those that are not one of its sockets' own id.
pub fn room_has_channel(mode: SubscriptionMode, is_a_socket_id_room: bool) -> bool {
    match mode {
        SubscriptionMode::Static => false,
        SubscriptionMode::Dynamic => !is_a_socket_id_room,
        SubscriptionMode::DynamicPrivate => true,
    }
}

/// Node's `looksLikeASocketId`: 20 characters, counted as JS counts them
/// (UTF-16 code units).
pub fn looks_like_a_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::{BroadcastOpts, BroadcastPacket, PacketKind};

    fn broadcast(rooms: &[&str], request_id: Option<&str>) -> ClusterMessage {
        ClusterMessage {
            uid: "u".into(),
            nsp: "/".into(),
            body: ClusterBody::Broadcast {
                packet: BroadcastPacket {
                    kind: PacketKind::Event,
                    nsp: "/".into(),
                    data: rmpv::Value::Array(Vec::new()),
                },
                request_id: request_id.map(str::to_owned),
                opts: BroadcastOpts {
                    rooms: rooms.iter().map(|room| (*room).to_owned()).collect(),
                    ..BroadcastOpts::default()
                },
            },
        }
    }

    #[test]
    fn names() {
        let channels = ShardedChannels::new("socket.io", "/chat");
        assert_eq!(channels.main(), "socket.io#/chat#");
        assert_eq!(channels.room("r1"), "socket.io#/chat#r1#");
        assert_eq!(
            channels.response("68ec12a53adbef51"),
            "socket.io#/chat#68ec12a53adbef51#"
        );
    }

    #[test]
    fn publish_channels() {
        use SubscriptionMode::*;
        let sid = "pdEbraOo3wRTSNGmAAAA";
        let cases = [
            (vec!["room1"], None, Dynamic, "socket.io#/#room1#"),
            (vec!["room1"], None, DynamicPrivate, "socket.io#/#room1#"),
            (vec!["room1"], None, Static, "socket.io#/#"),
            (vec!["room1"], Some("req"), Dynamic, "socket.io#/#"),
            (vec!["room1", "room2"], None, Dynamic, "socket.io#/#"),
            (vec![], None, Dynamic, "socket.io#/#"),
            (vec![sid], None, Dynamic, "socket.io#/#"),
            (
                vec![sid],
                None,
                DynamicPrivate,
                "socket.io#/#pdEbraOo3wRTSNGmAAAA#",
            ),
        ];
        let channels = ShardedChannels::new("socket.io", "/");
        for (rooms, request_id, mode, expected) in cases {
            let message = broadcast(&rooms, request_id);
            assert_eq!(
                channels.publish_channel(&message, mode),
                expected,
                "{rooms:?} {request_id:?} {mode:?}"
            );
        }
    }

    #[test]
    fn socket_ids_are_twenty_utf16_units() {
        assert!(looks_like_a_socket_id("pdEbraOo3wRTSNGmAAAA"));
        assert!(!looks_like_a_socket_id("room1"));
        // 10 characters outside the BMP are 20 UTF-16 units, as in JS.
        assert!(looks_like_a_socket_id(&"😀".repeat(10)));
        assert!(!looks_like_a_socket_id(&"é".repeat(10)));
        assert!(room_has_channel(SubscriptionMode::Dynamic, false));
        assert!(!room_has_channel(SubscriptionMode::Dynamic, true));
        assert!(room_has_channel(SubscriptionMode::DynamicPrivate, true));
        assert!(!room_has_channel(SubscriptionMode::Static, false));
    }
}
