//! Hostile test plugin: output the host must not take at face value. `case` (setting) chooses what:
//! - `objects`: every setting whose key starts with `object` is returned verbatim as one manifest
//!   (duplicate JSON keys, bad names and all), with the key as the object's origin file;
//! - `error`: a `failed` error whose message is `bytes` (default 1 MiB) of text full of terminal escape
//!   sequences, at a location whose file name is as long and as hostile;
//! - `warnings`: one good object and warnings and origins carrying escape sequences;
//! - `stderr`: escape sequences on stderr, then a panic.

use tether_plugin_sdk::{
    Diagnostic, Location, Object, PluginError, RenderOutput, RenderRequest, Renderer,
};

/// Retitles the window, clears the screen, returns the cursor home and prints a fake success line.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[H\r\n✔ synced 0 errors\u{202e}";

struct BadOutput;

impl Renderer for BadOutput {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        match request.settings.get("case").unwrap_or("objects") {
            "objects" => {
                let objects = request
                    .settings
                    .iter()
                    .filter(|(key, _)| key.starts_with("object"))
                    .map(|(key, manifest)| Object {
                        manifest: manifest.to_owned(),
                        origin: Some(Location::file(key)),
                    })
                    .collect();
                Ok(RenderOutput::objects(objects))
            }
            "error" => {
                let bytes: usize = request.settings.parse("bytes")?.unwrap_or(1 << 20);
                let text = HOSTILE.repeat(bytes / HOSTILE.len() + 1);
                Err(PluginError::Failed(Diagnostic::new(
                    text.clone(),
                    Some(Location::line(text, 1)),
                )))
            }
            "warnings" => {
                let object = serde_json::json!({
                    "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}
                });
                let mut output = RenderOutput::objects(vec![Object::from_json(
                    &object,
                    Some(Location::file(HOSTILE)),
                )]);
                output
                    .warnings
                    .push(Diagnostic::new(HOSTILE, Some(Location::file(HOSTILE))));
                Ok(output)
            }
            "stderr" => {
                eprintln!("{HOSTILE}");
                panic!("{HOSTILE}");
            }
            other => Err(PluginError::invalid_setting(format!(
                "unknown case `{other}`"
            ))),
        }
    }
}

tether_plugin_sdk::renderer!(BadOutput);
