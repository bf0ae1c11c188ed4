//! Compilation in a child process: the only way to cap the memory a compilation uses and to stop
//! one that runs past its deadline (a thread can be neither). The agent and the CLI run themselves
//! again with [`COMPILE_SUBCOMMAND`]; the child lowers its own data limit, compiles with an engine of
//! the same compile settings into the same on-disk cache, and exits. The parent kills it at the
//! deadline, and then loads the compiled code from the cache — wasmtime's own cache, which verifies
//! what it reads (loading serialized code any other way would take `unsafe`, which this workspace
//! forbids).
//!
//! Protocol: `PROGRAM __compile-plugin CACHE_DIR MEMORY_BYTES`, the component on stdin. Exit 0: the
//! compiled code is in `CACHE_DIR`; exit 3: the bytes do not compile (the reason on stderr); exit 4:
//! the compilation ran out of memory under the limit; killed by SIGABRT: likewise (an allocation
//! failed in the compiler, which aborts).

use crate::error::LoadError;
use crate::text;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;
use tether_config::plugins::ByteSize;

/// The first argument that makes a program a compiler process.
pub const COMPILE_SUBCOMMAND: &str = "__compile-plugin";

/// How much memory a compilation may use by default: its process's data limit (heap and private
/// writable mappings). The 18 MB Python renderer compiles in well under it; the components built to
/// exhaust a host pass it within seconds.
pub const DEFAULT_COMPILE_MEMORY: ByteSize = ByteSize(1 << 30);

const EXIT_NOT_A_COMPONENT: i32 = 3;
const EXIT_OUT_OF_MEMORY: i32 = 4;
/// What the parent keeps of a child's stderr (its own messages, never the guest's output).
const STDERR_CAP: u64 = 64 << 10;

/// How an engine compiles.
#[derive(Debug)]
pub(crate) enum Compiler {
    /// On a thread of this process, waited for at most `timeout`. It can neither be stopped nor
    /// capped in memory: for tests and embedders that have no compiler program.
    Thread { timeout: Duration },
    /// In a child process, under a memory cap, killed at the deadline.
    Process(CompilerProcess),
}

#[derive(Debug)]
pub(crate) struct CompilerProcess {
    pub(crate) program: PathBuf,
    /// wasmtime's compile cache of the engine, where the child leaves what it compiled.
    pub(crate) cache_dir: PathBuf,
    /// Beside it: a record of each component a compiler process compiled, by sha256.
    pub(crate) compiled_dir: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) memory: ByteSize,
}

impl CompilerProcess {
    /// Where the host records that a compiler process compiled the component with this sha256 into
    /// the cache. Its presence lets a later load read the cache at once; only the host writes it,
    /// after a compilation within the limits.
    pub(crate) fn marker(&self, digest: &str) -> PathBuf {
        self.compiled_dir.join(digest)
    }

