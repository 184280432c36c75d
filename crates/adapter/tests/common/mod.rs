//! Test support: real Redis servers (from the `e2e` harness), real
//! socketioxide gateways on real ports using the adapter, and a small
//! WebSocket Socket.IO client written against the protocol text format.
#![allow(dead_code)]

pub mod scenarios;

use std::{sync::Arc, time::Duration};

use adapter::{AdapterConfig, ClusterHandle, RedisAdapter, SubscriberSelection};
use anyhow::{bail, Context};
use e2e::RedisServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use socketioxide::{adapter::Emitter, extract::SocketRef, SocketIo};
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::tungstenite::Message;

pub type Adapter = RedisAdapter<Emitter>;
pub type Io = SocketIo<Adapter>;

pub const WAIT: Duration = Duration::from_secs(5);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "adapter=info,warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A master and `replicas` replicas, links up.
pub struct Topology {
    pub master: RedisServer,
    pub replicas: Vec<RedisServer>,
}

impl Topology {
    pub async fn start(replicas: usize) -> anyhow::Result<Self> {
        // No diskless-sync delay: replicas link up in milliseconds, not 5 s.
        let master = RedisServer::start(None, &["--repl-diskless-sync-delay", "0"]).await?;
        let mut started = Vec::new();
        for _ in 0..replicas {
            started.push(RedisServer::replica_of(&master).await?);
        }
        Ok(Self {
            master,
            replicas: started,
        })
    }

    pub fn config(&self) -> AdapterConfig {
        AdapterConfig {
            url: self.master.url(),
            replica_urls: self.replicas.iter().map(|r| r.url()).collect(),
            request_timeout_ms: 1500,
            subscriber_selection: SubscriberSelection::Hash,
            ..AdapterConfig::default()
        }
    }
}

/// A socketioxide server with the Redis adapter, on a free port.
pub struct Gateway {
    pub io: Io,
    pub cluster: ClusterHandle,
    pub port: u16,
    server: JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.server.abort();
        let cluster = self.cluster.clone();
        tokio::spawn(async move { cluster.shutdown().await });
    }
}

impl Gateway {
    /// Namespaces `/` and `/admin`. Clients can ask to join/leave rooms with
    /// the `join` / `leave` events (acknowledged with "ok").
    pub async fn start(config: AdapterConfig) -> anyhow::Result<Self> {
        Self::start_with(config, 1024).await
    }

    /// With socketioxide's per-socket buffer set to `socket_buffer` packets.
    pub async fn start_with(config: AdapterConfig, socket_buffer: usize) -> anyhow::Result<Self> {
        Self::start_on(ClusterHandle::connect(config).await?, socket_buffer).await
    }

    /// On a node already made (on Redis, or on a [`adapter::MemoryBus`]).
    pub async fn start_on(cluster: ClusterHandle, socket_buffer: usize) -> anyhow::Result<Self> {
        let (layer, io) = SocketIo::builder()
            .ack_timeout(Duration::from_secs(2))
            .max_buffer_size(socket_buffer)
            .with_adapter::<Adapter>(cluster.clone())
            .build_layer();
        for nsp in ["/", "/admin"] {
            io.ns(nsp, async |socket: SocketRef<Adapter>| {
                socket.on(
                    "join",
                    async |socket: SocketRef<Adapter>,
                           socketioxide::extract::Data::<String>(room),
                           ack: socketioxide::extract::AckSender<Adapter>| {
                        socket.join(room);
                        let _ = ack.send(&"ok");
                    },
                );
            })
            .await
            .map_err(|e| anyhow::anyhow!("ns init: {e}"))?;
        }
        let app = axum::Router::new().layer(layer);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        anyhow::ensure!(
            cluster.wait_ready(WAIT).await,
            "gateway not ready: {:?}",
            cluster.readiness()
        );
        Ok(Self {
            io,
            cluster,
            port,
            server,
        })
    }

    pub async fn client(&self, name: &str) -> anyhow::Result<TestClient> {
        TestClient::connect(self.port, "/", name).await
    }

    pub async fn client_in(&self, nsp: &str, name: &str) -> anyhow::Result<TestClient> {
        TestClient::connect(self.port, nsp, name).await
    }

    /// Make the local socket `sid` join `room` (local state only, as
    /// `socket.join` does).
    pub fn join(&self, sid: &str, room: &'static str) -> anyhow::Result<()> {
        let sid = sid
            .parse()
            .map_err(|e| anyhow::anyhow!("bad sid {sid}: {e:?}"))?;
        let socket = self.io.get_socket(sid).context("no such local socket")?;
        socket.join(room);
        Ok(())
    }
}

/// An event a test client received.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    /// Arguments after the event name, placeholders left as they are.
    pub args: Vec<Value>,
    pub attachments: Vec<Vec<u8>>,
    pub ack_id: Option<u64>,
}

#[derive(Debug)]
pub enum ClientMsg {
    Event(Event),
    Ack(u64, Value),
    Disconnected,
}

