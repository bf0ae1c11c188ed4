//! Resource files: their YAML documents as objects, `List`s expanded, each remembering its file and
//! line. Every object must have a kind and a name, as kustomize requires.

use crate::error::{Error, Result};
use crate::loader::Loader;
use crate::resource::Resource;
use serde_json::Value;

/// The objects of a resource file, `List`s expanded.
pub fn load(loader: &Loader, path: &str) -> Result<Vec<Resource>> {
    let text = loader.read_text(path)?;
    let mut out = Vec::new();
    for document in crate::loader::documents(path, &text)? {
        expand(path, document.line, document.value, &mut out)?;
    }
    Ok(out)
}

fn expand(path: &str, line: usize, value: Value, out: &mut Vec<Resource>) -> Result<()> {
    let at = |message: String| Error::input(message).in_file(path).at_line(line);
    let Value::Object(map) = value else {
        return Err(at("expected a Kubernetes object (a mapping)".into()));
    };
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if kind.is_empty() {
        return Err(at(
            "missing Resource metadata: the object has no `kind`".into()
        ));
    }
    if kind == "List" || (kind.ends_with("List") && map.get("items").is_some_and(Value::is_array)) {
        let Some(Value::Array(items)) = map.get("items") else {
            return Ok(());
        };
        for item in items.clone() {
            expand(path, line, item, out)?;
        }
        return Ok(());
    }
    let named = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !named {
        return Err(at(format!("missing metadata.name in object {kind}")));
    }
    out.push(Resource::new(map, Some(path.to_owned()), Some(line)));
    Ok(())
}
