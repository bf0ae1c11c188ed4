//! Host bindings of `tether:plugin@0.1.0`, one module per world. The renderer's bindings own the shared
//! `types` and `log` interfaces; the other worlds reuse them so that one `log` implementation serves all.
//!
//! Exports are called async: a call is a future the host can drop when `limits.timeout` fires, wherever
//! the guest is waiting (its own code, or a WASI sleep or poll). Imports stay sync: the host's own
//! functions never wait on the guest.

pub(crate) mod renderer {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "tether:plugin/renderer@0.1.0",
        exports: { default: async },
    });
}

pub(crate) mod drift {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "tether:plugin/drift-detector@0.1.0",
        exports: { default: async },
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
        exports: { default: async },
        with: {
            "tether:plugin/types": super::renderer::tether::plugin::types,
            "tether:plugin/log": super::renderer::tether::plugin::log,
        },
    });
}

pub(crate) use renderer::tether::plugin::types;
