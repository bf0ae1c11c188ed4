//! Compiling a component, bounded: the host compiles what an agent's configuration (or a CLI user)
//! names, and a component can be built so that compiling it costs minutes of CPU and gigabytes of
//! memory. Before compiling, the bytes are walked once (linear, no compilation) and refused past the
//! size limits below, naming the limit; the compilation itself runs in a compiler process (see
//! `compiler`) under [`EngineOptions::compile_memory`](crate::EngineOptions), killed at
//! [`EngineOptions::compile_timeout`](crate::EngineOptions) — or, in an engine without a compiler
//! program, on a worker thread waited for at most that long.
//!
//! Why these limits: Cranelift's cost grows faster than linearly in the size of one function (register
//! allocation over its whole body), and its memory with the function being compiled times the threads
//! compiling in parallel. Capping the size of a function caps both; capping the component and the
//! number of functions caps the total.
//!
//! What it must never do: hand bytes over the limits to wasmtime.

use crate::compiler::Compiler;
use crate::error::LoadError;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use wasmparser::{Parser, Payload};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Largest component accepted, in bytes (the server and the agent refuse larger plugin files too).
pub const MAX_COMPONENT_SIZE: usize = 64 << 20;
/// Largest body of one function, in bytes. CPython's bytecode interpreter loop, the largest function
/// of the biggest plugin we know (componentize-py), is well under it.
pub const MAX_FUNCTION_SIZE: usize = 1 << 20;
/// Most locals one function may declare.
pub const MAX_FUNCTION_LOCALS: u32 = 10_000;
/// Most functions with bodies, over every core module of the component.
pub const MAX_FUNCTIONS: usize = 250_000;
/// How long a compilation is waited for, by default. CPython as a component (18 MB) compiles in well
/// under a minute on one idle core; this leaves room for a loaded node, and still ends the
/// compilations built to take hours.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(300);

/// Read a component file, refusing one over [`MAX_COMPONENT_SIZE`] before reading it whole, and
/// anything that is not a regular file (a FIFO would block the read forever).
pub fn read_component_file(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    // Looked at before opening: opening a FIFO blocks until a writer comes.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_a_file());
    }
    read_bounded(std::fs::File::open(path)?)
}

pub(crate) fn not_a_file() -> std::io::Error {
    std::io::Error::other("not a regular file")
}

/// The bytes of an open file, refusing what is not a regular file or is over [`MAX_COMPONENT_SIZE`].
pub(crate) fn read_bounded(file: std::fs::File) -> Result<Vec<u8>, std::io::Error> {
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_a_file());
    }
    let too_large = |size: u64| {
        std::io::Error::other(format!(
            "{size} bytes, over the limit of {} MiB for a component",
            MAX_COMPONENT_SIZE >> 20
        ))
    };
    if metadata.len() > MAX_COMPONENT_SIZE as u64 {
        return Err(too_large(metadata.len()));
    }
    // The file may grow between the stat and the read: never read more than one byte past the cap.
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_COMPONENT_SIZE as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_COMPONENT_SIZE {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Check `bytes` against the limits, then compile: in a compiler process when the engine has one
/// (skipped when an earlier one already compiled these bytes into the cache), then on a worker thread
/// of this process waiting at most `timeout` — after a compiler process, that only reads its result
/// from the cache.
pub(crate) fn compile(
    engine: &Engine,
    compiler: &Compiler,
    plugin: &str,
    bytes: &[u8],
    digest: &str,
) -> Result<Component, LoadError> {
    let refused = |limit: &'static str, detail: String| LoadError::CompileLimit {
        plugin: plugin.to_owned(),
        limit,
        detail,
    };
    if bytes.len() > MAX_COMPONENT_SIZE {
        return Err(refused(
            "component size",
            format!(
                "it is {} bytes; the limit is {MAX_COMPONENT_SIZE}",
                bytes.len()
            ),
        ));
    }
    match compiler {
        Compiler::Thread { timeout } => {
            check_functions(bytes).map_err(|(limit, detail)| refused(limit, detail))?;
            compile_on_thread(engine, plugin, bytes, *timeout)
        }
        Compiler::Process(process) => {
            let marker = process.marker(digest);
            if !marker.is_file() {
                check_functions(bytes).map_err(|(limit, detail)| refused(limit, detail))?;
                process.run(plugin, bytes)?;
                // Only after a compiler process succeeded: the bytes compile within the limits.
                if let Err(e) = write_marker(&marker) {
                    tracing::warn!(plugin, "cannot record the compilation in the cache: {e}");
                }
            }
            compile_on_thread(engine, plugin, bytes, process.timeout)
        }
    }
}

