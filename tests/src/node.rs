//! Real Node peers (the scripts in `tests/node/`) driven through pipes.
//!
//! Interoperability is only proven against the real Node packages, so the
//! tests spawn `node tests/node/<script>.js`, wait for its ready line, write
//! JSON-line commands on its stdin and read JSON-line events from its stdout.
//! Every wait has a timeout; lines that do not match what a test waits for
//! are kept in a backlog so a later expectation can still find them. The
//! child is killed on drop, also when the test panics.

use std::collections::VecDeque;
use std::fmt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::{timeout_at, Instant};

use crate::node_dir;

/// How long a peer may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Default wait for one expected line.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of a peer's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 200;

/// A running Node script.
pub struct NodePeer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    backlog: VecDeque<Value>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    ready_line: String,
    next_id: u64,
}

impl fmt::Debug for NodePeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodePeer")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .field("ready_line", &self.ready_line)
            .finish()
    }
}

/// Fails with a clear message when the Node dependencies are not installed.
pub fn ensure_node_modules() -> anyhow::Result<()> {
    let modules = node_dir().join("node_modules");
    if !modules.join("socket.io").is_dir() {
        bail!(
            "{} is missing: run `make test` (or `cd tests/node && npm ci`) to install the Node peers",
            modules.display()
        );
    }
    Ok(())
}

