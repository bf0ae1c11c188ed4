//! Hostile test plugin: spins forever. The host's epoch deadline must end it.

use tether_plugin_sdk::{PluginError, RenderOutput, RenderRequest, Renderer};

struct InfiniteLoop;

impl Renderer for InfiniteLoop {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        let mut n: u64 = 0;
        // black_box keeps the optimizer from proving the loop pointless.
        while std::hint::black_box(request.settings.get("stop").is_none()) {
            n = std::hint::black_box(n.wrapping_add(1));
        }
        Err(PluginError::failed(format!("stopped after {n}")))
    }
}

tether_plugin_sdk::renderer!(InfiniteLoop);
