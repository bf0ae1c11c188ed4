//! `vars:` (kustomize's legacy variables): `$(NAME)` in the var-reference fields is replaced with a
//! field of a named object, read after names got their prefixes and hashes. A whole-string reference
//! keeps the field's type; inside text it is formatted; `$$` escapes a `$`.

use crate::error::{Error, Result};
use crate::fieldspec::{TransformerConfig, visit};
use crate::kustomization::Var;
use crate::resource::{ResMap, split_api_version};
use serde_json::Value;
use std::collections::BTreeMap;

pub fn resolve(resources: &mut ResMap, vars: &[Var], config: &TransformerConfig) -> Result<()> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values = BTreeMap::new();
    for var in vars {
        values.insert(var.name.clone(), value_of(resources, var)?);
    }
    for resource in &mut resources.resources {
        let id = resource.cur_id();
        let mut node = Value::Object(std::mem::take(&mut resource.object));
        for spec in config.var_reference.iter().filter(|s| s.selects(&id)) {
            visit(
                &mut node,
                &spec.segments(),
                false,
                &|| Value::Null,
                &mut |value| {
                    substitute(value, &values);
                    Ok(())
                },
            )?;
        }
        if let Value::Object(map) = node {
            resource.object = map;
        }
    }
    Ok(())
}

fn value_of(resources: &ResMap, var: &Var) -> Result<Value> {
    let target = &var.objref;
    let (group, version) = if target.api_version.is_empty() {
        (target.group.as_str(), target.version.as_str())
    } else {
        split_api_version(&target.api_version)
    };
    let matches: Vec<_> = resources
        .resources
        .iter()
        .filter(|r| {
            r.any_ids()
                .iter()
                .any(|id| id.name == target.name && id.gvk_selected(group, version, &target.kind))
        })
        .filter(|r| target.namespace.is_empty() || r.namespace() == target.namespace)
        .collect();
    let resource = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::input(format!(
                "var '{}' cannot be mapped to a field in the set of known resources",
                var.name
            )));
        }
        _ => {
            return Err(Error::input(format!(
                "found {} resId matches for var {} (unable to disambiguate)",
                matches.len(),
                var.name
            )));
        }
    };
    let path = var
        .fieldref
        .as_ref()
        .map(|f| f.fieldpath.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("metadata.name");
    let object = Value::Object(resource.object.clone());
    lookup(&object, path).cloned().ok_or_else(|| {
        Error::input(format!(
            "var '{}': field `{path}` not found in {}",
            var.name,
            resource.describe()
        ))
    })
}

/// A dotted path with optional `[index]` parts (`spec.containers[0].image`).
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = value;
    for part in path.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            current = current.get(name)?;
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let index: usize = index.trim_end_matches(']').parse().ok()?;
            current = current.get(index)?;
        }
    }
    Some(current)
}

fn substitute(value: &mut Value, values: &BTreeMap<String, Value>) {
    match value {
        Value::String(text) => {
            if let Some(name) = text.strip_prefix("$(").and_then(|r| r.strip_suffix(')'))
                && let Some(replacement) = values.get(name)
            {
                *value = replacement.clone();
                return;
            }
            *text = expand(text, values);
        }
        Value::Array(items) => items.iter_mut().for_each(|item| substitute(item, values)),
        Value::Object(map) => map.values_mut().for_each(|item| substitute(item, values)),
        _ => {}
    }
}

/// Kubernetes' `$(VAR)` expansion: known names replaced, unknown ones kept, `$$` → `$`.
fn expand(text: &str, values: &BTreeMap<String, Value>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match values.get(name) {
                Some(Value::String(s)) => out.push_str(s),
                Some(other) => out.push_str(&other.to_string()),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_keeps_unknown_and_escapes() {
        let values = BTreeMap::from([("A".to_owned(), json!("x")), ("N".to_owned(), json!(3))]);
        assert_eq!(expand("$(A)-$(B)-$$(A)-$(N)", &values), "x-$(B)-$(A)-3");
        let mut whole = json!("$(N)");
        substitute(&mut whole, &values);
        assert_eq!(whole, json!(3));
    }

    #[test]
    fn lookup_reads_indexes() {
        let v = json!({"spec": {"c": [{"image": "i"}]}});
        assert_eq!(lookup(&v, "spec.c[0].image"), Some(&json!("i")));
    }
}
