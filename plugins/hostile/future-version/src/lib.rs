//! Test plugin: exports `tether:plugin/render@0.2.0`, a version the host does not support.

wit_bindgen::generate!({ path: "wit", world: "renderer" });

struct FutureVersion;

impl exports::tether::plugin::render::Guest for FutureVersion {
    fn render() -> String {
        String::new()
    }
}

export!(FutureVersion);
