//! The gitops sync against the local control plane: apply, update, prune, inventory policies,
//! modes and failures — every behaviour on a real API server.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tether_agent::gitops::inventory::OWNING_INVENTORY_ANNOTATION;
use tether_agent::gitops::{
    DesiredObject, InventoryId, KindFilter, ObjectErrorKind, ObjectRef, SyncOptions, SyncReport,
    Synchronizer,
};
use tether_config::agent::{AgentMode, ResourceFilter};
use tether_config::gitops::{DryRunStrategy, InventoryPolicy};
use tether_testkit::cluster;
use tether_testkit::cluster::Grant;

fn config_map(name: &str, value: &str) -> DesiredObject {
    object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"value": value}
    }))
}

fn object(value: Value) -> DesiredObject {
    let name = value["metadata"]["name"].as_str().unwrap_or("?").to_owned();
    DesiredObject::from_json(value, format!("{name}.yaml:1")).unwrap()
}

fn names(refs: &[ObjectRef]) -> Vec<String> {
    let mut names: Vec<_> = refs.iter().map(|r| r.name.clone()).collect();
    names.sort();
    names
}

fn options(ns: &str, project: &str) -> SyncOptions {
    let mut options = SyncOptions::new(InventoryId::new("agent", project), ns);
    options.default_namespace = ns.to_owned();
    options.reconcile_timeout = Duration::from_secs(120);
    options.prune_timeout = Duration::from_secs(120);
    options
}

async fn exists(client: &Client, ns: &str, name: &str) -> Result<bool> {
    Ok(Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?
        .is_some())
}

fn assert_success(report: &SyncReport) {
    assert!(report.is_success(), "errors: {:#?}", report.errors);
}

#[tokio::test]
async fn a_commit_is_applied_updated_and_pruned() -> Result<()> {
    let ns = cluster().namespace("sync").await?;
    let client = cluster().admin().await?;
    let sync = Synchronizer::new(client.clone(), options(ns.name(), "app"));

    let report = sync
        .sync(vec![config_map("a", "1"), config_map("b", "1")])
        .await;
    assert_success(&report);
    assert_eq!(names(&report.applied), ["a", "b"]);
    let a = Api::<ConfigMap>::namespaced(client.clone(), ns.name())
        .get("a")
        .await?;
    assert_eq!(
        a.annotations()[OWNING_INVENTORY_ANNOTATION],
        InventoryId::new("agent", "app").id(),
        "objects carry their inventory"
    );
    assert!(
        a.managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("tether"))
    );
    let inventory = Api::<ConfigMap>::namespaced(client.clone(), ns.name())
        .get(&InventoryId::new("agent", "app").config_map_name())
        .await?;
    assert_eq!(inventory.data.unwrap_or_default().len(), 2);

    // The same commit again changes nothing.
    let report = sync
        .sync(vec![config_map("a", "1"), config_map("b", "1")])
        .await;
    assert_success(&report);
    assert!(report.applied.is_empty(), "{:?}", report.applied);
    assert_eq!(names(&report.unchanged), ["a", "b"]);

    // A change updates; a removed file is pruned.
    let report = sync.sync(vec![config_map("a", "2")]).await;
    assert_success(&report);
    assert_eq!(names(&report.applied), ["a"]);
    assert_eq!(names(&report.pruned), ["b"]);
    assert!(!exists(&client, ns.name(), "b").await?);
    let a = Api::<ConfigMap>::namespaced(client.clone(), ns.name())
        .get("a")
        .await?;
    assert_eq!(a.data.unwrap()["value"], "2");
    Ok(())
}

#[tokio::test]
async fn prune_false_keeps_what_left_the_manifests() -> Result<()> {
    let ns = cluster().namespace("noprune").await?;
    let client = cluster().admin().await?;
    let mut opts = options(ns.name(), "app");
    opts.prune = false;
    let sync = Synchronizer::new(client.clone(), opts);
    assert_success(
        &sync
            .sync(vec![config_map("a", "1"), config_map("b", "1")])
            .await,
    );
    let report = sync.sync(vec![config_map("a", "1")]).await;
    assert_success(&report);
    assert!(report.pruned.is_empty());
    assert_eq!(names(&report.abandoned), ["b"]);
    assert!(exists(&client, ns.name(), "b").await?);
    Ok(())
}

