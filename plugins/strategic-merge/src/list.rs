//! Lists whose schema says `x-kubernetes-patch-strategy: merge`: elements matched by their merge
//! keys (or, for lists of scalars, by value) and merged one by one, as kyaml's associative-sequence
//! walker does with kustomize's "patch elements first" option.
//!
//! kyaml identifies elements by the text of their key fields (so `80` and `"80"` are the same
//! port) and lets elements that agree on the keys both sides have be one element. Its quirks
//! (which elements survive when keys are missing, how elements of lists with several keys move)
//! are kept on purpose: the result must equal `kustomize build`'s.

use serde_json::Value;

use crate::error::MergeError;
use crate::merge::{
    DIRECTIVE, Directive, Merger, Sources, Walked, display_path, kind_name, parse_directive,
};
use crate::schema::Shape;

/// The text kyaml compares for a value: a scalar's text, nothing for a map or list.
pub(crate) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        Value::Object(_) | Value::Array(_) => String::new(),
    }
}

/// The text of a key field for matching; null and empty values count as absent.
fn key_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::Object(m)) if m.is_empty() => String::new(),
        Some(Value::Array(a)) if a.is_empty() => String::new(),
        Some(v) => scalar_text(v),
    }
}

fn is_null_or_empty_map(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    }
}

pub(crate) fn walk_merging_list<'s>(
    merger: &Merger<'s>,
    sources: Sources<'s>,
    path: &str,
) -> Result<Walked, MergeError> {
    let Sources {
        base,
        mut patch,
        shape,
        aliased,
    } = sources;
    let (dest, from_patch) = match base {
        None | Some(Value::Null) => (patch.clone().unwrap_or_default(), true),
        Some(_) if patch.as_ref().is_some_and(Value::is_null) => return Ok(Walked::Cleared),
        Some(base) => match take_list_directive(&mut patch, path)? {
            Directive::Delete => return Ok(Walked::Cleared),
            Directive::Replace => (patch.clone().unwrap_or_default(), true),
            Directive::Merge if aliased => (patch.clone().unwrap_or_default(), false),
            Directive::Merge => (base, false),
        },
    };
    let Value::Array(dest) = dest else {
        return Ok(Walked::Cleared);
    };
    let patch: &[Value] = match &patch {
        Some(Value::Array(elements)) => elements,
        _ => &[],
    };
    let keys = match shape.and_then(|s| merger.schema.resolve(s)) {
        Some(Shape::List(list)) => list.keys(),
        _ => Vec::new(),
    };
    let list = ListMerge {
        merger,
        element_shape: merger.schema.elements(shape),
        patch,
        aliased: aliased || from_patch,
        path,
    };
    // The patch's elements first, then the base's others.
    let keyed = element_values(&keys, &[patch, &dest]);
    let merged = if !keyed.is_empty() || !keys.is_empty() {
        list.merge(keyed, &keys, dest)?
    } else {
        let values = primitive_values(&[patch, &dest]);
        list.merge(values, &[String::new()], dest)?
    };
    Ok(if from_patch {
        Walked::Patch(Value::Array(merged))
    } else {
        Walked::Base(Value::Array(merged))
    })
}

/// Reads and removes a `{$patch: …}` element from a patch list. Unknown values are an error.
fn take_list_directive(patch: &mut Option<Value>, path: &str) -> Result<Directive, MergeError> {
    let Some(Value::Array(elements)) = patch else {
        return Ok(Directive::Merge);
    };
    let Some((index, element)) = elements
        .iter()
        .enumerate()
        .find_map(|(i, e)| Some((i, e.as_object()?)).filter(|(_, e)| e.contains_key(DIRECTIVE)))
    else {
        return Ok(Directive::Merge);
    };
    // An element with other fields is an element that happens to say `$patch`, not a directive
    // for the list.
    if element.len() > 1 {
        return Ok(Directive::Merge);
    }
    let value = &element[DIRECTIVE];
    let directive = parse_directive(value, &format!("{path}/{index}/{DIRECTIVE}"))?;
    let text = scalar_text(value);
    set_element(
        elements,
        None,
        &[DIRECTIVE.to_owned()],
        &[text],
        &format!("{path}/{index}"),
    )?;
    Ok(directive)
}

/// Key texts of every element of `lists`, first occurrence kept, in order.
fn element_values(keys: &[String], lists: &[&[Value]]) -> Vec<Vec<String>> {
    let mut seen: Vec<Vec<String>> = Vec::new();
    for list in lists {
        for element in *list {
            let values: Vec<String> = keys
                .iter()
                .map(|key| key_text(element.as_object().and_then(|fields| fields.get(key))))
                .collect();
            if values.is_empty() || seen.contains(&values) {
                continue;
            }
            seen.push(values);
        }
    }
    seen
}

