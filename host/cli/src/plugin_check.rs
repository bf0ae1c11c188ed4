//! `tether plugin check FILE.wasm`: what a component is and whether the agent would load it.

use anyhow::{Context, Result};
use clap::Args;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tether_plugin_host::{EngineOptions, PluginDefinition, PluginEngine, World};

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The component to check.
    file: PathBuf,
    /// The world it should implement (default: the one its exports claim).
    #[arg(long)]
    world: Option<World>,
}

pub(crate) fn run(args: CheckArgs, engine: EngineOptions) -> Result<ExitCode> {
    let bytes = tether_plugin_host::read_component_file(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let name = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let engine = PluginEngine::new(engine)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "file:         {}", args.file.display())?;
    writeln!(out, "size:         {} bytes", bytes.len())?;
    // The digest to pin in the agent's `plugins[].sha256`, as `sha256sum` prints it.
    writeln!(out, "sha256:       {}", hex::encode(Sha256::digest(&bytes)))?;
    let info = match engine.inspect(&name, &bytes) {
        Ok(info) => info,
        Err(error) => {
            writeln!(out, "conforms:     no — {error}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    writeln!(
        out,
        "compile time: {:.1} ms",
        info.compile_time.as_secs_f64() * 1000.0
    )?;
    writeln!(out, "exports:      {}", info.exports.join(", "))?;
    writeln!(out, "imports:      {}", info.imports.join(", "))?;
    let Some(world) = args.world.or(info.world) else {
        writeln!(
            out,
            "world:        none (exports no tether:plugin@0.1.0 world interface)"
        )?;
        writeln!(
            out,
            "conforms:     no — pass --world to see why it does not implement one"
        )?;
        return Ok(ExitCode::FAILURE);
    };
    writeln!(out, "world:        {world} (tether:plugin@0.1.0)")?;
    match engine.load(PluginDefinition::new(name, world, &bytes)) {
        Ok(_) => {
            writeln!(out, "conforms:     yes")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            writeln!(out, "conforms:     no — {error}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}
