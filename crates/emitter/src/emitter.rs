//! The emitter: publishes Socket.IO operations on Redis without being a
//! Socket.IO server, exactly as Node's `@socket.io/redis-emitter` 5.x does.
//!
//! It never subscribes, so servers never count it as a node and it gets no
//! answers: every operation is one PUBLISH on the Redis master. Broadcasts are
//! msgpack `["emitter", packet, opts]` on `prefix#nsp#` (or on the room's own
//! channel `prefix#nsp#room#` when there is exactly one room); socketsJoin,
//! socketsLeave, disconnectSockets and serverSideEmit are JSON requests on
//! `prefix-request#nsp#`. All bytes come from the `wire` crate, shared with
//! the adapter, so both speak the same dialect.
//!
//! Unlike Node's fire-and-forget `publish`, every call waits for Redis to
//! acknowledge the PUBLISH and returns its error otherwise: bounded by the
//! configured publish timeout, never queued forever.

use std::fmt;
use std::sync::Arc;

use fred::prelude::{ClientLike, PubsubInterface, ReconnectPolicy};
use rmpv::Value;
use wire::{
    BroadcastFlags, BroadcastMessage, BroadcastOpts, BroadcastPacket, Channels, PacketKind,
    EMITTER_UID,
};

use crate::config::RedisConfig;
use crate::error::EmitterError;
use redis_layer::{MasterFollower, SentinelSettings};

/// Event names Socket.IO reserves (the same list as
/// `@socket.io/redis-emitter`'s `RESERVED_EVENTS`), shared with the codec.
pub use protocol::socketio::RESERVED_EVENTS;

/// Whether `event` is one of [`RESERVED_EVENTS`].
pub fn is_reserved_event(event: &str) -> bool {
    RESERVED_EVENTS.contains(&event)
}

/// Normalises a namespace name the way the Node emitter's `of()` does:
/// a missing leading slash is added (`"chat"` → `"/chat"`, `""` → `"/"`).
pub fn normalize_nsp(nsp: &str) -> String {
    if nsp.starts_with('/') {
        nsp.to_owned()
    } else {
        format!("/{nsp}")
    }
}

/// Publishes Socket.IO operations for one namespace (`/` by default).
///
/// Cheap to clone: clones share the Redis connection.
#[derive(Clone)]
pub struct Emitter {
    client: fred::clients::Client,
    prefix: Arc<str>,
    channels: Arc<Channels>,
    /// With sentinels: moves `client` to the master they name.
    master_follower: Option<Arc<MasterFollower>>,
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("prefix", &self.prefix)
            .field("nsp", &self.channels.nsp())
            .field("connected", &self.client.is_connected())
            .finish()
    }
}

impl Emitter {
    /// Connects to Redis and waits for the first connection: an unreachable
    /// server is an error here. Later disconnections are retried in the
    /// background; publishes made meanwhile fail after the publish timeout.
    pub async fn connect(config: &RedisConfig) -> Result<Self, EmitterError> {
        let (client, sentinels) = build_client(config, true)?;
        // The returned handle drives the connection; dropping it does not
        // stop the task.
        let _connection_task = client.init().await?;
        Ok(Self::from_client(client, &config.prefix).following(sentinels))
    }

    /// Starts connecting in the background and returns at once, for a
    /// long-running service that must come up while Redis is down: publishes
    /// fail (after the publish timeout) until Redis is reachable.
    pub fn connect_lazy(config: &RedisConfig) -> Result<Self, EmitterError> {
        let (client, sentinels) = build_client(config, false)?;
        let _connection_task = client.connect();
        Ok(Self::from_client(client, &config.prefix).following(sentinels))
    }

