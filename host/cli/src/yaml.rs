//! The YAML `tether render` prints. kubectl and most Kubernetes tooling read YAML 1.1 (go-yaml v2
//! through sigs.k8s.io/yaml), where plain `yes`, `off`, `y`, `0x1f`, `012`, `1_000`, `1e3`, `12:30` or
//! `2024-01-02` are not strings; a YAML 1.2 emitter leaves several of them unquoted, so a label value
//! `yes` would reach the API server as a boolean. Every string here is printed plain only when YAML
//! 1.1 and YAML 1.2 readers both read it back as that same string; otherwise it is double-quoted
//! (or, with line breaks, a literal block when that reads back exactly).
//!
//! The layout is the one `kustomize build` prints: two-space indentation, sequences at the column of
//! their key, `{}` and `[]` for empty collections, keys in the object's order.

use serde_json::Value;
use std::fmt::Write;

/// One object as a YAML document (without the `---` separator), ending in a line break.
pub(crate) fn to_document(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_mapping(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_sequence(&mut out, items, 0, false),
        scalar => {
            write_inline(&mut out, scalar, 0);
            out.push('\n');
        }
    }
    out
}

/// Entries at `indent`; with `inline`, the first entry continues the current line (a `- ` item).
fn write_mapping(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
    indent: usize,
    inline: bool,
) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline {
            push_indent(out, indent);
        }
        write_string(out, key, indent, true);
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_mapping(out, inner, indent + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_sequence(out, items, indent, false);
            }
            scalar => {
                out.push(' ');
                write_inline(out, scalar, indent + 2);
                out.push('\n');
            }
        }
    }
}

/// Items at `indent`; with `inline`, the first item continues the current line (a nested `- - `).
fn write_sequence(out: &mut String, items: &[Value], indent: usize, inline: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(inner) if !inner.is_empty() => {
                write_mapping(out, inner, indent + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                write_sequence(out, inner, indent + 2, true);
            }
            scalar => {
                write_inline(out, scalar, indent + 2);
                out.push('\n');
            }
        }
    }
}

/// A scalar or an empty collection; a block scalar's lines are indented to `content_indent`.
fn write_inline(out: &mut String, value: &Value, content_indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(out, s, content_indent, false),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_string(out: &mut String, s: &str, content_indent: usize, key: bool) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else if !key && literal_block_fits(s) {
        write_literal(out, s, content_indent);
    } else {
        write_double_quoted(out, s);
    }
}

/// Whether `s` printed without quotes reads back as the same string in YAML 1.1 and 1.2, as a key
/// or as a value in block context.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.chars().any(|c| !printable(c) || c == '\t')
        || s.starts_with(' ')
        || s.ends_with([' ', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || s.starts_with("---")
        || s.starts_with("...")
    {
        return false;
    }
    // Indicators begin something else; `-` only when a space or nothing follows (`-Xmx1g` is plain).
    let starts_indicator = match first {
        '-' => s.len() == 1 || s[1..].starts_with(' '),
        '?' | ':' | ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\''
        | '"' | '%' | '@' | '`' => true,
        _ => false,
    };
    !starts_indicator && !resolves_to_non_string(s)
}

/// Whether a YAML 1.1 reader (go-yaml v2, PyYAML) or a YAML 1.2 reader resolves the plain scalar
/// to something other than a string: null, a boolean, a number, a timestamp, a merge or value key.
fn resolves_to_non_string(s: &str) -> bool {
    matches!(
        s,
        "~" | "null"
            | "Null"
            | "NULL"
            | "y"
            | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | ".nan"
            | ".NaN"
            | ".NAN"
            | "<<"
            | "="
    ) || is_number(s)
        || is_timestamp(s)
}

/// Integers and floats as go-yaml v2 (underscores dropped, Go's base prefixes and leading-zero
/// octal), YAML 1.1 (sexagesimal `1:30`) and YAML 1.2 (`0o17`, `.inf`) read them.
fn is_number(s: &str) -> bool {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return false;
    }
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    let digits: String = unsigned.chars().filter(|&c| c != '_').collect();
    let all = |text: &str, radix: u32| !text.is_empty() && text.chars().all(|c| c.is_digit(radix));
    let prefixed = |prefix: [&str; 2]| {
        prefix
            .iter()
            .find_map(|p| digits.strip_prefix(p))
            .map(str::to_owned)
    };
    if let Some(hex) = prefixed(["0x", "0X"]) {
        return all(&hex, 16);
    }
    if let Some(octal) = prefixed(["0o", "0O"]) {
        return all(&octal, 8);
    }
    if let Some(binary) = prefixed(["0b", "0B"]) {
        return all(&binary, 2);
    }
    is_float_text(&digits) || is_sexagesimal(unsigned)
}

