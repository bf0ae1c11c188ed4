//! `replacements:` — copy a field of one object (or a literal `sourceValue`) into fields of the objects
//! the targets select, with kustomize's field paths (`spec.containers.[name=web].image`, `*`), its
//! delimiter/index options and `create`. Entries may be inline or `path:` files holding one
//! replacement or a list.

use crate::error::{Error, Result};
use crate::kustomization::Selector;
use crate::loader::Loader;
use crate::resource::{ResId, ResMap, Resource};
use crate::selector::CompiledSelector;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    path: Option<String>,
    #[serde(flatten)]
    replacement: Replacement,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Replacement {
    source: Option<Source>,
    source_value: Option<String>,
    #[serde(default)]
    targets: Option<Vec<Target>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Source {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    field_path: String,
    options: Option<FieldOptions>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FieldOptions {
    #[serde(default)]
    delimiter: String,
    #[serde(default)]
    index: i64,
    #[serde(default)]
    create: bool,
    /// Only meaningful for values inside structured (JSON/YAML text) fields, which aren't supported.
    #[serde(default)]
    encoding: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Target {
    select: Option<Selector>,
    #[serde(default)]
    reject: Vec<Selector>,
    #[serde(default)]
    field_paths: Vec<String>,
    options: Option<FieldOptions>,
}

const DEFAULT_FIELD_PATH: &str = "metadata.name";

pub fn apply(loader: &Loader, dir: &str, resources: &mut ResMap, entries: &[Value]) -> Result<()> {
    for (index, raw) in entries.iter().enumerate() {
        let at = |e: Error| e.context(format!("[{index}]"));
        let entry: Entry = serde_json::from_value(raw.clone())
            .map_err(|e| at(Error::input(format!("invalid replacement: {e}"))))?;
        let replacements = match entry.path {
            Some(path) => {
                if entry.replacement.source.is_some() || entry.replacement.targets.is_some() {
                    return Err(at(Error::input(
                        "a replacement must be either a path or inline",
                    )));
                }
                load_file(loader, dir, &path).map_err(at)?
            }
            None => vec![entry.replacement],
        };
        for replacement in replacements {
            run(resources, replacement).map_err(at)?;
        }
    }
    Ok(())
}

fn load_file(loader: &Loader, dir: &str, relative: &str) -> Result<Vec<Replacement>> {
    let path = loader.join(dir, relative)?;
    let text = loader.read_within(dir, &path)?;
    let value = crate::loader::parse_yaml(&text)
        .map_err(|(message, _)| Error::input(format!("invalid YAML: {message}")).in_file(&path))?;
    let items = match value {
        Value::Array(items) => items,
        map @ Value::Object(_) => vec![map],
        _ => return Err(Error::input("expected a replacement or a list of them").in_file(&path)),
    };
    items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item)
                .map_err(|e| Error::input(format!("invalid replacement: {e}")).in_file(&path))
        })
        .collect()
}

/// kustomize's ids of a node: the current one and the previous ones.
fn ids(resource: &Resource) -> Vec<ResId> {
    let mut ids = vec![resource.cur_id()];
    ids.extend(resource.prev_ids.iter().cloned());
    ids
}

fn run(resources: &mut ResMap, replacement: Replacement) -> Result<()> {
    let Some(targets) = replacement.targets else {
        return Err(Error::input(
            "replacements must specify a source and at least one target",
        ));
    };
    let value = match (replacement.source, replacement.source_value) {
        (Some(_), Some(_)) => {
            return Err(Error::input(
                "value and resource selectors are mutually exclusive",
            ));
        }
        (None, None) => {
            return Err(Error::input(
                "replacements must specify a source and at least one target",
            ));
        }
        (None, Some(value)) => Value::String(value),
        (Some(source), None) => source_value(resources, &source)?,
    };
    for target in &targets {
        if target
            .options
            .as_ref()
            .is_some_and(|o| !o.encoding.is_empty())
        {
            return Err(Error::input(
                "replacement option `encoding` (values inside structured text fields) is not supported by the kustomize renderer",
            ));
        }
        let Some(select) = &target.select else {
            return Err(Error::input("target must specify resources to select"));
        };
        let selector = CompiledSelector::new(select)?;
        let rejects = target
            .reject
            .iter()
            .map(CompiledSelector::new)
            .collect::<Result<Vec<_>>>()?;
        let default_paths = [DEFAULT_FIELD_PATH.to_owned()];
        let paths: &[String] = if target.field_paths.is_empty() {
            &default_paths
        } else {
            &target.field_paths
        };
        for resource in &mut resources.resources {
            let all = ids(resource);
            if !selector.matches_labels(resource)
                || rejects.iter().any(|r| r.rejects_labels(resource))
            {
                continue;
            }
            if rejects
                .iter()
                .any(|r| r.has_id_criteria() && all.iter().any(|id| r.matches_id(id)))
            {
                continue;
            }
            if !all.iter().any(|id| selector.matches_id(id)) {
                continue;
            }
            for path in paths {
                set_path(resource, path, &value, target.options.as_ref())?;
            }
        }
    }
    Ok(())
}

