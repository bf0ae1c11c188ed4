//! The word-case conversions Sprig delegates: `snakecase`, `kebabcase` and `camelcase`
//! (huandu/xstrings v1.5: ToSnakeCase, ToKebabCase, ToPascalCase), `swapcase`, `untitle` and
//! `initials` (Masterminds/goutils). Their quirks are kept: charts name objects with them, and
//! a different name is a different object.

use super::{CallContext, arity, string_arg};
use crate::value::Value;

type R = Result<Value, String>;

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

/// Go's unicode.IsPunct: general category P. Exact for ASCII (where `$+<=>^`|~` are symbols,
/// not punctuation); the common punctuation blocks beyond it.
fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation() && !"$+<=>^`|~".contains(c);
    }
    matches!(c as u32,
        0xA1 | 0xA7 | 0xAB | 0xB6 | 0xB7 | 0xBB | 0xBF
        | 0x2010..=0x2027 | 0x2030..=0x2043 | 0x2045..=0x2051 | 0x2053..=0x205E
        | 0x3001..=0x3003 | 0x3008..=0x3011 | 0x3014..=0x301F | 0xFF01..=0xFF03
        | 0xFF05..=0xFF0A | 0xFF0C..=0xFF0F | 0xFF1A | 0xFF1B | 0xFF1F | 0xFF20)
}

/// xstrings' isAlphabet: letters, except CJK ideographs.
fn is_alphabet(c: char) -> bool {
    c.is_alphabetic() && !matches!(c as u32, 0x4E00..=0x9FCC | 0x3400..=0x4D85 | 0x20000..=0x2B81D)
}

fn lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn upper(c: char) -> char {
    c.to_uppercase().next().unwrap_or(c)
}

/// xstrings.toCamelCase.
pub fn to_camel_case(s: &str, big: bool) -> String {
    if s.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    let mut first_upper = false;
    let mut r0 = '\0';
    for c in chars.by_ref() {
        r0 = c;
        if !is_connector(c) {
            first_upper = c.is_uppercase();
            r0 = if big { upper(c) } else { lower(c) };
            break;
        }
        out.push(c);
    }
    if chars.peek().is_none() {
        // When all are connectors, the last one is written twice, as xstrings does.
        out.push(r0);
        return out;
    }
    for c in chars {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = r0.is_uppercase();
            r0 = upper(r0);
        } else {
            if first_upper {
                if r0.is_uppercase() {
                    r0 = lower(r0);
                } else {
                    first_upper = false;
                }
            }
            out.push(r1);
        }
    }
    if first_upper && !big {
        r0 = lower(r0);
    }
    out.push(r0);
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Word {
    Invalid,
    Number,
    UpperCase,
    Alphabet,
    Connector,
    Punct,
    Other,
}

/// xstrings.nextWord: the kind and text of the next word, and the rest.
fn next_word(s: &str) -> (Word, &str, &str) {
    let mut it = s.char_indices();
    let Some((_, first)) = it.next() else {
        return (Word::Invalid, "", "");
    };
    let take_while = |from: usize, pred: &dyn Fn(char) -> bool| -> usize {
        s[from..]
            .char_indices()
            .find(|(_, c)| !pred(*c))
            .map_or(s.len(), |(i, _)| from + i)
    };
    let after_first = first.len_utf8();
    let (kind, end) = if is_connector(first) {
        (Word::Connector, take_while(after_first, &is_connector))
    } else if is_punct(first) {
        (Word::Punct, take_while(after_first, &is_punct))
    } else if first.is_uppercase() {
        let rest = &s[after_first..];
        match rest.chars().next() {
            None => (Word::UpperCase, after_first),
            Some(second) if second.is_uppercase() => {
                // A run of capitals; its last one starts the next word when a letter follows.
                let mut end = after_first;
                let mut prev_size = 0;
                for (i, c) in rest.char_indices() {
                    if !c.is_uppercase() {
                        break;
                    }
                    prev_size = c.len_utf8();
                    end = after_first + i + prev_size;
                }
                match s[end..].chars().next() {
                    Some(next) if is_alphabet(next) => (Word::UpperCase, end - prev_size),
                    _ => (Word::UpperCase, end),
                }
            }
            Some(second) if is_alphabet(second) => (
                Word::UpperCase,
                take_while(after_first, &|c| is_alphabet(c) && !c.is_uppercase()),
            ),
            Some(_) => (Word::UpperCase, after_first),
        }
    } else if is_alphabet(first) {
        (
            Word::Alphabet,
            take_while(after_first, &|c| is_alphabet(c) && !c.is_uppercase()),
        )
    } else if first.is_numeric() {
        (Word::Number, take_while(after_first, &char::is_numeric))
    } else {
        (
            Word::Other,
            take_while(after_first, &|c| {
                !(is_connector(c) || is_alphabet(c) || c.is_numeric() || is_punct(c))
            }),
        )
    };
    (kind, &s[..end], &s[end..])
}

