//! Real `redis-server` processes for the tests, and a tiny RESP client.
//!
//! The cluster publishes on a master and subscribes on replicas, so the tests
//! need real masters and replicas they can kill, freeze (SIGSTOP) and restart
//! on the same port. The RESP client is deliberately small (a few commands,
//! PSUBSCRIBE to watch traffic): it must not share code with the adapter it
//! is used to check.

use std::fmt;
use std::fs::{self, File};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::free_port;
use crate::wait::wait_for;

/// How long a fresh server (or a replica's first sync) may take to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest bulk string the test client accepts; replies are small in tests.
const MAX_BULK_LEN: usize = 64 * 1024 * 1024;
/// Largest array the test client accepts.
const MAX_ARRAY_LEN: usize = 1024 * 1024;

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// The text of a simple or bulk string reply.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Resp::Simple(s) => Some(s),
            Resp::Bulk(Some(b)) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The bytes of a bulk string reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Resp::Bulk(Some(b)) => Some(b),
            Resp::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Resp::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Resp]> {
        match self {
            Resp::Array(Some(items)) => Some(items),
            _ => None,
        }
    }
}

/// A published message seen by a [`RedisConn`] in subscribed mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubMessage {
    pub channel: String,
    pub payload: Vec<u8>,
}

/// One RESP connection: commands, or PSUBSCRIBE and read messages.
#[derive(Debug)]
pub struct RedisConn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl RedisConn {
    pub async fn connect(port: u16) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("connecting to redis on 127.0.0.1:{port}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (read, write) = stream.into_split();
        Ok(Self {
            reader: BufReader::new(read),
            writer: write,
        })
    }

    /// Sends one command without reading the reply.
    pub async fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> anyhow::Result<()> {
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            let arg = arg.as_ref();
            frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            frame.extend_from_slice(arg);
            frame.extend_from_slice(b"\r\n");
        }
        self.writer
            .write_all(&frame)
            .await
            .context("writing a redis command")
    }

    /// Sends a command and reads its reply; an error reply becomes `Err`.
    pub async fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> anyhow::Result<Resp> {
        self.send(args).await?;
        match self.read().await? {
            Resp::Error(message) => bail!("redis error: {message}"),
            reply => Ok(reply),
        }
    }

    /// Reads the next reply or pushed message.
    pub fn read(&mut self) -> Pin<Box<dyn Future<Output = anyhow::Result<Resp>> + Send + '_>> {
        Box::pin(async move {
            let line = self.read_line().await?;
            let (kind, rest) = line.split_at(1);
            Ok(match kind {
                "+" => Resp::Simple(rest.to_owned()),
                "-" => Resp::Error(rest.to_owned()),
                ":" => Resp::Int(
                    rest.parse()
                        .with_context(|| format!("bad integer reply {rest:?}"))?,
                ),
                "$" => {
                    let len: i64 = rest
                        .parse()
                        .with_context(|| format!("bad bulk length {rest:?}"))?;
                    if len < 0 {
                        Resp::Bulk(None)
                    } else {
                        let len = usize::try_from(len).context("bulk length")?;
                        if len > MAX_BULK_LEN {
                            bail!("bulk reply of {len} bytes is over the test client's limit");
                        }
                        let mut buf = vec![0; len + 2];
                        self.reader
                            .read_exact(&mut buf)
                            .await
                            .context("reading a bulk reply")?;
                        buf.truncate(len);
                        Resp::Bulk(Some(buf))
                    }
                }
                "*" => {
                    let len: i64 = rest
                        .parse()
                        .with_context(|| format!("bad array length {rest:?}"))?;
                    if len < 0 {
                        Resp::Array(None)
                    } else {
                        let len = usize::try_from(len).context("array length")?;
                        if len > MAX_ARRAY_LEN {
                            bail!("array reply of {len} items is over the test client's limit");
                        }
                        let mut items = Vec::with_capacity(len.min(64));
                        for _ in 0..len {
                            items.push(self.read().await?);
                        }
                        Resp::Array(Some(items))
                    }
                }
                other => bail!("unexpected RESP type byte {other:?}"),
            })
        })
    }

    async fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .await
            .context("reading from redis")?;
        if n == 0 {
            bail!("redis closed the connection");
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            bail!("empty RESP line");
        }
        Ok(line.to_owned())
    }

    /// PSUBSCRIBEs to `pattern` and waits for the confirmation.
    pub async fn psubscribe(&mut self, pattern: &str) -> anyhow::Result<()> {
        self.send(&["PSUBSCRIBE", pattern]).await?;
        let reply = self.read().await?;
        match reply
            .as_array()
            .and_then(|items| items.first())
            .and_then(Resp::as_str)
        {
            Some("psubscribe") => Ok(()),
            _ => bail!("unexpected PSUBSCRIBE reply {reply:?}"),
        }
    }

    /// SUBSCRIBEs to `channel` and waits for the confirmation.
    pub async fn subscribe(&mut self, channel: &str) -> anyhow::Result<()> {
        self.send(&["SUBSCRIBE", channel]).await?;
        let reply = self.read().await?;
        match reply
            .as_array()
            .and_then(|items| items.first())
            .and_then(Resp::as_str)
        {
            Some("subscribe") => Ok(()),
            _ => bail!("unexpected SUBSCRIBE reply {reply:?}"),
        }
    }

    /// Next `message` / `pmessage` on a subscribed connection, within `timeout`.
    pub async fn next_message(&mut self, timeout: Duration) -> anyhow::Result<PubSubMessage> {
        tokio::time::timeout(timeout, async {
            loop {
                let reply = self.read().await?;
                let Some(items) = reply.as_array() else {
                    continue;
                };
                let kind = items.first().and_then(Resp::as_str);
                let (channel, payload) = match (kind, items.len()) {
                    (Some("message"), 3) => (&items[1], &items[2]),
                    (Some("pmessage"), 4) => (&items[2], &items[3]),
                    _ => continue,
                };
                let channel = channel
                    .as_str()
                    .context("channel name is not UTF-8")?
                    .to_owned();
                let payload = payload
                    .as_bytes()
                    .context("message payload is not a bulk string")?
                    .to_vec();
                return Ok(PubSubMessage { channel, payload });
            }
        })
        .await
        .with_context(|| format!("no pub/sub message within {timeout:?}"))?
    }
}

