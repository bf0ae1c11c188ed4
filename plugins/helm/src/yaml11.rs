//! helm reads values with go-yaml v2 (YAML 1.1) through `sigs.k8s.io/yaml`; the parser here is
//! YAML 1.2. Where the two read the same plain scalar differently, the values text is rewritten
//! before parsing so the values are what helm's are:
//!
//! - `y`, `yes`, `on`, `n`, `no`, `off` (and their capitalised forms) are booleans; as mapping keys
//!   they become the keys `"true"`/`"false"` (JSON keys are strings);
//! - `0755` is octal, `1_000` and `0b101` are integers.
//!
//! Quoted scalars, block scalars (`|`, `>`) and comments are left alone. Plain scalars are found in
//! `key: value` lines, `- item` entries and one-line flow collections (`[a, y]`, `{a: on}`); a scalar
//! spanning lines is not rewritten.

use std::borrow::Cow;

/// The text with go-yaml v2's readings of plain scalars spelled the way YAML 1.2 reads them alike.
pub fn rewrite(text: &str) -> Cow<'_, str> {
    if !text.lines().any(might_change) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        let indent = content.len() - content.trim_start_matches(' ').len();
        if let Some(parent) = block {
            if content.trim().is_empty() || indent > parent {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        let (rewritten, opens_block) = rewrite_line(content);
        if opens_block {
            block = Some(indent);
        }
        out.push_str(&rewritten);
        out.push_str(&line[content.len()..]);
    }
    Cow::Owned(out)
}

/// A cheap pre-check: whether a line holds a word any rule could change.
fn might_change(line: &str) -> bool {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| convert(word, false).is_some())
}

/// The scalar as go-yaml v2 reads it, spelled for a YAML 1.2 parser; `None` when both agree.
fn convert(scalar: &str, key: bool) -> Option<String> {
    let boolean = match scalar {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    };
    if let Some(b) = boolean {
        return Some(if key {
            format!("\"{b}\"")
        } else {
            b.to_string()
        });
    }
    let number = go_integer(scalar)?;
    Some(if key { format!("\"{number}\"") } else { number })
}

/// go-yaml v2 integers YAML 1.2 reads otherwise: leading-zero octal, `_` separators, `0b` binary.
fn go_integer(scalar: &str) -> Option<String> {
    let (sign, digits) = match scalar.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", scalar.strip_prefix('+').unwrap_or(scalar)),
    };
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let plain: String = digits.chars().filter(|&c| c != '_').collect();
    let value = if let Some(binary) = plain.strip_prefix("0b") {
        i64::from_str_radix(binary, 2).ok()?
    } else if plain.len() > 1
        && plain.starts_with('0')
        && plain.chars().all(|c| ('0'..='7').contains(&c))
    {
        i64::from_str_radix(&plain, 8).ok()?
    } else if digits.contains('_') && !plain.is_empty() && plain.chars().all(|c| c.is_ascii_digit())
    {
        plain.parse().ok()?
    } else {
        return None;
    };
    Some(format!("{sign}{value}"))
}

/// One line rewritten, and whether its value opens a block scalar.
fn rewrite_line(line: &str) -> (String, bool) {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    // Leading indentation and sequence dashes.
    loop {
        let trimmed = rest.trim_start_matches(' ');
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        rest = trimmed;
        if let Some(after) = rest.strip_prefix("- ") {
            out.push_str("- ");
            rest = after;
        } else {
            break;
        }
    }
    if rest.starts_with('#')
        || rest.starts_with("---")
        || rest.starts_with("...")
        || rest.starts_with('%')
    {
        out.push_str(rest);
        return (out, false);
    }
    let opens_block = node(rest, &mut out);
    (out, opens_block)
}

