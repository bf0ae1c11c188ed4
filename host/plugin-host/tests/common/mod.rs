//! Shared by the runtime's integration tests: one engine per test binary, loading the components
//! build.rs made.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::LazyLock;
use tether_plugin_host::artifacts;
use tether_plugin_host::{
    EngineOptions, Plugin, PluginDefinition, PluginEngine, PluginLimits, RenderRequest, World,
};

/// One engine per test binary, as in the agent; its compile cache lives in the target dir so the big
/// Python component compiles once across runs.
pub static ENGINE: LazyLock<PluginEngine> = LazyLock::new(|| {
    let cache_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache");
    PluginEngine::new(EngineOptions {
        cache_dir: Some(cache_dir),
        pool_slots: 16,
        // The compiler is a debug build here, on machines shared by many builds: the 18 MB Python
        // component took over two minutes to compile.
        compile_timeout: std::time::Duration::from_secs(1200),
        ..EngineOptions::default()
    })
    .expect("engine starts")
});

pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn load(name: &str, world: World, path: &str, limits: PluginLimits) -> Plugin {
    let bytes = read(path);
    ENGINE
        .load(PluginDefinition {
            limits,
            ..PluginDefinition::new(name, world, &bytes)
        })
        .unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

pub fn renderer(name: &str, path: &str) -> Plugin {
    load(name, World::Renderer, path, PluginLimits::default())
}

/// The host is still healthy: a well-behaved plugin on the same engine renders.
pub fn assert_next_call_works() {
    let hello = renderer("hello", artifacts::HELLO_PATH);
    let dir = tempfile::tempdir().unwrap();
    let output = hello
        .render(&RenderRequest::new(dir.path()))
        .expect("a good plugin still renders");
    assert_eq!(output.objects.len(), 1);
    assert_eq!(output.objects[0].name(), "hello");
}

pub fn empty_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
