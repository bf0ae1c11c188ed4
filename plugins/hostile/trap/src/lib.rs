//! Hostile test plugin: panics (a trap once compiled with `panic = "abort"`), after printing to stderr
//! so the host's capture of guest output is exercised too.

use tether_plugin_sdk::{PluginError, RenderOutput, RenderRequest, Renderer};

struct Trap;

impl Renderer for Trap {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        let lines: usize = request.settings.parse("stderr-lines")?.unwrap_or(1);
        for i in 0..lines {
            eprintln!("trap plugin: line {i} before the panic");
        }
        panic!("the trap plugin always panics");
    }
}

tether_plugin_sdk::renderer!(Trap);
