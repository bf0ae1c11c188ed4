//! `crds:` — OpenAPI definition files (name → `{"Schema": …}`, kustomize's `nameToApiMap`) whose
//! `x-kubernetes-*` extensions add field specs: annotations, label selectors, identity (name prefix) and
//! object references (name references). Only definitions that look like Kubernetes types (with `kind`,
//! `apiVersion` and `metadata` properties) are roots; `$ref`s are followed by name.

use super::{FieldSpec, NameReference, TransformerConfig};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

pub fn merge_file(config: &mut TransformerConfig, path: &str, text: &str) -> Result<()> {
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        crate::loader::parse_yaml(text).map_err(|(m, _)| m)
    };
    let definitions = parsed
        .ok()
        .and_then(|v| v.as_object().cloned())
        .ok_or_else(|| Error::input("unable to parse open API definition").in_file(path))?;
    for (name, definition) in &definitions {
        let Some(properties) = properties(definition) else {
            continue;
        };
        if !["kind", "apiVersion", "metadata"]
            .iter()
            .all(|k| properties.contains_key(*k))
        {
            continue;
        }
        let kind = name.rsplit('.').next().unwrap_or(name);
        let mut seen = Vec::new();
        load(config, kind, &definitions, name, &mut Vec::new(), &mut seen);
    }
    Ok(())
}

fn properties(definition: &Value) -> Option<&Map<String, Value>> {
    definition.get("Schema")?.get("properties")?.as_object()
}

fn load(
    config: &mut TransformerConfig,
    kind: &str,
    definitions: &Map<String, Value>,
    type_name: &str,
    path: &mut Vec<String>,
    seen: &mut Vec<String>,
) {
    // A self-referencing schema would recurse forever in kustomize; stop at a type already on the path.
    if seen.iter().any(|s| s == type_name) {
        return;
    }
    let Some(props) = definitions.get(type_name).and_then(properties) else {
        return;
    };
    seen.push(type_name.to_owned());
    for (name, property) in props {
        let spec = |extra: Option<&str>| {
            let mut parts = path.clone();
            parts.push(name.clone());
            parts.extend(extra.map(str::to_owned));
            FieldSpec {
                path: parts.join("/").into(),
                group: "".into(),
                version: "".into(),
                kind: kind.to_owned().into(),
                create: false,
            }
        };
        let extension = |key: &str| property.get(key).and_then(Value::as_str);
        if extension("x-kubernetes-annotation").is_some() {
            push(&mut config.common_annotations, spec(None));
        }
        if extension("x-kubernetes-label-selector").is_some() {
            push(&mut config.common_labels, spec(None));
        }
        if extension("x-kubernetes-identity").is_some() {
            push(&mut config.name_prefix, spec(None));
        }
        if let (Some(version), Some(referral)) = (
            extension("x-kubernetes-object-ref-api-version"),
            extension("x-kubernetes-object-ref-kind"),
        ) {
            let key = extension("x-kubernetes-object-ref-name-key").unwrap_or("name");
            let referrer = spec(Some(key));
            match config
                .name_reference
                .iter_mut()
                .find(|r| r.kind == referral && r.version == version && r.group.is_empty())
            {
                Some(existing) => push(&mut existing.referrers, referrer),
                None => config.name_reference.push(NameReference {
                    group: String::new(),
                    version: version.to_owned(),
                    kind: referral.to_owned(),
                    referrers: vec![referrer],
                }),
            }
        }
        if let Some(reference) = property.get("$ref").and_then(Value::as_str) {
            path.push(name.clone());
            load(config, kind, definitions, reference, path, seen);
            path.pop();
        }
    }
    seen.pop();
}

fn push(specs: &mut Vec<FieldSpec>, spec: FieldSpec) {
    if !specs.contains(&spec) {
        specs.push(spec);
    }
}
