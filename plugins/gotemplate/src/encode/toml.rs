//! A TOML writer in BurntSushi/toml's layout for the common cases (scalars, arrays, tables),
//! for `toToml`.

use super::json::json_string;
use crate::printf::format_float_g;
use crate::value::Value;

fn toml_scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) | Value::Int64(i) => i.to_string(),
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

/// BurntSushi's eMapOrStruct: a table's plain keys, then its sub-tables, each indented two
/// spaces per level below the top; a blank line before each top-level table once output began.
fn toml_table(out: &mut String, m: &crate::value::Map, path: &[String]) {
    if path.len() > crate::value::MAX_VALUE_DEPTH {
        return;
    }
    let entries = m.entries();
    let pad = "  ".repeat(path.len());
    for (k, v) in &entries {
        if let Some(s) = toml_scalar(v) {
            out.push_str(&format!("{pad}{} = {s}\n", toml_key(k)));
        }
    }
    for (k, v) in &entries {
        if let Value::Map(sub) = v {
            let mut p = path.to_vec();
            p.push(toml_key(k));
            if path.is_empty() && !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("{pad}[{}]\n", p.join(".")));
            toml_table(out, sub, &p);
        }
    }
}

/// `toToml` in BurntSushi/toml's layout for the common cases (scalars, arrays, tables).
pub fn to_toml(v: &Value) -> Result<String, String> {
    Ok(match v {
        // BurntSushi asks reflect for the type of nil, which panics.
        Value::Nil => return Err("reflect: call of reflect.Value.Type on zero Value".into()),
        Value::Map(m) => {
            let mut out = String::new();
            toml_table(&mut out, m, &[]);
            out
        }
        other => toml_scalar(other).unwrap_or_default(),
    })
}
