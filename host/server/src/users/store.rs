//! People and their personal tokens, in their own SQLite file beside the agents' store (`users.db` in the
//! data dir), so the agents' store stays as it is. Only a token's hash is kept.

use crate::token::TokenHash;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;
use tether_config::user_access::check_person_name;

/// The store file inside the data dir.
pub const USERS_FILE: &str = "users.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    groups_json TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS personal_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    hash TEXT NOT NULL UNIQUE,
    agent TEXT,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS personal_tokens_user ON personal_tokens(user_id);
";

/// A person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub groups: Vec<String>,
    pub created_at: i64,
}

/// A personal token as the store keeps it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonalToken {
    pub id: i64,
    pub user: String,
    /// The only agent the token reaches; `None`: any agent that grants its user.
    pub agent: Option<String>,
    pub description: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    #[error("user `{0}` exists already")]
    UserExists(String),
    #[error("no user named `{0}`")]
    NoSuchUser(String),
    #[error("no personal token with id {0}")]
    NoSuchToken(i64),
    #[error("{0}")]
    InvalidName(String),
    #[error("users store: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("users store: the task reading it failed: {0}")]
    Task(String),
    #[error("users store: cannot create {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug)]
pub struct UserStore {
    conn: Mutex<Connection>,
}

impl UserStore {
    pub fn open(path: &Path) -> Result<Self, UserStoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| UserStoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Self::init(Connection::open(path)?)
    }

    pub fn in_memory() -> Result<Self, UserStoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, UserStoreError> {
        // WAL lets the CLI issue tokens while the server reads.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn create_user(
        &self,
        name: &str,
        groups: &[String],
        now: i64,
    ) -> Result<User, UserStoreError> {
        check_person_name("user", name).map_err(UserStoreError::InvalidName)?;
        let mut groups = groups.to_vec();
        for group in &groups {
            check_person_name("group", group).map_err(UserStoreError::InvalidName)?;
        }
        groups.sort();
        groups.dedup();
        let json = serde_json::to_string(&groups).unwrap_or_else(|_| "[]".to_owned());
        let conn = self.conn();
        match conn.execute(
            "INSERT INTO users (name, groups_json, created_at) VALUES (?1, ?2, ?3)",
            params![name, json, now],
        ) {
            Ok(_) => Ok(User {
                id: conn.last_insert_rowid(),
                name: name.to_owned(),
                groups,
                created_at: now,
            }),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(UserStoreError::UserExists(name.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn user(&self, name: &str) -> Result<Option<User>, UserStoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, name, groups_json, created_at FROM users WHERE name = ?1",
                [name],
                user_row,
            )
            .optional()?)
    }

    pub fn users(&self) -> Result<Vec<User>, UserStoreError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare("SELECT id, name, groups_json, created_at FROM users ORDER BY name")?;
        let rows = statement.query_map([], user_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn create_token(
        &self,
        user: &str,
        hash: &TokenHash,
        agent: Option<&str>,
        description: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<PersonalToken, UserStoreError> {
        let found = self
            .user(user)?
            .ok_or_else(|| UserStoreError::NoSuchUser(user.to_owned()))?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO personal_tokens (user_id, hash, agent, description, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![found.id, hash.0, agent, description, now, expires_at],
        )?;
        Ok(PersonalToken {
            id: conn.last_insert_rowid(),
            user: user.to_owned(),
            agent: agent.map(str::to_owned),
            description: description.to_owned(),
            created_at: now,
            expires_at,
            revoked_at: None,
        })
    }

    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<PersonalToken>, UserStoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {TOKEN_COLUMNS} {TOKEN_FROM} WHERE (?1 IS NULL OR u.name = ?1) ORDER BY t.id"
        ))?;
        let rows = statement.query_map([user], token_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a token; revoking twice is not an error.
    pub fn revoke_token(&self, id: i64, now: i64) -> Result<PersonalToken, UserStoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE personal_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
        conn.query_row(
            &format!("SELECT {TOKEN_COLUMNS} {TOKEN_FROM} WHERE t.id = ?1"),
            [id],
            token_row,
        )
        .optional()?
        .ok_or(UserStoreError::NoSuchToken(id))
    }

    /// The person holding an unrevoked, unexpired token with this hash. Asked on every request, so a
    /// revoked or expired token is refused at once.
    pub fn authenticate(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> Result<Option<(User, PersonalToken)>, UserStoreError> {
        let conn = self.conn();
        let token = conn
            .query_row(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, u.id, u.groups_json, u.created_at {TOKEN_FROM} WHERE t.hash = ?1 AND t.revoked_at IS NULL AND t.expires_at > ?2"
                ),
                params![hash.0, now],
                |row| {
                    let token = token_row(row)?;
                    let user = User {
                        id: row.get(7)?,
                        name: token.user.clone(),
                        groups: groups(&row.get::<_, String>(8)?),
                        created_at: row.get(9)?,
                    };
                    Ok((user, token))
                },
            )
            .optional()?;
        Ok(token)
    }
}

const TOKEN_COLUMNS: &str =
    "t.id, u.name, t.agent, t.description, t.created_at, t.expires_at, t.revoked_at";
const TOKEN_FROM: &str = "FROM personal_tokens t JOIN users u ON u.id = t.user_id";

fn token_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PersonalToken> {
    Ok(PersonalToken {
        id: row.get(0)?,
        user: row.get(1)?,
        agent: row.get(2)?,
        description: row.get(3)?,
        created_at: row.get(4)?,
        expires_at: row.get(5)?,
        revoked_at: row.get(6)?,
    })
}

fn user_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        name: row.get(1)?,
        groups: groups(&row.get::<_, String>(2)?),
        created_at: row.get(3)?,
    })
}

fn groups(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::token;

    #[test]
    fn a_personal_token_works_until_revoked_or_expired() {
        let store = UserStore::in_memory().unwrap();
        let alice = store
            .create_user("alice", &["sre".into(), "dev".into(), "sre".into()], 10)
            .unwrap();
        assert_eq!(alice.groups, ["dev", "sre"]);
        assert!(matches!(
            store.create_user("alice", &[], 11),
            Err(UserStoreError::UserExists(_))
        ));
        assert!(matches!(
            store.create_user("Alice", &[], 11),
            Err(UserStoreError::InvalidName(_))
        ));
        let new = token::generate();
        let record = store
            .create_token("alice", &new.hash, Some("prod"), "laptop", 100, 10)
            .unwrap();
        let (user, found) = store.authenticate(&new.hash, 50).unwrap().unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["dev", "sre"]);
        assert_eq!(found.agent.as_deref(), Some("prod"));
        assert!(
            store.authenticate(&new.hash, 100).unwrap().is_none(),
            "expired"
        );
        store.revoke_token(record.id, 60).unwrap();
        assert!(
            store.authenticate(&new.hash, 61).unwrap().is_none(),
            "revoked"
        );
        assert_eq!(store.tokens(Some("alice")).unwrap()[0].revoked_at, Some(60));
        assert!(matches!(
            store.create_token("bob", &token::generate().hash, None, "", 100, 10),
            Err(UserStoreError::NoSuchUser(_))
        ));
    }
}