/// A minimal Engine.IO 4 / Socket.IO 5 WebSocket client.
pub struct TestClient {
    pub sid: String,
    pub name: String,
    nsp: String,
    inbox: mpsc::UnboundedReceiver<ClientMsg>,
    outbox: mpsc::UnboundedSender<Message>,
    task: JoinHandle<()>,
    next_ack: u64,
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn nsp_prefix(nsp: &str) -> String {
    if nsp == "/" {
        String::new()
    } else {
        format!("{nsp},")
    }
}

impl TestClient {
    pub async fn connect(port: u16, nsp: &str, name: &str) -> anyhow::Result<Self> {
        Self::connect_with(port, nsp, name, true).await
    }

    /// A client that never answers acks when `answer_acks` is false.
    pub async fn connect_with(
        port: u16,
        nsp: &str,
        name: &str,
        answer_acks: bool,
    ) -> anyhow::Result<Self> {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let handshake = async {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            anyhow::Ok(tokio_tungstenite::client_async(url, stream).await?)
        };
        let (ws, _) = tokio::time::timeout(WAIT, handshake).await??;
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (in_tx, in_rx) = mpsc::unbounded_channel::<ClientMsg>();
        let (sid_tx, mut sid_rx) = mpsc::unbounded_channel::<String>();
        let ctx = ClientCtx {
            prefix: nsp_prefix(nsp),
            name: name.to_owned(),
            answer_acks,
            replies: out_tx.clone(),
            inbox: in_tx,
            sid_tx,
        };
        let task = tokio::spawn(async move {
            let (prefix, replies, in_tx) =
                (ctx.prefix.clone(), ctx.replies.clone(), ctx.inbox.clone());
            let mut pending_binary: Option<(Event, usize)> = None;
            loop {
                tokio::select! {
                    out = out_rx.recv() => match out {
                        Some(msg) => if sink.send(msg).await.is_err() { break },
                        None => break,
                    },
                    frame = stream.next() => {
                        let Some(Ok(frame)) = frame else { let _ = in_tx.send(ClientMsg::Disconnected); break };
                        match frame {
                            Message::Text(text) => {
                                let text = text.as_str();
                                if text.starts_with('0') {
                                    let _ = replies.send(Message::text(format!("40{prefix}")));
                                } else if text == "2" {
                                    let _ = replies.send(Message::text("3"));
                                } else if let Some(sio) = text.strip_prefix('4') {
                                    handle_sio(sio, &ctx, &mut pending_binary);
                                } else if text.starts_with('1') {
                                    let _ = in_tx.send(ClientMsg::Disconnected);
                                }
                            }
                            Message::Binary(bytes) => {
                                if let Some((mut event, left)) = pending_binary.take() {
                                    event.attachments.push(bytes.to_vec());
                                    if left > 1 {
                                        pending_binary = Some((event, left - 1));
                                    } else {
                                        deliver(event, &ctx);
                                    }
                                }
                            }
                            Message::Close(_) => { let _ = in_tx.send(ClientMsg::Disconnected); break }
                            _ => {}
                        }
                    }
                }
            }
        });
        let sid = tokio::time::timeout(WAIT, sid_rx.recv())
            .await
            .context("no CONNECT answer")?
            .context("connection closed before CONNECT")?;
        Ok(Self {
            sid,
            name: name.to_owned(),
            nsp: nsp.to_owned(),
            inbox: in_rx,
            outbox: out_tx,
            task,
            next_ack: 1,
        })
    }

    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<ClientMsg> {
        match tokio::time::timeout(timeout, self.inbox.recv()).await {
            Ok(Some(msg)) => Ok(msg),
            Ok(None) => bail!("{}: connection task ended", self.name),
            Err(_) => bail!("{}: nothing received within {timeout:?}", self.name),
        }
    }

