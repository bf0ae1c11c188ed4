//! The smallest useful renderer: one ConfigMap named by the `name` setting, holding the other settings as
//! data. It reads no files, so the benchmark that uses it measures the runtime, not the plugin.

use tether_plugin_sdk::{Object, PluginError, RenderOutput, RenderRequest, Renderer};

struct Hello;

impl Renderer for Hello {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        let name = request.settings.get("name").unwrap_or("hello");
        let data: serde_json::Map<String, serde_json::Value> = request
            .settings
            .iter()
            .filter(|(key, _)| *key != "name")
            .map(|(key, value)| (key.to_owned(), value.into()))
            .collect();
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": data,
        });
        Ok(RenderOutput::objects(vec![Object::from_json(
            &object, None,
        )]))
    }
}

tether_plugin_sdk::renderer!(Hello);
