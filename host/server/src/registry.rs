//! What the server knows about connected agents, in memory: metadata from registration, the last
//! heartbeat, the last status report per manifest project, and the state of their configuration. The
//! durable part (names, tokens) is in the store.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// How often agents are asked to send a heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// An agent is shown as connected while its last heartbeat is younger than this.
pub const CONNECTED_WITHIN: Duration = Duration::from_secs(3 * 30);

#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentMeta {
    pub version: String,
    pub git_commit: String,
    pub pod_namespace: String,
    pub pod_name: String,
    pub kubernetes_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectError {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectStatus {
    pub project_id: String,
    pub commit_id: String,
    pub result: &'static str,
    pub message: String,
    pub errors: Vec<ObjectError>,
    pub applied: u32,
    pub unchanged: u32,
    pub pruned: u32,
    pub duration_ms: u64,
    pub reported_at: i64,
}

/// The configuration last sent to an agent, or the error of a newer, invalid one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigurationState {
    pub commit_id: Option<String>,
    pub file: Option<String>,
    /// Set while the latest commit's configuration is invalid (the previous one stays in force).
    pub error: Option<String>,
    /// The most recent invalid configuration's error, kept after a valid one follows.
    pub last_error: Option<String>,
    /// Why the agent refused the latest configuration it received (it keeps the previous one);
    /// `None` once it applies one.
    pub agent_error: Option<String>,
    /// The commit of the configuration the agent reports it runs with.
    pub applied_commit_id: Option<String>,
    /// What the agent accepted in that configuration but does not act on.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Connection {
    pub meta: AgentMeta,
    pub registered_at: Option<i64>,
    pub last_heartbeat: Option<i64>,
    pub projects: Vec<ProjectStatus>,
    pub configuration: ConfigurationState,
    /// Set when the server ended the agent's streams because its token was refused; cleared by the
    /// agent's next authenticated call.
    pub disconnected_at: Option<i64>,
}

impl Connection {
    pub fn connected(&self, now: i64) -> bool {
        self.disconnected_at.is_none()
            && self.last_heartbeat.is_some_and(|t| {
                now.saturating_sub(t)
                    <= i64::try_from(CONNECTED_WITHIN.as_secs()).unwrap_or(i64::MAX)
            })
    }
}

#[derive(Debug)]
pub struct Registry {
    agents: Mutex<HashMap<String, Connection>>,
    /// Bumped on every change, so observers (tests, a future UI push) wait for changes instead of polling.
    changes: watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            agents: Mutex::new(HashMap::new()),
            changes: watch::Sender::new(0),
        }
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A receiver that changes whenever any agent's state does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn with<R>(&self, agent: &str, f: impl FnOnce(&mut Connection) -> R) -> R {
        let result = {
            let mut agents = self
                .agents
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(agents.entry(agent.to_owned()).or_default())
        };
        self.changes.send_modify(|n| *n += 1);
        result
    }

    pub fn register(&self, agent: &str, meta: AgentMeta, now: i64) {
        self.with(agent, |c| {
            c.meta = meta;
            c.registered_at = Some(now);
            c.last_heartbeat = Some(now);
            c.disconnected_at = None;
        });
    }

    /// Records a heartbeat; false if the agent never registered with this server (it restarted),
    /// which tells the agent to register again.
    pub fn heartbeat(&self, agent: &str, now: i64) -> bool {
        self.with(agent, |c| {
            c.last_heartbeat = Some(now);
            c.disconnected_at = None;
            c.registered_at.is_some()
        })
    }

    /// The agent's token was refused on one of its streams: it is shown as disconnected until it
    /// authenticates again.
    pub fn disconnected(&self, agent: &str, now: i64) {
        self.with(agent, |c| c.disconnected_at = Some(now));
    }

    /// What the agent made of configuration `commit_id`: refused with `error`, or applied with
    /// `warnings`.
    pub fn configuration_reported(
        &self,
        agent: &str,
        commit_id: String,
        error: Option<String>,
        warnings: Vec<String>,
    ) {
        self.with(agent, |c| {
            c.configuration.warnings = warnings;
            match error {
                Some(error) => {
                    c.configuration.agent_error =
                        Some(format!("commit {commit_id}: refused by the agent: {error}"));
                }
                None => {
                    c.configuration.applied_commit_id = Some(commit_id);
                    c.configuration.agent_error = None;
                }
            }
        });
    }

    pub fn report(&self, agent: &str, statuses: Vec<ProjectStatus>, now: i64) {
        self.with(agent, |c| {
            c.last_heartbeat = Some(now);
            c.disconnected_at = None;
            for status in statuses {
                c.projects.retain(|p| p.project_id != status.project_id);
                c.projects.push(status);
            }
            c.projects.sort_by(|a, b| a.project_id.cmp(&b.project_id));
        });
    }

    pub fn configuration_sent(&self, agent: &str, commit_id: String, file: String) {
        self.with(agent, |c| {
            c.configuration.commit_id = Some(commit_id);
            c.configuration.file = Some(file);
            c.configuration.error = None;
        });
    }

    pub fn configuration_failed(&self, agent: &str, error: String) {
        self.with(agent, |c| {
            c.configuration.error = Some(error.clone());
            c.configuration.last_error = Some(error);
        });
    }

    pub fn get(&self, agent: &str) -> Option<Connection> {
        self.agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(agent)
            .cloned()
    }

    pub fn connected_count(&self, now: i64) -> usize {
        self.agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|c| c.connected(now))
            .count()
    }
}
