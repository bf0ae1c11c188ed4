//! Strategic merge of a patch into an object, the way `kustomize build` does it (kyaml's `merge2`
//! walker with the patch's list elements placed first). Owns maps, scalars and the `$patch`
//! directive; lists that merge by key are `list.rs`.
//!
//! Where kyaml and apimachinery's `strategicpatch` differ, this follows kyaml, because the result
//! must equal what `kustomize build` prints:
//! - `$retainKeys`, `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>` are not
//!   directives to kyaml: they stay in the object as ordinary fields.
//! - elements of a merge-by-key list that the patch names come first, in the patch's order, then
//!   the base's other elements;
//! - `$patch: replace` on one element of a merge-by-key list leaves the base's element as it was.
//!
//! kyaml mutates the patch while it walks and sometimes walks a patch node against itself (when the
//! base lacks a field, the patch's value becomes the base and is merged with itself). `aliased`
//! marks that case so directive elision shows on both sides as it does there.

use serde_json::{Map, Value};

use crate::elements::scalar_text;
use crate::error::MergeError;
use crate::list;
use crate::schema::{Schema, Shape};

/// The patch directive key.
pub(crate) const DIRECTIVE: &str = "$patch";

/// A `$patch` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Directive {
    Merge,
    Replace,
    Delete,
}

/// What a merge produced at one place, and which side the value came from: a merged list element
/// that is the base's own element is kept by the list logic, one taken from the patch may not be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Walked {
    /// The field or element is removed.
    Cleared,
    /// The base's value, with the patch merged in.
    Base(Value),
    /// The patch's value (new, replaced, or a scalar).
    Patch(Value),
}

impl Walked {
    pub(crate) fn into_value(self) -> Option<Value> {
        match self {
            Walked::Cleared => None,
            Walked::Base(v) | Walked::Patch(v) => Some(v),
        }
    }
}

/// A merge of one patch into objects of one schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Merger<'s> {
    pub(crate) schema: &'s Schema,
}

/// `base` and `patch` at one place of the object, with the schema of that place.
#[derive(Debug)]
pub(crate) struct Sources<'a> {
    /// `None` when the base lacks the field; `Some(Null)` when it holds an explicit null.
    pub(crate) base: Option<Value>,
    pub(crate) patch: Option<Value>,
    pub(crate) shape: Option<&'a Shape>,
    /// The base is (a copy of) the patch itself, see the module doc.
    pub(crate) aliased: bool,
}

/// The name of a value's kind in messages.
pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "map",
        Value::Array(_) => "list",
        Value::Null => "null",
        _ => "scalar",
    }
}

fn is_missing_or_null(value: Option<&Value>) -> bool {
    matches!(value, None | Some(Value::Null))
}

impl<'s> Merger<'s> {
    /// Merges the sources at `path` (a JSON pointer, for messages).
    pub(crate) fn walk(&self, mut sources: Sources<'s>, path: &str) -> Result<Walked, MergeError> {
        if sources.shape.is_none() {
            sources.shape = self.shape_from_type_meta(&sources);
        }
        // The first source that holds a value decides what kind of value this is; the other must
        // be of the same kind or null.
        let leading = [&sources.base, &sources.patch]
            .into_iter()
            .flatten()
            .find(|v| !v.is_null());
        let Some(leading) = leading else {
            return self.walk_map(sources, path);
        };
        let expected = kind_name(leading);
        for value in [&sources.base, &sources.patch].into_iter().flatten() {
            if !value.is_null() && kind_name(value) != expected {
                return Err(MergeError::KindMismatch {
                    path: display_path(path),
                    expected,
                    found: kind_name(value),
                });
            }
        }
        match expected {
            "map" => self.walk_map(sources, path),
            "list" => {
                let merges = match sources.shape.and_then(|s| self.schema.resolve(s)) {
                    Some(Shape::List(list)) => list.merges(),
                    _ => false,
                };
                if merges {
                    list::walk_merging_list(self, sources, path)
                } else {
                    Ok(replace_or_keep(sources))
                }
            }
            _ => Ok(replace_or_keep(sources)),
        }
    }

