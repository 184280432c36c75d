//! The benchmark tools against the seed topology (a Redis master, two
//! replicas, two gateways each subscribed on its own replica): `loadgen`
//! must count every delivery at a low rate (so a loss reported by
//! `make bench` is the cluster's, not the harness's), and `siocat` must
//! reproduce the seed's demo.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use e2e::bins::{bin_path, run_emitter, run_loadgen as loadgen};
use e2e::{GatewayProcess, RedisServer};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

const LINE_TIMEOUT: Duration = Duration::from_secs(10);

struct Cluster {
    master: RedisServer,
    _replicas: Vec<RedisServer>,
    gateways: Vec<GatewayProcess>,
}

impl Cluster {
    async fn start() -> anyhow::Result<Self> {
        let master = RedisServer::master().await?;
        let replicas = vec![
            RedisServer::replica_of(&master).await?,
            RedisServer::replica_of(&master).await?,
        ];
        let mut gateways = Vec::new();
        for (index, replica) in replicas.iter().enumerate() {
            let master_url = master.url();
            let replica_url = replica.url();
            let env = [
                ("GATEWAY_REDIS__URL", master_url.as_str()),
                ("GATEWAY_REDIS__REPLICA_URLS", replica_url.as_str()),
                ("GATEWAY_REDIS__SUBSCRIBER_SELECTION", "first"),
            ];
            gateways.push(GatewayProcess::start(&format!("gw-{index}"), &env).await?);
        }
        Ok(Self {
            master,
            _replicas: replicas,
            gateways,
        })
    }

