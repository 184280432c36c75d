//! Requests from other nodes (`<prefix>-request#<nsp>#`), one handler per
//! request type: each applies the request to the local sockets and, where
//! Node's adapter answers, publishes the response on the requester's
//! channel.

use std::{borrow::Cow, collections::BTreeSet, str::FromStr, sync::Arc, time::Duration};

use socketioxide_core::{
    adapter::{BroadcastOptions, Room, SocketEmitter},
    packet::Packet,
    Sid,
};
use wire::{BroadcastPacket, Request, RequestOpts, Response};

use crate::{
    adapter::{local_opts, RedisAdapter},
    metrics::MessageKind,
    payload::first_ack_arg,
    server_side::ServerSideEmit,
};

impl<E: SocketEmitter> RedisAdapter<E> {
    pub(crate) fn on_request(self: &Arc<Self>, request: Request, channel: &str) {
        match request {
            Request::Sockets {
                uid,
                request_id,
                rooms,
            } => self.answer_sockets(uid.as_deref(), request_id, &rooms),
            Request::AllRooms { uid, request_id } => {
                self.answer_all_rooms(uid.as_deref(), request_id)
            }
            Request::RemoteJoin { opts, rooms, .. } => self.apply_remote_join(&opts, rooms),
            Request::RemoteLeave { opts, rooms, .. } => self.apply_remote_leave(&opts, rooms),
            Request::RemoteDisconnect { opts, .. } => self.apply_remote_disconnect(&opts),
            Request::LegacyRemoteJoin {
                uid,
                request_id,
                sid,
                room,
            } => self.on_legacy_request(uid.as_deref(), request_id, &sid, |sid| {
                self.local.add_all(sid, room)
            }),
            Request::LegacyRemoteLeave {
                uid,
                request_id,
                sid,
                room,
            } => self.on_legacy_request(uid.as_deref(), request_id, &sid, |sid| {
                self.local.del(sid, room)
            }),
            Request::LegacyRemoteDisconnect {
                uid,
                request_id,
                sid,
                ..
            } => self.on_legacy_request(uid.as_deref(), request_id, &sid, |sid| {
                let _ = self.local.disconnect_socket(BroadcastOptions::new(sid));
            }),
            Request::RemoteFetch {
                uid,
                request_id,
                opts,
            } => self.answer_fetch(uid.as_deref(), request_id, &opts),
            Request::ServerSideEmit {
                uid,
                request_id,
                data,
            } => self.on_server_side_emit(uid, request_id, data),
            Request::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            } => self.answer_broadcast_with_ack(uid, request_id, packet, opts, channel),
        }
    }

    /// Type 0 (`fetchSockets` of old, `allSockets`): the local socket ids.
    fn answer_sockets(&self, uid: Option<&str>, request_id: String, rooms: &[String]) {
        self.ensure_id_rooms(rooms.iter());
        let sockets = self
            .local
            .sockets(local_opts(rooms, &[], false))
            .into_iter()
            .map(|sid| sid.to_string())
            .collect();
        self.spawn_response(
            uid,
            Response::Sockets {
                request_id,
                sockets,
            },
        );
    }

    /// Type 1: every local room. A Node socket is in the room named after
    /// its id (it joins it on connect) and Node answers with those too;
    /// socketioxide keeps no such rooms, so the local ids are added.
    fn answer_all_rooms(&self, uid: Option<&str>, request_id: String) {
        let all = local_opts(&[], &[], false);
        let mut rooms: BTreeSet<String> = self
            .local
            .rooms(all.clone())
            .into_iter()
            .map(|r| r.into_owned())
            .collect();
        rooms.extend(
            self.local
                .sockets(all)
                .into_iter()
                .map(|sid| sid.to_string()),
        );
        let rooms = rooms.into_iter().collect();
        self.spawn_response(uid, Response::AllRooms { request_id, rooms });
    }

    /// `socketsJoin`: the matching local sockets join `rooms`; no answer.
    fn apply_remote_join(&self, opts: &RequestOpts, rooms: Vec<String>) {
        self.ensure_id_rooms(opts.rooms.iter().chain(&opts.except));
        let rooms: Vec<Room> = rooms.into_iter().map(Cow::Owned).collect();
        self.local
            .add_sockets(local_opts(&opts.rooms, &opts.except, false), rooms);
    }

    /// `socketsLeave`: the matching local sockets leave `rooms`; no answer.
    fn apply_remote_leave(&self, opts: &RequestOpts, rooms: Vec<String>) {
        self.ensure_id_rooms(opts.rooms.iter().chain(&opts.except));
        let rooms: Vec<Room> = rooms.into_iter().map(Cow::Owned).collect();
        self.local
            .del_sockets(local_opts(&opts.rooms, &opts.except, false), rooms);
    }

    /// `disconnectSockets`: the matching local sockets are disconnected.
    fn apply_remote_disconnect(&self, opts: &RequestOpts) {
        self.ensure_id_rooms(opts.rooms.iter().chain(&opts.except));
        if let Err(errors) =
            self.local
                .disconnect_socket(local_opts(&opts.rooms, &opts.except, false))
        {
            tracing::debug!(failed = errors.len(), "remote disconnect partly failed");
        }
    }

    /// `fetchSockets`: the matching local sockets with their details.
    fn answer_fetch(&self, uid: Option<&str>, request_id: String, opts: &RequestOpts) {
        let sockets = self.local_sockets_details(&opts.rooms, &opts.except);
        self.spawn_response(
            uid,
            Response::FetchedSockets {
                request_id,
                sockets,
            },
        );
    }

    /// `serverSideEmit`: handed to the application's handler, with an ack
    /// when the sender asked for one.
    fn on_server_side_emit(
        &self,
        uid: Option<String>,
        request_id: Option<String>,
        data: Vec<serde_json::Value>,
    ) {
        let Some(handler) = self.shared.emit_handler(&self.nsp) else {
            tracing::debug!(nsp = %self.nsp, "server-side emit without a registered handler");
            return;
        };
        let ack = request_id.map(|request_id| {
            self.shared
                .server_side_ack(self.response_channel(uid.as_deref()), request_id)
        });
        handler(ServerSideEmit {
            nsp: self.nsp.clone(),
            from: uid,
            data,
            ack,
        });
    }

    /// A legacy single-socket request (types 2-4): applied and acknowledged
    /// only by the node that holds the socket.
    fn on_legacy_request(
        &self,
        uid: Option<&str>,
        request_id: String,
        sid: &str,
        apply: impl FnOnce(Sid),
    ) {
        if let Some(sid) = self.legacy_target(sid) {
            apply(sid);
            self.spawn_response(uid, Response::RemoteAck { request_id });
        }
    }

    fn legacy_target(&self, sid: &str) -> Option<Sid> {
        Sid::from_str(sid)
            .ok()
            .filter(|sid| self.is_local_socket(*sid))
    }

    /// Type 7 from another node: deliver, announce the client count, then
    /// forward each client's ack, in that order on one connection.
    fn answer_broadcast_with_ack(
        self: &Arc<Self>,
        uid: Option<String>,
        request_id: String,
        packet: BroadcastPacket,
        opts: RequestOpts,
        channel: &str,
    ) {
        let Some(value) = self.decode_payload(&packet, channel) else {
            return;
        };
        self.ensure_id_rooms(opts.rooms.iter().chain(&opts.except));
        let timeout = opts.flags.timeout.map(Duration::from_millis);
        let packet = Packet::event(self.local.path().clone(), value);
        let (acks, client_count) = self.local.broadcast_with_ack(
            packet,
            local_opts(&opts.rooms, &opts.except, opts.flags.volatile),
            timeout,
        );
        let response_channel = self.response_channel(uid.as_deref());
        let shared = self.shared.clone();
        let format = self.format;
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let count = Response::BroadcastClientCount {
                request_id: request_id.clone(),
                client_count: u64::from(client_count),
            };
            if shared
                .outbound
                .publish(&response_channel, count.encode(), MessageKind::Response)
                .await
                .is_err()
            {
                return;
            }
            let mut acks = Box::pin(acks);
            while let Some((_, ack)) = acks.next().await {
                let Ok(value) = ack else { continue };
                let packet = match format.encode_msgpack(&value) {
                    Ok(args) => first_ack_arg(args),
                    Err(err) => {
                        tracing::debug!(%err, "unconvertible local ack dropped");
                        continue;
                    }
                };
                let response = Response::BroadcastAck {
                    request_id: request_id.clone(),
                    packet,
                };
                let _ = shared
                    .outbound
                    .publish(&response_channel, response.encode(), MessageKind::Response)
                    .await;
            }
        });
    }
}
