//! kustomize's content hash of ConfigMaps and Secrets (api/hasher): SHA-256 over Go's `json.Marshal` of
//! a small map, the first ten hex digits with `0 1 3 a e` swapped for letters so the suffix never looks
//! like a number or a word. Go's encoder sorts keys and escapes `<`, `>`, `&`, U+2028 and U+2029; the
//! hash is only equal to kustomize's if the bytes are, so the encoding is written out here.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The suffix kustomize appends (after a `-`) to a generated object's name.
pub fn content_hash(object: &Map<String, Value>) -> String {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    // kustomize looks the name up as one field called `metadata/name`, which never exists: the name
    // is always hashed as empty, so a prefix doesn't change the suffix. Equal hashes need the same.
    let name = Value::String(String::new());
    let field = |key: &str| object.get(key).cloned().filter(|v| !v.is_null());
    let mut encoded = Map::new();
    encoded.insert("name".into(), name);
    match kind {
        "ConfigMap" => {
            encoded.insert("kind".into(), Value::String("ConfigMap".into()));
            encoded.insert(
                "data".into(),
                field("data").unwrap_or(Value::String(String::new())),
            );
            if let Some(binary @ Value::Object(_)) = field("binaryData") {
                encoded.insert("binaryData".into(), binary);
            }
        }
        "Secret" => {
            encoded.insert("kind".into(), Value::String("Secret".into()));
            encoded.insert(
                "type".into(),
                field("type").unwrap_or(Value::String(String::new())),
            );
            encoded.insert(
                "data".into(),
                field("data").unwrap_or(Value::String(String::new())),
            );
            if let Some(string_data @ Value::Object(_)) = field("stringData") {
                encoded.insert("stringData".into(), string_data);
            }
        }
        _ => return encode_hex(&Value::Object(object.clone())),
    }
    encode_hex(&Value::Object(encoded))
}

fn encode_hex(value: &Value) -> String {
    let mut json = String::new();
    go_json(value, &mut json);
    let digest = Sha256::digest(json.as_bytes());
    digest
        .iter()
        .take(5)
        .flat_map(|byte| [byte >> 4, byte & 0xf])
        .map(|nibble| match nibble {
            0 => 'g',
            1 => 'h',
            3 => 'k',
            0xa => 'm',
            0xe => 't',
            n => char::from_digit(u32::from(n), 16).expect("a nibble is a hex digit"),
        })
        .collect()
}

/// Go's `encoding/json` output for a value decoded from YAML: sorted keys, HTML-safe escaping.
pub fn go_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => go_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(key, out);
                out.push(':');
                go_json(&map[key], out);
            }
            out.push('}');
        }
    }
}

fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
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
    fn go_encoding_sorts_and_escapes_like_go() {
        let mut out = String::new();
        go_json(&json!({"b": "<&>", "a": ["x\n"]}), &mut out);
        assert_eq!(out, r#"{"a":["x\n"],"b":"\u003c\u0026\u003e"}"#);
    }

    #[test]
    fn hash_matches_kustomize() {
        // Cases of kustomize's own hasher_test.go.
        let one_key = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"one": ""}});
        assert_eq!(content_hash(one_key.as_object().unwrap()), "9g67k2htb6");
        let empty = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(content_hash(empty.as_object().unwrap()), "6ct58987ht");
    }
}
