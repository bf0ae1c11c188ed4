//! `tether render DIR`: render a directory with a built-in or a local plugin and print YAML.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tether_config::plugins::Settings;
use tether_plugin_host::{
    EngineOptions, NoPluginFiles, PluginCatalog, PluginDefinition, PluginEngine, RenderRequest,
    World,
};

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// The source tree to render (the plugin sees it read-only as /src).
    dir: PathBuf,
    /// A built-in renderer's name, or a path to a renderer component (.wasm).
    #[arg(long, default_value = "raw")]
    plugin: String,
    /// A setting for the plugin, `key=value`; repeat for more.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Namespace for objects that don't name one (what the agent's `default_namespace` would be).
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Release name passed to the plugin (helm-like renderers use it).
    #[arg(long, default_value = "tether")]
    release_name: String,
}

pub(crate) fn run(args: RenderArgs, cache_dir: Option<PathBuf>) -> Result<ExitCode> {
    if !args.dir.is_dir() {
        bail!("{} is not a directory", args.dir.display());
    }
    let settings = parse_settings(&args.settings)?;
    let engine = PluginEngine::new(EngineOptions {
        cache_dir,
        ..EngineOptions::default()
    })?;
    let mut catalog = PluginCatalog::load(&engine, &Default::default(), &NoPluginFiles);
    let name = if is_component_file(&args.plugin) {
        let path = Path::new(&args.plugin);
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        catalog.insert(engine.load(PluginDefinition::new(
            name.clone(),
            World::Renderer,
            &bytes,
        ))?);
        name
    } else {
        args.plugin.clone()
    };
    let renderer = catalog.renderer(&name)?;
    let request = RenderRequest {
        namespace: args.namespace,
        release_name: args.release_name,
        ..RenderRequest::new(&args.dir).with_settings(settings)
    };
    let output = renderer.render(&request)?;

    let mut err = std::io::stderr().lock();
    for warning in &output.warnings {
        match &warning.location {
            Some(location) => writeln!(err, "warning: {location}: {}", warning.message)?,
            None => writeln!(err, "warning: {}", warning.message)?,
        }
    }
    let mut out = std::io::stdout().lock();
    for object in &output.objects {
        writeln!(out, "---")?;
        out.write_all(serde_yaml::to_string(&object.manifest)?.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn is_component_file(plugin: &str) -> bool {
    plugin.ends_with(".wasm") || plugin.contains('/')
}

fn parse_settings(pairs: &[String]) -> Result<Settings> {
    let parsed = pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => bail!("--set {pair}: expected KEY=VALUE"),
        })
        .collect::<Result<Vec<_>>>()?;
    Settings::new(parsed).map_err(anyhow::Error::msg)
}
