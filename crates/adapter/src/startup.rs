//! Connecting an adapter: where the master is (fixed, or asked of the
//! sentinels), the publisher, the subscribers' candidate servers, the node
//! counters, and the followers that keep them on the topology.

use std::{
    sync::{Arc, RwLock, Weak},
    time::{Duration, Instant},
};

use fred::interfaces::ClientLike;
use socketioxide_core::Sid;
use tokio::sync::watch;
use tracing::Instrument;

use fred::clients::Client;
use redis_layer::{Endpoint, SentinelSettings, Topology, TopologyRx};

use crate::{
    candidates::Candidates,
    config::{candidate_order, AdapterConfig},
    connection::{build_publisher, new_counter, Counter},
    error::Error,
    handle::ClusterHandle,
    metrics::AdapterMetrics,
    redis_transport::RedisTransport,
    state::Shared,
    subscriber::Subscriber,
    transport::{Lane, Transport},
};

/// What Sentinel discovery leaves for the rest of the start-up: its
/// settings, and both ends of the topology channel.
struct Discovered {
    settings: SentinelSettings,
    topology_tx: watch::Sender<Arc<Topology>>,
    topology_rx: TopologyRx,
}

/// The servers each subscriber tries, in order, and the replicas counted.
struct SubscriberPlan {
    broadcast: Candidates,
    requests: Candidates,
    counted_replicas: Vec<Endpoint>,
}

impl ClusterHandle {
    /// Connect the publisher to the master and start the subscribers.
    ///
    /// The configuration is normalized and validated first
    /// ([`AdapterConfig::normalize`], [`AdapterConfig::validate`]). Fails
    /// when a field is invalid or the master cannot be reached. Waits
    /// (bounded) for the subscribers' first connection; if none is
    /// reachable yet they keep trying in the background and
    /// [`Self::readiness`] says so.
    pub async fn connect(mut config: AdapterConfig) -> Result<Self, Error> {
        config.normalize();
        config.validate()?;
        let uid = Sid::new().to_string();
        let fixed_replicas = config
            .replica_urls
            .iter()
            .map(|url| Endpoint::parse(url, config.tls_ca_file.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let random_seed = Instant::now().elapsed().subsec_nanos() as u64
            ^ std::process::id() as u64
            ^ fnv(uid.as_bytes());

        let (master, sentinel) = locate_master(&config).await?;
        let metrics = Arc::new(AdapterMetrics::default());
        let publisher = connect_publisher(&config, &master, sentinel.as_ref(), &metrics).await?;
        let plan = plan_subscribers(
            &config,
            (&uid, random_seed),
            &master,
            fixed_replicas,
            sentinel.as_ref().map(|s| &s.topology_rx),
        );
        let counters = plan
            .counted_replicas
            .iter()
            .map(|endpoint| new_counter(endpoint, &config))
            .collect::<Result<Vec<_>, Error>>()?;
        let (shared, redis) = build_shared(config, uid, publisher, counters, plan, metrics);
        start(&shared, &redis, sentinel).await?;
        Ok(Self { shared })
    }
}

/// Where the master is, and whether it can move (asked of the sentinels).
async fn locate_master(config: &AdapterConfig) -> Result<(Endpoint, Option<Discovered>), Error> {
    if !config.uses_sentinel() {
        let master = Endpoint::parse(&config.url, config.tls_ca_file.as_deref())?;
        return Ok((master, None));
    }
    let settings = config.sentinel_settings()?;
    let discovered = tokio::time::timeout(
        redis_layer::topology::discovery_timeout(&settings),
        redis_layer::discover(&settings),
    )
    .await
    .map_err(|_| {
        Error::from(redis_layer::Error::Sentinel(
            "timed out asking the sentinels".to_owned(),
        ))
    })??;
    tracing::info!(
        master = %discovered.master.label,
        replicas = discovered.replicas.len(),
        "topology discovered through sentinel"
    );
    let master = discovered.master.clone();
    let (topology_tx, topology_rx) = watch::channel(Arc::new(discovered));
    Ok((
        master,
        Some(Discovered {
            settings,
            topology_tx,
            topology_rx,
        }),
    ))
}

/// The publisher, connected (fred's Sentinel client when the master can
/// move), with its connection state mirrored into the metrics.
async fn connect_publisher(
    config: &AdapterConfig,
    master: &Endpoint,
    sentinel: Option<&Discovered>,
    metrics: &Arc<AdapterMetrics>,
) -> Result<Client, Error> {
    let publisher = match sentinel {
        Some(discovered) => {
            let mut endpoint = master.clone();
            endpoint.config = discovered.settings.publisher_config();
            build_publisher(&endpoint, config)?
        }
        None => build_publisher(master, config)?,
    };
    let span = tracing::info_span!("redis_publisher", endpoint = %master.label);
    tokio::time::timeout(config.connect_timeout() * 3, publisher.init())
        .instrument(span)
        .await
        .map_err(|_| Error::timeout("timed out connecting to the master"))??;
    metrics.set_publisher_connected(true);
    spawn_publisher_watch(&publisher, metrics.clone());
    Ok(publisher)
}

/// Mirrors the publisher's errors and reconnections into the metrics and
/// the logs, until the client is dropped.
fn spawn_publisher_watch(publisher: &Client, metrics: Arc<AdapterMetrics>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut errors = fred::interfaces::EventInterface::error_rx(publisher);
    let mut reconnects = fred::interfaces::EventInterface::reconnect_rx(publisher);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                err = errors.recv() => match err {
                    Ok((err, _)) => {
                        metrics.set_publisher_connected(false);
                        tracing::warn!(%err, "publisher connection error");
                    }
                    Err(RecvError::Closed) => return,
                    Err(_) => {}
                },
                server = reconnects.recv() => match server {
                    Ok(server) => {
                        metrics.set_publisher_connected(true);
                        tracing::info!(%server, "publisher reconnected");
                    }
                    Err(RecvError::Closed) => return,
                    Err(_) => {}
                },
            }
        }
    });
}

