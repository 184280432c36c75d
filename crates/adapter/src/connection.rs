//! The adapter's command connections: the publisher on the master, and one
//! counter per replica for `PUBSUB NUMSUB`. Both keep fred's reconnection
//! (back to the same server, which is what they want); the subscribers,
//! which must move between servers, are in [`crate::subscriber`].

use fred::{clients::Client, prelude::ReconnectPolicy};
use redis_layer::{
    client::{self, Attempts},
    Endpoint,
};

use crate::{config::AdapterConfig, error::Error};

/// The publisher: one multiplexed connection to the master with fred's
/// reconnection (same server, which is what a publisher wants).
pub(crate) fn build_publisher(master: &Endpoint, config: &AdapterConfig) -> Result<Client, Error> {
    let mut builder = client::builder(
        master.config.clone(),
        config.connect_timeout(),
        config.request_timeout(),
        Attempts::Replayed,
    );
    builder.set_policy(ReconnectPolicy::new_constant(0, 100));
    Ok(builder.build()?)
}

/// A command connection used for `PUBSUB NUMSUB` (and `INFO replication`)
/// on one replica.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    pub addr: String,
    pub label: String,
    pub client: Client,
}

/// A [`Counter`] on `endpoint`, connecting in the background: a dead
/// replica must not block start-up.
pub(crate) fn new_counter(endpoint: &Endpoint, config: &AdapterConfig) -> Result<Counter, Error> {
    let client = build_counter(endpoint, config)?;
    let _task = fred::interfaces::ClientLike::connect(&client);
    Ok(Counter {
        addr: endpoint.addr.clone(),
        label: endpoint.label.clone(),
        client,
    })
}

/// A command connection to a replica, only used for `PUBSUB NUMSUB`.
fn build_counter(endpoint: &Endpoint, config: &AdapterConfig) -> Result<Client, Error> {
    let connect_timeout = config.connect_timeout();
    let mut builder = client::builder(
        endpoint.config.clone(),
        connect_timeout,
        connect_timeout,
        Attempts::Once,
    );
    builder.set_policy(ReconnectPolicy::new_constant(0, 250));
    Ok(builder.build()?)
}
