//! `tether-server`'s own configuration: one YAML file (see docs/SERVER.md for every key).
//!
//! ```yaml
//! data_dir: /var/lib/tether-server          # store and repository mirrors; default ./tether-data
//! listen: {grpc: "0.0.0.0:8150", http: "0.0.0.0:8151"}   # default: loopback only
//! tls: {cert_file: /etc/tether/tls.crt, key_file: /etc/tether/tls.key}
//! poll_interval: 300s
//! fetch_timeout: 120s
//! repositories:
//!   - name: platform/config
//!     path: /srv/git/platform/config.git    # a local repository, bare or not, or
//!   - name: platform/apps
//!     url: https://git.example.com/platform/apps.git
//!     username: tether
//!     password_file: /etc/tether/git-password
//!     poll_interval: 60s
//! grants:
//!   - agent: prod
//!     repositories: [platform/apps]
//! webhooks:
//!   secret_file: /etc/tether/webhook-secret
//! ```
//!
//! Paths are taken as written; relative paths are relative to the server's working directory. Secrets are
//! never in this file, only the names of files holding them.

use crate::agent::AgentConfigError;
use crate::duration::GoDuration;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the store and the mirrors live when `data_dir` is not set.
pub const DEFAULT_DATA_DIR: &str = "tether-data";
/// gRPC for agents (GitLab kas listens for agents on 8150). Loopback by default: listening on other
/// addresses needs `tls`, so that choice is the operator's.
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:8150";
/// HTTP API, push endpoints, metrics and health; loopback by default for the same reason.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8151";
/// How often each (repository, ref) is polled when no push event wakes it (GitLab kas polls every 300 s).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(300);
/// Polling faster than this would turn the server into a load generator for the Git host.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest a fetch from a remote may take before it is interrupted: a Git host that accepts the
/// connection and then says nothing must not stall the poller forever.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// A fetch needs at least a round trip or two; shorter timeouts would fail every fetch.
pub const MIN_FETCH_TIMEOUT: Duration = Duration::from_millis(100);
/// Active tokens one agent may hold at a time: enough to rotate without downtime.
pub const DEFAULT_MAX_TOKENS_PER_AGENT: u32 = 3;
/// Failed authentications per minute with one refused token (or, for tokens the server does not know,
/// from one source address) before further attempts are refused without a lookup.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 20;

/// The server's configuration, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub tls: Option<Tls>,
    #[serde(default = "default_poll_interval", deserialize_with = "poll_interval")]
    pub poll_interval: Duration,
    #[serde(default = "default_fetch_timeout", deserialize_with = "fetch_timeout")]
    pub fetch_timeout: Duration,
    #[serde(default)]
    pub max_tokens_per_agent: MaxTokens,
    #[serde(default)]
    pub auth_failures_per_minute: AuthFailures,
    #[serde(default)]
    pub repositories: Repositories,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub webhooks: Webhooks,
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub people: Option<People>,
}

/// `people:` — the HTTP listener for people (the Kubernetes API proxy through the agents' tunnels and
/// the user administration), apart from the agents' listener. Off when unset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct People {
    pub listen: SocketAddr,
    /// How many Prometheus requests (`/api/v1/agents/NAME/prometheus/...`) one person may make.
    #[serde(default)]
    pub prometheus: PrometheusRate,
    /// Its own certificate; without it the server's `tls`, and without either plaintext (loopback
    /// only). kubectl sends a token only over HTTPS, so the proxy needs one of the two to serve it.
    #[serde(default)]
    pub tls: Option<Tls>,
}

/// `people.prometheus:` — a token bucket per user: `burst` requests at once, refilled at
/// `queries_per_minute`. A dashboard of twenty panels refreshing every 10 s asks 120 a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusRate {
    #[serde(default = "default_prometheus_per_minute")]
    pub queries_per_minute: u32,
    #[serde(default = "default_prometheus_burst")]
    pub burst: u32,
}

pub const DEFAULT_PROMETHEUS_PER_MINUTE: u32 = 600;
pub const DEFAULT_PROMETHEUS_BURST: u32 = 60;

