//! JSON Patch (RFC 6902) as kustomize applies it (evanphx/json-patch v4): operations in order on a
//! copy of the target, the first failing one failing the whole patch. Like that library, array
//! indices may be negative (counted from the end).

use serde_json::Value;

use crate::error::PatchError;

/// `target` with the RFC 6902 `operations` (a list of `{op, path, value | from}`) applied.
pub fn apply_json6902(target: &Value, operations: &Value) -> Result<Value, PatchError> {
    let operations = operations.as_array().ok_or_else(|| PatchError::Malformed {
        index: 0,
        reason: "a JSON patch is a list of operations".to_owned(),
    })?;
    let mut document = target.clone();
    for (index, operation) in operations.iter().enumerate() {
        Operation::parse(index, operation)?.apply(&mut document)?;
    }
    Ok(document)
}

/// What an operation does, with the members its `op` requires.
#[derive(Debug)]
enum Op<'a> {
    Add(&'a Value),
    Remove,
    Replace(&'a Value),
    Test(&'a Value),
    Move {
        from: Vec<String>,
        raw_from: &'a str,
    },
    Copy {
        from: Vec<String>,
        raw_from: &'a str,
    },
}

/// One operation, checked for its required members.
#[derive(Debug)]
struct Operation<'a> {
    index: usize,
    op: &'a str,
    kind: Op<'a>,
    path: Vec<String>,
    raw_path: &'a str,
}

impl<'a> Operation<'a> {
    fn parse(index: usize, operation: &'a Value) -> Result<Self, PatchError> {
        let malformed = |reason: String| PatchError::Malformed { index, reason };
        let fields = operation
            .as_object()
            .ok_or_else(|| malformed("an operation is a map".to_owned()))?;
        let op = fields
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("`op` is missing or not a string".to_owned()))?;
        let text = |name: &str| -> Result<&'a str, PatchError> {
            fields
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(format!("{op}: `{name}` is missing or not a string")))
        };
        let value = || {
            fields
                .get("value")
                .ok_or_else(|| malformed(format!("{op}: `value` is missing")))
        };
        let pointer = |raw: &str| {
            parse_pointer(raw).ok_or_else(|| PatchError::InvalidPointer {
                index,
                op: op.to_owned(),
                pointer: raw.to_owned(),
            })
        };
        let raw_path = text("path")?;
        let path = pointer(raw_path)?;
        let kind = match op {
            "add" => Op::Add(value()?),
            "remove" => Op::Remove,
            "replace" => Op::Replace(value()?),
            "test" => Op::Test(value()?),
            "move" | "copy" => {
                let raw_from = text("from")?;
                let from = pointer(raw_from)?;
                if op == "move" {
                    Op::Move { from, raw_from }
                } else {
                    Op::Copy { from, raw_from }
                }
            }
            other => return Err(malformed(format!("unknown op '{other}'"))),
        };
        Ok(Operation {
            index,
            op,
            kind,
            path,
            raw_path,
        })
    }

    fn missing(&self, pointer: &str, reason: impl Into<String>) -> PatchError {
        PatchError::Missing {
            index: self.index,
            op: self.op.to_owned(),
            pointer: pointer.to_owned(),
            reason: reason.into(),
        }
    }

    fn apply(&self, document: &mut Value) -> Result<(), PatchError> {
        match &self.kind {
            Op::Add(value) => self.add(document, &self.path, self.raw_path, (*value).clone()),
            Op::Remove => self.remove(document, &self.path, self.raw_path).map(drop),
            Op::Replace(value) => self.replace(document, (*value).clone()),
            Op::Test(expected) => {
                // evanphx/json-patch v4: a missing value equals null.
                let actual = get(document, &self.path).unwrap_or(&Value::Null);
                if json_equal(actual, expected) {
                    Ok(())
                } else {
                    Err(PatchError::TestFailed {
                        index: self.index,
                        pointer: self.raw_path.to_owned(),
                        expected: expected.to_string(),
                    })
                }
            }
            Op::Move { from, raw_from } => {
                if self.path.len() > from.len() && self.path.starts_with(from) {
                    return Err(self.missing(raw_from, "cannot move a value into itself"));
                }
                let value = self.remove(document, from, raw_from)?;
                self.add(document, &self.path, self.raw_path, value)
            }
            Op::Copy { from, raw_from } => {
                let value = get(document, from)
                    .cloned()
                    .ok_or_else(|| self.missing(raw_from, "no such value"))?;
                self.add(document, &self.path, self.raw_path, value)
            }
        }
    }

    fn add(
        &self,
        document: &mut Value,
        path: &[String],
        raw: &str,
        value: Value,
    ) -> Result<(), PatchError> {
        let Some((last, parents)) = path.split_last() else {
            *document = value;
            return Ok(());
        };
        let parent = get_mut(document, parents)
            .ok_or_else(|| self.missing(raw, "its parent does not exist"))?;
        match parent {
            Value::Object(fields) => {
                fields.insert(last.clone(), value);
                Ok(())
            }
            Value::Array(elements) => {
                let len = elements.len();
                let at = if last == "-" {
                    Some(len)
                } else {
                    insertion_index(last, len)
                };
                let at =
                    at.ok_or_else(|| self.missing(raw, format!("index out of a list of {len}")))?;
                elements.insert(at, value);
                Ok(())
            }
            _ => Err(self.missing(raw, "its parent is a scalar")),
        }
    }

    /// Like evanphx/json-patch v4, replacing a field a map lacks sets it; a list element must
    /// exist.
    fn replace(&self, document: &mut Value, value: Value) -> Result<(), PatchError> {
        let Some((last, parents)) = self.path.split_last() else {
            *document = value;
            return Ok(());
        };
        let raw = self.raw_path;
        let parent = get_mut(document, parents)
            .ok_or_else(|| self.missing(raw, "its parent does not exist"))?;
        match parent {
            Value::Object(fields) => {
                fields.insert(last.clone(), value);
                Ok(())
            }
            Value::Array(elements) => {
                let len = elements.len();
                let at = array_index(last, len)
                    .ok_or_else(|| self.missing(raw, format!("index out of a list of {len}")))?;
                elements[at] = value;
                Ok(())
            }
            _ => Err(self.missing(raw, "its parent is a scalar")),
        }
    }

    fn remove(
        &self,
        document: &mut Value,
        path: &[String],
        raw: &str,
    ) -> Result<Value, PatchError> {
        let Some((last, parents)) = path.split_last() else {
            return Err(self.missing(raw, "cannot remove the whole document"));
        };
        let parent = get_mut(document, parents)
            .ok_or_else(|| self.missing(raw, "its parent does not exist"))?;
        match parent {
            Value::Object(fields) => fields
                .remove(last)
                .ok_or_else(|| self.missing(raw, format!("no field '{last}'"))),
            Value::Array(elements) => {
                let len = elements.len();
                let at = array_index(last, len)
                    .ok_or_else(|| self.missing(raw, format!("index out of a list of {len}")))?;
                Ok(elements.remove(at))
            }
            _ => Err(self.missing(raw, "its parent is a scalar")),
        }
    }
}

