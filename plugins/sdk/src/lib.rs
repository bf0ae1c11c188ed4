//! Write a Tether renderer in Rust.
//!
//! Owns the guest bindings of the `renderer` world of `tether:plugin@0.1.0` and the helpers every renderer
//! needs: typed settings, a walk of the read-only source tree with globs, object and error constructors,
//! and logging. A renderer is a type implementing [`Renderer`] plus one line, `tether_plugin_sdk::renderer!(MyType);`:
//!
//! ```ignore
//! use tether_plugin_sdk::{Object, RenderOutput, RenderRequest, Renderer, PluginError};
//!
//! struct Hello;
//!
//! impl Renderer for Hello {
//!     fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
//!         let name = request.settings.get("name").unwrap_or("hello");
//!         let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
//!         Ok(RenderOutput::objects(vec![Object::from_json(&object, None)]))
//!     }
//! }
//!
//! tether_plugin_sdk::renderer!(Hello);
//! ```
//!
//! Only the renderer world lives here: a component carries the type information of every world its
//! dependencies generate, so drift detectors and proxies generate their own (smaller) bindings.

mod settings;
mod tree;
mod yaml_stream;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "tether:plugin/renderer@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_renderer",
        default_bindings_module: "tether_plugin_sdk::bindings",
    });
}

pub use bindings::exports::tether::plugin::render::{Context, Output as RenderOutput};
pub use bindings::tether::plugin::log::Level as LogLevel;
pub use bindings::tether::plugin::types::{Diagnostic, Error as PluginError, Location, Object};
pub use settings::Settings;
pub use tree::{SourceFile, SourceTree};
pub use yaml_stream::{YamlDocument, yaml_documents};

/// What a renderer receives for one call.
#[derive(Debug)]
pub struct RenderRequest {
    pub settings: Settings,
    pub context: Context,
}

/// A renderer: a source tree plus settings in, objects out.
pub trait Renderer {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError>;
}

/// Export `$t` (which implements [`Renderer`]) as the component's `render` interface.
#[macro_export]
macro_rules! renderer {
    ($t:ident) => {
        impl $crate::bindings::exports::tether::plugin::render::Guest for $t {
            fn render(
                settings: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                context: $crate::Context,
            ) -> ::std::result::Result<$crate::RenderOutput, $crate::PluginError> {
                <$t as $crate::Renderer>::render($crate::RenderRequest {
                    settings: $crate::Settings::new(settings),
                    context,
                })
            }
        }
        $crate::bindings::export_renderer!($t with_types_in $crate::bindings);
    };
}

impl RenderOutput {
    pub fn objects(objects: Vec<Object>) -> Self {
        RenderOutput {
            objects,
            warnings: Vec::new(),
        }
    }
}

impl Location {
    pub fn file(file: impl Into<String>) -> Self {
        Location {
            file: file.into(),
            line: None,
            column: None,
        }
    }

    pub fn line(file: impl Into<String>, line: usize) -> Self {
        Location {
            file: file.into(),
            line: u32::try_from(line).ok(),
            column: None,
        }
    }
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, location: Option<Location>) -> Self {
        Diagnostic {
            message: message.into(),
            location,
        }
    }
}

impl PluginError {
    /// A file of the source tree is wrong: say where.
    pub fn invalid_input(message: impl Into<String>, location: Location) -> Self {
        PluginError::InvalidInput(Diagnostic::new(message, Some(location)))
    }

    /// A setting is missing or unusable; the message should name it.
    pub fn invalid_setting(message: impl Into<String>) -> Self {
        PluginError::InvalidSettings(Diagnostic::new(message, None))
    }

    pub fn denied(message: impl Into<String>) -> Self {
        PluginError::Denied(Diagnostic::new(message, None))
    }

    pub fn failed(message: impl Into<String>) -> Self {
        PluginError::Failed(Diagnostic::new(message, None))
    }
}

impl Object {
    /// An object from its JSON value, remembering where it came from.
    pub fn from_json(value: &serde_json::Value, origin: Option<Location>) -> Self {
        Object {
            manifest: value.to_string(),
            origin,
        }
    }
}

/// Write to the agent's log, tagged with this plugin's name by the host.
pub fn log(level: LogLevel, message: &str) {
    bindings::tether::plugin::log::log(level, message);
}
