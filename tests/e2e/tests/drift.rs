//! Drift, end to end on the local control plane: an object changed behind Git's back by another field
//! manager is put back in `correct` mode and only reported in `report` mode; a deleted one is
//! re-created; an ignored field stays as edited; a field another controller keeps setting ends
//! `contested`, not in a fight; a custom detector plugin changes the verdict and a trapping one falls
//! back to the built-in's; and every drift shows in the server's status API.

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tether_e2e::fleet::{DEADLINE, Fleet, REPO};
use tether_e2e::wait::{has_value, until};
use tether_server::drift::DriftRecord;
use tether_testkit::cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The agent's config: the manifest project, `plugins` (YAML list items) and a `drift:` section.
fn config(namespace: &str, plugins: &str, drift: &str) -> String {
    let plugins = if plugins.is_empty() {
        String::new()
    } else {
        format!("plugins:\n{plugins}")
    };
    format!(
        "{plugins}drift: {drift}\ngitops:\n  manifest_projects:\n    - id: {REPO}\n      default_namespace: {namespace}\n      paths:\n        - glob: 'manifests/**/*.yaml'\n"
    )
}

/// A plugin kept in the config repository, with its digest, as a `plugins:` item.
fn repo_plugin(fleet: &Fleet, name: &str, path: &str) -> Result<String> {
    let component = std::fs::read(path)?;
    let digest = hex::encode(Sha256::digest(&component));
    let file = format!(".tether/plugins/{name}.wasm");
    fleet.repo.write(&file, &component)?;
    Ok(format!(
        "  - name: {name}\n    world: drift-detector\n    repo_file: {file}\n    sha256: {digest}\n"
    ))
}

/// Changes `data.value` as `manager` would with `kubectl edit` (an Update, not an apply).
async fn edit(api: &Api<ConfigMap>, name: &str, value: &str, manager: &str) -> Result<()> {
    let params = PatchParams {
        field_manager: Some(manager.to_owned()),
        ..PatchParams::default()
    };
    let edited = api
        .patch(
            name,
            &params,
            &Patch::Merge(json!({"data": {"value": value}})),
        )
        .await?;
    assert_eq!(edited.data.unwrap()["value"], value);
    Ok(())
}

/// The first drift record the server holds for object `name` of agent `agent` that satisfies
/// `wanted`, once it does.
async fn drift_record(
    fleet: &Fleet,
    agent: &str,
    name: &str,
    wanted: impl Fn(&DriftRecord) -> bool,
) -> Result<DriftRecord> {
    let log = &fleet.server.context().drift;
    let mut changes = log.subscribe();
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            let found = log.of(agent).get(REPO).and_then(|records| {
                records
                    .iter()
                    .find(|r| r.object.name == name && wanted(r))
                    .cloned()
            });
            if let Some(found) = found {
                return Ok::<_, anyhow::Error>(found);
            }
            changes.changed().await?;
        }
    })
    .await;
    match found {
        Ok(r) => r,
        Err(_) => anyhow::bail!(
            "no such drift record for {name} within {DEADLINE:?}; have: {:?}",
            log.of(agent)
        ),
    }
}

