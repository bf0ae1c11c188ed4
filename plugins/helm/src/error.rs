//! What can go wrong while rendering a chart, each with the file (relative to the source tree) and,
//! when known, the line.

use tether_plugin_sdk::{Location, PluginError};

/// A problem with the chart or the values given to it.
#[derive(Debug, Clone)]
pub struct ChartError {
    pub message: String,
    pub file: String,
    pub line: Option<usize>,
}

impl ChartError {
    pub fn at(file: impl Into<String>, message: impl Into<String>) -> Self {
        ChartError {
            message: message.into(),
            file: file.into(),
            line: None,
        }
    }

    pub fn at_line(file: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        ChartError {
            message: message.into(),
            file: file.into(),
            line: Some(line),
        }
    }

    /// A YAML syntax error, pointing at its line.
    pub fn yaml(file: &str, error: &serde_yaml::Error) -> Self {
        let message = error.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ChartError {
            message: format!("invalid YAML: {message}"),
            file: file.to_owned(),
            line: error.location().map(|l| l.line()),
        }
    }
}

impl std::fmt::Display for ChartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl From<ChartError> for PluginError {
    fn from(e: ChartError) -> Self {
        let location = match e.line {
            Some(line) => Location::line(&e.file, line),
            None => Location::file(&e.file),
        };
        PluginError::invalid_input(e.message, location)
    }
}
