//! Hostile test plugin: allocates (and touches) 16 MiB at a time until something stops it. The host's
//! memory limit must.

use tether_plugin_sdk::{PluginError, RenderOutput, RenderRequest, Renderer};

struct MemoryBomb;

impl Renderer for MemoryBomb {
    fn render(_request: RenderRequest) -> Result<RenderOutput, PluginError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 16 << 20]));
        }
    }
}

tether_plugin_sdk::renderer!(MemoryBomb);
