//! How fast drift is noticed and put back, with 1000 managed objects on the local control plane:
//!
//! - edit → reported: a ConfigMap's value changed by another field manager, from the edit's response
//!   until the server holds the agent's drift report for it;
//! - edit → corrected: from the same edit until a watch sees the value back;
//! - delete → re-created: from the delete's response until a watch sees the object again;
//! - the bench process's resident memory (server, agent and the bench's own watches) before the
//!   agent starts, and while it watches 1000 objects.
//!
//! Every round edits another object, so no correction waits for the backoff of an earlier one.
//!
//! Run: `cargo bench -p tether-e2e --bench drift` (starts its own control plane), or under
//! `scripts/test`'s control plane with `TETHER_TEST_CLUSTER` set.
#![allow(clippy::print_stdout)] // a benchmark's report is its standard output

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, ResourceExt};
use serde_json::json;
use tether_e2e::fleet::{Fleet, REPO};
use tether_testkit::cluster;

const OBJECTS: usize = 1000;
const ROUNDS: usize = 30;
const DEADLINE: Duration = Duration::from_secs(120);

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn row(what: &str, samples: &mut [Duration]) {
    println!(
        "| {what} | {} | {:.0} ms | {:.0} ms |",
        samples.len(),
        percentile(samples, 0.5).as_secs_f64() * 1000.0,
        percentile(samples, 0.99).as_secs_f64() * 1000.0
    );
}

/// Resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn until_value(api: &Api<ConfigMap>, name: &str, value: &str) -> Result<()> {
    let value = value.to_owned();
    tokio::time::timeout(
        DEADLINE,
        await_condition(api.clone(), name, move |cm: Option<&ConfigMap>| {
            cm.and_then(|c| c.data.as_ref())
                .and_then(|d| d.get("value"))
                .is_some_and(|v| *v == value)
        }),
    )
    .await??;
    Ok(())
}

/// Until the server holds a drift report of `name` (each round drifts another object).
async fn until_reported(fleet: &Fleet, name: &str) -> Result<()> {
    let log = &fleet.server.context().drift;
    let mut changes = log.subscribe();
    tokio::time::timeout(DEADLINE, async {
        loop {
            let found = log
                .of("bench")
                .get(REPO)
                .is_some_and(|records| records.iter().any(|r| r.object.name == name));
            if found {
                return Ok::<_, anyhow::Error>(());
            }
            changes.changed().await?;
        }
    })
    .await??;
    Ok(())
}

async fn drift_1000() -> Result<()> {
    let ns = cluster().namespace("bench-drift").await?;
    let names: Vec<String> = (0..OBJECTS).map(|i| format!("cm-{i:04}")).collect();
    let initial: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let fleet = Fleet::start(&[("bench", ns.name())], &initial).await?;
    let before = rss_mib();
    let agent = fleet.agent("bench", ns.name()).await?;
    let api = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    let mut syncs = agent.metrics.subscribe_syncs();
    tokio::time::timeout(DEADLINE, syncs.wait_for(|n| *n >= 1)).await??;
    let watching = rss_mib();

    let edit = PatchParams {
        field_manager: Some("kubectl-edit".to_owned()),
        ..PatchParams::default()
    };
    let (mut reported, mut corrected, mut recreated) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let name = &names[round * 7];
        let start = Instant::now();
        api.patch(
            name,
            &edit,
            &Patch::Merge(json!({"data": {"value": "edited"}})),
        )
        .await?;
        let (back, told) = tokio::join!(
            async { until_value(&api, name, "1").await.map(|()| start.elapsed()) },
            async { until_reported(&fleet, name).await.map(|()| start.elapsed()) },
        );
        corrected.push(back?);
        reported.push(told?);

        let other = &names[round * 7 + 3];
        let uid = api.get(other).await?.uid();
        let start = Instant::now();
        api.delete(other, &DeleteParams::default()).await?;
        tokio::time::timeout(
            DEADLINE,
            await_condition(api.clone(), other, move |cm: Option<&ConfigMap>| {
                cm.is_some_and(|c| c.uid() != uid)
            }),
        )
        .await??;
        recreated.push(start.elapsed());
    }
    let corrections = agent
        .metrics
        .drift
        .corrections
        .load(std::sync::atomic::Ordering::Relaxed);
    if corrections < 2 * ROUNDS as u64 {
        bail!("only {corrections} corrections for {ROUNDS} edits and {ROUNDS} deletions");
    }
    println!("| measurement | rounds | p50 | p99 |\n|---|---|---|---|");
    row("edit → corrected (1000 objects watched)", &mut corrected);
    row("edit → reported to the server", &mut reported);
    row("delete → re-created", &mut recreated);
    println!(
        "\nbench process RSS: {before:.1} MiB before the agent, {watching:.1} MiB with the agent watching {OBJECTS} objects ({:.1} MiB more)",
        watching - before
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
    drift_1000().await
}