fn source_value(resources: &ResMap, source: &Source) -> Result<Value> {
    let selects = |id: &ResId| {
        id.gvk_selected(&source.group, &source.version, &source.kind)
            && (source.name.is_empty() || id.name == source.name)
            && (source.namespace.is_empty() || id.namespace == source.namespace)
    };
    let describe = || format!("{}/{}/{}", source.kind, source.namespace, source.name);
    let mut found: Option<&Resource> = None;
    for resource in &resources.resources {
        if ids(resource).iter().any(selects) {
            if found.is_some() {
                return Err(Error::input(format!(
                    "multiple matches for selector {}",
                    describe()
                )));
            }
            found = Some(resource);
        }
    }
    let resource =
        found.ok_or_else(|| Error::input(format!("nothing selected by {}", describe())))?;
    let path = if source.field_path.is_empty() {
        DEFAULT_FIELD_PATH
    } else {
        &source.field_path
    };
    let object = Value::Object(resource.object.clone());
    let mut found = Vec::new();
    collect(&object, &split_path(path), &mut found);
    let value = found
        .into_iter()
        .next()
        .filter(|v| !is_empty(v))
        .cloned()
        .ok_or_else(|| {
            Error::input(format!(
                "fieldPath `{path}` is missing for replacement source {}",
                describe()
            ))
        })?;
    match source.options.as_ref().filter(|o| !o.delimiter.is_empty()) {
        None => Ok(value),
        Some(options) => {
            let text = scalar_text(&value).ok_or_else(|| {
                Error::input("delimiter option can only be used with scalar nodes")
            })?;
            let parts: Vec<&str> = text.split(options.delimiter.as_str()).collect();
            usize::try_from(options.index)
                .ok()
                .and_then(|i| parts.get(i))
                .map(|part| Value::String((*part).to_owned()))
                .ok_or_else(|| {
                    Error::input(format!(
                        "options.index {} is out of bounds for value {text}",
                        options.index
                    ))
                })
        }
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// kustomize's `SmarterPathSplitter`: split at dots outside `[...]`.
fn split_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '.' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

fn collect<'a>(node: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = path.split_first() else {
        out.push(node);
        return;
    };
    match node {
        Value::Object(map) => {
            if first == "*" {
                map.values().for_each(|v| collect(v, rest, out));
            } else if let Some(child) = map.get(first.as_str()) {
                collect(child, rest, out);
            }
        }
        Value::Array(items) => {
            for item in matching_items(items, first) {
                collect(item, rest, out);
            }
        }
        _ => {}
    }
}

