//! `tether`: render and check plugins locally with the runtime the agent uses.
//!
//! Owns argument parsing and printing; everything it runs is `tether-plugin-host`, so what renders here
//! renders the same in the cluster.

mod kubeconfig;
mod plugin_check;
mod render;
mod yaml;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "tether",
    version,
    about = "Pull-based GitOps for Kubernetes: local tools"
)]
struct Cli {
    /// Where compiled plugins are cached (default: $XDG_CACHE_HOME/tether/plugins or ~/.cache/tether/plugins).
    #[arg(long, global = true, env = "TETHER_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every plugin afresh instead of using the cache.
    #[arg(long, global = true)]
    no_cache: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Render a directory into Kubernetes objects and print them as YAML.
    Render(render::RenderArgs),
    /// Write a kubeconfig that reaches an agent's cluster through tether-server's tunnel.
    Kubeconfig(kubeconfig::KubeconfigArgs),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Print a component's world, exports, size and compile time, and whether it conforms to its world.
    Check(plugin_check::CheckArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TETHER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("error: {error:#}\n"),
            );
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let cache_dir = if cli.no_cache {
        None
    } else {
        cli.cache_dir.or_else(default_cache_dir)
    };
    match cli.command {
        Command::Plugin {
            command: PluginCommand::Check(args),
        } => plugin_check::run(args),
        Command::Render(args) => render::run(args, cache_dir),
        Command::Kubeconfig(args) => kubeconfig::run(args),
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("tether/plugins"))
}
