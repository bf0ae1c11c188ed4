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

/// A config repository, a server mirroring it over smart HTTP, and the agents connected to it.
struct Fleet {
    _git: GitServer,
    repo: Repo,
    server: RunningServer,
    store: Arc<SqliteStore>,
    data: tempfile::TempDir,
}

impl Fleet {
    /// `agents`: (agent name, namespace it syncs `manifests/` into). Every agent's configuration
    /// names the same manifest project: this repository.
    async fn start(agents: &[(&str, &str)]) -> Result<Self> {
        let git = GitServer::start()?;
        let repo = git.create_repo(REPO)?;
        for (agent, namespace) in agents {
            repo.write(
                &format!(".tether/agents/{agent}/config.yaml"),
                format!(
                    "gitops:\n  manifest_projects:\n    - id: {REPO}\n      default_namespace: {namespace}\n      paths:\n        - glob: 'manifests/**/*.yaml'\n"
                ),
            )?;
        }
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
    async fn agent(&self, name: &str, namespace: &str) -> Result<RunningAgent> {
        let token = tether_server::token::generate();
        self.store.create_token(name, &token.hash, "e2e", 3, 0)?;
        let token_file = self.data.path().join(format!("{name}-token"));
        std::fs::write(&token_file, token.secret.expose_secret())?;
        let agent = tether_agent::app::start(AgentOptions {
            server: format!("http://{}", self.server.grpc_addr),
            token_file: Some(token_file),
            token: None,
            server_ca_file: None,
            kubeconfig: Some(cluster().kubeconfig().to_owned()),
            namespace: namespace.to_owned(),
            pod_name: format!("{name}-0"),
            mode: ModeFlag::ClusterWide,
            namespaces: vec![],
            plugin_dir: None,
            cache_dir: None,
            observability_addr: "127.0.0.1:0".parse()?,
            leader_election: true,
        })
        .await?;
        assert_eq!(agent.agent_name, name);
        Ok(agent)
    }

    /// Commits and tells the server at once, as a push hook would.
    fn push(&self, message: &str) -> Result<String> {
        let commit = self.repo.commit(message)?;
        assert!(self.server.context().sources.notify(REPO));
        Ok(commit)
    }

    /// The status agent `agent` reported for `commit`, once it has.
    async fn status_of(
        &self,
        agent: &str,
        commit: &str,
    ) -> Result<tether_server::registry::ProjectStatus> {
        let registry = &self.server.context().registry;
        let mut changes = registry.subscribe();
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                let status = registry
                    .get(agent)
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
            Err(_) => {
                anyhow::bail!("no status from {agent} for commit {commit} within {DEADLINE:?}")
            }
        }
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
    let fleet = Fleet::start(&[("prod", ns.name())]).await?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());

    until(&config_maps, "a", has_value("1")).await?;

    fleet.repo.write("manifests/a.yaml", config_map("a", "2"))?;
    fleet.repo.write("manifests/b.yaml", config_map("b", "1"))?;
    fleet.push("change a, add b")?;
    until(&config_maps, "a", has_value("2")).await?;
    until(&config_maps, "b", has_value("1")).await?;

    fleet.repo.remove("manifests/b.yaml")?;
    fleet.push("remove b")?;
    until(&config_maps, "b", gone).await?;

    // A broken commit changes and prunes nothing, and says why; the next good one goes through.
    fleet.repo.remove("manifests/a.yaml")?;
    fleet
        .repo
        .write("manifests/broken.yaml", "kind: [unclosed\n")?;
    let broken = fleet.push("break it")?;
    let status = fleet.status_of("prod", &broken).await?;
    assert_eq!(status.result, "failed", "{status:?}");
    assert!(status.message.contains("broken.yaml"), "{status:?}");
    let a = config_maps.get("a").await?;
    assert_eq!(a.data.unwrap()["value"], "2", "nothing applied or pruned");

    fleet.repo.remove("manifests/broken.yaml")?;
    fleet.repo.write("manifests/c.yaml", config_map("c", "1"))?;
    let fixed = fleet.push("fix it")?;
    until(&config_maps, "c", has_value("1")).await?;
    until(&config_maps, "a", gone).await?;
    let status = fleet.status_of("prod", &fixed).await?;
    assert_eq!(status.result, "succeeded", "{status:?}");

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_sync_one_repository_and_a_restart_recreates_nothing() -> Result<()> {
    // Two namespaces stand in for two clusters.
    let prod_ns = cluster().namespace("e2e-prod").await?;
    let staging_ns = cluster().namespace("e2e-staging").await?;
    let fleet = Fleet::start(&[("prod", prod_ns.name()), ("staging", staging_ns.name())]).await?;
    let prod = fleet.agent("prod", prod_ns.name()).await?;
    let staging = fleet.agent("staging", staging_ns.name()).await?;
    let admin = cluster().admin().await?;
    let in_prod = Api::<ConfigMap>::namespaced(admin.clone(), prod_ns.name());
    let in_staging = Api::<ConfigMap>::namespaced(admin, staging_ns.name());
    until(&in_prod, "a", has_value("1")).await?;
    until(&in_staging, "a", has_value("1")).await?;

    fleet.repo.write("manifests/a.yaml", config_map("a", "2"))?;
    let commit = fleet.push("change a")?;
    until(&in_prod, "a", has_value("2")).await?;
    until(&in_staging, "a", has_value("2")).await?;
    assert_eq!(fleet.status_of("prod", &commit).await?.result, "succeeded");
    assert_eq!(
        fleet.status_of("staging", &commit).await?.result,
        "succeeded"
    );

    // A restarted agent knows what it owns from the cluster: it re-applies the commit without
    // re-creating or pruning anything.
    let uid = in_prod.get("a").await?.metadata.uid;
    prod.shutdown().await;
    let restarted = fleet.agent("prod", prod_ns.name()).await?;
    let mut syncs = restarted.metrics.subscribe_syncs();
    tokio::time::timeout(DEADLINE, syncs.wait_for(|n| *n >= 1)).await??;
    let metrics = restarted.metrics.render();
    assert!(
        metrics.contains("tether_agent_syncs_total{result=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tether_agent_objects_applied_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tether_agent_objects_pruned_total 0"),
        "{metrics}"
    );
    assert_eq!(in_prod.get("a").await?.metadata.uid, uid, "not re-created");

    restarted.shutdown().await;
    staging.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}
