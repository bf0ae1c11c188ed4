//! What the differential suites share: the oracles (kustomize and helm binaries built by
//! scripts/setup/40-oracles.sh), the built-in renderer plugins run through the same runtime the agent
//! uses, and the comparison of two object streams.
//!
//! Outputs are compared as parsed values (YAML and JSON both become `serde_json::Value`), so key order
//! and quoting style don't matter while types, values and the order of objects do.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tether_config::plugins::Settings;
use tether_plugin_host::{
    EngineOptions, NoPluginFiles, PluginCatalog, PluginEngine, PluginError, RenderOutput,
    RenderRequest,
};

/// A tool the plugins are checked against.
#[derive(Debug, Clone, Copy)]
pub enum Oracle {
    Kustomize,
    Helm,
}

impl Oracle {
    /// The binary: `$TETHER_KUSTOMIZE` / `$TETHER_HELM` (exported by scripts/setup/40-oracles.sh), or
    /// where that script caches it.
    pub fn binary(self) -> PathBuf {
        let (variable, tool, version) = match self {
            Oracle::Kustomize => ("TETHER_KUSTOMIZE", "kustomize", "v5.8.1"),
            Oracle::Helm => ("TETHER_HELM", "helm", "v4.2.4"),
        };
        if let Some(path) = std::env::var_os(variable) {
            return PathBuf::from(path);
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .expect("HOME is set");
        let path = cache.join(format!("tether/oracles/{tool}-{version}/{tool}"));
        assert!(
            path.is_file(),
            "{tool} {version} is not installed at {}: run `source scripts/setup/40-oracles.sh` \
             (scripts/test does)",
            path.display()
        );
        path
    }

    /// Run the oracle with `args` in `dir`: its stdout on success, its stderr on failure.
    pub fn run(self, dir: &Path, args: &[&str]) -> Result<String, String> {
        let output = Command::new(self.binary())
            .args(args)
            .current_dir(dir)
            .env("HOME", dir) // no user config or cache of the machine leaks into the result
            .output()
            .map_err(|e| format!("cannot run {:?}: {e}", self))?;
        if output.status.success() {
            String::from_utf8(output.stdout).map_err(|e| e.to_string())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

/// The engine and built-in catalog, loaded once per test binary.
pub struct Renderers {
    // Declared before the engine: plugins are dropped first.
    catalog: PluginCatalog,
    _engine: PluginEngine,
}

impl std::fmt::Debug for Renderers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderers").finish_non_exhaustive()
    }
}

impl Renderers {
    pub fn new() -> Self {
        let engine = PluginEngine::new(EngineOptions::default()).expect("plugin engine");
        let catalog = PluginCatalog::load(&engine, &Default::default(), &NoPluginFiles);
        Renderers {
            catalog,
            _engine: engine,
        }
    }

    /// Render `source` with the built-in renderer `plugin`.
    pub fn render(
        &self,
        plugin: &str,
        source: &Path,
        settings: &[(&str, &str)],
        namespace: &str,
        release_name: &str,
    ) -> Result<RenderOutput, PluginError> {
        let settings = Settings::new(
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .expect("unique setting keys");
        let request = RenderRequest {
            namespace: namespace.to_owned(),
            release_name: release_name.to_owned(),
            ..RenderRequest::new(source).with_settings(settings)
        };
        self.catalog.renderer(plugin)?.render(&request)
    }
}

impl Default for Renderers {
    fn default() -> Self {
        Self::new()
    }
}

/// The objects of a YAML stream as an oracle prints it; empty documents are skipped.
pub fn parse_stream(yaml: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value: Value = serde::Deserialize::deserialize(document).map_err(|e| e.to_string())?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// The plugin's objects as values.
pub fn objects_of(output: &RenderOutput) -> Vec<Value> {
    output.objects.iter().map(|o| o.manifest.clone()).collect()
}

/// `kind/namespace/name` of an object, for messages and for set comparison.
pub fn identity(object: &Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    format!(
        "{}/{}/{}",
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name")
    )
}

/// Equal objects in equal order; otherwise a message that says where they first differ.
pub fn compare_ordered(expected: &[Value], actual: &[Value]) -> Result<(), String> {
    let names = |objects: &[Value]| objects.iter().map(identity).collect::<Vec<_>>();
    if names(expected) != names(actual) {
        return Err(format!(
            "objects differ in identity or order\n  oracle: {:?}\n  plugin: {:?}",
            names(expected),
            names(actual)
        ));
    }
    for (want, got) in expected.iter().zip(actual) {
        if want != got {
            return Err(format!(
                "{} differs\n--- oracle\n{}\n--- plugin\n{}",
                identity(want),
                serde_yaml::to_string(want).unwrap_or_default(),
                serde_yaml::to_string(got).unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// Equal objects, order ignored (`helm template` orders by kind and file, which both sides sort).
pub fn compare_as_set(expected: &[Value], actual: &[Value]) -> Result<(), String> {
    let sorted = |objects: &[Value]| {
        let mut objects = objects.to_vec();
        objects.sort_by_key(|o| (identity(o), o.to_string()));
        objects
    };
    compare_ordered(&sorted(expected), &sorted(actual))
}

/// The repository's root (cases and the shared corpus are found from here).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared corpus of real published charts and kustomizations (`<kind>` is `charts` or
/// `kustomize`): `$TETHER_CORPUS/<kind>`, or `shared/corpus/<kind>` beside the repository or beside
/// one of its parent directories (the workplace keeps it at `../shared/corpus`; a clone elsewhere
/// finds it from further down the same tree). It is read in place and never copied into the
/// repository. `None` when there is none on this machine: the corpus suites then say so and check
/// only the cases written here.
#[allow(
    clippy::print_stderr,
    reason = "a skipped suite must show in the test's output"
)]
pub fn corpus(kind: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TETHER_CORPUS") {
        return Some(PathBuf::from(dir).join(kind));
    }
    let root = repo_root().canonicalize().ok()?;
    let found = root
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/corpus").join(kind))
        .find(|dir| dir.is_dir());
    if found.is_none() {
        eprintln!(
            "no shared corpus of {kind} beside {} or its parents (set TETHER_CORPUS): \
             its suite is skipped",
            root.display()
        );
    }
    found
}
