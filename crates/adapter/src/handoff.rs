//! Moving a subscriber to another server without losing or repeating a
//! message.
//!
//! After a failover a subscriber sits on a less preferred server (another
//! replica, or the master itself). Moving it back by closing one connection
//! and opening the other would lose what is published in between; keeping
//! both open for a while would deliver it twice. So the new connection is
//! subscribed first, then one marker message is published on the master on a
//! private channel both connections listen to. Redis delivers a master's
//! stream in order on the master and on every replica, so the marker splits
//! both streams at the same point: the old connection delivers what comes
//! before it, the new one what comes after. Each connection's forwarder goes
//! through a [`Gate`] that applies that rule, holding back what the handoff
//! has not decided yet. Marker channels (`<prefix>-handoff#...`) match none
//! of the channels or patterns of Node's adapter or ours.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::inbound::{Inbound, InboundSink};

/// Where the marker channels of a cluster using `channel_prefix` begin:
/// under the cluster's prefix, so an ACL granting `&<prefix>*` covers them,
/// and matching none of the adapters' own channels or patterns.
pub(crate) fn marker_prefix(channel_prefix: &str) -> String {
    format!("{channel_prefix}-handoff#")
}

/// A fresh marker channel, unique to one handoff.
pub(crate) fn marker_channel(marker_prefix: &str, node: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{marker_prefix}{node}#{}#{nanos}", std::process::id())
}

/// Most messages held back while a handoff waits for its marker; past it
/// the handoff is abandoned rather than hold memory without bound.
pub(crate) const MAX_HELD: usize = 100_000;

/// What a subscriber connection does with each message it receives.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Messages on channels starting with it are markers, never events.
    marker_prefix: String,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    /// Hand everything over.
    Open,
    /// The connection being left: hand over what precedes the marker, hold
    /// what follows (handed over only if the handoff is abandoned).
    UntilMarker {
        marker: String,
        seen: Option<oneshot::Sender<()>>,
        held: Vec<Inbound>,
    },
    /// The connection being joined: drop what precedes the marker (the old
    /// connection delivers it), hold what follows until the handoff commits.
    FromMarker {
        marker: String,
        seen: Option<oneshot::Sender<()>>,
        held: Vec<Inbound>,
    },
    /// The connection was left: deliver nothing more.
    Closed,
}

impl Gate {
    pub(crate) fn open(marker_prefix: &str) -> Self {
        Self {
            marker_prefix: marker_prefix.to_owned(),
            state: Mutex::new(State::Open),
        }
    }

    /// A gate for the connection being joined; the receiver resolves when
    /// the marker arrives on it.
    pub(crate) fn from_marker(marker_prefix: &str, marker: &str) -> (Self, oneshot::Receiver<()>) {
        let (seen, on_seen) = oneshot::channel();
        let gate = Self {
            marker_prefix: marker_prefix.to_owned(),
            state: Mutex::new(State::FromMarker {
                marker: marker.to_owned(),
                seen: Some(seen),
                held: Vec::new(),
            }),
        };
        (gate, on_seen)
    }

    /// Turns an open gate into the one of the connection being left.
    pub(crate) fn until_marker(&self, marker: &str) -> oneshot::Receiver<()> {
        let (seen, on_seen) = oneshot::channel();
        if let Ok(mut state) = self.state.lock() {
            *state = State::UntilMarker {
                marker: marker.to_owned(),
                seen: Some(seen),
                held: Vec::new(),
            };
        }
        on_seen
    }

