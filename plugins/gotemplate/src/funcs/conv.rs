//! Sprig's conversions (through spf13/cast, which swallows errors into zero), defaults and type
//! inspection.

use super::strings::strval;
use super::{CallContext, arity, at_least, bool_arg, string_arg};
use crate::value::{Value, deep_equal as values_equal};

type R = Result<Value, String>;

/// Go's strconv.ParseInt(s, 0, 64): base prefixes and underscores.
pub fn parse_int_base0(s: &str) -> Option<i64> {
    crate::parse::parse_number(s)
        .filter(|n| !n.float_syntax)
        .and_then(|n| n.int)
}

/// Go's int64(f) on amd64: out-of-range and NaN give the minimum (Rust's `as` saturates).
pub fn go_f64_to_i64(f: f64) -> i64 {
    // 2^63, exactly representable; the range is [-2^63, 2^63).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-LIMIT..LIMIT).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// cast's trimZeroDecimal: "3.00" is "3", but "3." and "3.5" stay as they are.
fn trim_zero_decimal(s: &str) -> &str {
    let mut found_zero = false;
    for (i, b) in s.bytes().enumerate().rev() {
        match b {
            b'.' if found_zero => return &s[..i],
            b'.' => {}
            b'0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

/// cast.ToInt64: floats truncate, strings parse (`"3.0"` too), anything else is 0.
pub fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => go_f64_to_i64(*f),
        Value::Bool(b) => *b as i64,
        Value::String(s) => {
            let s = s.as_ref();
            parse_int_base0(trim_zero_decimal(s)).unwrap_or(0)
        }
        _ => 0,
    }
}

/// cast.ToFloat64.
pub fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => *b as i64 as f64,
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

pub fn atoi(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let s = string_arg(a, 0)?;
    // strconv.Atoi returns the clamped value with its range error, and Sprig keeps it.
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let n = match s.parse::<i64>() {
        Ok(n) => n,
        Err(_) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            if s.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            }
        }
        Err(_) => 0,
    };
    Ok(Value::Int(n))
}

pub fn to_int(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Int(to_i64(&a[0])))
}

pub fn to_int64(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Int64(to_i64(&a[0])))
}

pub fn to_float64(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Float(to_f64(&a[0])))
}

/// Sprig's toDecimal: the value's text read as octal.
pub fn to_decimal(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Int64(
        i64::from_str_radix(&strval(&a[0]), 8).unwrap_or(0),
    ))
}

pub fn default(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    match a.get(1) {
        Some(v) if v.truthy() => Ok(v.clone()),
        _ => Ok(a[0].clone()),
    }
}

pub fn empty(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Bool(!a[0].truthy()))
}

pub fn coalesce(_: &mut CallContext, a: &[Value]) -> R {
    Ok(a.iter().find(|v| v.truthy()).cloned().unwrap_or(Value::Nil))
}

pub fn all(_: &mut CallContext, a: &[Value]) -> R {
    Ok(Value::Bool(a.iter().all(Value::truthy)))
}

pub fn any(_: &mut CallContext, a: &[Value]) -> R {
    Ok(Value::Bool(a.iter().any(Value::truthy)))
}

pub fn ternary(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    Ok(if bool_arg(a, 2)? {
        a[0].clone()
    } else {
        a[1].clone()
    })
}

pub fn type_of(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(a[0].type_name()))
}

pub fn type_is(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    Ok(Value::Bool(string_arg(a, 0)? == a[1].type_name()))
}

pub fn type_is_like(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let t = string_arg(a, 0)?;
    let actual = a[1].type_name();
    Ok(Value::Bool(t == actual || t == format!("*{actual}")))
}

pub fn kind_of(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(a[0].kind_name()))
}

pub fn kind_is(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    Ok(Value::Bool(string_arg(a, 0)? == a[1].kind_name()))
}

pub fn deep_equal(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    Ok(Value::Bool(values_equal(&a[0], &a[1])))
}
