//! Go's `fmt` formatting of template values: `printf` verbs with flags, width and precision, and
//! strconv's float formatting (`%v` of 1000000.0 is `1e+06`), including Go's in-band error
//! strings such as `%!d(string=x)` and `%!s(MISSING)`.

use crate::value::Value;

/// Decimal digits and exponent of `v` (non-zero, finite): shortest round-trip when `prec` is
/// `None`, else `prec` significant digits. The value is `0.d1d2… × 10^exp`.
fn digits(v: f64, prec: Option<usize>) -> (String, i32) {
    let s = match prec {
        None => format!("{:e}", v.abs()),
        Some(p) => format!("{:.*e}", p.saturating_sub(1), v.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp + 1)
}

fn exp_suffix(exp: i32, upper: bool) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    format!("{e}{sign}{:02}", exp.abs())
}

fn non_finite(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        })
    } else {
        None
    }
}

/// strconv.FormatFloat(v, 'g', prec, 64); `None` is the shortest representation (`-1`).
pub fn format_float_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = non_finite(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    let sign = if neg { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0");
    }
    let prec = prec.map(|p| p.max(1));
    let (d, dp) = digits(v, prec);
    g_from_digits(sign, d, dp, prec, upper)
}

/// strconv.FormatFloat(v, 'g', -1, 32): the shortest digits that round-trip a float32.
pub fn format_float_g32(v: f32) -> String {
    if !v.is_finite() {
        return format_float_g(v as f64, None, false);
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0");
    }
    let s = format!("{:e}", v.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let d: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    g_from_digits(sign, d, exp + 1, None, false)
}

/// %g layout of the decimal digits `0.d1d2… × 10^dp`.
fn g_from_digits(sign: &str, mut d: String, dp: i32, prec: Option<usize>, upper: bool) -> String {
    // Go drops trailing zeros of %g digits.
    while d.len() > 1 && d.ends_with('0') {
        d.pop();
    }
    let eprec = match prec {
        None => 6,
        Some(p) => {
            if p > d.len() && d.len() as i32 >= dp {
                d.len()
            } else {
                p
            }
        }
    };
    let exp = dp - 1;
    if exp < -4 || exp >= eprec as i32 {
        let mut out = String::from(sign);
        out.push_str(&d[..1]);
        if d.len() > 1 {
            out.push('.');
            out.push_str(&d[1..]);
        }
        out.push_str(&exp_suffix(exp, upper));
        return out;
    }
    let mut out = String::from(sign);
    if dp <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-dp) as usize));
        out.push_str(&d);
    } else if dp as usize >= d.len() {
        out.push_str(&d);
        out.push_str(&"0".repeat(dp as usize - d.len()));
    } else {
        out.push_str(&d[..dp as usize]);
        out.push('.');
        out.push_str(&d[dp as usize..]);
    }
    out
}

