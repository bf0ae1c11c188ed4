//! The built-in `raw` renderer: the files of the source tree that match a glob, read as Kubernetes
//! manifests (YAML with any number of `---`-separated documents, or JSON), in path order. A `kind: List`
//! is expanded into its items. Every problem names the file and line.
//!
//! Settings: `glob` (default `**/*.{yaml,yml,json}`, GitLab's default). GitLab's form with a leading
//! `/` (`/**/*.{yaml,yml,json}`, "from the repository root") selects the same files: the SDK matches
//! with the host's glob engine and normalisation.

use serde::Deserialize;
use serde_json::Value;
use tether_plugin_sdk::{
    Location, Object, PluginError, RenderOutput, RenderRequest, Renderer, SourceTree,
};

const DEFAULT_GLOB: &str = "**/*.{yaml,yml,json}";

struct Raw;

impl Renderer for Raw {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        request.settings.expect_only(&["glob"])?;
        let glob = request.settings.get("glob").unwrap_or(DEFAULT_GLOB);
        let tree = SourceTree::new(&request.context);
        let mut objects = Vec::new();
        for path in tree.files(glob)? {
            let file = tree.read(&path)?;
            let documents = if path.ends_with(".json") {
                json_document(&path, &file.text)?
            } else {
                yaml_documents(&path, &file.text)?
            };
            for (line, value) in documents {
                expand(&path, line, value, &mut objects)?;
            }
        }
        Ok(RenderOutput::objects(objects))
    }
}

tether_plugin_sdk::renderer!(Raw);

/// A JSON file holds one value (an object or a `List`).
fn json_document(path: &str, text: &str) -> Result<Vec<(usize, Value)>, PluginError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        PluginError::invalid_input(format!("invalid JSON: {e}"), Location::line(path, e.line()))
    })?;
    Ok(vec![(1, value)])
}

/// Each document knows the line it starts on; empty documents (a leading `---`, comments only) are
/// skipped.
fn yaml_documents(path: &str, text: &str) -> Result<Vec<(usize, Value)>, PluginError> {
    let mut documents = Vec::new();
    for document in tether_plugin_sdk::yaml_documents(text) {
        parse_yaml_document(path, document.start_line, &document.text, &mut documents)?;
    }
    Ok(documents)
}

fn parse_yaml_document(
    path: &str,
    start: usize,
    text: &str,
    documents: &mut Vec<(usize, Value)>,
) -> Result<(), PluginError> {
    let value = Value::deserialize(serde_yaml::Deserializer::from_str(text)).map_err(|e| {
        // An unclosed bracket is found at the end of input, one line past the document's last line.
        let last = start + text.lines().count().saturating_sub(1);
        let line = e
            .location()
            .map_or(start, |l| (start + l.line().saturating_sub(1)).min(last));
        let message = e.to_string();
        // serde's message repeats the position relative to the document; the location carries the real one.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        PluginError::invalid_input(
            format!("invalid YAML: {message}"),
            Location::line(path, line),
        )
    })?;
    if !value.is_null() {
        // The first line of a document may be blank or a comment; point at its first content line.
        let offset = text
            .lines()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        documents.push((start + offset.unwrap_or(0), value));
    }
    Ok(())
}

/// Check one document is an object Kubernetes could take, expanding `List`.
fn expand(
    path: &str,
    line: usize,
    value: Value,
    objects: &mut Vec<Object>,
) -> Result<(), PluginError> {
    let at = || Location::line(path, line);
    let Value::Object(map) = &value else {
        return Err(PluginError::invalid_input(
            "expected a Kubernetes object (a mapping)",
            at(),
        ));
    };
    let kind = match map.get("kind") {
        Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
        _ => return Err(PluginError::invalid_input("object has no `kind`", at())),
    };
    if !matches!(map.get("apiVersion"), Some(Value::String(v)) if !v.is_empty()) {
        return Err(PluginError::invalid_input(
            format!("{kind} has no `apiVersion`"),
            at(),
        ));
    }
    if kind == "List" {
        let Some(Value::Array(items)) = map.get("items") else {
            return Err(PluginError::invalid_input(
                "List has no `items` array",
                at(),
            ));
        };
        for item in items.clone() {
            expand(path, line, item, objects)?;
        }
        return Ok(());
    }
    let named = map
        .get("metadata")
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")));
    if !matches!(named, Some(Value::String(n)) if !n.is_empty()) {
        return Err(PluginError::invalid_input(
            format!("{kind} has no `metadata.name`"),
            at(),
        ));
    }
    objects.push(Object::from_json(&value, Some(at())));
    Ok(())
}
