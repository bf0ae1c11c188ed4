//! A TOML writer in BurntSushi/toml's layout for the common cases (scalars, arrays, tables),
//! for `toToml`.

use super::json::json_string;
use crate::printf::format_float_g;
use crate::value::Value;

fn toml_scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            let s = format_float_g(*f, None, false);
            if s.contains(['.', 'e', 'N', 'I']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        Value::String(s) => {
            let mut out = String::new();
            json_string(&mut out, s, false);
            out
        }
        Value::List(l) if l.iter().all(|i| !matches!(i, Value::Map(_))) => {
            let items: Vec<String> = l.iter().filter_map(toml_scalar).collect();
            format!("[{}]", items.join(", "))
        }
        _ => return None,
    })
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        let mut out = String::new();
        json_string(&mut out, k, false);
        out
    }
}

fn toml_table(out: &mut String, m: &crate::value::Map, path: &str) {
    let entries = m.entries();
    for (k, v) in &entries {
        if let Some(s) = toml_scalar(v) {
            let pad = if path.is_empty() { "" } else { "  " };
            out.push_str(&format!("{pad}{} = {s}\n", toml_key(k)));
        }
    }
    for (k, v) in &entries {
        if let Value::Map(sub) = v {
            let p = if path.is_empty() {
                toml_key(k)
            } else {
                format!("{path}.{}", toml_key(k))
            };
            out.push_str(&format!("\n[{p}]\n"));
            toml_table(out, sub, &p);
        }
    }
}

/// A TOML rendering in BurntSushi/toml's layout for the common cases (scalars, arrays, tables).
pub fn to_toml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(m) => toml_table(&mut out, m, ""),
        _ => out.push_str("toml: top-level values must be Go maps or structs"),
    }
    out
}
