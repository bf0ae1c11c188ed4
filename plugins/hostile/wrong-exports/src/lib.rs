//! Hostile test plugin: exports `tether:plugin/render@0.1.0` with the wrong function type.

wit_bindgen::generate!({ path: "wit", world: "renderer" });

struct WrongExports;

impl exports::tether::plugin::render::Guest for WrongExports {
    fn render(input: u32) -> u32 {
        input
    }
}

export!(WrongExports);
