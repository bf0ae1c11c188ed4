//! The agent's install manifests (deploy/agent) on the real API server: the namespaced variant
//! installs and rolls out, the cluster-wide one passes the server's validation, and an agent
//! acting as the installed ServiceAccount syncs into its namespace while RBAC keeps it out of
//! every other.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::wait::await_condition;
use tether_agent::app::ModeFlag;
use tether_e2e::fleet::{DEADLINE, Fleet};
use tether_testkit::{cluster, repo_root};

fn kubectl(args: &[&str], file: &Path) -> Result<String> {
    let localkube = tether_testkit::cluster::build_localkube()?;
    let out = Command::new(localkube)
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(cluster().kubeconfig())
        .args(args)
        .arg("-f")
        .arg(file)
        .output()?;
    if !out.status.success() {
        bail!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_install_manifests_work_and_bound_the_agent() -> Result<()> {
    let deploy = repo_root().join("deploy/agent");
    kubectl(&["apply", "--server-side"], &deploy.join("namespaced.yaml"))?;
    let admin = cluster().admin().await?;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), "tether-system");
    let available = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.available_replicas)
            == Some(2)
    };
    tokio::time::timeout(
        DEADLINE,
        await_condition(deployments, "tether-agent", available),
    )
    .await??;

    // The cluster-wide variant, validated by the API server without being persisted.
    let dry = kubectl(
        &["apply", "--server-side", "--dry-run=server"],
        &deploy.join("cluster-wide.yaml"),
    )?;
    assert!(
        dry.contains(
            "clusterrole.rbac.authorization.k8s.io/tether-agent serverside-applied (server dry run)"
        ),
        "{dry}"
    );

    // An agent with the installed ServiceAccount's token, in namespaced mode.
    let credentials = cluster().token_for("tether-system", "tether-agent").await?;
    let fleet = Fleet::start(&[("apps-agent", "apps")], &[("settings", "1")]).await?;
    let agent = fleet
        .agent_with("apps-agent", "tether-system", |options| {
            options.kubeconfig = Some(credentials.kubeconfig.clone());
            options.mode = ModeFlag::Namespaced;
            options.namespaces = vec!["apps".into()];
        })
        .await?;
    let in_apps = Api::<ConfigMap>::namespaced(admin, "apps");
    tokio::time::timeout(
        DEADLINE,
        await_condition(in_apps, "settings", |cm: Option<&ConfigMap>| cm.is_some()),
    )
    .await??;

    // RBAC keeps the ServiceAccount out of every other namespace.
    let as_agent = credentials.client().await?;
    let elsewhere = Api::<ConfigMap>::namespaced(as_agent, "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "intruder"}}))?,
        )
        .await;
    assert!(
        matches!(&elsewhere, Err(kube::Error::Api(s)) if s.code == 403),
        "{elsewhere:?}"
    );

    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}
