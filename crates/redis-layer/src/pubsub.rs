//! Subscriptions that are in force when the call returns.
//!
//! fred resolves `SUBSCRIBE` and `PSUBSCRIBE` as soon as they are written to
//! the socket: their confirmations arrive out of band and are dropped. A
//! message published right after may then reach the server before it has
//! applied the subscription, and is not delivered. The subscriber's handoff
//! depends on the opposite (a marker published after the new connection is
//! subscribed splits both streams at one point), so a `PING` on the same
//! connection serves as a barrier: a server answers one client's commands
//! in order, so its `PONG` comes after it applied the subscriptions.

use fred::{
    clients::Client,
    interfaces::{ClientLike, PubsubInterface},
    types::Value as RedisValue,
};

/// Subscribes `channels` and `patterns` on `client` and returns once the
/// server has applied them.
pub async fn subscribe_applied(
    client: &Client,
    channels: Vec<String>,
    patterns: Vec<String>,
) -> Result<(), fred::error::Error> {
    if channels.is_empty() && patterns.is_empty() {
        return Ok(());
    }
    if !channels.is_empty() {
        client.subscribe(channels).await?;
    }
    if !patterns.is_empty() {
        client.psubscribe(patterns).await?;
    }
    let _: RedisValue = client.ping(None).await?;
    Ok(())
}
