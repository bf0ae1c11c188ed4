//! The built-in `kustomize` renderer: builds a kustomization directory of the source tree the way
//! `kustomize build` v5 does, for local sources.
//!
//! Settings: `dir` (the kustomization directory relative to the source root, default `.`) and
//! `load_restrictor` (`root_only`, the default, or `none`, as kustomize's `--load-restrictor`).
//! Everything kustomize would do that this renderer can't (remote bases, helm charts, plugins, fields
//! not implemented) is an error naming the field and file, never silently skipped.

pub mod build;
pub mod configured;
pub mod error;
pub mod fieldspec;
pub mod generators;
pub mod hash;
pub mod kustomization;
pub mod loader;
pub mod namereference;
pub mod objects;
pub mod order;
pub mod patches;
pub mod replacements;
pub mod resource;
pub mod scope;
pub mod selector;
pub mod transformers;
pub mod vars;
pub mod yaml11;

use loader::{LoadRestrictor, Loader};
use tether_plugin_sdk::{
    Diagnostic, Location, Object, PluginError, RenderOutput, RenderRequest, Renderer,
};

const SETTINGS: [&str; 2] = ["dir", "load_restrictor"];
const DEFAULT_DIR: &str = ".";

#[derive(Debug)]
pub struct Kustomize;

impl Renderer for Kustomize {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        request.settings.expect_only(&SETTINGS)?;
        let restrictor = match request
            .settings
            .get("load_restrictor")
            .unwrap_or("root_only")
        {
            "root_only" => LoadRestrictor::RootOnly,
            "none" => LoadRestrictor::None,
            other => {
                return Err(PluginError::invalid_setting(format!(
                    "setting `load_restrictor`: expected `root_only` or `none`, got `{other}`"
                )));
            }
        };
        let loader = Loader::new(&request.context.source_dir, restrictor);
        let dir = request.settings.get("dir").unwrap_or(DEFAULT_DIR);
        // A `dir` outside the source tree is `denied`, like any other path that leaves it.
        let dir = loader.join("", dir).map_err(|e| match e.kind {
            error::ErrorKind::Denied => {
                PluginError::denied(format!("setting `dir`: {}", e.message))
            }
            error::ErrorKind::InvalidInput => {
                PluginError::invalid_setting(format!("setting `dir`: {}", e.message))
            }
        })?;
        let built =
            build::build_with_warnings(&loader, &dir).map_err(error::Error::into_plugin_error)?;
        let warnings = built
            .warnings
            .into_iter()
            .map(|(file, message)| Diagnostic::new(message, Some(Location::file(file))))
            .collect();
        let objects = built
            .resources
            .into_iter()
            .map(|resource| {
                let origin = resource.file.as_ref().map(|file| match resource.line {
                    Some(line) => Location::line(file, line),
                    None => Location::file(file),
                });
                Object {
                    manifest: serde_json::Value::Object(resource.object).to_string(),
                    origin,
                }
            })
            .collect();
        Ok(RenderOutput { objects, warnings })
    }
}

// Exported only in the component: native builds (unit tests) can't link wasm export names.
#[cfg(target_arch = "wasm32")]
tether_plugin_sdk::renderer!(Kustomize);
