//! Hostile test plugin: burns no CPU, only waits where the guest's own code never runs, so that only a
//! wall-clock timer on the whole call can end it. `wait` (setting) chooses how:
//! - `sleep` (default): one WASI sleep of `seconds` (default 45);
//! - `forever`: a poll on a monotonic-clock subscription that never fires;
//! - `fifo`: reads `/src/<file>` (default `pipe`), which blocks forever if it is a FIFO with no writer.

use std::time::Duration;
use tether_plugin_sdk::{PluginError, RenderOutput, RenderRequest, Renderer};

struct Sleeper;

impl Renderer for Sleeper {
    // Sleeping in the guest is the attack this plugin exists for, not a test waiting on time.
    #[allow(clippy::disallowed_methods)]
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        match request.settings.get("wait").unwrap_or("sleep") {
            "sleep" => {
                let seconds: u64 = request.settings.parse("seconds")?.unwrap_or(45);
                std::thread::sleep(Duration::from_secs(seconds));
            }
            "forever" => loop {
                // std's sleep is one subscribe-duration and one blocking poll per call on wasip2.
                std::thread::sleep(Duration::from_secs(u64::from(u32::MAX)));
            },
            "fifo" => {
                let file = request.settings.get("file").unwrap_or("pipe");
                let path = format!("{}/{file}", request.context.source_dir);
                let bytes = std::fs::read(&path)
                    .map_err(|e| PluginError::failed(format!("{path}: {e}")))?;
                return Err(PluginError::failed(format!("read {} bytes", bytes.len())));
            }
            other => {
                return Err(PluginError::invalid_setting(format!(
                    "unknown wait `{other}`"
                )));
            }
        }
        Err(PluginError::failed("woke up"))
    }
}

tether_plugin_sdk::renderer!(Sleeper);
