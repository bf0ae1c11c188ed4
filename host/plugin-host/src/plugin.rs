//! A loaded plugin: its component checked against its world and pre-instantiated once, its limits and
//! settings, and the typed calls of its world.

use crate::bindings::{drift, proxy, renderer};
use crate::call::{self, CallSetup, CallState, OutboundAccess};
use crate::engine::PluginEngine;
use crate::error::{LoadError, PluginError};
use crate::limits::ConcurrencyGate;
use crate::objects;
use crate::render::{self, RenderOutput, RenderRequest};
use crate::services::{HttpRequest, HttpResponse, Observed, OutboundTransport, Report};
use crate::text;
use crate::tree::SourceTree;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_config::plugins::{AllowedUrl, PluginLimits, Settings, Sha256Digest, World};
use wasmtime::component::Component;

/// Everything needed to load one plugin.
#[derive(Debug, Clone)]
pub struct PluginDefinition<'a> {
    pub name: String,
    pub world: World,
    pub component: &'a [u8],
    /// The pinned digest; `None` only for built-ins (compiled into the binary) and `tether plugin check`.
    pub sha256: Option<Sha256Digest>,
    pub settings: Settings,
    pub limits: PluginLimits,
    pub allowed_urls: Vec<AllowedUrl>,
}

impl<'a> PluginDefinition<'a> {
    /// A definition with no pinned digest, no settings and the default limits.
    pub fn new(name: impl Into<String>, world: World, component: &'a [u8]) -> Self {
        PluginDefinition {
            name: name.into(),
            world,
            component,
            sha256: None,
            settings: Settings::default(),
            limits: PluginLimits::default(),
            allowed_urls: Vec::new(),
        }
    }
}

/// A plugin ready to be called. Cheap to clone; calls from several threads share its concurrency gate.
#[derive(Clone, Debug)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    name: Arc<str>,
    world: World,
    sha256: String,
    size: usize,
    compile_time: Duration,
    settings: Settings,
    limits: PluginLimits,
    allowed_urls: Arc<[AllowedUrl]>,
    gate: ConcurrencyGate,
    pre: WorldPre,
    engine: PluginEngine,
}

impl std::fmt::Debug for PluginInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("world", &self.world)
            .field("sha256", &self.sha256)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The component linked against its world's imports and checked against its exports, once; each call
/// only instantiates.
enum WorldPre {
    Renderer(renderer::RendererPre<CallState>),
    DriftDetector(drift::DriftDetectorPre<CallState>),
    Proxy(proxy::ProxyPre<CallState>),
}

/// The export that identifies each world.
const WORLD_EXPORTS: [(World, &str); 3] = [
    (World::Renderer, "tether:plugin/render@0.1.0"),
    (World::DriftDetector, "tether:plugin/detect@0.1.0"),
    (World::Proxy, "tether:plugin/handler@0.1.0"),
];

/// The world a component's exports claim (by name only; loading checks the types).
pub fn detect_world(engine: &PluginEngine, component: &Component) -> Option<World> {
    let exports: Vec<String> = exports(engine, component);
    WORLD_EXPORTS
        .into_iter()
        .find(|(_, export)| exports.iter().any(|e| e == export))
        .map(|(world, _)| world)
}

/// A note when the component targets a version of the contract this host does not know.
fn other_contract_version(engine: &PluginEngine, component: &Component) -> Option<String> {
    exports(engine, component).into_iter().find_map(|name| {
        let version = name
            .strip_prefix("tether:plugin/")?
            .split_once('@')?
            .1
            .to_owned();
        (version != "0.1.0").then(|| {
            format!(" (it targets tether:plugin@{version}; this host supports tether:plugin@0.1.0)")
        })
    })
}

/// What a component says about itself, for `tether plugin check`.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// The world its exports claim, if any.
    pub world: Option<World>,
    pub compile_time: Duration,
}

