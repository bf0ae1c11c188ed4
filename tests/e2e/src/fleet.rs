//! The loop users deploy Tether for, assembled from its real parts for end-to-end tests and
//! benchmarks: a Git repository served over smart HTTP, tether-server mirroring it, and
//! tether-agents applying it to the local control plane. The tests themselves live in `tests/`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use secrecy::ExposeSecret;
use tether_agent::app::{AgentOptions, ModeFlag, RunningAgent};
use tether_server::RunningServer;
use tether_server::store::{SqliteStore, Store};
use tether_testkit::{GitServer, Repo, cluster};

/// A deadline for the cluster to reach a state; every wait returns as soon as it does.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The config repository, which is also the manifest project.
pub const REPO: &str = "platform/config";

/// A ConfigMap manifest with one key, `value`.
pub fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

/// The admin token of a fleet's server: every `/api/` read needs it.
pub const FLEET_ADMIN_TOKEN: &str = "e2e-fleet-admin-token";

/// A config repository, a server mirroring it over smart HTTP, and the agents connected to it.
#[derive(Debug)]
pub struct Fleet {
    _git: GitServer,
    pub repo: Repo,
    pub server: RunningServer,
    store: Arc<SqliteStore>,
    data: tempfile::TempDir,
}

impl Fleet {
    /// `agents`: (agent name, namespace it syncs `manifests/` into). Every agent's configuration
    /// names the same manifest project: this repository, whose first commit holds a ConfigMap
    /// `manifests/<name>.yaml` for each of `config_maps` (name, value).
    pub async fn start(agents: &[(&str, &str)], config_maps: &[(&str, &str)]) -> Result<Self> {
        Self::start_with(agents, config_maps, "").await
    }

    /// Like [`Fleet::start`], with `extra` appended to every agent's config.yaml; a non-empty
    /// `extra` (a `user_access` block) also turns on the server's people's listener, for requests
    /// through the tunnel (people in the users store of [`Fleet::data_dir`]).
    pub async fn start_with(
        agents: &[(&str, &str)],
        config_maps: &[(&str, &str)],
        extra: &str,
    ) -> Result<Self> {
        let git = GitServer::start()?;
        let repo = git.create_repo(REPO)?;
        for (agent, namespace) in agents {
            repo.write(
                &format!(".tether/agents/{agent}/config.yaml"),
                format!(
                    "gitops:\n  manifest_projects:\n    - id: {REPO}\n      default_namespace: {namespace}\n      paths:\n        - glob: 'manifests/**/*.yaml'\n{extra}"
                ),
            )?;
        }
        for (name, value) in config_maps {
            repo.write(&format!("manifests/{name}.yaml"), config_map(name, value))?;
        }
        repo.commit("first")?;

        let data = tempfile::tempdir()?;
        let admin_token_file = data.path().join("admin-token");
        std::fs::write(&admin_token_file, FLEET_ADMIN_TOKEN)?;
        let config = tether_config::server::parse_server_config(
            &format!(
                "data_dir: {}\nlisten: {{grpc: '127.0.0.1:0', http: '127.0.0.1:0'}}\n{}api: {{admin_token_file: {}}}\nrepositories:\n  - name: {REPO}\n    url: {}\n",
                data.path().display(),
                if extra.is_empty() {
                    ""
                } else {
                    "people: {listen: '127.0.0.1:0'}\n"
                },
                admin_token_file.display(),
                git.http_url(REPO)
            ),
            "server.yaml",
        )?;
        let store = Arc::new(SqliteStore::open(&data.path().join("tether.db"))?);
        for (agent, _) in agents {
            store.register_agent(agent, REPO, 0)?;
        }
        let server = tether_server::start(config, store.clone() as Arc<dyn Store>).await?;
        Ok(Self {
            _git: git,
            repo,
            server,
            store,
            data,
        })
    }

    /// Starts agent `name` with a fresh token, as the cluster's admin, its own objects in
    /// `namespace`.
    pub async fn agent(&self, name: &str, namespace: &str) -> Result<RunningAgent> {
        self.agent_with(name, namespace, |_| {}).await
    }

    /// Like [`Fleet::agent`], with the options changed by `adjust` before it starts.
    pub async fn agent_with(
        &self,
        name: &str,
        namespace: &str,
        adjust: impl FnOnce(&mut AgentOptions),
    ) -> Result<RunningAgent> {
        let token = tether_server::token::generate();
        self.store.create_token(name, &token.hash, "e2e", 3, 0)?;
        let token_file = self.data.path().join(format!("{name}-token"));
        std::fs::write(&token_file, token.secret.expose_secret())?;
        let mut options = AgentOptions {
            server: format!("http://{}", self.server.grpc_addr),
            token_file: Some(token_file),
            token: None,
            server_ca_file: None,
            insecure_plaintext: false,
            kubeconfig: Some(cluster().kubeconfig().to_owned()),
            namespace: namespace.to_owned(),
            pod_name: format!("{name}-0"),
            mode: ModeFlag::ClusterWide,
            namespaces: vec![],
            plugin_dir: None,
            cache_dir: None,
            work_dir: None,
            observability_addr: "127.0.0.1:0".parse()?,
            leader_election: true,
        };
        adjust(&mut options);
        let agent = tether_agent::app::start(options).await?;
        assert_eq!(agent.agent_name, name);
        Ok(agent)
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    /// Commits and tells the server at once, as a push hook would.
    pub fn push(&self, message: &str) -> Result<String> {
        let commit = self.repo.commit(message)?;
        assert!(self.server.context().sources.notify(REPO));
        Ok(commit)
    }

    /// The status agent `agent` reported for `commit`, once it has.
    pub async fn status_of(
        &self,
        agent: &str,
        commit: &str,
    ) -> Result<tether_server::registry::ProjectStatus> {
        self.status_where(agent, commit, |_| true).await
    }

    /// The first status agent `agent` reported for `commit` that satisfies `wanted`. A commit
    /// that also changes the agent's configuration can be reported twice: first by the worker
    /// still running with the old configuration, then by its replacement.
    pub async fn status_where(
        &self,
        agent: &str,
        commit: &str,
        wanted: impl Fn(&tether_server::registry::ProjectStatus) -> bool,
    ) -> Result<tether_server::registry::ProjectStatus> {
        let registry = &self.server.context().registry;
        let mut changes = registry.subscribe();
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                let status = registry.get(agent).and_then(|c| {
                    c.projects
                        .into_iter()
                        .find(|p| p.commit_id == commit && wanted(p))
                });
                if let Some(status) = status {
                    return Ok(status);
                }
                changes.changed().await?;
            }
        })
        .await;
        match found {
            Ok(result) => result,
            Err(_) => {
                let last = registry.get(agent).map(|c| c.projects);
                anyhow::bail!(
                    "no such status from {agent} for commit {commit} within {DEADLINE:?}; last: {last:?}"
                )
            }
        }
    }
}
