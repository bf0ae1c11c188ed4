//! The plugins an agent has: the built-ins plus every configured plugin that loaded. A plugin that fails
//! to load is reported by name and left out; it never stops the others.

use crate::builtin::{self, BuiltinPlugin};
use crate::engine::PluginEngine;
use crate::error::{LoadError, PluginError};
use crate::plugin::{Plugin, PluginDefinition};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use tether_config::plugins::{PluginSource, PluginSpec, Plugins, World};

/// Where configured plugins' bytes come from. The agent reads repository files from what the server
/// streamed it; locally they are files on disk.
pub trait PluginFiles {
    fn read(&self, source: &PluginSource) -> Result<Vec<u8>, String>;
}

/// For callers that only use built-ins.
#[derive(Debug, Clone, Copy)]
pub struct NoPluginFiles;

impl PluginFiles for NoPluginFiles {
    fn read(&self, source: &PluginSource) -> Result<Vec<u8>, String> {
        Err(format!(
            "no plugin directory or config repository to read the {source} from"
        ))
    }
}

/// Plugin files on local disk, each read through a capability to its directory (cap-std), so that no
/// path in the configuration can reach outside it, by `..` or by symlink.
#[derive(Debug, Clone, Default)]
pub struct LocalPluginFiles {
    /// The agent's plugin directory (`path:` entries).
    pub plugin_dir: Option<PathBuf>,
    /// A checkout of the config repository (`repo_file:` entries).
    pub repo_root: Option<PathBuf>,
}

impl PluginFiles for LocalPluginFiles {
    fn read(&self, source: &PluginSource) -> Result<Vec<u8>, String> {
        let (root, path, what) = match source {
            PluginSource::PluginDir(path) => (&self.plugin_dir, path, "plugin directory"),
            PluginSource::RepoFile(path) => (&self.repo_root, path, "config repository"),
        };
        let root = root
            .as_ref()
            .ok_or_else(|| format!("no {what} is configured"))?;
        let dir = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority())
            .map_err(|e| format!("cannot open the {what} {}: {e}", root.display()))?;
        // Looked at before opening: opening a FIFO blocks until a writer comes.
        dir.metadata(path.as_str())
            .and_then(|m| {
                m.is_file()
                    .then_some(())
                    .ok_or_else(crate::compile::not_a_file)
            })
            .and_then(|()| dir.open(path.as_str()))
            .and_then(|file| crate::compile::read_bounded(file.into_std()))
            .map_err(|e| format!("{}/{path}: {e}", root.display()))
    }
}

/// A configured plugin that could not be loaded.
#[derive(Debug)]
pub struct LoadFailure {
    pub plugin: String,
    pub error: LoadError,
}

/// The plugins by name: configured ones loaded up front (so that a broken one is reported when the
/// configuration arrives), built-ins loaded at their first use — a call or an agent start that
/// renders only plain manifests never compiles the chart and kustomization renderers.
#[derive(Debug, Default)]
pub struct PluginCatalog {
    plugins: BTreeMap<String, Plugin>,
    builtins: BTreeMap<String, LazyBuiltin>,
    failures: Vec<LoadFailure>,
}

/// A built-in, loaded once by the first caller that needs it (others asking meanwhile wait for it).
#[derive(Debug)]
struct LazyBuiltin {
    engine: PluginEngine,
    builtin: BuiltinPlugin,
    loaded: OnceLock<Result<Plugin, String>>,
}

impl LazyBuiltin {
    fn get(&self) -> Result<&Plugin, PluginError> {
        self.loaded
            .get_or_init(|| {
                let definition = PluginDefinition::new(
                    self.builtin.name,
                    self.builtin.world,
                    self.builtin.component,
                );
                self.engine.load(definition).map_err(|error| {
                    tracing::error!(plugin = self.builtin.name, "{error}");
                    error.to_string()
                })
            })
            .as_ref()
            .map_err(|reason| PluginError::LoadFailed {
                name: self.builtin.name.to_owned(),
                reason: reason.clone(),
            })
    }
}