/// xstrings.toLower: upper-case words and connector runs are rewritten, others kept.
fn to_lower(out: &mut String, kind: Word, word: &str, connector: char) {
    if kind != Word::UpperCase && kind != Word::Connector {
        out.push_str(word);
        return;
    }
    for c in word.chars() {
        if is_connector(c) {
            out.push(connector);
        } else if c.is_uppercase() {
            out.push(lower(c));
        } else {
            out.push(c);
        }
    }
}

/// xstrings.camelCaseToLowerCase.
pub fn camel_case_to_lower_case(s: &str, connector: char) -> String {
    if s.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let (mut wt, mut word, mut remaining) = next_word(s);
    while !remaining.is_empty() {
        if wt != Word::Connector {
            to_lower(&mut out, wt, word, connector);
        }
        let prev = wt;
        let last = word;
        (wt, word, remaining) = next_word(remaining);
        match prev {
            Word::Number => {
                while wt == Word::Alphabet || wt == Word::Number {
                    to_lower(&mut out, wt, word, connector);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != Word::Invalid && wt != Word::Punct && wt != Word::Connector {
                    out.push(connector);
                }
            }
            Word::Connector => to_lower(&mut out, prev, last, connector),
            Word::Punct => {}
            _ => {
                if wt != Word::Number {
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(connector);
                    }
                    continue;
                }
                if remaining.is_empty() {
                    continue;
                }
                let number = word;
                (wt, word, remaining) = next_word(remaining);
                if wt != Word::Alphabet {
                    to_lower(&mut out, Word::Number, number, connector);
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(connector);
                    }
                    continue;
                }
                out.push(connector);
                to_lower(&mut out, Word::Number, number, connector);
                while wt == Word::Alphabet || wt == Word::Number {
                    to_lower(&mut out, wt, word, connector);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != Word::Invalid && wt != Word::Connector && wt != Word::Punct {
                    out.push(connector);
                }
            }
        }
    }
    to_lower(&mut out, wt, word, connector);
    out
}

/// goutils.SwapCase: a lower-case letter after whitespace becomes title case.
fn swap_case(s: &str) -> String {
    let mut whitespace = true;
    s.chars()
        .map(|c| {
            if c.is_uppercase() {
                whitespace = false;
                lower(c)
            } else if c.is_lowercase() {
                whitespace = false;
                upper(c)
            } else {
                whitespace = c.is_whitespace();
                c
            }
        })
        .collect()
}

pub fn snakecase(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(camel_case_to_lower_case(string_arg(a, 0)?, '_')))
}

pub fn kebabcase(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(camel_case_to_lower_case(string_arg(a, 0)?, '-')))
}

pub fn camelcase(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(to_camel_case(string_arg(a, 0)?, true)))
}

pub fn swapcase(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(swap_case(string_arg(a, 0)?)))
}

/// goutils.Uncapitalize: the first letter after each whitespace is lower-cased.
pub fn untitle(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let mut next = true;
    let out: String = string_arg(a, 0)?
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                next = true;
                c
            } else if next {
                next = false;
                lower(c)
            } else {
                c
            }
        })
        .collect();
    Ok(Value::str(out))
}

/// goutils.Initials reads bytes, so a multi-byte first letter yields its first byte as a
/// Latin-1 character (`É` gives `Ã`), as Go does.
pub fn initials(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let mut out = String::new();
    let mut gap = true;
    for b in string_arg(a, 0)?.bytes() {
        let c = b as char;
        if c.is_whitespace() {
            gap = true;
        } else if gap {
            out.push(c);
            gap = false;
        }
    }
    Ok(Value::str(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xstrings_quirks() {
        assert_eq!(camel_case_to_lower_case("HTTPServer", '_'), "http_server");
        assert_eq!(camel_case_to_lower_case("k8s", '_'), "k_8s");
        assert_eq!(camel_case_to_lower_case("-JSONData", '_'), "_json_data");
        assert_eq!(to_camel_case("_", true), "__");
        assert_eq!(to_camel_case("http", true), "Http");
        assert_eq!(swap_case("Hello world"), "hELLO WORLD");
    }
}
