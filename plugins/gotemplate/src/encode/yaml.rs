//! YAML as charts see it: `toYaml` as sigs.k8s.io/yaml writes it (a JSON round trip, then
//! go-yaml v2's emitter: natural key order, unindented sequences, quoting only what would not
//! read back as a string, folding at 80 columns), `toYamlPretty` (go-yaml v3 with two-space
//! indentation), and `fromYaml`.

use std::cmp::Ordering;

use crate::printf::format_float_g;
use crate::value::Value;

/// go-yaml's key order: runs of digits compare as numbers, letters before digits.
fn key_less(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
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

/// Would go-yaml read this plain scalar back as something other than a string?
fn resolves_to_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off",
        "OFF", "true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL", "~",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    if s.is_empty() || SPECIAL.contains(&s) {
        return true;
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => s.parse::<f64>().is_ok(),
        b'+' | b'-' | b'0'..=b'9' => {
            if is_timestamp(s) {
                return true;
            }
            let plain = s.replace('_', "");
            if crate::funcs::parse_int_base0(&plain).is_some() {
                return true;
            }
            if is_yaml_float(&plain) {
                return true;
            }
            let unsigned = plain.trim_start_matches('-');
            if let Some(bits) = unsigned.strip_prefix("0b") {
                return !bits.is_empty() && bits.chars().all(|c| c == '0' || c == '1');
            }
            // YAML 1.1 sexagesimal floats like 1:20 are quoted too.
            is_base60_float(s)
        }
        _ => false,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let s = s.trim_start_matches(['+', '-']);
    let (main, _frac) = s.split_once('.').unwrap_or((s, ""));
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if head.is_empty() || !head.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    if !head.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return false;
    }
    let mut any = false;
    for p in parts {
        any = true;
        let ok = matches!(p.len(), 1 | 2)
            && p.chars().all(|c| c.is_ascii_digit())
            && (p.len() == 1 || p.as_bytes()[0] <= b'5');
        if !ok {
            return false;
        }
    }
    any && _frac.chars().all(|c| c.is_ascii_digit() || c == '_')
}

/// go-yaml's parseTimestamp accepts `YYYY-M-D` with optional time.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits != 4 || digits == b.len() || b[digits] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut dp = date.split('-');
    let (Some(m), Some(d), None) = (dp.next(), dp.next(), dp.next()) else {
        return false;
    };
    let num = |p: &str| matches!(p.len(), 1 | 2) && p.chars().all(|c| c.is_ascii_digit());
    if !num(m) || !num(d) {
        return false;
    }
    match time {
        None => true,
        Some(t) => {
            let t = t.trim_end_matches('Z');
            let t = t.split(['+', '-']).next().unwrap_or("");
            let mut tp = t.split(':');
            let (Some(h), Some(mi), Some(sec)) = (tp.next(), tp.next(), tp.next()) else {
                return false;
            };
            let sec = sec.split('.').next().unwrap_or("");
            num(h) && num(mi) && num(sec)
        }
    }
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{85}')
        || ('\u{20}'..='\u{7e}').contains(&c)
        || ('\u{a0}'..='\u{d7ff}').contains(&c)
        || (('\u{e000}'..='\u{fffd}').contains(&c) && c != '\u{feff}')
        || ('\u{10000}'..='\u{10ffff}').contains(&c)
}

struct ScalarAnalysis {
    plain: bool,
    single: bool,
    block: bool,
    multiline: bool,
}

/// libyaml's yaml_emitter_analyze_scalar, for block context. go-yaml v3 (`tabs_in_blocks`)
/// lets a tab into literal blocks; v2 treats it as a special character.
fn analyze(s: &str, tabs_in_blocks: bool) -> ScalarAnalysis {
    if s.is_empty() {
        return ScalarAnalysis {
            plain: false,
            single: true,
            block: false,
            multiline: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_indicators = false;
    let mut special = false;
    let mut tabs = false;
    let mut line_breaks = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_indicators = true;
    }
    let mut preceded_by_ws = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_ws = chars
            .get(i + 1)
            .is_none_or(|n| matches!(n, ' ' | '\t' | '\n' | '\r'));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_ws => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_ws => block_indicators = true,
                '#' if preceded_by_ws => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' && tabs_in_blocks {
            tabs = true;
        } else if !is_printable(c) || (c == '\u{feff}') {
            special = true;
        }
        let is_break = matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
        if is_break {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == chars.len() - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break {
            if i == 0 {
                leading_break = true;
            }
            if i == chars.len() - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = matches!(c, ' ' | '\t' | '\n' | '\r');
    }
    let mut plain = true;
    let mut single = true;
    let mut block = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        plain = false;
    }
    if trailing_space {
        block = false;
    }
    if break_space {
        plain = false;
        single = false;
    }
    if space_break || special || tabs {
        plain = false;
        single = false;
    }
    if space_break || special {
        block = false;
    }
    if line_breaks {
        plain = false;
    }
    if block_indicators {
        plain = false;
    }
    ScalarAnalysis {
        plain,
        single,
        block,
        multiline: line_breaks,
    }
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) || c == '\u{feff}' => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02X}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml's choice (quote what would read back as another type, literal blocks for
/// multi-line text) refined by libyaml's analysis of what each style can carry.
fn choose_style(s: &str, as_key: bool, tabs_in_blocks: bool) -> Style {
    let a = analyze(s, tabs_in_blocks);
    if s.contains('\n') {
        return if !as_key && a.block {
            Style::Literal
        } else {
            Style::Double
        };
    }
    if resolves_to_non_string(s) {
        return Style::Double;
    }
    if a.plain {
        Style::Plain
    } else if a.single && !a.multiline {
        Style::Single
    } else {
        Style::Double
    }
}

