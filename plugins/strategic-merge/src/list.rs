//! Lists whose schema says `x-kubernetes-patch-strategy: merge`: elements matched by their merge
//! keys (or, for lists of scalars, by value) and merged one by one, as kyaml's associative-sequence
//! walker does with kustomize's "patch elements first" option. How elements are identified is
//! `elements.rs`.

use serde_json::Value;

use crate::elements::{
    element_values, find_element, is_null_or_empty_map, merge_values, primitive_values,
    scalar_text, set_element, validate_keys,
};
use crate::error::MergeError;
use crate::merge::{
    DIRECTIVE, Directive, Merger, Sources, Walked, display_path, kind_name, parse_directive,
};
use crate::schema::Shape;

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

/// Removes a valid `$patch` from a map element, as reading the directive does in kyaml.
fn strip_directive(element: &mut Value) {
    if let Value::Object(fields) = element
        && fields
            .get(DIRECTIVE)
            .and_then(Value::as_str)
            .is_some_and(|d| matches!(d, "merge" | "replace" | "delete"))
    {
        fields.remove(DIRECTIVE);
    }
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
            // When the base list is the patch list, what merging removes from one is gone from
            // the other too.
            let (in_patch, patch_list) = if self.aliased {
                (in_dest, &dest[..])
            } else {
                (
                    find_element(self.patch, &match_keys, &match_values),
                    self.patch,
                )
            };
            let index = in_patch.or(in_dest).unwrap_or_default();
            let patch_element = in_patch.map(|i| patch_list[i].clone());
            if let (true, Some(i)) = (self.aliased, in_dest) {
                // kyaml strips the element's `$patch` from the one node both sides share, so the
                // list keeps the stripped element even when the merge removes it.
                strip_directive(&mut dest[i]);
            }
            let walked = self.merger.walk(
                Sources {
                    base: in_dest.map(|i| dest[i].clone()),
                    patch: patch_element,
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