fn write_marker(marker: &Path) -> std::io::Result<()> {
    if let Some(dir) = marker.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(marker, b"")
}

fn compile_on_thread(
    engine: &Engine,
    plugin: &str,
    bytes: &[u8],
    timeout: Duration,
) -> Result<Component, LoadError> {
    let (done, compiled) = mpsc::sync_channel(1);
    let worker_engine = engine.clone();
    let owned = bytes.to_vec();
    std::thread::Builder::new()
        .name("tether-compile".into())
        .spawn(move || {
            // The receiver may have given up waiting; the result is then dropped with the thread.
            let _ = done.send(Component::new(&worker_engine, &owned));
        })
        .map_err(|e| LoadError::Engine(format!("cannot start a compile thread: {e}")))?;
    match compiled.recv_timeout(timeout) {
        Ok(result) => result.map_err(|e| LoadError::NotAComponent {
            plugin: plugin.to_owned(),
            reason: format!("{e:#}"),
        }),
        // A thread cannot be stopped from outside; it ends when its compilation does, and nothing
        // waits for it or uses what it makes. (A compiler process is killed instead.)
        Err(mpsc::RecvTimeoutError::Timeout) => Err(LoadError::CompileLimit {
            plugin: plugin.to_owned(),
            limit: "compile time",
            detail: format!(
                "compiling took longer than {}s; stopped waiting",
                timeout.as_secs_f64()
            ),
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(LoadError::NotAComponent {
            plugin: plugin.to_owned(),
            reason: "the compiler stopped without a result".into(),
        }),
    }
}

/// Walk every core module in `bytes` (nested ones too) and refuse a function body over the limits.
/// Malformed bytes are left for wasmtime, whose error says more.
fn check_functions(bytes: &[u8]) -> Result<(), (&'static str, String)> {
    let mut functions = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(Payload::CodeSectionEntry(body)) = payload else {
            if payload.is_err() {
                return Ok(());
            }
            continue;
        };
        functions += 1;
        if functions > MAX_FUNCTIONS {
            return Err((
                "function count",
                format!("it has more than {MAX_FUNCTIONS} functions"),
            ));
        }
        let size = body.range().len();
        if size > MAX_FUNCTION_SIZE {
            return Err((
                "function size",
                format!(
                    "function #{} is {size} bytes; the limit is {MAX_FUNCTION_SIZE}",
                    functions - 1
                ),
            ));
        }
        let Ok(locals) = body.get_locals_reader() else {
            return Ok(());
        };
        let mut declared = 0u32;
        for local in locals {
            let Ok((count, _)) = local else {
                return Ok(());
            };
            declared = declared.saturating_add(count);
            if declared > MAX_FUNCTION_LOCALS {
                return Err((
                    "function locals",
                    format!(
                        "function #{} declares more than {MAX_FUNCTION_LOCALS} locals",
                        functions - 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one function whose body is `size` bytes of `nop`s and `locals` i32 locals.
    pub(crate) fn module_with_function(size: usize, locals: u32) -> Vec<u8> {
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
        let mut body = Vec::new();
        leb(1, &mut body); // one group of locals
        leb(u64::from(locals), &mut body);
        body.push(0x7f); // i32
        body.resize(size.max(body.len() + 1) - 1, 0x01); // nop
        body.push(0x0b); // end
        let mut code = Vec::new();
        leb(1, &mut code);
        leb(body.len() as u64, &mut code);
        code.extend(body);
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend([1, 4, 1, 0x60, 0, 0]); // type section: () -> ()
        module.extend([3, 2, 1, 0]); // function section: one function of type 0
        module.push(10);
        leb(code.len() as u64, &mut module);
        module.extend(code);
        module
    }

    #[test]
    fn a_function_over_the_size_limit_is_refused_by_name_of_the_limit() {
        check_functions(&module_with_function(1000, 1)).unwrap();
        let (limit, detail) =
            check_functions(&module_with_function(MAX_FUNCTION_SIZE + 10, 1)).unwrap_err();
        assert_eq!(limit, "function size");
        assert!(detail.contains("function #0"), "{detail}");
        let (limit, _) =
            check_functions(&module_with_function(100, MAX_FUNCTION_LOCALS + 1)).unwrap_err();
        assert_eq!(limit, "function locals");
    }
}