/// Write `s` in `style` starting at `column`, folding at spaces past `width` onto lines
/// indented by `indent` as libyaml does (`None` never folds: keys, and go-yaml v3).
fn write_scalar(
    s: &str,
    style: Style,
    column: usize,
    indent: usize,
    width: Option<usize>,
) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut col = column;
    let mut spaces = false;
    let (open, close) = match style {
        Style::Single => ("'", "'"),
        Style::Double => ("\"", "\""),
        _ => ("", ""),
    };
    out.push_str(open);
    col += open.len();
    for (i, &c) in chars.iter().enumerate() {
        let next_space = chars.get(i + 1) == Some(&' ');
        if c == ' ' {
            let past = width.is_some_and(|w| col > w) && !spaces;
            let fold = match style {
                Style::Plain => past && !next_space,
                Style::Single => past && i > 0 && i + 1 < chars.len() && !next_space,
                Style::Double => past && i > 0 && i + 1 < chars.len(),
                Style::Literal => false,
            };
            if fold {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                col = indent;
                if style == Style::Double && next_space {
                    out.push('\\');
                    col += 1;
                }
            } else {
                out.push(' ');
                col += 1;
            }
            spaces = true;
            continue;
        }
        spaces = false;
        let piece = match style {
            Style::Single if c == '\'' => "''".to_string(),
            Style::Double => {
                let q = double_quoted(&c.to_string());
                q[1..q.len() - 1].to_string()
            }
            _ => c.to_string(),
        };
        col += piece.chars().count();
        out.push_str(&piece);
    }
    out.push_str(close);
    out
}

fn literal_block(s: &str, indent: usize) -> String {
    let mut out = String::from("|");
    if s.starts_with([' ', '\n']) {
        out.push('2');
    }
    let trimmed = s.strip_suffix('\n');
    match trimmed {
        None => out.push('-'),
        Some(t) if t.is_empty() || t.ends_with('\n') => out.push('+'),
        Some(_) => {}
    }
    let body = trimmed.unwrap_or(s);
    let pad = " ".repeat(indent);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

/// A scalar in the form the JSON round trip leaves it: integral floats become ints.
fn scalar(v: &Value, json_roundtrip: bool) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
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
    /// go-yaml v2 folds long scalars at 80 columns; v3 as Helm configures it does not.
    width: Option<usize>,
    /// go-yaml v3: indents sequences inside mappings and allows tabs in literal blocks.
    indent_sequences: bool,
    json_roundtrip: bool,
}

impl Emitter {
    fn sorted(&self, m: &crate::value::Map) -> Vec<(String, Value)> {
        let mut entries = m.entries();
        entries.sort_by(|a, b| key_less(&a.0, &b.0));
        entries
    }

    /// Write `v` after something on the current line (`key:` or `-`), at block indent `indent`.
    fn value_after(&mut self, v: &Value, indent: usize, in_seq_item: bool) {
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
        match v {
            Value::Map(m) if !m.is_empty() => self.map_body(m, 0, false),
            Value::List(l) if !l.is_empty() => self.seq_body(l, 0, false),
            Value::Map(_) => self.out.push_str("{}\n"),
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
        width: Some(80),
        indent_sequences: false,
        json_roundtrip: true,
    };
    e.document(v);
    e.out
}

/// go-yaml v3 with two-space indentation (Helm's toYamlPretty).
pub fn to_yaml_pretty(v: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        width: None,
        indent_sequences: true,
        json_roundtrip: false,
    };
    e.document(v);
    e.out
}

/// YAML text to a value the way sigs.k8s.io/yaml.Unmarshal does it (numbers become float64).
///
/// Known difference: go-yaml v2 resolves plain scalars by YAML 1.1 (`yes`, `on`, `y` are
/// booleans, `0755` is octal, `1_000` is a number); this parser follows YAML 1.2, where they
/// are strings. Like go-yaml, only the first document is read.
pub fn from_yaml(s: &str) -> Result<Value, String> {
    use serde::Deserialize;
    let Some(document) = serde_yaml::Deserializer::from_str(s).next() else {
        return Ok(Value::Nil);
    };
    let json = serde_json::Value::deserialize(document)
        .map_err(|e| format!("error converting YAML to JSON: yaml: {e}"))?;
    Ok(Value::from(json))
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
        assert_eq!(key_less("a2", "a10"), Ordering::Less);
        assert_eq!(key_less("b", "a"), Ordering::Greater);
    }
}
