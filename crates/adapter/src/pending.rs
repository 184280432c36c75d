//! Requests waiting for other nodes' answers: one bounded queue per request
//! id, filled by the dispatcher, and the gathering of the answers up to the
//! number of nodes counted or the request timeout.

use std::{sync::Arc, time::Instant};

use socketioxide_core::Sid;
use tokio::sync::mpsc;
use wire::{Request, Response};

use crate::{
    error::Error,
    handle::Gathered,
    metrics::{DropReason, MessageKind, RequestKind, RequestOutcome},
    state::Shared,
};

/// Responses of one pending request; unregisters itself when dropped.
pub(crate) struct Pending {
    shared: Arc<Shared>,
    request_id: String,
    rx: mpsc::Receiver<Response>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.remove(&self.request_id);
        }
    }
}

impl Pending {
    /// Feed responses to `accept` (which says whether a response counts as
    /// one node's answer) until `expected` answers or the request timeout
    /// counted from `started` (node counting included). Returns the number
    /// of answers.
    pub(crate) async fn collect(
        &mut self,
        expected: usize,
        started: Instant,
        mut accept: impl FnMut(Response) -> bool,
    ) -> usize {
        let deadline =
            tokio::time::Instant::from_std(started) + self.shared.config.request_timeout();
        let mut answered = 0;
        while answered < expected {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(response)) => {
                    if accept(response) {
                        answered += 1;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        answered
    }

    pub(crate) fn into_receiver(self) -> PendingReceiver {
        PendingReceiver {
            pending: Some(self),
        }
    }
}

/// A [`Pending`] whose receiver is polled directly (ack streams).
pub(crate) struct PendingReceiver {
    pending: Option<Pending>,
}

impl PendingReceiver {
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Response>> {
        match self.pending.as_mut() {
            Some(pending) => pending.rx.poll_recv(cx),
            None => std::task::Poll::Ready(None),
        }
    }
    pub(crate) fn close(&mut self) {
        self.pending = None;
    }
}

impl Shared {
    pub(crate) fn register_pending(self: &Arc<Self>, request_id: &str, capacity: usize) -> Pending {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(request_id.to_owned(), tx);
        }
        Pending {
            shared: self.clone(),
            request_id: request_id.to_owned(),
            rx,
        }
    }

    /// Hand a response to the request waiting for it.
    pub(crate) fn deliver_response(&self, response: Response) {
        let sender = self
            .pending
            .lock()
            .ok()
            .and_then(|pending| pending.get(response.request_id()).cloned());
        match sender {
            Some(sender) => {
                if sender.try_send(response).is_err() {
                    self.metrics.dropped(DropReason::QueueFull);
                }
            }
            // Responses to other nodes' requests on the shared channel.
            None => self.metrics.dropped(DropReason::UnknownRequest),
        }
    }

    pub(crate) fn finish_request(
        &self,
        kind: RequestKind,
        expected: usize,
        answered: usize,
        started: Instant,
    ) {
        let outcome = if answered >= expected {
            RequestOutcome::Complete
        } else {
            tracing::warn!(
                request = kind.as_str(),
                expected,
                answered,
                "request timed out, returning partial result"
            );
            RequestOutcome::Timeout
        };
        self.metrics.request_done(kind, outcome, started.elapsed());
    }

    /// Remote part of `fetchSockets` (type 5).
    pub(crate) async fn remote_fetch(
        self: &Arc<Self>,
        nsp: &str,
        rooms: Vec<String>,
        except: Vec<String>,
    ) -> Result<Gathered<wire::FetchedSocket>, Error> {
        let opts = wire::RequestOpts {
            rooms,
            except,
            flags: Default::default(),
        };
        self.gather(
            nsp,
            RequestKind::FetchSockets,
            |uid, request_id| Request::RemoteFetch {
                uid,
                request_id,
                opts,
            },
            Response::into_fetched_sockets,
        )
        .await
    }

    /// Remote part of `allRooms` (type 1).
    pub(crate) async fn remote_rooms(
        self: &Arc<Self>,
        nsp: &str,
    ) -> Result<Gathered<String>, Error> {
        self.gather(
            nsp,
            RequestKind::AllRooms,
            |uid, request_id| Request::AllRooms { uid, request_id },
            |response| match response {
                Response::AllRooms { rooms, .. } => Some(rooms),
                _ => None,
            },
        )
        .await
    }

    /// A request every other node answers with a list: publishes it, then
    /// gathers the answers' items until every node answered or the request
    /// timeout passes. `items` of a response that is not the expected kind
    /// returns `None` and does not count as an answer.
    async fn gather<T>(
        self: &Arc<Self>,
        nsp: &str,
        kind: RequestKind,
        request: impl FnOnce(Option<String>, String) -> Request,
        mut items_of: impl FnMut(Response) -> Option<Vec<T>>,
    ) -> Result<Gathered<T>, Error> {
        let started = Instant::now();
        let expected = self.remote_node_count(nsp).await?;
        if expected == 0 {
            return Ok(Gathered::nobody());
        }
        let request_id = Sid::new().to_string();
        let mut pending = self.register_pending(&request_id, expected);
        let request = request(Some(self.uid.clone()), request_id);
        self.outbound
            .publish(
                self.channels(nsp).request(),
                request.encode(),
                MessageKind::Request,
            )
            .await?;
        let mut items = Vec::new();
        let answered = pending
            .collect(expected, started, |response| match items_of(response) {
                Some(mut answer) => {
                    items.append(&mut answer);
                    true
                }
                None => false,
            })
            .await;
        self.finish_request(kind, expected, answered, started);
        Ok(Gathered {
            items,
            expected,
            answered,
        })
    }
}
