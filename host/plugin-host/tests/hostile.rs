//! Hostile plugins: each gets a clear error naming the plugin and the cause; the host stays healthy and
//! the next call works.

mod common;

use common::{ENGINE, assert_next_call_works, empty_dir, load, read, renderer};
use std::time::Duration;
use tether_config::plugins::{ByteSize, Settings};
use tether_plugin_host::artifacts;
use tether_plugin_host::{
    GuestErrorKind, LoadError, PluginDefinition, PluginError, PluginLimits, RenderRequest, World,
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
    // instead of failing on a refused write.
    let plugin = renderer("trapper", artifacts::TRAP_PATH);
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
