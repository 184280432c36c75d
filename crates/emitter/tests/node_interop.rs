//! The interoperability proof: the Rust emitter (library, CLI and HTTP
//! service) drives real Node Socket.IO 4.8 servers running
//! `@socket.io/redis-adapter` 8.3, and their real socket.io-client clients
//! receive exactly what they should.
//!
//! Absence is checked without fixed waits: after the operation under test,
//! an event to everyone is emitted as a barrier; the servers receive both
//! messages in publish order from the same Redis connection, so once a
//! client has the barrier it would already have the earlier event.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run_cli, Service, TIMEOUT};
use e2e::{NodePeer, RedisServer};
use emitter::{Emitter, RedisConfig};
use rmpv::Value;
use serde_json::{json, Value as Json};

struct Cluster {
    // Declared first so they are dropped (killed) before Redis.
    clients: Vec<NodePeer>,
    servers: Vec<NodePeer>,
    redis: RedisServer,
}

impl Cluster {
    /// Two Node servers on one Redis; clients c0 and c1 on server 0, c2 on
    /// server 1, c3 on server 1 in namespace /admin.
    async fn start() -> Self {
        let redis = RedisServer::master().await.unwrap();
        let url = redis.url();
        let mut servers = Vec::new();
        for name in ["node-a", "node-b"] {
            servers.push(
                NodePeer::server(name, &url, &url, &["--nsp", "/admin"])
                    .await
                    .unwrap(),
            );
        }
        let mut clients = Vec::new();
        for (name, server, extra) in [
            ("c0", 0, &[][..]),
            ("c1", 0, &[]),
            ("c2", 1, &[]),
            ("c3", 1, &["--nsp", "/admin"]),
        ] {
            let url = servers[server].http_url().unwrap();
            clients.push(NodePeer::client(name, &url, extra).await.unwrap());
        }
        Self {
            clients,
            servers,
            redis,
        }
    }

    fn sid(&self, client: usize) -> String {
        self.clients[client].ready_value().to_owned()
    }

    /// Emits `barrier` to everyone in "/" and waits until clients 0..3 got it;
    /// returns what each received before it (event names).
    async fn barrier(&mut self, io: &Emitter, barrier: &str) -> Vec<Vec<String>> {
        io.emit(barrier, Vec::<Value>::new()).await.unwrap();
        let mut seen = Vec::new();
        for client in &mut self.clients[..3] {
            client.expect_event(barrier, TIMEOUT).await.unwrap();
            let names = client
                .backlog()
                .filter_map(|line| line["event"].as_str().map(str::to_owned))
                .collect();
            client.clear_backlog();
            seen.push(names);
        }
        seen
    }

    /// Waits until server `server` reports that socket `sid` is (or is not) in `room`.
    async fn wait_room(&mut self, server: usize, sid: &str, room: &str, member: bool) {
        let peer = &mut self.servers[server];
        for _ in 0..200 {
            let sockets = peer
                .server_op(json!({"op": "localSockets"}), TIMEOUT)
                .await
                .unwrap();
            let present = sockets.as_array().unwrap().iter().any(|socket| {
                socket["id"] == sid
                    && socket["rooms"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r == room)
            });
            if present == member {
                return;
            }
            tokio::time::sleep(e2e::wait::POLL_INTERVAL).await;
        }
        panic!(
            "socket {sid} never {} room {room}",
            if member { "joined" } else { "left" }
        );
    }
}

fn args_of(line: &Json) -> Json {
    line["args"].clone()
}

