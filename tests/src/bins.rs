//! The workspace's own binaries (`gateway`, `emitter`) as child processes.
//!
//! Cross-process tests must run the real binaries, configured the way an
//! operator would (environment variables), so that configuration parsing,
//! start-up and shutdown are part of what is tested. A binary of another
//! package is not visible through `CARGO_BIN_EXE_*`, so it is built once per
//! test process with the same cargo that runs the tests and taken from the
//! target directory next to the running test executable. The build asks for
//! what `cargo test --workspace` builds plus every binary (`--bins --tests
//! --examples`, examples being what `cargo test` compiles too:
//! the gateway binary is not needed by any test of its own package), so under
//! `make test` it only links that one: any other selection unifies
//! dependency features differently (the dev-dependencies enable some) and
//! would compile part of the graph a second time, costing minutes and
//! gigabytes in CI.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

use crate::{free_port, wait_for, workspace_root};

/// How long a gateway may take from spawn to answering its admin endpoint.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_TAIL_LINES: usize = 400;

static BUILT: OnceCell<PathBuf> = OnceCell::const_new();

/// Builds the workspace binaries once and returns the directory holding them.
pub async fn bin_dir() -> anyhow::Result<PathBuf> {
    BUILT
        .get_or_try_init(|| async {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = Command::new(cargo);
            command
                .args([
                    "build",
                    "--workspace",
                    "--bins",
                    "--tests",
                    "--examples",
                    "--quiet",
                ])
                .current_dir(workspace_root());
            // Cargo describes the running test to it in these variables;
            // some build scripts (ring's) rerun when one changes, which
            // would rebuild the TLS stack and everything above it twice.
            for (name, _) in std::env::vars_os() {
                let Some(name) = name.to_str() else { continue };
                if is_test_run_variable(name) {
                    command.env_remove(name);
                }
            }
            let status = command
                .status()
                .await
                .context("building the workspace binaries")?;
            if !status.success() {
                bail!("cargo build --workspace --bins --tests failed: {status}");
            }
            // A test executable lives in target/<profile>/deps/, a binary
            // of this crate (the soak) in target/<profile>/.
            let exe = std::env::current_exe().context("locating the test executable")?;
            let parent = exe.parent().context("the executable has no directory")?;
            let dir = match parent.file_name() {
                Some(name) if name == "deps" => parent.parent().unwrap_or(parent),
                _ => parent,
            };
            Ok(dir.to_path_buf())
        })
        .await
        .cloned()
}

/// Whether cargo set `name` for the test run, rather than to configure cargo.
fn is_test_run_variable(name: &str) -> bool {
    const SET_FOR_TESTS: [&str; 7] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    SET_FOR_TESTS.contains(&name)
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
}

/// The path of a workspace binary, built if needed.
pub async fn bin_path(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().await?.join(name);
    if !path.is_file() {
        bail!("{} was not built", path.display());
    }
    Ok(path)
}

/// Lines a child printed on stdout and stderr, shared with a reader task.
#[derive(Debug, Clone, Default)]
pub struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    fn push(&self, line: String) {
        if let Ok(mut tail) = self.0.lock() {
            if tail.len() == LOG_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }

    /// Everything kept, one line each.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Whether a kept line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.0
            .lock()
            .map(|t| t.iter().any(|l| l.contains(needle)))
            .unwrap_or(false)
    }
}

fn forward<R>(label: String, tail: LogTail, reader: R)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{label}] {line}");
            tail.push(line);
        }
    });
}

/// A running `gateway` process, killed on drop.
#[derive(Debug)]
pub struct GatewayProcess {
    name: String,
    child: Child,
    port: u16,
    admin_port: u16,
    logs: LogTail,
}

impl GatewayProcess {
    /// Starts a gateway with `GATEWAY_*` variables `env` on free ports and
    /// waits until it serves its admin endpoint (it binds after the adapter
    /// has subscribed, so this also means it is in the cluster).
    pub async fn start(name: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_with_nofile(name, env, None).await
    }

    /// A new master, a replica of it and a gateway `gw` on them with `extra`
    /// variables: the smallest cluster.
    pub async fn with_new_replica(
        extra: &[(&str, &str)],
    ) -> anyhow::Result<(crate::RedisServer, crate::RedisServer, Self)> {
        let master = crate::RedisServer::master().await?;
        let replica = crate::RedisServer::replica_of(&master).await?;
        let gateway = Self::on_replica("gw", &master, &replica, extra).await?;
        Ok((master, replica, gateway))
    }

