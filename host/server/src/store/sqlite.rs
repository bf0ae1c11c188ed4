//! The embedded store: one SQLite file in the data dir.

use super::{Agent, Store, StoreError, TokenLookup, TokenRecord, valid_agent_name};
use crate::token::TokenHash;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    config_repository TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    hash TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS tokens_agent ON tokens(agent_id);
";

/// SQLite behind a mutex: one connection, calls are short.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Self::init(Connection::open(path)?)
    }

    /// A store that lives in memory only (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        // WAL lets the CLI read while the server writes; a busy timeout rides out the writer's lock.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (statements are atomic).
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

const TOKEN_COLUMNS: &str =
    "t.id, a.name, t.description, t.created_at, t.last_used_at, t.revoked_at";
const TOKEN_FROM: &str = "FROM tokens t JOIN agents a ON a.id = t.agent_id";

fn token_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        agent: row.get(1)?,
        description: row.get(2)?,
        created_at: row.get(3)?,
        last_used_at: row.get(4)?,
        revoked_at: row.get(5)?,
    })
}

fn agent_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: row.get(0)?,
        name: row.get(1)?,
        config_repository: row.get(2)?,
        created_at: row.get(3)?,
    })
}

impl Store for SqliteStore {
    fn register_agent(
        &self,
        name: &str,
        config_repository: &str,
        now: i64,
    ) -> Result<Agent, StoreError> {
        if !valid_agent_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO agents (name, config_repository, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING",
            params![name, config_repository, now],
        )?;
        if inserted == 0 {
            return Err(StoreError::AgentExists(name.to_owned()));
        }
        Ok(Agent {
            id: conn.last_insert_rowid(),
            name: name.to_owned(),
            config_repository: config_repository.to_owned(),
            created_at: now,
        })
    }