    /// The next event named `name` (other events are skipped).
    pub async fn event(&mut self, name: &str) -> anyhow::Result<Event> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self
                .next(left)
                .await
                .with_context(|| format!("waiting for event {name}"))?
            {
                ClientMsg::Event(event) if event.name == name => return Ok(event),
                _ => {}
            }
        }
    }

    /// The events that arrive before the event named `marker`, which must
    /// come within [`WAIT`]. Sent after something that must not arrive, a
    /// marker proves the silence: whatever was going to arrive is ahead of
    /// it, on the same ordered path.
    pub async fn events_before(&mut self, marker: &str) -> anyhow::Result<Vec<Event>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self
                .next(left)
                .await
                .with_context(|| format!("waiting for marker {marker}"))?
            {
                ClientMsg::Event(event) if event.name == marker => return Ok(before),
                ClientMsg::Event(event) => before.push(event),
                ClientMsg::Ack(..) => {}
                ClientMsg::Disconnected => bail!("{}: disconnected before {marker}", self.name),
            }
        }
    }

    /// Nothing arrives before the event named `marker` (see
    /// [`Self::events_before`]).
    pub async fn nothing_before(&mut self, marker: &str) -> anyhow::Result<()> {
        let before = self.events_before(marker).await?;
        anyhow::ensure!(
            before.is_empty(),
            "{}: unexpected before {marker}: {before:?}",
            self.name
        );
        Ok(())
    }

    pub async fn disconnected(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let ClientMsg::Disconnected =
                self.next(left).await.context("waiting for disconnect")?
            {
                return Ok(());
            }
        }
    }

    /// Emit with an ack and wait for it.
    pub async fn emit_with_ack(&mut self, event: &str, args: Value) -> anyhow::Result<Value> {
        self.try_emit_with_ack(event, args, WAIT)
            .await?
            .with_context(|| format!("{}: no ack for {event} within {WAIT:?}", self.name))
    }

    /// Emit with an ack; `None` if it does not come within `timeout`.
    pub async fn try_emit_with_ack(
        &mut self,
        event: &str,
        args: Value,
        timeout: Duration,
    ) -> anyhow::Result<Option<Value>> {
        let id = self.next_ack;
        self.next_ack += 1;
        let mut array = vec![json!(event)];
        if let Value::Array(args) = args {
            array.extend(args)
        } else {
            array.push(args)
        }
        let text = format!("42{}{id}{}", nsp_prefix(&self.nsp), Value::Array(array));
        self.outbox
            .send(Message::text(text))
            .ok()
            .context("client closed")?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.inbox.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => bail!("{}: connection task ended", self.name),
                Ok(Some(ClientMsg::Ack(ack, value))) if ack == id => return Ok(Some(value)),
                Ok(Some(_)) => {}
            }
        }
    }

    /// Join `room` through the server's `join` handler. socketioxide sends
    /// CONNECT before it runs an async connect handler, so the very first
    /// events may find no handler yet: retry until acknowledged.
    pub async fn join(&mut self, room: &str) -> anyhow::Result<()> {
        for _ in 0..20 {
            if let Some(answer) = self
                .try_emit_with_ack("join", json!([room]), Duration::from_millis(250))
                .await?
            {
                anyhow::ensure!(answer == json!(["ok"]), "join answered {answer}");
                return Ok(());
            }
        }
        bail!("{}: join {room} never acknowledged", self.name)
    }
}

/// What the frame handlers need to answer and report.
struct ClientCtx {
    prefix: String,
    name: String,
    answer_acks: bool,
    replies: mpsc::UnboundedSender<Message>,
    inbox: mpsc::UnboundedSender<ClientMsg>,
    sid_tx: mpsc::UnboundedSender<String>,
}

fn handle_sio(sio: &str, ctx: &ClientCtx, pending_binary: &mut Option<(Event, usize)>) {
    let (prefix, inbox, sid_tx) = (ctx.prefix.as_str(), &ctx.inbox, &ctx.sid_tx);
    let Some(kind) = sio.chars().next() else {
        return;
    };
    let mut rest = &sio[1..];
    let mut attachments = 0usize;
    if kind == '5' || kind == '6' {
        let Some((count, after)) = rest.split_once('-') else {
            return;
        };
        attachments = count.parse().unwrap_or(0);
        rest = after;
    }
    rest = rest.strip_prefix(prefix).unwrap_or(rest);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..digits].parse::<u64>().ok();
    let payload = &rest[digits..];
    match kind {
        '0' => {
            let sid = serde_json::from_str::<Value>(payload)
                .ok()
                .and_then(|v| v["sid"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = sid_tx.send(sid);
        }
        '1' => {
            let _ = inbox.send(ClientMsg::Disconnected);
        }
        '2' | '5' => {
            let Ok(Value::Array(mut array)) = serde_json::from_str::<Value>(payload) else {
                return;
            };
            if array.is_empty() {
                return;
            }
            let event_name = array.remove(0).as_str().unwrap_or_default().to_owned();
            let event = Event {
                name: event_name,
                args: array,
                attachments: Vec::new(),
                ack_id: id,
            };
            if attachments > 0 {
                *pending_binary = Some((event, attachments));
            } else {
                deliver(event, ctx);
            }
        }
        '3' | '6' => {
            if let (Some(id), Ok(value)) = (id, serde_json::from_str::<Value>(payload)) {
                let _ = inbox.send(ClientMsg::Ack(id, value));
            }
        }
        _ => {}
    }
}

fn deliver(event: Event, ctx: &ClientCtx) {
    let (name, answer_acks, prefix, replies, inbox) = (
        ctx.name.as_str(),
        ctx.answer_acks,
        ctx.prefix.as_str(),
        &ctx.replies,
        &ctx.inbox,
    );
    if let (Some(id), true) = (event.ack_id, answer_acks) {
        let answer = json!([{ "client": name, "event": event.name }]);
        let _ = replies.send(Message::text(format!("43{prefix}{id}{answer}")));
    }
    let _ = inbox.send(ClientMsg::Event(event));
}

/// Poll `check` until it returns true, at most `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    e2e::wait_until(what, timeout, &mut check).await
}

pub fn arc<T>(value: T) -> Arc<T> {
    Arc::new(value)
}