    /// [`Self::start`] publishing on `master` and subscribing on `replica`,
    /// with `extra` variables.
    pub async fn on_replica(
        name: &str,
        master: &crate::RedisServer,
        replica: &crate::RedisServer,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let master = master.url();
        let replica = replica.url();
        let mut env = vec![
            ("GATEWAY_REDIS__URL", master.as_str()),
            ("GATEWAY_REDIS__REPLICA_URLS", replica.as_str()),
        ];
        env.extend_from_slice(extra);
        Self::start(name, &env).await
    }

    /// Like [`Self::start`], with the process's open-files limit (soft and
    /// hard) set to `nofile` by `prlimit`, when given.
    pub async fn start_with_nofile(
        name: &str,
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> anyhow::Result<Self> {
        // A free port can be taken by a concurrent test between the probe
        // and the gateway's bind: then try again on fresh ports.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Self::start_on_free_ports(name, env, nofile).await {
                Err(err) if attempts < 3 && err.to_string().contains("Address already in use") => {
                    eprintln!("[{name}] port taken meanwhile, starting again on other ports");
                }
                result => return result,
            }
        }
    }

    async fn start_on_free_ports(
        name: &str,
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let admin_port = free_port()?;
        let mut all: Vec<(String, String)> = vec![
            ("GATEWAY_LISTEN".into(), format!("127.0.0.1:{port}")),
            (
                "GATEWAY_ADMIN_LISTEN".into(),
                format!("127.0.0.1:{admin_port}"),
            ),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let logs = LogTail::default();
        let mut gateway = Self {
            name: name.to_owned(),
            child: spawn_gateway(name, &all, &logs, nofile).await?,
            port,
            admin_port,
            logs,
        };
        gateway.wait_ready().await?;
        Ok(gateway)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let admin = self.admin_port;
        let name = self.name.clone();
        let logs = self.logs.clone();
        let result = wait_for(
            &format!("gateway {name} to serve /healthz"),
            START_TIMEOUT,
            || async move { Ok((http_get(admin, "/healthz").await?.0 == 200).then_some(())) },
        )
        .await;
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("gateway {name} exited with {status}:\n{}", logs.text());
        }
        result.with_context(|| format!("gateway {name} logs:\n{}", logs.text()))
    }

    /// The Socket.IO URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Socket.IO port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// The body of `GET /metrics` on the admin port.
    pub async fn scrape(&self) -> anyhow::Result<String> {
        let (status, body) = http_get(self.admin_port, "/metrics").await?;
        anyhow::ensure!(status == 200, "/metrics answered {status}");
        Ok(body)
    }

    /// Waits until the sample `name{labels}` of `/metrics` satisfies `want`;
    /// returns its value.
    pub async fn wait_metric(
        &self,
        name_and_labels: &str,
        want: impl Fn(f64) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<f64> {
        crate::wait_for(&format!("metric {name_and_labels}"), timeout, || async {
            let body = self.scrape().await?;
            Ok(metric_sample(&body, name_and_labels).filter(|v| want(*v)))
        })
        .await
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What the gateway logged so far.
    pub fn logs(&self) -> &LogTail {
        &self.logs
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal (e.g. `"TERM"`) to the gateway.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("gateway already exited")?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{signal} {pid} failed");
        }
        Ok(())
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .with_context(|| format!("gateway {} did not exit within {timeout:?}", self.name))??;
        Ok(status.code())
    }
}

