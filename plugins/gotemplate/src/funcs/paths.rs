//! Sprig's path functions: Go's `path` package (slash-separated, purely lexical). The `os…`
//! variants are the same on the Linux hosts Helm charts are rendered for.

use super::{CallContext, arity, string_arg};
use crate::value::Value;

type R = Result<Value, String>;

/// Go's path.Clean.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn base_of(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

pub fn base(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(base_of(string_arg(a, 0)?)))
}

pub fn dir(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let p = string_arg(a, 0)?;
    let d = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    Ok(Value::str(clean_path(d)))
}

pub fn ext(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let p = string_arg(a, 0)?;
    let last = p.rsplit('/').next().unwrap_or(p);
    Ok(Value::str(last.rfind('.').map_or("", |i| &last[i..])))
}

pub fn clean(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(clean_path(string_arg(a, 0)?)))
}

pub fn is_abs(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Bool(string_arg(a, 0)?.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_is_lexical() {
        assert_eq!(clean_path("a/../../b/./c/"), "../b/c");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(clean_path(""), ".");
        assert_eq!(base_of("a/b/"), "b");
    }
}
