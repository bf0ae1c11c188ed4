//! Sprig's encodings and checksums: base64/base32 (decode errors come back as the output text,
//! as Sprig does), SHA-1/SHA-2 and Adler-32 as hex or decimal text, and URL parsing.

use base64::Engine;
use sha2::Digest;

use super::{CallContext, arity, string_arg};
use crate::value::{Map, Value};

type R = Result<Value, String>;

/// Decoded bytes as text. Go keeps invalid UTF-8 in its strings and shows each bad byte as
/// U+FFFD when printing them as text; a Rust string cannot hold them, so each is replaced here
/// (one U+FFFD per byte, where `from_utf8_lossy` would merge a broken sequence into one).
fn go_lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{fffd}');
                rest = &after[1..];
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn b64enc(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(
        base64::engine::general_purpose::STANDARD.encode(string_arg(a, 0)?),
    ))
}

pub fn b64dec(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    // Go's decoders skip line breaks.
    let s: String = string_arg(a, 0)?
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    let s = s.as_str();
    Ok(Value::str(
        match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(bytes) => go_lossy(&bytes),
            Err(e) => {
                // Go's CorruptInputError names the first byte outside the alphabet, else the
                // start of an incomplete final quantum.
                let alphabet =
                    |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
                let at = match e {
                    _ if s.find(|c| !alphabet(c)).is_some() => {
                        s.find(|c| !alphabet(c)).unwrap_or_default()
                    }
                    _ if !s.len().is_multiple_of(4) => s.len() / 4 * 4,
                    base64::DecodeError::InvalidByte(i, _)
                    | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                    base64::DecodeError::InvalidLength(n) => n / 4 * 4,
                    base64::DecodeError::InvalidPadding => s.find('=').unwrap_or(s.len()),
                };
                format!("illegal base64 data at input byte {at}")
            }
        },
    ))
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn b32enc(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let data = string_arg(a, 0)?.as_bytes();
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(B32[((bits >> (35 - i * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    Ok(Value::str(out))
}

pub fn b32dec(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let s: String = string_arg(a, 0)?
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    let mut bits = 0u64;
    let mut nbits = 0;
    let mut out = Vec::new();
    for (i, c) in s.bytes().enumerate() {
        if c == b'=' {
            break;
        }
        let Some(v) = B32.iter().position(|b| *b == c) else {
            return Ok(Value::str(format!("illegal base32 data at input byte {i}")));
        };
        bits = (bits << 5) | v as u64;
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Ok(Value::str(go_lossy(&out)))
}

/// SHA-1 (FIPS 180-4); small enough to carry instead of another crate.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

pub fn sha1sum(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(hex(&sha1(string_arg(a, 0)?.as_bytes()))))
}

pub fn sha256sum(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(hex(&sha2::Sha256::digest(
        string_arg(a, 0)?.as_bytes(),
    ))))
}

pub fn sha512sum(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(hex(&sha2::Sha512::digest(
        string_arg(a, 0)?.as_bytes(),
    ))))
}

pub fn adler32sum(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let (mut s1, mut s2) = (1u32, 0u32);
    for b in string_arg(a, 0)?.bytes() {
        s1 = (s1 + b as u32) % 65521;
        s2 = (s2 + s1) % 65521;
    }
    Ok(Value::str(((s2 << 16) | s1).to_string()))
}

/// Go's URL path unescaping (`%XX` only; escapes were validated before).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    go_lossy(&out)
}

/// Go's url.Parse, reduced to the fields Sprig's urlParse returns.
pub fn url_parse(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let input = string_arg(a, 0)?;
    // Go refuses a `%` not followed by two hex digits.
    let bytes = input.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                let escape: String = input[i..].chars().take(3).collect();
                return Err(format!(
                    "unable to parse url: parse {input:?}: invalid URL escape {escape:?}"
                ));
            }
        }
    }
    let mut rest = input;
    let mut fragment = "";
    if let Some((r, f)) = rest.split_once('#') {
        rest = r;
        fragment = f;
    }
    let mut query = "";
    if let Some((r, q)) = rest.split_once('?') {
        rest = r;
        query = q;
    }
    let mut scheme = "";
    if let Some(i) = rest.find(':')
        && rest[..i].chars().enumerate().all(|(n, c)| {
            c.is_ascii_alphabetic() || (n > 0 && (c.is_ascii_digit() || "+-.".contains(c)))
        })
        && i > 0
    {
        scheme = &rest[..i];
        rest = &rest[i + 1..];
    }
    let (mut userinfo, mut host, mut opaque) = ("", "", "");
    let path;
    if let Some(r) = rest.strip_prefix("//") {
        let end = r.find('/').unwrap_or(r.len());
        let authority = &r[..end];
        path = &r[end..];
        match authority.rsplit_once('@') {
            Some((u, h)) => {
                userinfo = u;
                host = h;
            }
            None => host = authority,
        }
    } else if !scheme.is_empty() && !rest.starts_with('/') {
        opaque = rest;
        path = "";
    } else {
        path = rest;
    }
    let hostname = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let hostname = hostname.trim_start_matches('[').trim_end_matches(']');
    let m = Map::new();
    for (k, v) in [
        ("scheme", scheme),
        ("host", host),
        ("hostname", hostname),
        ("path", &percent_decode(path)),
        ("query", query),
        ("opaque", opaque),
        ("fragment", &percent_decode(fragment)),
        ("userinfo", userinfo),
    ] {
        m.insert(k, Value::str(v));
    }
    Ok(Value::Map(m))
}

pub fn url_join(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let m = match &a[0] {
        Value::Map(m) => m.clone(),
        // Go's nil map: every part empty.
        _ => crate::value::Map::new(),
    };
    let get = |k: &str| {
        m.get(k)
            .map(|v| super::strings::strval(&v))
            .unwrap_or_default()
    };
    let mut out = String::new();
    let scheme = get("scheme");
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    let opaque = get("opaque");
    if !opaque.is_empty() {
        out.push_str(&opaque);
    } else {
        let host = get("host");
        let userinfo = get("userinfo");
        if !host.is_empty() || !scheme.is_empty() || !userinfo.is_empty() {
            out.push_str("//");
            if !userinfo.is_empty() {
                out.push_str(&userinfo);
                out.push('@');
            }
            out.push_str(&host);
        }
        let path = get("path");
        if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
            out.push('/');
        }
        out.push_str(&path);
    }
    let query = get("query");
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    let fragment = get("fragment");
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(&fragment);
    }
    Ok(Value::str(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_answer() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