async fn spawn_gateway(
    name: &str,
    env: &[(String, String)],
    logs: &LogTail,
    nofile: Option<u64>,
) -> anyhow::Result<Child> {
    let path = bin_path("gateway").await?;
    // prlimit (util-linux) execs the gateway: the pid stays the gateway's.
    let mut command = match nofile {
        Some(limit) => {
            let mut command = Command::new("prlimit");
            command
                .arg(format!("--nofile={limit}:{limit}"))
                .arg("--")
                .arg(path);
            command
        }
        None => Command::new(path),
    };
    command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(
            "RUST_LOG",
            std::env::var("E2E_GATEWAY_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().context("spawning the gateway binary")?;
    if let Some(out) = child.stdout.take() {
        forward(name.to_owned(), logs.clone(), out);
    }
    if let Some(err) = child.stderr.take() {
        forward(name.to_owned(), logs.clone(), err);
    }
    Ok(child)
}

/// A running example program (`crates/*/examples/<name>.rs`), killed on drop.
#[derive(Debug)]
pub struct ExampleProcess {
    _child: Child,
    logs: LogTail,
}

impl ExampleProcess {
    /// Starts example `name` with `env` and waits until it prints a line
    /// containing `ready`.
    pub async fn start(name: &str, env: &[(&str, &str)], ready: &str) -> anyhow::Result<Self> {
        let path = bin_dir().await?.join("examples").join(name);
        if !path.is_file() {
            bail!("{} was not built", path.display());
        }
        let logs = LogTail::default();
        let mut child = Command::new(&path)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", path.display()))?;
        if let Some(out) = child.stdout.take() {
            forward(name.to_owned(), logs.clone(), out);
        }
        if let Some(err) = child.stderr.take() {
            forward(name.to_owned(), logs.clone(), err);
        }
        let waited = wait_for(
            &format!("example {name} to be ready"),
            START_TIMEOUT,
            || {
                let ready = logs.contains(ready);
                async move { Ok(ready.then_some(())) }
            },
        )
        .await;
        if let Err(err) = waited {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("example {name} exited with {status}:\n{}", logs.text());
            }
            return Err(err.context(format!("example {name} logs:\n{}", logs.text())));
        }
        Ok(Self {
            _child: child,
            logs,
        })
    }

    /// What it printed so far.
    pub fn logs(&self) -> &LogTail {
        &self.logs
    }
}

/// Runs the `emitter` binary to completion with `args` and `env`, returning
/// (exit code, stdout, stderr).
pub async fn run_emitter(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<(Option<i32>, String, String)> {
    let path = bin_path("emitter").await?;
    let output = tokio::time::timeout(
        timeout,
        Command::new(path)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("emitter {args:?} did not finish within {timeout:?}"))?
    .context("running the emitter binary")?;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// The session id in the body of an Engine.IO polling handshake
/// (`0{"sid":"..",..}`).
pub fn engine_sid(open: &str) -> Option<String> {
    let rest = open.split("\"sid\":\"").nth(1)?;
    Some(rest.split('"').next()?.to_owned())
}

/// How long one `loadgen` run may take.
const LOADGEN_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `loadgen <args>` to completion and returns its JSON report.
pub async fn run_loadgen(args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let dir = std::env::temp_dir().join(format!(
        "loadgen-test-{}-{}",
        std::process::id(),
        crate::free_port()?
    ));
    std::fs::create_dir_all(&dir)?;
    let json = dir.join(format!(
        "{}.json",
        args.join("_").replace(['/', ':', ','], "")
    ));
    let output = tokio::time::timeout(
        LOADGEN_TIMEOUT,
        Command::new(bin_path("loadgen").await?)
            .args(args)
            .arg("--json")
            .arg(&json)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("loadgen did not finish in time")??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(
        output.status.success(),
        "loadgen {args:?} failed: {}\n{stdout}\n{stderr}",
        output.status
    );
    eprintln!("{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

/// The value of the sample line `name{labels} value` of a Prometheus text
/// exposition.
pub fn metric_sample(exposition: &str, name_and_labels: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == name_and_labels).then(|| value.parse().ok())?
    })
}

/// A minimal HTTP/1.1 GET on 127.0.0.1 returning (status, body); enough for
/// admin endpoints without pulling an HTTP client into the harness.
pub async fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    http_request(port, "GET", path, &[], None).await
}

/// A minimal HTTP/1.1 request on 127.0.0.1 returning (status, body).
pub async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let response = http_exchange(port, method, path, headers, body).await?;
    Ok((response.status, response.body))
}

/// What [`http_exchange`] got back.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header lines after the status line, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// [`http_request`] with the response's headers.
pub async fn http_exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> anyhow::Result<HttpResponse> {
    let io = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() || method != "GET" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(5), io)
        .await
        .context("HTTP request timed out")??;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .context("malformed HTTP response")?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Runs the gateway with `env` (on loopback ports) until it exits, as a
/// mis-configured one must: its exit code and everything it printed. An
/// error if it is still running after `timeout`.
pub async fn gateway_exit(
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<(Option<i32>, String)> {
    let mut command = Command::new(bin_path("gateway").await?);
    command
        .env("GATEWAY_LISTEN", "127.0.0.1:0")
        .env("GATEWAY_ADMIN_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .kill_on_drop(true);
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| anyhow::anyhow!("the gateway kept running with {env:?}"))??;
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.code(), logs))
}
