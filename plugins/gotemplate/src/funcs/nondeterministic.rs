//! Sprig functions whose result is not a function of their arguments: randomness, key
//! generation and DNS. Randomness works (a chart may need a random password) but every use is
//! recorded so the renderer can warn that output will differ between runs. Key generation and
//! DNS are errors: the sandbox has no crypto-grade key generation or network.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use base64::Engine;

use super::{CallContext, arity, int_arg, record, string_arg};
use crate::value::Value;

type R = Result<Value, String>;

/// splitmix64 seeded from the process's hash seed (OS randomness, even under WASI).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        Rng(RandomState::new().build_hasher().finish())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn random_from(ctx: &mut CallContext, a: &[Value], name: &'static str, alphabet: &[u8]) -> R {
    arity(a, 1)?;
    record(ctx, name);
    let n = int_arg(a, 0)?.max(0) as usize;
    let mut rng = Rng::new();
    let s: String = (0..n)
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char)
        .collect();
    Ok(Value::str(s))
}

const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const NUM: &[u8] = b"0123456789";

pub fn rand_alpha_num(ctx: &mut CallContext, a: &[Value]) -> R {
    let alphabet: Vec<u8> = ALPHA.iter().chain(NUM).copied().collect();
    random_from(ctx, a, "randAlphaNum", &alphabet)
}

pub fn rand_alpha(ctx: &mut CallContext, a: &[Value]) -> R {
    random_from(ctx, a, "randAlpha", ALPHA)
}

pub fn rand_numeric(ctx: &mut CallContext, a: &[Value]) -> R {
    random_from(ctx, a, "randNumeric", NUM)
}

pub fn rand_ascii(ctx: &mut CallContext, a: &[Value]) -> R {
    let alphabet: Vec<u8> = (32u8..=126).collect();
    random_from(ctx, a, "randAscii", &alphabet)
}

pub fn rand_bytes(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    record(ctx, "randBytes");
    let n = int_arg(a, 0)?.max(0) as usize;
    let mut rng = Rng::new();
    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    Ok(Value::str(
        base64::engine::general_purpose::STANDARD.encode(bytes),
    ))
}

pub fn rand_int(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    record(ctx, "randInt");
    let min = int_arg(a, 0)?;
    let max = int_arg(a, 1)?;
    if max <= min {
        return Err("invalid argument to Intn".into());
    }
    Ok(Value::Int(
        min + Rng::new().below((max - min) as u64) as i64,
    ))
}

pub fn uuidv4(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 0)?;
    record(ctx, "uuidv4");
    let mut rng = Rng::new();
    let mut b = [0u8; 16];
    for chunk in b.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(Value::str(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )))
}

pub fn shuffle(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    record(ctx, "shuffle");
    let mut chars: Vec<char> = string_arg(a, 0)?.chars().collect();
    let mut rng = Rng::new();
    for i in (1..chars.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        chars.swap(i, j);
    }
    Ok(Value::str(chars.into_iter().collect::<String>()))
}

pub fn unsupported(_: &mut CallContext, _: &[Value]) -> R {
    Err("not supported in the sandboxed template engine (key and certificate generation, password hashing and encryption need the host's crypto)".into())
}

pub fn get_host_by_name(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Err(format!(
        "cannot resolve {:?}: the renderer has no network access",
        a[0].go_string()
    ))
}
