//! The dynamic values templates compute with, modelled on what Go's reflection sees when Helm hands
//! `map[string]interface{}` data to text/template: maps iterate in sorted key order, integers and
//! floats are distinct kinds, and a missing value is `Nil`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// A value a template reads or computes.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// Go's untyped nil (`interface{}(nil)`), also what a missing map key yields.
    #[default]
    Nil,
    Bool(bool),
    /// Go `int`: template literals, `len`, `atoi`, `int`.
    Int(i64),
    /// Go `int64`: Sprig's arithmetic and `int64`, Helm's `--set` integers. It prints and
    /// compares as an integer but is no `int` to functions that take one, as in Go.
    Int64(i64),
    /// Go `float64`: every number decoded from YAML or JSON values.
    Float(f64),
    String(Arc<str>),
    /// A Go slice: `[]interface {}`, or `[]string`/`[]int` from the Sprig functions that
    /// return those (`splitList`, `keys`, `until`…), whose elements are not boxed.
    List(List),
    /// Shared and mutable like a Go map: `set`, `unset` and `merge` change it for every holder.
    Map(Map),
    /// A host object with fields and methods (`.Files`, `.Capabilities`, `.Chart`).
    Object(Arc<dyn Object>),
}

/// A host-provided value with Go-style fields and methods.
pub trait Object: fmt::Debug + Send + Sync {
    /// `.Name` without arguments, when no method of that name exists.
    fn field(&self, name: &str) -> Option<Value>;
    /// `.Method arg…`; `None` when there is no such method (the engine then tries `field`).
    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, String>>;
    /// The Go type name shown by `typeOf` and in error messages.
    fn type_name(&self) -> String {
        "object".to_string()
    }
    /// What `{{ . }}` prints for this object.
    fn display(&self) -> String {
        format!("{{{}}}", self.type_name())
    }
    /// Whether `if` treats the object as true (a non-nil pointer in Go is).
    fn truthy(&self) -> bool {
        true
    }
    /// For an object that is a Go map or slice underneath (Helm's `.Files.Glob` result is a
    /// map with methods): its (key or index, element) pairs in iteration order, which `range`,
    /// `len` and `index` use. `None` for an object that is neither.
    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        None
    }
    /// The plain data the object encodes as (`toJson`, `toYaml`), like Go marshalling a
    /// struct's exported fields; `None` encodes as null.
    fn to_value(&self) -> Option<Value> {
        None
    }
    /// For an object that is a Go struct: its fields as encoding/json writes them (`toJson`), in
    /// declaration order rather than sorted. `None` encodes `to_value` instead.
    fn json_fields(&self) -> Option<Vec<(String, Value)>> {
        None
    }
}

impl Value {
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(List::new(items))
    }

    pub fn map(entries: BTreeMap<String, Value>) -> Value {
        Value::Map(Map::from(entries))
    }

    pub fn empty_map() -> Value {
        Value::Map(Map::default())
    }

    /// The integer of either Go integer kind.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Int(i) | Value::Int64(i) => Some(*i),
            _ => None,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l.as_slice()),
            _ => None,
        }
    }

    /// Go's truth: zero values and empty collections are false (text/template `isTrue`).
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(o) => o.truthy(),
        }
    }

    /// The Go type name as `%T` and sprig's `typeOf` print it for Helm data.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Int64(_) => "int64".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::List(l) => format!("[]{}", l.elem().go_name()),
            Value::Map(m) => m
                .methods()
                .map_or_else(|| "map[string]interface {}".into(), |m| m.type_name()),
            Value::Object(o) => o.type_name(),
        }
    }

    /// The reflect kind name as sprig's `kindOf` prints it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Object(_) => "ptr",
        }
    }

    /// Convert JSON. Numbers become float64, as in Helm's values from YAML; with `ints`,
    /// integral numbers become Go `int64` instead, as Helm's `--set` parses them.
    pub fn from_json(json: serde_json::Value, ints: bool) -> Value {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) if ints => Value::Int64(i),
                _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(a) => {
                Value::list(a.into_iter().map(|v| Value::from_json(v, ints)).collect())
            }
            serde_json::Value::Object(o) => Value::map(
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v, ints)))
                    .collect(),
            ),
        }
    }

    /// Convert to JSON; objects become null, non-finite floats become null (Go's encoder errors).
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_at(0)
    }

    fn to_json_at(&self, depth: usize) -> serde_json::Value {
        if depth > MAX_VALUE_DEPTH {
            return serde_json::Value::Null;
        }
        match self {
            Value::Object(o) => o
                .to_value()
                .map_or(serde_json::Value::Null, |v| v.to_json_at(depth + 1)),
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) | Value::Int64(i) => serde_json::Value::from(*i),
            Value::Float(f) => {
                // Integral floats are written without a fraction, as Go's encoding/json does.
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    serde_json::Value::from(*f as i64)
                } else {
                    serde_json::Number::from_f64(*f)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null)
                }
            }
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::List(l) => {
                serde_json::Value::Array(l.iter().map(|v| v.to_json_at(depth + 1)).collect())
            }
            Value::Map(m) => serde_json::Value::Object(
                m.read()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json_at(depth + 1)))
                    .collect(),
            ),
        }
    }

    /// YAML text read the way Helm reads values files and `fromYaml` (sigs.k8s.io/yaml over
    /// go-yaml v2): YAML 1.1 plain scalars (`yes` is true, `0755` is 493), `<<` merge keys,
    /// numbers as float64, keys as strings; only the first document. The error is
    /// sigs.k8s.io/yaml's message.
    pub fn from_yaml(text: &str) -> Result<Value, String> {
        crate::encode::from_yaml(text)
    }

    /// The text Helm's `toYaml` gives (sigs.k8s.io/yaml), without its trailing newline
    /// trimmed: keys in go-yaml order, integral floats as integers, long strings folded.
    pub fn to_yaml(&self) -> String {
        crate::encode::to_yaml(self)
    }

    /// Go's `fmt.Sprint` of the value (`%v`): nil is `<nil>`, maps are `map[k:v]`.
    pub fn go_string(&self) -> String {
        let mut out = String::new();
        write_go(&mut out, self, 0);
        out
    }
}

