//! The built-in `helm` renderer (being written: until the template engine lands every call fails
//! saying so).

#![allow(dead_code)] // the chart side is in place; the template engine it feeds is not yet

mod archive;
mod chart;
mod error;
mod manifest;
mod schema;
mod strvals;
mod values;

use tether_plugin_sdk::{PluginError, RenderOutput, RenderRequest, Renderer};

struct Plugin;

impl Renderer for Plugin {
    fn render(_request: RenderRequest) -> Result<RenderOutput, PluginError> {
        Err(PluginError::failed("the helm renderer is not written yet"))
    }
}

tether_plugin_sdk::renderer!(Plugin);
