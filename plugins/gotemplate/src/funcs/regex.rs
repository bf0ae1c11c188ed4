//! Sprig's regular-expression functions. Go's RE2 syntax is what the `regex` crate implements
//! (no backreferences or lookaround in either); replacement templates (`$1`, `${name}`) agree too.

use regex::Regex;

use super::{CallContext, arity, int_arg, string_arg};
use crate::value::{Elem, List, Value};

type R = Result<Value, String>;

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&ascii_perl_classes(pattern)).map_err(|e| format!("error parsing regexp: {e}"))
}

/// RE2's `\d`, `\w`, `\s` and `\b` are ASCII-only where the `regex` crate's are Unicode-aware;
/// spell them out so `\d` does not match `٣` and `\w` does not match `é`, as in Go.
fn ascii_perl_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push(c);
                    break;
                };
                let replacement = match (in_class, e) {
                    (false, 'd') => Some("[0-9]"),
                    (false, 'D') => Some("[^0-9]"),
                    (false, 'w') => Some("[0-9A-Za-z_]"),
                    (false, 'W') => Some("[^0-9A-Za-z_]"),
                    (false, 's') => Some("[\\t\\n\\f\\r ]"),
                    (false, 'S') => Some("[^\\t\\n\\f\\r ]"),
                    (false, 'b') => Some("(?-u:\\b)"),
                    (false, 'B') => Some("(?-u:\\B)"),
                    (true, 'd') => Some("0-9"),
                    (true, 'w') => Some("0-9A-Za-z_"),
                    (true, 's') => Some("\\t\\n\\f\\r "),
                    _ => None,
                };
                match replacement {
                    Some(r) => out.push_str(r),
                    None => {
                        out.push('\\');
                        out.push(e);
                    }
                }
                class_start = false;
            }
            // RE2 reads a `{` that does not start a repetition `{n}`, `{n,}`, `{n,m}` as a
            // literal; the regex crate refuses it.
            '{' if !in_class && !starts_repetition(chars.clone()) => {
                out.push_str("\\{");
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                continue;
            }
            // A `]` right after `[` or `[^` is a literal, not the end of the class.
            ']' if in_class && !class_start => {
                in_class = false;
                out.push(c);
            }
            _ => {
                out.push(c);
                class_start = false;
            }
        }
        if c != '[' {
            class_start = false;
        }
    }
    out
}

/// A Go `[]string`.
fn strings(items: Vec<&str>) -> Value {
    Value::List(List::typed(
        items.into_iter().map(Value::str).collect(),
        Elem::String,
    ))
}

/// Whether the text after a `{` is `n}`, `n,}` or `n,m}`.
fn starts_repetition(mut rest: std::iter::Peekable<std::str::Chars>) -> bool {
    let mut digits = 0;
    while rest.peek().is_some_and(|c| c.is_ascii_digit()) {
        rest.next();
        digits += 1;
    }
    if digits == 0 {
        return false;
    }
    match rest.next() {
        Some('}') => true,
        Some(',') => {
            while rest.peek().is_some_and(|c| c.is_ascii_digit()) {
                rest.next();
            }
            rest.next() == Some('}')
        }
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::ascii_perl_classes;

    #[test]
    fn perl_classes_become_ascii() {
        assert_eq!(ascii_perl_classes(r"\d+\.\w"), r"[0-9]+\.[0-9A-Za-z_]");
        assert_eq!(ascii_perl_classes(r"[\w-]+\b"), r"[0-9A-Za-z_-]+(?-u:\b)");
        assert_eq!(ascii_perl_classes(r"[]\d]"), r"[]0-9]");
        assert_eq!(ascii_perl_classes(r"\\d"), r"\\d");
        assert_eq!(ascii_perl_classes("{{ . }}"), r"\{\{ . }}");
        assert_eq!(ascii_perl_classes("a{2,3}b{1}"), "a{2,3}b{1}");
    }
}