fn default_prometheus_per_minute() -> u32 {
    DEFAULT_PROMETHEUS_PER_MINUTE
}

fn default_prometheus_burst() -> u32 {
    DEFAULT_PROMETHEUS_BURST
}

impl Default for PrometheusRate {
    fn default() -> Self {
        PrometheusRate {
            queries_per_minute: DEFAULT_PROMETHEUS_PER_MINUTE,
            burst: DEFAULT_PROMETHEUS_BURST,
        }
    }
}

/// `api:` — access to the HTTP API's agent, token and source endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// File holding the admin bearer token. Every `/api/v1/` endpoint but the push endpoints requires
    /// `Authorization: Bearer <token>`; without this file nobody can use them (401).
    pub admin_token_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: default_data_dir(),
            listen: Listen::default(),
            tls: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            max_tokens_per_agent: MaxTokens::default(),
            auth_failures_per_minute: AuthFailures::default(),
            repositories: Repositories::default(),
            grants: Vec::new(),
            webhooks: Webhooks::default(),
            api: Api::default(),
            people: None,
        }
    }
}

impl ServerConfig {
    /// Whether `agent` may read `repository` by grant (its own config repository is always readable).
    pub fn granted(&self, agent: &str, repository: &str) -> bool {
        self.grants.iter().any(|g| {
            (g.agent == agent || g.agent == "*")
                && g.repositories.iter().any(|r| r == repository || r == "*")
        })
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}

fn default_poll_interval() -> Duration {
    DEFAULT_POLL_INTERVAL
}

fn default_fetch_timeout() -> Duration {
    DEFAULT_FETCH_TIMEOUT
}

fn fetch_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let timeout = GoDuration::deserialize(d)?.get();
    if timeout < MIN_FETCH_TIMEOUT {
        return Err(serde::de::Error::custom(format!(
            "fetch_timeout {}ms is shorter than the minimum of {}ms",
            timeout.as_millis(),
            MIN_FETCH_TIMEOUT.as_millis()
        )));
    }
    Ok(timeout)
}

fn poll_interval<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let interval = GoDuration::deserialize(d)?.get();
    check_poll_interval(interval).map_err(serde::de::Error::custom)?;
    Ok(interval)
}

fn check_poll_interval(interval: Duration) -> Result<(), String> {
    if interval < MIN_POLL_INTERVAL {
        Err(format!(
            "poll_interval {}ms is shorter than the minimum of {}ms",
            interval.as_millis(),
            MIN_POLL_INTERVAL.as_millis()
        ))
    } else {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct MaxTokens(pub u32);

impl Default for MaxTokens {
    fn default() -> Self {
        MaxTokens(DEFAULT_MAX_TOKENS_PER_AGENT)
    }
}

impl TryFrom<u32> for MaxTokens {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        if (1..=20).contains(&n) {
            Ok(MaxTokens(n))
        } else {
            Err(format!("max_tokens_per_agent {n} must be between 1 and 20"))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct AuthFailures(pub u32);

impl Default for AuthFailures {
    fn default() -> Self {
        AuthFailures(DEFAULT_AUTH_FAILURES_PER_MINUTE)
    }
}

impl TryFrom<u32> for AuthFailures {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        if n >= 1 {
            Ok(AuthFailures(n))
        } else {
            Err("auth_failures_per_minute must be at least 1".to_owned())
        }
    }
}

/// `listen:` — addresses of the two servers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    #[serde(default = "default_grpc")]
    pub grpc: SocketAddr,
    #[serde(default = "default_http")]
    pub http: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            grpc: default_grpc(),
            http: default_http(),
        }
    }
}

#[allow(clippy::expect_used)] // constants, checked by a unit test
fn default_grpc() -> SocketAddr {
    DEFAULT_GRPC_LISTEN.parse().expect("valid default address")
}

#[allow(clippy::expect_used)]
fn default_http() -> SocketAddr {
    DEFAULT_HTTP_LISTEN.parse().expect("valid default address")
}

