//! Host bindings of `tether:plugin@0.1.0`, one module per world. The renderer's bindings own the shared
//! `types` and `log` interfaces; the other worlds reuse them so that one `log` implementation serves all.

pub(crate) mod renderer {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "tether:plugin/renderer@0.1.0",
    });
}

pub(crate) mod drift {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "tether:plugin/drift-detector@0.1.0",
        with: {
            "tether:plugin/types": super::renderer::tether::plugin::types,
            "tether:plugin/log": super::renderer::tether::plugin::log,
        },
    });
}

pub(crate) mod proxy {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "tether:plugin/proxy@0.1.0",
        with: {
            "tether:plugin/types": super::renderer::tether::plugin::types,
            "tether:plugin/log": super::renderer::tether::plugin::log,
        },
    });
}

pub(crate) use renderer::tether::plugin::types;