    /// Compile `bytes` in a child process; `Ok` when its code is in the cache.
    pub(crate) fn run(&self, plugin: &str, bytes: &[u8]) -> Result<(), LoadError> {
        let limit = |limit: &'static str, detail: String| LoadError::CompileLimit {
            plugin: plugin.to_owned(),
            limit,
            detail,
        };
        let engine_error = |what: &str, e: std::io::Error| {
            LoadError::Engine(format!(
                "{what} the compiler process {}: {e}",
                self.program.display()
            ))
        };
        let mut child = Command::new(&self.program)
            .arg(COMPILE_SUBCOMMAND)
            .arg(&self.cache_dir)
            .arg(self.memory.bytes().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| engine_error("cannot start", e))?;
        // Both pipes on threads of their own, so that the deadline below holds whatever the child
        // does with them; a child that exits early makes the write fail, which is ignored.
        let mut stdin = child.stdin.take();
        let input = bytes.to_vec();
        let writer = std::thread::Builder::new()
            .name("tether-compile-in".into())
            .spawn(move || {
                if let Some(stdin) = stdin.as_mut() {
                    let _ = stdin.write_all(&input);
                }
            })
            .map_err(|e| engine_error("cannot feed", e))?;
        let stderr = child.stderr.take();
        let (done, finished) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("tether-compile-err".into())
            .spawn(move || {
                let mut text = String::new();
                if let Some(stderr) = stderr {
                    let _ = stderr.take(STDERR_CAP).read_to_string(&mut text);
                }
                // End of stderr: the child has exited (or closed it to exit).
                let _ = done.send(text);
            })
            .map_err(|e| engine_error("cannot watch", e))?;
        let stderr = match finished.recv_timeout(self.timeout) {
            Ok(text) => text,
            Err(_) => {
                // The deadline: the compilation really stops, its memory is freed.
                let _ = child.kill();
                let _ = child.wait();
                let _ = writer.join();
                return Err(limit(
                    "compile time",
                    format!(
                        "compiling took longer than {}s; the compiler was stopped",
                        self.timeout.as_secs_f64()
                    ),
                ));
            }
        };
        let status = child
            .wait()
            .map_err(|e| engine_error("cannot wait for", e))?;
        let _ = writer.join();
        let message = text::guest_text(stderr.trim(), text::MESSAGE_CAP);
        let out_of_memory = || {
            limit(
                "compile memory",
                format!(
                    "compiling needed more than {} of memory; the compiler was stopped",
                    self.memory
                ),
            )
        };
        match (status.code(), status.signal()) {
            (Some(0), _) => Ok(()),
            (Some(EXIT_NOT_A_COMPONENT), _) => Err(LoadError::NotAComponent {
                plugin: plugin.to_owned(),
                reason: message,
            }),
            (Some(EXIT_OUT_OF_MEMORY), _) => Err(out_of_memory()),
            // Rust aborts when an allocation fails; so does a failed `mmap` deep in the compiler.
            (None, Some(6)) => Err(out_of_memory()),
            (None, Some(9)) => Err(LoadError::Engine(format!(
                "the compiler process for plugin `{plugin}` was killed (SIGKILL; the container's memory \
                 limit?)"
            ))),
            _ => Err(LoadError::Engine(format!(
                "the compiler process for plugin `{plugin}` failed ({status}): {message}"
            ))),
        }
    }
}

/// Whether this program's `main` called [`run_compiler_process_if_asked`], and so can be its own
/// compiler.
static SELF_COMPILER: OnceLock<()> = OnceLock::new();

/// Call first thing in `main`: when the program was started as a compiler process, this compiles
/// and returns the exit code; otherwise it returns `None`, and from then on
/// [`compiler_program`] names this program.
pub fn run_compiler_process_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|first| first != COMPILE_SUBCOMMAND) {
        let _ = SELF_COMPILER.set(());
        return None;
    }
    let args: Vec<OsString> = args.collect();
    Some(match compile_in_this_process(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            let _ = writeln!(std::io::stderr(), "{message}");
            ExitCode::from(code)
        }
    })
}

/// This program, when its `main` can act as a compiler process (it called
/// [`run_compiler_process_if_asked`]): what [`EngineOptions::compiler_program`](crate::EngineOptions)
/// should be. `None` in a test harness or a program that embeds the engine otherwise.
pub fn compiler_program() -> Option<PathBuf> {
    SELF_COMPILER.get()?;
    std::env::current_exe().ok()
}

fn compile_in_this_process(args: &[OsString]) -> Result<(), (u8, String)> {
    let usage = || {
        (
            2,
            format!("usage: {COMPILE_SUBCOMMAND} CACHE_DIR MEMORY_BYTES < component.wasm"),
        )
    };
    let [cache_dir, memory] = args else {
        return Err(usage());
    };
    let memory: u64 = memory
        .to_str()
        .and_then(|m| m.parse().ok())
        .ok_or_else(usage)?;
    // The data limit covers the heap and every private writable mapping (what the compiler
    // allocates), not reserved address space nobody touches. Lowered by the process itself, before
    // it reads the component: nothing it does afterwards can raise it again.
    let limit = rustix::process::Rlimit {
        current: Some(memory),
        maximum: Some(memory),
    };
    rustix::process::setrlimit(rustix::process::Resource::Data, limit)
        .map_err(|e| (1, format!("cannot set the compile memory limit: {e}")))?;
    // If a container's memory limit is hit anyway, the kernel kills this process, not its parent.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(crate::compile::MAX_COMPONENT_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| (1, format!("cannot read the component: {e}")))?;
    let engine = crate::engine::compile_only_engine(Path::new(cache_dir))
        .map_err(|e| (1, format!("cannot make the engine: {e:#}")))?;
    wasmtime::component::Component::new(&engine, &bytes).map_err(|e| {
        let reason = format!("{e:#}");
        let code = if reason.contains("os error 12") || reason.contains("out of memory") {
            EXIT_OUT_OF_MEMORY as u8
        } else {
            EXIT_NOT_A_COMPONENT as u8
        };
        (code, reason)
    })?;
    Ok(())
}