/// A block-context node: `key: value`, a flow collection or a scalar. Returns whether a block scalar
/// starts here.
fn node(text: &str, out: &mut String) -> bool {
    if text.starts_with(['[', '{']) {
        flow(text, out);
        return false;
    }
    if text.starts_with(['|', '>']) {
        out.push_str(text);
        return true;
    }
    if text.starts_with(['"', '\'']) {
        let end = quoted_end(text);
        out.push_str(&text[..end]);
        let rest = &text[end..];
        if let Some(value) = rest.strip_prefix(':') {
            out.push(':');
            return after_key(value, out);
        }
        out.push_str(rest);
        return false;
    }
    if text.starts_with(['&', '*', '!']) {
        // Anchors, aliases and tags: left as written.
        out.push_str(text);
        return false;
    }
    // A plain scalar, up to `: ` (a key) or a comment.
    let key_end = find_key_separator(text);
    let comment = text.find(" #");
    match key_end {
        Some(colon) if comment.is_none_or(|c| colon < c) => {
            let key = &text[..colon];
            match convert(key.trim_end(), true) {
                Some(converted) => out.push_str(&converted),
                None => out.push_str(key),
            }
            out.push(':');
            after_key(&text[colon + 1..], out)
        }
        _ => {
            let (value, tail) = match comment {
                Some(c) => text.split_at(c),
                None => (text, ""),
            };
            let trimmed = value.trim_end();
            match convert(trimmed, false) {
                Some(converted) => {
                    out.push_str(&converted);
                    out.push_str(&value[trimmed.len()..]);
                }
                None => out.push_str(value),
            }
            out.push_str(tail);
            false
        }
    }
}

/// What follows `key:`: spaces, then a node (or nothing: a nested block follows).
fn after_key(text: &str, out: &mut String) -> bool {
    let trimmed = text.trim_start_matches(' ');
    out.push_str(&text[..text.len() - trimmed.len()]);
    if trimmed.is_empty() || trimmed.starts_with('#') {
        out.push_str(trimmed);
        return false;
    }
    node(trimmed, out)
}

/// Where a plain key ends (`:` followed by a space or the end of the line).
fn find_key_separator(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' '))
}

/// The end (exclusive) of the quoted scalar `text` starts with.
fn quoted_end(text: &str) -> usize {
    let quote = text.as_bytes()[0];
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// A one-line flow collection: plain scalars between `[ { , :` and `, ] }` are converted.
fn flow(text: &str, out: &mut String) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' | b']' | b'}' | b',' | b' ' => {
                out.push(char::from(bytes[i]));
                i += 1;
            }
            b'"' | b'\'' => {
                let end = i + quoted_end(&text[i..]);
                out.push_str(&text[i..end]);
                i = end;
            }
            b'#' if i > 0 && bytes[i - 1] == b' ' => {
                out.push_str(&text[i..]);
                return;
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(bytes[i], b',' | b']' | b'}')
                    && !(bytes[i] == b':' && bytes.get(i + 1).is_none_or(|b| *b == b' '))
                {
                    i += 1;
                }
                let token = &text[start..i];
                let trimmed = token.trim_end();
                let is_key = bytes.get(i) == Some(&b':');
                match convert(trimmed, is_key) {
                    Some(converted) => {
                        out.push_str(&converted);
                        out.push_str(&token[trimmed.len()..]);
                    }
                    None => out.push_str(token),
                }
                if is_key {
                    out.push(':');
                    i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_and_integers_of_yaml_1_1() {
        let text = "a: yes\nb: 'yes'\nc: \"on\" # x\nd: off # comment\nlist: [x, y, \"n\", z]\n- N\n- - on\ny: \"2\"\nmode: 0755\nbig: 1_000\nname: yesterday\nmap: {on: n, k: v}\n";
        let expected = "a: true\nb: 'yes'\nc: \"on\" # x\nd: false # comment\nlist: [x, true, \"n\", z]\n- false\n- - true\n\"true\": \"2\"\nmode: 493\nbig: 1000\nname: yesterday\nmap: {\"true\": false, k: v}\n";
        assert_eq!(rewrite(text), expected);
    }

    #[test]
    fn block_scalars_and_untouched_text_stay() {
        let text = "script: |\n  if yes; then\n  on\nafter: no\n";
        assert_eq!(
            rewrite(text),
            "script: |\n  if yes; then\n  on\nafter: false\n"
        );
        let plain = "a: 1\nb: text\n";
        assert!(matches!(rewrite(plain), Cow::Borrowed(_)));
    }
}