/// Which servers the subscribers try, in order. Configured replicas take
/// precedence over discovered ones; the master may still move.
fn plan_subscribers(
    config: &AdapterConfig,
    (uid, random_seed): (&str, u64),
    master: &Endpoint,
    fixed_replicas: Vec<Endpoint>,
    topology: Option<&TopologyRx>,
) -> SubscriberPlan {
    let selection = config.subscriber_selection;
    let Some(topology_rx) = topology else {
        let order = candidate_order(selection, fixed_replicas.len(), uid, random_seed)
            .into_iter()
            .map(|choice| match choice {
                Some(i) => fixed_replicas[i].clone(),
                None => master.clone(),
            })
            .collect();
        return SubscriberPlan {
            broadcast: Candidates::Fixed(order),
            requests: Candidates::Fixed(vec![master.clone()]),
            counted_replicas: fixed_replicas,
        };
    };
    let order_uid = uid.to_owned();
    let fixed = fixed_replicas.clone();
    let order = move |topology: &Topology| {
        let replicas = if fixed.is_empty() {
            &topology.replicas
        } else {
            &fixed
        };
        candidate_order(selection, replicas.len(), &order_uid, random_seed)
            .into_iter()
            .map(|choice| match choice {
                Some(i) => replicas[i].clone(),
                None => topology.master.clone(),
            })
            .collect()
    };
    let counted_replicas = if fixed_replicas.is_empty() {
        topology_rx.borrow().replicas.clone()
    } else {
        fixed_replicas
    };
    SubscriberPlan {
        broadcast: Candidates::Discovered {
            topology: topology_rx.clone(),
            order: Box::new(order),
        },
        requests: Candidates::Discovered {
            topology: topology_rx.clone(),
            order: Box::new(|topology: &Topology| vec![topology.master.clone()]),
        },
        counted_replicas,
    }
}

