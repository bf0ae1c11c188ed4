//! The agent's whole `config.yaml` (`.tether/agents/<name>/config.yaml` or
//! `.gitlab/agents/<name>/config.yaml` in the config repository), parsed from untrusted text.
//!
//! ```yaml
//! gitops: {...}                      # see crate::gitops; GitLab's keys unchanged
//! mode: {scope: namespaced, namespaces: [apps, web]}   # or {scope: cluster}; omitted: the agent's flags
//! resource_inclusions: [{api_groups: ["", apps], kinds: ["*"]}]
//! resource_exclusions: [{api_groups: ["*"], kinds: [Secret]}]
//! plugins: [...]                     # see crate::plugins
//! drift: {mode: correct, interval: 5m}   # see crate::drift
//! prometheus: {url: "http://prometheus.monitoring.svc:9090"}
//! observability: {logging: {level: info, grpc_level: warn}}
//! # GitLab's keys for features Tether does not have: accepted, ignored, reported by name
//! ci_access: {...}
//! container_scanning: {...}
//! remote_development: {...}
//! flux: {...}
//! ```
//!
//! The repository's config can only narrow what the agent's own flags allow (mode, namespaces, kinds);
//! the agent enforces that when it applies a config. This module owns the syntax and the values; it
//! never reads files or the network.

pub use crate::drift::{DEFAULT_DRIFT_INTERVAL, Drift, MIN_DRIFT_INTERVAL};
use crate::gitops::{GitOps, check_dns_label};
use crate::plugins::Plugins;
pub use crate::prometheus::Prometheus;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;

/// GitLab kas refuses agent config files larger than this; so does Tether.
pub const MAX_CONFIG_FILE_SIZE: usize = 128 * 1024;
pub const DEFAULT_LOG_LEVEL: LogLevel = LogLevel::Info;
pub const DEFAULT_GRPC_LOG_LEVEL: LogLevel = LogLevel::Warn;

/// The agent's configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default)]
    pub gitops: GitOps,
    /// `None`: the bounds set by the agent's flags.
    #[serde(default)]
    pub mode: Option<AgentMode>,
    #[serde(default)]
    pub resource_inclusions: Vec<ResourceFilter>,
    #[serde(default)]
    pub resource_exclusions: Vec<ResourceFilter>,
    #[serde(default)]
    pub plugins: Plugins,
    #[serde(default)]
    pub drift: Drift,
    #[serde(default)]
    pub prometheus: Option<Prometheus>,
    #[serde(default)]
    pub observability: Observability,
    /// GitLab's keys for features Tether does not have. Accepted so that a GitLab agent config is a
    /// drop-in, never acted on, and reported by [`AgentConfig::gitlab_keys_ignored`] so nobody
    /// believes they are in force. Their content is kept as written and not checked.
    #[serde(default)]
    pub ci_access: Option<serde_yaml::Value>,
    #[serde(default)]
    pub container_scanning: Option<serde_yaml::Value>,
    #[serde(default)]
    pub remote_development: Option<serde_yaml::Value>,
    #[serde(default)]
    pub flux: Option<serde_yaml::Value>,
    /// Who may reach the cluster through the tunnel; `None`: nobody.
    #[serde(default)]
    pub user_access: Option<crate::user_access::UserAccess>,
}

impl AgentConfig {
    /// The GitLab keys set in this configuration that Tether accepts but does not act on, by their
    /// dotted path, in the order of GitLab's reference.
    pub fn gitlab_keys_ignored(&self) -> Vec<&'static str> {
        [
            ("ci_access", self.ci_access.is_some()),
            ("container_scanning", self.container_scanning.is_some()),
            ("remote_development", self.remote_development.is_some()),
            ("flux", self.flux.is_some()),
            (
                "observability.google_profiler",
                self.observability.google_profiler.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }

    /// Whether objects of `group`/`kind` are managed: included (everything when no inclusions are
    /// listed) and not excluded.
    pub fn manages(&self, group: &str, kind: &str) -> bool {
        let included = self.resource_inclusions.is_empty()
            || self
                .resource_inclusions
                .iter()
                .any(|f| f.matches(group, kind));
        included
            && !self
                .resource_exclusions
                .iter()
                .any(|f| f.matches(group, kind))
    }
}

/// Where the agent may create objects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AgentModeFields")]
pub enum AgentMode {
    /// Only in these namespaces (sorted, unique); cluster-scoped objects are refused.
    Namespaced { namespaces: Vec<String> },
    /// Anywhere in the cluster.
    ClusterWide,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentModeFields {
    scope: Scope,
    #[serde(default)]
    namespaces: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Scope {
    Namespaced,
    Cluster,
}

impl TryFrom<AgentModeFields> for AgentMode {
    type Error = String;

    fn try_from(f: AgentModeFields) -> Result<Self, String> {
        match f.scope {
            Scope::Cluster if f.namespaces.is_empty() => Ok(AgentMode::ClusterWide),
            Scope::Cluster => Err("mode: `namespaces` is only for `scope: namespaced`".to_owned()),
            Scope::Namespaced if f.namespaces.is_empty() => {
                Err("mode: `scope: namespaced` needs at least one entry in `namespaces`".to_owned())
            }
            Scope::Namespaced => {
                for ns in &f.namespaces {
                    check_dns_label(ns).map_err(|e| format!("mode.namespaces: {e}"))?;
                }
                let namespaces: BTreeSet<String> = f.namespaces.into_iter().collect();
                Ok(AgentMode::Namespaced {
                    namespaces: namespaces.into_iter().collect(),
                })
            }
        }
    }
}

/// API groups × kinds; `*` matches any. The core group is written `""`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ResourceFilterFields")]
pub struct ResourceFilter {
    pub api_groups: Vec<String>,
    pub kinds: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceFilterFields {
    api_groups: Vec<String>,
    kinds: Vec<String>,
}

impl TryFrom<ResourceFilterFields> for ResourceFilter {
    type Error = String;

    fn try_from(f: ResourceFilterFields) -> Result<Self, String> {
        if f.api_groups.is_empty() || f.kinds.is_empty() {
            return Err("a resource filter needs at least one entry in `api_groups` and in `kinds` (`*` for any)"
                .to_owned());
        }
        if let Some(kind) = f.kinds.iter().find(|k| k.is_empty()) {
            return Err(format!("resource filter kind `{kind}` is empty"));
        }
        Ok(ResourceFilter {
            api_groups: f.api_groups,
            kinds: f.kinds,
        })
    }
}

impl ResourceFilter {
    pub fn matches(&self, group: &str, kind: &str) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        any(&self.api_groups, group) && any(&self.kinds, kind)
    }
}

/// `observability:` — GitLab's keys.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observability {
    #[serde(default)]
    pub logging: Logging,
    /// GitLab's Google Cloud Profiler settings: accepted, not acted on (see
    /// [`AgentConfig::gitlab_keys_ignored`]).
    #[serde(default)]
    pub google_profiler: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    #[serde(default = "default_log_level")]
    pub level: LogLevel,
    #[serde(default = "default_grpc_log_level")]
    pub grpc_level: LogLevel,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: DEFAULT_LOG_LEVEL,
            grpc_level: DEFAULT_GRPC_LOG_LEVEL,
        }
    }
}