    /// kyaml looks up the type of any map that says `apiVersion` and `kind`, at the top or nested
    /// where the schema knows nothing.
    fn shape_from_type_meta(&self, sources: &Sources<'s>) -> Option<&'s Shape> {
        [&sources.base, &sources.patch]
            .into_iter()
            .flatten()
            .filter(|v| !v.is_null())
            .find_map(|v| {
                let api_version = v.get("apiVersion")?.as_str()?;
                let kind = v.get("kind")?.as_str()?;
                if api_version.is_empty() || kind.is_empty() {
                    return None;
                }
                self.schema.shape_of_kind(api_version, kind)
            })
    }

    fn walk_map(&self, sources: Sources<'s>, path: &str) -> Result<Walked, MergeError> {
        let Sources {
            base,
            mut patch,
            shape,
            aliased,
        } = sources;
        // Which value the fields are merged into, and whether it is the patch's own.
        let (mut target, from_patch) = if is_missing_or_null(base.as_ref()) {
            // A directive kyaml cannot read here is ignored rather than refused.
            let directive = take_map_directive(&mut patch, path).unwrap_or(Directive::Merge);
            if directive == Directive::Delete {
                return Ok(Walked::Cleared);
            }
            match (patch.as_ref(), base) {
                // An explicit null the patch doesn't touch stays.
                (None, Some(Value::Null)) => return Ok(Walked::Base(Value::Null)),
                (None | Some(Value::Null), _) => return Ok(Walked::Cleared),
                (Some(patch), _) => (patch.clone(), true),
            }
        } else if patch.as_ref().is_some_and(Value::is_null) {
            return Ok(Walked::Cleared);
        } else {
            match take_map_directive(&mut patch, path)? {
                Directive::Delete => return Ok(Walked::Cleared),
                Directive::Replace => (patch.clone().unwrap_or_default(), true),
                Directive::Merge if aliased => (patch.clone().or(base).unwrap_or_default(), false),
                Directive::Merge => (base.unwrap_or_default(), false),
            }
        };
        let empty = Map::new();
        let patch_fields = patch.as_ref().and_then(Value::as_object).unwrap_or(&empty);
        let Some(target_fields) = target.as_object_mut() else {
            // Only maps get here (the kinds were checked); anything else is left as it is.
            return Ok(Walked::Base(target));
        };
        let mut names: Vec<String> = target_fields
            .keys()
            .chain(patch_fields.keys())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let base = target_fields.get_mut(&name).map(std::mem::take);
            let field = Sources {
                base,
                patch: patch_fields.get(&name).cloned(),
                shape: self.schema.field(shape, &name),
                aliased: aliased || from_patch,
            };
            let at = format!("{path}/{}", escape(&name));
            match self.walk(field, &at)?.into_value() {
                Some(value) => {
                    target_fields.insert(name, value);
                }
                None => {
                    target_fields.remove(&name);
                }
            }
        }
        Ok(if from_patch {
            Walked::Patch(target)
        } else {
            Walked::Base(target)
        })
    }
}

/// Lists without merge metadata and scalars: the patch's value if it has one (a null removes the
/// field), else the base's.
fn replace_or_keep(sources: Sources<'_>) -> Walked {
    match (sources.patch, sources.base) {
        (Some(Value::Null), _) => Walked::Cleared,
        (Some(patch), _) => Walked::Patch(patch),
        (None, Some(Value::Null)) => Walked::Base(Value::Null),
        (None, Some(base)) => Walked::Base(base),
        (None, None) => Walked::Cleared,
    }
}

/// Reads and removes `$patch` from a patch map. Unknown values are an error (and stay in place).
pub(crate) fn take_map_directive(
    patch: &mut Option<Value>,
    path: &str,
) -> Result<Directive, MergeError> {
    let Some(Value::Object(fields)) = patch else {
        return match patch {
            None => Ok(Directive::Merge),
            Some(other) => Err(MergeError::KindMismatch {
                path: display_path(path),
                expected: "map",
                found: kind_name(other),
            }),
        };
    };
    let Some(value) = fields.get(DIRECTIVE) else {
        return Ok(Directive::Merge);
    };
    let directive = parse_directive(value, &format!("{path}/{DIRECTIVE}"))?;
    fields.remove(DIRECTIVE);
    Ok(directive)
}

pub(crate) fn parse_directive(value: &Value, path: &str) -> Result<Directive, MergeError> {
    match value.as_str() {
        Some("merge") => Ok(Directive::Merge),
        Some("replace") => Ok(Directive::Replace),
        Some("delete") => Ok(Directive::Delete),
        _ => Err(MergeError::UnknownDirective {
            path: display_path(path),
            value: scalar_text(value),
        }),
    }
}

/// The root is named `/` in messages, not the empty pointer.
pub(crate) fn display_path(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

/// `name` as one JSON pointer token.
pub(crate) fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}