/// `1`, `1.`, `.5`, `1.5e3`, `1e3` (every decimal integer matches too).
fn is_float_text(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match fraction {
        None => !whole.is_empty() && digits(whole),
        Some(f) => digits(whole) && digits(f) && !(whole.is_empty() && f.is_empty()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// YAML 1.1's base-60 numbers: `1:30`, `190:20:30.15`.
fn is_sexagesimal(s: &str) -> bool {
    let mut parts = s.split(':');
    let head = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() || head.is_empty() || !head.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return false;
    }
    let last = rest.len() - 1;
    rest.iter().enumerate().all(|(i, part)| {
        let whole = if i == last {
            part.split_once('.').map_or(*part, |(w, _)| w)
        } else {
            part
        };
        (1..=2).contains(&whole.len()) && whole.chars().all(|c| c.is_ascii_digit())
    })
}

/// YAML 1.1 timestamps begin with a date: `2024-01-02`, `2024-1-2T10:00:00Z`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        range
            .clone()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    if !(digits(0..4) && b.get(4) == Some(&b'-')) {
        return false;
    }
    let month = (5..b.len()).take_while(|&i| b[i].is_ascii_digit()).count();
    (1..=2).contains(&month) && b.get(5 + month) == Some(&b'-') && {
        let day_start = 6 + month;
        (day_start..b.len())
            .take_while(|&i| b[i].is_ascii_digit())
            .count()
            >= 1
    }
}

/// Characters YAML lets stand in a scalar as they are. The line breaks YAML 1.1 knows besides `\n`
/// (NEL, LS, PS) and the byte order mark are not, nor any control character.
fn printable(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        ))
        || c == '\t'
}

/// A multi-line string reads back exactly from a literal block when its lines hold only printable
/// characters, no line ends in a space (nor is all spaces), the first line with text does not begin
/// with a space or a tab (it would be taken for indentation), and it has text besides line breaks.
fn literal_block_fits(s: &str) -> bool {
    let text = s.trim_start_matches('\n');
    s.contains('\n')
        && s.chars().all(|c| c == '\n' || (printable(c) && c != '\r'))
        && !text.is_empty()
        && !text.starts_with([' ', '\t'])
        && s.split('\n').all(|line| !line.ends_with([' ', '\t']))
}

/// `|` keeps one final line break, `|-` none, `|+` all of them; the caller ends the last line.
fn write_literal(out: &mut String, s: &str, content_indent: usize) {
    let body = s.trim_end_matches('\n');
    out.push_str(match s.len() - body.len() {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
        out.push('\n');
        if !line.is_empty() {
            push_indent(out, content_indent);
            out.push_str(line);
        }
    }
}

fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if !printable(c) => {
                let code = u32::from(c);
                if code <= 0xff {
                    let _ = write!(out, "\\x{code:02x}");
                } else {
                    let _ = write!(out, "\\u{code:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml11_scalars_are_quoted_and_plain_text_is_not() {
        for quoted in [
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "true",
            "~",
            "null",
            "",
            "0x1f",
            "0X1F",
            "012",
            "0o17",
            "0b101",
            "1_000",
            "1e3",
            "1.5",
            ".5",
            "-1",
            "+1",
            ".inf",
            "-.Inf",
            ".nan",
            "12:30",
            "190:20:30.15",
            "2024-01-02",
            "2024-1-2T10:00:00Z",
            "<<",
            "=",
            "-",
            "- a",
            "a: b",
            "a #b",
            "a:",
            " lead",
            "trail ",
            "#x",
            "*x",
            "&x",
            "!x",
            "%x",
            "@x",
            "'x",
            "\"x",
            "{x",
            "[x",
            "|x",
            ">x",
            "?x",
            ":x",
            "---",
            "...",
            "tab\there",
        ] {
            assert!(!is_plain_safe(quoted), "{quoted:?} must be quoted");
        }
        for plain in [
            "plain",
            "yesterday",
            "0x1g",
            "1.2.3",
            "v1",
            "-Xmx1g",
            "http://a.b/c",
            "a#b",
            "a:b",
            "1-2",
            "1.2.3-rc.1",
            "nginx:1.25",
            "_1",
            "ünïcode",
        ] {
            assert!(is_plain_safe(plain), "{plain:?} can be plain");
        }
    }

    #[test]
    fn layout_matches_kustomize_build() {
        // Keys in sorted order: the output keeps the object's order, whichever serde_json keeps.
        let object = json!({
            "apiVersion": "v1",
            "data": {"empty": {}, "keep": "a\n\n", "script": "echo hi\nexit 0\n", "strip": "a\nb"},
            "kind": "ConfigMap",
            "list": [{"a": 1, "b": [true, null]}, ["x", "y"], [], 1.5],
            "metadata": {"labels": {"n": "012", "on": "yes"}, "name": "x"}
        });
        assert_eq!(
            to_document(&object),
            "apiVersion: v1\ndata:\n  empty: {}\n  keep: |+\n    a\n\n  script: |\n    echo hi\n    exit 0\n  strip: |-\n    a\n    b\nkind: ConfigMap\nlist:\n- a: 1\n  b:\n  - true\n  - null\n- - x\n  - \"y\"\n- []\n- 1.5\nmetadata:\n  labels:\n    \"n\": \"012\"\n    \"on\": \"yes\"\n  name: x\n"
        );
    }

    #[test]
    fn block_scalars_that_would_not_read_back_are_double_quoted() {
        let quoted = |s: &str| {
            let text = to_document(&json!({ "k": s }));
            assert!(text.starts_with("k: \""), "{s:?}: {text}");
        };
        quoted("trailing space \nx");
        quoted("\n\n");
        quoted("a\r\nb");
        quoted("a\u{2028}b\n");
        quoted("  indented\nnext\n");
        assert_eq!(to_document(&json!({"k": ["\nx\n"]})), "k:\n- |\n\n  x\n");
    }
}