#[tokio::test]
async fn node_clients_receive_what_the_rust_emitter_sends() {
    let mut cluster = Cluster::start().await;
    let io = Emitter::connect(&RedisConfig::new(cluster.redis.url()))
        .await
        .unwrap();
    for client in [0, 2] {
        assert_eq!(
            cluster.clients[client].join("room1").await.unwrap(),
            json!([true])
        );
    }

    // To one room, across both servers, with every kind of argument.
    let args = vec![
        Value::from("world"),
        Value::Binary(vec![1, 2, 3]),
        Value::Map(vec![
            (Value::from("n"), Value::from(1)),
            (Value::from("f"), Value::F64(0.5)),
        ]),
        Value::Nil,
        Value::Boolean(false),
        Value::from(-42),
    ];
    io.to("room1").emit("hello", args).await.unwrap();
    for client in [0, 2] {
        let line = cluster.clients[client]
            .expect_event("hello", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(
            args_of(&line),
            json!(["world", {"$bin": "010203"}, {"n": 1, "f": 0.5}, null, false, -42])
        );
    }
    let seen = cluster.barrier(&io, "barrier1").await;
    assert!(
        !seen[1].contains(&"hello".to_owned()),
        "c1 is not in room1: {seen:?}"
    );

    // Except: everyone in "/" but room1.
    io.except("room1").emit("news", ["x"]).await.unwrap();
    cluster.clients[1]
        .expect_event("news", TIMEOUT)
        .await
        .unwrap();
    let seen = cluster.barrier(&io, "barrier2").await;
    assert!(
        !seen[0].contains(&"news".to_owned()) && !seen[2].contains(&"news".to_owned()),
        "{seen:?}"
    );

    // Several rooms, volatile and compress flags: delivered to a connected websocket client.
    assert_eq!(
        cluster.clients[1].join("room2").await.unwrap(),
        json!([true])
    );
    io.to(["room1", "room2"])
        .volatile()
        .compress(false)
        .emit("multi", [1])
        .await
        .unwrap();
    for client in [0, 1, 2] {
        let line = cluster.clients[client]
            .expect_event("multi", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(args_of(&line), json!([1]));
    }

    // Namespaces: /admin only.
    io.of("/admin")
        .emit("admin-only", ["secret"])
        .await
        .unwrap();
    let line = cluster.clients[3]
        .expect_event("admin-only", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(args_of(&line), json!(["secret"]));
    let seen = cluster.barrier(&io, "barrier3").await;
    assert!(
        seen.iter()
            .all(|names| !names.contains(&"admin-only".to_owned())),
        "{seen:?}"
    );

    // socketsJoin / socketsLeave by socket id (a socket id is a room).
    let c1 = cluster.sid(1);
    io.in_(c1.as_str()).sockets_join("vip").await.unwrap();
    cluster.wait_room(0, &c1, "vip", true).await;
    io.to("vip")
        .emit("vip-news", Vec::<Value>::new())
        .await
        .unwrap();
    cluster.clients[1]
        .expect_event("vip-news", TIMEOUT)
        .await
        .unwrap();
    let seen = cluster.barrier(&io, "barrier4").await;
    assert!(
        !seen[0].contains(&"vip-news".to_owned()) && !seen[2].contains(&"vip-news".to_owned()),
        "{seen:?}"
    );
    io.to("vip").sockets_leave("vip").await.unwrap();
    cluster.wait_room(0, &c1, "vip", false).await;

    // Server-side emit reaches every server.
    io.server_side_emit("ping", [json!(1), json!({"a": "b"})])
        .await
        .unwrap();
    for server in &mut cluster.servers {
        let line = server
            .expect_event("serverSideEmit", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(line["args"], json!(["ping", 1, {"a": "b"}]));
        assert_eq!(line["nsp"], "/");
    }

    // disconnectSockets: room1 only (c0 on node-a, c2 on node-b).
    io.to("room1").disconnect_sockets(true).await.unwrap();
    for client in [0, 2] {
        cluster.clients[client]
            .expect_event("$disconnect", TIMEOUT)
            .await
            .unwrap();
    }
    io.emit("still-here", Vec::<Value>::new()).await.unwrap();
    cluster.clients[1]
        .expect_event("still-here", TIMEOUT)
        .await
        .unwrap();
    assert!(
        cluster.clients[1]
            .backlog()
            .all(|line| line["event"] != "$disconnect"),
        "c1 was not in room1"
    );
}

#[tokio::test]
async fn cli_and_http_service_reach_node_clients() {
    let mut cluster = Cluster::start().await;
    let url = cluster.redis.url();
    assert_eq!(
        cluster.clients[2].join("room1").await.unwrap(),
        json!([true])
    );

    // The seed example, through the CLI.
    let run = run_cli(&["emit", "--redis", &url, "message", "Hello!"], &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    for client in &mut cluster.clients[..3] {
        let line = client.expect_event("message", TIMEOUT).await.unwrap();
        assert_eq!(args_of(&line), json!(["Hello!"]));
    }
    let run = run_cli(
        &[
            "emit",
            "--redis",
            &url,
            "--to",
            "room1",
            "cli-room",
            r#"{"$binary":"/w=="}"#,
        ],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = cluster.clients[2]
        .expect_event("cli-room", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(args_of(&line), json!([{"$bin": "ff"}]));

    // Through the HTTP service.
    let service = Service::start(&[("EMITTER_REDIS__URL", &url), ("EMITTER_API_TOKEN", "t0ken")])
        .await
        .unwrap();
    let auth = [("Authorization", "Bearer t0ken")];
    let body = r#"{"rooms":["room1"],"event":"http-room","args":[{"k":[1,2]},{"$binary":"AQID"}]}"#;
    let (status, answer) = e2e::wait_for("the service to accept", Duration::from_secs(10), || {
        let service = &service;
        async move {
            let (status, answer) = service.request("POST", "/v1/emit", &auth, body).await?;
            Ok((status != 503).then_some((status, answer)))
        }
    })
    .await
    .unwrap();
    assert_eq!(status, 202, "{answer}");
    let line = cluster.clients[2]
        .expect_event("http-room", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(args_of(&line), json!([{"k": [1, 2]}, {"$bin": "010203"}]));

    let c0 = cluster.clients[0].ready_value().to_owned();
    let body = format!(r#"{{"rooms":["{c0}"],"target_rooms":["from-http"]}}"#);
    let (status, _) = service
        .request("POST", "/v1/sockets/join", &auth, &body)
        .await
        .unwrap();
    assert_eq!(status, 202);
    cluster.wait_room(0, &c0, "from-http", true).await;

    let (status, _) = service
        .request(
            "POST",
            "/v1/server-side-emit",
            &auth,
            r#"{"event":"hi","args":["there"]}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 202);
    for server in &mut cluster.servers {
        let line = server
            .expect_event("serverSideEmit", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(line["args"], json!(["hi", "there"]));
    }
}
