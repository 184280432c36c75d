//! The namespace worker: applies what other nodes publish. One task per
//! namespace drains its two bounded queues (control first: requests and
//! responses are small and time-bound; then broadcasts), so a slow
//! namespace cannot stall the others. Requests are answered in
//! [`crate::requests`].

use std::sync::Arc;

use socketioxide_core::{
    adapter::{errors::SocketError, BroadcastOptions, SocketEmitter},
    packet::Packet,
};
use tokio::sync::mpsc;
use wire::{BroadcastMessage, BroadcastPacket, Request, Response};

use crate::{
    adapter::{local_opts, RedisAdapter},
    dispatch::{BroadcastItem, ControlItem},
    metrics::{DropReason, GarbageKind},
};

impl<E: SocketEmitter> RedisAdapter<E> {
    pub(crate) async fn run_worker(
        self: Arc<Self>,
        mut broadcasts: mpsc::Receiver<BroadcastItem>,
        mut control: mpsc::Receiver<ControlItem>,
    ) {
        loop {
            tokio::select! {
                biased;
                item = control.recv() => match item {
                    Some(item) => self.on_control(item),
                    None => break,
                },
                item = broadcasts.recv() => match item {
                    Some(item) => self.on_broadcast(item),
                    None => break,
                },
            }
        }
        tracing::debug!(nsp = %self.nsp, "namespace worker stopped");
    }

    fn on_broadcast(&self, item: BroadcastItem) {
        match item {
            BroadcastItem::Raw {
                room,
                payload,
                channel,
            } => {
                if let Some(room) = &room {
                    if !self.has_local_room(room) {
                        self.shared.metrics.dropped(DropReason::NoLocalRoom);
                        return;
                    }
                }
                let message = match BroadcastMessage::decode(&payload) {
                    Ok(message) => message,
                    Err(err) => {
                        self.shared.garbage.report(
                            &self.shared.metrics,
                            GarbageKind::Broadcast,
                            &channel,
                            &err,
                        );
                        return;
                    }
                };
                if message.uid == self.shared.uid {
                    self.shared.metrics.dropped(DropReason::OwnEcho);
                    return;
                }
                if message.packet.nsp != self.nsp {
                    self.shared.metrics.dropped(DropReason::UnknownNamespace);
                    return;
                }
                self.deliver(
                    &message.packet,
                    &message.opts.rooms,
                    &message.opts.except,
                    message.opts.flags.volatile,
                    &channel,
                );
            }
            BroadcastItem::Legacy(message) => {
                let channel = wire::legacy_emitter_channel(&self.shared.config.prefix);
                self.deliver(
                    &message.packet,
                    &message.rooms,
                    &[],
                    message.flags.volatile,
                    &channel,
                );
            }
        }
    }

    /// The event arguments of a received packet in the local payload
    /// format; `None` (reported as garbage) when they cannot be decoded.
    pub(crate) fn decode_payload(
        &self,
        packet: &BroadcastPacket,
        channel: &str,
    ) -> Option<socketioxide_core::Value> {
        match self.format.decode_msgpack(&packet.data) {
            Ok(value) => Some(value),
            Err(err) => {
                self.shared.garbage.report(
                    &self.shared.metrics,
                    GarbageKind::Payload,
                    channel,
                    &err,
                );
                None
            }
        }
    }

    fn deliver(
        &self,
        packet: &BroadcastPacket,
        rooms: &[String],
        except: &[String],
        volatile: bool,
        channel: &str,
    ) {
        let Some(value) = self.decode_payload(packet, channel) else {
            return;
        };
        self.ensure_id_rooms(rooms.iter().chain(except));
        let packet = Packet::event(self.local.path().clone(), value);
        let opts = local_opts(rooms, except, volatile);
        // Failed sends are counted; the sender is another node, so there is
        // no one to return them to.
        let _ = self.broadcast_locally(packet, opts);
    }

    /// Hands a broadcast to the local sockets and counts what reached them
    /// and what did not (socketioxide reports only the failures).
    pub(crate) fn broadcast_locally(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), Vec<SocketError>> {
        let recipients = self.local.sockets(opts.clone()).len() as u64;
        let result = self.local.broadcast(packet, opts);
        let failures = result.as_ref().err().map_or(&[][..], Vec::as_slice);
        self.shared.metrics.delivered_locally(recipients, failures);
        result
    }

    fn on_control(self: &Arc<Self>, item: ControlItem) {
        match item {
            ControlItem::Response { payload, channel } => match Response::decode(&payload) {
                Ok(response) => self.shared.deliver_response(response),
                Err(err) => {
                    self.shared.garbage.report(
                        &self.shared.metrics,
                        GarbageKind::Response,
                        &channel,
                        &err,
                    );
                }
            },
            ControlItem::Request { payload, channel } => match Request::decode(&payload) {
                Ok(request) => {
                    if request.uid() == Some(self.shared.uid.as_str()) {
                        // Applied locally when sent; see the module docs.
                        self.shared.metrics.dropped(DropReason::OwnEcho);
                        return;
                    }
                    self.on_request(request, &channel);
                }
                Err(err) => {
                    self.shared.garbage.report(
                        &self.shared.metrics,
                        GarbageKind::Request,
                        &channel,
                        &err,
                    );
                }
            },
        }
    }
}