#[tokio::test]
async fn a_failed_commit_prunes_nothing() -> Result<()> {
    let ns = cluster().namespace("failed").await?;
    let client = cluster().admin().await?;
    let sync = Synchronizer::new(client.clone(), options(ns.name(), "app"));
    assert_success(
        &sync
            .sync(vec![config_map("a", "1"), config_map("b", "1")])
            .await,
    );

    // An object without a name: the whole commit is refused before anything is written.
    let nameless = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}));
    let report = sync.sync(vec![config_map("a", "changed"), nameless]).await;
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.errors[0].kind, ObjectErrorKind::Invalid);
    assert!(report.errors[0].message.contains("metadata.name"));
    assert!(report.applied.is_empty() && report.pruned.is_empty());
    assert!(exists(&client, ns.name(), "b").await?);
    let a = Api::<ConfigMap>::namespaced(client.clone(), ns.name())
        .get("a")
        .await?;
    assert_eq!(a.data.unwrap()["value"], "1", "nothing was applied");

    // An object the API server rejects: the rest applies, nothing is pruned, and the inventory
    // still lists b so that the next good commit prunes it.
    let rejected = object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "Not_A_Valid_Name"}, "data": {"k": "v"}
    }));
    let report = sync.sync(vec![config_map("a", "1"), rejected]).await;
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.errors[0].kind, ObjectErrorKind::Apply);
    assert!(report.pruned.is_empty());
    assert!(exists(&client, ns.name(), "b").await?);

    let report = sync.sync(vec![config_map("a", "1")]).await;
    assert_success(&report);
    assert_eq!(names(&report.pruned), ["b"]);
    Ok(())
}

#[tokio::test]
async fn inventory_policies_decide_over_existing_objects() -> Result<()> {
    let ns = cluster().namespace("policy").await?;
    let client = cluster().admin().await?;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ns.name());
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "existing"}, "data": {"k": "v"}}))?,
        )
        .await?;

    let must_match = Synchronizer::new(client.clone(), options(ns.name(), "first"));
    let report = must_match.sync(vec![config_map("existing", "mine")]).await;
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.errors[0].kind, ObjectErrorKind::Refused);
    assert!(report.errors[0].message.contains("must_match"));

    let mut adopting = options(ns.name(), "first");
    adopting.inventory_policy = InventoryPolicy::AdoptIfNoInventory;
    // The last step below syncs an empty commit on purpose.
    adopting.allow_empty = true;
    let adopt = Synchronizer::new(client.clone(), adopting);
    assert_success(&adopt.sync(vec![config_map("existing", "mine")]).await);
    assert_eq!(
        config_maps.get("existing").await?.annotations()[OWNING_INVENTORY_ANNOTATION],
        InventoryId::new("agent", "first").id()
    );

    // Another project may not take it without adopt_all.
    let mut other = options(ns.name(), "second");
    other.inventory_policy = InventoryPolicy::AdoptIfNoInventory;
    let report = Synchronizer::new(client.clone(), other.clone())
        .sync(vec![config_map("existing", "theirs")])
        .await;
    assert_eq!(report.errors[0].kind, ObjectErrorKind::Refused);
    assert!(
        report.errors[0]
            .message
            .contains(&InventoryId::new("agent", "first").id())
    );
    other.inventory_policy = InventoryPolicy::AdoptAll;
    assert_success(
        &Synchronizer::new(client.clone(), other)
            .sync(vec![config_map("existing", "theirs")])
            .await,
    );

    // The first project no longer owns it: leaving its manifests must not delete it.
    let report = adopt.sync(vec![]).await;
    assert_success(&report);
    assert!(report.pruned.is_empty());
    assert!(exists(&client, ns.name(), "existing").await?);
    Ok(())
}

