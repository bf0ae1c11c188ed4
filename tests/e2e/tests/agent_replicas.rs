//! An agent's replicas and its syncs in flight: only the replica holding the Lease writes to the
//! cluster, another takes over when it goes, and a newer commit replaces a sync still waiting.

use std::sync::atomic::Ordering;

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::wait::await_condition;
use tether_agent::app::RunningAgent;
use tether_e2e::fleet::{DEADLINE, Fleet, REPO, config_map};
use tether_e2e::wait::{has_value, until};
use tether_testkit::cluster;

async fn lease_holder(leases: &Api<Lease>, agent: &str) -> Result<Option<String>> {
    Ok(leases
        .get_opt(&format!("tether-agent-{agent}"))
        .await?
        .and_then(|lease| lease.spec)
        .and_then(|spec| spec.holder_identity))
}

fn syncs(agent: &RunningAgent) -> (u64, u64) {
    (
        agent.metrics.syncs_succeeded.load(Ordering::Relaxed),
        agent.metrics.syncs_failed.load(Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_applies_and_a_standby_takes_over() -> Result<()> {
    let ns = cluster().namespace("e2e-replicas").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    let admin = cluster().admin().await?;
    let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), ns.name());
    let leases = Api::<Lease>::namespaced(admin, ns.name());

    let first = fleet
        .agent_with("prod", ns.name(), |o| o.pod_name = "prod-0".into())
        .await?;
    until(&config_maps, "a", has_value("1")).await?;
    assert_eq!(
        lease_holder(&leases, "prod").await?.as_deref(),
        Some("prod-0")
    );

    let mut second = fleet
        .agent_with("prod", ns.name(), |o| o.pod_name = "prod-1".into())
        .await?;
    tokio::time::timeout(DEADLINE, second.config.wait_for(Option::is_some)).await??;

    fleet.repo.write("manifests/a.yaml", config_map("a", "2"))?;
    fleet.push("a is 2")?;
    until(&config_maps, "a", has_value("2")).await?;
    let mut first_syncs = first.metrics.subscribe_syncs();
    tokio::time::timeout(DEADLINE, first_syncs.wait_for(|n| *n >= 2)).await??;
    assert_eq!(syncs(&first), (2, 0), "the leader applied both commits");
    assert_eq!(syncs(&second), (0, 0), "the standby applied nothing");

    // The leader goes (releasing its lease): the standby takes over and follows new commits.
    first.shutdown().await;
    fleet.repo.write("manifests/a.yaml", config_map("a", "3"))?;
    fleet.push("a is 3")?;
    until(&config_maps, "a", has_value("3")).await?;
    assert_eq!(
        lease_holder(&leases, "prod").await?.as_deref(),
        Some("prod-1")
    );
    assert!(syncs(&second).0 >= 1, "{:?}", syncs(&second));
    assert_eq!(syncs(&second).1, 0);

    second.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

/// A Deployment no node can run: its sync waits for health until the reconcile timeout.
fn deployment(schedulable: bool) -> String {
    let selector = if schedulable {
        ""
    } else {
        "      nodeSelector: {tether.dev/no-such-node: \"true\"}\n"
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n{selector}      containers:\n        - name: web\n          image: registry.invalid/web:1\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_commit_cancels_a_sync_waiting_for_health() -> Result<()> {
    let ns = cluster().namespace("e2e-cancel").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    // Long enough that only cancelling can end the first sync within the test's deadline.
    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        format!(
            "gitops:\n  manifest_projects:\n    - id: {REPO}\n      default_namespace: {ns}\n      reconcile_timeout: 3600s\n      paths:\n        - glob: 'manifests/**/*.yaml'\n",
            ns = ns.name()
        ),
    )?;
    fleet.push("wait up to an hour for health")?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let admin = cluster().admin().await?;
    let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    let mut finished = agent.metrics.subscribe_syncs();
    tokio::time::timeout(DEADLINE, finished.wait_for(|n| *n >= 1)).await??;

    fleet.repo.write("manifests/web.yaml", deployment(false))?;
    fleet.push("a Deployment that can't become available")?;
    let deployments = Api::<Deployment>::namespaced(admin, ns.name());
    tokio::time::timeout(
        DEADLINE,
        await_condition(deployments.clone(), "web", |d: Option<&Deployment>| {
            d.is_some()
        }),
    )
    .await??;
    // Applied: the sync now waits for the Deployment's health.

    fleet.repo.write("manifests/web.yaml", deployment(true))?;
    fleet.repo.write("manifests/a.yaml", config_map("a", "2"))?;
    let fixed = fleet.push("fix the Deployment")?;
    let status = fleet.status_of("prod", &fixed).await?;
    assert_eq!(status.result, "succeeded", "{status:?}");
    until(&config_maps, "a", has_value("2")).await?;
    assert_eq!(
        syncs(&agent),
        (2, 0),
        "the first commit and the fix; the waiting sync was cancelled, not finished"
    );

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}
