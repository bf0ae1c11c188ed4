//! `values.schema.json` checks: the JSON Schema keywords charts use (type, properties, required,
//! additionalProperties, patternProperties, items, enum, const, bounds, lengths, pattern, the
//! combinators, if/then/else and local `$ref`s), reported like helm as one line per violation with the
//! JSON pointer of the value. `format` is an annotation only, as in helm's validator. A `$ref` the
//! sandbox can't resolve (a URL) is allowed and reported as a warning.

use regex::Regex;
use serde_json::Value;

/// Validate `values` against `schema`; the violations, one message each.
pub fn validate(schema: &Value, values: &Value, warnings: &mut Vec<String>) -> Vec<String> {
    let mut check = Check {
        root: schema,
        errors: Vec::new(),
        warnings,
        depth: 0,
    };
    check.node(schema, values, "");
    check.errors
}

struct Check<'a, 'w> {
    root: &'a Value,
    errors: Vec<String>,
    warnings: &'w mut Vec<String>,
    depth: usize,
}

/// `$ref` cycles that never consume input would recurse forever; no real schema nests this deep.
const MAX_DEPTH: usize = 256;

impl<'a> Check<'a, '_> {
    fn fail(&mut self, at: &str, message: String) {
        let at = if at.is_empty() { "" } else { at };
        self.errors.push(format!("- at '{at}': {message}"));
    }

    /// Whether `value` passes `schema`, without recording errors (for anyOf/oneOf/not/if).
    fn passes(&mut self, schema: &'a Value, value: &Value, at: &str) -> bool {
        let saved = std::mem::take(&mut self.errors);
        self.node(schema, value, at);
        let ok = self.errors.is_empty();
        self.errors = saved;
        ok
    }

    fn node(&mut self, schema: &'a Value, value: &Value, at: &str) {
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return self.fail(at, "false schema".into()),
            Value::Object(schema) => schema,
            _ => return,
        };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return self.fail(at, "schema nests too deep (a $ref cycle?)".into());
        }
        if let Some(Value::String(reference)) = schema.get("$ref") {
            match self.resolve(reference) {
                Some(target) => self.node(target, value, at),
                None => self
                    .warnings
                    .push(format!("values.schema.json: $ref {reference} can't be resolved in the sandbox; not checked")),
            }
        }
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.is_empty() && !allowed.iter().any(|t| has_type(value, t)) {
                let want = allowed.join(" or ");
                self.fail(at, format!("got {}, want {want}", type_of(value)));
            }
        }
        if let Some(Value::Array(options)) = schema.get("enum")
            && !options.iter().any(|o| equal(o, value))
        {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            self.fail(at, format!("value must be one of {}", list.join(", ")));
        }
        if let Some(constant) = schema.get("const")
            && !equal(constant, value)
        {
            self.fail(at, format!("value must be {constant}"));
        }
        match value {
            Value::Object(map) => self.object(schema, map, at),
            Value::Array(items) => self.array(schema, items, at),
            Value::String(text) => self.string(schema, text, at),
            Value::Number(n) => self.number(schema, n.as_f64().unwrap_or_default(), at),
            _ => {}
        }
        if let Some(Value::Array(all)) = schema.get("allOf") {
            for sub in all {
                self.node(sub, value, at);
            }
        }
        if let Some(Value::Array(any)) = schema.get("anyOf")
            && !any.iter().any(|sub| self.passes(sub, value, at))
        {
            self.fail(at, "anyOf failed".into());
        }
        if let Some(Value::Array(one)) = schema.get("oneOf") {
            let matching = one.iter().filter(|sub| self.passes(sub, value, at)).count();
            if matching != 1 {
                self.fail(at, format!("oneOf failed, {matching} subschemas matched"));
            }
        }
        if let Some(not) = schema.get("not")
            && self.passes(not, value, at)
        {
            self.fail(at, "not failed".into());
        }
        if let Some(condition) = schema.get("if") {
            let branch = if self.passes(condition, value, at) {
                schema.get("then")
            } else {
                schema.get("else")
            };
            if let Some(branch) = branch {
                self.node(branch, value, at);
            }
        }
        self.depth -= 1;
    }

    fn object(
        &mut self,
        schema: &'a serde_json::Map<String, Value>,
        map: &serde_json::Map<String, Value>,
        at: &str,
    ) {
        if let Some(Value::Array(required)) = schema.get("required") {
            let missing: Vec<&str> = required
                .iter()
                .filter_map(Value::as_str)
                .filter(|k| !map.contains_key(*k))
                .collect();
            if !missing.is_empty() {
                let list: Vec<String> = missing.iter().map(|k| format!("'{k}'")).collect();
                self.fail(at, format!("missing property {}", list.join(", ")));
            }
        }
        let count = map.len() as f64;
        if let Some(min) = schema.get("minProperties").and_then(Value::as_f64)
            && count < min
        {
            self.fail(at, format!("minProperties: got {count}, want {min}"));
        }
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_f64)
            && count > max
        {
            self.fail(at, format!("maxProperties: got {count}, want {max}"));
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let patterns: Vec<(Regex, &'a Value)> = schema
            .get("patternProperties")
            .and_then(Value::as_object)
            .map(|p| {
                p.iter()
                    .filter_map(|(pattern, sub)| Regex::new(pattern).ok().map(|r| (r, sub)))
                    .collect()
            })
            .unwrap_or_default();
        let additional = schema.get("additionalProperties");
        let mut extra = Vec::new();
        for (key, item) in map {
            let path = format!("{at}/{}", escape(key));
            let mut matched = false;
            if let Some(sub) = properties.and_then(|p| p.get(key)) {
                matched = true;
                self.node(sub, item, &path);
            }
            for (pattern, sub) in &patterns {
                if pattern.is_match(key) {
                    matched = true;
                    self.node(sub, item, &path);
                }
            }
            if !matched {
                match additional {
                    Some(Value::Bool(false)) => extra.push(format!("'{key}'")),
                    Some(sub @ Value::Object(_)) => self.node(sub, item, &path),
                    _ => {}
                }
            }
            if let Some(names) = schema.get("propertyNames") {
                self.node(names, &Value::String(key.clone()), &path);
            }
        }
        if !extra.is_empty() {
            self.fail(
                at,
                format!("additional properties {} not allowed", extra.join(", ")),
            );
        }
    }

    fn array(&mut self, schema: &'a serde_json::Map<String, Value>, items: &[Value], at: &str) {
        let count = items.len() as f64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_f64)
            && count < min
        {
            self.fail(at, format!("minItems: got {count}, want {min}"));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_f64)
            && count > max
        {
            self.fail(at, format!("maxItems: got {count}, want {max}"));
        }
        if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, a) in items.iter().enumerate() {
                if items[i + 1..].iter().any(|b| equal(a, b)) {
                    self.fail(at, "items are not unique".into());
                    break;
                }
            }
        }
        let prefix: &[Value] = match (schema.get("prefixItems"), schema.get("items")) {
            (Some(Value::Array(prefix)), _) | (None, Some(Value::Array(prefix))) => prefix,
            _ => &[],
        };
        let rest = match (schema.get("prefixItems"), schema.get("items")) {
            (_, Some(Value::Array(_))) => schema.get("additionalItems"),
            (_, items) => items,
        };
        for (index, item) in items.iter().enumerate() {
            let path = format!("{at}/{index}");
            match prefix.get(index) {
                Some(sub) => self.node(sub, item, &path),
                None => {
                    if let Some(sub) = rest {
                        self.node(sub, item, &path);
                    }
                }
            }
        }
        if let Some(contains) = schema.get("contains")
            && !items.iter().any(|item| self.passes(contains, item, at))
        {
            self.fail(at, "no items match contains schema".into());
        }
    }

    fn string(&mut self, schema: &serde_json::Map<String, Value>, text: &str, at: &str) {
        let length = text.chars().count() as f64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_f64)
            && length < min
        {
            self.fail(at, format!("minLength: got {length}, want {min}"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_f64)
            && length > max
        {
            self.fail(at, format!("maxLength: got {length}, want {max}"));
        }
        if let Some(Value::String(pattern)) = schema.get("pattern") {
            match Regex::new(pattern) {
                Ok(regex) if !regex.is_match(text) => {
                    self.fail(at, format!("'{text}' does not match pattern '{pattern}'"));
                }
                Ok(_) => {}
                Err(_) => self
                    .warnings
                    .push(format!("values.schema.json: pattern {pattern:?} is not a regular expression this validator reads; not checked")),
            }
        }
    }

    fn number(&mut self, schema: &serde_json::Map<String, Value>, n: f64, at: &str) {
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        if let Some(min) = bound("minimum") {
            let exclusive = schema.get("exclusiveMinimum") == Some(&Value::Bool(true));
            if n < min || (exclusive && n == min) {
                self.fail(at, format!("minimum: got {n}, want {min}"));
            }
        }
        if let Some(max) = bound("maximum") {
            let exclusive = schema.get("exclusiveMaximum") == Some(&Value::Bool(true));
            if n > max || (exclusive && n == max) {
                self.fail(at, format!("maximum: got {n}, want {max}"));
            }
        }
        if let Some(min) = bound("exclusiveMinimum")
            && n <= min
        {
            self.fail(at, format!("exclusiveMinimum: got {n}, want {min}"));
        }
        if let Some(max) = bound("exclusiveMaximum")
            && n >= max
        {
            self.fail(at, format!("exclusiveMaximum: got {n}, want {max}"));
        }
        if let Some(step) = bound("multipleOf")
            && step > 0.0
            && (n / step).fract().abs() > f64::EPSILON
        {
            self.fail(at, format!("{n} not multipleOf {step}"));
        }
    }

    /// A local reference (`#`, `#/definitions/x`, `#/$defs/x`); anything else is outside the sandbox.
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        let decoded: String = pointer.replace("%25", "%").replace("%22", "\"");
        self.root.pointer(&decoded)
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        _ => true,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
    }
}

