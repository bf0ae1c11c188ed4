//! The built-in kustomize and helm renderers as the agent uses them: paths configured as
//! `kustomize:` and `helm:` in the agent's configuration, rendered from the files the server streams
//! and applied to the local control plane.

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use tether_e2e::fleet::{Fleet, REPO};
use tether_testkit::cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomize_overlays_and_helm_charts_are_rendered_and_applied() -> Result<()> {
    let ns = cluster().namespace("e2e-renderers").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[]).await?;
    let repo = &fleet.repo;
    repo.write(
        "kustomize/base/kustomization.yaml",
        "resources: [settings.yaml]\nconfigMapGenerator:\n  - name: app\n    literals: [mode=base]\n",
    )?;
    repo.write(
        "kustomize/base/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  tier: base\n",
    )?;
    repo.write(
        "kustomize/overlays/prod/kustomization.yaml",
        "resources: [../../base]\nnamePrefix: prod-\ncommonLabels: {env: prod}\nconfigMapGenerator:\n  - name: app\n    behavior: merge\n    literals: [mode=prod]\n",
    )?;
    repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    )?;
    repo.write("charts/web/values.yaml", "colour: red\nsize: small\n")?;
    repo.write("charts/web/values-prod.yaml", "size: large\n")?;
    repo.write(
        "charts/web/templates/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n  labels:\n    app.kubernetes.io/managed-by: {{ .Release.Service }}\ndata:\n  colour: {{ .Values.colour | quote }}\n  size: {{ .Values.size | quote }}\n  namespace: {{ .Release.Namespace }}\n",
    )?;
    repo.write(
        ".tether/agents/prod/config.yaml",
        format!(
            "gitops:\n  manifest_projects:\n    - id: {REPO}\n      default_namespace: {ns}\n      paths:\n        - glob: 'kustomize/**'\n          kustomize: kustomize/overlays/prod\n        - glob: 'charts/web/**'\n          helm:\n            chart: charts/web\n            release: shop\n            values_files: [charts/web/values-prod.yaml]\n            values: {{colour: blue}}\n",
            ns = ns.name()
        ),
    )?;
    let commit = fleet.push("an overlay and a chart")?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let status = fleet.status_of("prod", &commit).await?;
    assert_eq!(status.result, "succeeded", "{status:?}");

    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    let settings = config_maps.get("prod-settings").await?;
    assert_eq!(settings.labels()["env"], "prod");
    let generated = config_maps
        .list(&ListParams::default().labels("env=prod"))
        .await?
        .items
        .into_iter()
        .find(|cm| {
            cm.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("prod-app-"))
        })
        .expect("the generated ConfigMap, with its content hash");
    assert_eq!(
        generated.data.unwrap()["mode"],
        "prod",
        "merged by the overlay"
    );

    let chart = config_maps.get("shop-config").await?;
    assert_eq!(chart.labels()["app.kubernetes.io/managed-by"], "Helm");
    let data = chart.data.unwrap();
    assert_eq!(data["colour"], "blue", "values from the config win");
    assert_eq!(data["size"], "large", "from the values file");
    assert_eq!(
        data["namespace"],
        ns.name(),
        "the project's default namespace"
    );

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}