/// Texts of the elements of lists of scalars, first occurrence kept, in order.
fn primitive_values(lists: &[&[Value]]) -> Vec<Vec<String>> {
    let mut seen: Vec<Vec<String>> = Vec::new();
    for list in lists {
        for element in *list {
            let value = vec![scalar_text(element)];
            if !seen.contains(&value) {
                seen.push(value);
            }
        }
    }
    seen
}

/// The keys (and their values) that identify an element: those any element has a value for.
fn validate_keys(
    all: &[Vec<String>],
    values: &[String],
    keys: &[String],
) -> (Vec<String>, Vec<String>) {
    let present: Vec<&String> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| all.iter().any(|v| v.get(*i).is_some_and(|t| !t.is_empty())))
        .map(|(_, key)| key)
        .collect();
    if present.is_empty() {
        return (keys.to_vec(), values.to_vec());
    }
    let valid_keys = keys
        .iter()
        .filter(|k| present.contains(k))
        .cloned()
        .collect();
    let valid_values = values
        .iter()
        .zip(keys)
        .filter(|(v, k)| !v.is_empty() || present.contains(k))
        .map(|(v, _)| v.clone())
        .collect();
    (valid_keys, valid_values)
}

/// Elements that agree on every key both have a value for become one (a port without protocol is
/// the same as the one with it).
fn merge_values(all: &mut [Vec<String>]) {
    for i in 0..all.len() {
        let first = all[i].clone();
        for j in 0..all.len() {
            if let Some(merged) = match_values(&first, &all[j]) {
                all[i] = merged.clone();
                all[j] = merged;
            }
        }
    }
}

fn match_values(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len() != b.len() {
        return None;
    }
    let mut common = false;
    let mut merged = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common = true;
            merged.push(x.clone());
        } else if !x.is_empty() && !y.is_empty() {
            return None;
        } else if !x.is_empty() {
            merged.push(x.clone());
        } else {
            merged.push(y.clone());
        }
    }
    common.then_some(merged)
}

/// The first element whose key fields have exactly these texts (kyaml's `ElementMatcher`).
fn find_element(list: &[Value], keys: &[String], values: &[String]) -> Option<usize> {
    let blank = [String::new()];
    let keys = if keys.is_empty() { &blank[..] } else { keys };
    let values = if values.is_empty() {
        &blank[..]
    } else {
        values
    };
    if keys[0].is_empty() {
        return list.iter().position(|e| scalar_text(e) == values[0]);
    }
    if keys.len() != values.len() {
        return None;
    }
    list.iter().position(|element| {
        element.as_object().is_some_and(|fields| {
            keys.iter()
                .zip(values)
                .all(|(key, value)| fields.get(key).is_some_and(|v| scalar_text(v) == *value))
        })
    })
}

/// Whether `element` has field `key` (with text `value` unless that is empty), or for a list of
/// scalars, is `value` (kyaml's `FieldMatcher`).
fn field_matches(element: &Value, key: &str, value: &str, path: &str) -> Result<bool, MergeError> {
    if element.is_null() {
        return Ok(false);
    }
    if key.is_empty() {
        if element.is_object() || element.is_array() {
            return Err(MergeError::InvalidListElement {
                path: display_path(path),
                reason: format!("a {} in a list of scalars", kind_name(element)),
            });
        }
        return Ok(scalar_text(element) == value);
    }
    let Some(fields) = element.as_object() else {
        return Err(MergeError::InvalidListElement {
            path: display_path(path),
            reason: format!("a {} in a list merged by key '{key}'", kind_name(element)),
        });
    };
    Ok(fields
        .get(key)
        .is_some_and(|v| value.is_empty() || scalar_text(v) == value))
}

/// kyaml's `ElementSetter`: replaces every element matching `keys`/`values` with `element` (or
/// removes them when it is `None`), appends `element` if none matched, and drops null and empty
/// elements on the way.
fn set_element(
    list: &mut Vec<Value>,
    element: Option<Value>,
    keys: &[String],
    values: &[String],
    path: &str,
) -> Result<(), MergeError> {
    let blank = [String::new()];
    let keys = if keys.is_empty() { &blank[..] } else { keys };
    let matches_maps = !keys[0].is_empty() && values.first().is_some_and(|v| !v.is_empty());
    let mut kept = Vec::with_capacity(list.len() + 1);
    let mut matched_any = false;
    for current in std::mem::take(list) {
        if is_null_or_empty_map(&current) {
            continue;
        }
        if matches_maps && !current.is_object() {
            kept.push(current);
            continue;
        }
        // kyaml keeps the last lookup's result for keys it has no value for.
        let mut matched = false;
        let mut found = true;
        for (j, key) in keys.iter().enumerate() {
            if let Some(value) = values.get(j) {
                matched = field_matches(&current, key, value, path)?;
            }
            if !matched {
                found = false;
                break;
            }
        }
        if !found {
            if !values.is_empty() {
                kept.push(current);
            }
            continue;
        }
        matched_any = true;
        if let Some(element) = &element {
            kept.push(element.clone());
        }
    }
    *list = kept;
    match element {
        Some(element) if !element.is_null() && !matched_any => list.push(element),
        _ => {}
    }
    Ok(())
}

