//! Charts render against the cluster they are applied to: `.Capabilities.APIVersions` holds what
//! the local control plane serves (a CRD registered by this test included) and
//! `.Capabilities.KubeVersion` its version, as `helm template --validate` would see them.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;
use tether_agent::gitops::{ClusterCapabilities, ProjectFiles, render_project};
use tether_config::agent::parse_agent_config;
use tether_plugin_host::{ClusterInfo, EngineOptions, NoPluginFiles, PluginCatalog, PluginEngine};
use tether_testkit::cluster;

const DEADLINE: Duration = Duration::from_secs(60);

const CHART: &str = "apiVersion: v2\nname: caps\nversion: 0.1.0\n";
const TEMPLATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: caps
data:
  widget: {{ .Capabilities.APIVersions.Has (printf "%s/v1/Widget" .Values.group) | quote }}
  group: {{ .Capabilities.APIVersions.Has (printf "%s/v1" .Values.group) | quote }}
  apps: {{ .Capabilities.APIVersions.Has "apps/v1/Deployment" | quote }}
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
"#;

/// Renders the chart as the agent does: off the runtime's threads (plugins run synchronously).
async fn render(group: &str, cluster: &ClusterInfo) -> Result<serde_json::Value> {
    let (group, cluster) = (group.to_owned(), cluster.clone());
    tokio::task::spawn_blocking(move || render_blocking(&group, &cluster)).await?
}

fn render_blocking(group: &str, cluster: &ClusterInfo) -> Result<serde_json::Value> {
    let files = ProjectFiles::write([
        ("charts/caps/Chart.yaml", CHART.as_bytes()),
        ("charts/caps/templates/cm.yaml", TEMPLATE.as_bytes()),
    ])?;
    let config = parse_agent_config(
        &format!(
            "gitops:\n  manifest_projects:\n    - id: app\n      paths:\n        - glob: 'charts/caps/**'\n          helm: {{chart: charts/caps, release: caps, values: {{group: {group}}}}}\n"
        ),
        "config.yaml",
    )?;
    let project = config
        .gitops
        .manifest_projects
        .iter()
        .next()
        .unwrap()
        .clone();
    let engine = PluginEngine::new(EngineOptions::default())?;
    let catalog = PluginCatalog::load(&engine, &Default::default(), &NoPluginFiles);
    let rendered = render_project(&catalog, &project, &files, cluster)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(rendered.objects.len(), 1);
    Ok(serde_json::to_value(&rendered.objects[0].object)?["data"].clone())
}

#[tokio::test]
async fn charts_see_the_clusters_version_and_served_api_versions() -> Result<()> {
    let ns = cluster().namespace("caps").await?;
    let client = cluster().admin().await?;
    let group = format!("{}.e2e.tether.dev", ns.name());
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let name = format!("widgets.{group}");
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
                }]
            }
        }))?,
    )
    .await?;
    tokio::time::timeout(
        DEADLINE,
        await_condition(crds.clone(), &name, conditions::is_crd_established()),
    )
    .await??;

    let info = ClusterCapabilities::new(client.clone()).get().await?;
    let version = client.apiserver_version().await?.git_version;
    assert_eq!(info.version, version);
    let data = render(&group, &info).await?;
    assert_eq!(data["widget"], "true", "{data}");
    assert_eq!(data["group"], "true", "{data}");
    assert_eq!(data["apps"], "true", "{data}");
    assert_eq!(data["kube"], version.as_str(), "{data}");

    // Offline (no cluster), the chart sees helm template's defaults: the CRD is unknown.
    let data = render(&group, &ClusterInfo::default()).await?;
    assert_eq!(data["widget"], "false", "{data}");

    crds.delete(&name, &DeleteParams::default()).await?;
    Ok(())
}
