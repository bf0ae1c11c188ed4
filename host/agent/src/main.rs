//! tether-agent: runs in a cluster, dials out to tether-server and keeps the cluster in step with
//! Git. See `tether-agent --help`.

use clap::Parser;
use tether_agent::app::{AgentOptions, start};

#[derive(Debug, Parser)]
#[command(
    name = "tether-agent",
    version,
    about = "Tether's in-cluster GitOps agent"
)]
struct Cli {
    #[command(flatten)]
    options: AgentOptions,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "TETHER_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let agent = start(cli.options).await?;
    tracing::info!(observability = %agent.observability_addr, "tether-agent running");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    agent.shutdown().await;
    Ok(())
}
