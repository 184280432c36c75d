//! Helpers shared by the emitter's integration tests: watching what reaches
//! Redis, proving that nothing did, driving Node's real
//! `@socket.io/redis-emitter` for comparison, and running the `emitter`
//! binary.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use e2e::redis::PubSubMessage;
use e2e::{NodePeer, RedisConn, RedisServer};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A connection PSUBSCRIBEd to every channel of `redis`.
pub async fn watch(redis: &RedisServer) -> anyhow::Result<RedisConn> {
    let mut conn = redis.conn().await?;
    conn.psubscribe("*").await?;
    Ok(conn)
}

/// The next message `watcher` sees.
pub async fn next_message(watcher: &mut RedisConn) -> anyhow::Result<PubSubMessage> {
    watcher.next_message(TIMEOUT).await
}

/// Proves nothing was published since the last message `watcher` consumed:
/// publishes a marker and checks it is the very next message (Redis keeps
/// the order of one server's publishes).
pub async fn assert_nothing_published(
    redis: &RedisServer,
    watcher: &mut RedisConn,
) -> anyhow::Result<()> {
    let marker = format!("marker-{}", std::process::id());
    redis
        .command(&["PUBLISH", "test-marker", marker.as_str()])
        .await?;
    let message = watcher.next_message(TIMEOUT).await?;
    if message.channel != "test-marker" || message.payload != marker.as_bytes() {
        bail!(
            "something was published: {} {}",
            message.channel,
            String::from_utf8_lossy(&message.payload)
        );
    }
    Ok(())
}

/// How many PUBLISH commands `redis` ran since it started, from its own
/// `INFO commandstats`: also those made before a watcher subscribed, such
/// as a replay right after a restart.
pub async fn publishes_since_start(redis: &RedisServer) -> anyhow::Result<u64> {
    let info = redis.command(&["INFO", "commandstats"]).await?;
    let text = info.as_str().context("INFO commandstats is not a string")?;
    let Some(line) = text.lines().find(|l| l.starts_with("cmdstat_publish:")) else {
        return Ok(0);
    };
    line.split([':', ','])
        .find_map(|field| field.strip_prefix("calls="))
        .and_then(|calls| calls.parse().ok())
        .with_context(|| format!("no call count in {line:?}"))
}

/// Node's real `@socket.io/redis-emitter`, see tests/node/node_emitter.js.
pub async fn node_emitter(redis: &RedisServer) -> anyhow::Result<NodePeer> {
    NodePeer::redis_emitter(redis).await
}

/// Runs one command on the Node emitter and waits until its PUBLISH is done.
pub async fn node_run(peer: &mut NodePeer, id: u64, mut command: Value) -> anyhow::Result<()> {
    command["id"] = json!(id);
    peer.send(&command).await?;
    let reply = peer
        .expect("done", TIMEOUT, |line| line["done"] == id)
        .await?;
    if let Some(error) = reply.get("error") {
        bail!("node emitter failed: {error}");
    }
    Ok(())
}

/// Path of the built `emitter` binary.
pub fn emitter_bin() -> &'static str {
    env!("CARGO_BIN_EXE_emitter")
}

/// Output of one `emitter` CLI run.
#[derive(Debug)]
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `emitter` CLI with `args` (no inherited `EMITTER_*` settings).
pub async fn run_cli(args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<CliRun> {
    let mut command = Command::new(emitter_bin());
    command.args(args).stdin(Stdio::null()).kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("EMITTER_") {
            command.env_remove(key);
        }
    }
    command.envs(envs.iter().copied());
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .context("the emitter CLI did not finish within 30 s")?
        .context("running the emitter CLI")?;
    Ok(CliRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// `emitter serve` as a child process, killed on drop.
pub struct Service {
    child: Child,
    pub addr: String,
}

impl Service {
    /// Starts `emitter serve --listen 127.0.0.1:0` with `envs`, and waits
    /// for its `listening <addr>` line.
    pub async fn start(envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = Command::new(emitter_bin());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, _) in std::env::vars() {
            if key.starts_with("EMITTER_") {
                command.env_remove(key);
            }
        }
        command.envs(envs.iter().copied());
        let mut child = command.spawn().context("spawning emitter serve")?;
        let stdout = child.stdout.take().context("stdout not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .context("emitter serve printed no ready line in time")?
            .context("reading emitter serve stdout")?
            .context("emitter serve exited before it was ready")?;
        let addr = line
            .strip_prefix("listening ")
            .with_context(|| format!("unexpected ready line {line:?}"))?
            .to_owned();
        Ok(Self { child, addr })
    }

    /// One HTTP/1.1 request; returns the status and the body parsed as JSON
    /// (non-JSON bodies become a JSON string).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<(u16, Value)> {
        http_request(&self.addr, method, path, headers, body).await
    }

    /// `POST path` with a JSON body and no extra header.
    pub async fn post(&self, path: &str, body: &str) -> anyhow::Result<(u16, Value)> {
        self.request("POST", path, &[], body).await
    }

    /// SIGKILLs the service.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing emitter serve")
    }
}

/// A minimal HTTP/1.1 client (`Connection: close`, read to the end): enough
/// for the tests and independent of the server's HTTP stack.
pub async fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<(u16, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .context("connecting")?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream
            .write_all(request.as_bytes())
            .await
            .context("writing")?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.context("reading")?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| format!("{method} {path}: no answer within {TIMEOUT:?}"))??;
    let text = String::from_utf8(response).context("response is not UTF-8")?;
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .context("response has no header end")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .context("no status code")?
        .parse()
        .context("bad status code")?;
    anyhow::ensure!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "chunked responses are not handled by this test client"
    );
    let body = serde_json::from_str(payload).unwrap_or_else(|_| Value::String(payload.to_owned()));
    Ok((status, body))
}
