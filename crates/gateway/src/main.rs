//! `gateway`: runs one Socket.IO gateway from its configuration.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use gateway::config::{keys_help, GatewayConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// A Socket.IO gateway sharing rooms and events with its peers through Redis.
#[derive(Debug, Parser)]
#[command(version, about, after_help = keys_help())]
struct Cli {
    /// TOML file read after the defaults and before the environment.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = GatewayConfig::load(cli.config.as_deref()).context("invalid configuration")?;
    init_tracing(config.log.format);
    gateway::run(config, shutdown_signal()).await?;
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
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
    tracing::info!("shutdown signal received");
}