/// `GET path` on the server's HTTP API; the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: tether\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                tether_e2e::fleet::FLEET_ADMIN_TOKEN
            )
            .as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("not HTTP: {response}"))?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
    Ok(body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_is_corrected_a_deletion_recreated_and_both_shown_by_the_server() -> Result<()> {
    let ns = cluster().namespace("e2e-drift-correct").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1"), ("b", "1")]).await?;
    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        config(
            ns.name(),
            "",
            "{mode: correct, ignore: [{target: {kind: ConfigMap, name: b}, paths: [/data/value]}]}",
        ),
    )?;
    fleet.push("correct drift, but not b's value")?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    syncs(&agent, 1).await?;

    // b first: by the time a's edit is corrected, b's has been judged (one watch, in order).
    edit(&config_maps, "b", "edited", "kubectl-edit").await?;
    edit(&config_maps, "a", "edited", "kubectl-edit").await?;
    until(&config_maps, "a", has_value("1")).await?;
    let record = drift_record(&fleet, "prod", "a", |r| r.action == "corrected").await?;
    assert_eq!(record.verdict, "drifted", "{record:?}");
    assert_eq!(record.fields.len(), 1, "{record:?}");
    let field = &record.fields[0];
    assert_eq!(field.path, "/data/value");
    assert_eq!(field.owner, "kubectl-edit", "the manager now owning it");
    assert_eq!(
        (field.desired.as_deref(), field.live.as_deref()),
        (Some("\"1\""), Some("\"edited\""))
    );
    let b = config_maps.get("b").await?;
    assert_eq!(
        b.data.unwrap()["value"],
        "edited",
        "an ignored path stays as edited"
    );

    // Deleted behind Git's back: re-created at once.
    let uid = config_maps.get("a").await?.uid();
    config_maps.delete("a", &DeleteParams::default()).await?;
    tokio::time::timeout(
        DEADLINE,
        await_condition(config_maps.clone(), "a", move |cm: Option<&ConfigMap>| {
            cm.is_some_and(|c| c.uid() != uid)
        }),
    )
    .await??;
    until(&config_maps, "a", has_value("1")).await?;
    let missing = drift_record(&fleet, "prod", "a", |r| r.verdict == "missing").await?;
    assert_eq!(missing.action, "corrected", "{missing:?}");

    // The status API shows it per agent and project.
    let body = http_get(fleet.server.http_addr, "/api/v1/agents/prod/drift").await?;
    let view: serde_json::Value = serde_json::from_str(&body)?;
    let records = view["projects"][REPO]
        .as_array()
        .expect("the project's records");
    assert!(
        records
            .iter()
            .any(|r| r["object"]["name"] == "a" && r["verdict"] == "missing"),
        "{body}"
    );
    let metrics = agent.metrics.render();
    assert!(
        metrics.contains("tether_drift_corrections_total 2"),
        "{metrics}"
    );
    assert!(
        !records.iter().any(|r| r["object"]["name"] == "b"),
        "b's only drift is ignored: {body}"
    );

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_reports_and_leaves_the_edit() -> Result<()> {
    let ns = cluster().namespace("e2e-drift-report").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        config(ns.name(), "", "{mode: report, interval: 10s}"),
    )?;
    fleet.push("report drift only")?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    syncs(&agent, 1).await?;

    edit(&config_maps, "a", "edited", "kubectl-edit").await?;
    let record = drift_record(&fleet, "prod", "a", |_| true).await?;
    assert_eq!(
        (record.verdict.as_str(), record.action.as_str()),
        ("drifted", "reported"),
        "{record:?}"
    );
    assert_eq!(record.fields[0].owner, "kubectl-edit");
    // The agent has judged the edit and decided: nothing was put back — not even by the periodic
    // pass. Two full re-checks after the edit span a whole `interval`, the period at which a project
    // without drift detection gets its last commit re-applied blindly.
    let syncs_before = *agent.metrics.subscribe_syncs().borrow();
    let mut rechecks = agent.metrics.drift.subscribe_rechecks();
    let after_edit = *rechecks.borrow_and_update();
    tokio::time::timeout(DEADLINE, rechecks.wait_for(|n| *n >= after_edit + 2)).await??;
    let a = config_maps.get("a").await?;
    assert_eq!(a.data.unwrap()["value"], "edited");
    assert_eq!(
        *agent.metrics.subscribe_syncs().borrow(),
        syncs_before,
        "report mode re-applied the commit"
    );
    let metrics = agent.metrics.render();
    assert!(
        metrics.contains(&format!("tether_drift_objects{{project=\"{REPO}\"}} 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains("tether_drift_corrections_total 0"),
        "{metrics}"
    );

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_drift_detection_off_the_last_commit_is_reapplied_each_interval() -> Result<()> {
    let ns = cluster().namespace("e2e-drift-off").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        config(ns.name(), "", "{enabled: false, interval: 10s}"),
    )?;
    fleet.push("no drift detection, GitLab's blind re-apply")?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    syncs(&agent, 1).await?;
    let before = *agent.metrics.subscribe_syncs().borrow();

    edit(&config_maps, "a", "edited", "kubectl-edit").await?;
    until(&config_maps, "a", has_value("1"))
        .await
        .context("the periodic re-apply did not put the edit back")?;
    // Counted once the sync has reported, just after its apply.
    syncs(&agent, before + 1).await?;
    assert_eq!(
        *agent.metrics.drift.subscribe_rechecks().borrow(),
        0,
        "nothing watched"
    );

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_another_controller_keeps_setting_ends_contested() -> Result<()> {
    let ns = cluster().namespace("e2e-drift-contest").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        config(ns.name(), "", "{mode: correct}"),
    )?;
    fleet.push("correct drift")?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    syncs(&agent, 1).await?;

    // A controller that sets the value back whenever it isn't its own, as an HPA does with replicas.
    let fighter = tokio::spawn({
        let api = config_maps.clone();
        async move {
            let stream = watcher::watcher(
                api.clone(),
                watcher::Config::default().fields("metadata.name=a"),
            );
            futures::pin_mut!(stream);
            while let Some(event) = futures::StreamExt::next(&mut stream).await {
                if let Ok(Event::Apply(cm) | Event::InitApply(cm)) = event
                    && cm
                        .data
                        .as_ref()
                        .and_then(|d| d.get("value"))
                        .map(String::as_str)
                        != Some("autoscaled")
                {
                    let _ = edit(&api, "a", "autoscaled", "fake-autoscaler").await;
                }
            }
        }
    });
    let record = drift_record(&fleet, "prod", "a", |r| r.action == "contested").await?;
    fighter.abort();
    let _ = fighter.await;
    assert_eq!(record.contested_by, "fake-autoscaler", "{record:?}");
    let metrics = agent.metrics.render();
    assert!(
        metrics.contains("tether_drift_contested_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tether_drift_corrections_total 3"),
        "three corrections, then Tether stops: {metrics}"
    );
    // Tether gave up; the controller's value stands.
    until(&config_maps, "a", has_value("autoscaled")).await?;

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

fn deployment(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n        - name: web\n          image: registry.invalid/web:1\n"
    )
}

/// Until the agent has finished `n` syncs: each commit of the config repository is a sync too.
async fn syncs(agent: &tether_agent::app::RunningAgent, n: u64) -> Result<()> {
    let mut syncs = agent.metrics.subscribe_syncs();
    tokio::time::timeout(DEADLINE, syncs.wait_for(|done| *done >= n)).await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_detector_changes_the_verdict_and_a_trapping_one_falls_back() -> Result<()> {
    let ns = cluster().namespace("e2e-drift-plugin").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    fleet.repo.write("manifests/web.yaml", deployment(1))?;
    let plugins = repo_plugin(
        &fleet,
        "hpa-aware",
        tether_plugin_host::artifacts::HPA_AWARE_PATH,
    )? + &repo_plugin(
        &fleet,
        "trap-detector",
        tether_plugin_host::artifacts::TRAP_DETECTOR_PATH,
    )?;
    let with = |detector: &str| {
        config(
            ns.name(),
            &plugins,
            &format!("{{mode: correct, detector: {detector}}}"),
        )
    };
    fleet
        .repo
        .write(".tether/agents/prod/config.yaml", with("drift"))?;
    let first = fleet.push("judge drift with the built-in detector")?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let admin = cluster().admin().await?;
    let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), ns.name());
    let deployments = Api::<Deployment>::namespaced(admin, ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    syncs(&agent, 1).await?;

    // The autoscaler scales web, as the HPA controller does: through the scale subresource.
    let autoscale = || async {
        let hpa = PatchParams {
            field_manager: Some("kube-controller-manager".to_owned()),
            ..PatchParams::default()
        };
        deployments
            .patch_scale("web", &hpa, &Patch::Merge(json!({"spec": {"replicas": 3}})))
            .await
    };
    let replicas = |d: &Deployment| d.spec.replicas;
    let scaled_back = || {
        await_condition(deployments.clone(), "web", move |d: Option<&Deployment>| {
            d.and_then(replicas) == Some(1)
        })
    };

    // The built-in detector: the replicas are drift, owned by the autoscaler now, and put back.
    autoscale().await?;
    tokio::time::timeout(DEADLINE, scaled_back()).await??;
    let web = drift_record(&fleet, "prod", "web", |r| r.action == "corrected").await?;
    assert_eq!(web.commit_id, first);
    assert_eq!(web.fields[0].path, "/spec/replicas", "{web:?}");
    assert_eq!(web.fields[0].owner, "kube-controller-manager", "{web:?}");

    // hpa-aware: the autoscaler's replicas stand; a person's edit of a is still drift.
    fleet
        .repo
        .write(".tether/agents/prod/config.yaml", with("hpa-aware"))?;
    let second = fleet.push("judge drift with hpa-aware")?;
    syncs(&agent, 2).await?;
    autoscale().await?;
    edit(&config_maps, "a", "edited", "kubectl-edit").await?;
    until(&config_maps, "a", has_value("1")).await?;
    drift_record(&fleet, "prod", "a", |r| {
        r.commit_id == second && r.action == "corrected"
    })
    .await?;
    assert_eq!(replicas(&deployments.get("web").await?), Some(3));
    let web = drift_record(&fleet, "prod", "web", |_| true).await?;
    assert_eq!(
        web.commit_id, first,
        "no drift of web reported since: {web:?}"
    );

    // A detector that traps: the built-in verdict is used, and the failure is named.
    fleet
        .repo
        .write(".tether/agents/prod/config.yaml", with("trap-detector"))?;
    fleet.push("judge drift with a detector that traps")?;
    syncs(&agent, 3).await?;
    edit(&config_maps, "a", "edited again", "kubectl-edit").await?;
    until(&config_maps, "a", has_value("1")).await?;
    let record = drift_record(&fleet, "prod", "a", |r| !r.detector_failure.is_empty()).await?;
    assert!(
        record.detector_failure.starts_with("trap-detector:"),
        "{record:?}"
    );
    assert_eq!(record.action, "corrected", "{record:?}");
    let metrics = agent.metrics.render();
    assert!(
        metrics.contains("tether_drift_detector_failures_total{plugin=\"trap-detector\"}"),
        "{metrics}"
    );

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.drift.tether.dev\nspec:\n  group: drift.tether.dev\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n";
const WIDGET: &str =
    "apiVersion: drift.tether.dev/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_of_a_kind_whose_crd_is_deleted_stops_cleanly() -> Result<()> {
    let ns = cluster().namespace("e2e-drift-crd").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    fleet.repo.write("manifests/crd.yaml", CRD)?;
    fleet.repo.write("manifests/widget.yaml", WIDGET)?;
    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        config(ns.name(), "", "{mode: report, interval: 10s}"),
    )?;
    fleet.push("a CRD and one of its objects")?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;
    syncs(&agent, 1).await?;
    // ConfigMaps, CRDs, Widgets.
    let mut watches = agent.metrics.drift.subscribe_watches();
    tokio::time::timeout(DEADLINE, watches.wait_for(|n| *n == 3)).await??;

    let crds = Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(
        cluster().admin().await?,
    );
    crds.delete("widgets.drift.tether.dev", &DeleteParams::default())
        .await?;
    let crd = drift_record(&fleet, "prod", "widgets.drift.tether.dev", |r| {
        r.verdict == "missing"
    })
    .await?;
    assert_eq!(crd.action, "reported", "report mode: {crd:?}");
    tokio::time::timeout(DEADLINE, watches.wait_for(|n| *n == 2)).await??;

    // The agent goes on judging everything else.
    edit(&config_maps, "a", "edited", "kubectl-edit").await?;
    let record = drift_record(&fleet, "prod", "a", |_| true).await?;
    assert_eq!(record.action, "reported", "{record:?}");

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}