/// JSON equality where `1` and `1.0` are the same number (values from YAML are floats, `--set` ints).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: Value, values: Value) -> Vec<String> {
        validate(&schema, &values, &mut Vec::new())
    }

    #[test]
    fn types_required_and_refs() {
        let schema = json!({
            "type": "object",
            "required": ["image"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 1},
                "image": {"$ref": "#/definitions/image"},
            },
            "definitions": {"image": {"type": "object", "properties": {"tag": {"type": "string"}}}},
        });
        assert!(
            errors(
                schema.clone(),
                json!({"replicas": 2.0, "image": {"tag": "v1"}})
            )
            .is_empty()
        );
        let found = errors(schema, json!({"replicas": 0.0, "image": {"tag": 1}}));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().any(|e| e.contains("'/replicas'")), "{found:?}");
        assert!(
            found.iter().any(|e| e.contains("'/image/tag'")),
            "{found:?}"
        );
    }

    #[test]
    fn additional_properties_enum_pattern_and_combinators() {
        let schema = json!({
            "additionalProperties": false,
            "properties": {
                "mode": {"enum": ["a", "b"]},
                "name": {"type": "string", "pattern": "^[a-z]+$"},
                "port": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            },
        });
        assert!(
            errors(
                schema.clone(),
                json!({"mode": "a", "name": "abc", "port": "http"})
            )
            .is_empty()
        );
        let found = errors(
            schema,
            json!({"mode": "c", "name": "A", "port": true, "x": 1}),
        );
        assert_eq!(found.len(), 4, "{found:?}");
    }
}
