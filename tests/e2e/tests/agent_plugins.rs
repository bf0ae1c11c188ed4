//! Plugins kept in the config repository (`repo_file:`): the agent has no checkout, so it fetches
//! them from the server at the configuration's commit, checks their digest, and renders with them.

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use sha2::{Digest, Sha256};
use tether_e2e::fleet::{Fleet, REPO};
use tether_e2e::wait::{has_value, until};
use tether_testkit::cluster;

fn config(namespace: &str, digest: &str) -> String {
    format!(
        "plugins:\n  - name: hello\n    world: renderer\n    repo_file: .tether/plugins/hello.wasm\n    sha256: {digest}\n\
         gitops:\n  manifest_projects:\n    - id: {REPO}\n      default_namespace: {namespace}\n      paths:\n        - glob: 'manifests/**/*.yaml'\n        - glob: 'greeting/*'\n          render: {{plugin: hello, settings: {{name: greeting, text: hi}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_from_the_config_repository_renders_after_its_digest_is_checked() -> Result<()> {
    let ns = cluster().namespace("e2e-repo-plugin").await?;
    let fleet = Fleet::start(&[("prod", ns.name())], &[("a", "1")]).await?;
    let component = std::fs::read(tether_plugin_host::artifacts::HELLO_PATH)?;
    let digest = hex::encode(Sha256::digest(&component));
    fleet.repo.write(".tether/plugins/hello.wasm", &component)?;
    fleet
        .repo
        .write("greeting/README", "rendered by the hello plugin")?;

    // A digest that doesn't match: the plugin is refused, so the commit fails and nothing of it
    // is applied.
    let wrong = "0".repeat(64);
    fleet
        .repo
        .write(".tether/agents/prod/config.yaml", config(ns.name(), &wrong))?;
    let refused = fleet.push("hello plugin with a wrong digest")?;
    let agent = fleet.agent("prod", ns.name()).await?;
    let status = fleet.status_of("prod", &refused).await?;
    assert_eq!(status.result, "failed", "{status:?}");
    assert!(status.message.contains("sha256 mismatch"), "{status:?}");
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    assert!(config_maps.get_opt("greeting").await?.is_none());

    fleet.repo.write(
        ".tether/agents/prod/config.yaml",
        config(ns.name(), &digest),
    )?;
    let accepted = fleet.push("hello plugin with its digest")?;
    fleet
        .status_where("prod", &accepted, |s| s.result == "succeeded")
        .await?;
    let greeting = config_maps.get("greeting").await?;
    assert_eq!(greeting.data.unwrap()["text"], "hi");
    until(&config_maps, "a", has_value("1")).await?;

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}
