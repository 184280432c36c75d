//! `emitter serve`: the HTTP JSON API against a real redis-server.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{assert_nothing_published, next_message, publishes_since_start, watch, Service};
use e2e::RedisServer;
use rmpv::Value;
use serde_json::json;

#[tokio::test]
async fn operations_are_published_once_accepted() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let url = redis.url();
    let service = Service::start(&[("EMITTER_REDIS__URL", &url)])
        .await
        .unwrap();
    // The service connects in the background (it must start with Redis down).
    e2e::wait_until("the service to connect", Duration::from_secs(10), || {
        let service = &service;
        async move {
            matches!(
                service.request("GET", "/readyz", &[], "").await,
                Ok((200, _))
            )
        }
    })
    .await
    .unwrap();

    let (status, body) = service.request("GET", "/healthz", &[], "").await.unwrap();
    assert_eq!(
        (status, body),
        (200, json!({"status": "ok", "redis": "connected"}))
    );

    let (status, body) = service
        .post(
            "/v1/emit",
            r#"{"nsp":"/","rooms":["room1"],"except":["s1"],"event":"message",
                "args":["hi",1,{"a":null},{"$binary":"AQID"}],"volatile":true}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body,
        json!({"status": "published", "master_subscribers": 1})
    );
    let message = next_message(&mut watcher).await.unwrap();
    assert_eq!(message.channel, "socket.io#/#room1#");
    let decoded = wire::BroadcastMessage::decode(&message.payload).unwrap();
    assert_eq!(decoded.uid, "emitter");
    assert_eq!(
        decoded.packet.data,
        Value::Array(vec![
            Value::from("message"),
            Value::from("hi"),
            Value::from(1),
            Value::Map(vec![(Value::from("a"), Value::Nil)]),
            Value::Binary(vec![1, 2, 3]),
        ])
    );
    assert_eq!(decoded.opts.rooms, vec!["room1"]);
    assert_eq!(decoded.opts.except, vec!["s1"]);
    assert!(decoded.opts.flags.volatile);

    let (status, _) = service
        .post(
            "/v1/emit",
            r#"{"event":"tick","nsp":"admin","rooms":["a","b"]}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 202);
    let message = next_message(&mut watcher).await.unwrap();
    assert_eq!(message.channel, "socket.io#/admin#");

    let requests = [
        (
            "/v1/sockets/join",
            r#"{"rooms":["r1"],"except":["r2"],"target_rooms":["a","b"]}"#,
            "socket.io-request#/#",
            r#"{"type":2,"opts":{"rooms":["r1"],"except":["r2"]},"rooms":["a","b"]}"#,
        ),
        (
            "/v1/sockets/leave",
            r#"{"nsp":"/chat","target_rooms":["a"]}"#,
            "socket.io-request#/chat#",
            r#"{"type":3,"opts":{"rooms":[],"except":[]},"rooms":["a"]}"#,
        ),
        (
            "/v1/sockets/disconnect",
            r#"{"rooms":["r1"],"close":true}"#,
            "socket.io-request#/#",
            r#"{"type":4,"opts":{"rooms":["r1"],"except":[]},"close":true}"#,
        ),
        (
            "/v1/server-side-emit",
            r#"{"event":"ping","args":[1,"x"]}"#,
            "socket.io-request#/#",
            r#"{"uid":"emitter","type":6,"data":["ping",1,"x"]}"#,
        ),
    ];
    for (path, body, channel, payload) in requests {
        let (status, answer) = service.post(path, body).await.unwrap();
        assert_eq!(status, 202, "{path}: {answer}");
        let message = next_message(&mut watcher).await.unwrap();
        assert_eq!(message.channel, channel, "{path}");
        assert_eq!(String::from_utf8_lossy(&message.payload), payload, "{path}");
    }
    assert_nothing_published(&redis, &mut watcher)
        .await
        .unwrap();

    let (status, metrics) = service.request("GET", "/metrics", &[], "").await.unwrap();
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_owned();
    for line in [
        "emitter_published_total{kind=\"emit\"} 2",
        "emitter_published_total{kind=\"sockets_join\"} 1",
        "emitter_published_total{kind=\"sockets_leave\"} 1",
        "emitter_published_total{kind=\"disconnect_sockets\"} 1",
        "emitter_published_total{kind=\"server_side_emit\"} 1",
        "emitter_http_requests_total{status=\"202\"} 6",
        "emitter_http_requests_total{status=\"200\"}",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn bad_requests_get_400_naming_the_field_and_publish_nothing() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let url = redis.url();
    let service = Service::start(&[("EMITTER_REDIS__URL", &url)])
        .await
        .unwrap();
    let cases = [
        ("/v1/emit", r#"{"rooms":[]}"#, json!("event")),
        ("/v1/emit", r#"{"event":"disconnect"}"#, json!("event")),
        ("/v1/emit", r#"{"event":"x","rooms":[1]}"#, json!("rooms")),
        ("/v1/emit", r#"{"event":"x","except":"#, json!(null)),
        (
            "/v1/emit",
            r#"{"event":"x","args":[{"$binary":"??"}]}"#,
            json!("args"),
        ),
        (
            "/v1/emit",
            r#"{"event":"x","volatile":1}"#,
            json!("volatile"),
        ),
        ("/v1/emit", r#"{"event":"x","roms":["a"]}"#, json!("roms")),
        ("/v1/emit", "[]", json!(null)),
        ("/v1/emit", "", json!(null)),
        (
            "/v1/sockets/join",
            r#"{"rooms":["a"]}"#,
            json!("target_rooms"),
        ),
        (
            "/v1/sockets/leave",
            r#"{"target_rooms":[""]}"#,
            json!("target_rooms[0]"),
        ),
        (
            "/v1/sockets/disconnect",
            r#"{"close":"yes"}"#,
            json!("close"),
        ),
        ("/v1/server-side-emit", r#"{"args":[1]}"#, json!("event")),
    ];
    for (path, body, field) in cases {
        let (status, answer) = service.post(path, body).await.unwrap();
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["field"], field, "{path} {body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    assert_nothing_published(&redis, &mut watcher)
        .await
        .unwrap();
    let (_, metrics) = service.request("GET", "/metrics", &[], "").await.unwrap();
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("emitter_http_requests_total{status=\"400\"} 13"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let url = redis.url();
    let service = Service::start(&[
        ("EMITTER_REDIS__URL", &url),
        ("EMITTER_API_TOKEN", "s3cret"),
    ])
    .await
    .unwrap();
    let body = r#"{"event":"x"}"#;
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "s3cret")],
    ] {
        let (status, answer) = service
            .request("POST", "/v1/emit", &headers, body)
            .await
            .unwrap();
        assert_eq!(status, 401, "{headers:?}: {answer}");
    }
    // Even a bad body is refused with 401 first: nothing is revealed.
    let (status, _) = service.request("POST", "/v1/emit", &[], "{").await.unwrap();
    assert_eq!(status, 401);
    assert_nothing_published(&redis, &mut watcher)
        .await
        .unwrap();

    let (status, answer) = service
        .request(
            "POST",
            "/v1/emit",
            &[("Authorization", "Bearer s3cret")],
            body,
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        next_message(&mut watcher).await.unwrap().channel,
        "socket.io#/#"
    );
    // Probes and scrapers need no token.
    assert_eq!(
        service.request("GET", "/healthz", &[], "").await.unwrap().0,
        200
    );
    assert_eq!(
        service.request("GET", "/metrics", &[], "").await.unwrap().0,
        200
    );
}

#[tokio::test]
async fn redis_down_gives_503_promptly_and_nothing_is_replayed() {
    let mut redis = RedisServer::master().await.unwrap();
    let url = redis.url();
    let service = Service::start(&[
        ("EMITTER_REDIS__URL", &url),
        ("EMITTER_REDIS__PUBLISH_TIMEOUT_MS", "700"),
    ])
    .await
    .unwrap();
    assert_eq!(
        service
            .post("/v1/emit", r#"{"event":"before"}"#)
            .await
            .unwrap()
            .0,
        202
    );

    redis.kill();
    for (path, body) in [
        ("/v1/emit", r#"{"event":"during"}"#),
        ("/v1/sockets/join", r#"{"target_rooms":["a"]}"#),
        ("/v1/server-side-emit", r#"{"event":"during"}"#),
    ] {
        let started = Instant::now();
        let (status, answer) = service.post(path, body).await.unwrap();
        assert_eq!(status, 503, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("redis"),
            "{answer}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    let (status, body) = service.request("GET", "/readyz", &[], "").await.unwrap();
    assert_eq!((status, body), (503, json!({"redis": "disconnected"})));
    let (status, body) = service.request("GET", "/healthz", &[], "").await.unwrap();
    assert_eq!(
        (status, body["redis"].clone()),
        (200, json!("disconnected"))
    );

    // Back on the same port: the service recovers by itself, and what it
    // answered 503 for is not published behind the caller's back.
    redis.restart().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    e2e::wait_until("the service to reconnect", Duration::from_secs(10), || {
        let service = &service;
        async move {
            matches!(
                service.request("GET", "/readyz", &[], "").await,
                Ok((200, _))
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(
        service
            .post("/v1/emit", r#"{"event":"after"}"#)
            .await
            .unwrap()
            .0,
        202
    );
    let message = next_message(&mut watcher).await.unwrap();
    let decoded = wire::BroadcastMessage::decode(&message.payload).unwrap();
    assert_eq!(
        decoded.packet.data,
        Value::Array(vec![Value::from("after")])
    );
    assert_nothing_published(&redis, &mut watcher)
        .await
        .unwrap();
    // Since the restart, Redis ran two PUBLISHes: "after" and the marker.
    // The watcher subscribed after the restart; Redis's count covers the
    // moments before it did.
    assert_eq!(publishes_since_start(&redis).await.unwrap(), 2);

    let (_, metrics) = service.request("GET", "/metrics", &[], "").await.unwrap();
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("emitter_publish_errors_total{kind=\"emit\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("emitter_http_requests_total{status=\"503\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn service_starts_while_redis_is_unreachable() {
    let dead = format!("redis://127.0.0.1:{}", e2e::free_port().unwrap());
    let service = Service::start(&[
        ("EMITTER_REDIS__URL", &dead),
        ("EMITTER_REDIS__PUBLISH_TIMEOUT_MS", "500"),
    ])
    .await
    .unwrap();
    let started = Instant::now();
    let (status, answer) = service
        .post("/v1/emit", r#"{"event":"x","args":[1]}"#)
        .await
        .unwrap();
    assert_eq!(status, 503, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // Validation still comes first.
    assert_eq!(
        service.post("/v1/emit", r#"{"args":[1]}"#).await.unwrap().0,
        400
    );
}

#[tokio::test]
async fn invalid_configuration_fails_at_start_naming_the_key() {
    for (key, value) in [
        ("EMITTER_LISTEN", "nowhere"),
        ("EMITTER_REDIS__URL", "http://127.0.0.1:6379"),
        ("EMITTER_API_TOKEN", ""),
    ] {
        let run = common::run_cli(&["serve"], &[(key, value)]).await.unwrap();
        assert_eq!(run.code, Some(2), "{key}: {run:?}");
        let name = key
            .trim_start_matches("EMITTER_")
            .replace("__", ".")
            .to_lowercase();
        assert!(run.stderr.contains(&name), "{key}: {run:?}");
    }
}