    /// Hands over what was held and lets everything through from now on:
    /// the joined connection when the handoff commits, the old one when it
    /// is abandoned.
    pub(crate) fn open_and_flush(&self, sink: &InboundSink) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        // Under the lock, so a message arriving meanwhile waits and keeps
        // its place after the held ones.
        if let State::UntilMarker { held, .. } | State::FromMarker { held, .. } = &mut *state {
            for inbound in held.drain(..) {
                sink(inbound);
            }
        }
        *state = State::Open;
    }

    /// Drops what was held and delivers nothing more.
    pub(crate) fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            *state = State::Closed;
        }
    }

    /// Whether more than [`MAX_HELD`] messages are waiting.
    pub(crate) fn overflowing(&self) -> bool {
        self.state.lock().is_ok_and(|state| match &*state {
            State::UntilMarker { held, .. } | State::FromMarker { held, .. } => {
                held.len() > MAX_HELD
            }
            State::Open | State::Closed => false,
        })
    }

    /// Applies the gate to one received message.
    pub(crate) fn pass(&self, inbound: Inbound, sink: &InboundSink) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let is_marker_channel = inbound.channel.starts_with(&self.marker_prefix);
        match &mut *state {
            State::Open if !is_marker_channel => sink(inbound),
            State::Open | State::Closed => {}
            State::UntilMarker { marker, seen, held } => {
                if seen.is_none() {
                    held.push(inbound);
                } else if inbound.channel == *marker {
                    if let Some(seen) = seen.take() {
                        let _ = seen.send(());
                    }
                } else if !is_marker_channel {
                    sink(inbound);
                }
            }
            State::FromMarker { marker, seen, held } => {
                if seen.is_none() {
                    held.push(inbound);
                } else if inbound.channel == *marker {
                    if let Some(seen) = seen.take() {
                        let _ = seen.send(());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;

    use super::*;

    const PREFIX: &str = "socket.io-handoff#";

    fn message(channel: &str, n: u8) -> Inbound {
        Inbound {
            channel: channel.to_owned(),
            payload: Bytes::from(vec![n]),
        }
    }

    fn recorder() -> (InboundSink, Arc<Mutex<Vec<u8>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let out = got.clone();
        let sink: InboundSink = Arc::new(move |inbound: Inbound| {
            out.lock().unwrap().push(inbound.payload[0]);
        });
        (sink, got)
    }

    /// Both connections see the same stream (1..=6, marker after 3), the
    /// old one ahead of the new one; together they deliver it once, in order.
    #[test]
    fn committed_handoff_delivers_every_message_once_in_order() {
        let (sink, got) = recorder();
        let marker = marker_channel(PREFIX, "node");
        let old = Gate::open(PREFIX);
        old.pass(message("c", 1), &sink);
        let (new, mut new_seen) = Gate::from_marker(PREFIX, &marker);
        let mut old_seen = old.until_marker(&marker);
        // The new connection subscribed when 2 was already out.
        for n in [2, 3] {
            old.pass(message("c", n), &sink);
        }
        new.pass(message("c", 3), &sink);
        old.pass(message(&marker, 0), &sink);
        old.pass(message("c", 4), &sink);
        new.pass(message(&marker, 0), &sink);
        new.pass(message("c", 4), &sink);
        new.pass(message("c", 5), &sink);
        assert!(old_seen.try_recv().is_ok() && new_seen.try_recv().is_ok());
        old.close();
        new.open_and_flush(&sink);
        new.pass(message("c", 6), &sink);
        old.pass(message("c", 5), &sink);
        assert_eq!(*got.lock().unwrap(), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn abandoned_handoff_leaves_the_old_connection_delivering() {
        let (sink, got) = recorder();
        let marker = marker_channel(PREFIX, "node");
        let old = Gate::open(PREFIX);
        let mut old_seen = old.until_marker(&marker);
        old.pass(message("c", 1), &sink);
        old.pass(message(&marker, 0), &sink);
        old.pass(message("c", 2), &sink);
        assert!(old_seen.try_recv().is_ok());
        // The new connection never saw its marker: give up on it.
        old.open_and_flush(&sink);
        old.pass(message("c", 3), &sink);
        // A marker arriving late is not an event.
        old.pass(message(&marker, 9), &sink);
        assert_eq!(*got.lock().unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn marker_channels_never_reach_the_dispatcher() {
        let (sink, got) = recorder();
        let gate = Gate::open(PREFIX);
        gate.pass(message(&marker_channel(PREFIX, "other"), 1), &sink);
        gate.pass(message("c", 2), &sink);
        assert_eq!(*got.lock().unwrap(), vec![2]);
    }
}