impl PluginEngine {
    /// Compile `bytes` and list its imports and exports, without checking any world.
    pub fn inspect(&self, plugin: &str, bytes: &[u8]) -> Result<ComponentInfo, LoadError> {
        let started = Instant::now();
        let component = self.compile(plugin, bytes)?;
        let compile_time = started.elapsed();
        Ok(ComponentInfo {
            exports: exports(self, &component),
            imports: imports(self, &component),
            world: detect_world(self, &component),
            compile_time,
        })
    }
}

fn exports(engine: &PluginEngine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(engine.wasmtime())
        .map(|(name, _)| name.to_owned())
        .collect()
}

fn imports(engine: &PluginEngine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine.wasmtime())
        .map(|(name, _)| name.to_owned())
        .collect()
}

impl PluginEngine {
    /// Check the digest, compile (or take from the cache), and check the component implements its world.
    pub fn load(&self, definition: PluginDefinition<'_>) -> Result<Plugin, LoadError> {
        let plugin = definition.name.clone();
        let started = Instant::now();
        let actual = hex::encode(Sha256::digest(definition.component));
        let digest_time = started.elapsed();
        if let Some(expected) = &definition.sha256
            && expected.as_hex() != actual
        {
            return Err(LoadError::Sha256Mismatch {
                plugin,
                expected: expected.to_string(),
                actual,
            });
        }
        let started = Instant::now();
        let component = self.compile_digested(&plugin, definition.component, &actual)?;
        let compile_time = started.elapsed();
        let linked = Instant::now();
        let pre = self.pre_instantiate(&plugin, definition.world, &component)?;
        let link_time = linked.elapsed();
        let tried = Instant::now();
        self.trial_instantiate(&plugin, definition.world, &definition.limits, &pre)?;
        // Where a load's time goes (`TETHER_LOG=tether_plugin_host=debug`): docs/PERFORMANCE.md.
        tracing::debug!(
            plugin,
            world = %definition.world,
            ?digest_time,
            ?compile_time,
            ?link_time,
            trial_time = ?tried.elapsed(),
            "plugin loaded"
        );
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                name: plugin.into(),
                world: definition.world,
                sha256: actual,
                size: definition.component.len(),
                compile_time,
                settings: definition.settings,
                gate: ConcurrencyGate::new(definition.limits.concurrency),
                limits: definition.limits,
                allowed_urls: definition.allowed_urls.into(),
                pre,
                engine: self.clone(),
            }),
        })
    }

    /// Compile (through the on-disk cache when the engine has one), within the compile limits.
    pub fn compile(&self, plugin: &str, bytes: &[u8]) -> Result<Component, LoadError> {
        self.compile_digested(plugin, bytes, &hex::encode(Sha256::digest(bytes)))
    }

    fn compile_digested(
        &self,
        plugin: &str,
        bytes: &[u8],
        digest: &str,
    ) -> Result<Component, LoadError> {
        let inner = self.inner();
        crate::compile::compile(&inner.engine, &inner.compiler, plugin, bytes, digest)
    }

    /// Linking checks names; the types of the world's exported functions are checked when an instance
    /// is made. One instantiation at load (tens of microseconds, a fresh store under the plugin's own
    /// limits) turns a wrongly-typed export into a load error instead of a failure of every call.
    fn trial_instantiate(
        &self,
        plugin: &str,
        world: World,
        limits: &PluginLimits,
        pre: &WorldPre,
    ) -> Result<(), LoadError> {
        let name: Arc<str> = plugin.into();
        let setup = CallSetup {
            plugin: &name,
            limits,
            source_dir: None,
            outbound: None,
        };
        let result = call::run(self.wasmtime(), setup, async |store| match pre {
            WorldPre::Renderer(pre) => pre.instantiate_async(store).await.map(drop),
            WorldPre::DriftDetector(pre) => pre.instantiate_async(store).await.map(drop),
            WorldPre::Proxy(pre) => pre.instantiate_async(store).await.map(drop),
        });
        match result {
            Ok(()) => Ok(()),
            Err(PluginError::Trap { trap, .. }) => Err(LoadError::WorldMismatch {
                plugin: plugin.to_owned(),
                world,
                reason: trap,
            }),
            Err(error) => Err(LoadError::Start {
                plugin: plugin.to_owned(),
                reason: error.to_string(),
            }),
        }
    }

    fn pre_instantiate(
        &self,
        plugin: &str,
        world: World,
        component: &Component,
    ) -> Result<WorldPre, LoadError> {
        let mismatch = |e: wasmtime::Error| {
            let claimed = detect_world(self, component)
                .filter(|w| *w != world)
                .map(|w| format!(" (its exports say it is a {w})"))
                .or_else(|| other_contract_version(self, component))
                .unwrap_or_default();
            LoadError::WorldMismatch {
                plugin: plugin.to_owned(),
                world,
                reason: format!("{e:#}{claimed}"),
            }
        };
        let inner = self.inner();
        Ok(match world {
            World::Renderer => {
                let pre = inner
                    .renderer_linker
                    .instantiate_pre(component)
                    .map_err(mismatch)?;
                WorldPre::Renderer(renderer::RendererPre::new(pre).map_err(mismatch)?)
            }
            World::DriftDetector => {
                let pre = inner
                    .drift_linker
                    .instantiate_pre(component)
                    .map_err(mismatch)?;
                WorldPre::DriftDetector(drift::DriftDetectorPre::new(pre).map_err(mismatch)?)
            }
            World::Proxy => {
                let pre = inner
                    .proxy_linker
                    .instantiate_pre(component)
                    .map_err(mismatch)?;
                WorldPre::Proxy(proxy::ProxyPre::new(pre).map_err(mismatch)?)
            }
        })
    }
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn world(&self) -> World {
        self.inner.world
    }

    /// Hex sha256 of the component.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// How long compiling (or loading from the cache) took.
    pub fn compile_time(&self) -> Duration {
        self.inner.compile_time
    }

    pub fn limits(&self) -> &PluginLimits {
        &self.inner.limits
    }

    pub fn concurrency(&self) -> &ConcurrencyGate {
        &self.inner.gate
    }

    fn wrong_world(&self, expected: World) -> PluginError {
        PluginError::WrongWorld {
            plugin: self.name().to_owned(),
            expected,
            actual: self.world(),
        }
    }

    fn setup<'a>(
        &'a self,
        source_dir: Option<&'a std::path::Path>,
        outbound: Option<OutboundAccess>,
    ) -> CallSetup<'a> {
        CallSetup {
            plugin: &self.inner.name,
            limits: &self.inner.limits,
            source_dir,
            outbound,
        }
    }

    fn check_output_size(&self, size: u64) -> Result<(), PluginError> {
        let limit = self.inner.limits.output;
        if size > limit.bytes() {
            return Err(PluginError::OutputLimit {
                plugin: self.name().to_owned(),
                limit,
                size,
            });
        }
        Ok(())
    }

    fn guest_error(&self, error: crate::bindings::types::Error) -> PluginError {
        let mut error = render::guest_error(error);
        error.message = text::guest_text(&error.message, text::MESSAGE_CAP);
        if let Some(location) = &mut error.location {
            location.file = text::guest_text(&location.file, text::PATH_CAP);
        }
        PluginError::Guest {
            plugin: self.name().to_owned(),
            error,
        }
    }

    /// Render `request.source_dir` (a renderer only).
    pub fn render(&self, request: &RenderRequest) -> Result<RenderOutput, PluginError> {
        let WorldPre::Renderer(pre) = &self.inner.pre else {
            return Err(self.wrong_world(World::Renderer));
        };
        // The WIT `settings` alias binds as a `Vec`.
        let settings = self
            .inner
            .settings
            .overlay(&request.settings)
            .pairs()
            .to_vec();
        let context = render::context(request);
        // Before the permit: walking (and, rarely, copying) the tree is not the plugin's time.
        let tree =
            SourceTree::prepare(&request.source_dir).map_err(|reason| PluginError::SourceTree {
                plugin: self.name().to_owned(),
                path: request.source_dir.display().to_string(),
                reason,
            })?;
        let _permit = self.inner.gate.acquire();
        let result = call::run(
            self.inner.engine.wasmtime(),
            self.setup(Some(tree.path()), None),
            async |store| {
                let instance = pre.instantiate_async(&mut *store).await?;
                instance
                    .tether_plugin_render()
                    .call_render(&mut *store, &settings, &context)
                    .await
            },
        )?;
        let output = result.map_err(|e| self.guest_error(e))?;
        self.check_output_size(render::output_size(&output))?;
        let output = text::guest_output(output);
        let invalid = |index: usize, origin: Option<&crate::bindings::types::Location>| {
            let plugin = self.name().to_owned();
            let origin = origin.map(|o| crate::Location::from(o.clone()).to_string());
            move |problem: objects::ObjectProblem| PluginError::InvalidOutput {
                plugin,
                index,
                origin,
                reason: problem.0,
            }
        };
        // On the text, before it is parsed: a parsed value keeps only the last of two equal keys.
        for (index, object) in output.objects.iter().enumerate() {
            objects::check_duplicate_keys(&object.manifest)
                .map_err(invalid(index, object.origin.as_ref()))?;
        }
        let mut output = render::convert_output(self.name(), output)?;
        output
            .warnings
            .extend(tree.warnings().into_iter().map(|message| render::Warning {
                message,
                location: None,
            }));
        let mut set = objects::ObjectSet::new(&request.namespace);
        for (index, object) in output.objects.iter().enumerate() {
            set.check(index, &object.manifest)
                .map_err(|problem| PluginError::InvalidOutput {
                    plugin: self.name().to_owned(),
                    index,
                    origin: object.origin.as_ref().map(ToString::to_string),
                    reason: problem.0,
                })?;
        }
        Ok(output)
    }

    /// Compare desired and live objects (a drift detector only). One report per observed entry.
    pub fn detect_drift(
        &self,
        settings: &Settings,
        observed: &[Observed],
    ) -> Result<Vec<Report>, PluginError> {
        let WorldPre::DriftDetector(pre) = &self.inner.pre else {
            return Err(self.wrong_world(World::DriftDetector));
        };
        let settings = self.inner.settings.overlay(settings).pairs().to_vec();
        let _permit = self.inner.gate.acquire();
        let result = call::run(
            self.inner.engine.wasmtime(),
            self.setup(None, None),
            async |store| {
                let instance = pre.instantiate_async(&mut *store).await?;
                instance
                    .tether_plugin_detect()
                    .call_detect(&mut *store, &settings, observed)
                    .await
            },
        )?;
        let reports = result.map_err(|e| self.guest_error(e))?;
        let size: usize = reports
            .iter()
            .flat_map(|r| &r.drifts)
            .map(|d| {
                d.path.len()
                    + d.desired.as_ref().map_or(0, String::len)
                    + d.live.as_ref().map_or(0, String::len)
            })
            .sum();
        self.check_output_size(size as u64)?;
        if reports.len() != observed.len() {
            return Err(PluginError::InvalidOutput {
                plugin: self.name().to_owned(),
                index: reports.len(),
                origin: None,
                reason: format!(
                    "{} reports for {} observed objects",
                    reports.len(),
                    observed.len()
                ),
            });
        }
        Ok(reports)
    }

    /// Answer one request (a proxy only); outbound calls go through `transport` after the allow-list check.
    pub fn handle(
        &self,
        request: &HttpRequest,
        transport: Arc<dyn OutboundTransport>,
    ) -> Result<HttpResponse, PluginError> {
        let WorldPre::Proxy(pre) = &self.inner.pre else {
            return Err(self.wrong_world(World::Proxy));
        };
        let access = OutboundAccess {
            allowed: self.inner.allowed_urls.clone(),
            transport,
        };
        let settings = self.inner.settings.pairs().to_vec();
        let _permit = self.inner.gate.acquire();
        let result = call::run(
            self.inner.engine.wasmtime(),
            self.setup(None, Some(access)),
            async |store| {
                let instance = pre.instantiate_async(&mut *store).await?;
                instance
                    .tether_plugin_handler()
                    .call_handle(&mut *store, &settings, request)
                    .await
            },
        )?;
        let response = result.map_err(|e| self.guest_error(e))?;
        let headers: usize = response
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        self.check_output_size((response.body.len() + headers) as u64)?;
        Ok(response)
    }
}