#[tokio::test]
async fn a_restarted_agent_neither_recreates_nor_prunes() -> Result<()> {
    let ns = cluster().namespace("restart").await?;
    let client = cluster().admin().await?;
    let objects = || vec![config_map("a", "1"), config_map("b", "1")];
    assert_success(
        &Synchronizer::new(client.clone(), options(ns.name(), "app"))
            .sync(objects())
            .await,
    );
    let uid = Api::<ConfigMap>::namespaced(client.clone(), ns.name())
        .get("a")
        .await?
        .uid();

    // A new synchronizer knows nothing but what the cluster records.
    let restarted = Synchronizer::new(client.clone(), options(ns.name(), "app"));
    let report = restarted.sync(objects()).await;
    assert_success(&report);
    assert_eq!(names(&report.unchanged), ["a", "b"]);
    assert!(report.pruned.is_empty());
    let after = Api::<ConfigMap>::namespaced(client.clone(), ns.name())
        .get("a")
        .await?
        .uid();
    assert_eq!(uid, after, "not re-created");
    Ok(())
}

#[tokio::test]
async fn namespaced_mode_refuses_before_any_write_and_rbac_agrees() -> Result<()> {
    let own = cluster().namespace("tenant").await?;
    let foreign = cluster().namespace("foreign").await?;
    let rules = vec![PolicyRule {
        api_groups: Some(vec!["".into()]),
        resources: Some(vec!["configmaps".into()]),
        verbs: [
            "get", "list", "watch", "create", "patch", "update", "delete",
        ]
        .map(String::from)
        .to_vec(),
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
    let mut opts = options(own.name(), "app");
    opts.mode = AgentMode::Namespaced {
        namespaces: vec![own.name().to_owned()],
    };
    let sync = Synchronizer::new(client.clone(), opts);

    let mut elsewhere = config_map("elsewhere", "1");
    elsewhere.object.metadata.namespace = Some(foreign.name().to_owned());
    let cluster_role = object(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": format!("{}-reader", own.name())}, "rules": []
    }));
    let report = sync
        .sync(vec![config_map("mine", "1"), elsewhere, cluster_role])
        .await;
    let mut refused: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.kind, e.message.clone()))
        .collect();
    refused.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert!(refused.iter().all(|(k, _)| *k == ObjectErrorKind::Refused));
    assert!(
        refused[0].1.contains("ClusterRole is cluster-scoped"),
        "{refused:?}"
    );
    assert!(
        refused[1]
            .1
            .contains(&format!("namespace {} is not one of", foreign.name()))
    );
    assert!(
        !exists(&client, own.name(), "mine").await?,
        "a refused commit writes nothing"
    );

    // The ServiceAccount's RBAC would have refused the foreign object too.
    let denied = Api::<ConfigMap>::namespaced(client.clone(), foreign.name())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}}))?,
        )
        .await;
    assert!(matches!(denied, Err(kube::Error::Api(s)) if s.code == 403));

    // Within its namespace the same agent syncs.
    assert_success(&sync.sync(vec![config_map("mine", "1")]).await);
    assert!(exists(&client, own.name(), "mine").await?);
    Ok(())
}

#[tokio::test]
async fn excluded_kinds_are_refused() -> Result<()> {
    let ns = cluster().namespace("exclude").await?;
    let client = cluster().admin().await?;
    let mut opts = options(ns.name(), "app");
    opts.kinds = KindFilter {
        inclusions: vec![],
        exclusions: vec![ResourceFilter {
            api_groups: vec!["".into()],
            kinds: vec!["Secret".into()],
        }],
    };
    let secret = object(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"},
        "stringData": {"t": "x"}
    }));
    let report = Synchronizer::new(client, opts)
        .sync(vec![config_map("a", "1"), secret])
        .await;
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.errors[0].kind, ObjectErrorKind::Refused);
    assert_eq!(
        report.errors[0].to_string(),
        format!(
            "Secret/{}/token (token.yaml:1): Secret is excluded by resource_exclusions",
            ns.name()
        )
    );
    Ok(())
}

