//! kustomize reads YAML with go-yaml v3 and round-trips every object through JSON; the parser here is
//! YAML 1.2. Two differences show in real manifests and are bridged here:
//!
//! - plain scalars Go parses as integers but YAML 1.2 reads as strings: `0755` (octal, typical for
//!   `defaultMode`), `1_000`, `0b101`, `012389` (leading zeros). They are rewritten in the text before
//!   parsing, skipping quoted scalars and block scalars, so `"0755"` stays a string;
//! - floats with an integral value print as integers after kustomize's JSON round trip (`1.0` → `1`).

use serde_json::{Number, Value};
use std::borrow::Cow;

/// The text with Go-integer plain scalars (in `key: value` and `- value` positions) in decimal.
pub fn rewrite_go_integers(text: &str) -> Cow<'_, str> {
    rewrite(text, go_integer)
}

/// The text with YAML 1.1 booleans (`yes`, `off`, `y`…) as `true`/`false`: kustomize reads its
/// kustomization file with go-yaml v2 (YAML 1.1), where they are booleans and so not label values.
pub fn rewrite_yaml11_booleans(text: &str) -> Cow<'_, str> {
    rewrite(text, |value| match value {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some("true".to_owned()),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some("false".to_owned()),
        _ => None,
    })
}

fn rewrite(text: &str, convert: impl Fn(&str) -> Option<String>) -> Cow<'_, str> {
    let candidate = |line: &str| -> Option<(usize, usize, String)> {
        let (start, value) = value_of(line)?;
        let converted = convert(value)?;
        Some((start, start + value.len(), converted))
    };
    if !text.lines().any(|l| candidate(l).is_some()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut block_indent: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        if let Some(block) = block_indent {
            if blank || indent > block {
                out.push_str(line);
                continue;
            }
            block_indent = None;
        }
        let value = value_of(line);
        if value.is_some_and(|(_, v)| v.starts_with(['|', '>'])) {
            block_indent = Some(indent);
        }
        match candidate(line) {
            Some((start, end, decimal)) => {
                out.push_str(&line[..start]);
                out.push_str(&decimal);
                out.push_str(&line[end..]);
            }
            None => out.push_str(line),
        }
    }
    Cow::Owned(out)
}

/// Where the value of a `key: value` or `- value` line starts, and the value without a comment.
fn value_of(line: &str) -> Option<(usize, &str)> {
    let content = line.trim_end_matches(['\n', '\r']);
    let trimmed = content.trim_start();
    let start = if let Some(rest) = trimmed.strip_prefix("- ") {
        let offset = content.len() - rest.len();
        // `- key: value` is a mapping in a list; look for its value instead.
        match rest.find(": ") {
            Some(colon) if !rest.starts_with(['"', '\'']) => offset + colon + 2,
            _ => offset,
        }
    } else {
        if trimmed.starts_with(['"', '\'', '#']) {
            return None;
        }
        content.find(": ")? + 2
    };
    let value = content[start..].trim_start();
    let start = content.len() - value.len();
    let value = match value.find(" #") {
        Some(comment) => &value[..comment],
        None => value,
    };
    Some((start, value.trim_end()))
}

/// A scalar YAML 1.2 reads as a string but go-yaml as an integer, in decimal.
fn go_integer(value: &str) -> Option<String> {
    let (sign, digits) = match value.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", value.strip_prefix('+').unwrap_or(value)),
    };
    let first = digits.chars().next()?;
    if !first.is_ascii_digit() {
        return None;
    }
    let plain: String = digits.chars().filter(|&c| c != '_').collect();
    let parsed = if let Some(binary) = plain.strip_prefix("0b") {
        i64::from_str_radix(binary, 2).ok()?
    } else if plain.len() > 1 && plain.starts_with('0') && plain.chars().all(|c| c.is_ascii_digit())
    {
        if plain.chars().all(|c| ('0'..='7').contains(&c)) {
            i64::from_str_radix(&plain, 8).ok()?
        } else {
            plain.parse().ok()?
        }
    } else if digits.contains('_') && plain.chars().all(|c| c.is_ascii_digit()) && !plain.is_empty()
    {
        plain.parse().ok()?
    } else {
        return None;
    };
    Some(format!("{sign}{parsed}"))
}

/// Integral floats as integers, as Go's JSON encoding of a float64 prints them.
pub fn normalize_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64())
                && f.fract() == 0.0
                && f.abs() < 1e15
            {
                *n = Number::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(map) => map.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_integers_are_rewritten_outside_quotes_and_blocks() {
        let text =
            "a: 0755\nb: '0755'\nc: |\n  d: 0755\ne:\n- 0644 # mode\nf: 1_000\ng: 012389\nh: 0\n";
        let out = rewrite_go_integers(text);
        assert_eq!(
            out,
            "a: 493\nb: '0755'\nc: |\n  d: 0755\ne:\n- 420 # mode\nf: 1000\ng: 12389\nh: 0\n"
        );
    }

    #[test]
    fn yaml11_booleans_are_rewritten() {
        assert_eq!(
            rewrite_yaml11_booleans("a: yes\nb: 'yes'\nc: yesterday\n"),
            "a: true\nb: 'yes'\nc: yesterday\n"
        );
    }

    #[test]
    fn integral_floats_become_integers() {
        let mut v = serde_json::json!({"a": 1.0, "b": 0.5, "c": [2.0]});
        normalize_numbers(&mut v);
        assert_eq!(v, serde_json::json!({"a": 1, "b": 0.5, "c": [2]}));
    }
}