impl PluginCatalog {
    /// The built-ins plus `specs`.
    pub fn load(engine: &PluginEngine, specs: &Plugins, files: &dyn PluginFiles) -> Self {
        Self::load_with(engine, &builtin::ALL, specs, files)
    }

    pub fn load_with(
        engine: &PluginEngine,
        builtins: &[BuiltinPlugin],
        specs: &Plugins,
        files: &dyn PluginFiles,
    ) -> Self {
        let mut catalog = PluginCatalog::default();
        for builtin in builtins {
            catalog.builtins.insert(
                builtin.name.to_owned(),
                LazyBuiltin {
                    engine: engine.clone(),
                    builtin: *builtin,
                    loaded: OnceLock::new(),
                },
            );
        }
        for spec in specs {
            let name = spec.name.as_str();
            let result = if builtins.iter().any(|b| b.name == name) {
                Err(LoadError::ShadowsBuiltin {
                    plugin: name.to_owned(),
                })
            } else {
                load_configured(engine, spec, files)
            };
            catalog.record(name, result);
        }
        catalog
    }

    fn record(&mut self, name: &str, result: Result<Plugin, LoadError>) {
        match result {
            Ok(plugin) => {
                self.plugins.insert(name.to_owned(), plugin);
            }
            Err(error) => {
                tracing::error!(plugin = name, "{error}");
                self.failures.push(LoadFailure {
                    plugin: name.to_owned(),
                    error,
                });
            }
        }
    }

    /// Add (or replace) a plugin loaded by other means, e.g. a file named on the command line.
    pub fn insert(&mut self, plugin: Plugin) {
        self.builtins.remove(plugin.name());
        self.plugins.insert(plugin.name().to_owned(), plugin);
    }

    /// The plugin `name`, loading it now if it is a built-in not used before.
    pub fn get(&self, name: &str) -> Result<&Plugin, PluginError> {
        if let Some(plugin) = self.plugins.get(name) {
            return Ok(plugin);
        }
        if let Some(builtin) = self.builtins.get(name) {
            return builtin.get();
        }
        // Say why a configured plugin is missing where it is used, not only in the log.
        match self.failures.iter().find(|f| f.plugin == name) {
            Some(failure) => Err(PluginError::LoadFailed {
                name: name.to_owned(),
                reason: failure.error.to_string(),
            }),
            None => Err(PluginError::NotLoaded {
                name: name.to_owned(),
                known: self.names().map(str::to_owned).collect(),
            }),
        }
    }

    /// The plugin `name`, which must be a renderer.
    pub fn renderer(&self, name: &str) -> Result<&Plugin, PluginError> {
        let plugin = self.get(name)?;
        if plugin.world() != World::Renderer {
            return Err(PluginError::WrongWorld {
                plugin: name.to_owned(),
                expected: World::Renderer,
                actual: plugin.world(),
            });
        }
        Ok(plugin)
    }

    /// The names of every plugin that loaded or can be loaded, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self
            .plugins
            .keys()
            .chain(self.builtins.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names.into_iter()
    }

    /// Every plugin, loading the built-ins not used yet (a built-in that fails to load is left out
    /// and logged).
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.names().filter_map(|name| self.get(name).ok())
    }

    /// The configured plugins that failed to load, by name, in configuration order.
    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }
}

fn load_configured(
    engine: &PluginEngine,
    spec: &PluginSpec,
    files: &dyn PluginFiles,
) -> Result<Plugin, LoadError> {
    let plugin = spec.name.to_string();
    let bytes = files.read(&spec.source).map_err(|reason| LoadError::Read {
        plugin: plugin.clone(),
        source_desc: spec.source.to_string(),
        reason,
    })?;
    engine.load(PluginDefinition {
        name: plugin,
        world: spec.world,
        component: &bytes,
        sha256: Some(spec.sha256.clone()),
        settings: spec.settings.clone(),
        limits: spec.limits,
        allowed_urls: spec.allowed_urls.clone(),
    })
}