/// strconv.FormatFloat(v, 'e', prec, 64).
pub fn format_float_e(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = non_finite(v) {
        return s;
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v == 0.0 {
        let p = prec.unwrap_or(0);
        let frac = if p > 0 {
            format!(".{}", "0".repeat(p))
        } else {
            String::new()
        };
        return format!("{sign}0{frac}{}", exp_suffix(0, upper));
    }
    let (d, dp) = digits(v, prec.map(|p| p + 1));
    let mut out = String::from(sign);
    out.push_str(&d[..1]);
    if d.len() > 1 {
        out.push('.');
        out.push_str(&d[1..]);
    }
    out.push_str(&exp_suffix(dp - 1, upper));
    out
}

/// strconv.FormatFloat(v, 'f', prec, 64).
pub fn format_float_f(v: f64, prec: Option<usize>) -> String {
    if let Some(s) = non_finite(v) {
        return s;
    }
    match prec {
        Some(p) => format!("{v:.p$}"),
        None => {
            // Shortest digits, written without an exponent.
            let s = format!("{v}");
            if s == "-0" { "-0".into() } else { s }
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(w) = spec.width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if spec.minus {
        return s + &" ".repeat(fill);
    }
    if spec.zero && numeric {
        // Zeros go after the sign.
        let (sign, rest) = match s.chars().next() {
            Some(c @ ('+' | '-' | ' ')) => (c.to_string(), &s[1..]),
            _ => (String::new(), s.as_str()),
        };
        return format!("{sign}{}{rest}", "0".repeat(fill));
    }
    if spec.zero && !numeric {
        return "0".repeat(fill) + &s;
    }
    " ".repeat(fill) + &s
}

/// Go's `%!verb(type=value)` for a verb the value's kind does not support; the value is
/// printed with `%v` and the same flags.
fn bad_verb(verb: char, v: &Value, spec: &Spec) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", v.type_name(), fmt_value(v, 'v', spec, 1)),
    }
}

/// strconv.FormatFloat(v, 'x', -1, 64): `0x1.8p+01`.
fn format_float_hex(v: f64, upper: bool) -> String {
    if let Some(s) = non_finite(v) {
        return s;
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0x0p+00");
    }
    let bits = v.abs().to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        // Subnormal: shift until the implicit bit appears.
        exp = 1;
        while mant & (1u64 << 52) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        mant &= (1u64 << 52) - 1;
    }
    let exp = exp - 1023;
    let mut frac = format!("{mant:013x}");
    while frac.ends_with('0') {
        frac.pop();
    }
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    let exp_sign = if exp < 0 { '-' } else { '+' };
    let s = format!("{sign}0x1{frac}p{exp_sign}{:02}", exp.abs());
    if upper { s.to_uppercase() } else { s }
}

/// Go's strconv.Quote.
pub fn go_quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_ascii() => out.push(c),
            c if ascii_only || !is_printable(c) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_printable(c: char) -> bool {
    !c.is_control()
        && !matches!(
            c as u32,
            0x80..=0x9f | 0xad | 0xfeff | 0x2028 | 0x2029 | 0xfffd
        )
        || c == '\u{fffd}'
}

fn fmt_int(i: i64, verb: char, spec: &Spec) -> String {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let mut body = match verb {
        'd' | 'v' => u.to_string(),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        'o' | 'O' => format!("{u:o}"),
        'b' => format!("{u:b}"),
        _ => u.to_string(),
    };
    if let Some(p) = spec.prec
        && body.len() < p
    {
        body = "0".repeat(p - body.len()) + &body;
    }
    let prefix = match verb {
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        'o' if spec.sharp => "0",
        'O' => "0o",
        'b' if spec.sharp => "0b",
        _ => "",
    };
    let sign = if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let mut spec = *spec;
    if spec.prec.is_some() {
        spec.zero = false;
    }
    pad(format!("{sign}{prefix}{body}"), &spec, true)
}

fn fmt_float(f: f64, verb: char, spec: &Spec) -> String {
    let mut s = match verb {
        'v' => format_float_g(f, spec.prec, false),
        'g' => format_float_g(f, spec.prec, false),
        'G' => format_float_g(f, spec.prec, true),
        'e' => format_float_e(f, Some(spec.prec.unwrap_or(6)), false),
        'E' => format_float_e(f, Some(spec.prec.unwrap_or(6)), true),
        'f' | 'F' => format_float_f(f, Some(spec.prec.unwrap_or(6))),
        _ => format_float_g(f, None, false),
    };
    if !s.starts_with('-') {
        if spec.plus {
            s.insert(0, '+');
        } else if spec.space {
            s.insert(0, ' ');
        }
    }
    let numeric = f.is_finite();
    pad(s, spec, numeric)
}

