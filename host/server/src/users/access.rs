//! Who may use an agent: the `user_access` of the agent's configuration at the latest commit of its
//! config repository — the same file the agent runs with — read once per commit and cached.

use crate::configuration::config_paths;
use crate::context::Context;
use crate::sources::SourceKey;
use crate::store::Agent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_config::agent::parse_agent_config;
use tether_config::user_access::UserAccess;

/// How long a request waits for the server to read a config repository it has not read yet.
pub const FIRST_READ_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("cannot read the configuration of agent `{agent}` from `{repository}`: {why}")]
    Unreadable {
        agent: String,
        repository: String,
        why: String,
    },
    #[error(
        "the configuration of agent `{agent}` at commit {commit} is invalid, so it grants nobody: {why}"
    )]
    Invalid {
        agent: String,
        commit: String,
        why: String,
    },
}

type Cached = (gix::ObjectId, Result<Option<Arc<UserAccess>>, String>);

/// The `user_access` of each agent, by the commit it was read at.
#[derive(Debug, Default)]
pub struct AccessCache {
    by_agent: Mutex<HashMap<String, Cached>>,
}

impl AccessCache {
    /// The agent's `user_access` now; `None` when its configuration has none (nobody is granted).
    pub async fn user_access(
        &self,
        ctx: &Context,
        agent: &Agent,
    ) -> Result<Option<Arc<UserAccess>>, AccessError> {
        let unreadable = |why: String| AccessError::Unreadable {
            agent: agent.name.clone(),
            repository: agent.config_repository.clone(),
            why,
        };
        let mut state = ctx
            .sources
            .watch(SourceKey {
                repository: agent.config_repository.clone(),
                git_ref: None,
            })
            .map_err(|e| unreadable(e.to_string()))?;
        let commit = tokio::time::timeout(FIRST_READ_WAIT, async {
            loop {
                {
                    let current = state.borrow_and_update();
                    if let Some(commit) = current.commit {
                        return Ok(commit);
                    }
                    if let Some(error) = current.never_read() {
                        return Err(error.to_owned());
                    }
                }
                if state.changed().await.is_err() {
                    return Err("the server is shutting down".to_owned());
                }
            }
        })
        .await
        .map_err(|_| unreadable(format!("not read within {FIRST_READ_WAIT:?}")))?
        .map_err(unreadable)?;
        let cached = self
            .lock()
            .get(&agent.name)
            .filter(|(at, _)| *at == commit)
            .map(|(_, access)| access.clone());
        let access = match cached {
            Some(access) => access,
            None => {
                let access = self.read(ctx, agent, commit).await.map_err(unreadable)?;
                self.lock()
                    .insert(agent.name.clone(), (commit, access.clone()));
                access
            }
        };
        access.map_err(|why| AccessError::Invalid {
            agent: agent.name.clone(),
            commit: commit.to_string(),
            why,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.by_agent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Outer error: the repository could not be read; inner: the file is invalid.
    async fn read(
        &self,
        ctx: &Context,
        agent: &Agent,
        commit: gix::ObjectId,
    ) -> Result<Result<Option<Arc<UserAccess>>, String>, String> {
        for path in config_paths(&agent.name) {
            let content = ctx
                .sources
                .file_at(
                    &agent.config_repository,
                    commit,
                    &path,
                    tether_rpc::limits::MAX_CONFIG_FILE_SIZE,
                )
                .await
                .map_err(|e| e.to_string())?;
            if let Some(content) = content {
                let Ok(text) = String::from_utf8(content) else {
                    return Ok(Err(format!("{path}: not UTF-8 text")));
                };
                return Ok(parse_agent_config(&text, &path)
                    .map(|config| config.user_access.map(Arc::new))
                    .map_err(|e| e.to_string()));
            }
        }
        Ok(Ok(None))
    }
}
