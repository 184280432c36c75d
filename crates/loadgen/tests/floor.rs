//! The floor server driven by the real client and by a whole fanout run: it
//! must relay each `message` to every other socket, so that loadgen's
//! accounting (N-1 deliveries per message) holds against it too.

use std::time::Duration;

use loadgen::client::{lean_ws_config, Connection, Incoming, Target};
use loadgen::scenario::{self, RunConfig, Scenario, Source};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const EVENT: Duration = Duration::from_secs(5);

async fn start_floor() -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(loadgen::floor::serve(listener, async {
        let _ = stopped.await;
    }));
    (url, stop)
}

async fn next_event(conn: &mut Connection) -> Incoming {
    tokio::time::timeout(EVENT, conn.next_incoming())
        .await
        .expect("an event in time")
        .expect("a healthy connection")
}

#[tokio::test]
async fn floor_relays_to_every_other_socket() {
    let (url, _stop) = start_floor().await;
    let target = Target::resolve(&url).await.unwrap();
    let mut a = Connection::connect(&target, None, "/", None, lean_ws_config())
        .await
        .unwrap();
    let mut b = Connection::connect(&target, None, "/", None, lean_ws_config())
        .await
        .unwrap();
    let mut c = Connection::connect(&target, None, "/", None, lean_ws_config())
        .await
        .unwrap();
    assert!(!a.sid.is_empty());

    a.emit("message", &[json!("from a")]).await.unwrap();
    let from_a = Incoming::Event {
        name: "message".into(),
        args: vec![json!("from a")],
    };
    assert_eq!(next_event(&mut b).await, from_a);
    assert_eq!(next_event(&mut c).await, from_a);
    b.emit("message", &[json!("from b")]).await.unwrap();
    // A never got its own message back: its next event is B's.
    let from_b = Incoming::Event {
        name: "message".into(),
        args: vec![json!("from b")],
    };
    assert_eq!(next_event(&mut a).await, from_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fanout_run_against_the_floor_loses_nothing() {
    let (url, _stop) = start_floor().await;
    let report = scenario::run(RunConfig {
        label: "floor".into(),
        scenario: Scenario::Fanout,
        source: Source::Clients,
        urls: vec![url],
        nsp: "/".into(),
        clients: 30,
        publishers: 3,
        rates: vec![60.0, 0.0],
        payload_bytes: 200,
        duration: Duration::from_millis(800),
        rooms_per_client: 1,
        room_size: 10,
        connect_rate: 1000.0,
        connect_concurrency: 16,
        source_ips: 2,
        redis_url: None,
        gateway_pids: vec![std::process::id()],
        redis_pids: Vec::new(),
        max_in_flight: 4,
        drain_timeout: Duration::from_secs(5),
        stop_when_overloaded: false,
        auth_secret: None,
    })
    .await
    .unwrap();
    assert_eq!(report.connected, 30);
    assert_eq!(report.disconnects, 0);
    assert_eq!(report.steps.len(), 2);
    for step in &report.steps {
        assert!(step.published > 0, "{step:?}");
        assert_eq!(step.expected, step.published * 29, "{step:?}");
        assert_eq!(step.received, step.expected, "{step:?}");
        assert_eq!(step.lost, 0, "{step:?}");
        assert_eq!(step.latency.count, step.received, "{step:?}");
        assert!(step.gateway_cpu_secs.is_some());
    }
    // The paced phase published about 60 msg/s for 0.8 s.
    let paced = &report.steps[0];
    assert!((30..=60).contains(&paced.published), "{paced:?}");
    let table = scenario::table(&report);
    assert!(
        table.contains("floor Fanout/Clients: 30 clients"),
        "{table}"
    );
}
