//! Go's encoding/json output for `toJson` and friends: sorted keys, HTML characters escaped
//! unless asked not to, floats in Go's shortest form (`1e+21`, `1e-7`).

use crate::value::Value;

fn json_float(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = crate::printf::format_float_e(f, None, false);
        // Go writes e-07 as e-7.
        let s = s.replace("e-0", "e-").replace("e+0", "e+");
        return Some(s);
    }
    Some(crate::printf::format_float_f(f, None))
}

pub(crate) fn json_string(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object of `entries` in the order given (a map's sorted keys, a struct's fields).
fn json_object(
    out: &mut String,
    entries: &[(String, Value)],
    escape_html: bool,
    indent: Option<&str>,
    depth: usize,
) -> bool {
    out.push('{');
    if entries.is_empty() {
        out.push('}');
        return true;
    }
    let newline = |out: &mut String, depth: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            out.push_str(&ind.repeat(depth));
        }
    };
    for (i, (k, item)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, depth + 1);
        json_string(out, k, escape_html);
        out.push(':');
        if indent.is_some() {
            out.push(' ');
        }
        if !json_value(out, item, escape_html, indent, depth + 1) {
            return false;
        }
    }
    newline(out, depth);
    out.push('}');
    true
}

fn json_value(
    out: &mut String,
    v: &Value,
    escape_html: bool,
    indent: Option<&str>,
    depth: usize,
) -> bool {
    let newline = |out: &mut String, depth: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            out.push_str(&ind.repeat(depth));
        }
    };
    if depth > crate::value::MAX_VALUE_DEPTH {
        // Go's encoder fails on a value that contains itself.
        return false;
    }
    match v {
        Value::Object(o) => {
            if let Some(fields) = o.json_fields() {
                return json_object(out, &fields, escape_html, indent, depth);
            }
            match o.to_value() {
                Some(inner) => return json_value(out, &inner, escape_html, indent, depth),
                None => out.push_str("null"),
            }
        }
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(&b.to_string()),
        Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
        Value::Float(f) => match json_float(*f) {
            Some(s) => out.push_str(&s),
            None => return false,
        },
        Value::String(s) => json_string(out, s, escape_html),
        Value::List(l) if l.is_nil() => out.push_str("null"),
        Value::List(l) => {
            out.push('[');
            if l.is_empty() {
                out.push(']');
                return true;
            }
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                if !json_value(out, item, escape_html, indent, depth + 1) {
                    return false;
                }
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Map(m) => return json_object(out, &m.entries(), escape_html, indent, depth),
    }
    true
}

/// Go's json.Marshal (HTML-escaped) or an Encoder without HTML escaping; "" when it would fail.
pub fn to_json(v: &Value, escape_html: bool, indent: Option<&str>) -> String {
    let mut out = String::new();
    if json_value(&mut out, v, escape_html, indent, 0) {
        out
    } else {
        String::new()
    }
}

/// A serde_json parse error worded as Go's encoding/json words it (charts print `.Error`).
pub fn go_json_error(input: &str, e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "unexpected end of JSON input".into();
    }
    // The offending character, found from serde's 1-based line and column.
    let offending = input
        .lines()
        .nth(e.line().saturating_sub(1))
        .and_then(|l| l.chars().nth(e.column().saturating_sub(1)));
    let Some(c) = offending else {
        return e.to_string();
    };
    let quoted = match c {
        '\'' => "'\\''".to_string(),
        c if (c as u32) < 0x20 => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    };
    let message = e.to_string();
    let context = if message.starts_with("expected value") || message.starts_with("expected ident")
    {
        "looking for beginning of value"
    } else if message.starts_with("expected `:`") {
        "after object key"
    } else if message.starts_with("expected `,` or `}`") {
        "after object key:value pair"
    } else if message.starts_with("expected `,` or `]`") {
        "after array element"
    } else if message.starts_with("trailing characters") {
        "after top-level value"
    } else if message.starts_with("key must be a string") {
        "looking for beginning of object key string"
    } else {
        return message;
    };
    format!("invalid character {quoted} {context}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_go() {
        let v = Value::from(serde_json::json!({"b": [1, 2.5, "<x>"], "a": null}));
        assert_eq!(
            to_json(&v, true, None),
            r#"{"a":null,"b":[1,2.5,"\u003cx\u003e"]}"#
        );
        assert_eq!(to_json(&Value::Float(1e21), true, None), "1e+21");
        assert_eq!(to_json(&Value::Float(1e-7), true, None), "1e-7");
    }
}
