//! Sprig's regular-expression functions. Go's RE2 syntax is what the `regex` crate implements
//! (no backreferences or lookaround in either); replacement templates (`$1`, `${name}`) agree too.

use regex::Regex;

use super::{CallContext, arity, int_arg, string_arg};
use crate::value::Value;

type R = Result<Value, String>;

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("error parsing regexp: {e}"))
}

fn strings(items: Vec<&str>) -> Value {
    Value::list(items.into_iter().map(Value::str).collect())
}

/// `regexMatch` answers false for an invalid pattern; `mustRegexMatch` is an error then.
pub fn regex_match(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let s = string_arg(a, 1)?;
    Ok(Value::Bool(
        compile(string_arg(a, 0)?).is_ok_and(|re| re.is_match(s)),
    ))
}

pub fn must_regex_match(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let re = compile(string_arg(a, 0)?)?;
    Ok(Value::Bool(re.is_match(string_arg(a, 1)?)))
}

pub fn regex_find_all(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let re = compile(string_arg(a, 0)?)?;
    let s = string_arg(a, 1)?;
    let n = int_arg(a, 2)?;
    let found = re.find_iter(s).map(|m| m.as_str());
    Ok(strings(if n < 0 {
        found.collect()
    } else {
        found.take(n as usize).collect()
    }))
}

pub fn regex_find(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let re = compile(string_arg(a, 0)?)?;
    Ok(Value::str(
        re.find(string_arg(a, 1)?).map_or("", |m| m.as_str()),
    ))
}

pub fn regex_replace_all(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let re = compile(string_arg(a, 0)?)?;
    Ok(Value::str(
        re.replace_all(string_arg(a, 1)?, string_arg(a, 2)?)
            .into_owned(),
    ))
}

pub fn regex_replace_all_literal(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let re = compile(string_arg(a, 0)?)?;
    Ok(Value::str(
        re.replace_all(string_arg(a, 1)?, regex::NoExpand(string_arg(a, 2)?))
            .into_owned(),
    ))
}

pub fn regex_split(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let re = compile(string_arg(a, 0)?)?;
    let s = string_arg(a, 1)?;
    let n = int_arg(a, 2)?;
    Ok(strings(match n {
        0 => Vec::new(),
        n if n < 0 => re.split(s).collect(),
        n => re.splitn(s, n as usize).collect(),
    }))
}

/// Go's regexp.QuoteMeta escapes exactly `\.+*?()|[]{}^$`.
pub fn regex_quote_meta(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let mut out = String::new();
    for c in string_arg(a, 0)?.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(Value::str(out))
}
