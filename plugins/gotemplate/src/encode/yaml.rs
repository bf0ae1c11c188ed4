//! YAML as charts see it: `toYaml` as sigs.k8s.io/yaml writes it (a JSON round trip, then
//! go-yaml v2's emitter: natural key order, unindented sequences, quoting only what would not
//! read back as a string, folding at 80 columns), `toYamlPretty` (go-yaml v3 with two-space
//! indentation), and `fromYaml`.

use std::cmp::Ordering;

use super::scalar::{Style, analyze, choose_style, literal_block, write_scalar};
use crate::printf::format_float_g;
use crate::value::Value;

/// go-yaml's key order: runs of digits compare as numbers, letters before digits.
fn key_less(ar: &[char], br: &[char]) -> Ordering {
    let mut digits = false;
    let n = ar.len().min(br.len());
    for i in 0..n {
        if ar[i] == br[i] {
            digits = ar[i].is_ascii_digit();
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            let a_first = if digits { al } else { bl };
            return if a_first {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// A scalar in the form the JSON round trip leaves it: integral floats become ints.
fn scalar(v: &Value, json_roundtrip: bool) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) | Value::Int64(i) => i.to_string(),
        Value::Float(f) if json_roundtrip && f.fract() == 0.0 && f.abs() < 9.2e18 => {
            (*f as i64).to_string()
        }
        Value::Float(f) if f.is_nan() => ".nan".into(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 {
                ".inf".into()
            } else {
                "-.inf".into()
            }
        }
        Value::Float(f) => format_float_g(*f, None, false),
        Value::Object(o) => {
            let s = o.display();
            write_scalar(&s, choose_style(&s, true, false), 0, 0, None)
        }
        _ => String::new(),
    }
}

/// libyaml's longest simple (`key: value`) key, in bytes.
const MAX_SIMPLE_KEY: usize = 128;

struct Emitter {
    out: String,
    /// Set when a value nests deeper than the encoders follow (a map holding itself).
    too_deep: bool,
    /// go-yaml v2 folds long scalars at 80 columns; v3 as Helm configures it does not.
    width: Option<usize>,
    /// go-yaml v3: indents sequences inside mappings and allows tabs in literal blocks.
    indent_sequences: bool,
    json_roundtrip: bool,
}

impl Emitter {
    fn sorted(&self, m: &crate::value::Map) -> Vec<(String, Value)> {
        // The comparison walks characters by index: split each key once, not per comparison.
        let mut entries: Vec<(Vec<char>, (String, Value))> = m
            .entries()
            .into_iter()
            .map(|e| (e.0.chars().collect(), e))
            .collect();
        entries.sort_by(|a, b| key_less(&a.0, &b.0));
        entries.into_iter().map(|(_, e)| e).collect()
    }

    /// Write `v` after something on the current line (`key:` or `-`), at block indent `indent`.
    fn value_after(&mut self, v: &Value, indent: usize, in_seq_item: bool) {
        if indent > 2 * crate::value::MAX_VALUE_DEPTH || self.too_deep {
            self.too_deep = true;
            return;
        }
        if let Value::Object(o) = v
            && let Some(inner) = o.to_value()
        {
            return self.value_after(&inner, indent, in_seq_item);
        }
        match v {
            Value::Map(m) if !m.is_empty() => {
                if in_seq_item {
                    self.out.push(' ');
                    self.map_body(m, indent, true);
                } else {
                    self.out.push('\n');
                    self.map_body(m, indent, false);
                }
            }
            Value::List(l) if !l.is_empty() => {
                if in_seq_item {
                    self.out.push(' ');
                    self.seq_body(l, indent, true);
                } else {
                    self.out.push('\n');
                    let seq_indent = if self.indent_sequences {
                        indent
                    } else {
                        indent.saturating_sub(2)
                    };
                    self.seq_body(l, seq_indent, false);
                }
            }
            Value::Map(_) => self.out.push_str(" {}\n"),
            Value::List(l) if l.is_nil() && self.json_roundtrip => self.out.push_str(" null\n"),
            Value::List(_) => self.out.push_str(" []\n"),
            Value::String(s) => {
                self.out.push(' ');
                self.string(s, indent);
                self.out.push('\n');
            }
            other => {
                self.out.push(' ');
                self.out.push_str(&scalar(other, self.json_roundtrip));
                self.out.push('\n');
            }
        }
    }

    fn column(&self) -> usize {
        let line_start = self.out.rfind('\n').map_or(0, |i| i + 1);
        self.out[line_start..].chars().count()
    }

    fn string(&mut self, s: &str, indent: usize) {
        let style = choose_style(s, false, self.indent_sequences);
        if style == Style::Literal {
            self.out.push_str(&literal_block(s, indent));
            return;
        }
        let text = write_scalar(s, style, self.column(), indent, self.width);
        self.out.push_str(&text);
    }

    fn map_body(&mut self, m: &crate::value::Map, indent: usize, first_inline: bool) {
        for (i, (k, v)) in self.sorted(m).into_iter().enumerate() {
            if i > 0 || !first_inline {
                self.out.push_str(&" ".repeat(indent));
            }
            // libyaml writes a key that is multi-line or longer than 128 bytes as a complex
            // key: `? key` (styled and folded like a value), then `: value` on its own line.
            if k.len() > MAX_SIMPLE_KEY || analyze(&k, false).multiline {
                self.out.push_str("? ");
                self.string(&k, indent + 2);
                self.out.push('\n');
                self.out.push_str(&" ".repeat(indent));
                self.out.push(':');
                self.value_after(&v, indent + 2, true);
                continue;
            }
            let key = write_scalar(
                &k,
                choose_style(&k, true, self.indent_sequences),
                0,
                0,
                None,
            );
            self.out.push_str(&key);
            self.out.push(':');
            self.value_after(&v, indent + 2, false);
        }
    }

    fn seq_body(&mut self, l: &[Value], indent: usize, first_inline: bool) {
        for (i, v) in l.iter().enumerate() {
            if i > 0 || !first_inline {
                self.out.push_str(&" ".repeat(indent));
            }
            self.out.push('-');
            self.value_after(v, indent + 2, true);
        }
    }

    fn document(&mut self, v: &Value) {
        if let Value::Object(o) = v
            && let Some(inner) = o.to_value()
        {
            return self.document(&inner);
        }
        match v {
            Value::Map(m) if !m.is_empty() => self.map_body(m, 0, false),
            Value::List(l) if !l.is_empty() => self.seq_body(l, 0, false),
            Value::Map(_) => self.out.push_str("{}\n"),
            Value::List(l) if l.is_nil() && self.json_roundtrip => self.out.push_str("null\n"),
            Value::List(_) => self.out.push_str("[]\n"),
            Value::String(s) => {
                self.string(s, 2);
                self.out.push('\n');
            }
            other => {
                self.out.push_str(&scalar(other, self.json_roundtrip));
                self.out.push('\n');
            }
        }
    }
}

/// sigs.k8s.io/yaml.Marshal.
pub fn to_yaml(v: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        too_deep: false,
        width: Some(80),
        indent_sequences: false,
        json_roundtrip: true,
    };
    e.document(v);
    // Helm's toYaml gives "" when marshalling fails, as it does for a value holding itself.
    if e.too_deep { String::new() } else { e.out }
}

