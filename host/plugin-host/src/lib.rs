//! The sandboxed plugin runtime: the only place Tether runs WebAssembly.
//!
//! Owns the wasmtime engine (epoch interruption, pooling allocator, on-disk compile cache), the bindings of
//! `tether:plugin@0.1.0` (this is the only crate that runs `bindgen!`), the sandbox each call runs in (no
//! network, no environment, no ambient files; a renderer sees its source tree read-only at `/src`), the
//! per-plugin limits (memory, time, output size, concurrency) and the catalog of loaded plugins.
//!
//! What it must never do: let a plugin's failure become the host's. A trap, a timeout or a limit is a
//! [`PluginError`] naming the plugin and the limit; the engine, the other plugins and the next call carry
//! on.
//!
//! Shape of use (the agent and `tether render` do exactly this):
//!
//! ```no_run
//! # use tether_plugin_host::*;
//! let engine = PluginEngine::new(EngineOptions::default())?;
//! let catalog = PluginCatalog::load(&engine, &tether_config::plugins::Plugins::default(), &NoPluginFiles);
//! let raw = catalog.renderer("raw")?;
//! let output = raw.render(&RenderRequest::new("manifests/"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bindings;
mod call;
mod catalog;
mod compile;
mod compiler;
mod engine;
mod error;
mod limits;
mod objects;
mod output;
mod plugin;
mod render;
mod services;
mod text;
mod tree;

pub use catalog::{LoadFailure, LocalPluginFiles, NoPluginFiles, PluginCatalog, PluginFiles};
pub use compile::{
    DEFAULT_COMPILE_TIMEOUT, MAX_COMPONENT_SIZE, MAX_FUNCTION_LOCALS, MAX_FUNCTION_SIZE,
    MAX_FUNCTIONS, read_component_file,
};
pub use compiler::{
    COMPILE_SUBCOMMAND, DEFAULT_COMPILE_MEMORY, compiler_program, run_compiler_process_if_asked,
};
pub use engine::{DEFAULT_POOL_SLOTS, EngineOptions, PluginEngine};
pub use error::{GuestError, GuestErrorKind, LoadError, PluginError};
pub use limits::ConcurrencyGate;
pub use plugin::{ComponentInfo, Plugin, PluginDefinition, detect_world};
pub use render::{
    ClusterInfo, HELM_RENDERER, KUSTOMIZE_RENDERER, Location, PathRender, RAW_RENDERER,
    RenderOutput, RenderRequest, RenderedObject, Warning,
};
pub use services::{
    Drift, FieldOwner, HttpRequest, HttpResponse, Observed, OutboundError, OutboundTransport,
    Report, Verdict,
};
pub use tether_config::plugins::{PluginLimits, World};

/// The plugins compiled into every host binary.
pub mod builtin {
    use tether_config::plugins::World;

    /// A plugin shipped inside the agent and the CLI.
    #[derive(Debug, Clone, Copy)]
    pub struct BuiltinPlugin {
        pub name: &'static str,
        pub world: World,
        pub component: &'static [u8],
    }

    /// `raw`: plain YAML/JSON manifests by glob.
    pub const RAW: BuiltinPlugin = BuiltinPlugin {
        name: "raw",
        world: World::Renderer,
        component: super::artifacts::RAW,
    };
    /// `drift`: fields Git sets versus the live object, with their owners.
    pub const DRIFT: BuiltinPlugin = BuiltinPlugin {
        name: "drift",
        world: World::DriftDetector,
        component: super::artifacts::DRIFT,
    };

    /// `kustomize`: a kustomization directory, built as `kustomize build` builds it.
    pub const KUSTOMIZE: BuiltinPlugin = BuiltinPlugin {
        name: "kustomize",
        world: World::Renderer,
        component: super::artifacts::KUSTOMIZE,
    };
    /// `helm`: a chart directory, rendered as `helm template` renders it.
    pub const HELM: BuiltinPlugin = BuiltinPlugin {
        name: "helm",
        world: World::Renderer,
        component: super::artifacts::HELM,
    };

    pub const ALL: [BuiltinPlugin; 4] = [RAW, DRIFT, KUSTOMIZE, HELM];

    /// `prometheus`: Prometheus' read API through the tunnel, within limits and optional tenancy. Not
    /// in [`ALL`]: it needs the URL it may reach, so the agent's prometheus module loads it itself.
    pub const PROMETHEUS: BuiltinPlugin = BuiltinPlugin {
        name: "prometheus",
        world: World::Proxy,
        component: super::artifacts::PROMETHEUS,
    };
}

#[doc(hidden)]
pub mod hostile;

/// Every component build.rs made, as paths: the tests' hostile plugins, examples and the Python renderer.
#[doc(hidden)]
pub mod artifacts {
    include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
}