/// The tokens of a JSON pointer, unescaped; `None` if it is not one.
fn parse_pointer(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// A list index below `bound`; negative indices count from the end of a list of `bound` (as
/// evanphx/json-patch allows). `-` is handled by the caller.
fn array_index(token: &str, bound: usize) -> Option<usize> {
    let index: i64 = token.parse().ok()?;
    let bound = i64::try_from(bound).ok()?;
    let index = if index < 0 { index + bound } else { index };
    (0..bound)
        .contains(&index)
        .then(|| usize::try_from(index).ok())
        .flatten()
}

/// Where `add` inserts in a list of `len`: up to `len` itself; negative indices count from past
/// the end (-1 appends), as evanphx/json-patch v4 does.
fn insertion_index(token: &str, len: usize) -> Option<usize> {
    array_index(token, len + 1)
}

/// Equality as JSON means it: `1` and `1.0` are the same number.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64() && x.as_f64().is_some(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| json_equal(x, y)))
        }
        _ => a == b,
    }
}

fn get<'v>(document: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(document, |value, token| match value {
        Value::Object(fields) => fields.get(token),
        Value::Array(elements) => elements.get(array_index(token, elements.len())?),
        _ => None,
    })
}

fn get_mut<'v>(document: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(document, |value, token| match value {
        Value::Object(fields) => fields.get_mut(token),
        Value::Array(elements) => {
            let at = array_index(token, elements.len())?;
            elements.get_mut(at)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(target: Value, operations: Value) -> Result<Value, PatchError> {
        apply_json6902(&target, &operations)
    }

    #[test]
    fn add_inserts_appends_and_sets() {
        let patched = apply(
            json!({"a": {"list": [1, 3]}}),
            json!([
                {"op": "add", "path": "/a/list/1", "value": 2},
                {"op": "add", "path": "/a/list/-", "value": 4},
                {"op": "add", "path": "/a/new", "value": {"x": 1}}
            ]),
        );
        assert_eq!(
            patched,
            Ok(json!({"a": {"list": [1, 2, 3, 4], "new": {"x": 1}}}))
        );
    }

    #[test]
    fn pointers_unescape_tilde_and_slash() {
        let patched = apply(
            json!({"annotations": {"a/b": "1", "t~n": "2"}}),
            json!([
                {"op": "remove", "path": "/annotations/a~1b"},
                {"op": "replace", "path": "/annotations/t~0n", "value": "3"}
            ]),
        );
        assert_eq!(patched, Ok(json!({"annotations": {"t~n": "3"}})));
    }

    #[test]
    fn negative_indices_count_from_the_end() {
        let patched = apply(
            json!({"l": [1, 2, 3]}),
            json!([
                {"op": "remove", "path": "/l/-1"},
                {"op": "add", "path": "/l/-1", "value": 9},
                {"op": "add", "path": "/l/-4", "value": 0}
            ]),
        );
        assert_eq!(patched, Ok(json!({"l": [0, 1, 2, 9]})));
    }

    #[test]
    fn move_copy_and_test() {
        let patched = apply(
            json!({"a": {"x": 1}, "b": [0]}),
            json!([
                {"op": "copy", "from": "/a/x", "path": "/b/-"},
                {"op": "move", "from": "/a", "path": "/c"},
                {"op": "test", "path": "/c", "value": {"x": 1}},
                {"op": "test", "path": "/missing", "value": null},
                {"op": "test", "path": "/b/1", "value": 1.0}
            ]),
        );
        assert_eq!(patched, Ok(json!({"b": [0, 1], "c": {"x": 1}})));
    }

    #[test]
    fn replace_sets_a_missing_field_but_not_a_missing_element() {
        assert_eq!(
            apply(
                json!({"a": 1}),
                json!([{"op": "replace", "path": "/b", "value": 2}])
            ),
            Ok(json!({"a": 1, "b": 2}))
        );
        let error = apply(
            json!({"l": []}),
            json!([{"op": "replace", "path": "/l/0", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "operation 0 (replace): /l/0: index out of a list of 0"
        );
    }

    #[test]
    fn failures_name_the_operation_and_pointer() {
        let cases = [
            (
                json!([{"op": "remove", "path": "/nope"}]),
                "operation 0 (remove): /nope: no field 'nope'",
            ),
            (
                json!([{"op": "add", "path": "/x/y", "value": 1}]),
                "operation 0 (add): /x/y: its parent does not exist",
            ),
            (
                json!([{"op": "test", "path": "/a", "value": 2}]),
                "operation 0 (test): /a: value differs from the expected 2",
            ),
            (
                json!([{"op": "add", "path": "a", "value": 2}]),
                "operation 0 (add): 'a' is not a JSON pointer",
            ),
            (
                json!([{"op": "frob", "path": "/a"}]),
                "operation 0: unknown op 'frob'",
            ),
            (
                json!([{"op": "add", "path": "/a"}]),
                "operation 0: add: `value` is missing",
            ),
            (
                json!([{"op": "move", "from": "/a", "path": "/a/b"}]),
                "operation 0 (move): /a: cannot move a value into itself",
            ),
        ];
        for (operations, message) in cases {
            let error = apply(json!({"a": 1}), operations).unwrap_err();
            assert_eq!(error.to_string(), message);
        }
    }
}