    /// Wraps a fred client the caller configured and connects itself (give it
    /// a `default_command_timeout` so publishes cannot wait forever).
    pub fn from_client(client: fred::clients::Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            channels: Arc::new(Channels::new(prefix, "/")),
            master_follower: None,
        }
    }

    fn following(mut self, sentinels: Option<SentinelSettings>) -> Self {
        if let Some(sentinels) = sentinels {
            let follower = MasterFollower::spawn(self.client.clone(), sentinels);
            self.master_follower = Some(Arc::new(follower));
        }
        self
    }

    /// An emitter for another namespace, sharing this connection.
    pub fn of(&self, nsp: &str) -> Emitter {
        Self {
            client: self.client.clone(),
            prefix: self.prefix.clone(),
            channels: Arc::new(Channels::new(&self.prefix, &normalize_nsp(nsp))),
            master_follower: self.master_follower.clone(),
        }
    }

    /// The namespace this emitter targets.
    pub fn nsp(&self) -> &str {
        self.channels.nsp()
    }

    /// The channel prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the Redis connection is currently up.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Closes the Redis connection after pending commands.
    pub async fn quit(&self) -> Result<(), EmitterError> {
        if let Some(follower) = &self.master_follower {
            follower.stop();
        }
        self.client.quit().await?;
        Ok(())
    }

    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator {
            emitter: self.clone(),
            rooms: Vec::new(),
            except: Vec::new(),
            volatile: false,
            compress: None,
        }
    }

    /// Targets the sockets in `rooms` (one room or several).
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.operator().to(rooms)
    }

    /// Same as [`Emitter::to`] (`in` is a Rust keyword).
    pub fn in_(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.operator().to(rooms)
    }

    /// Excludes the sockets in `rooms` (a socket id is a room).
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.operator().except(rooms)
    }

    /// The event may be dropped for clients that are not ready to receive it.
    pub fn volatile(&self) -> BroadcastOperator {
        self.operator().volatile()
    }

    /// Sets the per-message compression flag.
    pub fn compress(&self, compress: bool) -> BroadcastOperator {
        self.operator().compress(compress)
    }

    /// Emits `event` with `args` to every socket of the namespace.
    /// Returns how many Redis subscribers received the message (on the
    /// master only: subscribers on replicas are not counted).
    pub async fn emit<I>(&self, event: &str, args: I) -> Result<usize, EmitterError>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.operator().emit(event, args).await
    }

    /// [`Emitter::emit`] with JSON arguments, converted as described in
    /// [`crate::value`] (`{"$binary": "<base64>"}` for bytes).
    pub async fn emit_json(
        &self,
        event: &str,
        args: &[serde_json::Value],
    ) -> Result<usize, EmitterError> {
        self.operator().emit_json(event, args).await
    }

    /// Makes every socket of the namespace join `rooms`.
    pub async fn sockets_join(&self, rooms: impl IntoRooms) -> Result<usize, EmitterError> {
        self.operator().sockets_join(rooms).await
    }

    /// Makes every socket of the namespace leave `rooms`.
    pub async fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<usize, EmitterError> {
        self.operator().sockets_leave(rooms).await
    }

    /// Disconnects every socket of the namespace; `close` also closes the
    /// underlying connection.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<usize, EmitterError> {
        self.operator().disconnect_sockets(close).await
    }

    /// Sends an event to the Socket.IO servers themselves (their
    /// `serverSideEmit` listeners). No acknowledgements: emitters never
    /// subscribe, so they cannot receive answers.
    /// Arguments are JSON, as Node sends them (`JSON.stringify`).
    pub async fn server_side_emit<I>(&self, event: &str, args: I) -> Result<usize, EmitterError>
    where
        I: IntoIterator<Item = serde_json::Value>,
    {
        if is_reserved_event(event) {
            return Err(EmitterError::ReservedEvent(event.to_owned()));
        }
        let data: Vec<serde_json::Value> = std::iter::once(serde_json::Value::from(event))
            .chain(args)
            .collect();
        let payload = wire_request::server_side_emit(data);
        self.publish(self.channels.request(), payload).await
    }

    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<usize, EmitterError> {
        tracing::debug!(channel, bytes = payload.len(), "publishing");
        let receivers: i64 = self.client.publish(channel, payload).await?;
        Ok(usize::try_from(receivers).unwrap_or(0))
    }
}

/// `[event, args...]`, refusing reserved names.
fn event_data<I>(event: &str, args: I) -> Result<Vec<Value>, EmitterError>
where
    I: IntoIterator,
    I::Item: Into<Value>,
{
    if is_reserved_event(event) {
        return Err(EmitterError::ReservedEvent(event.to_owned()));
    }
    let args = args.into_iter();
    let mut data = Vec::with_capacity(1 + args.size_hint().0);
    data.push(Value::from(event));
    data.extend(args.map(Into::into));
    Ok(data)
}