    fn urls(&self) -> String {
        self.gateways
            .iter()
            .map(GatewayProcess::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn pids(&self) -> String {
        self.gateways
            .iter()
            .filter_map(GatewayProcess::pid)
            .map(|pid| pid.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn number(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_counts_every_delivery_on_a_two_gateway_cluster() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let urls = cluster.urls();
    let pids = cluster.pids();
    let master = cluster.master.url();
    let common = [
        "--url",
        &urls,
        "--clients",
        "40",
        "--duration",
        "1.5",
        "--gateway-pids",
        &pids,
    ];

    // Client-originated fanout: the relay skips the sender, so each message
    // is expected 39 times.
    let mut args = vec!["fanout", "--publishers", "2", "--rate", "20"];
    args.extend_from_slice(&common);
    let report = loadgen(&args).await?;
    assert_eq!(number(&report, "connected"), 40, "{report}");
    assert_eq!(number(&report, "connect_errors"), 0, "{report}");
    let step = &report["steps"][0];
    let published = number(step, "published");
    assert!(published >= 20, "published only {published}: {step}");
    assert_eq!(number(step, "expected"), published * 39, "{step}");
    assert_eq!(number(step, "received"), published * 39, "{step}");
    assert_eq!(number(step, "lost"), 0, "{step}");
    assert_eq!(number(step, "duplicates"), 0, "{step}");
    assert_eq!(number(&step["latency"], "count"), published * 39, "{step}");
    assert!(
        step["deliveries_per_cpu_sec"]
            .as_f64()
            .is_some_and(|d| d > 0.0),
        "{step}"
    );

    // Emitter-originated fanout on the master: every client, all 40.
    let mut args = vec![
        "fanout", "--source", "emitter", "--redis", &master, "--rate", "20",
    ];
    args.extend_from_slice(&common);
    let report = loadgen(&args).await?;
    let step = &report["steps"][0];
    let published = number(step, "published");
    assert!(published >= 20, "{step}");
    assert_eq!(number(step, "received"), published * 40, "{step}");
    assert_eq!(number(step, "lost"), 0, "{step}");
    assert_eq!(number(step, "duplicates"), 0, "{step}");

    // Rooms through the `publish` handler: 40 clients in rooms of 10.
    let mut args = vec![
        "rooms",
        "--room-size",
        "10",
        "--publishers",
        "4",
        "--rate",
        "40",
    ];
    args.extend_from_slice(&common);
    let report = loadgen(&args).await?;
    assert_eq!(number(&report, "rooms"), 4, "{report}");
    assert_eq!(number(&report, "join_errors"), 0, "{report}");
    let step = &report["steps"][0];
    let expected = number(step, "expected");
    // Each publish reaches 9 or 10 members (9 when the sender is one).
    let published = number(step, "published");
    assert!(
        expected >= published * 9 && expected <= published * 10,
        "{step}"
    );
    assert_eq!(number(step, "received"), expected, "{step}");
    assert_eq!(number(step, "lost"), 0, "{step}");
    assert_eq!(number(step, "duplicates"), 0, "{step}");
    Ok(())
}

struct Siocat {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Siocat {
    async fn start(url: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(bin_path("siocat").await?)
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let stderr = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let mut siocat = Self {
            child,
            stdout,
            stderr,
        };
        let status = siocat.line_from_stderr().await?;
        anyhow::ensure!(status.starts_with("connected "), "siocat said {status:?}");
        Ok(siocat)
    }

    async fn line_from_stderr(&mut self) -> anyhow::Result<String> {
        tokio::time::timeout(LINE_TIMEOUT, self.stderr.next_line())
            .await
            .context("no status line from siocat")??
            .context("siocat closed stderr")
    }

    async fn next_line(&mut self) -> anyhow::Result<String> {
        tokio::time::timeout(LINE_TIMEOUT, self.stdout.next_line())
            .await
            .context("no event line from siocat")??
            .context("siocat closed stdout")
    }

    async fn type_line(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.child.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Closes stdin and waits for a clean exit.
    async fn finish(mut self) -> anyhow::Result<Option<i32>> {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(LINE_TIMEOUT, self.child.wait())
            .await
            .context("siocat did not exit after end of input")??;
        Ok(status.code())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siocat_sessions_on_two_gateways_see_each_other_and_the_emitter() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let mut a = Siocat::start(&cluster.gateways[0].url()).await?;
    let mut b = Siocat::start(&cluster.gateways[1].url()).await?;

    a.type_line("hello from a").await?;
    assert_eq!(b.next_line().await?, r#"message ["hello from a"]"#);
    b.type_line("hello from b").await?;
    // The relay skips the sender: A's next line is B's, not its own echo.
    assert_eq!(a.next_line().await?, r#"message ["hello from b"]"#);

    let master = cluster.master.url();
    let (code, stdout, stderr) = run_emitter(
        &["emit", "message", "Hello!"],
        &[("EMITTER_REDIS__URL", master.as_str())],
        Duration::from_secs(20),
    )
    .await?;
    assert_eq!(code, Some(0), "emitter failed: {stdout}\n{stderr}");
    assert_eq!(a.next_line().await?, r#"message ["Hello!"]"#);
    assert_eq!(b.next_line().await?, r#"message ["Hello!"]"#);

    assert_eq!(a.finish().await?, Some(0));
    assert_eq!(b.finish().await?, Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_clients_connect_with_tokens_to_a_gateway_with_auth() -> anyhow::Result<()> {
    let secret = "loadgen test secret";
    let gateway =
        GatewayProcess::start("auth-loadgen", &[("GATEWAY_AUTH__JWT_SECRET", secret)]).await?;
    let url = gateway.url();
    let args = [
        "fanout",
        "--url",
        &url,
        "--clients",
        "20",
        "--rate",
        "10",
        "--duration",
        "1",
        "--auth-secret",
        secret,
    ];
    let report = loadgen(&args).await?;
    assert_eq!(number(&report, "connected"), 20, "{report}");
    let step = &report["steps"][0];
    let published = number(step, "published");
    assert!(published >= 5, "{step}");
    assert_eq!(number(step, "received"), published * 19, "{step}");
    // Without the secret every client is refused.
    let refused = loadgen(&args[..args.len() - 2]).await;
    assert!(refused.is_err() || refused.is_ok_and(|r| number(&r, "connected") == 0));
    Ok(())
}
