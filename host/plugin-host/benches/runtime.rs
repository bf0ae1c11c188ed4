//! The runtime's per-call and per-load costs.
//!
//! - `render/hello`: fresh store + instantiate (pooled, from `InstancePre`) + one call of a trivial
//!   renderer, including the read-only preopen of its source tree. Target: median < 50 µs.
//! - `cached_load/<plugin>`: loading an already-compiled plugin from the on-disk cache (sha256 check,
//!   cache read, world check, pre-instantiation), what an agent restart pays per plugin. Target < 10 ms.
//!
//! Run: `cargo bench -p tether-plugin-host --bench runtime`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tether_plugin_host::artifacts;
use tether_plugin_host::{EngineOptions, PluginDefinition, PluginEngine, RenderRequest, World};

fn render(c: &mut Criterion) {
    let engine = PluginEngine::new(EngineOptions::default()).unwrap();
    let bytes = std::fs::read(artifacts::HELLO_PATH).unwrap();
    let hello = engine
        .load(PluginDefinition::new("hello", World::Renderer, &bytes))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let request = RenderRequest::new(dir.path());
    c.bench_function("render/hello", |b| {
        b.iter(|| black_box(hello.render(black_box(&request)).unwrap()));
    });
}

fn cached_load(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(EngineOptions {
        cache_dir: Some(cache.path().to_owned()),
        ..EngineOptions::default()
    })
    .unwrap();
    let mut plugins = vec![
        ("hello", artifacts::HELLO_PATH),
        ("raw", artifacts::RAW_PATH),
    ];
    if let Some(python) = artifacts::PYTHON_RENDERER_PATH {
        plugins.push(("python", python));
    }
    for (name, path) in plugins {
        let bytes = std::fs::read(path).unwrap();
        let definition = PluginDefinition::new(name, World::Renderer, &bytes);
        engine.load(definition.clone()).unwrap(); // compiles and fills the cache
        let mut group = c.benchmark_group("cached_load");
        if name == "python" {
            group.sample_size(10);
        }
        group.bench_function(name, |b| {
            b.iter(|| black_box(engine.load(definition.clone()).unwrap()))
        });
        group.finish();
    }
}

criterion_group!(benches, render, cached_load);
criterion_main!(benches);
