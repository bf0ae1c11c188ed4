//! `tether render DIR`: render a chart, a kustomization or a directory of manifests with a built-in
//! or a local renderer plugin, the same runtime the agent uses, and print YAML. The directory and
//! flags become a manifest project's `paths[]` entry, turned into a render call by the agent's own
//! [`PathRender`], so what is printed is what the agent would render; only what a repository
//! cannot express (values files from outside it, `--set`, `--setting`) is laid over it.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tether_config::gitops::{
    DEFAULT_GLOB, Glob, HelmRelease, ManifestPath, PluginRender, Renderer,
};
use tether_config::plugins::{PluginName, RelativePath, Settings};
use tether_plugin_host::{
    ClusterInfo, EngineOptions, NoPluginFiles, PathRender, PluginCatalog, PluginDefinition,
    PluginEngine, World,
};

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// What to render: a chart (has Chart.yaml), a kustomization (has kustomization.yaml) or a
    /// directory of manifests. The plugin sees it read-only as /src.
    dir: PathBuf,
    /// A built-in renderer (`raw`, `kustomize`, `helm`) or a path to a renderer component (.wasm).
    /// Default: `helm` for a chart, `kustomize` for a kustomization, `raw` otherwise.
    #[arg(long)]
    plugin: Option<String>,
    /// A setting for the plugin, `key=value`; repeat for more.
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Namespace for objects that don't name one (what the agent's `default_namespace` would be);
    /// a chart's `.Release.Namespace`.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// Release name (a chart's `.Release.Name`).
    #[arg(long, default_value = "release-name")]
    release: String,
    /// A chart: a values file, merged in the order given, as `helm template -f`.
    #[arg(long = "values", short = 'f', value_name = "FILE")]
    values: Vec<PathBuf>,
    /// A chart: a value, as `helm template --set` (`a.b=c`, `list={x,y}`, `a[0]=x`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A chart: a value kept as a string, as `helm template --set-string`.
    #[arg(long = "set-string", value_name = "KEY=VALUE")]
    set_string: Vec<String>,
}

/// What the directory holds decides the default renderer, as `kustomize build` and `helm template`
/// would each recognise their own.
fn detect_renderer(dir: &Path) -> &'static str {
    if dir.join("Chart.yaml").is_file() {
        "helm"
    } else if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|name| dir.join(name).is_file())
    {
        "kustomize"
    } else {
        "raw"
    }
}

