//! Hostile plugins: each gets a clear error naming the plugin and the cause; the host stays healthy and
//! the next call works.

mod common;

use common::{ENGINE, assert_next_call_works, empty_dir, load, read, renderer};
use std::time::{Duration, Instant};
use tether_config::plugins::{ByteSize, Settings};
use tether_plugin_host::artifacts;
use tether_plugin_host::{
    EngineOptions, GuestErrorKind, LoadError, PluginDefinition, PluginEngine, PluginError,
    PluginLimits, RenderRequest, World,
};

fn limits(memory_mib: u64, timeout_ms: u64, output: u64) -> PluginLimits {
    PluginLimits {
        memory: ByteSize(memory_mib << 20),
        timeout: Duration::from_millis(timeout_ms),
        output: ByteSize(output),
        ..PluginLimits::default()
    }
}

fn settings(pairs: &[(&str, &str)]) -> Settings {
    Settings::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
    .unwrap()
}

fn render_with(
    plugin: &tether_plugin_host::Plugin,
    pairs: &[(&str, &str)],
) -> Result<(), PluginError> {
    let dir = empty_dir();
    plugin
        .render(&RenderRequest::new(dir.path()).with_settings(settings(pairs)))
        .map(|_| ())
}

#[test]
fn an_infinite_loop_is_stopped_at_the_time_limit() {
    let plugin = load(
        "spinner",
        World::Renderer,
        artifacts::INFINITE_LOOP_PATH,
        limits(64, 200, 1 << 20),
    );
    for _ in 0..2 {
        let error = render_with(&plugin, &[]).unwrap_err();
        assert!(
            matches!(error, PluginError::Timeout { ref plugin, limit } if plugin == "spinner" && limit == Duration::from_millis(200)),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("`spinner`")
                && message.contains("200ms")
                && message.contains("limits.timeout"),
            "{message}"
        );
    }
    assert_next_call_works();
}

