//! The server's durable state: agents and their tokens. One trait, [`Store`], so the embedded SQLite
//! store can be joined by a PostgreSQL one for replicated servers; nothing outside this module knows
//! which is in use.
//!
//! The store never sees a token's secret, only its hash.

mod sqlite;

pub use sqlite::SqliteStore;

use crate::token::TokenHash;
use serde::Serialize;
use std::sync::Arc;

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub id: i64,
    pub name: String,
    /// The repository (a name from the server config) holding `.tether/agents/<name>/config.yaml`.
    pub config_repository: String,
    pub created_at: i64,
}

/// A token as the store keeps it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: i64,
    pub agent: String,
    pub description: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("agent `{0}` is already registered")]
    AgentExists(String),
    #[error("no agent named `{0}`")]
    NoSuchAgent(String),
    #[error("no token with id {0}")]
    NoSuchToken(i64),
    #[error("agent `{agent}` already has {active} active tokens (the limit); revoke one first")]
    TooManyTokens { agent: String, active: u32 },
    #[error(
        "agent name `{0}` is invalid: use lower-case letters, digits and `-`, at most 63 characters"
    )]
    InvalidName(String),
    #[error("store: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("store: cannot create {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("store: the call did not finish: {0}")]
    Worker(String),
}

/// What the store knows about a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLookup {
    /// An unrevoked token, and its agent.
    Active(Agent, TokenRecord),
    /// A token the store issued and that is revoked: its holder is known, it just may not call.
    Revoked,
    /// No token with that hash was ever issued.
    Unknown,
}

/// Agents and tokens. Calls are short (one indexed lookup or write) but may wait for the disk or another
/// process's lock, so async code makes them through [`blocking`].
pub trait Store: Send + Sync + std::fmt::Debug {
    fn register_agent(
        &self,
        name: &str,
        config_repository: &str,
        now: i64,
    ) -> Result<Agent, StoreError>;
    fn agent(&self, name: &str) -> Result<Option<Agent>, StoreError>;
    fn agents(&self) -> Result<Vec<Agent>, StoreError>;
    /// Stores a new token for `agent` unless it already has `max_active` unrevoked tokens.
    fn create_token(
        &self,
        agent: &str,
        hash: &TokenHash,
        description: &str,
        max_active: u32,
        now: i64,
    ) -> Result<TokenRecord, StoreError>;
    /// Tokens of one agent, or of all agents.
    fn tokens(&self, agent: Option<&str>) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes a token; revoking twice is not an error.
    fn revoke_token(&self, id: i64, now: i64) -> Result<TokenRecord, StoreError>;
    /// Whether a token with this hash is active (then with its agent, and the use recorded), revoked or
    /// unknown.
    fn authenticate(&self, hash: &TokenHash, now: i64) -> Result<TokenLookup, StoreError>;
    /// Whether token `id` is still unrevoked (long streams ask before each message).
    fn token_active(&self, id: i64) -> Result<bool, StoreError>;
}

/// Runs `call` on the store from async code, on the blocking pool: a store call may wait for the disk or
/// a lock, and must not hold up the runtime's workers (every stream and call of the server) meanwhile.
pub async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    call: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(store.as_ref()))
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
}

/// Agent names appear in paths (`.tether/agents/<name>/`), metrics and Kubernetes objects.
pub fn valid_agent_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
