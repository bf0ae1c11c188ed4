//! `configMapGenerator:` and `secretGenerator:` — objects made from literals, files and env files, with
//! kustomize's options and behaviors. The content-hash suffix is added later, at the top of the build
//! (see `hash`), because later transformers still change the name. `absorb` joins a generated object
//! to one of the same id by its behavior (merge or replace), as kustomize's `appendReplaceOrMerge`.

use crate::error::{Error, Result};
use crate::kustomization::{GeneratorArgs, GeneratorOptions};
use crate::loader::{Loader, base_name};
use crate::resource::{Behavior, ResMap, Resource};
use base64::Engine;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratedKind {
    ConfigMap,
    Secret,
}

impl GeneratedKind {
    fn field(self) -> &'static str {
        match self {
            GeneratedKind::ConfigMap => "configMapGenerator",
            GeneratedKind::Secret => "secretGenerator",
        }
    }
}

/// Where a generator reads its files: the kustomization's directory, under its load restriction.
#[derive(Debug)]
pub struct GeneratorContext<'a> {
    pub loader: &'a Loader,
    pub dir: &'a str,
    pub kustomization_file: &'a str,
    pub global_options: Option<&'a GeneratorOptions>,
}

pub fn generate(
    context: &GeneratorContext<'_>,
    kind: GeneratedKind,
    index: usize,
    args: &GeneratorArgs,
) -> Result<Resource> {
    let at = |e: Error| {
        e.context(format!("{}[{index}]", kind.field()))
            .in_file(context.kustomization_file)
    };
    if args.name.is_empty() {
        return Err(at(Error::input(match kind {
            GeneratedKind::ConfigMap => "a configmap must have a name",
            GeneratedKind::Secret => "a secret must have a name",
        })));
    }
    let behavior = match args.behavior.as_str() {
        "" | "create" => Behavior::Create,
        "merge" => Behavior::Merge,
        "replace" => Behavior::Replace,
        other => {
            return Err(at(Error::input(format!(
                "unknown generator behavior `{other}` (create, merge or replace)"
            ))));
        }
    };
    let pairs = load_pairs(context, args).map_err(at)?;
    let mut data = Map::new();
    let mut binary = Map::new();
    for (key, bytes) in pairs {
        if data.contains_key(&key) || binary.contains_key(&key) {
            let what = match kind {
                GeneratedKind::ConfigMap => "configmap",
                GeneratedKind::Secret => "secret",
            };
            return Err(at(Error::input(format!(
                "{what} {} illegally repeats the key `{key}`",
                args.name
            ))));
        }
        match kind {
            GeneratedKind::Secret => {
                data.insert(
                    key,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                );
            }
            GeneratedKind::ConfigMap => match String::from_utf8(bytes) {
                Ok(text) => {
                    data.insert(key, Value::String(text));
                }
                Err(e) => {
                    binary.insert(
                        key,
                        Value::String(
                            base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                        ),
                    );
                }
            },
        }
    }

    let options = merged_options(args.options.as_ref(), context.global_options);
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(args.name.clone()));
    if !args.namespace.is_empty() {
        metadata.insert("namespace".into(), Value::String(args.namespace.clone()));
    }
    if !options.labels.is_empty() {
        metadata.insert("labels".into(), string_object(&options.labels));
    }
    if !options.annotations.is_empty() {
        metadata.insert("annotations".into(), string_object(&options.annotations));
    }
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String("v1".into()));
    object.insert(
        "kind".into(),
        Value::String(
            match kind {
                GeneratedKind::ConfigMap => "ConfigMap",
                GeneratedKind::Secret => "Secret",
            }
            .into(),
        ),
    );
    object.insert("metadata".into(), Value::Object(metadata));
    if kind == GeneratedKind::Secret {
        let type_ = if args.type_.is_empty() {
            "Opaque"
        } else {
            &args.type_
        };
        object.insert("type".into(), Value::String(type_.to_owned()));
    }
    // kustomize writes an empty `data` on Secrets but leaves it off ConfigMaps.
    if !data.is_empty() || kind == GeneratedKind::Secret {
        object.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        object.insert("binaryData".into(), Value::Object(binary));
    }
    if options.immutable == Some(true) {
        object.insert("immutable".into(), Value::Bool(true));
    }
    let mut resource = Resource::new(object, Some(context.kustomization_file.to_owned()), None);
    resource.needs_hash = options.disable_name_suffix_hash != Some(true);
    resource.behavior = behavior;
    Ok(resource)
}

