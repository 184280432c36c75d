//! What a socket may do: which rooms it may join and publish to (exact
//! names or Redis-style glob patterns such as `chat:*`, matched by
//! [`wire::pattern_matches`]), and whether its `message` events are
//! relayed. They come from the token's claims, or from the configured
//! defaults when a claim (or the whole token) is absent.
//!
//! Pure: the handlers ask, these functions answer, and the tables below
//! test every case.

use crate::auth::{AuthConfig, Claims};

/// The rights of one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// Room patterns the socket may join.
    pub rooms: Vec<String>,
    /// Room patterns the socket may publish to.
    pub publish: Vec<String>,
    /// Whether `message` is relayed to the namespace.
    pub broadcast: bool,
    /// Rooms starting with this prefix are users' rooms: only the socket's
    /// own (`own_user_room`) is allowed, whatever the patterns say. `None`
    /// without auth.
    pub user_room_prefix: Option<String>,
    /// `user:<sub>` of the socket's user, when it has one.
    pub own_user_room: Option<String>,
}

impl Permissions {
    /// Rights of a socket without a token: with auth off, everything (unless
    /// defaults are configured); with auth on, only the configured defaults.
    pub fn anonymous(config: &AuthConfig) -> Self {
        let on = config.enabled();
        let everything = || vec!["*".to_owned()];
        let or_default = |configured: &Option<Vec<String>>| match configured {
            Some(rooms) => rooms.clone(),
            None if on => Vec::new(),
            None => everything(),
        };
        Self {
            rooms: or_default(&config.default_rooms),
            publish: or_default(&config.default_publish),
            broadcast: config.default_broadcast.unwrap_or(!on),
            user_room_prefix: on.then(|| config.user_room_prefix.clone()),
            own_user_room: None,
        }
    }

    /// Rights of a socket with a verified token: each claim replaces its
    /// default from `defaults` (the [`Self::anonymous`] rights of `config`).
    pub fn from_claims(claims: &Claims, defaults: &Permissions, config: &AuthConfig) -> Self {
        Self {
            rooms: claims
                .rooms
                .clone()
                .unwrap_or_else(|| defaults.rooms.clone()),
            publish: claims
                .publish
                .clone()
                .unwrap_or_else(|| defaults.publish.clone()),
            broadcast: claims.broadcast.unwrap_or(defaults.broadcast),
            own_user_room: Some(user_room(config, &claims.sub)),
            user_room_prefix: defaults.user_room_prefix.clone(),
        }
    }

    /// Rights of a socket the connect hook admitted: each field of `grant`
    /// replaces the one of `self` (from the token or the defaults). Once a
    /// backend names users, users' rooms are protected even with auth off,
    /// and `user` (the backend's, else the token's) owns its room.
    pub fn granted_by_backend(
        &self,
        grant: &crate::hooks::Grant,
        user: Option<&str>,
        config: &AuthConfig,
    ) -> Self {
        Self {
            rooms: grant.rooms.clone().unwrap_or_else(|| self.rooms.clone()),
            publish: grant
                .publish
                .clone()
                .unwrap_or_else(|| self.publish.clone()),
            broadcast: grant.broadcast.unwrap_or(self.broadcast),
            user_room_prefix: Some(config.user_room_prefix.clone()),
            own_user_room: user
                .map(|user| user_room(config, user))
                .or_else(|| self.own_user_room.clone()),
        }
    }

    /// Whether the socket may join `room`.
    pub fn may_join(&self, room: &str) -> bool {
        self.allowed(&self.rooms, room)
    }

    /// Whether the socket may publish to `room`.
    pub fn may_publish(&self, room: &str) -> bool {
        self.allowed(&self.publish, room)
    }

    fn allowed(&self, patterns: &[String], room: &str) -> bool {
        if let Some(prefix) = &self.user_room_prefix {
            if room.starts_with(prefix.as_str()) {
                return self.own_user_room.as_deref() == Some(room);
            }
        }
        patterns
            .iter()
            .any(|pattern| wire::pattern_matches(pattern, room))
    }
}

/// The room every socket of user `sub` joins.
pub fn user_room(config: &AuthConfig, sub: &str) -> String {
    format!("{}{sub}", config.user_room_prefix)
}

