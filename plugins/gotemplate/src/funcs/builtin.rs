//! Go text/template's own functions (exec/funcs.go): comparisons with Go's kind rules, `index`,
//! `len`, the print family and the escapers. `and`/`or` live in the executor (they are lazy).

use super::{CallContext, arity, at_least, string_arg};
use crate::printf;
use crate::value::Value;

pub fn not(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    arity(args, 1)?;
    Ok(Value::Bool(!args[0].truthy()))
}

pub fn len(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    arity(args, 1)?;
    let n = match &args[0] {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Object(o) if o.entries().is_some() => o.entries().map_or(0, |e| e.len()),
        // Go's len asks reflect for the type of the invalid value, and reflect panics.
        Value::Nil => return Err("reflect: call of reflect.Value.Type on zero Value".into()),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(Value::Int(n as i64))
}

/// Go's indexArg, then reflect's Index: beyond the length is Go's own error, exactly at the
/// length reflect's panic (`kind` names the indexed kind, "slice" or "string").
fn index_of(len: usize, index: &Value, what: &str, kind: &str) -> Result<usize, String> {
    let i = match index {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Nil => return Err(format!("cannot index {what} with nil")),
        other => {
            return Err(format!(
                "cannot index {what} with type {}",
                other.type_name()
            ));
        }
    };
    if i < 0 || i as usize > len {
        return Err(format!("index out of range: {i}"));
    }
    if i as usize == len {
        return Err(format!("reflect: {kind} index out of range"));
    }
    Ok(i as usize)
}

pub fn index(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    at_least(args, 1)?;
    let mut item = args[0].clone();
    if item.is_nil() {
        return Err("index of untyped nil".into());
    }
    for (n, idx) in args[1..].iter().enumerate() {
        item = match &item {
            // A nil reached through a previous index is a typed nil in Go.
            Value::Nil if n > 0 => return Err("index of nil pointer".into()),
            Value::List(l) => l[index_of(l.len(), idx, "slice/array", "slice")?].clone(),
            Value::String(s) => {
                let i = index_of(s.len(), idx, "slice/array", "string")?;
                Value::Int(s.as_bytes()[i] as i64)
            }
            Value::Map(m) => match idx {
                Value::String(k) => m.get(k).unwrap_or(Value::Nil),
                Value::Nil => return Err("value is nil; should be of type string".into()),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::Object(o) if o.entries().is_some() => o
                .entries()
                .unwrap_or_default()
                .into_iter()
                .find(|(k, _)| crate::value::deep_equal(k, idx))
                .map(|(_, v)| v)
                .unwrap_or(Value::Nil),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

pub fn print(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    Ok(Value::str(printf::sprint(args)))
}

pub fn printf(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    at_least(args, 1)?;
    let format = string_arg(args, 0)?;
    Ok(Value::str(printf::sprintf(format, &args[1..])))
}

pub fn println(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    Ok(Value::str(printf::sprintln(args)))
}

/// Go's evalArgs: a single string as is, anything else through fmt.Sprint.
/// Go's evalArgs: a single string as is, else fmt.Sprint with nils shown as `<no value>`.
fn joined(args: &[Value]) -> String {
    match args {
        [Value::String(s)] => s.to_string(),
        _ => {
            let printable: Vec<Value> = args
                .iter()
                .map(|a| match a {
                    Value::Nil => Value::str("<no value>"),
                    other => other.clone(),
                })
                .collect();
            printf::sprint(&printable)
        }
    }
}

pub fn html(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    let s = joined(args);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Ok(Value::str(out))
}

pub fn js(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    let s = joined(args);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c if !c.is_ascii() && c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    Ok(Value::str(out))
}

/// Go's url.QueryEscape.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn urlquery(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    Ok(Value::str(query_escape(&joined(args))))
}

pub fn call(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    at_least(args, 1)?;
    Err(format!(
        "non-function {} of type {}",
        args[0].go_string(),
        args[0].type_name()
    ))
}

/// Go's basic kinds for comparison; `None` for kinds `lt` cannot order.
#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        _ => Kind::Other,
    }
}

fn incompatible(a: &Value, b: &Value) -> String {
    format!(
        "incompatible types for comparison: {} and {}",
        a.type_name(),
        b.type_name()
    )
}

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    // Go groups every non-basic kind (and nil) as one "invalid" basic kind.
    let group = |k: Kind| if k == Kind::Other { Kind::Invalid } else { k };
    if group(ka) != group(kb) {
        if a.is_nil() || b.is_nil() {
            return Ok(false);
        }
        return Err(incompatible(a, b));
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Nil, _) | (_, Value::Nil) => a.is_nil() && b.is_nil(),
        (Value::Object(x), Value::Object(y)) => std::sync::Arc::ptr_eq(x, y),
        // Go's messages name the operands in this (odd) order, the first ones printed with %s.
        (x, y) if x.kind_name() != y.kind_name() => {
            return Err(format!(
                "non-comparable types {}: {}, {}: {}",
                printf::sprintf("%s", std::slice::from_ref(x)),
                x.type_name(),
                y.type_name(),
                y.go_string()
            ));
        }
        (_, y) => {
            return Err(format!(
                "non-comparable type {}: {}",
                printf::sprintf("%s", std::slice::from_ref(y)),
                y.type_name()
            ));
        }
    })
}

pub fn eq(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    at_least(args, 1)?;
    if args.len() == 1 {
        return Err("missing argument for comparison".into());
    }
    for b in &args[1..] {
        if equal(&args[0], b)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

pub fn ne(ctx: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    arity(args, 2)?;
    let Value::Bool(b) = eq(ctx, args)? else {
        unreachable!("eq returns a bool")
    };
    Ok(Value::Bool(!b))
}

fn less(a: &Value, b: &Value) -> Result<bool, String> {
    const BAD_TYPE: &str = "invalid type for comparison";
    let (ka, kb) = (kind(a), kind(b));
    if matches!(ka, Kind::Invalid | Kind::Other) || matches!(kb, Kind::Invalid | Kind::Other) {
        return Err(BAD_TYPE.into());
    }
    if ka != kb {
        return Err(incompatible(a, b));
    }
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::String(x), Value::String(y)) => Ok(x < y),
        _ => Err(BAD_TYPE.into()),
    }
}

pub fn lt(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    arity(args, 2)?;
    less(&args[0], &args[1]).map(Value::Bool)
}

pub fn le(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    arity(args, 2)?;
    Ok(Value::Bool(
        less(&args[0], &args[1])? || equal(&args[0], &args[1])?,
    ))
}

pub fn gt(ctx: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    let Value::Bool(b) = le(ctx, args)? else {
        unreachable!("le returns a bool")
    };
    Ok(Value::Bool(!b))
}

pub fn ge(_: &mut CallContext, args: &[Value]) -> Result<Value, String> {
    arity(args, 2)?;
    Ok(Value::Bool(!less(&args[0], &args[1])?))
}
