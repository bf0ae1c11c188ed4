//! tether-agent: runs in a cluster, dials out to tether-server and keeps the cluster in step with
//! Git. See `tether-agent --help`.

use clap::Parser;
use tether_agent::app::{AgentOptions, log_filter, start};
use tether_config::agent::Logging;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, reload};

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

fn main() -> anyhow::Result<std::process::ExitCode> {
    // Before the runtime starts: as a compiler process (see `EngineOptions::compiler_program`), the
    // agent only compiles one plugin under its memory limit.
    if let Some(code) = tether_plugin_host::run_compiler_process_if_asked() {
        return Ok(code);
    }
    run()?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // RUST_LOG, when set, wins over the configuration's `observability.logging`.
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(log_filter(&Logging::default())));
    let (filter, log_levels) = reload::Layer::new(filter);
    let logs = tracing_subscriber::registry().with(filter);
    match cli.log_format {
        LogFormat::Text => logs.with(tracing_subscriber::fmt::layer()).init(),
        LogFormat::Json => logs.with(tracing_subscriber::fmt::layer().json()).init(),
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stopped = Box::pin(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    // Starting waits for the server to accept the agent, which can take a rotated token: a
    // signal meanwhile ends the agent too.
    let agent = tokio::select! {
        agent = start(cli.options) => agent,
        () = &mut stopped => {
            tracing::info!("stopped before registering with the server");
            return Ok(());
        }
    };
    let agent = match agent {
        Ok(agent) => agent,
        Err(e) => {
            tracing::error!("{e:#}");
            return Err(e);
        }
    };
    tracing::info!(observability = %agent.observability_addr, "tether-agent running");
    // The log levels follow the configuration in force.
    let follow_levels = (!from_env).then(|| {
        let mut config = agent.config.clone();
        tokio::spawn(async move {
            loop {
                let logging = config
                    .borrow_and_update()
                    .as_ref()
                    .map(|active| active.config.observability.logging.clone());
                if let Some(logging) = logging
                    && let Err(e) = log_levels.reload(EnvFilter::new(log_filter(&logging)))
                {
                    tracing::warn!("cannot change the log levels: {e}");
                }
                if config.changed().await.is_err() {
                    return;
                }
            }
        })
    });
    stopped.await;
    tracing::info!("shutting down");
    agent.shutdown().await;
    if let Some(task) = follow_levels {
        task.abort();
    }
    Ok(())
}
