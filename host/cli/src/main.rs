//! `tether`: render and check plugins locally with the runtime the agent uses.
//!
//! Owns argument parsing and printing; everything it runs is `tether-plugin-host`, so what renders here
//! renders the same in the cluster.

mod kubeconfig;
mod plugin_check;
mod render;
mod yaml;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tether_plugin_host::EngineOptions;

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
    /// How long compiling one plugin may take before it is stopped (`300s`, `2m`).
    #[arg(long, global = true, value_parser = tether_config::plugins::parse_duration, default_value = "300s")]
    compile_timeout: std::time::Duration,
    /// How much memory compiling one plugin may use (`512Mi`, `1Gi`).
    #[arg(long, global = true, default_value_t = tether_plugin_host::DEFAULT_COMPILE_MEMORY)]
    compile_memory: tether_config::plugins::ByteSize,
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
    // `tether` is its own compiler process (see `EngineOptions::compiler_program`).
    if let Some(code) = tether_plugin_host::run_compiler_process_if_asked() {
        return code;
    }
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
    let engine = EngineOptions {
        cache_dir,
        compile_timeout: cli.compile_timeout,
        compile_memory: cli.compile_memory,
        // Compilations run in a child process of this same program, under the limits above.
        compiler_program: Some(
            tether_plugin_host::compiler_program()
                .context("cannot find this program to compile plugins with")?,
        ),
        // One call at a time: a small pool is less address space to reserve at start.
        pool_slots: 4,
    };
    match cli.command {
        Command::Plugin {
            command: PluginCommand::Check(args),
        } => plugin_check::run(
            args,
            // No cache: the compile time printed is the real one a fresh agent pays.
            EngineOptions {
                cache_dir: None,
                ..engine
            },
        ),
        Command::Render(args) => render::run(args, engine),
        Command::Kubeconfig(args) => kubeconfig::run(args),
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("tether/plugins"))
}
