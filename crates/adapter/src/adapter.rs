//! The socketioxide adapter: one instance per namespace, all sharing one
//! [`ClusterHandle`].
//!
//! Outbound, every operation is applied locally and published once in Node's
//! format. Inbound, a worker task per namespace drains two bounded queues
//! (broadcasts; requests and responses) filled by the subscriber, so a slow
//! namespace cannot stall the others and overload is counted, not hidden.
//!
//! Exactly-once: a Rust node applies its own operations locally when it
//! sends them and drops its own messages when they come back (by uid).
//! Node applies its own REMOTE_JOIN/LEAVE/DISCONNECT only when they come back
//! and never locally, so either way each node applies each operation once.
//!
//! Socket ids as rooms: Node puts every socket in a room named after its id
//! and addresses single sockets that way (`io.to(socketId)`,
//! `RemoteSocket`). socketioxide does not, so when a received operation
//! names a room that is the id of a local socket, that socket is joined to
//! it on the spot (and leaves it on disconnect like any room).

use std::{
    borrow::Cow,
    collections::HashSet,
    fmt,
    future::Future,
    pin::Pin,
    str::FromStr,
    sync::{Arc, Weak},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use socketioxide_core::{
    adapter::{
        errors::BroadcastError, BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter,
        DefinedAdapter, RemoteSocketData, Room, RoomParam, SocketEmitter, Spawnable,
    },
    packet::Packet,
    Sid, Str, Uid,
};
use tokio::sync::mpsc;
use wire::{BroadcastMessage, BroadcastPacket, Channels, PacketKind, Request, Response};

use crate::{
    ack::ClusterAckStream,
    dispatch::NamespaceRoute,
    error::{Error, InitError},
    handle::ClusterHandle,
    metrics::{MessageKind, RequestKind},
    payload::{event_payload, PayloadFormat},
    state::{NamespaceOps, Shared},
    transport::Lane,
};

/// Extra wait after the ack timeout for remote acks to cross Redis.
const ACK_NETWORK_GRACE: Duration = Duration::from_millis(250);

/// The Redis adapter for one namespace. Use it as
/// `SocketIo::builder().with_adapter::<RedisAdapter<_>>(cluster_handle)`.
pub struct RedisAdapter<E> {
    pub(crate) local: CoreLocalAdapter<E>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) nsp: String,
    pub(crate) channels: Channels,
    pub(crate) specific_response: String,
    pub(crate) format: PayloadFormat,
    pub(crate) server_id: Uid,
}

impl<E> fmt::Debug for RedisAdapter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("nsp", &self.nsp)
            .field("uid", &self.shared.uid)
            .finish()
    }
}

impl<E> DefinedAdapter for RedisAdapter<E> {}

/// The future returned by `io.ns(..)`: resolves once the namespace's
/// channels are subscribed (or registered for the subscriber's next
/// connection when Redis is down).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct InitRes(Pin<Box<dyn Future<Output = Result<(), InitError>> + Send>>);

impl fmt::Debug for InitRes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InitRes")
    }
}

impl Future for InitRes {
    type Output = Result<(), InitError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Spawnable for InitRes {
    fn spawn(self) {
        tokio::spawn(async move {
            if let Err(err) = self.0.await {
                tracing::error!(%err, "redis adapter namespace init failed");
            }
        });
    }
}

/// `(rooms, except)` on the wire for socketioxide options, or `None` when
/// the options select no socket at all.
pub(crate) fn wire_targets(opts: &BroadcastOptions) -> Option<(Vec<String>, Vec<String>)> {
    let mut rooms: Vec<String> = opts.rooms.iter().map(|r| r.to_string()).collect();
    let mut except: Vec<String> = opts.except.iter().map(|r| r.to_string()).collect();
    if opts.has_flag(BroadcastFlags::Broadcast) {
        if let Some(sid) = opts.sid {
            except.push(sid.to_string());
        }
    } else if rooms.is_empty() {
        // A single socket (`RemoteSocket`): Node addresses it by its id room.
        rooms.push(opts.sid?.to_string());
    }
    Some((rooms, except))
}

/// socketioxide options for rooms and except received from the wire.
pub(crate) fn local_opts(rooms: &[String], except: &[String], volatile: bool) -> BroadcastOptions {
    let mut opts = BroadcastOptions::default();
    opts.add_flag(BroadcastFlags::Broadcast);
    if volatile {
        opts.add_flag(BroadcastFlags::Volatile);
    }
    opts.rooms = rooms.iter().map(|r| Cow::Owned(r.clone())).collect();
    opts.except = except.iter().map(|r| Cow::Owned(r.clone())).collect();
    opts
}

impl<E: SocketEmitter> RedisAdapter<E> {
    /// The cluster handle this adapter belongs to.
    pub fn cluster(&self) -> ClusterHandle {
        ClusterHandle {
            shared: self.shared.clone(),
        }
    }

