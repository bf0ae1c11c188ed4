//! The renderer world as the host's callers see it: a request naming a source tree, and objects that
//! were checked to be Kubernetes objects before anyone applies them — and [`PathRender`], the one
//! place where a manifest project's `paths[]` entry becomes a render call, for the agent and
//! `tether render` alike.

use crate::bindings::renderer::exports::tether::plugin::render;
use crate::bindings::types;
use crate::error::{GuestError, GuestErrorKind, PluginError};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use tether_config::gitops::{ManifestPath, Renderer};
use tether_config::plugins::Settings;

/// Built-in renderers by role.
pub const RAW_RENDERER: &str = "raw";
pub const KUSTOMIZE_RENDERER: &str = "kustomize";
pub const HELM_RENDERER: &str = "helm";

/// What a renderer knows of the cluster it renders for: helm's `.Capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The API server's version (`v1.36.0`); empty: unknown (offline rendering), and helm's
    /// renderer uses `helm template`'s default.
    pub version: String,
    /// What the cluster serves, as helm lists it: every `group/version` (`v1` for the core group)
    /// and every `group/version/Kind`; empty: `helm template`'s defaults.
    pub api_versions: Vec<String>,
}

/// One `paths[]` entry as a render call: which plugin, the source subdirectory and the request.
/// What each renderer receives (settings are strings, the plugin contract's only kind):
/// - plain paths: `raw`, the repository as source, `glob` (normalised: GitLab's leading `/`
///   dropped, so `/**/*.yaml` selects what the server sent for it);
/// - `kustomize: DIR`: `kustomize`, the repository as source (overlays reach bases outside their
///   own directory), `dir`;
/// - `helm: {...}`: `helm`, the repository as source, `chart`, `release`, `namespace`,
///   `values_files` (one path per line, in order) and `values` (YAML);
/// - `render: {plugin, dir, settings}`: that plugin, `dir` (or the repository) as source,
///   `settings`.
///
/// Every request carries the project's default namespace and the cluster's [`ClusterInfo`].
#[derive(Debug, Clone)]
pub struct PathRender {
    pub plugin: String,
    /// The directory inside the repository handed to the plugin; `None`: the repository.
    pub subdir: Option<String>,
    pub request: RenderRequest,
}

impl PathRender {
    pub fn new(
        repository: &Path,
        path: &ManifestPath,
        default_namespace: &str,
        cluster: &ClusterInfo,
    ) -> Self {
        let settings = |pairs: Vec<(&str, String)>| {
            Settings::new(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                .unwrap_or_default()
        };
        let (plugin, subdir, settings) = match &path.renderer {
            Renderer::Plain => (
                RAW_RENDERER.to_owned(),
                None,
                settings(vec![("glob", path.glob.normalized().to_owned())]),
            ),
            Renderer::Kustomize { dir } => (
                KUSTOMIZE_RENDERER.to_owned(),
                None,
                settings(vec![("dir", dir.as_str().to_owned())]),
            ),
            Renderer::Helm(helm) => {
                let mut pairs = vec![
                    ("chart", helm.chart.as_str().to_owned()),
                    ("release", helm.release.clone()),
                    (
                        "namespace",
                        helm.namespace
                            .clone()
                            .unwrap_or_else(|| default_namespace.to_owned()),
                    ),
                ];
                if !helm.values_files.is_empty() {
                    let files: Vec<_> = helm.values_files.iter().map(|f| f.as_str()).collect();
                    pairs.push(("values_files", files.join("\n")));
                }
                if let Some(values) = &helm.values {
                    pairs.push(("values", serde_yaml::to_string(values).unwrap_or_default()));
                }
                (HELM_RENDERER.to_owned(), None, settings(pairs))
            }
            Renderer::Plugin(render) => (
                render.plugin.as_str().to_owned(),
                render.dir.as_ref().map(|d| d.as_str().to_owned()),
                render.settings.clone(),
            ),
        };
        let source = match &subdir {
            Some(dir) => repository.join(dir),
            None => repository.to_owned(),
        };
        let mut request = RenderRequest::new(source).with_settings(settings);
        request.namespace = default_namespace.to_owned();
        request.cluster_version = cluster.version.clone();
        request.api_versions = cluster.api_versions.clone();
        PathRender {
            plugin,
            subdir,
            request,
        }
    }
}

/// One rendering: the source tree on the host and what the plugin should know about the target.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    /// Host directory preopened read-only as `/src`.
    pub source_dir: PathBuf,
    /// Laid over the plugin's configured settings.
    pub settings: Settings,
    pub namespace: String,
    pub release_name: String,
    pub cluster_version: String,
    pub api_versions: Vec<String>,
}