    fn agent(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, name, config_repository, created_at FROM agents WHERE name = ?1",
                [name],
                agent_row,
            )
            .optional()?)
    }

    fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, name, config_repository, created_at FROM agents ORDER BY name")?;
        let agents = stmt.query_map([], agent_row)?.collect::<Result<_, _>>()?;
        Ok(agents)
    }

    fn create_token(
        &self,
        agent: &str,
        hash: &TokenHash,
        description: &str,
        max_active: u32,
        now: i64,
    ) -> Result<TokenRecord, StoreError> {
        let mut conn = self.conn();
        // Counting and inserting in one transaction keeps the limit under concurrent creations.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let agent_id: i64 = tx
            .query_row("SELECT id FROM agents WHERE name = ?1", [agent], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::NoSuchAgent(agent.to_owned()))?;
        let active: u32 = tx.query_row(
            "SELECT COUNT(*) FROM tokens WHERE agent_id = ?1 AND revoked_at IS NULL",
            [agent_id],
            |r| r.get(0),
        )?;
        if active >= max_active {
            return Err(StoreError::TooManyTokens {
                agent: agent.to_owned(),
                active,
            });
        }
        tx.execute(
            "INSERT INTO tokens (agent_id, hash, description, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![agent_id, hash.0, description, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(TokenRecord {
            id,
            agent: agent.to_owned(),
            description: description.to_owned(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        })
    }

    fn tokens(&self, agent: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {TOKEN_COLUMNS} {TOKEN_FROM} WHERE ?1 IS NULL OR a.name = ?1 ORDER BY t.id"
        ))?;
        let tokens = stmt
            .query_map([agent], token_row)?
            .collect::<Result<_, _>>()?;
        Ok(tokens)
    }

    fn revoke_token(&self, id: i64, now: i64) -> Result<TokenRecord, StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
        conn.query_row(
            &format!("SELECT {TOKEN_COLUMNS} {TOKEN_FROM} WHERE t.id = ?1"),
            [id],
            token_row,
        )
        .optional()?
        .ok_or(StoreError::NoSuchToken(id))
    }

    fn authenticate(&self, hash: &TokenHash, now: i64) -> Result<TokenLookup, StoreError> {
        let conn = self.conn();
        let found = conn
            .query_row(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, a.id, a.config_repository, a.created_at {TOKEN_FROM} WHERE t.hash = ?1"
                ),
                [&hash.0],
                |row| {
                    let token = token_row(row)?;
                    let agent = Agent {
                        id: row.get(6)?,
                        name: token.agent.clone(),
                        config_repository: row.get(7)?,
                        created_at: row.get(8)?,
                    };
                    Ok((agent, token))
                },
            )
            .optional()?;
        let Some((agent, mut token)) = found else {
            return Ok(TokenLookup::Unknown);
        };
        if token.revoked_at.is_some() {
            return Ok(TokenLookup::Revoked);
        }
        // Recording every use would write on every call; a minute's resolution is plenty.
        if token.last_used_at.is_none_or(|last| now - last >= 60) {
            conn.execute(
                "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
                params![token.id, now],
            )?;
            token.last_used_at = Some(now);
        }
        Ok(TokenLookup::Active(agent, token))
    }

    fn token_active(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT revoked_at IS NULL FROM tokens WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token;

    fn store_with_agent() -> SqliteStore {
        let store = SqliteStore::in_memory().unwrap();
        store.register_agent("prod", "config", 100).unwrap();
        store
    }

    #[test]
    fn agents_register_once_with_valid_names() {
        let store = store_with_agent();
        assert!(matches!(
            store.register_agent("prod", "other", 1),
            Err(StoreError::AgentExists(_))
        ));
        assert!(matches!(
            store.register_agent("Bad Name", "c", 1),
            Err(StoreError::InvalidName(_))
        ));
        assert_eq!(
            store.agent("prod").unwrap().unwrap().config_repository,
            "config"
        );
        assert_eq!(store.agents().unwrap().len(), 1);
        assert_eq!(store.agent("nope").unwrap(), None);
    }

    #[test]
    fn a_token_authenticates_until_revoked_and_records_its_use() {
        let store = store_with_agent();
        let new = token::generate();
        let record = store.create_token("prod", &new.hash, "ci", 3, 100).unwrap();
        assert_eq!(record.last_used_at, None);

        let TokenLookup::Active(agent, used) = store.authenticate(&new.hash, 200).unwrap() else {
            panic!("an unrevoked token is active");
        };
        assert_eq!(agent.name, "prod");
        assert_eq!(used.last_used_at, Some(200));
        assert_eq!(
            store.tokens(Some("prod")).unwrap()[0].last_used_at,
            Some(200)
        );
        assert!(store.token_active(record.id).unwrap());

        let revoked = store.revoke_token(record.id, 300).unwrap();
        assert_eq!(revoked.revoked_at, Some(300));
        assert_eq!(
            store.authenticate(&new.hash, 301).unwrap(),
            TokenLookup::Revoked
        );
        assert!(!store.token_active(record.id).unwrap());
        assert_eq!(
            store.revoke_token(record.id, 400).unwrap().revoked_at,
            Some(300),
            "revoking twice keeps the time"
        );
        assert!(matches!(
            store.revoke_token(999, 1),
            Err(StoreError::NoSuchToken(999))
        ));
        assert_eq!(
            store.authenticate(&token::generate().hash, 1).unwrap(),
            TokenLookup::Unknown
        );
    }

    #[test]
    fn active_tokens_per_agent_are_limited() {
        let store = store_with_agent();
        let ids: Vec<i64> = (0..2)
            .map(|_| {
                store
                    .create_token("prod", &token::generate().hash, "", 2, 1)
                    .unwrap()
                    .id
            })
            .collect();
        let err = store
            .create_token("prod", &token::generate().hash, "", 2, 1)
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TooManyTokens { active: 2, .. }),
            "{err}"
        );
        store.revoke_token(ids[0], 2).unwrap();
        store
            .create_token("prod", &token::generate().hash, "", 2, 3)
            .unwrap();
        assert!(matches!(
            store.create_token("nope", &token::generate().hash, "", 2, 1),
            Err(StoreError::NoSuchAgent(_))
        ));
    }

    #[test]
    fn the_store_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/tether.db");
        let new = token::generate();
        {
            let store = SqliteStore::open(&path).unwrap();
            store.register_agent("prod", "config", 1).unwrap();
            store.create_token("prod", &new.hash, "", 3, 1).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert!(matches!(
            store.authenticate(&new.hash, 2).unwrap(),
            TokenLookup::Active(..)
        ));
    }
}