/// How deep printing, encoding and comparing follow nested values. A map can hold itself
/// (`set $m "self" $m`), which Go follows until its stack is exhausted; here the walk stops.
pub(crate) const MAX_VALUE_DEPTH: usize = 100;

fn write_go(out: &mut String, v: &Value, depth: usize) {
    if depth > MAX_VALUE_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&crate::printf::format_float_g(*f, None, false)),
        Value::String(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(out, item, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, item)) in m.read().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_go(out, item, depth + 1);
            }
            out.push(']');
        }
        Value::Object(o) => out.push_str(&o.display()),
    }
}

/// The element type of a Go slice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Elem {
    /// `[]interface {}`: what templates build and Helm's values hold.
    #[default]
    Any,
    String,
    Int,
}

impl Elem {
    pub fn go_name(self) -> &'static str {
        match self {
            Elem::Any => "interface {}",
            Elem::String => "string",
            Elem::Int => "int",
        }
    }
}

/// A Go slice: shared, immutable items (Sprig copies lists; nothing changes one in place) and
/// an element type.
#[derive(Clone, Default)]
pub struct List {
    items: Arc<Vec<Value>>,
    elem: Elem,
    /// A Go nil slice: empty, but `null` to the JSON and YAML encoders.
    nil: bool,
}

impl List {
    pub fn new(items: Vec<Value>) -> List {
        List::typed(items, Elem::Any)
    }

    /// A `[]string` or `[]int`; the items must be of that kind.
    pub fn typed(items: Vec<Value>, elem: Elem) -> List {
        List {
            items: Arc::new(items),
            elem,
            nil: false,
        }
    }

    /// A nil `[]interface {}`, as some Sprig functions return for nothing.
    pub fn nil() -> List {
        List {
            nil: true,
            ..List::default()
        }
    }

    /// Whether this is a nil slice (encoded as `null`).
    pub fn is_nil(&self) -> bool {
        self.nil && self.items.is_empty()
    }

    pub fn elem(&self) -> Elem {
        self.elem
    }

    pub fn as_slice(&self) -> &[Value] {
        &self.items
    }

    /// Other items with this list's element type (a re-slice keeps Go's slice type).
    pub fn like(&self, items: Vec<Value>) -> List {
        List::typed(items, self.elem)
    }
}

impl std::ops::Deref for List {
    type Target = [Value];

    fn deref(&self) -> &[Value] {
        &self.items
    }
}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items.iter()).finish()
    }
}

/// A Go map: a shared, mutable reference to sorted entries (sorted as `fmt` and `range` see them),
/// and, for a named map type of the host (helm's `common.Values`), that type's methods. The methods
/// belong to this handle, not to the entries: Go's map types are per value, the data is shared.
#[derive(Clone, Default)]
pub struct Map {
    entries: Arc<RwLock<BTreeMap<String, Value>>>,
    methods: Option<Arc<dyn MapMethods>>,
}