pub(crate) fn run(args: RenderArgs, engine: EngineOptions) -> Result<ExitCode> {
    if !args.dir.is_dir() {
        bail!("{} is not a directory", args.dir.display());
    }
    let plugin = args
        .plugin
        .clone()
        .unwrap_or_else(|| detect_renderer(&args.dir).to_owned());
    let chart_flags =
        !args.values.is_empty() || !args.set.is_empty() || !args.set_string.is_empty();
    if chart_flags && plugin != "helm" {
        bail!(
            "--values, --set and --set-string are for charts (the `helm` renderer), not `{plugin}`"
        );
    }
    let engine = PluginEngine::new(engine)?;
    // Built-ins load at first use: only the one this call renders with is compiled or read from
    // the cache (loading is most of a small render's time).
    let mut catalog = PluginCatalog::load(&engine, &Default::default(), &NoPluginFiles);
    let name = if is_component_file(&plugin) {
        let path = Path::new(&plugin);
        let bytes = tether_plugin_host::read_component_file(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        // Named as a path entry's `render: {plugin}` would name it (`my_renderer.wasm`: `my-renderer`).
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_ascii_lowercase().replace('_', "-"))
            .unwrap_or_default();
        catalog.insert(engine.load(PluginDefinition::new(
            name.clone(),
            World::Renderer,
            &bytes,
        ))?);
        name
    } else {
        plugin
    };
    let (repository, renderer) = match name.as_str() {
        "kustomize" => {
            let (root, dir) = kustomize_root(&args.dir)?;
            (root, Renderer::Kustomize { dir })
        }
        "helm" => (
            args.dir.clone(),
            Renderer::Helm(HelmRelease {
                chart: relative(".")?,
                release: args.release.clone(),
                namespace: Some(args.namespace.clone()),
                values: None,
                values_files: Vec::new(),
            }),
        ),
        "raw" => (args.dir.clone(), Renderer::Plain),
        other => (
            args.dir.clone(),
            Renderer::Plugin(PluginRender {
                plugin: PluginName::try_from(other.to_owned()).map_err(anyhow::Error::msg)?,
                dir: None,
                settings: Settings::default(),
            }),
        ),
    };
    let path = ManifestPath {
        glob: Glob::try_from(DEFAULT_GLOB.to_owned()).map_err(anyhow::Error::msg)?,
        renderer,
    };
    // Offline: no cluster to ask, so charts see `helm template`'s defaults.
    let PathRender {
        plugin, request, ..
    } = PathRender::new(&repository, &path, &args.namespace, &ClusterInfo::default());
    let mut extra = if plugin == "helm" {
        helm_settings(&args)?
    } else {
        Vec::new()
    };
    extra.extend(parse_settings(&args.settings)?);
    let extra = Settings::new(extra).map_err(anyhow::Error::msg)?;
    let request = tether_plugin_host::RenderRequest {
        settings: request.settings.overlay(&extra),
        ..request
    };
    let renderer = catalog.renderer(&plugin)?;
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
        out.write_all(crate::yaml::to_document(&object.manifest).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A kustomization's overlays reach bases in sibling directories (`../base`), so the source tree is
/// the enclosing Git work tree (what the agent gets from the server), or the directory itself
/// outside Git; the path is where the kustomization is in it.
fn kustomize_root(dir: &Path) -> Result<(PathBuf, RelativePath)> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let root = dir
        .ancestors()
        .find(|a| a.join(".git").exists())
        .unwrap_or(&dir)
        .to_path_buf();
    let within = dir.strip_prefix(&root).unwrap_or(Path::new(""));
    let within = match within.to_str() {
        Some("") => ".".to_owned(),
        Some(path) => path.replace(std::path::MAIN_SEPARATOR, "/"),
        None => bail!("{} is not valid UTF-8", dir.display()),
    };
    Ok((root, relative(&within)?))
}

fn relative(path: &str) -> Result<RelativePath> {
    RelativePath::try_from(path.to_owned()).map_err(anyhow::Error::msg)
}

/// What `helm template`'s flags add to the chart's path entry: values files from anywhere, handed
/// over by value, each one document of the `values` stream, merged in order as `helm template -f`
/// merges them; `--set` and `--set-string`.
fn helm_settings(args: &RenderArgs) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    if !args.values.is_empty() {
        let mut documents = Vec::new();
        for file in &args.values {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("--values {}: cannot read it", file.display()))?;
            tether_config::yaml::check_limits(
                &text,
                &format!("--values {}", file.display()),
                tether_config::yaml::MAX_VALUES_FILE_SIZE,
            )?;
            serde_yaml::from_str::<serde_yaml::Value>(&text)
                .with_context(|| format!("--values {}: not YAML", file.display()))?;
            documents.push(text);
        }
        pairs.push(("values".to_owned(), documents.join("\n---\n")));
    }
    for (flag, values, key) in [
        ("--set", &args.set, "set"),
        ("--set-string", &args.set_string, "set_string"),
    ] {
        if let Some(bad) = values.iter().find(|v| !v.contains('=')) {
            bail!("{flag} {bad}: expected KEY=VALUE");
        }
        if !values.is_empty() {
            pairs.push((key.to_owned(), values.join("\n")));
        }
    }
    Ok(pairs)
}

fn is_component_file(plugin: &str) -> bool {
    plugin.ends_with(".wasm") || plugin.contains('/')
}

fn parse_settings(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => bail!("--setting {pair}: expected KEY=VALUE"),
        })
        .collect()
}
