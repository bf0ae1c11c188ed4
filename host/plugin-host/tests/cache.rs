//! The on-disk compile cache: a second engine (an agent restart) loads from it instead of compiling.

use tether_plugin_host::artifacts;
use tether_plugin_host::{EngineOptions, PluginDefinition, PluginEngine, World};

fn engine(root: &std::path::Path) -> PluginEngine {
    PluginEngine::new(EngineOptions {
        cache_dir: Some(root.to_owned()),
        pool_slots: 4,
        ..EngineOptions::default()
    })
    .unwrap()
}

fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { files_under(&p) } else { 1 })
        .sum()
}

#[test]
fn a_restarted_engine_loads_compiled_plugins_from_the_cache() {
    let root = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(artifacts::HELLO_PATH).unwrap();

    let first = engine(root.path());
    let dir = first.cache_dir().unwrap().to_owned();
    assert_eq!(
        dir.parent(),
        Some(root.path()),
        "one directory per engine compatibility hash"
    );
    assert_eq!(
        dir.file_name().unwrap().len(),
        32,
        "named by the hash, in hex"
    );
    first
        .load(PluginDefinition::new("hello", World::Renderer, &bytes))
        .unwrap();
    assert_eq!(
        first.cache_hits_and_misses(),
        Some((0, 1)),
        "the first load compiles"
    );
    assert!(files_under(&dir) > 0, "the compiled plugin is on disk");
    drop(first);

    let second = engine(root.path());
    assert_eq!(
        second.cache_dir(),
        Some(dir.as_path()),
        "same engine settings, same directory"
    );
    second
        .load(PluginDefinition::new("hello", World::Renderer, &bytes))
        .unwrap();
    assert_eq!(
        second.cache_hits_and_misses(),
        Some((1, 0)),
        "the restart reads the cache"
    );

    // A different component is a different entry.
    let raw = std::fs::read(artifacts::RAW_PATH).unwrap();
    second
        .load(PluginDefinition::new("raw", World::Renderer, &raw))
        .unwrap();
    assert_eq!(second.cache_hits_and_misses(), Some((1, 1)));
}

#[test]
fn without_a_cache_directory_nothing_is_written() {
    let engine = PluginEngine::new(EngineOptions::default()).unwrap();
    assert_eq!(engine.cache_dir(), None);
    assert_eq!(engine.cache_hits_and_misses(), None);
}
