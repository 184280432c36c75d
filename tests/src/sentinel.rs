//! Real Redis Sentinel processes (`redis-server <conf> --sentinel`).
//!
//! The failover tests need a real election: three sentinels watching one
//! master with a short `down-after-milliseconds`, so that killing the master
//! promotes a replica within a couple of seconds. A sentinel rewrites its
//! config file as it learns the topology, so each one gets its own directory.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::redis::{RedisConn, Resp};
use crate::wait::wait_for;
use crate::{free_port, RedisServer};

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// The master group name every test sentinel monitors.
pub const MASTER_NAME: &str = "mymaster";

/// How fast the sentinels react (milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct SentinelTiming {
    /// `sentinel down-after-milliseconds`.
    pub down_after_ms: u64,
    /// `sentinel failover-timeout`.
    pub failover_timeout_ms: u64,
}

impl Default for SentinelTiming {
    fn default() -> Self {
        Self {
            down_after_ms: 1000,
            failover_timeout_ms: 3000,
        }
    }
}

/// A `redis-server --sentinel` child process on 127.0.0.1, killed on drop.
pub struct SentinelServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl std::fmt::Debug for SentinelServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelServer")
            .field("port", &self.port)
            .finish()
    }
}

impl SentinelServer {
    /// Starts one sentinel monitoring `master` (quorum 2) and waits until it
    /// answers for the master group.
    pub async fn start(master: &RedisServer, timing: SentinelTiming) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "e2e-sentinel-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let mut sentinel = Self {
                port,
                dir: dir.clone(),
                child: None,
            };
            let conf = format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} {down}\n\
                 sentinel failover-timeout {MASTER_NAME} {failover}\n\
                 sentinel parallel-syncs {MASTER_NAME} 2\n",
                dir = dir.display(),
                master = master.port(),
                down = timing.down_after_ms,
                failover = timing.failover_timeout_ms,
            );
            let conf_path = dir.join("sentinel.conf");
            fs::write(&conf_path, conf).context("writing sentinel.conf")?;
            let log = File::create(dir.join("sentinel.log")).context("creating sentinel.log")?;
            let log_err = log.try_clone().context("cloning the log handle")?;
            let child = Command::new("redis-server")
                .arg(&conf_path)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .map_err(|err| {
                    if err.kind() == std::io::ErrorKind::NotFound {
                        anyhow::anyhow!(
                            "redis-server is not installed: run `make test`, which installs it"
                        )
                    } else {
                        anyhow::Error::new(err).context("spawning redis-server --sentinel")
                    }
                })?;
            sentinel.child = Some(child);
            match sentinel.master_addr_within(Duration::from_secs(10)).await {
                Ok(_) => {
                    // Take ownership of the directory only once running.
                    return Ok(sentinel);
                }
                Err(err) => {
                    let taken = sentinel.log_tail().contains("Address already in use");
                    sentinel.kill();
                    // Keep the directory for the retry: do not run Drop's cleanup.
                    sentinel.dir = PathBuf::new();
                    last_error = Some(err);
                    if !taken {
                        break;
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("sentinel did not start")))
    }

    /// Starts three sentinels on `master` and waits until they know each
    /// other (a failover needs a majority) and every replica in `replicas`
    /// is listed as in sync.
    pub async fn start_three(
        master: &RedisServer,
        replicas: &[&RedisServer],
        timing: SentinelTiming,
    ) -> anyhow::Result<Vec<Self>> {
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(Self::start(master, timing).await?);
        }
        for sentinel in &sentinels {
            let port = sentinel.port;
            wait_for(
                &format!("sentinel {port} to see the two others"),
                Duration::from_secs(20),
                || async move {
                    let mut conn = RedisConn::connect(port).await?;
                    let reply = conn
                        .command(&["SENTINEL", "SENTINELS", MASTER_NAME])
                        .await?;
                    Ok((reply.as_array().map_or(0, <[Resp]>::len) >= 2).then_some(()))
                },
            )
            .await?;
            let wanted: Vec<u16> = replicas.iter().map(|r| r.port()).collect();
            sentinel
                .wait_replicas_in_sync(&wanted, Duration::from_secs(20))
                .await?;
        }
        Ok(sentinels)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The comma-separated URLs of `sentinels`, for `*_SENTINEL_URLS`.
    pub fn urls(sentinels: &[Self]) -> String {
        sentinels
            .iter()
            .map(Self::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn master_addr_within(&self, timeout: Duration) -> anyhow::Result<u16> {
        let port = self.port;
        wait_for(
            &format!("sentinel {port} to answer"),
            timeout,
            || async move {
                let mut conn = RedisConn::connect(port).await?;
                master_port(&mut conn).await.map(Some)
            },
        )
        .await
    }

    /// The port of the master this sentinel currently names.
    pub async fn master_port(&self) -> anyhow::Result<u16> {
        let mut conn = RedisConn::connect(self.port).await?;
        master_port(&mut conn).await
    }

    /// Waits until the sentinel names a master other than `old_port`; returns it.
    pub async fn wait_new_master(&self, old_port: u16, timeout: Duration) -> anyhow::Result<u16> {
        let port = self.port;
        wait_for(
            &format!("sentinel {port} to promote a new master"),
            timeout,
            || async move {
                let mut conn = RedisConn::connect(port).await?;
                let master = master_port(&mut conn).await?;
                Ok((master != old_port).then_some(master))
            },
        )
        .await
    }

    /// Waits until `SENTINEL REPLICAS` lists every port of `wanted` up and
    /// with its master link ok.
    pub async fn wait_replicas_in_sync(
        &self,
        wanted: &[u16],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let port = self.port;
        wait_for(
            &format!("sentinel {port} to list replicas {wanted:?} in sync"),
            timeout,
            || async move {
                let mut conn = RedisConn::connect(port).await?;
                let reply = conn.command(&["SENTINEL", "REPLICAS", MASTER_NAME]).await?;
                let in_sync = in_sync_replica_ports(&reply);
                Ok(wanted.iter().all(|p| in_sync.contains(p)).then_some(()))
            },
        )
        .await
    }

    /// The last lines of the sentinel's log.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.join("sentinel.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGKILLs the process (no-op when it is not running).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SentinelServer {
    fn drop(&mut self) {
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

async fn master_port(conn: &mut RedisConn) -> anyhow::Result<u16> {
    let reply = conn
        .command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])
        .await?;
    let Some([_host, port]) = reply.as_array() else {
        bail!("unexpected master address reply {reply:?}");
    };
    port.as_str()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("bad port in {reply:?}"))
}

/// Ports of the replicas of a `SENTINEL REPLICAS` reply that are up and in sync.
fn in_sync_replica_ports(reply: &Resp) -> Vec<u16> {
    reply
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| {
            let fields = entry.as_array()?;
            let get = |key: &str| {
                fields
                    .chunks_exact(2)
                    .find(|kv| kv[0].as_str() == Some(key))
                    .and_then(|kv| kv[1].as_str())
            };
            let flags = get("flags")?;
            let down = flags
                .split(',')
                .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
            (!down && get("master-link-status")? == "ok")
                .then(|| get("port")?.parse().ok())
                .flatten()
        })
        .collect()
}
