//! Agent tokens: long random secrets with a recognisable prefix, shown once and stored only as a hash.
//!
//! 32 random bytes make guessing hopeless, so a plain sha256 is a sound hash (no salt or slow KDF
//! needed, unlike for passwords) and lets authentication find a token by its hash in one lookup. The
//! prefix lets secret scanners and people recognise a leaked token.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Every agent token starts with this.
pub const TOKEN_PREFIX: &str = "tthr_";
const SECRET_BYTES: usize = 32;
/// Prefix plus 64 hex digits.
const TOKEN_LEN: usize = TOKEN_PREFIX.len() + SECRET_BYTES * 2;

/// A freshly created token: the secret (to show once) and what the store keeps.
#[derive(Debug)]
pub struct NewToken {
    pub secret: SecretString,
    pub hash: TokenHash,
}

/// The sha256 of a token, hex-encoded: what the store keeps and looks tokens up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

/// Generates a new random token.
pub fn generate() -> NewToken {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    let secret = SecretString::from(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)));
    let hash = hash(&secret);
    NewToken { secret, hash }
}

/// Hash of a presented token.
pub fn hash(token: &SecretString) -> TokenHash {
    TokenHash(hex::encode(Sha256::digest(
        token.expose_secret().as_bytes(),
    )))
}

/// Whether `text` has the shape of a token; malformed ones are refused before touching the store.
pub fn well_formed(text: &str) -> bool {
    text.len() == TOKEN_LEN
        && text.starts_with(TOKEN_PREFIX)
        && text[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hashed() {
        let a = generate();
        let b = generate();
        assert!(a.secret.expose_secret().starts_with(TOKEN_PREFIX));
        assert!(well_formed(a.secret.expose_secret()));
        assert_ne!(a.secret.expose_secret(), b.secret.expose_secret());
        assert_eq!(a.hash, hash(&a.secret));
        assert_eq!(a.hash.0.len(), 64);
        assert!(
            !a.hash
                .0
                .contains(&a.secret.expose_secret()[TOKEN_PREFIX.len()..])
        );
        assert!(
            !format!("{a:?}").contains(&a.secret.expose_secret()[5..]),
            "Debug must not show the secret"
        );
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        assert!(!well_formed(""));
        assert!(!well_formed("tthr_abc"));
        assert!(!well_formed(&format!("xxxx_{}", "a".repeat(64))));
        assert!(!well_formed(&format!("tthr_{}", "G".repeat(64))));
        assert!(well_formed(&format!("tthr_{}", "0a".repeat(32))));
    }
}
