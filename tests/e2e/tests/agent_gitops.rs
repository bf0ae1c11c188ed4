//! The loop users deploy Tether for, end to end: a commit in a real Git repository (served by
//! `git http-backend`), tether-server mirroring it, tether-agent applying it to the local control
//! plane — and the same for a change, a removal, and a broken commit.

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use tether_agent::gitops::InventoryId;
use tether_e2e::fleet::{DEADLINE, Fleet, REPO, config_map};
use tether_e2e::wait::{gone, has_value, until};
use tether_testkit::cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_applied_updated_and_pruned() -> Result<()> {
    let ns = cluster().namespace("e2e-agent").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
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
    // c created, a pruned (it left the manifests in the broken commit).
    assert_eq!(
        (status.applied, status.unchanged, status.pruned),
        (1, 0, 1),
        "{status:?}"
    );

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_sync_one_repository_and_a_restart_recreates_nothing() -> Result<()> {
    // Two namespaces stand in for two clusters.
    let prod_ns = cluster().namespace("e2e-prod").await?;
    let staging_ns = cluster().namespace("e2e-staging").await?;
    let fleet = Fleet::start(
        &[("prod", prod_ns.name()), ("staging", staging_ns.name())],
        &[("a", "1")],
    )
    .await?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_changes_nothing_in_the_cluster() -> Result<()> {
    let ns = cluster().namespace("e2e-outage").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1"), ("b", "1")]).await?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    until(&config_maps, "b", has_value("1")).await?;
    let mut connected = agent.metrics.subscribe_server_connected();
    tokio::time::timeout(DEADLINE, connected.wait_for(|c| *c)).await??;

    // The server goes away: the agent notices, says so, and leaves the cluster as it is.
    fleet.server.shutdown().await;
    tokio::time::timeout(DEADLINE, connected.wait_for(|c| !*c)).await??;
    assert!(
        agent
            .metrics
            .render()
            .contains("tether_agent_server_connected 0"),
        "{}",
        agent.metrics.render()
    );
    for name in ["a", "b"] {
        let cm = config_maps.get(name).await?;
        assert_eq!(cm.data.unwrap()["value"], "1", "{name} untouched");
    }
    agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_project_from_the_configuration_deletes_nothing() -> Result<()> {
    let ns = cluster().namespace("e2e-unlisted").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    let mut agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;

    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        "gitops:\n  manifest_projects: []\n",
    )?;
    let commit = fleet.push("stop syncing the project")?;
    tokio::time::timeout(
        DEADLINE,
        agent
            .config
            .wait_for(|c| c.as_ref().is_some_and(|c| c.commit_id == commit)),
    )
    .await??;
    assert!(
        agent.config.borrow().as_ref().is_some_and(|c| c
            .config
            .gitops
            .manifest_projects
            .is_empty())
    );
    let a = config_maps.get("a").await?;
    assert_eq!(a.data.unwrap()["value"], "1", "the project's objects stay");
    assert!(
        config_maps
            .get_opt(&InventoryId::new("prod", REPO).config_map_name())
            .await?
            .is_some()
    );
    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

/// The agent's configuration with `paths` (YAML list items) for the one manifest project.
fn config_with(namespace: &str, paths: &str, extra: &str) -> String {
    format!(
        "gitops:\n  manifest_projects:\n    - id: {REPO}\n      default_namespace: {namespace}\n{extra}      paths:\n{paths}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_that_selects_nothing_prunes_nothing_unless_allow_empty() -> Result<()> {
    let ns = cluster().namespace("e2e-empty").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1"), ("b", "1")]).await?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    until(&config_maps, "b", has_value("1")).await?;

    // A typo in the glob: the commit renders nothing. That is refused and reported, not a prune
    // of the whole project.
    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        config_with(ns.name(), "        - glob: 'manifest/**/*.yaml'\n", ""),
    )?;
    let typo = fleet.push("typo in the glob")?;
    let status = fleet
        .status_where("prod", &typo, |s| s.result == "failed")
        .await?;
    assert!(status.message.contains("allow_empty: true"), "{status:?}");
    assert!(
        status
            .message
            .contains("paths[0] (manifest/**/*.yaml): the glob matches no file"),
        "{status:?}"
    );
    assert_eq!(status.pruned, 0, "{status:?}");
    for name in ["a", "b"] {
        assert!(config_maps.get_opt(name).await?.is_some(), "{name} kept");
    }

    // Opting in makes the empty commit prune, as asked.
    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        config_with(
            ns.name(),
            "        - glob: 'manifest/**/*.yaml'\n",
            "      allow_empty: true\n",
        ),
    )?;
    let allowed = fleet.push("allow the empty commit")?;
    let status = fleet
        .status_where("prod", &allowed, |s| s.result == "succeeded")
        .await?;
    assert_eq!(status.pruned, 2, "{status:?}");
    until(&config_maps, "a", gone).await?;
    until(&config_maps, "b", gone).await?;

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlabs_leading_slash_glob_selects_the_same_objects() -> Result<()> {
    let ns = cluster().namespace("e2e-slash").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    let uid = config_maps.get("a").await?.metadata.uid;

    // The form GitLab's documentation uses: same files, same objects, nothing pruned.
    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        config_with(ns.name(), "        - glob: '/manifests/**/*.yaml'\n", ""),
    )?;
    let switched = fleet.push("GitLab's glob form")?;
    let mut config = agent.config.clone();
    tokio::time::timeout(
        DEADLINE,
        config.wait_for(|c| c.as_ref().is_some_and(|c| c.commit_id == switched)),
    )
    .await??;
    // A commit after the switch is synced by the worker with the new glob only.
    fleet.repo.write("manifests/b.yaml", config_map("b", "1"))?;
    let commit = fleet.push("add b")?;
    until(&config_maps, "b", has_value("1")).await?;
    let status = fleet.status_of("prod", &commit).await?;
    assert_eq!(status.result, "succeeded", "{status:?}");
    assert_eq!(
        (status.applied, status.unchanged, status.pruned),
        (1, 1, 0),
        "{status:?}"
    );
    assert!(!status.message.contains("warning"), "{status:?}");
    assert_eq!(config_maps.get("a").await?.metadata.uid, uid, "a untouched");

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}
