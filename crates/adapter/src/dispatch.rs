//! Routing what the subscribers receive: each message goes, by its channel,
//! to its namespace's broadcast or control queue, with only cheap checks on
//! the subscriber's forwarding task. The [`Dispatcher`] knows nothing of the
//! rest of the state, so the transport's sink can hold it directly.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{
    garbage::GarbageLog,
    inbound::{Inbound, InboundSink},
    metrics::{AdapterMetrics, DropReason, GarbageKind, MessageKind},
};

/// A broadcast waiting for its namespace worker.
#[derive(Debug)]
pub(crate) enum BroadcastItem {
    /// Raw `[uid, packet, opts]`, with the room of a single-room channel.
    Raw {
        room: Option<String>,
        payload: Bytes,
        channel: String,
    },
    /// An already decoded legacy emitter message.
    Legacy(wire::LegacyEmitterMessage),
}

/// A request or response waiting for its namespace worker.
#[derive(Debug)]
pub(crate) enum ControlItem {
    Request { payload: Bytes, channel: String },
    Response { payload: Bytes, channel: String },
}

/// The inbound queues of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct NamespaceRoute {
    pub broadcasts: mpsc::Sender<BroadcastItem>,
    pub control: mpsc::Sender<ControlItem>,
}

/// Routes inbound messages to the namespace queues of one node.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    pub uid: String,
    pub prefix: String,
    /// The legacy emitter's channel, `prefix#emitter` (see
    /// [`wire::legacy_emitter_channel`]).
    pub legacy_channel: String,
    routes: RwLock<HashMap<String, NamespaceRoute>>,
    pub metrics: Arc<AdapterMetrics>,
    pub garbage: Arc<GarbageLog>,
}

impl Dispatcher {
    pub(crate) fn new(
        uid: String,
        prefix: String,
        metrics: Arc<AdapterMetrics>,
        garbage: Arc<GarbageLog>,
    ) -> Self {
        Self {
            uid,
            legacy_channel: wire::legacy_emitter_channel(&prefix),
            prefix,
            routes: RwLock::default(),
            metrics,
            garbage,
        }
    }

    /// The sink a transport delivers to.
    pub(crate) fn sink(self: &Arc<Self>) -> InboundSink {
        let this = self.clone();
        Arc::new(move |inbound: Inbound| this.dispatch(inbound))
    }

    pub(crate) fn add_route(&self, nsp: &str, route: NamespaceRoute) {
        if let Ok(mut routes) = self.routes.write() {
            routes.insert(nsp.to_owned(), route);
        }
    }

    pub(crate) fn remove_route(&self, nsp: &str) {
        if let Ok(mut routes) = self.routes.write() {
            routes.remove(nsp);
        }
    }

    /// Route one inbound message to its namespace queue. Runs on the
    /// subscriber's forwarding task: only cheap checks here.
    pub(crate) fn dispatch(&self, inbound: Inbound) {
        let Inbound { channel, payload } = inbound;
        let prefix = self.prefix.as_str();
        let Some(rest) = channel.strip_prefix(prefix) else {
            self.garbage.report(
                &self.metrics,
                GarbageKind::Channel,
                &channel,
                &"unexpected channel",
            );
            return;
        };
        if let Some(rest) = rest.strip_prefix('#') {
            if channel == self.legacy_channel {
                self.dispatch_legacy(&channel, &payload);
                return;
            }
            self.metrics.received(MessageKind::Broadcast);
            // `nsp#` or `nsp#room#`; namespaces never contain '#'.
            let Some((nsp, room)) = rest.split_once('#') else {
                self.garbage.report(
                    &self.metrics,
                    GarbageKind::Channel,
                    &channel,
                    &"no namespace",
                );
                return;
            };
            if wire::peek_uid(&payload) == Some(self.uid.as_str()) {
                self.metrics.own_echo(&payload);
                return;
            }
            let room = match room.strip_suffix('#') {
                Some(room) => Some(room.to_owned()),
                None if room.is_empty() => None,
                None => {
                    self.garbage.report(
                        &self.metrics,
                        GarbageKind::Channel,
                        &channel,
                        &"malformed room channel",
                    );
                    return;
                }
            };
            let Some(route) = self.route(nsp) else {
                self.metrics.dropped(DropReason::UnknownNamespace);
                return;
            };
            if route
                .broadcasts
                .try_send(BroadcastItem::Raw {
                    room,
                    payload,
                    channel: channel.clone(),
                })
                .is_err()
            {
                self.metrics.dropped(DropReason::QueueFull);
            }
        } else if let Some(rest) = rest.strip_prefix("-request#") {
            self.metrics.received(MessageKind::Request);
            let nsp = rest.strip_suffix('#').unwrap_or(rest);
            self.enqueue_control(
                nsp,
                ControlItem::Request {
                    payload,
                    channel: channel.clone(),
                },
            );
        } else if let Some(rest) = rest.strip_prefix("-response#") {
            self.metrics.received(MessageKind::Response);
            let nsp = rest.split('#').next().unwrap_or_default();
            self.enqueue_control(
                nsp,
                ControlItem::Response {
                    payload,
                    channel: channel.clone(),
                },
            );
        } else {
            self.garbage.report(
                &self.metrics,
                GarbageKind::Channel,
                &channel,
                &"unexpected channel",
            );
        }
    }

    fn enqueue_control(&self, nsp: &str, item: ControlItem) {
        let Some(route) = self.route(nsp) else {
            self.metrics.dropped(DropReason::UnknownNamespace);
            return;
        };
        if route.control.try_send(item).is_err() {
            self.metrics.dropped(DropReason::QueueFull);
        }
    }

    fn dispatch_legacy(&self, channel: &str, payload: &[u8]) {
        self.metrics.received(MessageKind::LegacyEmitter);
        match wire::LegacyEmitterMessage::decode(payload) {
            Ok(message) => {
                let Some(route) = self.route(&message.packet.nsp) else {
                    self.metrics.dropped(DropReason::UnknownNamespace);
                    return;
                };
                if route
                    .broadcasts
                    .try_send(BroadcastItem::Legacy(message))
                    .is_err()
                {
                    self.metrics.dropped(DropReason::QueueFull);
                }
            }
            Err(err) => {
                self.garbage
                    .report(&self.metrics, GarbageKind::LegacyEmitter, channel, &err);
            }
        }
    }

    fn route(&self, nsp: &str) -> Option<NamespaceRoute> {
        self.routes.read().ok()?.get(nsp).cloned()
    }
}