/// How many rooms count against `max_rooms_per_socket`: every room but the
/// socket's own id room and its user room.
pub fn counted_rooms<'a>(
    rooms: impl IntoIterator<Item = &'a str>,
    sid: &str,
    user_room: Option<&str>,
) -> usize {
    rooms
        .into_iter()
        .filter(|room| *room != sid && Some(*room) != user_room)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(rooms: Option<&[&str]>, publish: Option<&[&str]>, broadcast: Option<bool>) -> Claims {
        let list = |l: Option<&[&str]>| l.map(|l| l.iter().map(|s| (*s).to_owned()).collect());
        Claims {
            sub: "alice".into(),
            exp: None,
            rooms: list(rooms),
            publish: list(publish),
            broadcast,
            all: serde_json::Value::Null,
        }
    }

    fn auth_on() -> AuthConfig {
        AuthConfig {
            jwt_secret: Some("s".into()),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn defaults_with_and_without_auth() {
        let off = Permissions::anonymous(&AuthConfig::default());
        assert!(off.may_join("anything") && off.may_publish("user:bob") && off.broadcast);
        let on = Permissions::anonymous(&auth_on());
        assert!(!on.may_join("lobby") && !on.may_publish("lobby") && !on.broadcast);
        let configured = Permissions::anonymous(&AuthConfig {
            default_rooms: Some(vec!["lobby".into()]),
            default_broadcast: Some(true),
            ..auth_on()
        });
        assert!(configured.may_join("lobby") && !configured.may_join("lobby2"));
        assert!(configured.broadcast && !configured.may_publish("lobby"));
    }

    #[test]
    fn claims_grant_rooms_by_name_and_pattern() {
        let config = auth_on();
        let p = Permissions::from_claims(
            &claims(
                Some(&["chat:*", "news"]),
                Some(&["chat:general"]),
                Some(true),
            ),
            &Permissions::anonymous(&config),
            &config,
        );
        // (room, may join, may publish)
        let table = [
            ("chat:general", true, true),
            ("chat:random", true, false),
            ("chat:", true, false),
            ("chat", false, false),
            ("news", true, false),
            ("newsroom", false, false),
            ("admin", false, false),
            ("user:alice", true, true),
            ("user:bob", false, false),
        ];
        for (room, join, publish) in table {
            assert_eq!(
                (p.may_join(room), p.may_publish(room)),
                (join, publish),
                "{room}"
            );
        }
        assert!(p.broadcast);
    }

    #[test]
    fn user_rooms_are_off_limits_even_to_wildcards() {
        let config = auth_on();
        let defaults = Permissions::anonymous(&config);
        let p = Permissions::from_claims(
            &claims(Some(&["*"]), Some(&["*"]), None),
            &defaults,
            &config,
        );
        assert!(p.may_join("anything") && p.may_publish("user:alice"));
        assert!(!p.may_join("user:bob") && !p.may_publish("user:bob"));
        assert!(!p.broadcast, "no claim, auth on: the default is false");
    }

    #[test]
    fn the_backend_grant_overrides_field_by_field() {
        let config = AuthConfig::default();
        let base = Permissions::anonymous(&config);
        let grant = crate::hooks::Grant {
            rooms: Some(vec!["chat:*".into()]),
            publish: None,
            broadcast: Some(false),
        };
        let p = base.granted_by_backend(&grant, Some("alice"), &config);
        // (room, may join, may publish): publish keeps auth-off's `*`.
        let table = [
            ("chat:1", true, true),
            ("lobby", false, true),
            ("user:alice", true, true),
            ("user:bob", false, false),
        ];
        for (room, join, publish) in table {
            assert_eq!(
                (p.may_join(room), p.may_publish(room)),
                (join, publish),
                "{room}"
            );
        }
        assert!(!p.broadcast);
        let anonymous = base.granted_by_backend(&crate::hooks::Grant::default(), None, &config);
        assert!(anonymous.broadcast && anonymous.may_join("lobby"));
        assert!(!anonymous.may_join("user:alice"), "no user: no user room");
    }

    #[test]
    fn own_id_and_user_rooms_do_not_count() {
        let rooms = ["SID", "user:alice", "a", "b"];
        assert_eq!(counted_rooms(rooms, "SID", Some("user:alice")), 2);
        assert_eq!(counted_rooms(rooms, "SID", None), 3);
        assert_eq!(counted_rooms([], "SID", None), 0);
    }
}
