//! The read-only source tree the host preopens for a renderer, walked in a stable order.

use crate::{Context, Location, PluginError};
use std::path::{Path, PathBuf};

/// The source tree of one render call.
#[derive(Debug)]
pub struct SourceTree {
    root: PathBuf,
}

/// A file of the tree: its path relative to the root (`/`-separated) and its text.
#[derive(Debug)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

impl SourceTree {
    pub fn new(context: &Context) -> Self {
        SourceTree {
            root: PathBuf::from(&context.source_dir),
        }
    }

    /// Relative paths of the files matching `glob` (`**`, `*`, `?`, `{a,b}`, `[...]`), sorted so output
    /// order never depends on the file system. Hidden files and directories (a name starting with `.`)
    /// are skipped, like GitLab's agent does.
    ///
    /// The host's engine and normalisation (tether-config's `compile_glob`): `globset` with `*` and `?`
    /// stopping at `/`, and GitLab's leading `/` ("from the repository root") dropped, so a glob selects
    /// here exactly the files the server selected for it. A glob that is not valid is `invalid-settings`.
    pub fn files(&self, glob: &str) -> Result<Vec<String>, PluginError> {
        let relative = glob.strip_prefix('/').unwrap_or(glob);
        let matcher = globset::GlobBuilder::new(relative)
            .literal_separator(true)
            .build()
            .map_err(|e| PluginError::invalid_setting(format!("glob `{glob}`: {}", e.kind())))?
            .compile_matcher();
        let mut found = Vec::new();
        self.walk(&self.root, &mut found)?;
        found.retain(|path| matcher.is_match(path));
        found.sort();
        Ok(found)
    }

    /// The file's text; an unreadable or non-UTF-8 file is `invalid-input` naming it.
    pub fn read(&self, path: &str) -> Result<SourceFile, PluginError> {
        let bytes = std::fs::read(self.root.join(path)).map_err(|e| {
            PluginError::invalid_input(format!("cannot read: {e}"), Location::file(path))
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            PluginError::invalid_input(format!("not UTF-8 text: {e}"), Location::file(path))
        })?;
        Ok(SourceFile {
            path: path.to_owned(),
            text,
        })
    }

    fn walk(&self, dir: &Path, found: &mut Vec<String>) -> Result<(), PluginError> {
        let relative = |path: &Path| {
            path.strip_prefix(&self.root)
                .unwrap_or(path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        };
        let entries = std::fs::read_dir(dir).map_err(|e| {
            PluginError::failed(format!(
                "cannot list `{}` of the source tree: {e}",
                relative(dir)
            ))
        })?;
        for entry in entries {
            let entry = entry
                .map_err(|e| PluginError::failed(format!("cannot list the source tree: {e}")))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| {
                PluginError::failed(format!("cannot stat `{}`: {e}", relative(&path)))
            })?;
            if kind.is_dir() {
                self.walk(&path, found)?;
            } else if kind.is_file() {
                found.push(relative(&path));
            }
        }
        Ok(())
    }
}