/// go-yaml v3 with two-space indentation (Helm's toYamlPretty).
pub fn to_yaml_pretty(v: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        too_deep: false,
        width: None,
        indent_sequences: true,
        json_roundtrip: false,
    };
    e.document(v);
    if e.too_deep { String::new() } else { e.out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(json: serde_json::Value) -> String {
        to_yaml(&Value::from(json))
    }

    #[test]
    fn yaml_quotes_what_would_not_read_back_as_a_string() {
        assert_eq!(
            y(
                serde_json::json!({"a": "123", "b": "yes", "c": "plain", "d": "", "e": "a: b", "f": "2024-01-02"})
            ),
            "a: \"123\"\nb: \"yes\"\nc: plain\nd: \"\"\ne: 'a: b'\nf: \"2024-01-02\"\n"
        );
    }

    #[test]
    fn yaml_numbers_go_through_json() {
        assert_eq!(
            y(serde_json::json!({"m": 1000000.0, "f": 1.5, "n": 1})),
            "f: 1.5\nm: 1000000\n\"n\": 1\n"
        );
    }

    #[test]
    fn yaml_sequences_are_not_indented_in_v2() {
        assert_eq!(
            y(serde_json::json!({"a": [1, {"b": 2, "c": [3]}], "e": {}})),
            "a:\n- 1\n- b: 2\n  c:\n  - 3\ne: {}\n"
        );
        assert_eq!(
            to_yaml_pretty(&Value::from(serde_json::json!({"a": [1, 2]}))),
            "a:\n  - 1\n  - 2\n"
        );
    }

    #[test]
    fn yaml_multiline_strings_are_literal_blocks() {
        assert_eq!(y(serde_json::json!({"s": "a\nb\n"})), "s: |\n  a\n  b\n");
        assert_eq!(y(serde_json::json!({"s": "a\nb"})), "s: |-\n  a\n  b\n");
        assert_eq!(y(serde_json::json!(["x\ny"])), "- |-\n  x\n  y\n");
    }

    #[test]
    fn yaml_keys_in_natural_order() {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(key_less(&chars("a2"), &chars("a10")), Ordering::Less);
        assert_eq!(key_less(&chars("b"), &chars("a")), Ordering::Greater);
    }
}
