//! Sprig's dict functions (dict.go). Dicts are shared like Go maps: `set`, `unset`, `merge` and
//! `mergeOverwrite` change their first argument in place, which charts rely on
//! (`$_ := set $ctx "k" v`).

use super::strings::strval;
use super::{CallContext, arg_error, arity, at_least, string_arg};
use crate::value::{Elem, List, Map, Value};

type R = Result<Value, String>;

/// A `map[string]interface{}` parameter.
fn map_arg(a: &[Value], i: usize) -> Result<Map, String> {
    match &a[i] {
        Value::Map(m) => Ok(m.clone()),
        // Go's nil map: readable and empty.
        Value::Nil => Ok(Map::new()),
        other => Err(arg_error(
            i,
            format!(
                "wrong type for value; expected map[string]interface {{}}; got {}",
                other.type_name()
            ),
        )),
    }
}

pub fn dict(_: &mut CallContext, a: &[Value]) -> R {
    let m = Map::new();
    for pair in a.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_else(|| Value::str(""));
        m.insert(strval(&pair[0]), value);
    }
    Ok(Value::Map(m))
}

pub fn get(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    if a[0].is_nil() {
        string_arg(a, 1)?;
        return Ok(Value::str(""));
    }
    let m = map_arg(a, 0)?;
    Ok(m.get(string_arg(a, 1)?).unwrap_or_else(|| Value::str("")))
}

/// Writing to a nil map panics in Go.
fn writable(a: &[Value]) -> Result<(), String> {
    if a[0].is_nil() {
        return Err("assignment to entry in nil map".into());
    }
    Ok(())
}

pub fn set(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    writable(a)?;
    let m = map_arg(a, 0)?;
    m.insert(string_arg(a, 1)?, a[2].clone());
    Ok(a[0].clone())
}

pub fn unset(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let m = map_arg(a, 0)?;
    m.remove(string_arg(a, 1)?);
    // A nil map comes back as an empty (Go: nil) map, which prints as map[].
    Ok(Value::Map(m))
}

pub fn has_key(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let m = map_arg(a, 0)?;
    Ok(Value::Bool(m.contains_key(string_arg(a, 1)?)))
}

pub fn pluck(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    let key = string_arg(a, 0)?;
    let mut out = Vec::new();
    for i in 1..a.len() {
        if let Some(v) = map_arg(a, i)?.get(key) {
            out.push(v);
        }
    }
    Ok(Value::list(out))
}

pub fn dig(_: &mut CallContext, a: &[Value]) -> R {
    if a.len() < 3 {
        return Err("dig needs at least three arguments".into());
    }
    // Sprig type-asserts the last argument; a failed assertion is a panic, not an arg error.
    let mut current = match &a[a.len() - 1] {
        Value::Map(m) => m.clone(),
        other => {
            return Err(interface_conversion(other, "map[string]interface {}"));
        }
    };
    let default = &a[a.len() - 2];
    let keys = &a[..a.len() - 2];
    for (i, k) in keys.iter().enumerate() {
        let k = match k {
            Value::String(s) => s,
            other => {
                return Err(interface_conversion(other, "string"));
            }
        };
        let Some(step) = current.get(k) else {
            return Ok(default.clone());
        };
        if i == keys.len() - 1 {
            return Ok(step);
        }
        current = match step {
            Value::Map(m) => m,
            other => {
                return Err(interface_conversion(&other, "map[string]interface {}"));
            }
        };
    }
    Ok(default.clone())
}

