//! What goes wrong with plugins, as values that name the plugin and the limit or place involved.

use std::fmt;
use std::time::Duration;
use tether_config::plugins::{ByteSize, World};

/// A call failed. The engine and other plugins are unaffected; the next call starts from a fresh
/// instance.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{plugin}` ran past its time limit of {}ms (limits.timeout) and was stopped", limit.as_millis())]
    Timeout { plugin: String, limit: Duration },
    #[error(
        "plugin `{plugin}` tried to use {wanted} bytes of memory, over its limit of {limit} (limits.memory), and was stopped"
    )]
    MemoryLimit {
        plugin: String,
        limit: ByteSize,
        wanted: u64,
    },
    #[error(
        "plugin `{plugin}` returned {size} bytes, over its output limit of {limit} (limits.output)"
    )]
    OutputLimit {
        plugin: String,
        limit: ByteSize,
        size: u64,
    },
    /// Stopped while copying its result (or one host call's arguments) to the host: wasmtime's hostcall
    /// fuel, which the host sets from `limits.output`, ran out before the size could be counted.
    #[error(
        "plugin `{plugin}` passed the host more data in one call than its output limit of {limit} (limits.output) allows, and was stopped"
    )]
    OutputTooLarge { plugin: String, limit: ByteSize },
    #[error("plugin `{plugin}` crashed: {trap}{}", stderr_suffix(.stderr))]
    Trap {
        plugin: String,
        trap: String,
        stderr: String,
    },
    /// The plugin reported an error value (bad input, bad settings, a denied capability).
    #[error("plugin `{plugin}`: {error}")]
    Guest { plugin: String, error: GuestError },
    #[error("plugin `{plugin}` returned an invalid object (#{index}{}): {reason}", origin.as_ref().map(|o| format!(" from {o}")).unwrap_or_default())]
    InvalidOutput {
        plugin: String,
        index: usize,
        origin: Option<String>,
        reason: String,
    },
    #[error("plugin `{plugin}` is a {actual}, not a {expected}")]
    WrongWorld {
        plugin: String,
        expected: World,
        actual: World,
    },
    #[error("plugin `{plugin}`: cannot open the source tree {path}: {reason}")]
    SourceTree {
        plugin: String,
        path: String,
        reason: String,
    },
    #[error("plugin `{plugin}` could not be started: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin `{name}` is configured but did not load: {reason}")]
    LoadFailed { name: String, reason: String },
    #[error("no plugin named `{name}` is loaded{}", if .known.is_empty() { String::new() } else { format!(" (loaded: {})", .known.join(", ")) })]
    NotLoaded { name: String, known: Vec<String> },
}

fn stderr_suffix(stderr: &str) -> String {
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    match tail.len() {
        0 => String::new(),
        n => format!(" (stderr: {})", tail[n.saturating_sub(3)..].join(" | ")),
    }
}

impl PluginError {
    /// The plugin the error is about.
    pub fn plugin(&self) -> &str {
        match self {
            PluginError::Timeout { plugin, .. }
            | PluginError::MemoryLimit { plugin, .. }
            | PluginError::OutputLimit { plugin, .. }
            | PluginError::OutputTooLarge { plugin, .. }
            | PluginError::Trap { plugin, .. }
            | PluginError::Guest { plugin, .. }
            | PluginError::InvalidOutput { plugin, .. }
            | PluginError::WrongWorld { plugin, .. }
            | PluginError::SourceTree { plugin, .. }
            | PluginError::Instantiate { plugin, .. } => plugin,
            PluginError::LoadFailed { name, .. } | PluginError::NotLoaded { name, .. } => name,
        }
    }
}

/// The error value a plugin returned (the WIT `error` variant), with its location made readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestError {
    pub kind: GuestErrorKind,
    pub message: String,
    pub location: Option<crate::Location>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestErrorKind {
    InvalidInput,
    InvalidSettings,
    Denied,
    Failed,
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        let kind = match self.kind {
            GuestErrorKind::InvalidInput => "invalid input",
            GuestErrorKind::InvalidSettings => "invalid settings",
            GuestErrorKind::Denied => "denied",
            GuestErrorKind::Failed => "failed",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

/// A plugin could not be loaded. The catalog reports it by name and loads the others.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "plugin `{plugin}`: sha256 mismatch: configured {expected}, file has {actual}; refusing to load it"
    )]
    Sha256Mismatch {
        plugin: String,
        expected: String,
        actual: String,
    },
    #[error("plugin `{plugin}`: cannot read {source_desc}: {reason}")]
    Read {
        plugin: String,
        source_desc: String,
        reason: String,
    },
    #[error("plugin `{plugin}` was not compiled: over the {limit} limit: {detail}")]
    CompileLimit {
        plugin: String,
        limit: &'static str,
        detail: String,
    },
    #[error("plugin `{plugin}` is not a valid WebAssembly component: {reason}")]
    NotAComponent { plugin: String, reason: String },
    #[error(
        "plugin `{plugin}` does not implement the {world} world of tether:plugin@0.1.0: {reason}"
    )]
    WorldMismatch {
        plugin: String,
        world: World,
        reason: String,
    },
    #[error("plugin `{plugin}` could not be started: {reason}")]
    Start { plugin: String, reason: String },
    #[error("plugin `{plugin}`: the name is taken by a built-in plugin; choose another name")]
    ShadowsBuiltin { plugin: String },
    #[error("plugin engine: {0}")]
    Engine(String),
}

impl LoadError {
    pub fn plugin(&self) -> Option<&str> {
        match self {
            LoadError::Sha256Mismatch { plugin, .. }
            | LoadError::Read { plugin, .. }
            | LoadError::NotAComponent { plugin, .. }
            | LoadError::CompileLimit { plugin, .. }
            | LoadError::WorldMismatch { plugin, .. }
            | LoadError::Start { plugin, .. }
            | LoadError::ShadowsBuiltin { plugin } => Some(plugin),
            LoadError::Engine(_) => None,
        }
    }
}