impl RenderRequest {
    /// A request for `source_dir` with no settings, namespace `default` (GitLab's default) and no
    /// cluster information (offline rendering).
    pub fn new(source_dir: impl Into<PathBuf>) -> Self {
        RenderRequest {
            source_dir: source_dir.into(),
            settings: Settings::default(),
            namespace: "default".to_owned(),
            release_name: "tether".to_owned(),
            cluster_version: String::new(),
            api_versions: Vec::new(),
        }
    }

    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }
}

/// A place in a plugin's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

impl From<types::Location> for Location {
    fn from(l: types::Location) -> Self {
        Location {
            file: l.file,
            line: l.line,
            column: l.column,
        }
    }
}

/// A warning a plugin reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    pub location: Option<Location>,
}

/// An object a renderer produced: a JSON object with `apiVersion`, `kind` and a name.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedObject {
    pub manifest: Value,
    pub origin: Option<Location>,
}

impl RenderedObject {
    pub fn kind(&self) -> &str {
        self.manifest["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        let metadata = &self.manifest["metadata"];
        metadata["name"]
            .as_str()
            .or_else(|| metadata["generateName"].as_str())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RenderOutput {
    pub objects: Vec<RenderedObject>,
    pub warnings: Vec<Warning>,
}

pub(crate) fn context(request: &RenderRequest) -> render::Context {
    render::Context {
        source_dir: crate::call::SOURCE_DIR.to_owned(),
        namespace: request.namespace.clone(),
        release_name: request.release_name.clone(),
        cluster_version: request.cluster_version.clone(),
        api_versions: request.api_versions.clone(),
    }
}

pub(crate) fn guest_error(error: types::Error) -> GuestError {
    let (kind, diagnostic) = match error {
        types::Error::InvalidInput(d) => (GuestErrorKind::InvalidInput, d),
        types::Error::InvalidSettings(d) => (GuestErrorKind::InvalidSettings, d),
        types::Error::Denied(d) => (GuestErrorKind::Denied, d),
        types::Error::Failed(d) => (GuestErrorKind::Failed, d),
    };
    GuestError {
        kind,
        message: diagnostic.message,
        location: diagnostic.location.map(Location::from),
    }
}

/// Size of what a renderer returned, as the output limit counts it.
pub(crate) fn output_size(output: &render::Output) -> u64 {
    let location = |l: &Option<types::Location>| l.as_ref().map_or(0, |l| l.file.len());
    let objects: usize = output
        .objects
        .iter()
        .map(|o| o.manifest.len() + location(&o.origin))
        .sum();
    let warnings: usize = output
        .warnings
        .iter()
        .map(|w| w.message.len() + location(&w.location))
        .sum();
    (objects + warnings) as u64
}

/// Parse and check every object; the first bad one fails the call (a partial set of objects must never
/// be applied).
pub(crate) fn convert_output(
    plugin: &str,
    output: render::Output,
) -> Result<RenderOutput, PluginError> {
    let mut objects = Vec::with_capacity(output.objects.len());
    for (index, object) in output.objects.into_iter().enumerate() {
        let origin = object.origin.map(Location::from);
        let invalid = |reason: String| PluginError::InvalidOutput {
            plugin: plugin.to_owned(),
            index,
            origin: origin.as_ref().map(ToString::to_string),
            reason,
        };
        let manifest: Value = serde_json::from_str(&object.manifest)
            .map_err(|e| invalid(format!("manifest is not JSON: {e}")))?;
        check_object(&manifest).map_err(invalid)?;
        objects.push(RenderedObject { manifest, origin });
    }
    let warnings = output
        .warnings
        .into_iter()
        .map(|w| Warning {
            message: w.message,
            location: w.location.map(Location::from),
        })
        .collect();
    Ok(RenderOutput { objects, warnings })
}

fn check_object(manifest: &Value) -> Result<(), String> {
    let Value::Object(map) = manifest else {
        return Err("manifest is not a JSON object".to_owned());
    };
    for field in ["apiVersion", "kind"] {
        if !matches!(map.get(field), Some(Value::String(s)) if !s.is_empty()) {
            return Err(format!("`{field}` is missing or not a string"));
        }
    }
    let metadata = map.get("metadata");
    let named = metadata.and_then(|m| m.get("name").or_else(|| m.get("generateName")));
    if !matches!(named, Some(Value::String(s)) if !s.is_empty()) {
        return Err("`metadata.name` is missing or not a string".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_config::agent::parse_agent_config;

    fn paths(yaml_paths: &str) -> Vec<ManifestPath> {
        let config = parse_agent_config(
            &format!(
                "gitops:\n  manifest_projects:\n    - id: app\n      default_namespace: apps\n      paths:\n{yaml_paths}"
            ),
            "config.yaml",
        )
        .expect("a valid config");
        config
            .gitops
            .manifest_projects
            .iter()
            .next()
            .unwrap()
            .paths
            .clone()
    }

    fn pairs(call: &PathRender) -> Vec<(&str, &str)> {
        call.request
            .settings
            .pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn each_renderer_gets_its_settings_the_namespace_and_the_cluster() {
        let cluster = ClusterInfo {
            version: "v1.36.0".into(),
            api_versions: vec!["v1".into(), "apps/v1".into()],
        };
        let repository = Path::new("/repo");
        let all = paths(concat!(
            "        - glob: '/**/*.yaml'\n",
            "        - glob: 'k/**'\n          kustomize: k/prod\n",
            "        - glob: 'c/**'\n          helm: {chart: c, release: web, values_files: [c/a.yaml, c/b.yaml], values: {n: 1}}\n",
            "        - glob: 'j/**'\n          render: {plugin: jsonnet, dir: j, settings: {env: prod}}\n",
        ));
        let calls: Vec<_> = all
            .iter()
            .map(|p| PathRender::new(repository, p, "apps", &cluster))
            .collect();
        let plugins: Vec<_> = calls.iter().map(|c| c.plugin.as_str()).collect();
        assert_eq!(plugins, ["raw", "kustomize", "helm", "jsonnet"]);
        assert_eq!(
            pairs(&calls[0]),
            [("glob", "**/*.yaml")],
            "GitLab's `/` dropped"
        );
        assert_eq!(pairs(&calls[1]), [("dir", "k/prod")]);
        assert_eq!(
            pairs(&calls[2]),
            [
                ("chart", "c"),
                ("release", "web"),
                ("namespace", "apps"),
                ("values_files", "c/a.yaml\nc/b.yaml"),
                ("values", "n: 1\n"),
            ]
        );
        assert_eq!(pairs(&calls[3]), [("env", "prod")]);
        assert_eq!(calls[3].subdir.as_deref(), Some("j"));
        assert_eq!(calls[3].request.source_dir, Path::new("/repo/j"));
        for call in &calls[..3] {
            assert_eq!(call.request.source_dir, repository);
            assert_eq!(call.subdir, None);
        }
        for call in &calls {
            assert_eq!(call.request.namespace, "apps");
            assert_eq!(call.request.cluster_version, "v1.36.0");
            assert_eq!(call.request.api_versions, cluster.api_versions);
        }
    }
}
