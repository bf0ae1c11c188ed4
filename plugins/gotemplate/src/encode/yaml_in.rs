//! `fromYaml` as sigs.k8s.io/yaml reads YAML: go-yaml v2's YAML 1.1 resolution of plain
//! scalars (`yes`, `on`, `n` are booleans, `0755` is octal, `1_000` a number), then a JSON round
//! trip (numbers become float64, keys become strings). The YAML parser is YAML 1.2; its plain
//! strings are re-resolved here, telling plain from quoted scalars by the source text around
//! the borrowed string.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};

use crate::value::{Map, Value};

/// Parse the first YAML document of `input`.
pub fn from_yaml(input: &str) -> Result<Value, String> {
    let Some(document) = serde_yaml::Deserializer::from_str(input).next() else {
        return Ok(Value::Nil);
    };
    let value = document
        .deserialize_any(Node { input, key: false })
        .map_err(|e: serde_yaml::Error| {
            let message = e.to_string();
            // Errors raised here while converting carry their full text.
            if let Some(own) = message.strip_prefix(CONVERSION) {
                let own = own.split(" at line ").next().unwrap_or(own);
                return format!("error converting YAML to JSON: {own}");
            }
            // go-yaml words its errors without serde's position suffix.
            let message = message.split(" at line ").next().unwrap_or(&message);
            format!("error converting YAML to JSON: yaml: {message}")
        })?;
    if let Some(bad) = non_finite(&value) {
        return Err(format!(
            "error converting YAML to JSON: json: unsupported value: {bad}"
        ));
    }
    Ok(value)
}

/// Marks an error this reader raises (as opposed to the YAML parser).
const CONVERSION: &str = "conversion: ";

/// The first NaN or infinity, which the JSON round trip cannot carry, as Go prints it.
fn non_finite(v: &Value) -> Option<String> {
    match v {
        Value::Float(f) if !f.is_finite() => Some(crate::printf::format_float_g(*f, None, false)),
        Value::List(l) => l.iter().find_map(non_finite),
        Value::Map(m) => m.entries().iter().find_map(|(_, v)| non_finite(v)),
        _ => None,
    }
}

/// go-yaml v2's resolution of a plain scalar the YAML 1.2 parser left a string.
fn resolve_yaml11(s: &str) -> Option<Value> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some(Value::Bool(true)),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => return Some(Value::Bool(false)),
        _ => {}
    }
    let first = s.as_bytes().first()?;
    let plain = s.replace('_', "");
    if *first == b'.' {
        return super::scalar::is_yaml_float(&plain)
            .then(|| plain.parse::<f64>().ok().map(Value::Float))
            .flatten();
    }
    if !(first.is_ascii_digit() || *first == b'+' || *first == b'-') {
        return None;
    }
    if let Some(n) = crate::funcs::parse_int_base0(&plain) {
        return Some(Value::Int64(n));
    }
    if super::scalar::is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Some(Value::Float(f));
    }
    let (neg, unsigned) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain.trim_start_matches('+')),
    };
    if let Some(bits) = unsigned.strip_prefix("0b")
        && let Ok(n) = i64::from_str_radix(bits, 2)
    {
        return Some(Value::Int64(if neg { -n } else { n }));
    }
    None
}

/// sigs.k8s.io/yaml's key strings for non-string keys.
fn key_string(key: Value) -> String {
    match key {
        Value::String(s) => s.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int64(i) => i.to_string(),
        Value::Float(f) => {
            // Go formats float keys at float32 precision.
            let s = crate::printf::format_float_g32(f as f32);
            match s.as_str() {
                "+Inf" => ".inf".into(),
                "-Inf" => "-.inf".into(),
                "NaN" => ".nan".into(),
                _ => s,
            }
        }
        Value::Nil => "null".into(),
        other => other.go_string(),
    }
}

#[derive(Clone, Copy)]
struct Node<'a> {
    input: &'a str,
    /// Reading a mapping key: integers stay integers (Go formats int keys in decimal).
    key: bool,
}

impl Node<'_> {
    /// A number as JSON leaves it: float64, except as a key.
    fn integer(&self, i: i64) -> Value {
        if self.key {
            Value::Int64(i)
        } else {
            Value::Float(i as f64)
        }
    }

    /// Whether `s`, borrowed from the input, was written without quotes.
    fn is_plain(&self, s: &str) -> bool {
        let base = self.input.as_ptr() as usize;
        let at = s.as_ptr() as usize;
        if at < base || at + s.len() > base + self.input.len() {
            return false;
        }
        let start = at - base;
        let before = self.input[..start].chars().next_back();
        !matches!(before, Some('\'' | '"'))
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(self.integer(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => self.integer(i),
            Err(_) => Value::Float(v as f64),
        })
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        // Not borrowed from the input: escaped, folded or multi-line, so no 1.1 keyword.
        Ok(Value::str(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value, E> {
        if self.is_plain(v)
            && let Some(resolved) = resolve_yaml11(v)
        {
            return Ok(match resolved {
                Value::Int64(i) => self.integer(i),
                other => other,
            });
        }
        Ok(Value::str(v))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::str(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        let seed = Node { key: false, ..self };
        while let Some(item) = seq.next_element_seed(seed)? {
            items.push(item);
        }
        Ok(Value::list(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let out = Map::new();
        let key_seed = Node { key: true, ..self };
        let value_seed = Node { key: false, ..self };
        // `<<: *anchor` merge keys (YAML 1.1): explicit keys win over merged ones.
        let mut merged: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key_seed(key_seed)? {
            let value = map.next_value_seed(value_seed)?;
            if matches!(&key, Value::String(k) if &**k == "<<") {
                let sources = match &value {
                    Value::Map(m) => vec![m.clone()],
                    Value::List(l) if l.iter().all(|v| matches!(v, Value::Map(_))) => {
                        l.iter().filter_map(|v| v.as_map().cloned()).collect()
                    }
                    _ => {
                        return Err(de::Error::custom(format!(
                            "{CONVERSION}yaml: map merge requires map or sequence of maps as the value"
                        )));
                    }
                };
                for source in sources {
                    for (k, v) in source.entries() {
                        if !merged.iter().any(|(m, _)| *m == k) {
                            merged.push((k, v));
                        }
                    }
                }
                continue;
            }
            if matches!(key, Value::Map(_) | Value::List(_)) {
                // go-yaml cannot hash a mapping or sequence used as a key.
                let shown = crate::printf::go_syntax(&key, true)
                    .replace("map[string]interface {}", "map[interface {}]interface {}");
                return Err(de::Error::custom(format!(
                    "{CONVERSION}yaml: invalid map key: {shown}"
                )));
            }
            if key.is_nil() {
                return Err(de::Error::custom(format!(
                    "{CONVERSION}unsupported map key of type: %!s(<nil>), key: <nil>, value: {}",
                    crate::printf::go_syntax(&value, true)
                )));
            }
            out.insert(key_string(key), value);
        }
        for (k, v) in merged {
            if !out.contains_key(&k) {
                out.insert(k, v);
            }
        }
        Ok(Value::Map(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1() {
        let v =
            from_yaml("a: yes\nb: 'yes'\nc: 0755\nd: \"0755\"\ne: 1_000\nn: 1\nf: on\n").unwrap();
        assert_eq!(
            v.go_string(),
            "map[a:true b:yes c:493 d:0755 e:1000 f:true false:1]"
        );
    }
}