    /// The channels this namespace subscribes on the request lane: requests
    /// to every node, responses to every node (the emitter's), and
    /// responses to this node.
    fn request_lane_channels(&self) -> Vec<String> {
        vec![
            self.channels.request().to_owned(),
            self.channels.response().to_owned(),
            self.specific_response.clone(),
        ]
    }

    pub(crate) fn response_channel(&self, requester: Option<&str>) -> String {
        match requester {
            Some(uid) if uid != wire::EMITTER_UID => self.channels.response_for(uid),
            _ => self.channels.response().to_owned(),
        }
    }

    pub(crate) fn spawn_response(&self, requester: Option<&str>, response: Response) {
        let channel = self.response_channel(requester);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _ = shared
                .outbound
                .publish(&channel, response.encode(), MessageKind::Response)
                .await;
        });
    }

    pub(crate) async fn publish_request(&self, request: Request) -> Result<(), Error> {
        self.shared
            .outbound
            .publish(
                self.channels.request(),
                request.encode(),
                MessageKind::Request,
            )
            .await
    }

    pub(crate) fn is_local_socket(&self, sid: Sid) -> bool {
        !self
            .local
            .fetch_sockets(BroadcastOptions::new(sid))
            .is_empty()
    }

    /// Join local sockets to the rooms named after their ids, for the names
    /// in `names` that are ids of local sockets (see the module docs).
    pub(crate) fn ensure_id_rooms<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        for name in names {
            let Ok(sid) = Sid::from_str(name) else {
                continue;
            };
            if self.local.socket_rooms(sid).contains(name.as_str()) {
                continue;
            }
            if self.is_local_socket(sid) {
                self.local.add_all(sid, name.clone());
            }
        }
    }

    /// Whether a local socket is in `room` (or is the socket named `room`).
    pub(crate) fn has_local_room(&self, room: &str) -> bool {
        let mut opts = BroadcastOptions::default();
        opts.add_flag(BroadcastFlags::Broadcast);
        opts.rooms.push(Cow::Owned(room.to_owned()));
        if !self.local.sockets(opts).is_empty() {
            return true;
        }
        Sid::from_str(room).is_ok_and(|sid| self.is_local_socket(sid))
    }

    pub(crate) fn local_sockets_details(
        &self,
        rooms: &[String],
        except: &[String],
    ) -> Vec<wire::FetchedSocket> {
        self.ensure_id_rooms(rooms.iter().chain(except));
        self.local
            .fetch_sockets(local_opts(rooms, except, false))
            .into_iter()
            .map(|socket| {
                let id = socket.id.to_string();
                let mut socket_rooms: Vec<String> = self
                    .local
                    .socket_rooms(socket.id)
                    .into_iter()
                    .map(|r| r.into_owned())
                    .filter(|r| *r != id)
                    .collect();
                socket_rooms.sort_unstable();
                // Node lists the socket's own id room first.
                socket_rooms.insert(0, id.clone());
                let details = self.shared.socket_details(&self.nsp, socket.id);
                wire::FetchedSocket {
                    id,
                    handshake: details.handshake,
                    rooms: socket_rooms,
                    data: details.data,
                }
            })
            .collect()
    }
}

