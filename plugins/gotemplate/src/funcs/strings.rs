//! Sprig's string functions (strings.go and the goutils/xstrings helpers it wraps), with Sprig's
//! argument order (the subject string last, so it can be piped).

use super::{CallContext, arity, int_arg, string_arg};
use crate::printf;
use crate::value::{Elem, List, Map, Value};

type R = Result<Value, String>;

fn s(v: impl Into<String>) -> R {
    Ok(Value::str(v.into()))
}

/// Sprig's strval: strings as is, everything else as `%v`.
pub fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.go_string(),
    }
}

/// Sprig's strslice: a list's non-nil items as strings; a scalar as a one-item list.
pub fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().filter(|v| !v.is_nil()).map(strval).collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

/// A Go `[]string`.
fn strings_value(items: Vec<String>) -> Value {
    Value::List(List::typed(
        items.into_iter().map(Value::str).collect(),
        Elem::String,
    ))
}

pub fn trim(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    s(string_arg(a, 0)?.trim())
}

pub fn trim_all(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let cut = string_arg(a, 0)?;
    s(string_arg(a, 1)?.trim_matches(|c| cut.contains(c)))
}

pub fn trim_prefix(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let p = string_arg(a, 0)?;
    let v = string_arg(a, 1)?;
    s(v.strip_prefix(p).unwrap_or(v))
}

pub fn trim_suffix(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let p = string_arg(a, 0)?;
    let v = string_arg(a, 1)?;
    s(v.strip_suffix(p).unwrap_or(v))
}

pub fn upper(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    s(string_arg(a, 0)?.to_uppercase())
}

pub fn lower(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    s(string_arg(a, 0)?.to_lowercase())
}

/// Go's deprecated strings.Title: letters after a separator are upper-cased.
pub fn title(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let mut out = String::new();
    let mut prev_sep = true;
    for c in string_arg(a, 0)?.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !c.is_alphanumeric()
        };
    }
    s(out)
}

pub fn repeat(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let n = int_arg(a, 0)?;
    if n < 0 {
        return Err("strings: negative Repeat count".into());
    }
    s(string_arg(a, 1)?.repeat(n as usize))
}

/// Go's `v[start:end]`, with its panic text for bad bounds.
fn byte_slice(v: &str, start: i64, end: i64) -> Result<&str, String> {
    if end < 0 {
        return Err(format!("runtime error: slice bounds out of range [:{end}]"));
    }
    if end as usize > v.len() {
        return Err(format!(
            "runtime error: slice bounds out of range [:{end}] with length {}",
            v.len()
        ));
    }
    if start < 0 || start > end {
        return Err(format!(
            "runtime error: slice bounds out of range [{start}:{end}]"
        ));
    }
    let (start, end) = (start as usize, end as usize);
    // Go slices bytes; a cut inside a character yields invalid UTF-8 we cannot hold.
    v.get(start..end)
        .ok_or_else(|| "slice cuts a multi-byte character".to_string())
}

pub fn substr(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let start = int_arg(a, 0)?;
    let end = int_arg(a, 1)?;
    let v = string_arg(a, 2)?;
    if start < 0 {
        return s(byte_slice(v, 0, end)?);
    }
    if end < 0 || end as usize > v.len() {
        return s(byte_slice(v, start, v.len() as i64)?);
    }
    s(byte_slice(v, start, end)?)
}

pub fn nospace(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    s(string_arg(a, 0)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>())
}

pub fn trunc(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let c = int_arg(a, 0)?;
    let v = string_arg(a, 1)?;
    let len = v.len() as i64;
    if c < 0 && len + c > 0 {
        return s(byte_slice(v, len + c, len)?);
    }
    if c >= 0 && len > c {
        return s(byte_slice(v, 0, c)?);
    }
    s(v)
}

fn abbreviate_full(v: &str, offset: i64, max_width: i64) -> Option<String> {
    let len = v.len() as i64;
    if v.is_empty() {
        return Some(String::new());
    }
    if max_width < 4 {
        return None;
    }
    if len <= max_width {
        return Some(v.to_string());
    }
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    if offset <= 4 {
        return Some(format!("{}...", v.get(..(max_width - 3) as usize)?));
    }
    if max_width < 7 {
        return None;
    }
    if offset + max_width - 3 < len {
        let rest = abbreviate_full(v.get(offset as usize..)?, 0, max_width - 3)?;
        return Some(format!("...{rest}"));
    }
    Some(format!("...{}", v.get((len - (max_width - 3)) as usize..)?))
}

pub fn abbrev(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let width = int_arg(a, 0)?;
    let v = string_arg(a, 1)?;
    if width < 4 {
        return s(v);
    }
    s(abbreviate_full(v, 0, width).unwrap_or_default())
}

pub fn abbrevboth(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let left = int_arg(a, 0)?;
    let right = int_arg(a, 1)?;
    let v = string_arg(a, 2)?;
    if right < 4 || left > 0 && right < 7 {
        return s(v);
    }
    s(abbreviate_full(v, left, right).unwrap_or_default())
}

