//! `emitter`: push Socket.IO events into the cluster from a shell or over
//! HTTP. One-shot commands (`emit`, `join`, `leave`, `disconnect`,
//! `server-side-emit`) publish once and exit non-zero when Redis did not take
//! the message; `serve` runs the HTTP JSON API.
//!
//! Exit codes: 0 published, 1 Redis or runtime failure, 2 bad usage or a
//! malformed argument.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use emitter::http::{self, AppState};
use emitter::metrics::Metrics;
use emitter::{parse_cli_arg, ArgError, BroadcastOperator, Emitter, Settings};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "emitter",
    version,
    about = "Push Socket.IO events into a Redis-backed Socket.IO cluster"
)]
struct Cli {
    /// TOML configuration file (keys as in EMITTER_* variables: redis.url, redis.prefix, listen, api_token).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Redis master URL [env: EMITTER_REDIS__URL] [default: redis://127.0.0.1:6379].
    #[arg(long, global = true, value_name = "URL")]
    redis: Option<String>,
    /// Channel prefix shared with the servers [env: EMITTER_REDIS__PREFIX] [default: socket.io].
    #[arg(long, global = true, value_name = "P")]
    prefix: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Which sockets an operation targets.
#[derive(Debug, Args)]
struct Selectors {
    /// Namespace.
    #[arg(long, default_value = "/", value_name = "NSP")]
    nsp: String,
    /// Target room (repeatable); none means every socket of the namespace.
    #[arg(long = "to", visible_alias = "in", value_name = "ROOM")]
    to: Vec<String>,
    /// Excluded room (repeatable); a socket id is a room.
    #[arg(long, value_name = "ROOM")]
    except: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Emit EVENT with ARGs to the selected sockets. Each ARG is JSON (42, true, null, {"a":1}, "quoted",
    /// {"$binary":"<base64>"} for bytes); a bare word that is not JSON is sent as a string, but a word
    /// starting with {, [ or " must be valid JSON.
    Emit {
        #[command(flatten)]
        selectors: Selectors,
        /// The event may be dropped for clients that are not ready.
        #[arg(long)]
        volatile: bool,
        /// Per-message compression flag.
        #[arg(long, value_name = "BOOL")]
        compress: Option<bool>,
        /// Event name (not a reserved one such as `connect` or `disconnect`).
        event: String,
        /// Event arguments, one JSON value (or bare word) each.
        #[arg(value_name = "ARG", allow_negative_numbers = true)]
        args: Vec<String>,
    },
    /// Make the selected sockets join rooms.
    Join {
        /// Room to join (repeatable).
        #[arg(long = "room", required = true, value_name = "R")]
        rooms: Vec<String>,
        #[command(flatten)]
        selectors: Selectors,
    },
    /// Make the selected sockets leave rooms.
    Leave {
        /// Room to leave (repeatable).
        #[arg(long = "room", required = true, value_name = "R")]
        rooms: Vec<String>,
        #[command(flatten)]
        selectors: Selectors,
    },
    /// Disconnect the selected sockets.
    Disconnect {
        /// Also close the underlying connection.
        #[arg(long)]
        close: bool,
        #[command(flatten)]
        selectors: Selectors,
    },
    /// Send EVENT to the Socket.IO servers themselves (no acknowledgement). ARGs as for `emit`, sent as JSON.
    ServerSideEmit {
        /// Namespace.
        #[arg(long, default_value = "/", value_name = "NSP")]
        nsp: String,
        /// Event name.
        event: String,
        /// Event arguments, one JSON value (or bare word) each.
        #[arg(value_name = "ARG", allow_negative_numbers = true)]
        args: Vec<String>,
    },
    /// Run the HTTP JSON API.
    Serve {
        /// Listen address [env: EMITTER_LISTEN] [default: 0.0.0.0:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
}

/// A failure with the exit code it deserves.
enum Failure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Runtime(err)
    }
}

impl From<ArgError> for Failure {
    fn from(err: ArgError) -> Self {
        Failure::Usage(err.into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(cli: &Cli) -> Result<Settings, Failure> {
    let mut overrides = Vec::new();
    if let Some(url) = &cli.redis {
        overrides.push(("redis.url", url.clone()));
    }
    if let Some(prefix) = &cli.prefix {
        overrides.push(("redis.prefix", prefix.clone()));
    }
    if let Command::Serve {
        listen: Some(listen),
    } = &cli.command
    {
        overrides.push(("listen", listen.clone()));
    }
    Settings::load(cli.config.as_deref(), None, &overrides)
        .map_err(|err| Failure::Usage(err.into()))
}

fn parse_args(args: &[String]) -> Result<Vec<rmpv::Value>, ArgError> {
    args.iter().map(|arg| parse_cli_arg(arg)).collect()
}

/// `server-side-emit` arguments travel as JSON text: same word rules, but
/// kept as JSON values (no `$binary` conversion).
fn parse_json_args(args: &[String]) -> Result<Vec<serde_json::Value>, ArgError> {
    args.iter()
        .map(|arg| {
            // Validate with the emit rules first, so both commands agree on
            // what is malformed.
            parse_cli_arg(arg)?;
            Ok(
                serde_json::from_str(arg)
                    .unwrap_or_else(|_| serde_json::Value::String(arg.clone())),
            )
        })
        .collect()
}

fn select(emitter: &Emitter, selectors: &Selectors) -> BroadcastOperator {
    emitter
        .of(&selectors.nsp)
        .to(selectors.to.clone())
        .except(selectors.except.clone())
}

async fn connect(settings: &Settings) -> anyhow::Result<Emitter> {
    Emitter::connect(&settings.redis).await.with_context(|| {
        format!(
            "cannot connect to redis at {}",
            redis_layer::redact(&settings.redis.url)
        )
    })
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let settings = load_settings(&cli)?;
    let receivers = match &cli.command {
        Command::Serve { .. } => return Ok(serve(settings).await?),
        Command::Emit {
            selectors,
            volatile,
            compress,
            event,
            args,
        } => {
            if emitter::is_reserved_event(event) {
                return Err(Failure::Usage(anyhow::anyhow!(
                    "\"{event}\" is a reserved event name"
                )));
            }
            let args = parse_args(args)?;
            let emitter = connect(&settings).await?;
            let mut operator = select(&emitter, selectors);
            if *volatile {
                operator = operator.volatile();
            }
            if let Some(compress) = compress {
                operator = operator.compress(*compress);
            }
            let receivers = operator.emit(event, args).await.context("publish failed")?;
            quit(&emitter).await;
            receivers
        }
        Command::Join { rooms, selectors } | Command::Leave { rooms, selectors } => {
            let emitter = connect(&settings).await?;
            let operator = select(&emitter, selectors);
            let outcome = if matches!(cli.command, Command::Join { .. }) {
                operator.sockets_join(rooms.clone()).await
            } else {
                operator.sockets_leave(rooms.clone()).await
            };
            let receivers = outcome.context("publish failed")?;
            quit(&emitter).await;
            receivers
        }
        Command::Disconnect { close, selectors } => {
            let emitter = connect(&settings).await?;
            let receivers = select(&emitter, selectors)
                .disconnect_sockets(*close)
                .await
                .context("publish failed")?;
            quit(&emitter).await;
            receivers
        }
        Command::ServerSideEmit { nsp, event, args } => {
            if emitter::is_reserved_event(event) {
                return Err(Failure::Usage(anyhow::anyhow!(
                    "\"{event}\" is a reserved event name"
                )));
            }
            let args = parse_json_args(args)?;
            let emitter = connect(&settings).await?;
            let receivers = emitter
                .of(nsp)
                .server_side_emit(event, args)
                .await
                .context("publish failed")?;
            quit(&emitter).await;
            receivers
        }
    };
    println!("published ({receivers} subscriber(s) on the master received it)");
    Ok(())
}

async fn quit(emitter: &Emitter) {
    if let Err(err) = emitter.quit().await {
        tracing::debug!(error = %err, "closing the redis connection");
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let emitter = Emitter::connect_lazy(&settings.redis).context("invalid redis configuration")?;
    let metrics = Metrics::new().context("cannot register metrics")?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr().context("listener address")?;
    tracing::info!(%address, redis = %settings.redis.url, auth = settings.api_token.is_some(), "emitter HTTP API listening");
    // A machine-readable ready line on stdout (tests and supervisors wait for it).
    println!("listening {address}");
    let state = AppState::new(emitter.clone(), settings.api_token.clone(), metrics);
    http::serve(listener, state, shutdown_signal())
        .await
        .context("HTTP server failed")?;
    quit(&emitter).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn emit_parses_selectors_flags_and_negative_numbers() {
        let cli = Cli::try_parse_from([
            "emitter",
            "emit",
            "--redis",
            "redis://h:1",
            "--nsp",
            "/chat",
            "--to",
            "a",
            "--in",
            "b",
            "--except",
            "c",
            "--volatile",
            "message",
            "Hello!",
            "-5",
            "{\"a\":1}",
        ])
        .unwrap();
        assert_eq!(cli.redis.as_deref(), Some("redis://h:1"));
        let Command::Emit {
            selectors,
            volatile,
            event,
            args,
            compress,
        } = cli.command
        else {
            panic!("not emit");
        };
        assert_eq!(selectors.nsp, "/chat");
        assert_eq!(selectors.to, vec!["a", "b"]);
        assert_eq!(selectors.except, vec!["c"]);
        assert!(volatile);
        assert_eq!(compress, None);
        assert_eq!(event, "message");
        assert_eq!(args, vec!["Hello!", "-5", "{\"a\":1}"]);
        let values = parse_args(&args).unwrap();
        assert_eq!(values[0], rmpv::Value::from("Hello!"));
        assert_eq!(values[1], rmpv::Value::from(-5));
    }

    #[test]
    fn join_requires_a_room() {
        assert!(Cli::try_parse_from(["emitter", "join"]).is_err());
        let cli = Cli::try_parse_from([
            "emitter", "join", "--room", "r1", "--room", "r2", "--to", "a",
        ])
        .unwrap();
        let Command::Join { rooms, selectors } = cli.command else {
            panic!("not join");
        };
        assert_eq!(rooms, vec!["r1", "r2"]);
        assert_eq!(selectors.to, vec!["a"]);
    }

    #[test]
    fn server_side_emit_args_stay_json() {
        let args = parse_json_args(&["word".into(), "{\"b\":[1,2]}".into(), "3".into()]).unwrap();
        assert_eq!(
            args,
            vec![
                serde_json::json!("word"),
                serde_json::json!({"b":[1,2]}),
                serde_json::json!(3)
            ]
        );
        assert!(parse_json_args(&["{bad".into()]).is_err());
    }
}