/// The publishing client, and the sentinels it follows (read once: the
/// client's Sentinel configuration and the master follower share them).
fn build_client(
    config: &RedisConfig,
    fail_fast: bool,
) -> Result<(fred::clients::Client, Option<SentinelSettings>), EmitterError> {
    config
        .validate()
        .map_err(|err| EmitterError::Config(err.to_string()))?;
    let sentinels = config.sentinel_settings()?;
    let mut redis = match &sentinels {
        // fred asks the sentinels for the master on every (re)connection, so
        // a failover only costs the reconnection.
        Some(sentinels) => sentinels.publisher_config(),
        None => config.node_config()?,
    };
    redis.fail_fast = fail_fast;
    // A PUBLISH that was written when the connection dropped is not
    // replayed: the caller gets an error and decides, rather than risking a
    // silent duplicate. The publish timeout bounds the wait of a publish
    // queued while Redis is unreachable.
    let mut builder = redis_layer::client::builder(
        redis,
        config.connect_timeout(),
        config.publish_timeout(),
        redis_layer::client::Attempts::Once,
    );
    builder
        // Unlimited attempts, 100 ms doubling up to 2 s between them; with
        // sentinels a steady 100 ms, since the new master is usually up
        // within a second of the failover and every retry asks the sentinels.
        .set_policy(if sentinels.is_some() {
            ReconnectPolicy::new_constant(0, 100)
        } else {
            ReconnectPolicy::new_exponential(0, 100, 2_000, 2)
        });
    Ok((builder.build()?, sentinels))
}

/// Targets (rooms, exceptions) and flags for the next operation; built from
/// an [`Emitter`], consumed by the operation. Rooms behave as a set: adding
/// one twice keeps the first position.
#[derive(Debug, Clone)]
pub struct BroadcastOperator {
    emitter: Emitter,
    rooms: Vec<String>,
    except: Vec<String>,
    volatile: bool,
    compress: Option<bool>,
}

fn add_rooms(set: &mut Vec<String>, rooms: impl IntoRooms) {
    for room in rooms.into_rooms() {
        if !set.contains(&room) {
            set.push(room);
        }
    }
}

impl BroadcastOperator {
    /// Adds target rooms.
    pub fn to(mut self, rooms: impl IntoRooms) -> Self {
        add_rooms(&mut self.rooms, rooms);
        self
    }

    /// Same as [`BroadcastOperator::to`].
    pub fn in_(self, rooms: impl IntoRooms) -> Self {
        self.to(rooms)
    }

    /// Adds excluded rooms.
    pub fn except(mut self, rooms: impl IntoRooms) -> Self {
        add_rooms(&mut self.except, rooms);
        self
    }

    /// Marks the event volatile.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// Sets the compression flag.
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = Some(compress);
        self
    }

    /// The target rooms so far.
    pub fn rooms(&self) -> &[String] {
        &self.rooms
    }

    /// The excluded rooms so far.
    pub fn excepted(&self) -> &[String] {
        &self.except
    }

    /// The message and channel an `emit` publishes (exposed for tests and
    /// for callers that publish through their own connection).
    pub fn broadcast_message<I>(
        &self,
        event: &str,
        args: I,
    ) -> Result<(String, Vec<u8>), EmitterError>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        let data = event_data(event, args)?;
        let message = BroadcastMessage {
            uid: EMITTER_UID.to_owned(),
            packet: BroadcastPacket {
                kind: PacketKind::Event,
                nsp: self.emitter.nsp().to_owned(),
                data: Value::Array(data),
            },
            opts: BroadcastOpts {
                rooms: self.rooms.clone(),
                except: self.except.clone(),
                flags: BroadcastFlags {
                    volatile: self.volatile,
                    compress: self.compress,
                    ..BroadcastFlags::default()
                },
            },
        };
        let channel = self
            .emitter
            .channels
            .broadcast_for(&self.rooms)
            .into_owned();
        Ok((channel, message.encode_as_emitter()))
    }

    /// Emits `event` with `args` to the targeted sockets.
    pub async fn emit<I>(self, event: &str, args: I) -> Result<usize, EmitterError>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        let (channel, payload) = self.broadcast_message(event, args)?;
        self.emitter.publish(&channel, payload).await
    }

    /// [`BroadcastOperator::emit`] with JSON arguments (see [`crate::value`]).
    pub async fn emit_json(
        self,
        event: &str,
        args: &[serde_json::Value],
    ) -> Result<usize, EmitterError> {
        let args = args
            .iter()
            .map(crate::value::json_to_value)
            .collect::<Result<Vec<_>, _>>()?;
        self.emit(event, args).await
    }

    /// Makes the targeted sockets join `rooms`.
    pub async fn sockets_join(self, rooms: impl IntoRooms) -> Result<usize, EmitterError> {
        let payload =
            wire_request::sockets_join(self.rooms.clone(), self.except.clone(), rooms.into_rooms());
        self.emitter
            .publish(self.emitter.channels.request(), payload)
            .await
    }

    /// Makes the targeted sockets leave `rooms`.
    pub async fn sockets_leave(self, rooms: impl IntoRooms) -> Result<usize, EmitterError> {
        let payload = wire_request::sockets_leave(
            self.rooms.clone(),
            self.except.clone(),
            rooms.into_rooms(),
        );
        self.emitter
            .publish(self.emitter.channels.request(), payload)
            .await
    }

    /// Disconnects the targeted sockets.
    pub async fn disconnect_sockets(self, close: bool) -> Result<usize, EmitterError> {
        let payload =
            wire_request::disconnect_sockets(self.rooms.clone(), self.except.clone(), close);
        self.emitter
            .publish(self.emitter.channels.request(), payload)
            .await
    }
}

