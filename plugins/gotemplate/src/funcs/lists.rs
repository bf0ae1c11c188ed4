//! Sprig's list functions (list.go). Lists are immutable: every function returns a new one, as
//! Sprig copies slices.

use super::conv::{self, to_i64};
use super::{CallContext, arity, at_least, int_arg};
use crate::value::{Elem, List, Value, deep_equal};

type R = Result<Value, String>;

/// Sprig asks reflect.TypeOf(nil).Kind(), a nil dereference in Go.
const NIL_KIND: &str = "runtime error: invalid memory address or nil pointer dereference";

/// A list argument; `what` is Sprig's wording of its refusal, ending before the type.
fn list_arg<'v>(v: &'v Value, what: &str) -> Result<&'v [Value], String> {
    match v {
        Value::List(l) => Ok(l.as_slice()),
        Value::Nil => Err(NIL_KIND.into()),
        other => Err(format!("Cannot {what} {}", other.kind_name())),
    }
}

pub fn list(_: &mut CallContext, a: &[Value]) -> R {
    Ok(Value::list(a.to_vec()))
}

pub fn first(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let l = list_arg(&a[0], "find first on type")?;
    Ok(l.first().cloned().unwrap_or(Value::Nil))
}

pub fn last(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let l = list_arg(&a[0], "find last on type")?;
    Ok(l.last().cloned().unwrap_or(Value::Nil))
}

pub fn rest(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let l = list_arg(&a[0], "find rest on type")?;
    if l.is_empty() {
        return Ok(Value::List(List::nil()));
    }
    Ok(Value::list(l[1..].to_vec()))
}

pub fn initial(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let l = list_arg(&a[0], "find initial on type")?;
    if l.is_empty() {
        return Ok(Value::List(List::nil()));
    }
    Ok(Value::list(l[..l.len() - 1].to_vec()))
}

pub fn append(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let mut l = list_arg(&a[0], "push on type")?.to_vec();
    l.push(a[1].clone());
    Ok(Value::list(l))
}

pub fn prepend(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let mut l = vec![a[1].clone()];
    l.extend_from_slice(list_arg(&a[0], "prepend on type")?);
    Ok(Value::list(l))
}

pub fn concat(_: &mut CallContext, a: &[Value]) -> R {
    let mut out = Vec::new();
    for l in a {
        match l {
            Value::List(l) => out.extend_from_slice(l),
            Value::Nil => return Err(NIL_KIND.into()),
            other => {
                return Err(format!("Cannot concat type {} as list", other.kind_name()));
            }
        }
    }
    // Appending nothing to Go's nil slice leaves it nil.
    if out.is_empty() {
        return Ok(Value::List(List::nil()));
    }
    Ok(Value::list(out))
}

pub fn reverse(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let mut l = list_arg(&a[0], "find reverse on type")?.to_vec();
    l.reverse();
    Ok(Value::list(l))
}

pub fn uniq(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let mut out: Vec<Value> = Vec::new();
    for v in list_arg(&a[0], "find uniq on type")? {
        if !out.iter().any(|o| deep_equal(o, v)) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

pub fn without(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    let l = list_arg(&a[0], "find without on type")?;
    let out = l
        .iter()
        .filter(|v| !a[1..].iter().any(|o| deep_equal(o, v)))
        .cloned()
        .collect();
    Ok(Value::list(out))
}

pub fn has(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    match &a[1] {
        Value::Nil => Ok(Value::Bool(false)),
        Value::List(l) => Ok(Value::Bool(l.iter().any(|v| deep_equal(v, &a[0])))),
        other => Err(format!("Cannot find has on type {}", other.kind_name())),
    }
}

pub fn compact(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let l = list_arg(&a[0], "compact on type")?;
    Ok(Value::list(
        l.iter().filter(|v| v.truthy()).cloned().collect(),
    ))
}

pub fn chunk(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let size = int_arg(a, 0)?;
    let l = list_arg(&a[1], "chunk type")?;
    // Sprig's arithmetic, float division and all: a non-positive size mostly makes Go's
    // make() panic, and sometimes an empty result.
    const MAKESLICE: &str = "runtime error: makeslice: len out of range";
    let len = l.len() as i64;
    let chunks = ((len - 1) as f64 / size as f64).floor();
    let chunks = conv::go_f64_to_i64(chunks).wrapping_add(1);
    if chunks < 0 {
        return Err(MAKESLICE.into());
    }
    let mut out = Vec::new();
    for i in 0..chunks {
        let clen = (len - i * size).min(size);
        if clen < 0 {
            return Err(MAKESLICE.into());
        }
        let start = (i * size) as usize;
        out.push(Value::list(l[start..start + clen as usize].to_vec()));
    }
    Ok(Value::list(out))
}

pub fn until_step_vec(start: i64, stop: i64, step: i64) -> Vec<i64> {
    let mut v = Vec::new();
    if stop < start {
        if step >= 0 {
            return v;
        }
        let mut i = start;
        while i > stop {
            v.push(i);
            i += step;
        }
        return v;
    }
    if step <= 0 {
        return v;
    }
    let mut i = start;
    while i < stop {
        v.push(i);
        i += step;
    }
    v
}

/// A Go `[]int`.
fn ints(v: Vec<i64>) -> Value {
    Value::List(List::typed(
        v.into_iter().map(Value::Int).collect(),
        Elem::Int,
    ))
}

pub fn until(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let n = int_arg(a, 0)?;
    Ok(ints(until_step_vec(0, n, if n < 0 { -1 } else { 1 })))
}

pub fn until_step(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    Ok(ints(until_step_vec(
        int_arg(a, 0)?,
        int_arg(a, 1)?,
        int_arg(a, 2)?,
    )))
}

pub fn seq(_: &mut CallContext, a: &[Value]) -> R {
    let p: Vec<i64> = (0..a.len())
        .map(|i| int_arg(a, i))
        .collect::<Result<_, _>>()?;
    let v = match p.as_slice() {
        [end] => {
            let inc = if *end < 1 { -1 } else { 1 };
            until_step_vec(1, end + inc, inc)
        }
        [start, end] => {
            let step = if end < start { -1 } else { 1 };
            until_step_vec(*start, end + step, step)
        }
        [start, step, end] => {
            let mut inc = 1;
            if end < start {
                inc = -1;
                if *step > 0 {
                    return Ok(Value::str(""));
                }
            }
            until_step_vec(*start, end + inc, *step)
        }
        _ => Vec::new(),
    };
    let parts: Vec<String> = v.iter().map(i64::to_string).collect();
    Ok(Value::str(parts.join(" ")))
}

/// Sprig's `slice` (it replaces Go's builtin): lists only, bounds from any numbers.
pub fn sprig_slice(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    if a[0].is_nil() {
        return Err(NIL_KIND.into());
    }
    let l = list_arg(&a[0], "slice on type").map_err(|_| {
        format!(
            "list should be type of slice or array but {}",
            a[0].kind_name()
        )
    })?;
    if l.is_empty() {
        return Ok(Value::Nil);
    }
    let start = a.get(1).map_or(0, to_i64);
    let end = a.get(2).map_or(l.len() as i64, to_i64);
    if start < 0 || end < start || end as usize > l.len() {
        return Err("reflect.Value.Slice: slice index out of bounds".into());
    }
    let items = l[start as usize..end as usize].to_vec();
    // A re-slice keeps the slice's type.
    Ok(match &a[0] {
        Value::List(original) => Value::List(original.like(items)),
        _ => Value::list(items),
    })
}
