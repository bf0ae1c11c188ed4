//! The one wasmtime engine of a process: its configuration (epoch interruption, pooling allocator), its
//! on-disk compile cache, the epoch ticker thread, and the linkers of the three worlds.

use crate::bindings::{drift, proxy, renderer};
use crate::call::CallState;
use crate::compiler::{Compiler, CompilerProcess};
use crate::error::LoadError;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use tether_config::plugins::{ByteSize, MAX_MEMORY};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

/// How often the epoch advances: the granularity of every plugin's time limit.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings. Per-plugin limits live in [`tether_config::plugins::PluginLimits`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled plugins are kept between runs; `None` compiles every plugin at every start.
    pub cache_dir: Option<PathBuf>,
    /// Instances that can be alive at once across all plugins (each call holds one while it runs).
    /// The pool reserves address space for every slot up front, so this bounds the host's footprint.
    pub pool_slots: u32,
    /// How long compiling one component may take before it is stopped and refused.
    pub compile_timeout: Duration,
    /// How much memory compiling one component may use (with a `compiler_program` only).
    pub compile_memory: ByteSize,
    /// A program that compiles components when started with
    /// [`COMPILE_SUBCOMMAND`](crate::COMPILE_SUBCOMMAND): the agent and the CLI name themselves
    /// ([`std::env::current_exe`]) and call [`run_compiler_process_if_asked`](crate::run_compiler_process_if_asked)
    /// first in `main`. A compilation then runs in a child process under `compile_memory`, and is
    /// killed at `compile_timeout`. `None`: compilations run on a thread of this process, waited for
    /// at most `compile_timeout` but neither stopped nor capped in memory (tests, embedders).
    pub compiler_program: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: None,
            pool_slots: DEFAULT_POOL_SLOTS,
            compile_timeout: crate::compile::DEFAULT_COMPILE_TIMEOUT,
            compile_memory: crate::compiler::DEFAULT_COMPILE_MEMORY,
            compiler_program: None,
        }
    }
}

/// Enough for every plugin's default concurrency of 4 across a dozen plugins.
pub const DEFAULT_POOL_SLOTS: u32 = 50;

/// A plugin component of a big language runtime (CPython in componentize-py) instantiates a dozen core
/// modules with large tables; these bounds fit it with room to spare.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 50;
const MAX_TABLE_ELEMENTS: usize = 100_000;
const MAX_CORE_INSTANCE_SIZE: usize = 16 << 20;

/// The shared engine. Cheap to clone; the ticker stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct PluginEngine {
    inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) engine: Engine,
    pub(crate) renderer_linker: Linker<CallState>,
    pub(crate) drift_linker: Linker<CallState>,
    pub(crate) proxy_linker: Linker<CallState>,
    /// The compile cache's directory and handle (whose hit and miss counters the engine shares).
    cache: Option<(PathBuf, Cache)>,
    pub(crate) compiler: Compiler,
    /// Without a cache directory, a compiler process still needs one to hand its work over: a
    /// private one, removed with the engine.
    _scratch_cache: Option<tempfile::TempDir>,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for EngineInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("cache_dir", &self.cache.as_ref().map(|(dir, _)| dir))
            .finish_non_exhaustive()
    }
}

