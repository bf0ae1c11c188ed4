//! The local control plane is a real Kubernetes: these are the behaviours every later test relies
//! on, checked against it directly.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Api, ResourceExt};
use serde_json::json;
use tether_testkit::cluster;
use tether_testkit::cluster::Grant;

/// How long a condition may take before the test fails. A deadline, not a synchronisation: every
/// wait below returns as soon as the watched condition holds.
const DEADLINE: Duration = Duration::from_secs(120);

async fn wait_for<K>(api: &Api<K>, name: &str, condition: impl Condition<K>) -> Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    tokio::time::timeout(DEADLINE, await_condition(api.clone(), name, condition))
        .await
        .map_err(|_| anyhow::anyhow!("{name}: condition not met within {DEADLINE:?}"))??;
    Ok(())
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}
            }
        }
    }))
    .expect("a valid Deployment")
}

fn available_replicas(n: i32) -> impl Condition<Deployment> {
    move |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.available_replicas)
            == Some(n)
    }
}

#[tokio::test]
async fn version_is_the_kubernetes_release_it_was_built_from() -> Result<()> {
    let client = cluster().admin().await?;
    let go_mod = std::fs::read_to_string(tether_testkit::repo_root().join("tests/kube/go.mod"))?;
    let wanted = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes v"))
        .expect("go.mod requires k8s.io/kubernetes");
    let version = client.apiserver_version().await?;
    assert_eq!(version.git_version, format!("v{wanted}"));
    assert_eq!(version.major, "1");
    Ok(())
}

#[tokio::test]
async fn a_deployment_with_two_replicas_becomes_available() -> Result<()> {
    let ns = cluster().namespace("deploy").await?;
    let api = Api::<Deployment>::namespaced(cluster().admin().await?, ns.name());
    api.create(&PostParams::default(), &deployment("web", 2))
        .await?;
    wait_for(&api, "web", available_replicas(2)).await
}

#[tokio::test]
async fn a_job_runs_to_completion() -> Result<()> {
    let ns = cluster().namespace("job").await?;
    let api = Api::<Job>::namespaced(cluster().admin().await?, ns.name());
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "migrate", "image": "registry.invalid/migrate:1"}]
        }}}
    }))?;
    api.create(&PostParams::default(), &job).await?;
    wait_for(&api, "migrate", conditions::is_job_completed()).await
}

#[tokio::test]
async fn server_side_apply_records_the_field_manager_and_rejects_conflicts() -> Result<()> {
    let ns = cluster().namespace("ssa").await?;
    let api = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    let desired = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"level": "info"}
    });
    let applied = api
        .patch(
            "settings",
            &PatchParams::apply("tether"),
            &Patch::Apply(&desired),
        )
        .await?;
    let managers: Vec<_> = applied
        .managed_fields()
        .iter()
        .map(|m| (m.manager.clone(), m.operation.clone()))
        .collect();
    assert!(
        managers.contains(&(Some("tether".into()), Some("Apply".into()))),
        "managedFields: {managers:?}"
    );

    // Another manager claiming the same field without force is refused with a conflict...
    let theirs = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"level": "debug"}
    });
    let err = api
        .patch(
            "settings",
            &PatchParams::apply("intruder"),
            &Patch::Apply(&theirs),
        )
        .await
        .expect_err("a conflicting apply without force must fail");
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409, "{status:?}");
            assert!(status.message.contains("tether"), "{}", status.message);
        }
        other => panic!("expected a 409 conflict, got {other}"),
    }
    assert_eq!(
        api.get("settings").await?.data.unwrap()["level"],
        "info",
        "the refused apply changed nothing"
    );

    // ...and takes the field over with force.
    let forced = api
        .patch(
            "settings",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&theirs),
        )
        .await?;
    assert_eq!(forced.data.unwrap()["level"], "debug");
    Ok(())
}

#[tokio::test]
async fn a_service_account_bound_in_one_namespace_is_forbidden_in_another() -> Result<()> {
    let own = cluster().namespace("rbac-a").await?;
    let other = cluster().namespace("rbac-b").await?;
    let rules = vec![PolicyRule {
        api_groups: Some(vec!["".into()]),
        resources: Some(vec!["configmaps".into()]),
        verbs: vec!["get".into(), "list".into(), "create".into()],
        ..Default::default()
    }];
    let account = cluster()
        .service_account(
            own.name(),
            "agent",
            &[Grant::in_namespace(own.name(), rules)],
        )
        .await?;
    let client = account.client().await?;

    let mine = Api::<ConfigMap>::namespaced(client.clone(), own.name());
    mine.list(&Default::default()).await?;
    let theirs = Api::<ConfigMap>::namespaced(client, other.name());
    match theirs.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        result => panic!("expected 403 in namespace {}, got {result:?}", other.name()),
    }
    Ok(())
}

#[tokio::test]
async fn deleting_a_namespace_with_objects_completes() -> Result<()> {
    let ns = cluster().namespace("delete").await?;
    let admin = cluster().admin().await?;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
    deployments
        .create(&PostParams::default(), &deployment("doomed", 2))
        .await?;
    // Running pods make the namespace controller, the garbage collector and the simulated
    // kubelet's final delete all take part.
    wait_for(&deployments, "doomed", available_replicas(2)).await?;
    let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), ns.name());
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "data"}, "data": {"k": "v"}}))?,
        )
        .await?;

    let namespaces = Api::<Namespace>::all(admin);
    let uid = namespaces.get(ns.name()).await?.uid().expect("a uid");
    namespaces
        .delete(ns.name(), &DeleteParams::default())
        .await?;
    wait_for(&namespaces, ns.name(), conditions::is_deleted(&uid)).await
}
