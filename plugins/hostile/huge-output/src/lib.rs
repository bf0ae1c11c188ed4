//! Hostile test plugin: returns ConfigMaps totalling `bytes` bytes (setting; default 1 GiB), 1 MiB each.
//! The host's memory limit stops the default; a smaller `bytes` that still exceeds the output limit shows
//! that limit on its own.

use tether_plugin_sdk::{Object, PluginError, RenderOutput, RenderRequest, Renderer};

const MIB: u64 = 1 << 20;

struct HugeOutput;

impl Renderer for HugeOutput {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        let total: u64 = request.settings.parse("bytes")?.unwrap_or(1 << 30);
        let filler = "x".repeat(MIB as usize);
        let objects = (0..total.div_ceil(MIB))
            .map(|i| Object {
                manifest: format!(
                    r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big-{i}"}},"data":{{"x":"{filler}"}}}}"#
                ),
                origin: None,
            })
            .collect();
        Ok(RenderOutput::objects(objects))
    }
}

tether_plugin_sdk::renderer!(HugeOutput);
