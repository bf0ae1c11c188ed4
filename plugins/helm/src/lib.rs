//! The built-in `helm` renderer (being written: until it lands every call fails saying so).

use tether_plugin_sdk::{PluginError, RenderOutput, RenderRequest, Renderer};

struct Plugin;

impl Renderer for Plugin {
    fn render(_request: RenderRequest) -> Result<RenderOutput, PluginError> {
        Err(PluginError::failed("the helm renderer is not written yet"))
    }
}

tether_plugin_sdk::renderer!(Plugin);
