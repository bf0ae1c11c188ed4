//! Inventories end to end: two agents whose (agent, project) names clean up to the same string —
//! agent `alpha` syncing `platform/apps` and agent `alpha-platform` syncing `apps` — each keep their
//! own objects. Before inventory ids carried a hash, starting the second deleted the first's.

use std::sync::Arc;

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use secrecy::ExposeSecret;
use tether_agent::app::{AgentOptions, ModeFlag, RunningAgent};
use tether_agent::gitops::InventoryId;
use tether_e2e::fleet::{DEADLINE, config_map};
use tether_e2e::wait::{has_value, until};
use tether_server::store::{SqliteStore, Store};
use tether_testkit::{GitServer, cluster};

/// (agent, its config repository = its manifest project).
const AGENTS: [(&str, &str); 2] = [("alpha", "platform/apps"), ("alpha-platform", "apps")];

async fn agent(
    server: &tether_server::RunningServer,
    store: &SqliteStore,
    data: &std::path::Path,
    name: &str,
    namespace: &str,
) -> Result<RunningAgent> {
    let token = tether_server::token::generate();
    store.create_token(name, &token.hash, "e2e", 3, 0)?;
    let token_file = data.join(format!("{name}-token"));
    std::fs::write(&token_file, token.secret.expose_secret())?;
    let agent = tether_agent::app::start(AgentOptions {
        server: format!("http://{}", server.grpc_addr),
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
        insecure_plaintext: false,
        work_dir: None,
    })
    .await?;
    Ok(agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_whose_names_clean_up_alike_keep_their_own_objects() -> Result<()> {
    // One agent namespace for both, as in the report: their inventories live side by side.
    let ns = cluster().namespace("e2e-collide").await?;
    let git = GitServer::start()?;
    let mut repositories = String::new();
    let mut repos = Vec::new();
    for (agent, project) in AGENTS {
        let repo = git.create_repo(project)?;
        repo.write(
            &format!(".tether/agents/{agent}/config.yaml"),
            format!(
                "gitops:\n  manifest_projects:\n    - id: {project}\n      default_namespace: {}\n      paths:\n        - glob: 'manifests/**/*.yaml'\n",
                ns.name()
            ),
        )?;
        repo.write(
            &format!("manifests/{agent}.yaml"),
            config_map(&format!("{agent}-web"), "1"),
        )?;
        repo.commit("first")?;
        repositories.push_str(&format!(
            "  - name: {project}\n    url: {}\n",
            git.http_url(project)
        ));
        repos.push(repo);
    }
    let data = tempfile::tempdir()?;
    let config = tether_config::server::parse_server_config(
        &format!(
            "data_dir: {}\nlisten: {{grpc: '127.0.0.1:0', http: '127.0.0.1:0'}}\nrepositories:\n{repositories}",
            data.path().display(),
        ),
        "server.yaml",
    )?;
    let store = Arc::new(SqliteStore::open(&data.path().join("tether.db"))?);
    for (agent, project) in AGENTS {
        store.register_agent(agent, project, 0)?;
    }
    let server = tether_server::start(config, store.clone() as Arc<dyn Store>).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());

    let alpha = agent(&server, &store, data.path(), "alpha", ns.name()).await?;
    until(&config_maps, "alpha-web", has_value("1")).await?;
    let alpha_uid = config_maps.get("alpha-web").await?.metadata.uid;

    // The second agent's first sync must leave the first agent's object alone.
    let other = agent(&server, &store, data.path(), "alpha-platform", ns.name()).await?;
    until(&config_maps, "alpha-platform-web", has_value("1")).await?;
    let mut syncs = other.metrics.subscribe_syncs();
    tokio::time::timeout(DEADLINE, syncs.wait_for(|n| *n >= 1)).await??;
    let metrics = other.metrics.render();
    assert!(
        metrics.contains("tether_agent_objects_pruned_total 0"),
        "{metrics}"
    );
    assert_eq!(
        config_maps.get("alpha-web").await?.metadata.uid,
        alpha_uid,
        "agent alpha's object survives agent alpha-platform's sync"
    );
    let names: Vec<String> = AGENTS
        .iter()
        .map(|(agent, project)| InventoryId::new(*agent, *project).config_map_name())
        .collect();
    assert_ne!(names[0], names[1]);
    for name in &names {
        assert!(config_maps.get_opt(name).await?.is_some(), "{name}");
    }

    other.shutdown().await;
    alpha.shutdown().await;
    server.shutdown().await;
    drop(repos);
    Ok(())
}
