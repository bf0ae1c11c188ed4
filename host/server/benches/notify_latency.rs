//! Push → client-stream latency: a commit is pushed to a real Git server, the server is notified through
//! its signed push endpoint, and the time until a connected gRPC client holds the complete new set of
//! files is measured. Target: < 200 ms (docs/PERFORMANCE.md, `## Server`).
//!
//! `cargo bench -p tether-server --bench notify_latency` (set `NOTIFY_LATENCY_ROUNDS` to change the
//! number of rounds, default 30).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::time::{Duration, Instant};
use tether_testkit::GitServer;

const MANIFEST: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bench}\ndata: {round: \"0\"}\n";

fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rounds: usize = std::env::var("NOTIFY_LATENCY_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut out = std::io::stdout().lock();
    for (transport, url_of) in [
        (
            "git://",
            GitServer::git_url as fn(&GitServer, &str) -> String,
        ),
        ("smart HTTP", GitServer::http_url),
    ] {
        let samples = runtime.block_on(measure(rounds, url_of))?;
        writeln!(out, "{}", summary(transport, &samples))?;
    }
    Ok(())
}

async fn measure(
    rounds: usize,
    url_of: fn(&GitServer, &str) -> String,
) -> anyhow::Result<Vec<Duration>> {
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    for i in 0..20 {
        repo.write(&format!("manifests/{i:02}.yaml"), MANIFEST)?;
    }
    repo.commit("initial")?;
    let h = common::Harness::start(&format!(
        "repositories:\n  - {{name: apps, url: '{}'}}\n",
        url_of(&git, "apps")
    ))
    .await?;
    let token = h.agent("bench", "apps")?;
    let mut sync = h.sync(&token, "apps", &["**/*.yaml"]).await?;
    sync.next_set().await?;
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        repo.write(
            "manifests/00.yaml",
            MANIFEST.replace("\"0\"", &format!("\"{round}\"")),
        )?;
        let commit = repo.commit(&format!("round {round}"))?;
        let start = Instant::now();
        let (status, body) = h.push("apps").await?;
        anyhow::ensure!(status == 202, "push endpoint answered {status}: {body}");
        let set = sync.next_set().await?;
        samples.push(start.elapsed());
        anyhow::ensure!(
            set.commit_id == commit,
            "got {} instead of {commit}",
            set.commit_id
        );
    }
    h.server.shutdown().await;
    Ok(samples)
}

fn summary(transport: &str, samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "{transport:<11} rounds={} min={:?} median={:?} p90={:?} max={:?}",
        sorted.len(),
        sorted[0],
        at(0.5),
        at(0.9),
        sorted[sorted.len() - 1]
    )
}