fn fmt_string(s: &str, verb: char, spec: &Spec) -> String {
    let s = match spec.prec {
        Some(p) if verb != 'q' => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    let body = match verb {
        'q' => {
            if spec.sharp && !s.contains('`') && !s.chars().any(|c| c.is_control() && c != '\t') {
                format!("`{s}`")
            } else {
                go_quote(&s, spec.plus)
            }
        }
        'x' => s.bytes().map(|b| format!("{b:02x}")).collect(),
        'X' => s.bytes().map(|b| format!("{b:02X}")).collect(),
        _ => s,
    };
    pad(body, spec, false)
}

/// Go's `%#v` syntax for template data.
pub fn go_syntax(v: &Value, nested: bool) -> String {
    go_syntax_at(v, nested, 0)
}

fn go_syntax_at(v: &Value, nested: bool, depth: usize) -> String {
    if depth > crate::value::MAX_VALUE_DEPTH {
        return "...".into();
    }
    match v {
        Value::Nil if nested => "interface {}(nil)".into(),
        Value::Nil => "<nil>".into(),
        Value::String(s) => go_quote(s, false),
        Value::List(l) => {
            let items: Vec<String> = l.iter().map(|i| go_syntax_at(i, true, depth + 1)).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Map(m) => {
            let items: Vec<String> = m
                .read()
                .iter()
                .map(|(k, i)| {
                    format!(
                        "{}:{}",
                        go_quote(k, false),
                        go_syntax_at(i, true, depth + 1)
                    )
                })
                .collect();
            format!("map[string]interface {{}}{{{}}}", items.join(", "))
        }
        other => other.go_string(),
    }
}

/// Format one value with one verb, recursing into lists and maps as Go's fmt does: the verb
/// and flags apply to each element, and a nil element prints as `<nil>`.
fn fmt_value(v: &Value, verb: char, spec: &Spec, depth: usize) -> String {
    if depth > crate::value::MAX_VALUE_DEPTH {
        return "...".into();
    }
    match (v, verb) {
        (_, 'T') => pad(v.type_name(), spec, false),
        (Value::Nil, 'v') => pad("<nil>".into(), spec, false),
        (Value::Nil, _) if depth > 0 => pad("<nil>".into(), spec, false),
        (Value::Bool(b), 'v' | 't') => pad(b.to_string(), spec, false),
        (Value::Int(i) | Value::Int64(i), 'd' | 'v' | 'x' | 'X' | 'o' | 'O' | 'b') => {
            fmt_int(*i, verb, spec)
        }
        (Value::Int(i) | Value::Int64(i), 'c') => pad(
            char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
            spec,
            false,
        ),
        (Value::Int(i) | Value::Int64(i), 'q') => pad(
            format!("'{}'", char::from_u32(*i as u32).unwrap_or('\u{fffd}')),
            spec,
            false,
        ),
        (Value::Int(i) | Value::Int64(i), 'U') => pad(format!("U+{i:04X}"), spec, false),
        (Value::Float(f), 'x' | 'X') => pad(format_float_hex(*f, verb == 'X'), spec, true),
        (Value::Float(f), 'v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G') => fmt_float(*f, verb, spec),
        (Value::String(s), 'v' | 's' | 'q' | 'x' | 'X') => fmt_string(s, verb, spec),
        (Value::List(l), _) => {
            let items: Vec<String> = l
                .iter()
                .map(|i| fmt_value(i, verb, spec, depth + 1))
                .collect();
            format!("[{}]", items.join(" "))
        }
        (Value::Map(m), _) => {
            let items: Vec<String> = m
                .read()
                .iter()
                .map(|(k, i)| {
                    format!(
                        "{}:{}",
                        fmt_value(&Value::str(k.as_str()), verb, spec, depth + 1),
                        fmt_value(i, verb, spec, depth + 1)
                    )
                })
                .collect();
            format!("map[{}]", items.join(" "))
        }
        (Value::Object(o), _) => pad(o.display(), spec, false),
        _ => bad_verb(verb, v, spec),
    }
}

/// Go's fmt.Sprintf.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars>, argi: &mut usize| {
            if chars.peek() == Some(&'*') {
                chars.next();
                let n = match args.get(*argi) {
                    Some(Value::Int(i) | Value::Int64(i)) => Some(*i as usize),
                    _ => None,
                };
                *argi += 1;
                return n;
            }
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0) * 10 + d as usize);
                chars.next();
            }
            n
        };
        spec.width = number(&mut chars, &mut argi);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(number(&mut chars, &mut argi).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let verb_ok = matches!(
            verb,
            'v' | 's'
                | 'd'
                | 'q'
                | 'f'
                | 'F'
                | 'e'
                | 'E'
                | 'g'
                | 'G'
                | 'x'
                | 'X'
                | 'o'
                | 'O'
                | 'b'
                | 't'
                | 'c'
                | 'U'
                | 'T'
        );
        if !verb_ok {
            out.push_str(&bad_verb(verb, arg, &spec));
            continue;
        }
        let s = if verb == 'v' && spec.sharp {
            pad(go_syntax(arg, false), &spec, false)
        } else {
            if verb == 'v' {
                // `%+v` means "field names" to Go, not a sign.
                spec.plus = false;
            }
            fmt_value(arg, verb, &spec, 0)
        };
        out.push_str(&s);
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| match a {
                Value::Nil => "<nil>".to_string(),
                _ => format!("{}={}", a.type_name(), a.go_string()),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

/// Go's fmt.Sprint: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        out.push_str(&a.go_string());
    }
    out
}

