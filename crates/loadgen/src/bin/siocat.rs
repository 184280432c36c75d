//! `siocat`: a netcat for Socket.IO (the seed's `iocat`, in Rust).
//!
//! Connects over an Engine.IO 4 WebSocket, prints every received event as
//! `<event> <args as a JSON array>` on stdout, and emits each line typed on
//! stdin as one string argument of `--event` (`message` by default). Status
//! goes to stderr (`connected <sid>` once ready), so stdout carries events
//! only. Exits 0 on end of input or Ctrl-C, 1 if the server goes away.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use loadgen::client::{lean_ws_config, Connection, Incoming, Target};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// How long a `--join` may wait for the server's acknowledgement.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Connects to a Socket.IO server: prints events, emits stdin lines"
)]
struct Cli {
    /// Server URL, e.g. http://127.0.0.1:3000
    url: String,
    /// Namespace to connect to.
    #[arg(long, default_value = "/")]
    nsp: String,
    /// Event name that stdin lines are emitted as.
    #[arg(long, default_value = "message")]
    event: String,
    /// Rooms to join (the gateway's `join` event) before reading stdin.
    #[arg(long)]
    join: Vec<String>,
    /// A JWT for a gateway with authentication on, sent as the CONNECT
    /// auth payload `{"token": ..}`.
    #[arg(long, env = "SIOCAT_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let target = Target::resolve(&cli.url).await?;
    let auth = cli
        .token
        .as_ref()
        .map(|token| serde_json::json!({ "token": token }).to_string());
    let mut conn = Connection::connect(&target, None, &cli.nsp, auth.as_deref(), lean_ws_config())
        .await
        .with_context(|| format!("connecting to {}", cli.url))?;
    let mut stdout = std::io::stdout();
    for room in &cli.join {
        let id = conn
            .emit_with_ack("join", &[Value::String(room.clone())])
            .await?;
        let acked = tokio::time::timeout(JOIN_TIMEOUT, async {
            loop {
                match conn.next_incoming().await? {
                    Incoming::Ack { id: got, args } if got == id => return anyhow::Ok(args),
                    other => print_incoming(&mut stdout, &other)?,
                }
            }
        })
        .await
        .with_context(|| format!("no acknowledgement for joining {room}"))??;
        if acked.first() != Some(&Value::Bool(true)) {
            anyhow::bail!("joining {room} refused: {}", Value::Array(acked));
        }
    }
    eprintln!("connected {}", conn.sid);

    // Stdin is read on its own task so a slow terminal never blocks events.
    let (lines_tx, mut lines) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = stdin.next_line().await {
            if lines_tx.send(line).await.is_err() {
                break;
            }
        }
    });

    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => {
                    let line = line.trim_end_matches('\r');
                    if !line.is_empty() {
                        conn.emit(&cli.event, &[Value::String(line.to_owned())]).await?;
                    }
                }
                None => break,
            },
            incoming = conn.next_incoming() => match incoming {
                Ok(incoming) => print_incoming(&mut stdout, &incoming)?,
                Err(err) => {
                    eprintln!("disconnected: {err}");
                    std::process::exit(1);
                }
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // Best effort: the process exits either way.
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
    Ok(())
}

fn print_incoming(out: &mut impl Write, incoming: &Incoming) -> std::io::Result<()> {
    match incoming {
        Incoming::Event { name, args } => {
            writeln!(out, "{name} {}", Value::Array(args.clone()))?;
        }
        // Acks only answer our joins; nothing to show.
        Incoming::Ack { .. } => return Ok(()),
    }
    out.flush()
}
