//! How fast a commit reaches the cluster, next to `kubectl apply --server-side` on the same files
//! in the same run, against the local control plane:
//!
//! - push → 100 objects applied: every ConfigMap of a 100-object project changes in one commit;
//!   measured from the moment the commit is in the repository (the server is notified at once)
//!   until a watch sees all 100 with the new value. kubectl: `apply --server-side` of the same 100
//!   files, until the command returns.
//! - first sync of 1000 objects: from starting an agent until a watch sees all 1000; kubectl: one
//!   `apply --server-side` of the same 1000 files into an empty namespace.
//!
//! Run: `cargo bench -p tether-e2e --bench sync` (starts its own control plane), or under
//! `scripts/test`'s control plane with `TETHER_TEST_CLUSTER` set.
#![allow(clippy::print_stdout)] // a benchmark's report is its standard output

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tether_e2e::fleet::{Fleet, config_map};
use tether_testkit::cluster;

const ROUNDS: usize = 15;

/// Waits until `count` ConfigMaps in the namespace hold `value`, watching (never polling).
async fn until_all(api: &Api<ConfigMap>, count: usize, value: &str) -> Result<()> {
    let mut values: HashMap<String, String> = HashMap::new();
    let done =
        |values: &HashMap<String, String>| values.values().filter(|v| *v == value).count() >= count;
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    let deadline = tokio::time::sleep(Duration::from_secs(300));
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            _ = &mut deadline => bail!("not all {count} objects reached {value}"),
            e = events.try_next() => e?,
        };
        match event {
            Some(Event::Apply(cm) | Event::InitApply(cm)) => {
                let v = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("value"))
                    .cloned()
                    .unwrap_or_default();
                values.insert(cm.metadata.name.unwrap_or_default(), v);
            }
            Some(Event::Delete(cm)) => {
                values.remove(&cm.metadata.name.unwrap_or_default());
            }
            Some(Event::Init | Event::InitDone) => {}
            None => bail!("the watch ended"),
        }
        if done(&values) {
            return Ok(());
        }
    }
}

fn write_manifests(dir: &Path, count: usize, value: &str) -> Result<()> {
    for i in 0..count {
        std::fs::write(
            dir.join(format!("cm-{i:04}.yaml")),
            config_map(&format!("cm-{i:04}"), value),
        )?;
    }
    Ok(())
}

fn kubectl_apply(localkube: &Path, dir: &Path, namespace: &str) -> Result<Duration> {
    let start = Instant::now();
    let out = Command::new(localkube)
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(cluster().kubeconfig())
        .args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "kubectl-bench",
            "-n",
            namespace,
            "-f",
        ])
        .arg(dir)
        .output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn row(what: &str, samples: &mut [Duration]) {
    let p50 = percentile(samples, 0.5);
    let p99 = percentile(samples, 0.99);
    println!(
        "| {what} | {} | {:.0} ms | {:.0} ms |",
        samples.len(),
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
}

async fn push_100() -> Result<()> {
    const OBJECTS: usize = 100;
    let ns = cluster().namespace("bench-push").await?;
    let kubectl_ns = cluster().namespace("bench-push-kubectl").await?;
    let names: Vec<String> = (0..OBJECTS).map(|i| format!("cm-{i:04}")).collect();
    let initial: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "0")).collect();
    let fleet = Fleet::start(&[("bench", ns.name())], &initial).await?;
    let agent = fleet.agent("bench", ns.name()).await?;
    let api = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until_all(&api, OBJECTS, "0").await?;

    let localkube = tether_testkit::cluster::build_localkube()?;
    let files = tempfile::tempdir()?;
    let kubectl_api = Api::<ConfigMap>::namespaced(cluster().admin().await?, kubectl_ns.name());
    write_manifests(files.path(), OBJECTS, "0")?;
    kubectl_apply(&localkube, files.path(), kubectl_ns.name())?;
    until_all(&kubectl_api, OBJECTS, "0").await?;

    let (mut tether, mut kubectl) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let value = round.to_string();
        for name in &names {
            fleet
                .repo
                .write(&format!("manifests/{name}.yaml"), config_map(name, &value))?;
        }
        fleet.repo.commit(&format!("round {round}"))?;
        let start = Instant::now();
        assert!(
            fleet
                .server
                .context()
                .sources
                .notify(tether_e2e::fleet::REPO)
        );
        until_all(&api, OBJECTS, &value).await?;
        tether.push(start.elapsed());

        write_manifests(files.path(), OBJECTS, &value)?;
        kubectl.push(kubectl_apply(&localkube, files.path(), kubectl_ns.name())?);
    }
    row("push → 100 objects applied, tether", &mut tether);
    row(
        "`kubectl apply --server-side`, same 100 files",
        &mut kubectl,
    );
    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

async fn first_sync_1000() -> Result<()> {
    const OBJECTS: usize = 1000;
    let ns = cluster().namespace("bench-first").await?;
    let kubectl_ns = cluster().namespace("bench-first-kubectl").await?;
    let names: Vec<String> = (0..OBJECTS).map(|i| format!("cm-{i:04}")).collect();
    let initial: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let fleet = Fleet::start(&[("bench", ns.name())], &initial).await?;
    let api = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    let start = Instant::now();
    let agent = fleet.agent("bench", ns.name()).await?;
    until_all(&api, OBJECTS, "1").await?;
    let mut tether = vec![start.elapsed()];

    let localkube = tether_testkit::cluster::build_localkube()?;
    let files = tempfile::tempdir()?;
    write_manifests(files.path(), OBJECTS, "1")?;
    let mut kubectl = vec![kubectl_apply(&localkube, files.path(), kubectl_ns.name())?];
    row("first sync of 1000 objects, tether", &mut tether);
    row(
        "`kubectl apply --server-side`, same 1000 files",
        &mut kubectl,
    );
    agent.shutdown().await;
    fleet.server.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo test --benches` runs bench targets with --bench absent: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    println!("| measurement | runs | p50 | p99 |\n|---|---|---|---|");
    push_100().await?;
    first_sync_1000().await?;
    Ok(())
}
