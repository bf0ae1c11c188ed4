//! Finding and replacing elements of a merge-by-key list the way kyaml does: by the text of their
//! key fields (so `80` and `"80"` are the same port), with elements that agree on the keys both
//! have counting as one. Owns these kyaml primitives (`ElementMatcher`, `FieldMatcher`,
//! `ElementSetter` and the key bookkeeping of its associative-sequence walker) and nothing else;
//! their quirks are kept on purpose, since the result must equal `kustomize build`'s.

use serde_json::Value;

use crate::error::MergeError;
use crate::merge::{display_path, kind_name};

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
pub(crate) fn key_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::Object(m)) if m.is_empty() => String::new(),
        Some(Value::Array(a)) if a.is_empty() => String::new(),
        Some(v) => scalar_text(v),
    }
}

pub(crate) fn is_null_or_empty_map(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    }
}

/// Key texts of every element of `lists`, first occurrence kept, in order.
pub(crate) fn element_values(keys: &[String], lists: &[&[Value]]) -> Vec<Vec<String>> {
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
pub(crate) fn primitive_values(lists: &[&[Value]]) -> Vec<Vec<String>> {
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
pub(crate) fn validate_keys(
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
pub(crate) fn merge_values(all: &mut [Vec<String>]) {
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
pub(crate) fn find_element(list: &[Value], keys: &[String], values: &[String]) -> Option<usize> {
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
pub(crate) fn set_element(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|row| row.iter().map(|t| (*t).to_owned()).collect())
            .collect()
    }

    #[test]
    fn key_values_take_the_first_occurrence_in_list_order() {
        let keys = ["name".to_owned()];
        let patch = [json!({"name": "b"}), json!({"name": "a"})];
        let base = [json!({"name": "a"}), json!({"name": 3}), json!({})];
        assert_eq!(
            element_values(&keys, &[&patch, &base]),
            texts(&[&["b"], &["a"], &["3"], &[""]])
        );
    }

    #[test]
    fn elements_missing_a_key_merge_with_those_that_have_it() {
        let mut all = texts(&[&["80", ""], &["80", "TCP"], &["81", "UDP"]]);
        merge_values(&mut all);
        assert_eq!(
            all,
            texts(&[&["80", "TCP"], &["80", "TCP"], &["81", "UDP"]])
        );
    }

    #[test]
    fn keys_nobody_has_a_value_for_are_dropped() {
        let keys = ["port".to_owned(), "protocol".to_owned()];
        let all = texts(&[&["80", ""], &["81", ""]]);
        assert_eq!(
            validate_keys(&all, &all[0], &keys),
            (vec!["port".to_owned()], vec!["80".to_owned()])
        );
    }

    #[test]
    fn find_element_compares_key_texts() {
        let list = [json!("x"), json!({"port": 80}), json!({"port": "81"})];
        let keys = ["port".to_owned()];
        assert_eq!(find_element(&list, &keys, &["80".to_owned()]), Some(1));
        assert_eq!(find_element(&list, &keys, &["81".to_owned()]), Some(2));
        assert_eq!(find_element(&list, &[], &["x".to_owned()]), Some(0));
        assert_eq!(find_element(&list, &keys, &["82".to_owned()]), None);
    }

    #[test]
    fn set_element_replaces_appends_removes_and_drops_empties() {
        let keys = ["name".to_owned()];
        let mut list = vec![
            json!({"name": "a"}),
            json!({}),
            json!(null),
            json!({"name": "b"}),
        ];
        set_element(
            &mut list,
            Some(json!({"name": "a", "v": 1})),
            &keys,
            &["a".to_owned()],
            "",
        )
        .unwrap();
        assert_eq!(
            list,
            vec![json!({"name": "a", "v": 1}), json!({"name": "b"})]
        );
        set_element(
            &mut list,
            Some(json!({"name": "c"})),
            &keys,
            &["c".to_owned()],
            "",
        )
        .unwrap();
        set_element(&mut list, None, &keys, &["b".to_owned()], "").unwrap();
        assert_eq!(
            list,
            vec![json!({"name": "a", "v": 1}), json!({"name": "c"})]
        );
    }

    #[test]
    fn a_map_in_a_list_of_scalars_is_an_error_naming_its_place() {
        let mut list = vec![json!({"a": 1})];
        let error = set_element(&mut list, Some(json!("x")), &[], &["x".to_owned()], "/l/0");
        assert_eq!(
            error.unwrap_err().to_string(),
            "/l/0: a map in a list of scalars"
        );
    }
}
