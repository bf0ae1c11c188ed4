//! One call of one plugin: the store and its sandboxed WASI context, built fresh for the call and
//! dropped after it, and the translation of whatever went wrong into a [`PluginError`].
//!
//! A fresh store per call (rather than a long-lived instance) is what makes a plugin stateless: nothing
//! one project's rendering leaves in memory can reach another's, and a trap can't leave a half-updated
//! instance behind. With the pooling allocator and `InstancePre` this costs tens of microseconds.

use crate::bindings::proxy::tether::plugin::outbound::{self, OutboundError};
use crate::bindings::renderer::tether::plugin::log::{self, Level};
use crate::bindings::types::{self, HttpRequest, HttpResponse};
use crate::error::PluginError;
use crate::limits::MemoryLimiter;
use crate::output::GuestOutput;
use crate::services::OutboundTransport;
use crate::text;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tether_config::plugins::{AllowedUrl, PluginLimits};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Guest path of a renderer's source tree.
pub(crate) const SOURCE_DIR: &str = "/src";
/// Log messages per call; later ones are counted and dropped.
const LOG_MESSAGES_PER_CALL: u32 = 1000;

/// The data of one call's store.
pub(crate) struct CallState {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    logged: u32,
    outbound: Option<OutboundAccess>,
    output_cap: u64,
}

/// What a proxy may reach, and how.
#[derive(Clone)]
pub(crate) struct OutboundAccess {
    pub(crate) allowed: Arc<[AllowedUrl]>,
    pub(crate) transport: Arc<dyn OutboundTransport>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Everything a call needs besides the instance.
pub(crate) struct CallSetup<'a> {
    pub(crate) plugin: &'a Arc<str>,
    pub(crate) limits: &'a PluginLimits,
    pub(crate) source_dir: Option<&'a Path>,
    pub(crate) outbound: Option<OutboundAccess>,
}