/// goutils.WrapCustom.
fn wrap_custom(v: &str, width: i64, newline: &str, wrap_long: bool) -> String {
    if v.is_empty() {
        return String::new();
    }
    let newline = if newline.is_empty() { "\n" } else { newline };
    let width = width.max(1) as usize;
    let b = v.as_bytes();
    let mut offset = 0;
    let mut out = String::new();
    while b.len() - offset > width {
        if b[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = (width + offset + 1).min(b.len());
        let space = v[offset..end].rfind(' ').map(|i| i + offset);
        match space {
            Some(sp) if sp >= offset => {
                out.push_str(&v[offset..sp]);
                out.push_str(newline);
                offset = sp + 1;
            }
            _ if wrap_long => {
                out.push_str(&v[offset..width + offset]);
                out.push_str(newline);
                offset += width;
            }
            _ => match v[width + offset..].find(' ') {
                Some(i) => {
                    let sp = i + width + offset;
                    out.push_str(&v[offset..sp]);
                    out.push_str(newline);
                    offset = sp + 1;
                }
                None => {
                    out.push_str(&v[offset..]);
                    offset = b.len();
                }
            },
        }
    }
    out.push_str(&v[offset..]);
    out
}

pub fn wrap(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    s(wrap_custom(string_arg(a, 1)?, int_arg(a, 0)?, "", false))
}

pub fn wrap_with(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    s(wrap_custom(
        string_arg(a, 2)?,
        int_arg(a, 0)?,
        string_arg(a, 1)?,
        true,
    ))
}

pub fn contains(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    Ok(Value::Bool(string_arg(a, 1)?.contains(string_arg(a, 0)?)))
}

pub fn has_prefix(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    Ok(Value::Bool(
        string_arg(a, 1)?.starts_with(string_arg(a, 0)?),
    ))
}

pub fn has_suffix(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    Ok(Value::Bool(string_arg(a, 1)?.ends_with(string_arg(a, 0)?)))
}

pub fn quote(_: &mut CallContext, a: &[Value]) -> R {
    let parts: Vec<String> = a
        .iter()
        .filter(|v| !v.is_nil())
        .map(|v| printf::go_quote(&strval(v), false))
        .collect();
    s(parts.join(" "))
}

pub fn squote(_: &mut CallContext, a: &[Value]) -> R {
    let parts: Vec<String> = a
        .iter()
        .filter(|v| !v.is_nil())
        .map(|v| format!("'{}'", strval(v)))
        .collect();
    s(parts.join(" "))
}

pub fn cat(_: &mut CallContext, a: &[Value]) -> R {
    let parts: Vec<String> = a
        .iter()
        .filter(|v| !v.is_nil())
        .map(Value::go_string)
        .collect();
    s(parts.join(" "))
}

fn indent_by(n: i64, v: &str) -> Result<String, String> {
    if n < 0 {
        return Err("strings: negative Repeat count".into());
    }
    let pad = " ".repeat(n as usize);
    Ok(format!("{pad}{}", v.replace('\n', &format!("\n{pad}"))))
}

pub fn indent(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    s(indent_by(int_arg(a, 0)?, string_arg(a, 1)?)?)
}

pub fn nindent(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    s(format!(
        "\n{}",
        indent_by(int_arg(a, 0)?, string_arg(a, 1)?)?
    ))
}

pub fn replace(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let old = string_arg(a, 0)?;
    let new = string_arg(a, 1)?;
    let src = string_arg(a, 2)?;
    if old.is_empty() {
        // Go inserts `new` around every character when `old` is empty.
        let mut out = String::from(new);
        for c in src.chars() {
            out.push(c);
            out.push_str(new);
        }
        return s(out);
    }
    s(src.replace(old, new))
}

pub fn plural(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let one = string_arg(a, 0)?;
    let many = string_arg(a, 1)?;
    s(if int_arg(a, 2)? == 1 { one } else { many })
}

fn parts_map(parts: Vec<&str>) -> Value {
    let m = Map::new();
    for (i, p) in parts.into_iter().enumerate() {
        m.insert(format!("_{i}"), Value::str(p));
    }
    Value::Map(m)
}

/// Go's strings.Split: an empty separator splits into characters.
fn go_split<'a>(v: &'a str, sep: &str, n: i64) -> Vec<&'a str> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        let mut out: Vec<&str> = Vec::new();
        for (i, c) in v.char_indices() {
            if n > 0 && out.len() as i64 == n - 1 {
                out.push(&v[i..]);
                return out;
            }
            out.push(&v[i..i + c.len_utf8()]);
        }
        return out;
    }
    if n < 0 {
        v.split(sep).collect()
    } else {
        v.splitn(n as usize, sep).collect()
    }
}

pub fn split(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    Ok(parts_map(go_split(
        string_arg(a, 1)?,
        string_arg(a, 0)?,
        -1,
    )))
}

pub fn split_list(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let parts = go_split(string_arg(a, 1)?, string_arg(a, 0)?, -1);
    Ok(strings_value(parts.into_iter().map(String::from).collect()))
}

pub fn splitn(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let n = int_arg(a, 1)?;
    Ok(parts_map(go_split(string_arg(a, 2)?, string_arg(a, 0)?, n)))
}

pub fn join(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    s(strslice(&a[1]).join(string_arg(a, 0)?))
}

pub fn sort_alpha(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    match &a[0] {
        Value::List(_) => {
            let mut items = strslice(&a[0]);
            items.sort();
            Ok(strings_value(items))
        }
        other => Ok(strings_value(vec![strval(other)])),
    }
}

pub fn to_string(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    s(strval(&a[0]))
}

pub fn to_strings(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(strings_value(strslice(&a[0])))
}

pub fn hello(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 0)?;
    s("Hello!")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces() {
        assert_eq!(
            wrap_custom("hello world foo", 8, "", false),
            "hello\nworld\nfoo"
        );
        assert_eq!(wrap_custom("abcdefghij", 4, "\n", true), "abcd\nefgh\nij");
    }

    #[test]
    fn abbreviate_like_goutils() {
        assert_eq!(abbreviate_full("hello world", 0, 5).unwrap(), "he...");
        assert_eq!(
            abbreviate_full("abcdefghijklmno", 5, 10).unwrap(),
            "...fghi..."
        );
    }
}
