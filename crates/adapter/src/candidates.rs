//! Which servers a subscriber may use, in order of preference: a fixed list
//! from the configuration, or whatever the sentinels' current [`Topology`]
//! says, ordered by the subscriber's selection. With Sentinel a session also
//! ends when the topology says its server is gone or was re-pointed to a new
//! master (its stream of messages would stall or come from a stale master).

use redis_layer::{Endpoint, Topology, TopologyRx};

/// Orders the servers of a topology for one subscriber.
pub(crate) type CandidateOrder = Box<dyn Fn(&Topology) -> Vec<Endpoint> + Send + Sync>;

/// Which servers a subscriber may use, in order of preference.
pub(crate) enum Candidates {
    /// Configured URLs.
    Fixed(Vec<Endpoint>),
    /// Whatever the sentinels currently say, ordered by `order`.
    Discovered {
        topology: TopologyRx,
        order: CandidateOrder,
    },
}

impl Candidates {
    pub(crate) fn current(&self) -> Vec<Endpoint> {
        match self {
            Self::Fixed(endpoints) => endpoints.clone(),
            Self::Discovered { topology, order } => order(&topology.borrow()),
        }
    }

    /// Why a session on `endpoint`, begun when `master_at_start` was the
    /// master, should end now; `None` while it is still a good place.
    pub(crate) fn abandon_reason(
        &self,
        endpoint: &Endpoint,
        master_at_start: &str,
    ) -> Option<String> {
        let Self::Discovered { topology, .. } = self else {
            return None;
        };
        let topology = topology.borrow().clone();
        if topology.master.addr == endpoint.addr {
            return None;
        }
        if topology.master.addr != master_at_start {
            return Some(format!(
                "master moved to {}, this server is re-pointed or gone",
                topology.master.label
            ));
        }
        let Self::Discovered { order, .. } = self else {
            return None;
        };
        (!order(&topology).iter().any(|e| e.addr == endpoint.addr))
            .then(|| "server is down or out of sync per the sentinels".to_owned())
    }

    pub(crate) fn master_addr(&self) -> String {
        match self {
            Self::Fixed(_) => String::new(),
            Self::Discovered { topology, .. } => topology.borrow().master.addr.clone(),
        }
    }

    pub(crate) fn topology(&self) -> Option<TopologyRx> {
        match self {
            Self::Fixed(_) => None,
            Self::Discovered { topology, .. } => Some(topology.clone()),
        }
    }
}

/// Resolves when the topology changes (`true`) or its watcher ends
/// (`false`); never for a fixed layout.
pub(crate) async fn topology_changed(topology: &mut Option<TopologyRx>) -> bool {
    match topology {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}
