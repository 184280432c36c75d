//! `subscribe_applied` against a real Redis: it returns only once the
//! server applies the subscriptions, so a message published right after is
//! delivered. The server is held with `CLIENT PAUSE` so that a call that
//! returned on write (fred's own `subscribe`) would show.

use std::time::{Duration, Instant};

use e2e::RedisServer;
use fred::{
    interfaces::{ClientLike, EventInterface},
    prelude::{Builder, Config},
    types::RespVersion,
};

const PAUSE: Duration = Duration::from_millis(400);

#[tokio::test]
async fn subscriptions_are_in_force_when_the_call_returns() -> anyhow::Result<()> {
    let server = RedisServer::master().await?;
    let mut config = Config::from_url(&server.url())?;
    config.version = RespVersion::RESP3;
    let client = Builder::from_config(config).build()?;
    let mut messages = client.message_rx();
    client.init().await?;

    let mut admin = server.conn().await?;
    admin
        .command(&["CLIENT", "PAUSE", &PAUSE.as_millis().to_string(), "ALL"])
        .await?;
    let started = Instant::now();
    redis_layer::subscribe_applied(&client, vec!["plain".into()], vec!["pattern#*".into()]).await?;
    let waited = started.elapsed();
    assert!(
        waited >= PAUSE - Duration::from_millis(100),
        "returned after {waited:?}, before the paused server could apply the subscriptions"
    );

    // Applied: counted by the server, and a publish right after arrives.
    let numsub = server.command(&["PUBSUB", "NUMSUB", "plain"]).await?;
    assert_eq!(
        numsub
            .as_array()
            .and_then(|a| a.get(1))
            .and_then(|v| v.as_int()),
        Some(1)
    );
    let numpat = server.command(&["PUBSUB", "NUMPAT"]).await?;
    assert_eq!(numpat.as_int(), Some(1));
    for channel in ["plain", "pattern#x"] {
        server.command(&["PUBLISH", channel, "hello"]).await?;
        let message = tokio::time::timeout(Duration::from_secs(2), messages.recv()).await??;
        assert_eq!(&*message.channel, channel);
    }

    // Nothing to subscribe: no round trip, no error.
    redis_layer::subscribe_applied(&client, vec![], vec![]).await?;
    client.quit().await?;
    Ok(())
}