impl<E: SocketEmitter> NamespaceOps for RedisAdapter<E> {
    fn local_fetch(&self, rooms: &[String], except: &[String]) -> Vec<wire::FetchedSocket> {
        self.local_sockets_details(rooms, except)
    }
}

impl<E: SocketEmitter> CoreAdapter<E> for RedisAdapter<E> {
    type Error = Error;
    type State = ClusterHandle;
    type AckStream = ClusterAckStream<E>;
    type InitRes = InitRes;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        let shared = state.shared.clone();
        let nsp = local.path().to_string();
        let channels = shared.channels(&nsp);
        let specific_response = channels.response_for(&shared.uid);
        let format = PayloadFormat::detect(local.parser());
        let server_id = local.server_id();
        Self {
            local,
            shared,
            nsp,
            channels,
            specific_response,
            format,
            server_id,
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        InitRes(Box::pin(async move {
            if self.nsp.is_empty() || self.nsp.contains('#') {
                return Err(Error::InvalidNamespace(self.nsp.clone()).into());
            }
            let capacity = self.shared.config.buffer_size.max(1);
            let (broadcast_tx, broadcast_rx) = mpsc::channel(capacity);
            let (control_tx, control_rx) = mpsc::channel(capacity);
            let ops: Arc<dyn NamespaceOps> = self.clone();
            let ops: Weak<dyn NamespaceOps> = Arc::downgrade(&ops);
            self.shared.register_route(
                &self.nsp,
                NamespaceRoute {
                    broadcasts: broadcast_tx,
                    control: control_tx,
                },
                ops,
            );
            tokio::spawn(self.clone().run_worker(broadcast_rx, control_rx));
            let transport = &self.shared.transport;
            transport
                .subscribe(Lane::Broadcasts, &[], &[self.channels.broadcast_pattern()])
                .await?;
            transport
                .subscribe(Lane::Requests, &self.request_lane_channels(), &[])
                .await?;
            tracing::info!(nsp = %self.nsp, uid = %self.shared.uid, "namespace joined the cluster");
            on_success();
            Ok(())
        }))
    }

    async fn close(&self) -> Result<(), Self::Error> {
        // Synchronous part first: socketioxide may poll this only once.
        self.shared.unregister_route(&self.nsp);
        let shared = self.shared.clone();
        let patterns = [self.channels.broadcast_pattern()];
        let channels = self.request_lane_channels();
        tokio::spawn(async move {
            let transport = &shared.transport;
            transport
                .unsubscribe(Lane::Broadcasts, &[], &patterns)
                .await;
            transport.unsubscribe(Lane::Requests, &channels, &[]).await;
        });
        Ok(())
    }

