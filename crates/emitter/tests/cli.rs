//! The `emitter` binary's one-shot commands against a real redis-server.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_nothing_published, next_message, run_cli, watch};
use e2e::RedisServer;
use rmpv::Value;

fn decode(payload: &[u8]) -> wire::BroadcastMessage {
    wire::BroadcastMessage::decode(payload).unwrap()
}

#[tokio::test]
async fn emit_like_the_seed_example() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let url = redis.url();
    let run = run_cli(&["emit", "--redis", &url, "message", "Hello!"], &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("published"), "{run:?}");
    let message = next_message(&mut watcher).await.unwrap();
    assert_eq!(message.channel, "socket.io#/#");
    let decoded = decode(&message.payload);
    assert_eq!(decoded.uid, "emitter");
    assert_eq!(decoded.packet.nsp, "/");
    assert_eq!(
        decoded.packet.data,
        Value::Array(vec![Value::from("message"), Value::from("Hello!")])
    );
    assert!(decoded.opts.rooms.is_empty());
    assert!(decoded.opts.except.is_empty());
    assert_eq!(decoded.opts.flags, wire::BroadcastFlags::default());
}

#[tokio::test]
async fn emit_with_selectors_flags_and_json_args() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let url = redis.url();
    let run = run_cli(
        &[
            "emit",
            "--redis",
            &url,
            "--prefix",
            "app",
            "--nsp",
            "chat",
            "--to",
            "room1",
            "--except",
            "s1",
            "--volatile",
            "--compress",
            "false",
            "hello",
            "42",
            r#"{"a":[1,2]}"#,
            r#""7""#,
            r#"{"$binary":"AQID"}"#,
            "-3",
            "null",
            "two words",
        ],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    let message = next_message(&mut watcher).await.unwrap();
    assert_eq!(message.channel, "app#/chat#room1#");
    let decoded = decode(&message.payload);
    assert_eq!(decoded.packet.nsp, "/chat");
    assert_eq!(
        decoded.packet.data,
        Value::Array(vec![
            Value::from("hello"),
            Value::from(42),
            Value::Map(vec![(
                Value::from("a"),
                Value::Array(vec![Value::from(1), Value::from(2)])
            )]),
            Value::from("7"),
            Value::Binary(vec![1, 2, 3]),
            Value::from(-3),
            Value::Nil,
            Value::from("two words"),
        ])
    );
    assert_eq!(decoded.opts.rooms, vec!["room1"]);
    assert_eq!(decoded.opts.except, vec!["s1"]);
    assert!(decoded.opts.flags.volatile);
    assert_eq!(decoded.opts.flags.compress, Some(false));
}

#[tokio::test]
async fn requests_are_the_node_json() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let url = redis.url();
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &[
                "join", "--room", "a", "--room", "b", "--to", "r1", "--except", "r2",
            ],
            "socket.io-request#/#",
            r#"{"type":2,"opts":{"rooms":["r1"],"except":["r2"]},"rooms":["a","b"]}"#,
        ),
        (
            &["leave", "--room", "a", "--nsp", "/chat"],
            "socket.io-request#/chat#",
            r#"{"type":3,"opts":{"rooms":[],"except":[]},"rooms":["a"]}"#,
        ),
        (
            &["disconnect", "--close", "--to", "r1"],
            "socket.io-request#/#",
            r#"{"type":4,"opts":{"rooms":["r1"],"except":[]},"close":true}"#,
        ),
        (
            &["server-side-emit", "ping", "1", "word", r#"{"k":"v"}"#],
            "socket.io-request#/#",
            r#"{"uid":"emitter","type":6,"data":["ping",1,"word",{"k":"v"}]}"#,
        ),
    ];
    for (args, channel, payload) in cases {
        let mut full = vec!["--redis", url.as_str()];
        full.extend_from_slice(args);
        let run = run_cli(&full, &[]).await.unwrap();
        assert_eq!(run.code, Some(0), "{args:?}: {run:?}");
        let message = next_message(&mut watcher).await.unwrap();
        assert_eq!(message.channel, channel, "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&message.payload),
            payload,
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn bad_input_fails_with_exit_code_2_and_publishes_nothing() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let url = redis.url();
    let cases: [(&[&str], &str); 7] = [
        (&["emit", "message", r#"{"a":"#], "looks like JSON"),
        (&["emit", "message", "ok", "[1,"], "looks like JSON"),
        (&["emit", "message", r#""unterminated"#], "looks like JSON"),
        (&["emit", "message", r#"{"$binary":"%%"}"#], "base64"),
        (&["emit", "disconnect"], "reserved event name"),
        (&["server-side-emit", "ping", "{oops"], "looks like JSON"),
        (&["join"], "--room"),
    ];
    for (args, expected) in cases {
        let mut full = vec!["--redis", url.as_str()];
        full.extend_from_slice(args);
        let run = run_cli(&full, &[]).await.unwrap();
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {run:?}");
    }
    assert_nothing_published(&redis, &mut watcher)
        .await
        .unwrap();
}

#[tokio::test]
async fn unreachable_redis_fails_with_a_clear_message() {
    let port = e2e::free_port().unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let run = run_cli(&["emit", "--redis", &url, "message", "Hello!"], &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("cannot connect to redis"), "{run:?}");
    assert!(run.stderr.contains(&url), "{run:?}");
}

#[tokio::test]
async fn configuration_from_environment_file_and_flags() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let url = redis.url();
    let dead = format!("redis://127.0.0.1:{}", e2e::free_port().unwrap());

    // Environment only.
    let run = run_cli(
        &["emit", "e", "1"],
        &[
            ("EMITTER_REDIS__URL", &url),
            ("EMITTER_REDIS__PREFIX", "envp"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(next_message(&mut watcher).await.unwrap().channel, "envp#/#");

    // A flag beats the environment.
    let run = run_cli(
        &["emit", "--redis", &url, "e", "1"],
        &[("EMITTER_REDIS__URL", &dead)],
    )
    .await
    .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        next_message(&mut watcher).await.unwrap().channel,
        "socket.io#/#"
    );

    // The environment beats the file.
    let dir = std::env::temp_dir().join(format!("emitter-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("emitter.toml");
    std::fs::write(
        &file,
        format!("[redis]\nurl = \"{dead}\"\nprefix = \"filep\"\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_owned();
    let run = run_cli(
        &["emit", "--config", &file, "e", "1"],
        &[("EMITTER_REDIS__URL", &url)],
    )
    .await
    .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        next_message(&mut watcher).await.unwrap().channel,
        "filep#/#"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // An invalid value fails at start and names its key.
    let run = run_cli(
        &["emit", "e", "1"],
        &[
            ("EMITTER_REDIS__URL", &url),
            ("EMITTER_REDIS__PUBLISH_TIMEOUT_MS", "soon"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("redis.publish_timeout_ms"), "{run:?}");
    assert_nothing_published(&redis, &mut watcher)
        .await
        .unwrap();
}
