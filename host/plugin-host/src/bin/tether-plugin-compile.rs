//! A compiler process as a program of its own (`tether-plugin-compile __compile-plugin CACHE_DIR
//! MEMORY_BYTES < component.wasm`), for the plugin host's tests: the agent and the CLI run
//! themselves as their compiler instead.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    tether_plugin_host::run_compiler_process_if_asked().unwrap_or_else(|| {
        let _ = writeln!(
            std::io::stderr(),
            "usage: tether-plugin-compile {} CACHE_DIR MEMORY_BYTES < component.wasm",
            tether_plugin_host::COMPILE_SUBCOMMAND
        );
        ExitCode::from(2)
    })
}
