//! How one string becomes a YAML scalar: go-yaml's choice of style (quote what would read back
//! as another type, literal blocks for multi-line text), libyaml's analysis of what each style
//! can carry, and the writing itself, folded at the emitter's width.

/// Would go-yaml read this plain scalar back as something other than a string?
pub(super) fn resolves_to_non_string(s: &str) -> bool {
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
pub(super) fn is_yaml_float(s: &str) -> bool {
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

pub(super) struct ScalarAnalysis {
    pub plain: bool,
    pub single: bool,
    pub block: bool,
    pub multiline: bool,
}

/// libyaml's yaml_emitter_analyze_scalar, for block context. go-yaml v3 (`tabs_in_blocks`)
/// lets a tab into literal blocks; v2 treats it as a special character.
pub(super) fn analyze(s: &str, tabs_in_blocks: bool) -> ScalarAnalysis {
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
pub(super) enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml's choice (quote what would read back as another type, literal blocks for
/// multi-line text) refined by libyaml's analysis of what each style can carry.
pub(super) fn choose_style(s: &str, as_key: bool, tabs_in_blocks: bool) -> Style {
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
pub(super) fn write_scalar(
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

pub(super) fn literal_block(s: &str, indent: usize) -> String {
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
