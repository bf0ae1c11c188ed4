//! The loop users deploy Tether for, end to end: a commit in a real Git repository (served by
//! `git http-backend`), tether-server mirroring it, tether-agent applying it to the local control
//! plane — and the same for a change, a removal, and a broken commit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::wait::{Condition, await_condition};
use secrecy::ExposeSecret;
use tether_agent::app::{AgentOptions, ModeFlag, RunningAgent};
use tether_server::RunningServer;
use tether_server::store::{SqliteStore, Store};
use tether_testkit::{GitServer, Repo, cluster};

/// A deadline for the cluster to reach a state; every wait returns as soon as it does.
const DEADLINE: Duration = Duration::from_secs(60);
const REPO: &str = "platform/config";

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

struct Setup {
    _git: GitServer,
    repo: Repo,
    server: RunningServer,
    agent: RunningAgent,
    _data: tempfile::TempDir,
}

impl Setup {
    /// A config repository whose agent `prod` syncs `manifests/` into `namespace`, a server that
    /// mirrors it over smart HTTP, and an agent connected to that server.
    async fn start(namespace: &str) -> Result<Self> {
        let git = GitServer::start()?;
        let repo = git.create_repo(REPO)?;
        repo.write(
            ".tether/agents/prod/config.yaml",
            format!(
                "gitops:\n  manifest_projects:\n    - id: {REPO}\n      default_namespace: {namespace}\n      paths:\n        - glob: 'manifests/**/*.yaml'\n"
            ),
        )?;
        repo.write("manifests/a.yaml", config_map("a", "1"))?;
        repo.commit("first")?;

        let data = tempfile::tempdir()?;
        let config = tether_config::server::parse_server_config(
            &format!(
                "data_dir: {}\nlisten: {{grpc: '127.0.0.1:0', http: '127.0.0.1:0'}}\nrepositories:\n  - name: {REPO}\n    url: {}\n",
                data.path().display(),
                git.http_url(REPO)
            ),
            "server.yaml",
        )?;
        let store = Arc::new(SqliteStore::open(&data.path().join("tether.db"))?);
        store.register_agent("prod", REPO, 0)?;
        let token = tether_server::token::generate();
        store.create_token("prod", &token.hash, "e2e", 3, 0)?;
        let server = tether_server::start(config, store as Arc<dyn Store>).await?;

        let token_file = data.path().join("agent-token");
        std::fs::write(&token_file, token.secret.expose_secret())?;
        let agent = tether_agent::app::start(AgentOptions {
            server: format!("http://{}", server.grpc_addr),
            token_file: Some(token_file),
            token: None,
            server_ca_file: None,
            kubeconfig: Some(cluster().kubeconfig().to_owned()),
            namespace: namespace.to_owned(),
            pod_name: "tether-agent-0".into(),
            mode: ModeFlag::ClusterWide,
            namespaces: vec![],
            plugin_dir: None,
            cache_dir: None,
            observability_addr: "127.0.0.1:0".parse()?,
            leader_election: true,
        })
        .await?;
        assert_eq!(agent.agent_name, "prod");
        Ok(Self {
            _git: git,
            repo,
            server,
            agent,
            _data: data,
        })
    }

    /// Commits and tells the server at once, as a push hook would.
    fn push(&self, message: &str) -> Result<String> {
        let commit = self.repo.commit(message)?;
        assert!(self.server.context().sources.notify(REPO));
        Ok(commit)
    }

    /// The status the agent reported for `commit`, once it has.
    async fn status_of(&self, commit: &str) -> Result<tether_server::registry::ProjectStatus> {
        let registry = &self.server.context().registry;
        let mut changes = registry.subscribe();
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                let status = registry
                    .get("prod")
                    .and_then(|c| c.projects.into_iter().find(|p| p.commit_id == commit));
                if let Some(status) = status {
                    return Ok(status);
                }
                changes.changed().await?;
            }
        })
        .await;
        match found {
            Ok(result) => result,
            Err(_) => anyhow::bail!("no status for commit {commit} within {DEADLINE:?}"),
        }
    }

    async fn stop(self) {
        self.agent.shutdown().await;
        self.server.shutdown().await;
    }
}

async fn until(
    api: &Api<ConfigMap>,
    name: &str,
    condition: impl Condition<ConfigMap>,
) -> Result<()> {
    tokio::time::timeout(DEADLINE, await_condition(api.clone(), name, condition))
        .await
        .map_err(|_| anyhow::anyhow!("ConfigMap {name}: not reached within {DEADLINE:?}"))??;
    Ok(())
}

fn has_value(value: &'static str) -> impl Condition<ConfigMap> {
    move |cm: Option<&ConfigMap>| {
        cm.and_then(|c| c.data.as_ref())
            .and_then(|d| d.get("value"))
            .is_some_and(|v| v == value)
    }
}

fn gone(cm: Option<&ConfigMap>) -> bool {
    cm.is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_applied_updated_and_pruned() -> Result<()> {
    let ns = cluster().namespace("e2e-agent").await?;
    let setup = Setup::start(ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());

    until(&config_maps, "a", has_value("1")).await?;

    setup.repo.write("manifests/a.yaml", config_map("a", "2"))?;
    setup.repo.write("manifests/b.yaml", config_map("b", "1"))?;
    setup.push("change a, add b")?;
    until(&config_maps, "a", has_value("2")).await?;
    until(&config_maps, "b", has_value("1")).await?;

    setup.repo.remove("manifests/b.yaml")?;
    setup.push("remove b")?;
    until(&config_maps, "b", gone).await?;

    // A broken commit changes and prunes nothing, and says why; the next good one goes through.
    setup.repo.remove("manifests/a.yaml")?;
    setup
        .repo
        .write("manifests/broken.yaml", "kind: [unclosed\n")?;
    let broken = setup.push("break it")?;
    let status = setup.status_of(&broken).await?;
    assert_eq!(status.result, "failed", "{status:?}");
    assert!(status.message.contains("broken.yaml"), "{status:?}");
    let a = config_maps.get("a").await?;
    assert_eq!(a.data.unwrap()["value"], "2", "nothing applied or pruned");

    setup.repo.remove("manifests/broken.yaml")?;
    setup.repo.write("manifests/c.yaml", config_map("c", "1"))?;
    let fixed = setup.push("fix it")?;
    until(&config_maps, "c", has_value("1")).await?;
    until(&config_maps, "a", gone).await?;
    let status = setup.status_of(&fixed).await?;
    assert_eq!(status.result, "succeeded", "{status:?}");
    assert!(
        setup
            .agent
            .metrics
            .render()
            .contains("tether_agent_syncs_total{result=\"succeeded\"}"),
    );
    setup.stop().await;
    Ok(())
}