#[tokio::test]
async fn crds_are_established_before_their_objects_are_applied() -> Result<()> {
    let ns = cluster().namespace("crd").await?;
    let client = cluster().admin().await?;
    // The CRD's name is unique to this test, so runs never share it.
    let group = format!("{}.tether.test", ns.name());
    let crd = object(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }));
    let widget = object(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "gear"}, "spec": {"teeth": 12}
    }));
    // The object comes first in the manifests; the CRD must still go first.
    let report = Synchronizer::new(client.clone(), options(ns.name(), "app"))
        .sync(vec![widget, crd])
        .await;
    assert_success(&report);
    assert_eq!(report.applied.len(), 2);
    let gvk = kube::core::GroupVersionKind::gvk(&group, "v1", "Widget");
    let (resource, _) = kube::discovery::pinned_kind(&client, &gvk).await?;
    let gear = Api::<DynamicObject>::namespaced_with(client, ns.name(), &resource)
        .get("gear")
        .await?;
    assert_eq!(gear.data["spec"]["teeth"], 12);
    Ok(())
}

#[tokio::test]
async fn a_sync_waits_for_deployments_and_reports_unhealthy_ones() -> Result<()> {
    let ns = cluster().namespace("health").await?;
    let client = cluster().admin().await?;
    let deployment = |name: &str, selector: Value| {
        object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "nodeSelector": selector,
                        "containers": [{"name": "c", "image": "registry.invalid/c:1"}]
                    }
                }
            }
        }))
    };
    let report = Synchronizer::new(client.clone(), options(ns.name(), "ok"))
        .sync(vec![deployment("web", json!({}))])
        .await;
    assert_success(&report);
    let web = Api::<Deployment>::namespaced(client.clone(), ns.name())
        .get("web")
        .await?;
    assert_eq!(web.status.and_then(|s| s.available_replicas), Some(2));

    // No node matches: the pods never schedule, and the report says so once the reconcile
    // timeout (a deadline here, not a synchronisation) runs out.
    let mut opts = options(ns.name(), "stuck");
    opts.reconcile_timeout = Duration::from_secs(3);
    let report = Synchronizer::new(client, opts)
        .sync(vec![deployment("stuck", json!({"no-such": "node"}))])
        .await;
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.errors[0].kind, ObjectErrorKind::Health);
    assert!(
        report.errors[0]
            .message
            .contains("0 of 2 replicas available")
    );
    Ok(())
}

#[tokio::test]
async fn dry_runs_write_nothing() -> Result<()> {
    let ns = cluster().namespace("dryrun").await?;
    let client = cluster().admin().await?;
    for strategy in [DryRunStrategy::Client, DryRunStrategy::Server] {
        let mut opts = options(ns.name(), "app");
        opts.dry_run = strategy;
        let report = Synchronizer::new(client.clone(), opts)
            .sync(vec![config_map("a", "1")])
            .await;
        assert_success(&report);
        assert_eq!(names(&report.applied), ["a"], "{strategy:?}");
        assert!(!exists(&client, ns.name(), "a").await?, "{strategy:?}");
        assert!(
            !exists(
                &client,
                ns.name(),
                &InventoryId::new("agent", "app").config_map_name()
            )
            .await?
        );
    }
    Ok(())
}