fn default_log_level() -> LogLevel {
    DEFAULT_LOG_LEVEL
}

fn default_grpc_log_level() -> LogLevel {
    DEFAULT_GRPC_LOG_LEVEL
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// A configuration file that could not be accepted: where, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AgentConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the offending key (`gitops.manifest_projects[0].ref`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for AgentConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Parses and validates an agent configuration file. `file` names it in errors (its path in the
/// repository). An empty file is a valid, empty configuration, as in GitLab.
pub fn parse_agent_config(text: &str, file: &str) -> Result<AgentConfig, AgentConfigError> {
    if text.len() > MAX_CONFIG_FILE_SIZE {
        return Err(AgentConfigError {
            file: file.to_owned(),
            line: None,
            column: None,
            key: None,
            message: format!(
                "the file is {} bytes; the limit for a configuration file is {} KiB",
                text.len(),
                MAX_CONFIG_FILE_SIZE / 1024
            ),
        });
    }
    if text.trim().is_empty() {
        return Ok(AgentConfig::default());
    }
    parse_yaml::<Option<AgentConfig>>(text, file).map(Option::unwrap_or_default)
}

/// Deserializes untrusted YAML, turning a failure into an error with file, line, column and the dotted
/// path of the offending key.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, AgentConfigError> {
    if let Err(refused) = crate::yaml::check_limits(text, file, usize::MAX) {
        return Err(AgentConfigError {
            file: file.to_owned(),
            line: refused.line(),
            column: refused.column(),
            key: None,
            message: format!(
                "YAML nested more than {} levels deep",
                crate::yaml::MAX_DEPTH
            ),
        });
    }
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        yaml_error(text, file, (path != ".").then_some(path), e.inner())
    })
}

/// Builds the error from serde_yaml's message (`path: message at line L column C`). serde_yaml places
/// errors raised while validating a value at the start of the enclosing mapping, so the line is moved
/// forward to where the offending key is written.
fn yaml_error(
    text: &str,
    file: &str,
    key: Option<String>,
    e: &serde_yaml::Error,
) -> AgentConfigError {
    let location = e.location();
    let mut message = e.to_string();
    if let Some(loc) = &location {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    // serde_yaml prefixes errors below the top level with its own (shorter) path, then `: `.
    if let Some((path, rest)) = message.split_once(": ")
        && !path.is_empty()
        && !path.contains([' ', '`'])
    {
        message = rest.to_owned();
    }
    let mut line = location.as_ref().map(|l| l.line());
    let mut column = location.as_ref().map(|l| l.column());
    let last_key = key
        .as_deref()
        .and_then(|k| k.rsplit('.').next())
        .filter(|k| !k.ends_with(']') && !k.is_empty());
    if let (Some(start), Some(last)) = (line, last_key)
        && let Some((found, col)) = find_key(text, start, last)
    {
        line = Some(found);
        column = Some(col);
    }
    AgentConfigError {
        file: file.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// The first place at or after line `from` (1-based) where `key:` is written as a key; 1-based line and
/// column.
fn find_key(text: &str, from: usize, key: &str) -> Option<(usize, usize)> {
    let needle = format!("{key}:");
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find_map(|(i, line)| {
            line.match_indices(&needle).find_map(|(at, _)| {
                let before = line[..at].chars().next_back();
                matches!(
                    before,
                    None | Some(' ' | '{' | ',' | '-' | '\t' | '"' | '\'')
                )
                .then_some((i + 1, at + 1))
            })
        })
}

#[cfg(test)]
mod tests;
