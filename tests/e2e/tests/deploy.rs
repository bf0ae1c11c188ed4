//! The agent's install manifests (deploy/agent) on the real API server: the namespaced variant
//! installs and rolls out, the cluster-wide one passes the server's validation, every directory
//! the agent writes to is a writable volume under the read-only root filesystem, and an agent
//! acting as the installed ServiceAccount, with those directories, syncs into its namespace while
//! RBAC keeps it out of every other.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec};
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
        await_condition(deployments.clone(), "tether-agent", available),
    )
    .await??;

    // As installed: a read-only root filesystem, so the work and cache dirs must be volumes.
    let installed = deployments.get("tether-agent").await?;
    let pod = installed.spec.template.spec.expect("a pod template");
    let writable = writable_dirs(&pod, "agent")?;
    assert_eq!(
        writable.keys().collect::<Vec<_>>(),
        ["TETHER_CACHE_DIR", "TETHER_WORK_DIR"],
        "{writable:?}"
    );

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
    // The pod's writable volumes, under a directory standing in for its root filesystem.
    let root = tempfile::tempdir()?;
    let in_root = |path: &PathBuf| root.path().join(path.strip_prefix("/").unwrap_or(path));
    let agent = fleet
        .agent_with("apps-agent", "tether-system", |options| {
            options.kubeconfig = Some(credentials.kubeconfig.clone());
            options.mode = ModeFlag::Namespaced;
            options.namespaces = vec!["apps".into()];
            options.work_dir = Some(in_root(&writable["TETHER_WORK_DIR"]));
            options.cache_dir = Some(in_root(&writable["TETHER_CACHE_DIR"]));
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

/// The agent's settings for the directories it writes to.
const WRITTEN_DIRS: [&str; 2] = ["TETHER_CACHE_DIR", "TETHER_WORK_DIR"];

/// The directories container `name` is told to write to, each checked to be on a writable
/// emptyDir volume under its read-only root filesystem.
fn writable_dirs(pod: &PodSpec, name: &str) -> Result<std::collections::BTreeMap<String, PathBuf>> {
    let container: &Container = pod
        .containers
        .iter()
        .find(|c| c.name == name)
        .expect("the agent's container");
    let read_only_root = container
        .security_context
        .as_ref()
        .and_then(|s| s.read_only_root_filesystem)
        == Some(true);
    assert!(
        read_only_root,
        "the agent runs with a read-only root filesystem"
    );
    let mut dirs = std::collections::BTreeMap::new();
    for var in container.env.iter().flatten() {
        if !WRITTEN_DIRS.contains(&var.name.as_str()) {
            continue;
        }
        let dir = PathBuf::from(var.value.clone().unwrap_or_default());
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| dir.starts_with(&m.mount_path) && m.read_only != Some(true));
        let Some(mount) = mount else {
            bail!(
                "{} = {} is not on a writable volume",
                var.name,
                dir.display()
            );
        };
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .expect("a mounted volume is declared");
        if volume.empty_dir.is_none() {
            bail!("{}: volume {} is not an emptyDir", var.name, volume.name);
        }
        dirs.insert(var.name.clone(), dir);
    }
    Ok(dirs)
}