/// A `redis-server` child process on 127.0.0.1, killed on drop.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    master_port: Option<u16>,
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("master_port", &self.master_port)
            .field("pid", &self.pid())
            .finish()
    }
}

impl RedisServer {
    /// Starts a standalone master.
    pub async fn master() -> anyhow::Result<Self> {
        Self::start(None, &[]).await
    }

    /// Starts a replica of `master` and waits until its link is up.
    pub async fn replica_of(master: &RedisServer) -> anyhow::Result<Self> {
        Self::start(Some(master.port), &[]).await
    }

    /// Starts a server with extra `redis-server` arguments (`["--maxclients", "100"]`).
    pub async fn start(master_port: Option<u16>, extra_args: &[&str]) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "e2e-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut server = Self {
            port: 0,
            dir,
            master_port,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        // Another process may take the port between free_port() and bind:
        // retry on a fresh port a few times.
        let mut last_error = None;
        for _ in 0..5 {
            server.port = free_port()?;
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(err) => {
                    server.kill();
                    let port_taken = server.log_tail().contains("Address already in use");
                    last_error = Some(err);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    fn spawn_and_wait(&mut self) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async move {
            self.spawn()?;
            self.wait_ready().await
        })
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = File::create(self.log_path()).context("creating the redis log file")?;
        let log_err = log
            .try_clone()
            .context("cloning the redis log file handle")?;
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir);
        if let Some(master_port) = self.master_port {
            command
                .args(["--replicaof", "127.0.0.1"])
                .arg(master_port.to_string());
        }
        command
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command.spawn().map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("redis-server is not installed (not found in PATH): run `make test`, which installs it")
            } else {
                anyhow::Error::new(err).context("spawning redis-server")
            }
        })?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let port = self.port;
        let is_replica = self.master_port.is_some();
        let result = wait_for(
            &format!("redis-server on port {port} to be ready"),
            READY_TIMEOUT,
            || {
                let exited = self.has_exited();
                async move {
                    if exited {
                        bail!("redis-server exited");
                    }
                    let mut conn = RedisConn::connect(port).await?;
                    let pong = conn.command(&["PING"]).await?;
                    if pong.as_str() != Some("PONG") {
                        return Ok(None);
                    }
                    if is_replica {
                        let info = conn.command(&["INFO", "replication"]).await?;
                        let info = info.as_str().unwrap_or_default();
                        return Ok(info.contains("master_link_status:up").then_some(()));
                    }
                    Ok(Some(()))
                }
            },
        )
        .await;
        result.with_context(|| format!("redis log:\n{}", self.log_tail()))
    }

    fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The master this server replicates, if it was started as a replica.
    pub fn master_port(&self) -> Option<u16> {
        self.master_port
    }

    /// A new connection to this server.
    pub async fn conn(&self) -> anyhow::Result<RedisConn> {
        RedisConn::connect(self.port).await
    }

    /// Runs one command on a fresh connection.
    pub async fn command<A: AsRef<[u8]>>(&self, args: &[A]) -> anyhow::Result<Resp> {
        self.conn().await?.command(args).await
    }

    /// `PUBSUB NUMSUB channel` on this server.
    pub async fn numsub(&self, channel: &str) -> anyhow::Result<i64> {
        let reply = self.command(&["PUBSUB", "NUMSUB", channel]).await?;
        reply
            .as_array()
            .and_then(|items| items.get(1))
            .and_then(Resp::as_int)
            .with_context(|| format!("unexpected PUBSUB NUMSUB reply {reply:?}"))
    }

    /// Whether `INFO replication` shows the link to the master up.
    pub async fn master_link_up(&self) -> anyhow::Result<bool> {
        let info = self.command(&["INFO", "replication"]).await?;
        Ok(info
            .as_str()
            .unwrap_or_default()
            .contains("master_link_status:up"))
    }

    /// Turns this replica into a master (`REPLICAOF NO ONE`).
    pub async fn promote(&mut self) -> anyhow::Result<()> {
        self.command(&["REPLICAOF", "NO", "ONE"]).await?;
        self.master_port = None;
        Ok(())
    }

    /// SIGKILLs the process (no-op when it is not running).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL works on a stopped process too; reap it to free the port.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the process (SIGSTOP): connections stay open, nothing answers.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// Resumes a process frozen with [`RedisServer::stop`] (SIGCONT).
    pub fn cont(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("redis-server is not running")?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .with_context(|| format!("running kill -{signal} {pid}"))?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed: {status}");
        Ok(())
    }

    /// Kills the process if it runs, then starts it again on the same port
    /// (empty: no persistence) and waits until it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn_and_wait()
            .await
            .with_context(|| format!("restarting redis-server on port {}", self.port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn master_replica_publish_and_restart() {
        let master = RedisServer::master().await.unwrap();
        let mut replica = RedisServer::replica_of(&master).await.unwrap();
        assert!(replica.master_link_up().await.unwrap());

        // A PUBLISH on the master reaches a subscriber on the replica.
        let mut sub = replica.conn().await.unwrap();
        sub.psubscribe("chan*").await.unwrap();
        master
            .command(&["PUBLISH", "chan1", "hello"])
            .await
            .unwrap();
        let message = sub.next_message(Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            message,
            PubSubMessage {
                channel: "chan1".into(),
                payload: b"hello".to_vec()
            }
        );

        // Frozen: no answer. Resumed: answers again.
        replica.stop().unwrap();
        let mut frozen = replica.conn().await.unwrap();
        frozen.send(&["PING"]).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), frozen.read())
                .await
                .is_err()
        );
        replica.cont().unwrap();
        let pong = tokio::time::timeout(Duration::from_secs(5), frozen.read())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pong.as_str(), Some("PONG"));

        // Killed: refused. Restarted on the same port: linked again.
        let port = replica.port();
        replica.kill();
        assert!(RedisConn::connect(port).await.is_err());
        replica.restart().await.unwrap();
        assert_eq!(replica.port(), port);
        assert!(replica.master_link_up().await.unwrap());
        assert_eq!(master.numsub("nobody").await.unwrap(), 0);
    }
}
