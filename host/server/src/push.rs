//! Push endpoints: Git hosts (GitLab, GitHub, Gitea) and anything that can sign a request (the generic
//! endpoint, used by `tether-server notify` in a git hook) wake a repository's pollers at once.
//!
//! Every endpoint is off until its secret file is configured; a request that fails verification gets
//! 401 without detail.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::path::Path;
use tether_config::server::Webhooks;

/// Header of the generic endpoint: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-tether-signature";

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot read secret file {path}: {source}")]
    Secret {
        path: String,
        source: std::io::Error,
    },
    #[error("secret file {path} is empty")]
    EmptySecret { path: String },
}

/// The secrets of the enabled endpoints.
#[derive(Debug, Default)]
pub struct PushSecrets {
    pub generic: Option<SecretString>,
    pub gitlab: Option<SecretString>,
    pub github: Option<SecretString>,
    pub gitea: Option<SecretString>,
}

impl PushSecrets {
    pub fn load(config: &Webhooks) -> Result<Self, PushError> {
        let read = |path: &Option<std::path::PathBuf>| path.as_deref().map(read_secret).transpose();
        Ok(Self {
            generic: read(&config.secret_file)?,
            gitlab: read(&config.gitlab_token_file)?,
            github: read(&config.github_secret_file)?,
            gitea: read(&config.gitea_secret_file)?,
        })
    }
}

/// Reads a secret file, dropping the trailing newline editors add.
pub fn read_secret(path: &Path) -> Result<SecretString, PushError> {
    let text = std::fs::read_to_string(path).map_err(|source| PushError::Secret {
        path: path.display().to_string(),
        source,
    })?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(PushError::EmptySecret {
            path: path.display().to_string(),
        });
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// `sha256=<hex>` for `body` (what the generic endpoint and GitHub expect).
pub fn sign(secret: &SecretString, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

fn mac(secret: &SecretString, body: &[u8]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("any key length");
    mac.update(body);
    mac
}

/// Checks a hex HMAC-SHA256 of `body` in constant time.
pub fn verify_hex(secret: &SecretString, body: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    mac(secret, body).verify_slice(&signature).is_ok()
}

/// Compares a shared token (GitLab's `X-Gitlab-Token`) in constant time.
pub fn token_matches(secret: &SecretString, presented: &str) -> bool {
    let (a, b) = (secret.expose_secret().as_bytes(), presented.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The names a push payload gives its repository (path and clone URLs), by host.
pub fn repository_names(kind: PushKind, payload: &serde_json::Value) -> Vec<String> {
    let at = |path: &[&str]| {
        path.iter()
            .try_fold(payload, |v, key| v.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let candidates = match kind {
        PushKind::Generic => vec![at(&["repository"])],
        PushKind::GitLab => vec![
            at(&["project", "path_with_namespace"]),
            at(&["project", "git_http_url"]),
            at(&["repository", "git_http_url"]),
            at(&["project", "http_url"]),
        ],
        PushKind::GitHub | PushKind::Gitea => vec![
            at(&["repository", "full_name"]),
            at(&["repository", "clone_url"]),
            at(&["repository", "git_url"]),
            at(&["repository", "html_url"]),
        ],
    };
    candidates.into_iter().flatten().collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    Generic,
    GitLab,
    GitHub,
    Gitea,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let secret = SecretString::from("s3cret".to_owned());
        let sig = sign(&secret, b"{}");
        assert!(sig.starts_with("sha256="));
        assert!(verify_hex(&secret, b"{}", &sig["sha256=".len()..]));
        assert!(!verify_hex(&secret, b"{ }", &sig["sha256=".len()..]));
        assert!(!verify_hex(
            &SecretString::from("other".to_owned()),
            b"{}",
            &sig["sha256=".len()..]
        ));
        assert!(!verify_hex(&secret, b"{}", "zz"));
        // GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
        let github = SecretString::from("It's a Secret to Everybody".to_owned());
        assert_eq!(
            sign(&github, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn tokens_compare_exactly() {
        let secret = SecretString::from("abc".to_owned());
        assert!(token_matches(&secret, "abc"));
        assert!(!token_matches(&secret, "abd"));
        assert!(!token_matches(&secret, "abcd"));
    }

    #[test]
    fn payloads_name_their_repository() {
        let gitlab = serde_json::json!({"project": {"path_with_namespace": "g/p", "git_http_url": "http://h/g/p.git"}});
        assert_eq!(
            repository_names(PushKind::GitLab, &gitlab),
            ["g/p", "http://h/g/p.git"]
        );
        let github = serde_json::json!({"repository": {"full_name": "o/r", "clone_url": "https://github.com/o/r.git"}});
        assert_eq!(
            repository_names(PushKind::GitHub, &github),
            ["o/r", "https://github.com/o/r.git"]
        );
        assert_eq!(
            repository_names(PushKind::Generic, &serde_json::json!({"repository": "x"})),
            ["x"]
        );
        assert!(repository_names(PushKind::Gitea, &serde_json::json!([1])).is_empty());
    }
}
