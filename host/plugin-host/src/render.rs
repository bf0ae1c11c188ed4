//! The renderer world as the host's callers see it: a request naming a source tree, and objects that
//! were checked to be Kubernetes objects before anyone applies them.

use crate::bindings::renderer::exports::tether::plugin::render;
use crate::bindings::types;
use crate::error::{GuestError, GuestErrorKind, PluginError};
use serde_json::Value;
use std::fmt;
use std::path::PathBuf;
use tether_config::plugins::Settings;

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