/// `client.js`'s arguments: the URL, the name, then `extra` as is.
fn client_args(name: &str, url: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--url".to_owned(),
        url.to_owned(),
        "--name".to_owned(),
        name.to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

impl NodePeer {
    /// Spawns `node tests/node/<script> <args..>` and, when `ready_prefix` is
    /// given, waits until a stdout line starts with it.
    pub async fn spawn(
        name: &str,
        script: &str,
        args: &[String],
        envs: &[(&str, &str)],
        ready_prefix: Option<&str>,
    ) -> anyhow::Result<Self> {
        ensure_node_modules()?;
        let dir = node_dir();
        let mut command = Command::new("node");
        command
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("`node` is not installed (not found in PATH); Node >= 18 is needed for the Node peers")
            } else {
                anyhow::Error::new(err).context(format!("spawning node {script}"))
            }
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout was not piped")?;
        let stderr = child.stderr.take().context("child stderr was not piped")?;

        // Forward stderr to the test's output (cargo shows it for failing
        // tests) and keep a tail for error messages.
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        let label = name.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{label}] {line}");
                if let Ok(mut tail) = tail.lock() {
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        });

        let mut peer = Self {
            name: name.to_owned(),
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            backlog: VecDeque::new(),
            stderr_tail,
            ready_line: String::new(),
            next_id: 0,
        };
        if let Some(prefix) = ready_prefix {
            peer.wait_ready(prefix).await?;
        }
        Ok(peer)
    }

    async fn wait_ready(&mut self, prefix: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let line = match timeout_at(deadline, self.stdout.next_line()).await {
                Err(_) => bail!(
                    "{} printed no `{prefix}` line within {READY_TIMEOUT:?}; stderr:\n{}",
                    self.name,
                    self.stderr_tail()
                ),
                Ok(Err(err)) => return Err(err).context(format!("reading {} stdout", self.name)),
                Ok(Ok(None)) => {
                    let status = self.exit_status_text();
                    bail!(
                        "{} exited before printing `{prefix}` ({status}); stderr:\n{}",
                        self.name,
                        self.stderr_tail()
                    )
                }
                Ok(Ok(Some(line))) => line,
            };
            if line.starts_with(prefix) {
                self.ready_line = line;
                return Ok(());
            }
            self.backlog.push_back(parse_line(&line));
        }
    }

    /// A `server.js` cluster member (socket.io 4.8 + redis-adapter 8.3)
    /// publishing on `pub_url` and subscribing on `sub_url`, on a free port.
    /// `extra` goes to server.js as is (`--nsp /admin`, `--specific-response-channel`, ...).
    pub async fn server(
        name: &str,
        pub_url: &str,
        sub_url: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            "--port".to_owned(),
            "0".to_owned(),
            "--pub".to_owned(),
            pub_url.to_owned(),
            "--sub".to_owned(),
            sub_url.to_owned(),
            "--name".to_owned(),
            name.to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(name, "server.js", &args, &[], Some("listening ")).await
    }

    /// A `client.js` Socket.IO client connected to `url`; `extra` goes to
    /// client.js as is (`--v2`, `--nsp /admin`, `--transports polling`, ...).
    pub async fn client(name: &str, url: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let args = client_args(name, url, extra);
        Self::spawn(name, "client.js", &args, &[], Some("connected ")).await
    }

    /// A `client.js` client that `url` must refuse: the message of its
    /// `connect_error` (the client exits after it).
    pub async fn refused_client(name: &str, url: &str, extra: &[&str]) -> anyhow::Result<String> {
        let args = client_args(name, url, extra);
        let mut peer = Self::spawn(name, "client.js", &args, &[], None).await?;
        let line = peer.read_line(Instant::now() + READY_TIMEOUT).await?;
        if line["event"] == "$connect_error" {
            return Ok(line["args"][0].as_str().unwrap_or_default().to_owned());
        }
        bail!("{name} was not refused: {line}")
    }

    /// `redis_emitter.js`: Node's real `@socket.io/redis-emitter` 5.x on
    /// `redis`, driven by JSON-line commands (see the script's header).
    pub async fn redis_emitter(redis: &crate::RedisServer) -> anyhow::Result<Self> {
        let args = ["--redis".to_owned(), redis.url()];
        Self::spawn(
            "redis_emitter.js",
            "redis_emitter.js",
            &args,
            &[],
            Some("ready"),
        )
        .await
    }

    /// `legacy_emitter.js`: the 2014 `socket.io-emitter` 0.2.0 on `redis`,
    /// driven by JSON-line commands (see the script's header).
    pub async fn legacy_emitter(redis: &crate::RedisServer) -> anyhow::Result<Self> {
        let args = ["--port".to_owned(), redis.port().to_string()];
        Self::spawn(
            "legacy_emitter.js",
            "legacy_emitter.js",
            &args,
            &[],
            Some("ready"),
        )
        .await
    }

    /// `decode.js`: the Node decoders' view of bytes (see [`NodePeer::decode`]).
    pub async fn decoder() -> anyhow::Result<Self> {
        Self::spawn("decode.js", "decode.js", &[], &[], None).await
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The line that made the peer ready (`listening 1234`, `connected <sid>`).
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// The word after the ready prefix: a server's port, a client's socket id.
    pub fn ready_value(&self) -> &str {
        self.ready_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
    }

    /// The port of a `server.js` peer.
    pub fn port(&self) -> anyhow::Result<u16> {
        self.ready_value().parse().with_context(|| {
            format!(
                "{} ready line {:?} holds no port",
                self.name, self.ready_line
            )
        })
    }

    /// `http://127.0.0.1:<port>` of a `server.js` peer.
    pub fn http_url(&self) -> anyhow::Result<String> {
        Ok(format!("http://127.0.0.1:{}", self.port()?))
    }

    /// Writes one JSON line to the peer's stdin.
    pub async fn send(&mut self, command: &Value) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .with_context(|| format!("{} stdin is closed", self.name))?;
        let mut line = serde_json::to_vec(command).context("serialising a command")?;
        line.push(b'\n');
        stdin
            .write_all(&line)
            .await
            .with_context(|| format!("writing to {} stdin", self.name))?;
        stdin
            .flush()
            .await
            .with_context(|| format!("flushing {} stdin", self.name))
    }

    /// The next stdout line (backlog first), parsed as JSON (non-JSON lines
    /// become JSON strings).
    pub async fn next_line(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        if let Some(line) = self.backlog.pop_front() {
            return Ok(line);
        }
        self.read_line(Instant::now() + timeout).await
    }

    async fn read_line(&mut self, deadline: Instant) -> anyhow::Result<Value> {
        match self.read_line_before(deadline).await? {
            Some(line) => Ok(line),
            None => bail!("{}: no output before the deadline", self.name),
        }
    }

    /// The next stdout line, `None` when none comes before `deadline`; a
    /// closed stdout is an error.
    async fn read_line_before(&mut self, deadline: Instant) -> anyhow::Result<Option<Value>> {
        match timeout_at(deadline, self.stdout.next_line()).await {
            Err(_) => Ok(None),
            Ok(Err(err)) => Err(err).context(format!("reading {} stdout", self.name)),
            Ok(Ok(None)) => {
                let status = self.exit_status_text();
                bail!(
                    "{} closed its stdout ({status}); stderr:\n{}",
                    self.name,
                    self.stderr_tail()
                )
            }
            Ok(Ok(Some(line))) => Ok(Some(parse_line(&line))),
        }
    }

    /// Waits for the first line matching `matches` (searching the backlog
    /// first); lines that do not match stay in the backlog, in order.
    pub async fn expect(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        if let Some(index) = self.backlog.iter().position(&matches) {
            if let Some(found) = self.backlog.remove(index) {
                return Ok(found);
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.read_line(deadline).await.with_context(|| {
                format!(
                    "waiting {timeout:?} for {what} from {}; unmatched lines: {}",
                    self.name,
                    self.backlog_text()
                )
            })?;
            if matches(&line) {
                return Ok(line);
            }
            self.backlog.push_back(line);
        }
    }

    /// Waits for `{"event": name, ...}` (a client's received event or a
    /// server's notification) and returns the whole line.
    pub async fn expect_event(&mut self, name: &str, timeout: Duration) -> anyhow::Result<Value> {
        self.expect(&format!("event `{name}`"), timeout, |line| {
            line["event"] == name
        })
        .await
    }

    /// Checks that no `{"event": name}` line arrives within `window`. A
    /// peer that disconnects or exits meanwhile fails the check: a dead
    /// client hears nothing either. Prefer a marker ([`Self::events_before`])
    /// where one can be sent on the same path.
    pub async fn expect_no_event(&mut self, name: &str, window: Duration) -> anyhow::Result<()> {
        let who = self.name.clone();
        let check = |line: &Value| -> anyhow::Result<()> {
            match line["event"].as_str() {
                Some(event) if event == name => {
                    bail!("{who} received unexpected event `{name}`: {line}")
                }
                Some("$disconnect") => bail!("{who} disconnected: {line}"),
                _ => Ok(()),
            }
        };
        for line in &self.backlog {
            check(line)?;
        }
        let deadline = Instant::now() + window;
        while let Some(line) = self.read_line_before(deadline).await? {
            check(&line)?;
            self.backlog.push_back(line);
        }
        Ok(())
    }

    /// The events (`{"event": ..}` lines) that arrive before the event
    /// `marker`, which must come within `timeout`. Sent after something
    /// that must not arrive, on the same path, a marker proves the silence.
    /// A disconnect, an exit or a closed stdout before the marker fails.
    /// Earlier markers (events named `marker-...`) are not counted: a test
    /// sends one per check, and not every peer reads every one.
    pub async fn events_before(
        &mut self,
        marker: &str,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let line = match self.backlog.pop_front() {
                Some(line) => line,
                None => self
                    .read_line(deadline)
                    .await
                    .with_context(|| format!("waiting for marker `{marker}`"))?,
            };
            match line["event"].as_str() {
                Some(event) if event == marker => return Ok(before),
                Some("$disconnect") => {
                    bail!("{} disconnected before `{marker}`: {line}", self.name)
                }
                Some(event) if event.starts_with("marker-") => {}
                Some(_) => before.push(line),
                None => {}
            }
        }
    }

    /// Nothing arrives before `marker` (see [`Self::events_before`]).
    pub async fn nothing_before(&mut self, marker: &str, timeout: Duration) -> anyhow::Result<()> {
        let before = self.events_before(marker, timeout).await?;
        anyhow::ensure!(
            before.is_empty(),
            "{} received before `{marker}`: {before:?}",
            self.name
        );
        Ok(())
    }

    /// Lines received so far that no expectation consumed.
    pub fn backlog(&self) -> impl Iterator<Item = &Value> {
        self.backlog.iter()
    }

    /// Consumes every buffered line, matching or not.
    pub fn clear_backlog(&mut self) {
        self.backlog.clear();
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// server.js: runs an op (`{"op":"fetchSockets","rooms":["r"]}`, see
    /// server.js) and returns its `ok` value, or its `error` as `Err`.
    pub async fn server_op(
        &mut self,
        mut command: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let id = self.fresh_id();
        let op = command["op"].clone();
        command["id"] = json!(id);
        self.send(&command).await?;
        let reply = self
            .expect(&format!("reply to op {op}"), timeout, |l| l["reply"] == id)
            .await?;
        if let Some(error) = reply.get("error") {
            bail!("{} op {op} failed: {error}", self.name);
        }
        Ok(reply.get("ok").cloned().unwrap_or(Value::Null))
    }

    /// client.js: emits `event` with `args` (bytes as `{"$bin": hex}`).
    pub async fn emit(&mut self, event: &str, args: Value) -> anyhow::Result<()> {
        self.send(&json!({"cmd": "emit", "event": event, "args": args}))
            .await
    }

    /// client.js: emits with an ack callback and returns the ack's arguments.
    pub async fn emit_with_ack(
        &mut self,
        event: &str,
        args: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let id = self.fresh_id();
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.send(&json!({"cmd": "emitWithAck", "id": id, "event": event, "args": args, "timeout": millis}))
            .await?;
        self.await_ack(id, event, timeout).await
    }

    /// client.js: `join` (the gateway's default handler) and its ack.
    pub async fn join(&mut self, room: &str) -> anyhow::Result<Value> {
        self.room_command("join", room).await
    }

    /// client.js: `leave` and its ack.
    pub async fn leave(&mut self, room: &str) -> anyhow::Result<Value> {
        self.room_command("leave", room).await
    }

    async fn room_command(&mut self, cmd: &str, room: &str) -> anyhow::Result<Value> {
        let id = self.fresh_id();
        let millis = u64::try_from(EVENT_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        self.send(&json!({"cmd": cmd, "id": id, "room": room, "timeout": millis}))
            .await?;
        self.await_ack(id, cmd, EVENT_TIMEOUT + Duration::from_secs(1))
            .await
    }

    async fn await_ack(&mut self, id: u64, what: &str, timeout: Duration) -> anyhow::Result<Value> {
        // client.js answers a timeout itself after `timeout`; leave it a margin.
        let reply = self
            .expect(
                &format!("ack of {what}"),
                timeout + Duration::from_secs(1),
                |l| l["ack"] == id,
            )
            .await?;
        if let Some(error) = reply.get("error") {
            bail!("{}: {what} got no ack: {error}", self.name);
        }
        Ok(reply.get("args").cloned().unwrap_or(Value::Null))
    }

    /// decode.js: the Node decoders' view of `bytes` (kind `notepack`,
    /// `json`, `adapter`, `legacy` or `sio-packet` with attachments).
    /// Returns `Ok(Ok(value))`, or `Ok(Err(message))` when Node rejects it.
    pub async fn decode(
        &mut self,
        kind: &str,
        bytes: &[u8],
        attachments: &[&[u8]],
    ) -> anyhow::Result<Result<Value, String>> {
        let attachments: Vec<String> = attachments.iter().map(|a| crate::to_hex(a)).collect();
        self.send(&json!({"kind": kind, "hex": crate::to_hex(bytes), "attachments": attachments}))
            .await?;
        // decode.js answers every line, in order.
        let reply = self.next_line(EVENT_TIMEOUT).await?;
        if let Some(ok) = reply.get("ok") {
            return Ok(Ok(ok.clone()));
        }
        match reply.get("error") {
            Some(error) => Ok(Err(error.as_str().unwrap_or_default().to_owned())),
            None => bail!("unexpected decode.js reply {reply}"),
        }
    }

    /// Closes stdin: the scripts exit cleanly on EOF.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit (after [`NodePeer::close_stdin`] or a kill).
    pub async fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit within {timeout:?}", self.name))?
            .with_context(|| format!("waiting for {}", self.name))
    }

    /// SIGKILLs the process and reaps it.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child
            .kill()
            .await
            .with_context(|| format!("killing {}", self.name))
    }

    /// Process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    fn exit_status_text(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => format!("exit status {status}"),
            Ok(None) => "still running".to_owned(),
            Err(err) => format!("status unknown: {err}"),
        }
    }

    /// The last lines the peer wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        match self.stderr_tail.lock() {
            Ok(tail) => tail.iter().cloned().collect::<Vec<_>>().join("\n"),
            Err(_) => String::new(),
        }
    }

    fn backlog_text(&self) -> String {
        let lines: Vec<String> = self
            .backlog
            .iter()
            .rev()
            .take(20)
            .map(Value::to_string)
            .collect();
        if lines.is_empty() {
            "none".to_owned()
        } else {
            lines.into_iter().rev().collect::<Vec<_>>().join("\n  ")
        }
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        // kill_on_drop also does this; being explicit makes the order clear:
        // the process dies before its pipes are dropped.
        let _ = self.child.start_kill();
    }
}

fn parse_line(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned()))
}