/// One merge-by-key list: the patch's elements and what merging an element needs.
struct ListMerge<'m, 's> {
    merger: &'m Merger<'s>,
    element_shape: Option<&'s Shape>,
    patch: &'m [Value],
    /// The base list is the patch list itself, so are its elements.
    aliased: bool,
    path: &'m str,
}

impl ListMerge<'_, '_> {
    /// Merges element by element: `all` holds the key texts of every element (patch's first).
    fn merge(
        &self,
        mut all: Vec<Vec<String>>,
        keys: &[String],
        mut dest: Vec<Value>,
    ) -> Result<Vec<Value>, MergeError> {
        let mut added: Vec<Value> = Vec::new();
        if keys.len() > 1 {
            merge_values(&mut all);
        }
        let mut valid_keys = Vec::new();
        for values in &all {
            if values.is_empty() {
                continue;
            }
            let valid_values;
            (valid_keys, valid_values) = validate_keys(&all, values, keys);
            let (match_keys, match_values) = validate_keys(
                std::slice::from_ref(&valid_values),
                &valid_values,
                &valid_keys,
            );
            let in_dest = find_element(&dest, &match_keys, &match_values);
            let in_patch = find_element(self.patch, &match_keys, &match_values);
            let index = in_patch.or(in_dest).unwrap_or_default();
            let walked = self.merger.walk(
                Sources {
                    base: in_dest.map(|i| dest[i].clone()),
                    patch: in_patch.map(|i| self.patch[i].clone()),
                    shape: self.element_shape,
                    aliased: self.aliased,
                },
                &format!("{}/{index}", self.path),
            )?;
            // A merged element is the base's own (kyaml merges into it in place); so is a patch
            // element when the base list is the patch list.
            let value = match walked {
                Walked::Base(value) => {
                    if let Some(i) = in_dest {
                        dest[i] = value.clone();
                    }
                    Some(value)
                }
                Walked::Patch(value) => {
                    if let (true, Some(i)) = (self.aliased, in_dest) {
                        dest[i] = value.clone();
                    }
                    Some(value)
                }
                Walked::Cleared => None,
            };
            let path = format!("{}/{index}", self.path);
            let mut value = match value {
                Some(v) if !is_null_or_empty_map(&v) => v,
                _ => {
                    if !valid_keys.is_empty() {
                        set_element(&mut dest, None, &valid_keys, &valid_values, &path)?;
                    }
                    continue;
                }
            };
            if let Value::Object(fields) = &mut value {
                for (key, text) in valid_keys.iter().zip(&valid_values) {
                    if !fields.contains_key(key) && !text.is_empty() {
                        fields.insert(key.clone(), Value::String(text.clone()));
                    }
                }
            }
            set_element(&mut added, Some(value), &valid_keys, &valid_values, &path)?;
        }
        if all.is_empty() {
            return Ok(dest);
        }
        self.append(added, dest, &valid_keys)
    }

    /// The base's elements put over the merged ones (kyaml's `appendListNode` with the merged
    /// list first): a matching element takes the base's version; with several keys it moves to
    /// the end.
    fn append(
        &self,
        mut merged: Vec<Value>,
        dest: Vec<Value>,
        keys: &[String],
    ) -> Result<Vec<Value>, MergeError> {
        for (index, element) in dest.into_iter().enumerate() {
            let path = format!("{}/{index}", self.path);
            if keys.first().is_none_or(String::is_empty) {
                let text = scalar_text(&element);
                set_element(&mut merged, Some(element), &[String::new()], &[text], &path)?;
                continue;
            }
            let mut values = Vec::new();
            for key in keys {
                let fields = match &element {
                    Value::Null => None,
                    Value::Object(fields) => Some(fields),
                    other => {
                        return Err(MergeError::InvalidListElement {
                            path: display_path(&path),
                            reason: format!(
                                "a {} in a list merged by key '{key}'",
                                kind_name(other)
                            ),
                        });
                    }
                };
                match fields.and_then(|f| f.get(key)) {
                    Some(value) => values.push(scalar_text(value)),
                    None => merged.push(element.clone()),
                }
            }
            if keys.len() > 1 {
                set_element(&mut merged, None, keys, &values, &path)?;
            }
            set_element(&mut merged, Some(element), keys, &values, &path)?;
        }
        Ok(merged)
    }
}