fn string_object(map: &crate::kustomization::StringMap) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// kustomize's `MergeGlobalOptionsIntoLocal`: labels and annotations of both, the generator's own winning;
/// either side can turn hashing off or immutability on.
fn merged_options(
    local: Option<&GeneratorOptions>,
    global: Option<&GeneratorOptions>,
) -> GeneratorOptions {
    let mut merged = local.cloned().unwrap_or_default();
    if let Some(global) = global {
        // The generator's own labels and annotations win over the kustomization's.
        for (k, v) in &global.labels {
            merged.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &global.annotations {
            merged
                .annotations
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        if global.disable_name_suffix_hash == Some(true) {
            merged.disable_name_suffix_hash = Some(true);
        }
        if global.immutable == Some(true) {
            merged.immutable = Some(true);
        }
    }
    merged
}

/// Key/value pairs in kustomize's order: env files, literals, files.
fn load_pairs(
    context: &GeneratorContext<'_>,
    args: &GeneratorArgs,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut pairs = Vec::new();
    for env in &args.envs {
        let path = context.loader.join(context.dir, env)?;
        let text = context.loader.read_within(context.dir, &path)?;
        for (number, line) in text.lines().enumerate() {
            let line = if number == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.split_once('=') {
                Some((key, value)) => (key, value),
                // kustomize reads a bare name from its own environment; the sandbox has none.
                None => (line, ""),
            };
            if !is_env_var_name(key) {
                return Err(Error::input(format!(
                    "invalid env var name `{key}` in {env}: a valid environment variable name must \
                     consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit"
                ))
                .in_file(&path)
                .at_line(number + 1));
            }
            pairs.push((key.to_owned(), value.as_bytes().to_vec()));
        }
    }
    for literal in &args.literals {
        let Some((key, value)) = literal.split_once('=') else {
            return Err(Error::input(format!(
                "invalid literal source {literal}, expected key=value"
            )));
        };
        if key.is_empty() {
            return Err(Error::input(format!(
                "invalid literal source {literal}, expected key=value"
            )));
        }
        pairs.push((key.to_owned(), remove_quotes(value).as_bytes().to_vec()));
    }
    for file in &args.files {
        let (key, relative) = match file.split_once('=') {
            Some((key, relative)) => {
                if key.is_empty() {
                    return Err(Error::input(format!(
                        "key name for file path {relative} missing"
                    )));
                }
                if relative.is_empty() {
                    return Err(Error::input(format!(
                        "file path for key name {key} missing"
                    )));
                }
                (key.to_owned(), relative)
            }
            None => (base_name(file).to_owned(), file.as_str()),
        };
        let path = context.loader.join(context.dir, relative)?;
        context.loader.check_restriction(context.dir, &path)?;
        if context.loader.is_dir(&path) {
            return Err(Error::input(format!(
                "file source `{relative}` is a directory; name its files one by one"
            )));
        }
        if !is_config_map_key(&key) {
            return Err(Error::input(format!(
                "invalid key `{key}`: a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
            )));
        }
        pairs.push((key, context.loader.read_bytes(&path)?));
    }
    Ok(pairs)
}

fn remove_quotes(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && bytes[0] == bytes[bytes.len() - 1]
        && (bytes[0] == b'"' || bytes[0] == b'\'')
    {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

fn is_env_var_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn is_config_map_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Join a generated object into the map by its behavior (kustomize's `appendReplaceOrMerge`).
pub fn absorb(resources: &mut ResMap, mut generated: Resource) -> Result<()> {
    let id = generated.cur_id();
    let matches = resources.matching_any_id(&id);
    match (matches.as_slice(), generated.behavior) {
        ([], Behavior::Create) => resources.append(generated),
        ([], _) => Err(Error::input(format!(
            "id {id} does not exist; cannot merge or replace"
        ))),
        ([_], Behavior::Create) => Err(Error::input(format!(
            "id {id} exists; behavior must be merge or replace"
        ))),
        ([index], behavior) => {
            let old = &resources.resources[*index];
            merge_string_map(&mut generated, old, "labels");
            merge_string_map(&mut generated, old, "annotations");
            generated.set_name(old.name());
            let namespace = old.namespace().to_owned();
            generated.set_namespace(&namespace);
            if behavior == Behavior::Merge {
                for field in ["data", "binaryData"] {
                    let mut merged: Map<String, Value> = old
                        .object
                        .get(field)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if let Some(new) = generated.object.get(field).and_then(Value::as_object) {
                        merged.extend(new.clone());
                    }
                    if !merged.is_empty() {
                        generated.object.insert(field.into(), Value::Object(merged));
                    }
                }
            }
            // The history kustomize keeps in build annotations comes from the old object.
            generated.org_id = old.org_id.clone();
            generated.prev_ids = old.prev_ids.clone();
            generated.prefixes = old.prefixes.clone();
            generated.suffixes = old.suffixes.clone();
            // Either side turning the hash off keeps it off (kustomize v5.8.1's behavior).
            generated.needs_hash = old.needs_hash && generated.needs_hash;
            resources.resources[*index] = generated;
            Ok(())
        }
        _ => Err(Error::input(format!(
            "found multiple objects that could accept merge of {id}"
        ))),
    }
}

/// `metadata.<key>` of `into` becomes the old map overridden by its own.
fn merge_string_map(into: &mut Resource, old: &Resource, key: &str) {
    let mut merged: Map<String, Value> = old
        .object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(own) = into
        .object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_object)
    {
        merged.extend(own.clone());
    }
    if !merged.is_empty() {
        into.metadata_mut()
            .insert(key.into(), Value::Object(merged));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_removed_only_when_matching() {
        assert_eq!(remove_quotes("\"a b\""), "a b");
        assert_eq!(remove_quotes("'x"), "'x");
    }

    #[test]
    fn local_labels_win_and_global_disables_hash() {
        let mut local = GeneratorOptions::default();
        local.labels.insert("a".into(), "local".into());
        let mut global = GeneratorOptions::default();
        global.labels.insert("a".into(), "global".into());
        global.disable_name_suffix_hash = Some(true);
        let merged = merged_options(Some(&local), Some(&global));
        assert_eq!(merged.labels["a"], "local");
        assert_eq!(merged.disable_name_suffix_hash, Some(true));
    }
}