/// The shared state on Redis, its subscribers handing what they receive to
/// its dispatcher. The Redis transport is returned too, for what only
/// start-up and the topology follower do with it.
fn build_shared(
    config: AdapterConfig,
    uid: String,
    publisher: Client,
    counters: Vec<Counter>,
    plan: SubscriberPlan,
    metrics: Arc<AdapterMetrics>,
) -> (Arc<Shared>, Arc<RedisTransport>) {
    Shared::build(config.clone(), uid, metrics.clone(), |sink, shutdown_rx| {
        let subscriber = |role, candidates, sink| {
            Subscriber::new(
                role,
                candidates,
                &config,
                sink,
                publisher.clone(),
                metrics.clone(),
                shutdown_rx.clone(),
            )
        };
        let (broadcast_subscriber, request_subscriber) = if config.requests_on_master {
            (
                subscriber("broadcast", plan.broadcast, sink.clone()),
                subscriber("requests", plan.requests, sink),
            )
        } else {
            let both = subscriber("all", plan.broadcast, sink);
            (both.clone(), both)
        };
        RedisTransport {
            publisher: publisher.clone(),
            counters: RwLock::new(counters),
            broadcast_subscriber,
            request_subscriber,
            answer_timeout: config.connect_timeout(),
            metrics: metrics.clone(),
        }
    })
}

/// Subscribes what every node needs, starts the subscribers and the
/// topology followers, and waits (bounded) for the first subscriptions.
async fn start(
    shared: &Arc<Shared>,
    redis: &Arc<RedisTransport>,
    sentinel: Option<Discovered>,
) -> Result<(), Error> {
    if shared.config.legacy_emitter {
        redis
            .subscribe(Lane::Broadcasts, &[shared.legacy_channel().to_owned()], &[])
            .await?;
    }
    if let Some(discovered) = sentinel {
        redis_layer::spawn_watcher(
            discovered.settings,
            discovered.topology_tx,
            shared.shutdown.subscribe(),
        );
        spawn_topology_follower(
            Arc::downgrade(redis),
            shared.config.clone(),
            discovered.topology_rx,
        );
    }
    let _supervisor = redis.broadcast_subscriber.spawn();
    if shared.config.requests_on_master {
        let _supervisor = redis.request_subscriber.spawn();
    }
    let known_replicas = redis.counters.read().map(|c| c.len()).unwrap_or(0);
    let wait = shared.config.connect_timeout() * (known_replicas as u32 + 2);
    if !redis.wait_subscribed(wait).await {
        tracing::warn!("no subscriber connection yet, retrying in the background");
    }
    tracing::info!(uid = %shared.uid, "redis adapter connected");
    Ok(())
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Under Sentinel: keep the publisher on the master, and one node counter
/// per discovered replica.
fn spawn_topology_follower(
    redis: Weak<RedisTransport>,
    config: AdapterConfig,
    mut topology: TopologyRx,
) {
    if let Some(strong) = redis.upgrade() {
        // Ends with the topology watcher, at shutdown.
        redis_layer::spawn_publisher_follower(
            strong.publisher.clone(),
            topology.clone(),
            config.sentinel_poll_interval(),
            config.connect_timeout() * 2,
        );
    }
    if !config.replica_urls.is_empty() {
        // Configured replicas are counted, whatever the sentinels say.
        return;
    }
    tokio::spawn(async move {
        while topology.changed().await.is_ok() {
            let Some(redis) = redis.upgrade() else {
                return;
            };
            let current = topology.borrow_and_update().clone();
            let (removed, added) = {
                let Ok(mut counters) = redis.counters.write() else {
                    return;
                };
                let (kept, removed): (Vec<Counter>, Vec<Counter>) = counters
                    .drain(..)
                    .partition(|c| current.replicas.iter().any(|r| r.addr == c.addr));
                let mut added = Vec::new();
                *counters = kept;
                for replica in &current.replicas {
                    if counters.iter().all(|c| c.addr != replica.addr) {
                        match new_counter(replica, &config) {
                            Ok(counter) => {
                                added.push(counter.label.clone());
                                counters.push(counter);
                            }
                            Err(err) => {
                                tracing::warn!(replica = %replica.label, %err, "cannot count nodes on replica")
                            }
                        }
                    }
                }
                (removed, added)
            };
            if !removed.is_empty() || !added.is_empty() {
                tracing::info!(
                    added = ?added,
                    removed = ?removed.iter().map(|c| c.label.as_str()).collect::<Vec<_>>(),
                    "node counters follow the topology"
                );
            }
            for counter in removed {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_millis(500), counter.client.quit())
                        .await;
                });
            }
        }
    });
}
