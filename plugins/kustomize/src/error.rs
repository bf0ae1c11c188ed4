//! The one error type of a build: what went wrong, and where in the source tree when known.

use std::fmt;
use tether_plugin_sdk::{Location, PluginError};

/// Why a kustomization could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// File relative to the source root.
    pub file: Option<String>,
    pub line: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The kustomization or a file it names is wrong.
    InvalidInput,
    /// A path leaves the source root (or the kustomization root under `root_only`).
    Denied,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
            file: None,
            line: None,
        }
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Denied,
            ..Error::input(message)
        }
    }

    /// Attach a file unless a deeper frame already named one (the innermost file is the useful one).
    pub fn in_file(mut self, file: &str) -> Self {
        if self.file.is_none() {
            self.file = Some(file.to_owned());
        }
        self
    }

    pub fn at_line(mut self, line: usize) -> Self {
        if self.line.is_none() {
            self.line = Some(line);
        }
        self
    }

    /// Prefix the message with what was being done (`patches[2]: …`).
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    pub fn into_plugin_error(self) -> PluginError {
        let location = self.file.clone().map(|file| Location {
            file,
            line: self.line.and_then(|l| u32::try_from(l).ok()),
            column: None,
        });
        let diagnostic = tether_plugin_sdk::Diagnostic::new(self.message, location);
        match self.kind {
            ErrorKind::InvalidInput => PluginError::InvalidInput(diagnostic),
            ErrorKind::Denied => PluginError::Denied(diagnostic),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: {}", self.message),
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for `Err(Error::input(format!(…)))`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::input(format!($($arg)*))) };
}
