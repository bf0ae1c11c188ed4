//! Personal tokens: like agent tokens (32 random bytes, shown once, stored as sha256) but with their own
//! prefix, so a person's token can never pass for an agent's, and secret scanners tell them apart.

use crate::token::{NewToken, hash};
use secrecy::SecretString;

/// Every personal token starts with this (agent tokens: `tthr_`).
pub const PERSONAL_TOKEN_PREFIX: &str = "tthp_";
const SECRET_BYTES: usize = 32;
const TOKEN_LEN: usize = PERSONAL_TOKEN_PREFIX.len() + SECRET_BYTES * 2;
/// Tokens expire after this many days unless told otherwise.
pub const DEFAULT_EXPIRY_DAYS: u32 = 30;
/// No token lives longer than a year.
pub const MAX_EXPIRY_DAYS: u32 = 365;

pub fn generate() -> NewToken {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    let secret = SecretString::from(format!("{PERSONAL_TOKEN_PREFIX}{}", hex::encode(bytes)));
    let hash = hash(&secret);
    NewToken { secret, hash }
}

/// Whether `text` has the shape of a personal token; others are refused before touching the store.
pub fn well_formed(text: &str) -> bool {
    text.len() == TOKEN_LEN
        && text.starts_with(PERSONAL_TOKEN_PREFIX)
        && text[PERSONAL_TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// When a token made at `now` for `days` expires; `None` when `days` is out of range.
pub fn expiry(now: i64, days: u32) -> Option<i64> {
    (1..=MAX_EXPIRY_DAYS)
        .contains(&days)
        .then(|| now + i64::from(days) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn personal_tokens_are_not_agent_tokens() {
        let t = generate();
        assert!(well_formed(t.secret.expose_secret()));
        assert!(!crate::token::well_formed(t.secret.expose_secret()));
        let agent = crate::token::generate();
        assert!(!well_formed(agent.secret.expose_secret()));
        assert_eq!(expiry(0, 1), Some(86_400));
        assert_eq!(expiry(0, 0), None);
        assert_eq!(expiry(0, MAX_EXPIRY_DAYS + 1), None);
    }
}
