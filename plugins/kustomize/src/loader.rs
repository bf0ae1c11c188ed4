//! File access for a build: paths relative to the source root, kustomize's load restrictions, and YAML
//! streams split into documents that know their line.
//!
//! Owns every read of the source tree. It must never let a path leave the source root (that is
//! `denied`), and under `root_only` never read a file outside the kustomization that names it.

use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;

/// kustomize's `--load-restrictor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadRestrictor {
    /// `LoadRestrictionsRootOnly`: files must be in or below the kustomization's directory.
    RootOnly,
    /// `LoadRestrictionsNone`.
    None,
}

/// The names kustomize looks for, in its order of preference.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Reads the source tree; paths are `/`-separated, relative to the root, `""` being the root itself.
#[derive(Debug, Clone)]
pub struct Loader {
    root: PathBuf,
    restrictor: LoadRestrictor,
}

impl Loader {
    pub fn new(root: impl Into<PathBuf>, restrictor: LoadRestrictor) -> Self {
        Loader {
            root: root.into(),
            restrictor,
        }
    }

    /// `relative` resolved against `dir`; leaving the source root is `denied`, a remote reference is an
    /// error saying remote sources aren't supported.
    pub fn join(&self, dir: &str, relative: &str) -> Result<String> {
        if is_remote(relative) {
            return Err(Error::input(format!(
                "`{relative}` is a remote source; the kustomize renderer builds local sources only \
                 (vendor the base into the repository)"
            )));
        }
        if relative.starts_with('/') {
            return Err(Error::denied(format!(
                "`{relative}` is an absolute path; paths must stay inside the source tree"
            )));
        }
        let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
        for part in relative.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(Error::denied(format!(
                            "`{relative}` (from `{}`) leaves the source tree",
                            display_dir(dir)
                        )));
                    }
                }
                other => parts.push(other),
            }
        }
        Ok(parts.join("/"))
    }

    /// Under `root_only`, refuse a file that is not in or below the kustomization directory `root`.
    pub fn check_restriction(&self, root: &str, path: &str) -> Result<()> {
        if self.restrictor == LoadRestrictor::None || is_within(root, path) {
            return Ok(());
        }
        Err(Error::denied(format!(
            "security; file '{path}' is not in or below '{}' (kustomize's default load restrictor; \
             set `load_restrictor: none` to allow it)",
            display_dir(root)
        )))
    }

    /// The text of `path` after the load restrictor allowed it for the kustomization at `root`:
    /// how every file a kustomization names (patches, configs, env files, …) is read.
    pub fn read_within(&self, root: &str, path: &str) -> Result<String> {
        self.check_restriction(root, path)?;
        self.read_text(path)
    }

    pub fn is_dir(&self, path: &str) -> bool {
        self.root.join(path).is_dir()
    }

    pub fn is_file(&self, path: &str) -> bool {
        self.root.join(path).is_file()
    }

    pub fn read_bytes(&self, path: &str) -> Result<Vec<u8>> {
        std::fs::read(self.root.join(path))
            .map_err(|e| Error::input(format!("cannot read `{path}`: {e}")).in_file(path))
    }

    pub fn read_text(&self, path: &str) -> Result<String> {
        String::from_utf8(self.read_bytes(path)?)
            .map_err(|_| Error::input(format!("`{path}` is not UTF-8 text")).in_file(path))
    }

    /// The kustomization file of `dir`, if it has exactly one; two of them is kustomize's error too.
    pub fn kustomization_file(&self, dir: &str) -> Result<Option<String>> {
        let found: Vec<String> = KUSTOMIZATION_FILE_NAMES
            .iter()
            .map(|name| join_name(dir, name))
            .filter(|path| self.is_file(path))
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.into_iter().next()),
            _ => Err(Error::input(format!(
                "found multiple kustomization files under: {}",
                display_dir(dir)
            ))),
        }
    }
}

/// `dir/name` without a leading slash for the root.
pub fn join_name(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

pub fn display_dir(dir: &str) -> &str {
    if dir.is_empty() { "." } else { dir }
}

/// `path` is `root` or below it.
pub fn is_within(root: &str, path: &str) -> bool {
    root.is_empty()
        || path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The last path element (a generator's default key).
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// What kustomize would fetch over the network instead of reading locally.
fn is_remote(path: &str) -> bool {
    path.contains("://")
        || path.starts_with("git@")
        || path.starts_with("github.com/")
        || path.starts_with("gitlab.com/")
        || path.starts_with("bitbucket.org/")
        || path.contains("?ref=")
}

/// One YAML document of a file and the line it starts on.
#[derive(Debug)]
pub struct Document {
    pub line: usize,
    pub value: Value,
}

/// The non-empty documents of a YAML (or JSON) stream. Split at `---` lines here so each document knows
/// its first line for error messages.
pub fn documents(path: &str, text: &str) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    for document in tether_plugin_sdk::yaml_documents(text) {
        parse_document(path, document.start_line, &document.text, &mut out)?;
    }
    Ok(out)
}

fn parse_document(path: &str, start: usize, text: &str, out: &mut Vec<Document>) -> Result<()> {
    let value = parse_yaml(text).map_err(|(message, line)| {
        let last = start + text.lines().count().saturating_sub(1);
        Error::input(format!("invalid YAML: {message}"))
            .in_file(path)
            .at_line(line.map_or(start, |l| (start + l.saturating_sub(1)).min(last)))
    })?;
    if !value.is_null() {
        let offset = text
            .lines()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        out.push(Document {
            line: start + offset.unwrap_or(0),
            value,
        });
    }
    Ok(())
}

/// One YAML document as a value; on failure the message and the 1-based line within `text`.
pub fn parse_yaml(text: &str) -> std::result::Result<Value, (String, Option<usize>)> {
    let text = crate::yaml11::rewrite_go_integers(text);
    Value::deserialize(serde_yaml::Deserializer::from_str(&text)).map_err(|e| {
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        (message, e.location().map(|l| l.line()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_resolves_dots_and_refuses_to_leave_the_root() {
        let loader = Loader::new("/src", LoadRestrictor::RootOnly);
        assert_eq!(loader.join("a/b", "../c/./d.yaml").unwrap(), "a/c/d.yaml");
        assert_eq!(loader.join("", "x").unwrap(), "x");
        assert_eq!(loader.join("a", "..").unwrap(), "");
        let err = loader.join("a", "../../x").unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Denied);
        assert!(loader.join("", "github.com/org/repo//base?ref=v1").is_err());
    }

    #[test]
    fn within_compares_whole_path_elements() {
        assert!(is_within("a/b", "a/b/c"));
        assert!(!is_within("a/b", "a/bc"));
        assert!(is_within("", "anything"));
    }

    #[test]
    fn documents_know_their_first_line() {
        let docs = documents("f.yaml", "# c\na: 1\n---\n\nb: 2\n---\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[1].line, 5);
        let err = documents("f.yaml", "a: 1\n---\nb: [\n").unwrap_err();
        assert_eq!(err.file.as_deref(), Some("f.yaml"));
        assert_eq!(err.line, Some(3));
    }
}