#[tokio::test]
async fn pruning_a_namespace_waits_until_it_is_gone() -> Result<()> {
    let ns = cluster().namespace("prune-ns").await?;
    let client = cluster().admin().await?;
    let child = format!("{}-child", ns.name());
    let namespace =
        object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": child}}));
    let mut inside = config_map("inside", "1");
    inside.object.metadata.namespace = Some(child.clone());
    let mut opts = options(ns.name(), "app");
    // Pruning everything through an empty commit is what this test is about: opted in.
    opts.allow_empty = true;
    let sync = Synchronizer::new(client.clone(), opts);
    assert_success(&sync.sync(vec![namespace, inside]).await);

    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    let report = sync.sync(vec![]).await;
    assert_success(&report);
    assert_eq!(report.pruned.len(), 2);
    // Foreground propagation: the prune returned only once the namespace was gone.
    assert!(namespaces.get_opt(&child).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn without_force_a_field_owned_by_another_manager_is_a_conflict() -> Result<()> {
    let ns = cluster().namespace("conflict").await?;
    let client = cluster().admin().await?;
    let theirs = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shared"}, "data": {"value": "theirs"}
    });
    Api::<ConfigMap>::namespaced(client.clone(), ns.name())
        .patch(
            "shared",
            &kube::api::PatchParams::apply("someone-else"),
            &kube::api::Patch::Apply(&theirs),
        )
        .await?;
    let mut opts = options(ns.name(), "app");
    opts.inventory_policy = InventoryPolicy::AdoptAll;
    opts.force_conflicts = false;
    let report = Synchronizer::new(client.clone(), opts.clone())
        .sync(vec![config_map("shared", "ours")])
        .await;
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.errors[0].kind, ObjectErrorKind::Apply);
    assert!(
        report.errors[0].message.contains("conflict"),
        "{}",
        report.errors[0].message
    );

    opts.force_conflicts = true;
    assert_success(
        &Synchronizer::new(client.clone(), opts)
            .sync(vec![config_map("shared", "ours")])
            .await,
    );
    let shared = Api::<ConfigMap>::namespaced(client, ns.name())
        .get("shared")
        .await?;
    assert_eq!(shared.data.unwrap()["value"], "ours");
    Ok(())
}

#[tokio::test]
async fn projects_whose_names_clean_up_alike_never_prune_each_other() -> Result<()> {
    // The collision seen end to end: agent `alpha-platform` with project `apps` pruned agent
    // `alpha`'s project `platform/apps`, because both cleaned up to `alpha-platform-apps`.
    let ns = cluster().namespace("collide").await?;
    let client = cluster().admin().await?;
    let options = |agent: &str, project: &str| {
        let mut o = SyncOptions::new(InventoryId::new(agent, project), ns.name());
        o.default_namespace = ns.name().to_owned();
        o
    };
    let alpha = Synchronizer::new(client.clone(), options("alpha", "platform/apps"));
    assert_success(&alpha.sync(vec![config_map("alpha-web", "1")]).await);

    let other = Synchronizer::new(client.clone(), options("alpha-platform", "apps"));
    let report = other.sync(vec![config_map("other-web", "1")]).await;
    assert_success(&report);
    assert!(report.pruned.is_empty(), "{:?}", report.pruned);
    assert!(exists(&client, ns.name(), "alpha-web").await?);
    assert!(exists(&client, ns.name(), "other-web").await?);

    // Each keeps pruning only its own.
    let report = alpha.sync(vec![config_map("alpha-api", "1")]).await;
    assert_success(&report);
    assert_eq!(names(&report.pruned), ["alpha-web"]);
    assert!(exists(&client, ns.name(), "other-web").await?);
    Ok(())
}

#[tokio::test]
async fn an_inventory_recorded_for_another_identity_is_not_adopted() -> Result<()> {
    let ns = cluster().namespace("foreign-inv").await?;
    let client = cluster().admin().await?;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ns.name());
    let id = InventoryId::new("agent", "app");
    // Another identity's record under this project's name (a hand-made copy, a hash clash).
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {
                    "name": id.config_map_name(),
                    "annotations": {
                        "tether.dev/inventory-agent": "someone",
                        "tether.dev/inventory-project": "else",
                    },
                },
                "data": {format!("{}_victim__ConfigMap", ns.name()): ""},
            }))?,
        )
        .await?;
    let victim = config_map("victim", "theirs");
    Synchronizer::new(client.clone(), {
        let mut o = options(ns.name(), "someone-else");
        o.inventory_policy = InventoryPolicy::AdoptAll;
        o
    })
    .sync(vec![victim])
    .await;

    let report = Synchronizer::new(client.clone(), options(ns.name(), "app"))
        .sync(vec![config_map("mine", "1")])
        .await;
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.errors[0].kind, ObjectErrorKind::Inventory);
    let message = &report.errors[0].message;
    assert!(
        message.contains("agent `someone` project `else`")
            && message.contains("agent `agent` project `app`")
            && message.contains("refusing to adopt"),
        "{message}"
    );
    assert!(
        !exists(&client, ns.name(), "mine").await?,
        "nothing applied"
    );
    assert!(
        exists(&client, ns.name(), "victim").await?,
        "nothing pruned"
    );
    Ok(())
}

