//! What the tunnel costs, side by side in one run on the local control plane:
//!
//! - latency of a small GET (one ConfigMap), direct to the API server and through the
//!   people's listener, the server's broker and one agent's tunnel (p50 and p99 of sequential requests);
//! - small GETs per second through one agent, 32 requests in flight, and the same direct;
//! - `kubectl get configmaps` of 100 objects, direct and through the tunnel (median of the runs).
//!
//! Run: `scripts/test --workspace --bench tunnel` (the test build, on `scripts/test`'s control plane),
//! or `cargo bench --workspace --bench tunnel` for a release build (starts its own control plane).
#![allow(clippy::print_stdout)] // a benchmark's report is its standard output

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use tether_e2e::tunnel::{Setup, config_map, grant_config_maps, kubectl_ok};
use tether_testkit::cluster;
use tether_testkit::cluster::client_from_kubeconfig;

const LATENCY_ROUNDS: usize = 500;
const THROUGHPUT_FOR: Duration = Duration::from_secs(5);
const IN_FLIGHT: usize = 32;
const KUBECTL_ROUNDS: usize = 9;

/// One small GET: a ConfigMap of the bench's namespace, read and decoded.
async fn small_get(api: &Api<ConfigMap>) -> Result<()> {
    api.get("cm-000").await?;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn latency(name: &str, client: &Api<ConfigMap>) -> Result<(Duration, Duration)> {
    for _ in 0..20 {
        small_get(client).await?;
    }
    let mut times = Vec::with_capacity(LATENCY_ROUNDS);
    for _ in 0..LATENCY_ROUNDS {
        let start = Instant::now();
        small_get(client).await?;
        times.push(start.elapsed());
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!("small GET latency, {name}: p50 {p50:?}, p99 {p99:?} ({LATENCY_ROUNDS} requests)");
    Ok((p50, p99))
}

async fn throughput(name: &str, client: &Api<ConfigMap>) -> Result<f64> {
    let done = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + THROUGHPUT_FOR;
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, done) = (client.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                small_get(&client).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / THROUGHPUT_FOR.as_secs_f64();
    println!("small GETs per second, {name}: {rate:.0} ({IN_FLIGHT} in flight)");
    Ok(rate)
}

async fn kubectl_list(name: &str, kubeconfig: &std::path::Path, namespace: &str) -> Result<()> {
    let mut times = Vec::new();
    for _ in 0..KUBECTL_ROUNDS {
        let start = Instant::now();
        let out = kubectl_ok(
            kubeconfig,
            &["get", "configmaps", "-n", namespace, "-o", "name"],
        )
        .await?;
        times.push(start.elapsed());
        anyhow::ensure!(
            out.lines().count() >= 100,
            "kubectl listed {}",
            out.lines().count()
        );
    }
    times.sort();
    println!(
        "kubectl get configmaps (100 objects), {name}: median {:?} ({KUBECTL_ROUNDS} runs)",
        times[KUBECTL_ROUNDS / 2]
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let setup = Setup::start(&[(
        "bench",
        "user_access:\n  access_as: {user: {}}\n  users: [alice]\n",
    )])
    .await?;
    let agent = setup.agent("bench").await?;
    let ns = setup.ns.name().to_owned();
    grant_config_maps(&ns, "alice").await?;
    let admin = Api::<ConfigMap>::namespaced(cluster().admin().await?, &ns);
    for i in 0..100 {
        admin
            .create(
                &PostParams::default(),
                &config_map(&format!("cm-{i:03}"), &[]),
            )
            .await?;
    }
    let (_, token) = setup.person("alice", &[], None)?;
    let through = setup.kubeconfig("bench", &token).await?;
    let direct_client = Api::<ConfigMap>::namespaced(cluster().admin().await?, &ns);
    let tunnel_client = Api::<ConfigMap>::namespaced(client_from_kubeconfig(&through).await?, &ns);

    let (direct_p50, _) = latency("direct", &direct_client).await?;
    let (tunnel_p50, _) = latency("through the tunnel (gRPC)", &tunnel_client).await?;
    println!(
        "added latency p50: {:?}",
        tunnel_p50.saturating_sub(direct_p50)
    );
    throughput("direct", &direct_client).await?;
    throughput("through the tunnel (gRPC)", &tunnel_client).await?;
    kubectl_list("direct", cluster().kubeconfig(), &ns).await?;
    kubectl_list("through the tunnel (gRPC)", &through, &ns).await?;
    println!(
        "tunnel pool after the run: {} streams, {} idle, {} requests served",
        agent.tunnel_pool.total(),
        agent.tunnel_pool.idle(),
        agent.tunnel_pool.served()
    );
    agent.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}