/// One room or several: `"room"`, `String`, `vec![..]`, `["a", "b"]`, `&[..]`.
pub trait IntoRooms {
    fn into_rooms(self) -> Vec<String>;
}

impl IntoRooms for &str {
    fn into_rooms(self) -> Vec<String> {
        vec![self.to_owned()]
    }
}

impl IntoRooms for String {
    fn into_rooms(self) -> Vec<String> {
        vec![self]
    }
}

impl IntoRooms for &String {
    fn into_rooms(self) -> Vec<String> {
        vec![self.clone()]
    }
}

impl IntoRooms for Vec<String> {
    fn into_rooms(self) -> Vec<String> {
        self
    }
}

impl IntoRooms for Vec<&str> {
    fn into_rooms(self) -> Vec<String> {
        self.into_iter().map(str::to_owned).collect()
    }
}

impl IntoRooms for &[String] {
    fn into_rooms(self) -> Vec<String> {
        self.to_vec()
    }
}

impl IntoRooms for &[&str] {
    fn into_rooms(self) -> Vec<String> {
        self.iter().map(|room| (*room).to_owned()).collect()
    }
}

impl<const N: usize> IntoRooms for [&str; N] {
    fn into_rooms(self) -> Vec<String> {
        self.iter().map(|room| (*room).to_owned()).collect()
    }
}

/// The JSON requests, built by the wire crate: emitter requests carry no
/// `uid` (servers must not mistake them for their own) except server-side
/// emit, whose `uid` is `"emitter"`, as in Node.
mod wire_request {
    use wire::{Request, RequestOpts};

    fn opts(rooms: Vec<String>, except: Vec<String>) -> RequestOpts {
        RequestOpts {
            rooms,
            except,
            ..RequestOpts::default()
        }
    }

    pub(super) fn sockets_join(
        rooms: Vec<String>,
        except: Vec<String>,
        target: Vec<String>,
    ) -> Vec<u8> {
        Request::RemoteJoin {
            uid: None,
            opts: opts(rooms, except),
            rooms: target,
        }
        .encode()
    }

    pub(super) fn sockets_leave(
        rooms: Vec<String>,
        except: Vec<String>,
        target: Vec<String>,
    ) -> Vec<u8> {
        Request::RemoteLeave {
            uid: None,
            opts: opts(rooms, except),
            rooms: target,
        }
        .encode()
    }

    pub(super) fn disconnect_sockets(
        rooms: Vec<String>,
        except: Vec<String>,
        close: bool,
    ) -> Vec<u8> {
        Request::RemoteDisconnect {
            uid: None,
            opts: opts(rooms, except),
            close,
        }
        .encode()
    }

    pub(super) fn server_side_emit(data: Vec<serde_json::Value>) -> Vec<u8> {
        Request::ServerSideEmit {
            uid: Some(wire::EMITTER_UID.to_owned()),
            request_id: None,
            data,
        }
        .encode()
    }
}