    async fn server_count(&self) -> Result<u16, Self::Error> {
        let count = self.shared.server_count(&self.nsp).await?;
        Ok(u16::try_from(count).unwrap_or(u16::MAX))
    }

    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        // Encoded, delivered locally and handed to the Redis connection
        // before the first await: broadcasts first polled in some order
        // reach local sockets and Redis in that order (the gateway's relays
        // rely on it to keep a client's order).
        let message = match wire_targets(&opts) {
            Some((rooms, except)) if !opts.is_local(self.server_id) => {
                Some(self.broadcast_message(&packet, rooms, except, &opts))
            }
            _ => None,
        };
        let local = self.broadcast_locally(packet, opts);
        let published = match message {
            Some(Ok((channel, payload))) => {
                self.shared
                    .outbound
                    .publish(&channel, payload, MessageKind::Broadcast)
                    .await
            }
            Some(Err(err)) => Err(err),
            None => Ok(()),
        };
        local?;
        published.map_err(|e| BroadcastError::Adapter(e.into()))
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Self::Error> {
        let ack_timeout = timeout.unwrap_or_else(|| self.local.ack_timeout());
        let deadline = tokio::time::Instant::now() + ack_timeout + ACK_NETWORK_GRACE;
        let targets = (!opts.is_local(self.server_id))
            .then(|| wire_targets(&opts))
            .flatten();
        let Some((rooms, except)) = targets else {
            let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
            let remote = self
                .shared
                .register_pending(&Sid::new().to_string(), 1)
                .into_receiver();
            return Ok(ClusterAckStream::new(
                local,
                remote,
                self.format,
                0,
                deadline,
            ));
        };
        let started = Instant::now();
        let remote_nodes = self.shared.remote_node_count(&self.nsp).await?;
        let request_id = Sid::new().to_string();
        let pending = self.shared.register_pending(
            &request_id,
            self.shared.config.buffer_size.max(remote_nodes),
        );
        if remote_nodes > 0 {
            let data = self.format.encode_msgpack(event_payload(&packet)?)?;
            let mut wire_opts = wire::RequestOpts {
                rooms,
                except,
                flags: Default::default(),
            };
            wire_opts.flags.volatile = opts.has_flag(BroadcastFlags::Volatile);
            wire_opts.flags.timeout =
                Some(u64::try_from(ack_timeout.as_millis()).unwrap_or(u64::MAX));
            let request = Request::Broadcast {
                uid: Some(self.shared.uid.clone()),
                request_id,
                packet: BroadcastPacket {
                    kind: PacketKind::Event,
                    nsp: self.nsp.clone(),
                    data,
                },
                opts: wire_opts,
            };
            self.publish_request(request).await?;
        }
        let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
        self.shared.metrics.request_done(
            RequestKind::BroadcastWithAck,
            crate::metrics::RequestOutcome::Complete,
            started.elapsed(),
        );
        Ok(ClusterAckStream::new(
            local,
            pending.into_receiver(),
            self.format,
            remote_nodes,
            deadline,
        ))
    }

    async fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let published = self
            .publish_room_change(&opts, &rooms, |uid, opts, rooms| Request::RemoteJoin {
                uid,
                opts,
                rooms,
            })
            .await;
        self.local.add_sockets(opts, rooms);
        published
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let published = self
            .publish_room_change(&opts, &rooms, |uid, opts, rooms| Request::RemoteLeave {
                uid,
                opts,
                rooms,
            })
            .await;
        self.local.del_sockets(opts, rooms);
        published
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        let mut published = Ok(());
        if !opts.is_local(self.server_id) {
            if let Some((rooms, except)) = wire_targets(&opts) {
                let request = Request::RemoteDisconnect {
                    uid: Some(self.shared.uid.clone()),
                    opts: wire::RequestOpts {
                        rooms,
                        except,
                        flags: Default::default(),
                    },
                    close: false,
                };
                published = self.publish_request(request).await;
            }
        }
        self.local
            .disconnect_socket(opts)
            .map_err(BroadcastError::Socket)?;
        published.map_err(|e| BroadcastError::Adapter(e.into()))
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, Self::Error> {
        let mut rooms: HashSet<Room> = self.local.rooms(opts.clone());
        if opts.is_local(self.server_id) {
            return Ok(rooms.into_iter().collect());
        }
        let Some((targets, except)) = wire_targets(&opts) else {
            return Ok(rooms.into_iter().collect());
        };
        if targets.is_empty() && except.is_empty() {
            let remote = self.shared.remote_rooms(&self.nsp).await?;
            rooms.extend(remote.items.into_iter().map(Cow::Owned));
        } else {
            // ALL_ROOMS cannot filter: ask for the matching sockets instead
            // and take their rooms.
            let remote = self.shared.remote_fetch(&self.nsp, targets, except).await?;
            rooms.extend(
                remote
                    .items
                    .into_iter()
                    .flat_map(|socket| socket.rooms)
                    .map(Cow::Owned),
            );
        }
        Ok(rooms.into_iter().collect())
    }