/// List elements a path part picks: `[k=v]`, `[=v]` (scalar lists), `*`, or an index.
fn matching_items<'a>(items: &'a [Value], part: &str) -> Vec<&'a Value> {
    if part == "*" {
        return items.iter().collect();
    }
    if let Some(inner) = part.strip_prefix('[').and_then(|p| p.strip_suffix(']'))
        && let Some((key, value)) = inner.split_once('=')
    {
        return items
            .iter()
            .filter(|item| {
                if key.is_empty() {
                    scalar_text(item).as_deref() == Some(value)
                } else {
                    item.get(key).and_then(scalar_text).as_deref() == Some(value)
                }
            })
            .collect();
    }
    match part.parse::<usize>() {
        Ok(index) => items.get(index).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

fn set_path(
    resource: &mut Resource,
    path: &str,
    value: &Value,
    options: Option<&FieldOptions>,
) -> Result<()> {
    let create = options.is_some_and(|o| o.create);
    let parts = split_path(path);
    let mut object = Value::Object(std::mem::take(&mut resource.object));
    let mut count = 0;
    let result = set_in(&mut object, &parts, value, options, create, &mut count);
    if let Value::Object(map) = object {
        resource.object = map;
    }
    result?;
    if count == 0 {
        let message = if create {
            format!("unable to find or create field \"{path}\" in replacement target")
        } else {
            format!("unable to find field \"{path}\" in replacement target")
        };
        return Err(resource.error(message));
    }
    Ok(())
}

fn set_in(
    node: &mut Value,
    path: &[String],
    value: &Value,
    options: Option<&FieldOptions>,
    create: bool,
    count: &mut usize,
) -> Result<()> {
    let Some((first, rest)) = path.split_first() else {
        set_value(node, value, options, false)?;
        *count += 1;
        return Ok(());
    };
    match node {
        Value::Object(map) => {
            if first == "*" {
                for child in map.values_mut() {
                    set_in(child, rest, value, options, create, count)?;
                }
                return Ok(());
            }
            match map.get_mut(first.as_str()) {
                Some(child) if !child.is_null() => {
                    set_in(child, rest, value, options, create, count)
                }
                _ if create => {
                    if rest.is_empty() {
                        let mut created = Value::Null;
                        set_value(&mut created, value, options, true)?;
                        map.insert(first.clone(), created);
                        *count += 1;
                        return Ok(());
                    }
                    let next_is_list = rest[0].starts_with('[');
                    let mut child = if next_is_list {
                        Value::Array(Vec::new())
                    } else {
                        Value::Object(Map::new())
                    };
                    set_in(&mut child, rest, value, options, create, count)?;
                    map.insert(first.clone(), child);
                    Ok(())
                }
                _ => Ok(()),
            }
        }
        Value::Array(items) => {
            let mut matched = false;
            let picks: Vec<usize> = {
                let refs = matching_items(items, first);
                items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| refs.iter().any(|r| std::ptr::eq(*r, *item)))
                    .map(|(i, _)| i)
                    .collect()
            };
            for index in picks {
                matched = true;
                set_in(&mut items[index], rest, value, options, create, count)?;
            }
            if !matched
                && create
                && let Some((key, wanted)) = first
                    .strip_prefix('[')
                    .and_then(|p| p.strip_suffix(']'))
                    .and_then(|p| p.split_once('='))
                && !key.is_empty()
            {
                let mut element = Map::new();
                element.insert(key.to_owned(), Value::String(wanted.to_owned()));
                let mut element = Value::Object(element);
                set_in(&mut element, rest, value, options, create, count)?;
                items.push(element);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Put `value` into `target`. A scalar target keeps its type (kustomize replaces the text and keeps
/// the node's tag); a created field gets the type its text reads as in YAML.
fn set_value(
    target: &mut Value,
    value: &Value,
    options: Option<&FieldOptions>,
    created: bool,
) -> Result<()> {
    let mut value = value.clone();
    if let Some(options) = options.filter(|o| !o.delimiter.is_empty()) {
        let current = scalar_text(target)
            .ok_or_else(|| Error::input("delimiter option can only be used with scalar nodes"))?;
        let mut parts: Vec<String> = current
            .split(options.delimiter.as_str())
            .map(str::to_owned)
            .collect();
        let text = scalar_text(&value).unwrap_or_default();
        match usize::try_from(options.index) {
            Err(_) => parts.insert(0, text),
            Ok(i) if i >= parts.len() => parts.push(text),
            Ok(i) => parts[i] = text,
        }
        value = Value::String(parts.join(&options.delimiter));
    }
    let Some(text) = scalar_text(&value).filter(|_| !value.is_object() && !value.is_array()) else {
        *target = value;
        return Ok(());
    };
    *target = match target {
        Value::String(_) if !created => Value::String(text),
        _ => crate::loader::parse_yaml(&text)
            .ok()
            .filter(|v| !v.is_object() && !v.is_array() && !v.is_null())
            .unwrap_or(Value::String(text)),
    };
    Ok(())
}