/// Go's fmt.Sprintln: always spaces between operands, and a newline.
pub fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(Value::go_string).collect();
    parts.join(" ") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_strconv() {
        assert_eq!(format_float_g(1e6, None, false), "1e+06");
        assert_eq!(format_float_g(123456.0, None, false), "123456");
        assert_eq!(format_float_g(0.0001, None, false), "0.0001");
        assert_eq!(format_float_g(0.00001, None, false), "1e-05");
        assert_eq!(format_float_g(1.5, None, false), "1.5");
        assert_eq!(format_float_g(-2.0, None, false), "-2");
        assert_eq!(format_float_g(4.56789, Some(3), false), "4.57");
        assert_eq!(format_float_e(1234.5678, Some(2), false), "1.23e+03");
        assert_eq!(format_float_f(2.5, Some(0)), "2");
    }

    #[test]
    fn printf_verbs() {
        let s = |f: &str, a: Vec<Value>| sprintf(f, &a);
        assert_eq!(s("%d-%s", vec![Value::Int(3), Value::str("x")]), "3-x");
        assert_eq!(
            s(
                "%5.2f|%-4d|%04d",
                vec![Value::Float(4.56789), Value::Int(7), Value::Int(-7)]
            ),
            " 4.57|7   |-007"
        );
        assert_eq!(s("%q", vec![Value::str("a\"b")]), "\"a\\\"b\"");
        assert_eq!(s("%d", vec![Value::Float(3.0)]), "%!d(float64=3)");
        assert_eq!(s("%s", vec![]), "%!s(MISSING)");
        assert_eq!(s("x", vec![Value::Int(1)]), "x%!(EXTRA int=1)");
        assert_eq!(
            s(
                "%x %X %#x",
                vec![Value::Int(255), Value::str("hi"), Value::Int(255)]
            ),
            "ff 6869 0xff"
        );
        assert_eq!(
            s(
                "%v %t",
                vec![
                    Value::list(vec![Value::Int(1), Value::Nil]),
                    Value::Bool(true)
                ]
            ),
            "[1 <nil>] true"
        );
        assert_eq!(s("%s", vec![Value::Int(3)]), "%!s(int=3)");
        assert_eq!(
            s(
                "%6s|%-6s|%.2s",
                vec![Value::str("ab"), Value::str("ab"), Value::str("abc")]
            ),
            "    ab|ab    |ab"
        );
    }

    #[test]
    fn sprint_spaces_only_between_non_strings() {
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), Value::str("a"), Value::Int(3)]),
            "1 2a3"
        );
    }
}