    async fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> Result<Vec<RemoteSocketData>, Self::Error> {
        let mut sockets = self.local.fetch_sockets(opts.clone());
        if opts.is_local(self.server_id) {
            return Ok(sockets);
        }
        let Some((rooms, except)) = wire_targets(&opts) else {
            return Ok(sockets);
        };
        let remote = self.shared.remote_fetch(&self.nsp, rooms, except).await?;
        let ns: Str = self.local.path().clone();
        let mut foreign_ids = 0usize;
        for socket in remote.items {
            match Sid::from_str(&socket.id) {
                // The wire format does not say which node holds the socket.
                Ok(id) => sockets.push(RemoteSocketData {
                    id,
                    server_id: Uid::ZERO,
                    ns: ns.clone(),
                }),
                Err(_) => foreign_ids += 1,
            }
        }
        if foreign_ids > 0 {
            tracing::debug!(
                foreign_ids,
                "remote sockets with non-socketioxide ids left out; use ClusterHandle::fetch_sockets"
            );
        }
        Ok(sockets)
    }

    fn get_local(&self) -> &CoreLocalAdapter<E> {
        &self.local
    }
}

impl<E: SocketEmitter> RedisAdapter<E> {
    /// Publishes a socketsJoin / socketsLeave for the other nodes, unless the
    /// operation is local-only or targets only this node's sockets.
    async fn publish_room_change(
        &self,
        opts: &BroadcastOptions,
        rooms: &[Room],
        request: impl FnOnce(Option<String>, wire::RequestOpts, Vec<String>) -> Request,
    ) -> Result<(), Error> {
        if opts.is_local(self.server_id) {
            return Ok(());
        }
        let Some((targets, except)) = wire_targets(opts) else {
            return Ok(());
        };
        let opts = wire::RequestOpts {
            rooms: targets,
            except,
            flags: Default::default(),
        };
        let rooms = rooms.iter().map(|r| r.to_string()).collect();
        self.publish_request(request(Some(self.shared.uid.clone()), opts, rooms))
            .await
    }

    /// The channel and bytes of a broadcast of `packet` to the other nodes.
    fn broadcast_message(
        &self,
        packet: &Packet,
        rooms: Vec<String>,
        except: Vec<String>,
        opts: &BroadcastOptions,
    ) -> Result<(String, Vec<u8>), Error> {
        let data = self.format.encode_msgpack(event_payload(packet)?)?;
        let channel = self.channels.broadcast_for(&rooms).into_owned();
        let mut message = BroadcastMessage {
            uid: self.shared.uid.clone(),
            packet: BroadcastPacket {
                kind: PacketKind::Event,
                nsp: self.nsp.clone(),
                data,
            },
            opts: wire::BroadcastOpts {
                rooms,
                except,
                flags: Default::default(),
            },
        };
        message.opts.flags.volatile = opts.has_flag(BroadcastFlags::Volatile);
        Ok((channel, message.encode()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_of_a_namespace_broadcast() {
        let mut opts = BroadcastOptions::default();
        opts.add_flag(BroadcastFlags::Broadcast);
        assert_eq!(wire_targets(&opts), Some((vec![], vec![])));
    }

    #[test]
    fn targets_of_socket_broadcast_exclude_the_sender() {
        let sid = Sid::new();
        let mut opts = BroadcastOptions::new(sid);
        opts.add_flag(BroadcastFlags::Broadcast);
        opts.rooms.push("r".into());
        opts.except.push("x".into());
        assert_eq!(
            wire_targets(&opts),
            Some((vec!["r".to_owned()], vec!["x".to_owned(), sid.to_string()]))
        );
    }

    #[test]
    fn targets_of_a_remote_socket_use_its_id_room() {
        let sid = Sid::new();
        let opts = BroadcastOptions::new(sid);
        assert_eq!(wire_targets(&opts), Some((vec![sid.to_string()], vec![])));
    }

    #[test]
    fn no_target_means_nothing_to_publish() {
        assert_eq!(wire_targets(&BroadcastOptions::default()), None);
    }

    #[test]
    fn local_opts_select_by_rooms() {
        let opts = local_opts(&["a".to_owned()], &["b".to_owned()], true);
        assert!(opts.has_flag(BroadcastFlags::Broadcast));
        assert!(opts.has_flag(BroadcastFlags::Volatile));
        assert_eq!(opts.rooms.as_slice(), &[Cow::Borrowed("a")]);
        assert_eq!(opts.except.as_slice(), &[Cow::Borrowed("b")]);
        assert_eq!(opts.sid, None);
    }
}
