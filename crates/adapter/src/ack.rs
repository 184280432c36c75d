//! The stream of acknowledgements of a cluster-wide `emit_with_ack`.
//!
//! Local acks come from socketioxide's own stream. Every other node first
//! answers how many of its clients received the packet (BROADCAST_CLIENT_COUNT)
//! and then one BROADCAST_ACK per client answer. The stream ends when every
//! announced ack has arrived from every expected node, or at the deadline
//! (the caller's ack timeout plus a small network grace), so a dead node
//! cannot hold it open.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use futures_core::{FusedStream, Stream};
use socketioxide_core::{
    adapter::{AckStreamItem, SocketEmitter},
    Sid,
};
use tokio::time::Sleep;
use wire::Response;

use crate::{payload::PayloadFormat, pending::PendingReceiver};

/// Acks from local and remote sockets. Remote acks carry [`Sid::ZERO`]: the
/// Node wire format does not say which socket answered.
pub struct ClusterAckStream<E: SocketEmitter> {
    local: Pin<Box<E::AckStream>>,
    local_done: bool,
    remote: PendingReceiver,
    remote_done: bool,
    format: PayloadFormat,
    /// Nodes whose client count has not arrived yet.
    nodes_left: usize,
    /// Acks announced by client counts and not received yet.
    acks_left: u64,
    deadline: Pin<Box<Sleep>>,
}

impl<E: SocketEmitter> fmt::Debug for ClusterAckStream<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterAckStream")
            .field("local_done", &self.local_done)
            .field("remote_done", &self.remote_done)
            .field("nodes_left", &self.nodes_left)
            .field("acks_left", &self.acks_left)
            .finish()
    }
}

impl<E: SocketEmitter> ClusterAckStream<E> {
    pub(crate) fn new(
        local: E::AckStream,
        remote: PendingReceiver,
        format: PayloadFormat,
        remote_nodes: usize,
        deadline: tokio::time::Instant,
    ) -> Self {
        Self {
            local: Box::pin(local),
            local_done: false,
            remote,
            remote_done: remote_nodes == 0,
            format,
            nodes_left: remote_nodes,
            acks_left: 0,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    fn poll_remote(&mut self, cx: &mut Context<'_>) -> Poll<Option<AckStreamItem<E::AckError>>> {
        loop {
            if self.remote_done {
                return Poll::Ready(None);
            }
            if self.nodes_left == 0 && self.acks_left == 0 {
                self.finish_remote();
                return Poll::Ready(None);
            }
            if self.deadline.as_mut().poll(cx).is_ready() {
                tracing::debug!(
                    nodes_left = self.nodes_left,
                    acks_left = self.acks_left,
                    "broadcast ack deadline reached"
                );
                self.finish_remote();
                return Poll::Ready(None);
            }
            match self.remote.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.finish_remote();
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Response::BroadcastClientCount { client_count, .. })) => {
                    self.nodes_left = self.nodes_left.saturating_sub(1);
                    self.acks_left += client_count;
                }
                Poll::Ready(Some(Response::BroadcastAck { packet, .. })) => {
                    self.acks_left = self.acks_left.saturating_sub(1);
                    // Node carries the first ack argument; socketioxide expects `[..args]`.
                    match self
                        .format
                        .decode_msgpack(&rmpv::Value::Array(vec![packet]))
                    {
                        Ok(value) => return Poll::Ready(Some((Sid::ZERO, Ok(value)))),
                        Err(err) => tracing::debug!(%err, "unconvertible remote ack dropped"),
                    }
                }
                Poll::Ready(Some(_)) => {}
            }
        }
    }

    fn finish_remote(&mut self) {
        self.remote_done = true;
        self.remote.close();
    }
}

impl<E: SocketEmitter> Stream for ClusterAckStream<E> {
    type Item = AckStreamItem<E::AckError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.local_done {
            match this.local.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
                Poll::Ready(None) => this.local_done = true,
                Poll::Pending => {}
            }
        }
        match this.poll_remote(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Ready(None) if this.local_done => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}

impl<E: SocketEmitter> FusedStream for ClusterAckStream<E> {
    fn is_terminated(&self) -> bool {
        (self.local_done || self.local.is_terminated()) && self.remote_done
    }
}
