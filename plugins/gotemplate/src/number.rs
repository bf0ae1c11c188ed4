//! Go's number constants: strconv's parsing with base prefixes (`0x`, `0o`, `0b`, a leading
//! `0` for octal), underscores, hex floats, and which ones count as integers.

use crate::parse::Number;

/// Go's number constant rules (strconv with base prefixes and underscores).
pub fn parse_number(text: &str) -> Option<Number> {
    let int = parse_go_int(text);
    let lower = text.to_ascii_lowercase();
    let is_hex = lower.trim_start_matches(['+', '-']).starts_with("0x");
    let float = if is_hex && lower.contains('p') {
        parse_hex_float(&lower)
    } else if is_hex || lower.trim_start_matches(['+', '-']).starts_with("0b") {
        int.map(|i| i as f64)
    } else {
        let clean: String = text.chars().filter(|c| *c != '_').collect();
        clean.parse::<f64>().ok().filter(|f| f.is_finite())
    };
    let float_syntax = !is_hex && text.contains(['.', 'e', 'E']) || lower.contains('p');
    let int = int
        .or_else(|| float.and_then(|f| (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)));
    if int.is_none() && float.is_none() {
        return None;
    }
    Some(Number {
        int,
        float,
        float_syntax,
    })
}

fn parse_go_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.starts_with('_') && radix == 10 || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    // from_str_radix would take a second sign ("0-1").
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i128::from_str_radix(&digits, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

fn parse_hex_float(lower: &str) -> Option<f64> {
    let (neg, body) = match lower.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, lower.trim_start_matches('+')),
    };
    let body = body.strip_prefix("0x")?;
    let (mant, exp) = body.split_once('p')?;
    let exp: i32 = exp.replace('_', "").parse().ok()?;
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = 0f64;
    for c in int_part.chars().filter(|c| *c != '_') {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars().filter(|c| *c != '_') {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_go_constants() {
        let n = parse_number("0x10").unwrap();
        assert_eq!(n.int, Some(16));
        assert!(!n.float_syntax);
        let n = parse_number("1e3").unwrap();
        assert_eq!(n.int, Some(1000));
        assert!(n.float_syntax);
        assert_eq!(parse_number("017").unwrap().int, Some(15));
        assert!(parse_number("0-1").is_none());
        assert_eq!(parse_number("1.5").unwrap().int, None);
        assert_eq!(parse_number("0x1p-2").unwrap().float, Some(0.25));
    }
}