/// Run `invoke` in a fresh, limited store and map every failure to a [`PluginError`].
///
/// `limits.timeout` is wall-clock time from the start of the call (instantiation included), whatever
/// the guest is doing:
/// - running its own code: the epoch callback runs at every tick (`EPOCH_TICK`), compares the wall
///   clock with the deadline and either stops the guest or yields to the executor;
/// - waiting in WASI (a sleep, a poll on a clock): the async WASI waits on a future, and the call's
///   timer drops the whole call — store, instance, stack and the waits in it — when it fires;
/// - a call that returns after its deadline (its last tick came late on a loaded machine) is a timeout
///   too: the elapsed wall time is checked once more at the end, so no call ever passes over its limit.
///
/// When this returns, the call holds nothing: the caller's thread and concurrency permit are free.
pub(crate) fn run<R>(
    engine: &Engine,
    setup: CallSetup<'_>,
    invoke: impl AsyncFnOnce(&mut Store<CallState>) -> wasmtime::Result<R>,
) -> Result<R, PluginError> {
    let plugin = setup.plugin.to_string();
    let stdout = GuestOutput::default();
    let stderr = GuestOutput::default();
    // A new builder grants nothing: no environment, arguments, preopens, stdin or network (its socket
    // check denies every address). Only what is added below is visible.
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        // File operations run on the call's own thread instead of a round trip through tokio's
        // blocking pool for each one (a kustomization's render makes hundreds: most of a small
        // render's system time). Safe for the time limit because the tree holds regular files,
        // directories and symlinks only (`tree`): none of them blocks beyond a disk read, and
        // the guest's code, with its epoch checks, runs between any two of them.
        .allow_blocking_current_thread(true);
    if let Some(dir) = setup.source_dir {
        wasi.preopened_dir(dir, SOURCE_DIR, FsPerms::ReadOnly)
            .map_err(|e| PluginError::SourceTree {
                plugin: plugin.clone(),
                path: dir.display().to_string(),
                reason: format!("{e:#}"),
            })?;
    }
    let state = CallState {
        plugin: setup.plugin.clone(),
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limiter: MemoryLimiter::new(setup.limits.memory.bytes()),
        logged: 0,
        outbound: setup.outbound,
        output_cap: setup.limits.output.bytes(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_hostcall_fuel(hostcall_fuel(setup.limits.output.bytes()));
    let timeout = setup.limits.timeout;
    let started = Instant::now();
    // Set before instantiation so that start functions and initialisers are bounded too.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if started.elapsed() >= timeout {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });

    // The timer is made inside the runtime (it registers with the runtime's clock when created).
    let result = wasmtime_wasi::runtime::in_tokio(async {
        tokio::time::timeout(timeout, invoke(&mut store)).await
    });
    let elapsed = started.elapsed();
    stdout.flush_to_log(&plugin, "stdout");
    let stderr_text = stderr.flush_to_log(&plugin, "stderr");
    let timed_out = || PluginError::Timeout {
        plugin: plugin.clone(),
        limit: timeout,
    };
    let Ok(result) = result else {
        return Err(timed_out());
    };
    let result = result.and_then(|value| {
        if elapsed > timeout {
            return Err(Trap::Interrupt.into());
        }
        Ok(value)
    });
    result.map_err(|error| {
        if let Some(wanted) = store.data().limiter.denied {
            return PluginError::MemoryLimit {
                plugin: plugin.clone(),
                limit: setup.limits.memory,
                wanted,
            };
        }
        if format!("{error:#}").contains(FUEL_EXHAUSTED) {
            return PluginError::OutputTooLarge {
                plugin: plugin.clone(),
                limit: setup.limits.output,
            };
        }
        let stderr = text::guest_lines(&stderr_text, text::STDERR_CAP);
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => timed_out(),
            Some(trap) => PluginError::Trap {
                plugin: plugin.clone(),
                trap: trap.to_string(),
                stderr,
            },
            None => PluginError::Trap {
                plugin: plugin.clone(),
                trap: text::guest_text(&format!("{error:#}"), text::TRAP_TEXT_CAP),
                stderr,
            },
        }
    })
}

/// wasmtime's own message when a call copies more than its hostcall fuel between guest and host (its
/// error type is private, so the text is what identifies it).
const FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// wasmtime counts the bytes a call copies from guest to host (strings, and lists at the host's size of
/// each element) against its "hostcall fuel", 128 MiB by default, which made any `limits.output` over
/// 128 MiB unreachable. Tied to `limits.output` instead: twice the limit plus 16 MiB leaves room for
/// the per-element overhead of many small objects, so an output near the limit is counted and refused
/// as `OutputLimit` with its size, at any setting up to the maximum; far past it, the copy itself is
/// stopped (`OutputTooLarge`, naming the same limit) before the host allocates it all.
pub(crate) fn hostcall_fuel(output_limit: u64) -> usize {
    let fuel = output_limit.saturating_mul(2).saturating_add(16 << 20);
    usize::try_from(fuel).unwrap_or(usize::MAX)
}

impl types::Host for CallState {}

impl log::Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        self.logged += 1;
        if self.logged > LOG_MESSAGES_PER_CALL {
            if self.logged == LOG_MESSAGES_PER_CALL + 1 {
                tracing::warn!(
                    plugin = &*self.plugin,
                    "more than {LOG_MESSAGES_PER_CALL} log messages in one call; dropping the rest"
                );
            }
            return;
        }
        let message = text::guest_text(&message, text::MESSAGE_CAP);
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl outbound::Host for CallState {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, OutboundError> {
        let Some(access) = &self.outbound else {
            return Err(OutboundError::Denied(format!(
                "plugin `{}` has no outbound access (only proxies with allowed_urls have)",
                self.plugin
            )));
        };
        if let Some(reason) = unsafe_target(&request.target) {
            return Err(OutboundError::Denied(format!(
                "URL `{}` refused: {reason}",
                request.target
            )));
        }
        if !access
            .allowed
            .iter()
            .any(|prefix| prefix.allows(&request.target))
        {
            let allowed: Vec<&str> = access.allowed.iter().map(AllowedUrl::as_str).collect();
            return Err(OutboundError::Denied(format!(
                "URL `{}` is not in the allowed_urls of plugin `{}` ({})",
                request.target,
                self.plugin,
                allowed.join(", ")
            )));
        }
        let response = access.transport.send(request)?;
        if response.body.len() as u64 > self.output_cap {
            return Err(OutboundError::TooLarge(self.output_cap));
        }
        Ok(response)
    }
}

/// Forms that could make a prefix match lie about where a request goes.
fn unsafe_target(url: &str) -> Option<&'static str> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('@') {
        return Some("user info in a URL is not allowed");
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c == '\\' || c == '#')
    {
        return Some("whitespace, backslashes and fragments are not allowed");
    }
    let path = after_scheme.split('?').next().unwrap_or_default();
    if path
        .split('/')
        .any(|segment| segment == ".." || segment == "." || segment.contains('%'))
    {
        return Some("dot segments and percent-encoding in the path are not allowed");
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_that_could_slip_past_a_prefix_are_refused() {
        use super::unsafe_target;
        assert_eq!(unsafe_target("http://prom:9090/api/v1/query"), None);
        assert!(unsafe_target("http://prom:9090/api/../admin").is_some());
        assert!(unsafe_target("http://prom:9090/api/%2e%2e/admin").is_some());
        assert!(unsafe_target("http://prom:9090@evil.example/api").is_some());
        assert!(unsafe_target("http://prom:9090/api#frag").is_some());
    }
}