#[test]
fn a_memory_bomb_is_stopped_at_the_memory_limit() {
    let plugin = load(
        "bomb",
        World::Renderer,
        artifacts::MEMORY_BOMB_PATH,
        limits(48, 10_000, 1 << 20),
    );
    let error = render_with(&plugin, &[]).unwrap_err();
    let PluginError::MemoryLimit {
        plugin: name,
        limit,
        wanted,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(name, "bomb");
    assert_eq!(*limit, ByteSize(48 << 20));
    assert!(*wanted > 48 << 20);
    assert!(
        error.to_string().contains("limits.memory") && error.to_string().contains("48Mi"),
        "{error}"
    );
    assert_next_call_works();
}

#[test]
fn a_gibibyte_of_output_never_reaches_the_host() {
    // Building 1 GiB needs 1 GiB of guest memory first: the memory limit stops it.
    let plugin = load(
        "huge",
        World::Renderer,
        artifacts::HUGE_OUTPUT_PATH,
        limits(64, 10_000, 16 << 20),
    );
    let error = render_with(&plugin, &[]).unwrap_err();
    assert!(
        matches!(error, PluginError::MemoryLimit { ref plugin, .. } if plugin == "huge"),
        "{error:?}"
    );
    assert_next_call_works();
}

#[test]
fn output_over_the_output_limit_is_refused_whole() {
    let plugin = load(
        "huge",
        World::Renderer,
        artifacts::HUGE_OUTPUT_PATH,
        limits(64, 10_000, 1 << 20),
    );
    let error = render_with(&plugin, &[("bytes", "3145728")]).unwrap_err();
    let PluginError::OutputLimit {
        plugin: name,
        limit,
        size,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!((name.as_str(), *limit), ("huge", ByteSize(1 << 20)));
    assert!(*size > 3 << 20);
    assert!(error.to_string().contains("limits.output"), "{error}");
    // Under the limit the same plugin's output is accepted.
    render_with(&plugin, &[("bytes", "1000")])
        .expect_err("1 MiB object is still over 1 MiB with its JSON");
    let roomy = load(
        "huge",
        World::Renderer,
        artifacts::HUGE_OUTPUT_PATH,
        limits(64, 10_000, 4 << 20),
    );
    render_with(&roomy, &[("bytes", "3145728")]).expect("3 MiB fits under 4 MiB");
    assert_next_call_works();
}

fn escape_attempt(attempt: &str) -> PluginError {
    let plugin = renderer("escape", artifacts::ESCAPE_PATH);
    render_with(&plugin, &[("try", attempt), ("port", "1")]).unwrap_err()
}

fn assert_denied(error: &PluginError, attempt: &str) {
    match error {
        PluginError::Guest { plugin, error } => {
            assert_eq!(plugin, "escape");
            assert_eq!(error.kind, GuestErrorKind::Denied, "{error}");
            assert!(error.message.starts_with(attempt), "{error}");
            assert!(!error.message.contains("ESCAPED"), "{error}");
        }
        other => panic!("expected the plugin's own denied error, got {other:?}"),
    }
}

#[test]
fn etc_passwd_is_not_visible() {
    let error = escape_attempt("passwd");
    assert_denied(&error, "passwd");
    assert!(error.to_string().contains("plugin `escape`"), "{error}");
    assert_next_call_works();
}

#[test]
fn the_source_tree_has_no_way_up_and_is_read_only() {
    assert_denied(&escape_attempt("parent"), "parent");
    let dir = empty_dir();
    let plugin = renderer("escape", artifacts::ESCAPE_PATH);
    let error = plugin
        .render(&RenderRequest::new(dir.path()).with_settings(settings(&[("try", "write")])))
        .unwrap_err();
    assert_denied(&error, "write");
    assert!(
        !dir.path().join("planted.yaml").exists(),
        "nothing was written to the source tree"
    );
}

#[test]
fn sockets_cannot_be_opened() {
    // A listener the plugin would reach if networking were allowed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let plugin = renderer("escape", artifacts::ESCAPE_PATH);
    let error = render_with(&plugin, &[("try", "socket"), ("port", &port)]).unwrap_err();
    assert_denied(&error, "socket");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "no connection arrived");
    assert_next_call_works();
}

#[test]
fn the_environment_is_empty() {
    let plugin = renderer("escape", artifacts::ESCAPE_PATH);
    let dir = empty_dir();
    let output = plugin
        .render(&RenderRequest::new(dir.path()).with_settings(settings(&[("try", "env")])))
        .expect("the plugin reports an empty environment as success");
    assert_eq!(output.objects[0].name(), "env-empty");
}

#[test]
fn a_trap_is_a_plugin_error_with_its_stderr() {
    let plugin = renderer("trapper", artifacts::TRAP_PATH);
    let error = render_with(&plugin, &[]).unwrap_err();
    let PluginError::Trap {
        plugin: name,
        trap,
        stderr,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(name, "trapper");
    assert!(trap.contains("unreachable"), "{trap}");
    assert!(stderr.contains("the trap plugin always panics"), "{stderr}");
    assert!(
        error.to_string().contains("plugin `trapper` crashed"),
        "{error}"
    );
    assert_next_call_works();
}

#[test]
fn guest_output_past_its_cap_is_dropped_without_breaking_the_plugin() {
    // 20 000 lines of stderr are far past the capture cap; the plugin still reaches its own panic
    // instead of failing on a refused write. The subject is the cap, not time: 20 000 WASI writes
    // take close to the default 10 s in a debug build, so the time limit is out of the way.
    let plugin = load(
        "trapper",
        World::Renderer,
        artifacts::TRAP_PATH,
        PluginLimits {
            timeout: Duration::from_secs(120),
            ..PluginLimits::default()
        },
    );
    let error = render_with(&plugin, &[("stderr-lines", "20000")]).unwrap_err();
    let PluginError::Trap { stderr, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(stderr.len() <= 64 * 1024, "captured {} bytes", stderr.len());
    assert!(stderr.contains("line 0 before the panic"));
}

#[test]
fn exports_that_do_not_match_the_world_are_refused_at_load() {
    let bytes = read(artifacts::WRONG_EXPORTS_PATH);
    let error = ENGINE
        .load(PluginDefinition::new("liar", World::Renderer, &bytes))
        .unwrap_err();
    assert!(
        matches!(error, LoadError::WorldMismatch { ref plugin, world: World::Renderer, .. } if plugin == "liar"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("does not implement the renderer world"),
        "{error}"
    );

    let proxy = read(artifacts::PROXY_PATH);
    let error = ENGINE
        .load(PluginDefinition::new(
            "proxy-as-renderer",
            World::Renderer,
            &proxy,
        ))
        .unwrap_err();
    assert!(
        error.to_string().contains("its exports say it is a proxy"),
        "{error}"
    );
    assert_next_call_works();
}

#[test]
fn a_failed_call_gives_back_its_concurrency_slot() {
    let limits = PluginLimits {
        concurrency: 1,
        ..limits(64, 200, 1 << 20)
    };
    let plugin = load(
        "spinner",
        World::Renderer,
        artifacts::INFINITE_LOOP_PATH,
        limits,
    );
    assert_eq!(plugin.concurrency().limit(), 1);
    for _ in 0..2 {
        // With one slot, a slot leaked by the first failure would block the second call forever.
        render_with(&plugin, &[]).unwrap_err();
        assert_eq!(plugin.concurrency().in_flight(), 0);
    }
    let held = plugin
        .concurrency()
        .try_acquire()
        .expect("the slot is free");
    assert!(
        plugin.concurrency().try_acquire().is_none(),
        "one call at a time"
    );
    drop(held);
}

#[test]
fn a_plugin_for_an_unknown_contract_version_is_refused_naming_the_version() {
    let bytes = read(artifacts::FUTURE_VERSION_PATH);
    let error = ENGINE
        .load(PluginDefinition::new("future", World::Renderer, &bytes))
        .unwrap_err();
    assert!(
        matches!(error, LoadError::WorldMismatch { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("it targets tether:plugin@0.2.0; this host supports tether:plugin@0.1.0"),
        "{error}"
    );
}

#[test]
fn a_sha256_mismatch_is_refused_before_compiling() {
    let bytes = read(artifacts::HELLO_PATH);
    let wrong = "0".repeat(64).parse().unwrap();
    let error = ENGINE
        .load(PluginDefinition {
            sha256: Some(wrong),
            ..PluginDefinition::new("pinned", World::Renderer, &bytes)
        })
        .unwrap_err();
    assert!(
        matches!(error, LoadError::Sha256Mismatch { ref plugin, .. } if plugin == "pinned"),
        "{error:?}"
    );
    assert!(error.to_string().contains("sha256 mismatch"), "{error}");
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    for (what, bytes) in [
        ("text", b"apiVersion: v1\n".to_vec()),
        ("core module", b"\0asm\x01\0\0\0".to_vec()),
    ] {
        let error = ENGINE
            .load(PluginDefinition::new("junk", World::Renderer, &bytes))
            .unwrap_err();
        assert!(
            matches!(error, LoadError::NotAComponent { .. }),
            "{what}: {error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("plugin `junk` is not a valid WebAssembly component"),
            "{error}"
        );
    }
}

#[test]
fn a_missing_source_tree_names_the_plugin() {
    let plugin = renderer("raw", artifacts::RAW_PATH);
    let error = plugin
        .render(&RenderRequest::new("/nonexistent/tether"))
        .unwrap_err();
    assert!(matches!(error, PluginError::SourceTree { .. }), "{error:?}");
    assert!(error.to_string().contains("plugin `raw`"), "{error}");
}

// Gap: the time limit stopped at host calls. A guest waiting in WASI runs no code of its own, so no
// epoch check ever ran: a 45 s sleep ended after 45 s, a forever sleep never.
#[test]
fn a_plugin_waiting_in_wasi_is_stopped_at_the_time_limit_and_gives_back_its_slot() {
    let limits = PluginLimits {
        concurrency: 1,
        ..limits(64, 300, 1 << 20)
    };
    let plugin = load("sleeper", World::Renderer, artifacts::SLEEPER_PATH, limits);
    for wait in [
        &[("wait", "sleep"), ("seconds", "45")][..],
        &[("wait", "forever")][..],
    ] {
        let started = Instant::now();
        let error = render_with(&plugin, wait).unwrap_err();
        assert!(
            matches!(error, PluginError::Timeout { ref plugin, limit } if plugin == "sleeper" && limit == Duration::from_millis(300)),
            "{wait:?}: {error:?}"
        );
        // Not a speed target: the guest asked for 45 s or forever; anything near that means the call
        // was not stopped.
        assert!(started.elapsed() < Duration::from_secs(30), "{wait:?}");
        // With one slot, a slot kept by the stopped call would block every later call.
        assert_eq!(plugin.concurrency().in_flight(), 0, "{wait:?}");
    }
    // The same plugin, asked to wait for nothing, runs to its own answer.
    let error = render_with(&plugin, &[("seconds", "0")]).unwrap_err();
    assert!(
        matches!(&error, PluginError::Guest { error, .. } if error.message == "woke up"),
        "{error:?}"
    );
    assert_next_call_works();
}

// A FIFO, socket or device in a tree would block the host thread that opens it beyond any timer's
// reach. It is left out of what the plugin sees (with a warning), and the rest of the tree renders.
#[test]
fn a_source_tree_with_a_fifo_or_a_socket_renders_without_them() {
    let dir = empty_dir();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    std::fs::create_dir(dir.path().join("deeper")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("deeper/socket")).unwrap();
    std::fs::write(dir.path().join("data"), "12345").unwrap();
    std::fs::write(
        dir.path().join("deeper/map.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("deeper/map.yaml", dir.path().join("link.yaml")).unwrap();
    let plugin = load(
        "sleeper",
        World::Renderer,
        artifacts::SLEEPER_PATH,
        limits(64, 2000, 1 << 20),
    );
    let read = |file: &str| {
        let request = RenderRequest::new(dir.path())
            .with_settings(settings(&[("wait", "fifo"), ("file", file)]));
        plugin.render(&request).unwrap_err().to_string()
    };
    // The FIFO is not there to block on: the guest's read fails at once instead of timing out.
    let error = read("pipe");
    assert!(error.contains("/src/pipe"), "{error}");
    assert!(!error.contains("time limit"), "{error}");
    // Everything else is.
    assert!(read("data").contains("read 5 bytes"));
    assert!(read("link.yaml").contains("read 54 bytes"));
    assert_eq!(plugin.concurrency().in_flight(), 0);

    // A renderer that succeeds says what it left out; the tree itself is untouched.
    let raw = renderer("raw", artifacts::RAW_PATH);
    let output = raw
        .render(&RenderRequest::new(dir.path()).with_settings(settings(&[("glob", "deeper/*")])))
        .unwrap();
    let names: Vec<&str> = output
        .objects
        .iter()
        .map(|o| o.manifest["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kept"]);
    let warnings: Vec<&str> = output.warnings.iter().map(|w| w.message.as_str()).collect();
    for special in ["`pipe`", "`deeper/socket`"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(special) && w.contains("left out")),
            "{special}: {warnings:?}"
        );
    }
    let kind = std::fs::symlink_metadata(dir.path().join("pipe"))
        .unwrap()
        .file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind));
    assert_next_call_works();
}

// Gap: compilation was unbounded. Each limit is named, with the plugin, before anything compiles.
#[test]
fn a_component_over_the_compile_limits_is_refused_naming_the_limit() {
    let function = huge_function_module(tether_plugin_host::MAX_FUNCTION_SIZE + 1);
    let error = ENGINE
        .load(PluginDefinition::new("slow", World::Renderer, &function))
        .unwrap_err();
    assert!(
        matches!(error, LoadError::CompileLimit { ref plugin, limit: "function size", .. } if plugin == "slow"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("plugin `slow` was not compiled"),
        "{error}"
    );

    let mut big = read(artifacts::HELLO_PATH);
    big.resize(tether_plugin_host::MAX_COMPONENT_SIZE + 1, 0);
    let error = ENGINE
        .load(PluginDefinition::new("big", World::Renderer, &big))
        .unwrap_err();
    assert!(
        matches!(error, LoadError::CompileLimit { ref plugin, limit: "component size", .. } if plugin == "big"),
        "{error:?}"
    );
    assert_next_call_works();
}

#[test]
fn a_compilation_past_its_deadline_is_refused_and_the_engine_carries_on() {
    // No cache, and a deadline no real compilation meets.
    let engine = PluginEngine::new(EngineOptions {
        cache_dir: None,
        pool_slots: 2,
        compile_timeout: Duration::from_micros(1),
        ..EngineOptions::default()
    })
    .unwrap();
    let bytes = read(artifacts::HELLO_PATH);
    let error = engine
        .load(PluginDefinition::new("hello", World::Renderer, &bytes))
        .unwrap_err();
    assert!(
        matches!(error, LoadError::CompileLimit { ref plugin, limit: "compile time", .. } if plugin == "hello"),
        "{error:?}"
    );
    assert!(error.to_string().contains("compile time"), "{error}");
    assert_next_call_works();
}

/// An engine compiling in a child process (the plugin host's own compiler program), with a cache of
/// its own.
fn process_engine(timeout: Duration, memory: ByteSize) -> (PluginEngine, tempfile::TempDir) {
    let cache = empty_dir();
    let engine = PluginEngine::new(EngineOptions {
        cache_dir: Some(cache.path().to_owned()),
        pool_slots: 2,
        compile_timeout: timeout,
        compile_memory: memory,
        compiler_program: Some(env!("CARGO_BIN_EXE_tether-plugin-compile").into()),
    })
    .unwrap();
    (engine, cache)
}

/// Processes whose command line mentions `needle` (a test's own temporary directory).
fn processes_mentioning(needle: &std::path::Path) -> Vec<String> {
    let needle = needle.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.ok()?.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(&needle).then_some(cmdline)
        })
        .collect()
}

// Within the size limits, a component can still be built to make compiling slow and hungry. In a
// compiler process it is stopped at either limit, named; the host carries on.
#[test]
fn a_compilation_over_its_memory_limit_is_stopped_naming_the_limit() {
    let (engine, _cache) = process_engine(Duration::from_secs(600), ByteSize(256 << 20));
    let expensive = tether_plugin_host::hostile::expensive_component(60_000);
    let started = Instant::now();
    let error = engine
        .load(PluginDefinition::new("hungry", World::Renderer, &expensive))
        .unwrap_err();
    assert!(
        matches!(error, LoadError::CompileLimit { ref plugin, limit: "compile memory", .. } if plugin == "hungry"),
        "{error:?} after {:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains("256Mi"), "{error}");
    // The same engine compiles and runs a well-behaved plugin, through the same child process and
    // cache.
    let hello = engine
        .load(PluginDefinition::new(
            "hello",
            World::Renderer,
            &read(artifacts::HELLO_PATH),
        ))
        .unwrap();
    hello
        .render(&RenderRequest::new(empty_dir().path()))
        .unwrap();
    assert_eq!(
        engine.cache_hits_and_misses(),
        Some((1, 0)),
        "the host read what the compiler process compiled"
    );
}

#[test]
fn a_compilation_past_its_deadline_is_killed() {
    let (engine, cache) = process_engine(Duration::from_secs(2), ByteSize(8 << 30));
    let expensive = tether_plugin_host::hostile::expensive_component(200_000);
    let started = Instant::now();
    let error = engine
        .load(PluginDefinition::new("slow", World::Renderer, &expensive))
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error, LoadError::CompileLimit { ref plugin, limit: "compile time", .. } if plugin == "slow"),
        "{error:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    // Stopped, not abandoned: no compiler process of this engine is left.
    assert_eq!(processes_mentioning(cache.path()), Vec::<String>::new());
}

#[test]
fn a_component_compiled_by_a_compiler_process_is_loaded_from_the_cache_afterwards() {
    let (first, cache) = process_engine(
        Duration::from_secs(600),
        tether_plugin_host::DEFAULT_COMPILE_MEMORY,
    );
    let bytes = read(artifacts::HELLO_PATH);
    first
        .load(PluginDefinition::new("hello", World::Renderer, &bytes))
        .unwrap();
    assert_eq!(first.cache_hits_and_misses(), Some((1, 0)));
    let marker_time = |engine: &PluginEngine| {
        let dir = engine.cache_dir().unwrap().join("compiled");
        let entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(entries.len(), 1);
        entries[0].metadata().unwrap().modified().unwrap()
    };
    let compiled_at = marker_time(&first);
    drop(first);
    // A restart: no compiler process runs again (it would rewrite the record), the cache is read.
    let second = PluginEngine::new(EngineOptions {
        cache_dir: Some(cache.path().to_owned()),
        pool_slots: 2,
        compiler_program: Some("/nonexistent/compiler".into()),
        ..EngineOptions::default()
    })
    .unwrap();
    second
        .load(PluginDefinition::new("hello", World::Renderer, &bytes))
        .unwrap();
    assert_eq!(second.cache_hits_and_misses(), Some((1, 0)));
    assert_eq!(marker_time(&second), compiled_at);
    // A compiler that cannot start is an error naming it, not a silent compilation in the host.
    let raw = read(artifacts::RAW_PATH);
    let error = second
        .load(PluginDefinition::new("raw", World::Renderer, &raw))
        .unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/compiler"),
        "{error}"
    );
}

#[test]
fn component_files_are_sized_before_they_are_read() {
    let dir = empty_dir();
    let sparse = dir.path().join("huge.wasm");
    let file = std::fs::File::create(&sparse).unwrap();
    file.set_len(tether_plugin_host::MAX_COMPONENT_SIZE as u64 + 1)
        .unwrap();
    let error = tether_plugin_host::read_component_file(&sparse).unwrap_err();
    assert!(error.to_string().contains("over the limit"), "{error}");
    let fifo = dir.path().join("fifo.wasm");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let error = tether_plugin_host::read_component_file(&fifo).unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

/// A core module with one function whose body is `size` bytes of `nop`.
fn huge_function_module(size: usize) -> Vec<u8> {
    fn leb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = vec![0]; // no locals
    body.resize(size - 1, 0x01);
    body.push(0x0b);
    let mut code = vec![1];
    leb(body.len() as u64, &mut code);
    code.extend(body);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.extend([1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10]);
    leb(code.len() as u64, &mut module);
    module.extend(code);
    module
}

// Gap: host-side YAML was quadratic on deep flow nesting (200 KB took 32 s in the parser).
#[test]
fn deeply_nested_yaml_is_refused_before_the_parser_with_file_and_line() {
    // Under the 128 KiB cap of a configuration file.
    let depth = 30_000;
    let text = format!(
        "gitops:\n  manifest_projects: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let error =
        tether_config::agent::parse_agent_config(&text, "agents/a/config.yaml").unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("agents/a/config.yaml:2") && message.contains("nested more than"),
        "{message}"
    );
    let error = tether_config::plugins::parse_plugins_section(&text, "plugins.yaml").unwrap_err();
    assert_eq!(error.line, Some(2), "{error}");
}

// Gap: guest text reached terminals and reports unfiltered and uncapped.
#[test]
fn guest_text_is_capped_and_its_control_characters_escaped() {
    let plugin = load(
        "liar",
        World::Renderer,
        artifacts::BAD_OUTPUT_PATH,
        limits(128, 10_000, 1 << 20),
    );
    // 2 × 10 MB of text (message and file name) is more than the host copies for a 1 MiB output limit.
    let error = render_with(&plugin, &[("case", "error"), ("bytes", "10000000")]).unwrap_err();
    assert!(
        matches!(error, PluginError::OutputTooLarge { ref plugin, .. } if plugin == "liar"),
        "{error:?}"
    );
    // 2 × 4 MB is copied, and cut to a readable size.
    let error = render_with(&plugin, &[("case", "error"), ("bytes", "4000000")]).unwrap_err();
    let PluginError::Guest { error: guest, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(guest.message.len() < 8192, "{}", guest.message.len());
    let file = &guest.location.as_ref().unwrap().file;
    assert!(file.len() < 2048, "{}", file.len());
    let shown = error.to_string();
    assert!(
        !shown.contains(['\u{1b}', '\u{7}', '\r', '\n', '\u{202e}']),
        "{shown:?}"
    );
    assert!(shown.contains("\\u{1b}]0;pwned"), "escaped, not dropped");

    let dir = empty_dir();
    let output = plugin
        .render(&RenderRequest::new(dir.path()).with_settings(settings(&[("case", "warnings")])))
        .expect("a good object with hostile warnings renders");
    let warning = &output.warnings[0];
    for text in [
        warning.message.as_str(),
        warning.location.as_ref().unwrap().file.as_str(),
        output.objects[0].origin.as_ref().unwrap().file.as_str(),
    ] {
        assert!(!text.contains(char::is_control), "{text:?}");
    }

    let error = render_with(&plugin, &[("case", "stderr")]).unwrap_err();
    let PluginError::Trap { stderr, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(
        !stderr.contains(['\u{1b}', '\u{7}', '\r', '\u{202e}']),
        "{stderr:?}"
    );
    assert!(!error.to_string().contains('\u{1b}'), "{error}");
    assert_next_call_works();
}

// Gap: returned objects were checked for shape only.
fn objects_error(manifests: &[&str]) -> PluginError {
    objects_result(manifests).unwrap_err()
}

fn objects_result(manifests: &[&str]) -> Result<tether_plugin_host::RenderOutput, PluginError> {
    let plugin = renderer("liar", artifacts::BAD_OUTPUT_PATH);
    let keys: Vec<String> = (0..manifests.len()).map(|i| format!("object{i}")).collect();
    let mut pairs = vec![("case", "objects")];
    pairs.extend(
        keys.iter()
            .map(String::as_str)
            .zip(manifests.iter().copied()),
    );
    let dir = empty_dir();
    plugin.render(&RenderRequest::new(dir.path()).with_settings(settings(&pairs)))
}

fn config_map(name: &str) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        .to_string()
}

#[test]
fn returned_objects_are_checked_as_the_api_server_would() {
    let good = objects_result(&[&config_map("a"), &config_map("b.c-d")]).expect("valid objects");
    assert_eq!(good.objects.len(), 2);

    let too_long = "a".repeat(300);
    for name in ["a/b", "..", "Upper", "new\nline", too_long.as_str()] {
        let error = objects_error(&[&config_map(name)]);
        let PluginError::InvalidOutput {
            plugin,
            index,
            origin,
            reason,
        } = &error
        else {
            panic!("{name:?}: {error:?}")
        };
        assert_eq!((plugin.as_str(), *index), ("liar", 0));
        assert_eq!(origin.as_deref(), Some("object0"));
        assert!(
            reason.contains("ConfigMap/") && reason.contains("metadata.name"),
            "{reason}"
        );
        assert!(!error.to_string().contains('\n'), "{error}");
    }

    let cases: [(&[&str], &str); 4] = [
        (
            &[
                r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team","namespace":"default"}}"#,
            ],
            "cluster-scoped",
        ),
        (
            &[r#"{"apiVersion":"v1","kind":"List","metadata":{"name":"all"},"items":[]}"#],
            "List",
        ),
        (
            &[r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"kind":"Secret"}"#],
            "key `kind` appears twice",
        ),
        (
            &[
                &config_map("same"),
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"same","namespace":"default"}}"#,
            ],
            "object #0 is ConfigMap/default/same too",
        ),
    ];
    for (manifests, expected) in cases {
        let error = objects_error(manifests);
        assert!(
            matches!(error, PluginError::InvalidOutput { ref plugin, .. } if plugin == "liar"),
            "{error:?}"
        );
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
    assert_next_call_works();
}

// Gap: a limits.output over 128 MiB was unreachable: wasmtime's default hostcall fuel (128 MiB)
// stopped the copy first, with a message that named no limit.
#[test]
fn an_output_limit_over_128_mib_is_reachable() {
    let plugin = load(
        "huge",
        World::Renderer,
        artifacts::HUGE_OUTPUT_PATH,
        limits(1024, 120_000, 256 << 20),
    );
    let output = render_with_output(&plugin, &[("bytes", &(140u64 << 20).to_string())])
        .expect("140 MiB fits under a 256 MiB output limit");
    assert_eq!(output.objects.len(), 140);
    drop(output);
    // Far over a small limit, the copy is stopped and the limit named.
    let small = load(
        "huge",
        World::Renderer,
        artifacts::HUGE_OUTPUT_PATH,
        limits(256, 60_000, 1 << 20),
    );
    let error = render_with(&small, &[("bytes", &(64u64 << 20).to_string())]).unwrap_err();
    assert!(error.to_string().contains("limits.output"), "{error}");
    assert_next_call_works();
}

fn render_with_output(
    plugin: &tether_plugin_host::Plugin,
    pairs: &[(&str, &str)],
) -> Result<tether_plugin_host::RenderOutput, PluginError> {
    let dir = empty_dir();
    plugin.render(&RenderRequest::new(dir.path()).with_settings(settings(pairs)))
}

/// Where this test binary's log goes. Global rather than scoped: tracing caches each call site's
/// interest, and a site first reached by a parallel test without a subscriber would stay silent for a
/// scoped one.
#[derive(Clone, Default)]
struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOG: std::sync::LazyLock<LogSink> = std::sync::LazyLock::new(|| {
    let sink = LogSink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other subscriber in this binary");
    sink
});

#[test]
fn guest_stderr_goes_to_the_log_tagged_with_the_plugin() {
    let sink = std::sync::LazyLock::force(&LOG);
    let plugin = renderer("chatty", artifacts::TRAP_PATH);
    render_with(&plugin, &[("stderr-lines", "20000")]).unwrap_err();
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("plugin=\"chatty\""))
        .collect();
    assert!(
        ours.iter().any(|l| l.contains("stream=\"stderr\"")
            && l.contains("trap plugin: line 0 before the panic")),
        "{:?}",
        &ours[..ours.len().min(5)]
    );
    assert!(
        ours.iter()
            .any(|l| l.contains("guest output over 65536 bytes was dropped")),
        "the cap is reported"
    );
    assert!(
        !ours.iter().any(|l| l.contains("line 19999")),
        "lines past the cap are not logged"
    );
}