/// The methods of a host's named map type. In Go a method of the map's type shadows a key of the
/// same name (text/template looks for a method first), so `.Name` on such a map calls the method
/// when `call` answers for `Name`.
pub trait MapMethods: fmt::Debug + Send + Sync {
    /// `map.method args…`; `None` when the type has no such method.
    fn call(&self, map: &Map, method: &str, args: &[Value]) -> Option<Result<Value, String>>;
    /// The Go type name `typeOf` and `%T` print (`common.Values`).
    fn type_name(&self) -> String;
}

impl Map {
    pub fn new() -> Self {
        Self::default()
    }

    /// The same entries as a map of the host's type with `methods`.
    pub fn with_methods(&self, methods: Arc<dyn MapMethods>) -> Map {
        Map {
            entries: Arc::clone(&self.entries),
            methods: Some(methods),
        }
    }

    /// The same entries as a plain `map[string]interface {}` (Go's conversion to the unnamed type).
    pub fn without_methods(&self) -> Map {
        Map {
            entries: Arc::clone(&self.entries),
            methods: None,
        }
    }

    /// The methods of the map's named type, if it has one.
    pub fn methods(&self) -> Option<&Arc<dyn MapMethods>> {
        self.methods.as_ref()
    }

    /// Read access to the entries; do not call back into templates while holding it.
    pub fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Value>> {
        // Poisoning needs a panic while writing, which aborts in the plugin.
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Value>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.read().get(key).cloned()
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.read().contains_key(key)
    }

    pub fn insert(&self, key: impl Into<String>, value: Value) -> Option<Value> {
        self.write().insert(key.into(), value)
    }

    pub fn remove(&self, key: &str) -> Option<Value> {
        self.write().remove(key)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn keys(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// A copy of the entries, safe to iterate while templates change the map.
    pub fn entries(&self) -> Vec<(String, Value)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A copy of the entries as a new, unshared map (nested maps stay shared).
    pub fn to_btree(&self) -> BTreeMap<String, Value> {
        self.read().clone()
    }

    pub fn ptr_eq(&self, other: &Map) -> bool {
        Arc::ptr_eq(&self.entries, &other.entries)
    }
}

impl From<BTreeMap<String, Value>> for Map {
    fn from(m: BTreeMap<String, Value>) -> Self {
        Map {
            entries: Arc::new(RwLock::new(m)),
            methods: None,
        }
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Through go_string, which stops inside a map that holds itself.
        f.write_str(&Value::Map(self.clone()).go_string())
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        Value::from_json(json, false)
    }
}

impl From<&Value> for serde_json::Value {
    fn from(v: &Value) -> Self {
        v.to_json()
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Self {
        Value::list(l)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(m: BTreeMap<String, Value>) -> Self {
        Value::map(m)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.go_string())
    }
}

/// Go's `reflect.DeepEqual` on template data: kinds must match exactly (1 is not 1.0).
pub fn deep_equal(a: &Value, b: &Value) -> bool {
    deep_equal_at(a, b, 0)
}

fn deep_equal_at(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_VALUE_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) | (Value::Int64(x), Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(x), Value::List(y)) if x.elem() == y.elem() => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(a, b)| deep_equal_at(a, b, depth + 1))
        }
        (Value::Map(x), Value::Map(y)) => {
            let (x, y) = (x.read(), y.read());
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| ka == kb && deep_equal_at(va, vb, depth + 1))
        }
        (Value::Object(x), Value::Object(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_floats_unless_asked() {
        let j = serde_json::json!({"a": 3, "b": [1.5, "x", null]});
        let v = Value::from(j.clone());
        assert_eq!(v.go_string(), "map[a:3 b:[1.5 x <nil>]]");
        assert!(matches!(
            v.as_map().unwrap().get("a"),
            Some(Value::Float(_))
        ));
        let v = Value::from_json(j, true);
        assert!(matches!(
            v.as_map().unwrap().get("a"),
            Some(Value::Int64(3))
        ));
    }

    #[test]
    fn truthiness_follows_go_zero_values() {
        assert!(!Value::Nil.truthy());
        assert!(!Value::Float(0.0).truthy());
        assert!(!Value::str("").truthy());
        assert!(!Value::empty_map().truthy());
        assert!(Value::Int(-1).truthy());
    }

    #[test]
    fn large_floats_print_in_exponent_form() {
        assert_eq!(Value::Float(1_000_000.0).go_string(), "1e+06");
        assert_eq!(Value::Float(100_000.0).go_string(), "100000");
    }
}