/// `tls:` — the server's certificate (PEM files), for the gRPC listener and for the HTTP listener when
/// that is not on a loopback address. Without it the server speaks plaintext, which it allows only on
/// loopback addresses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The repositories; names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<Repository>")]
pub struct Repositories(Vec<Repository>);

impl Repositories {
    pub fn iter(&self) -> std::slice::Iter<'_, Repository> {
        self.0.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Repository> {
        self.0.iter().find(|r| r.name == name)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<Repository>> for Repositories {
    type Error = String;
    fn try_from(repos: Vec<Repository>) -> Result<Self, String> {
        let mut seen = BTreeSet::new();
        for repo in &repos {
            if !seen.insert(repo.name.as_str()) {
                return Err(format!("repository `{}` is defined twice", repo.name));
            }
        }
        Ok(Repositories(repos))
    }
}

/// One repository the server reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RepositoryFields")]
pub struct Repository {
    /// What agent configs and grants call it (`id` of a manifest project).
    pub name: String,
    pub source: RepositorySource,
    /// Overrides the server's `poll_interval`.
    pub poll_interval: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositorySource {
    /// A repository on this machine (bare or with a work tree); read in place.
    Path(PathBuf),
    /// `http://`, `https://` or `git://`; mirrored into the data dir.
    Url {
        url: String,
        username: Option<String>,
        /// File holding the password or access token for HTTP(S).
        password_file: Option<PathBuf>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepositoryFields {
    name: String,
    path: Option<PathBuf>,
    url: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    poll_interval: Option<GoDuration>,
}

impl TryFrom<RepositoryFields> for Repository {
    type Error = String;

    fn try_from(f: RepositoryFields) -> Result<Self, String> {
        let name = f.name;
        if name.is_empty()
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
            || name == "*"
        {
            return Err(format!(
                "repository name `{name}` must be non-empty, without spaces, and not `*`"
            ));
        }
        let source = match (f.path, f.url) {
            (Some(path), None) => {
                if f.username.is_some() || f.password_file.is_some() {
                    return Err(format!(
                        "repository `{name}`: `username`/`password_file` are for `url`, not `path`"
                    ));
                }
                RepositorySource::Path(path)
            }
            (None, Some(url)) => {
                let scheme_ok = ["http://", "https://", "git://"]
                    .iter()
                    .any(|s| url.starts_with(s));
                if !scheme_ok {
                    return Err(format!(
                        "repository `{name}`: url `{url}` must start with http://, https:// or git://"
                    ));
                }
                if f.password_file.is_some() && !url.starts_with("https://") {
                    // gix never sends a password in clear text, so this could only fail at the first fetch.
                    return Err(format!(
                        "repository `{name}`: `password_file` needs an https:// url (credentials are never sent in clear text)"
                    ));
                }
                RepositorySource::Url {
                    url,
                    username: f.username,
                    password_file: f.password_file,
                }
            }
            _ => {
                return Err(format!(
                    "repository `{name}`: set exactly one of `path` or `url`"
                ));
            }
        };
        let poll_interval = f.poll_interval.map(GoDuration::get);
        if let Some(interval) = poll_interval {
            check_poll_interval(interval).map_err(|e| format!("repository `{name}`: {e}"))?;
        }
        Ok(Repository {
            name,
            source,
            poll_interval,
        })
    }
}

/// `grants[]`: repositories an agent may read besides its config repository. `*` matches any agent or
/// repository.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub agent: String,
    pub repositories: Vec<String>,
}

/// `webhooks:` — secrets of the push endpoints, each in a file. An endpoint without its secret is off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    /// `POST /api/v1/push`: `X-Tether-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    pub secret_file: Option<PathBuf>,
    /// `POST /api/v1/push/gitlab`: compared with `X-Gitlab-Token`.
    pub gitlab_token_file: Option<PathBuf>,
    /// `POST /api/v1/push/github`: `X-Hub-Signature-256`.
    pub github_secret_file: Option<PathBuf>,
    /// `POST /api/v1/push/gitea`: `X-Gitea-Signature` (hex HMAC-SHA256).
    pub gitea_secret_file: Option<PathBuf>,
}

/// Parses the server's configuration file; `file` names it in errors. An empty file means all defaults.
pub fn parse_server_config(text: &str, file: &str) -> Result<ServerConfig, AgentConfigError> {
    if text.trim().is_empty() {
        return Ok(ServerConfig::default());
    }
    let config: ServerConfig = crate::agent::parse_yaml::<Option<ServerConfig>>(text, file)
        .map(Option::unwrap_or_default)?;
    for grant in &config.grants {
        for repo in &grant.repositories {
            if repo != "*" && config.repositories.get(repo).is_none() {
                return Err(AgentConfigError {
                    file: file.to_owned(),
                    line: None,
                    column: None,
                    key: Some("grants".to_owned()),
                    message: format!(
                        "agent `{}` is granted repository `{repo}`, which is not in `repositories`",
                        grant.agent
                    ),
                });
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = parse_server_config("", "server.yaml").unwrap();
        assert_eq!(c.listen.grpc.to_string(), DEFAULT_GRPC_LISTEN);
        assert_eq!(c.listen.http.to_string(), DEFAULT_HTTP_LISTEN);
        assert_eq!(c.poll_interval, DEFAULT_POLL_INTERVAL);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.max_tokens_per_agent.0, DEFAULT_MAX_TOKENS_PER_AGENT);
        assert_eq!(c.fetch_timeout, DEFAULT_FETCH_TIMEOUT);
        assert!(
            c.listen.grpc.ip().is_loopback() && c.listen.http.ip().is_loopback(),
            "nothing listens beyond this machine unless configured to"
        );
        let e = parse_server_config("fetch_timeout: 1ms\n", "s.yaml").unwrap_err();
        assert!(e.to_string().contains("fetch_timeout"), "{e}");
    }

    #[test]
    fn full_file_parses() {
        let c = parse_server_config(
            "data_dir: /var/lib/t\nlisten: {grpc: '127.0.0.1:1', http: '127.0.0.1:2'}\npoll_interval: 1s\n\
             repositories:\n  - {name: cfg, path: /srv/cfg.git}\n  - {name: apps, url: 'https://h/a.git', username: u, password_file: /p, poll_interval: 500ms}\n\
             grants:\n  - {agent: prod, repositories: [apps]}\n",
            "server.yaml",
        )
        .unwrap();
        assert_eq!(c.repositories.len(), 2);
        assert_eq!(
            c.repositories.get("apps").unwrap().poll_interval,
            Some(Duration::from_millis(500))
        );
        assert!(c.granted("prod", "apps"));
        assert!(!c.granted("prod", "cfg"));
        assert!(!c.granted("dev", "apps"));
    }

    #[test]
    fn mistakes_name_file_line_and_key() {
        let e = parse_server_config(
            "listen:\n  grpc: '127.0.0.1:1'\n  https: x\n",
            "server.yaml",
        )
        .unwrap_err();
        assert_eq!(e.file, "server.yaml");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().contains("unknown field `https`"), "{e}");

        let e = parse_server_config(
            "repositories:\n  - {name: a, path: /a, url: 'git://h/a'}\n",
            "s.yaml",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("exactly one of `path` or `url`"),
            "{e}"
        );

        let e = parse_server_config("poll_interval: 1ms\n", "s.yaml").unwrap_err();
        assert!(e.to_string().contains("minimum"), "{e}");

        let e = parse_server_config("grants: [{agent: a, repositories: [nope]}]\n", "s.yaml")
            .unwrap_err();
        assert!(e.to_string().contains("`nope`"), "{e}");

        let e = parse_server_config(
            "repositories: [{name: a, url: 'http://h/a', password_file: /p}]\n",
            "s.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs an https:// url"), "{e}");

        let e = parse_server_config("repositories: [{name: a, url: 'ssh://h/a'}]\n", "s.yaml")
            .unwrap_err();
        assert!(e.to_string().contains("must start with"), "{e}");
    }
}