#[tokio::test]
async fn a_legacy_inventory_migrates_without_pruning_anything() -> Result<()> {
    let ns = cluster().namespace("legacy-inv").await?;
    let client = cluster().admin().await?;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ns.name());
    let id = InventoryId::new("agent", "app");
    // What an agent before the hash left behind: objects marked with the legacy id and the
    // legacy inventory listing them.
    for name in ["kept", "left"] {
        config_maps
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {
                        "name": name,
                        "annotations": {OWNING_INVENTORY_ANNOTATION: id.legacy_id()},
                    },
                    "data": {"value": "old"},
                }))?,
            )
            .await?;
    }
    let key = |name: &str| format!("{}_{name}__ConfigMap", ns.name());
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": id.legacy_config_map_name()},
                "data": {key("kept"): "", key("left"): ""},
            }))?,
        )
        .await?;

    // must_match takes over what the legacy inventory marked, and prunes nothing.
    let sync = Synchronizer::new(client.clone(), options(ns.name(), "app"));
    let report = sync.sync(vec![config_map("kept", "new")]).await;
    assert_success(&report);
    assert!(report.pruned.is_empty(), "{:?}", report.pruned);
    assert_eq!(names(&report.abandoned), ["left"]);
    let kept = config_maps.get("kept").await?;
    assert_eq!(kept.annotations()[OWNING_INVENTORY_ANNOTATION], id.id());
    assert_eq!(kept.data.unwrap()["value"], "new");
    let left = config_maps.get("left").await?;
    assert_eq!(
        left.annotations()[OWNING_INVENTORY_ANNOTATION],
        id.legacy_id()
    );
    assert!(exists(&client, ns.name(), &id.legacy_config_map_name()).await?);
    let inventory = config_maps.get(&id.config_map_name()).await?;
    assert_eq!(
        inventory.annotations()["tether.dev/inventory-project"],
        "app"
    );

    // From then on the new inventory rules: what leaves the manifests is pruned.
    let report = sync.sync(vec![config_map("next", "1")]).await;
    assert_success(&report);
    assert_eq!(names(&report.pruned), ["kept"]);
    assert!(exists(&client, ns.name(), "left").await?);
    Ok(())
}

#[tokio::test]
async fn an_empty_commit_never_prunes_a_non_empty_inventory_unless_allowed() -> Result<()> {
    let ns = cluster().namespace("empty").await?;
    let client = cluster().admin().await?;
    let sync = Synchronizer::new(client.clone(), options(ns.name(), "app"));
    assert_success(
        &sync
            .sync(vec![config_map("a", "1"), config_map("b", "1")])
            .await,
    );

    for dry_run in [DryRunStrategy::Server, DryRunStrategy::None] {
        let mut opts = options(ns.name(), "app");
        opts.dry_run = dry_run;
        let report = Synchronizer::new(client.clone(), opts).sync(vec![]).await;
        assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
        assert_eq!(report.errors[0].kind, ObjectErrorKind::EmptyRefused);
        assert!(
            report.errors[0].message.contains("allow_empty: true")
                && report.errors[0].message.contains("all 2 objects"),
            "{}",
            report.errors[0].message
        );
        assert!(report.pruned.is_empty());
        assert!(exists(&client, ns.name(), "a").await?);
        assert!(exists(&client, ns.name(), "b").await?);
    }

    // The inventory still lists both: opting in prunes them.
    let mut opts = options(ns.name(), "app");
    opts.allow_empty = true;
    let report = Synchronizer::new(client.clone(), opts).sync(vec![]).await;
    assert_success(&report);
    assert_eq!(names(&report.pruned), ["a", "b"]);
    assert!(!exists(&client, ns.name(), "a").await?);

    // An empty commit for an empty inventory is no deletion: nothing to refuse.
    let report = Synchronizer::new(client.clone(), options(ns.name(), "fresh"))
        .sync(vec![])
        .await;
    assert_success(&report);
    Ok(())
}