/// mergo.Merge / mergo.Merge(WithOverride) on `map[string]interface{}`.
fn merge_into(dst: &Map, src: &Map, overwrite: bool, depth: usize) {
    if dst.ptr_eq(src) || depth > crate::value::MAX_VALUE_DEPTH {
        return;
    }
    for (k, sv) in src.entries() {
        let dv = dst.get(&k);
        match &sv {
            Value::Nil => {
                if overwrite {
                    dst.insert(k, Value::Nil);
                }
                continue;
            }
            Value::Map(sm) => {
                if let Some(Value::Map(dm)) = &dv {
                    merge_into(dm, sm, overwrite, depth + 1);
                    if !dm.is_empty() {
                        continue;
                    }
                }
            }
            Value::List(_) => {
                // mergo replaces with a source list whenever it overwrites (its emptiness test
                // looks at the whole source map), and fills an empty or missing destination.
                let dst_empty = dv.as_ref().is_none_or(|d| !d.truthy());
                if dst_empty || overwrite {
                    dst.insert(k, sv.clone());
                }
                continue;
            }
            _ => {}
        }
        let dst_empty = dv.as_ref().is_none_or(|d| !d.truthy());
        if overwrite || dst_empty {
            dst.insert(k, sv);
        }
    }
}

fn merge_all(a: &[Value], overwrite: bool) -> R {
    at_least(a, 1)?;
    let dst = map_arg(a, 0)?;
    for i in 1..a.len() {
        merge_into(&dst, &map_arg(a, i)?, overwrite, 0);
    }
    // A nil destination is replaced by the merged map, as mergo does through its pointer.
    Ok(Value::Map(dst))
}

pub fn merge(_: &mut CallContext, a: &[Value]) -> R {
    merge_all(a, false)
}

pub fn merge_overwrite(_: &mut CallContext, a: &[Value]) -> R {
    merge_all(a, true)
}

/// Go's map order is random; sorted keys keep renders reproducible.
pub fn keys(_: &mut CallContext, a: &[Value]) -> R {
    let mut out = Vec::new();
    for i in 0..a.len() {
        out.extend(map_arg(a, i)?.keys().into_iter().map(Value::str));
    }
    Ok(Value::List(List::typed(out, Elem::String)))
}

pub fn pick(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    let m = map_arg(a, 0)?;
    let out = Map::new();
    for i in 1..a.len() {
        let k = string_arg(a, i)?;
        if let Some(v) = m.get(k) {
            out.insert(k, v);
        }
    }
    Ok(Value::Map(out))
}

pub fn omit(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    let m = map_arg(a, 0)?;
    let drop: Vec<&str> = (1..a.len())
        .map(|i| string_arg(a, i))
        .collect::<Result<_, _>>()?;
    let out = Map::new();
    for (k, v) in m.entries() {
        if !drop.contains(&k.as_str()) {
            out.insert(k, v);
        }
    }
    Ok(Value::Map(out))
}

pub fn values(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let m = map_arg(a, 0)?;
    Ok(Value::list(
        m.entries().into_iter().map(|(_, v)| v).collect(),
    ))
}

pub fn deep_copy_value(v: &Value) -> Value {
    deep_copy_at(v, 0)
}

/// Copies nested maps and lists; past the depth the encoders follow (a map holding itself),
/// the rest stays shared.
fn deep_copy_at(v: &Value, depth: usize) -> Value {
    if depth > crate::value::MAX_VALUE_DEPTH {
        return v.clone();
    }
    match v {
        Value::Map(m) => {
            let out = Map::new();
            for (k, v) in m.entries() {
                out.insert(k, deep_copy_at(&v, depth + 1));
            }
            // copystructure makes a value of the original type: a copy of `.Values` keeps its methods.
            match m.methods() {
                Some(methods) => Value::Map(out.with_methods(std::sync::Arc::clone(methods))),
                None => Value::Map(out),
            }
        }
        Value::List(l) => {
            Value::List(l.like(l.iter().map(|v| deep_copy_at(v, depth + 1)).collect()))
        }
        other => other.clone(),
    }
}

pub fn deep_copy(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    if a[0].is_nil() {
        // copystructure asks reflect for the type of nil, which panics.
        return Err("reflect: call of reflect.Value.Type on zero Value".into());
    }
    Ok(deep_copy_value(&a[0]))
}

/// The message of Go's panic when a type assertion on an `interface{}` fails, which sprig's `dig`
/// lets through as the call's error.
fn interface_conversion(value: &Value, want: &str) -> String {
    let have = if value.is_nil() {
        "nil".to_string()
    } else {
        value.type_name()
    };
    format!("interface conversion: interface {{}} is {have}, not {want}")
}