impl PluginEngine {
    pub fn new(options: EngineOptions) -> Result<Self, LoadError> {
        let started = std::time::Instant::now();
        let engine_error = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut config = compile_settings();
        let slots = options.pool_slots.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(MAX_CORE_INSTANCES_PER_COMPONENT))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(MAX_CORE_INSTANCES_PER_COMPONENT))
            .total_stacks(slots)
            .max_memories_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_tables_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_core_instance_size(MAX_CORE_INSTANCE_SIZE)
            .table_elements(MAX_TABLE_ELEMENTS)
            // The ceiling of every plugin's `limits.memory`; the store's limiter enforces the plugin's own.
            .max_memory_size(usize::try_from(MAX_MEMORY.bytes()).unwrap_or(usize::MAX));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

        let scratch_cache = match (&options.cache_dir, &options.compiler_program) {
            (None, Some(_)) => Some(
                tempfile::Builder::new()
                    .prefix("tether-compile-")
                    .tempdir()
                    .map_err(|e| {
                        LoadError::Engine(format!("cannot make a compile directory: {e}"))
                    })?,
            ),
            _ => None,
        };
        let cache_root = options
            .cache_dir
            .as_deref()
            .or(scratch_cache.as_ref().map(tempfile::TempDir::path));
        let cache = match cache_root {
            Some(root) => {
                // The directory is named by the engine's compatibility hash, so a wasmtime upgrade or a
                // changed setting starts a fresh cache instead of reading artefacts it can't use; inside,
                // wasmtime names each entry by a sha256 over the engine's compile settings and the
                // component's bytes. (Loading our own serialized artefacts would need `unsafe`
                // deserialization, which this workspace forbids; wasmtime's cache verifies its own.)
                // The probe only hashes compile settings: no instance pool to reserve and release.
                let probe = Engine::new(&compile_settings()).map_err(engine_error)?;
                let dir = root.join(compatibility_key(&probe));
                std::fs::create_dir_all(&dir).map_err(|e| {
                    LoadError::Engine(format!(
                        "cannot create compile cache {}: {e}",
                        dir.display()
                    ))
                })?;
                // wasmtime's cache has a directory of its own: its cleanup deletes whatever else it
                // finds in it.
                let cache = open_cache(&dir.join("wasmtime")).map_err(engine_error)?;
                config.cache(Some(cache.clone()));
                Some((dir, cache))
            }
            None => None,
        };
        let compiler = match (&options.compiler_program, &cache) {
            (Some(program), Some((dir, _))) => Compiler::Process(CompilerProcess {
                program: program.clone(),
                cache_dir: dir.join("wasmtime"),
                compiled_dir: dir.join("compiled"),
                timeout: options.compile_timeout,
                memory: options.compile_memory,
            }),
            _ => Compiler::Thread {
                timeout: options.compile_timeout,
            },
        };
        let engine = Engine::new(&config).map_err(engine_error)?;

        let renderer_linker = world_linker(&engine, |l| {
            renderer::Renderer::add_to_linker::<_, HasSelf<CallState>>(l, |s| s)
        })?;
        let drift_linker = world_linker(&engine, |l| {
            drift::DriftDetector::add_to_linker::<_, HasSelf<CallState>>(l, |s| s)
        })?;
        let proxy_linker = world_linker(&engine, |l| {
            proxy::Proxy::add_to_linker::<_, HasSelf<CallState>>(l, |s| s)
        })?;

        tracing::debug!(time = ?started.elapsed(), "plugin engine ready");
        let ticking = engine.clone();
        let ticker = EpochTicker::start(move || ticking.increment_epoch())
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch ticker thread: {e}")))?;
        Ok(PluginEngine {
            inner: Arc::new(EngineInner {
                engine,
                renderer_linker,
                drift_linker,
                proxy_linker,
                cache: scratch_cache.is_none().then_some(cache).flatten(),
                compiler,
                _scratch_cache: scratch_cache,
                _ticker: ticker,
            }),
        })
    }

    pub(crate) fn inner(&self) -> &EngineInner {
        &self.inner
    }

    pub fn wasmtime(&self) -> &Engine {
        &self.inner.engine
    }

    /// The compile cache directory of this engine (named by its compatibility hash), if caching is on.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.cache.as_ref().map(|(dir, _)| dir.as_path())
    }

    /// Compilations served from the on-disk cache and compilations that had to run, since start.
    pub fn cache_hits_and_misses(&self) -> Option<(usize, usize)> {
        self.inner
            .cache
            .as_ref()
            .map(|(_, cache)| (cache.cache_hits(), cache.cache_misses()))
    }
}

/// Everything about the engine that decides the compiled code (and so the cache key): the same for
/// the host's engine and a compiler process's, so that what one compiles the other reads.
fn compile_settings() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Time limits are epochs, not fuel: an epoch check costs a load and a compare per loop back-edge,
    // fuel a counter update per block.
    config.epoch_interruption(true);
    config
}

fn open_cache(dir: &std::path::Path) -> wasmtime::Result<Cache> {
    let mut cache_config = CacheConfig::new();
    cache_config.with_directory(dir);
    Cache::new(cache_config)
}

/// A compiler process's engine: the host's compile settings and cache directory, without the
/// instance pool (it only compiles; the pool's reservations would count against its memory limit).
pub(crate) fn compile_only_engine(cache_dir: &std::path::Path) -> wasmtime::Result<Engine> {
    let mut config = compile_settings();
    config.cache(Some(open_cache(cache_dir)?));
    Engine::new(&config)
}

/// WASI 0.2 (sandboxed by each call's context) plus the world's own imports. The async WASI: a guest
/// waiting in a sleep or a poll waits on a future the call's timer can drop (see `call::run`).
fn world_linker(
    engine: &Engine,
    add_world: impl FnOnce(&mut Linker<CallState>) -> wasmtime::Result<()>,
) -> Result<Linker<CallState>, LoadError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .and_then(|()| add_world(&mut linker))
        .map_err(|e| LoadError::Engine(format!("linking the host interfaces: {e:#}")))?;
    Ok(linker)
}

/// First 16 bytes of a sha256 over the engine's precompile compatibility hash, in hex.
fn compatibility_key(engine: &Engine) -> String {
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn finish(&self) -> u64 {
            0 // unused: the digest is read directly
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..16])
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on its own thread; stops and joins on drop.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(mut tick: impl FnMut() + Send + 'static) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tether-epoch".into())
            .spawn(move || {
                // Waiting on the channel doubles as the tick timer and the stop signal: dropping the
                // sender wakes the thread at once instead of after a tick.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    tick();
                }
            })?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EpochTicker;
    use std::sync::{Arc, mpsc};

    #[test]
    fn the_ticker_ticks_and_its_thread_ends_when_dropped() {
        let (ticked, ticks) = mpsc::channel();
        let held = Arc::new(());
        let in_thread = held.clone();
        let ticker = EpochTicker::start(move || {
            let _keep = &in_thread;
            let _ = ticked.send(());
        })
        .unwrap();
        ticks.recv().expect("the ticker ticks");
        drop(ticker);
        // Drop joined the thread, which released everything its closure held.
        assert_eq!(Arc::strong_count(&held), 1);
        assert!(ticks.recv().is_err(), "no tick after drop");
    }
}
