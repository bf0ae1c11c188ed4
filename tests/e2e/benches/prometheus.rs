//! What the Prometheus proxy costs, side by side in one run with a real Prometheus (Debian's, on
//! loopback, scraping itself and two fixture workloads):
//!
//! - an instant query (`up`), direct to Prometheus and through the people's listener, the server's
//!   broker, one agent's tunnel and the `prometheus` proxy plugin (p50 and p99, sequential);
//! - the same with tenancy on (the expression parsed, rewritten and checked in the plugin);
//! - the plugin alone: one call with an upstream that answers at once (fresh instance per call);
//! - the plugin's size, and its load time compiled versus from the on-disk cache.
//!
//! Run: `scripts/test --workspace --bench prometheus` (under the test kit's control plane), or
//! `cargo bench -p tether-e2e --bench prometheus` with `TETHER_TEST_CLUSTER` set.
#![allow(clippy::print_stdout)] // a benchmark's report is its standard output

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use tether_e2e::prometheus::{Http, Metrics, through};
use tether_e2e::tunnel::Setup;
use tether_plugin_host::{
    EngineOptions, HttpRequest, HttpResponse, OutboundError, OutboundTransport, PluginDefinition,
    PluginEngine, World, builtin,
};

const ROUNDS: usize = 500;
/// The server allows a person 600 Prometheus requests a minute (`people.prometheus`, burst 60): the
/// tunnelled rounds are spaced so the rate limit never answers instead of Prometheus. The spacing is
/// not part of any measured time.
const PACE: Duration = Duration::from_millis(110);
const PLUGIN_ROUNDS: usize = 2000;
const ALICE: &str = "user_access:\n  access_as: {agent: {}}\n  users: [alice]\n";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn latency(
    name: &str,
    http: &Http,
    base: &str,
    token: Option<&str>,
) -> Result<(Duration, Duration)> {
    let path = "/api/v1/query?query=up";
    for _ in 0..20 {
        let (status, _) = http.get(base, path, token).await?;
        ensure!(status == 200, "{name}: status {status}");
        tokio::time::sleep(PACE).await;
    }
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        tokio::time::sleep(PACE).await;
        let start = Instant::now();
        let (status, _) = http.get(base, path, token).await?;
        times.push(start.elapsed());
        ensure!(status == 200, "{name}: status {status}");
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!("instant query `up`, {name}: p50 {p50:?}, p99 {p99:?} ({ROUNDS} requests)");
    Ok((p50, p99))
}

/// An upstream that answers at once, to time the plugin alone.
struct Instant200;

impl OutboundTransport for Instant200 {
    fn send(&self, _: HttpRequest) -> Result<HttpResponse, OutboundError> {
        Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.to_vec(),
        })
    }
}

fn plugin_costs() -> Result<()> {
    let bytes = builtin::PROMETHEUS.component;
    println!("plugin size: {} KiB", bytes.len() / 1024);
    let cache = tempfile::tempdir()?;
    let engine = || {
        PluginEngine::new(EngineOptions {
            cache_dir: Some(cache.path().to_owned()),
            ..EngineOptions::default()
        })
    };
    let definition = |settings: Vec<(String, String)>| PluginDefinition {
        settings: tether_config::plugins::Settings::new(settings).unwrap(),
        allowed_urls: vec![
            "http://prometheus:9090/api/v1/"
                .to_owned()
                .try_into()
                .unwrap(),
        ],
        ..PluginDefinition::new("prometheus", World::Proxy, bytes)
    };
    let cold = engine()?;
    let start = Instant::now();
    cold.load(definition(vec![]))?;
    println!("plugin load, compiled: {:?}", start.elapsed());
    let warm = engine()?;
    let start = Instant::now();
    warm.load(definition(vec![]))?;
    println!("plugin load, from the cache: {:?}", start.elapsed());
    for (name, settings) in [
        ("no tenancy", vec![]),
        (
            "tenancy",
            vec![(
                "enforce".to_owned(),
                r#"namespace=~"team-a|team-b""#.to_owned(),
            )],
        ),
    ] {
        let mut settings = settings;
        settings.insert(0, ("url".to_owned(), "http://prometheus:9090".to_owned()));
        let plugin = warm.load(definition(settings))?;
        let transport: Arc<dyn OutboundTransport> = Arc::new(Instant200);
        let request = HttpRequest {
            method: "GET".into(),
            target: "/api/v1/query".into(),
            query: vec![(
                "query".into(),
                "sum by (namespace) (rate(http_requests_total[5m]))".into(),
            )],
            headers: vec![],
            body: vec![],
        };
        let mut times = Vec::with_capacity(PLUGIN_ROUNDS);
        for _ in 0..PLUGIN_ROUNDS {
            let start = Instant::now();
            let response = plugin.handle(&request, transport.clone())?;
            times.push(start.elapsed());
            ensure!(
                response.status == 200,
                "{}",
                String::from_utf8_lossy(&response.body)
            );
        }
        times.sort();
        println!(
            "plugin call alone ({name}): p50 {:?}, p99 {:?} ({PLUGIN_ROUNDS} calls, fresh instance each)",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tokio::task::spawn_blocking(plugin_costs).await??;
    let metrics = Metrics::start().await?;
    let plain = format!("{ALICE}prometheus:\n  url: {}\n", metrics.url());
    let tenant = format!(
        "{ALICE}prometheus:\n  url: {}\n  enforce: 'namespace=~\"team-a\"'\n",
        metrics.url()
    );
    let setup = Setup::start(&[("bench", &plain), ("tenant", &tenant)]).await?;
    let agent = setup.agent("bench").await?;
    let tenant_agent = setup.agent("tenant").await?;
    let (_, token) = setup.person("alice", &[], None)?;
    let http = Http::with_tls(setup.tls.clone());
    // The plugin loads once the configuration is in: wait for the first answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    for agent in ["bench", "tenant"] {
        while http
            .get(
                &through(setup.people(), agent),
                "/api/v1/query?query=up",
                Some(&token),
            )
            .await?
            .0
            != 200
        {
            ensure!(Instant::now() < deadline, "agent {agent} never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (direct, _) = latency("direct", &http, &metrics.url(), None).await?;
    let (tunnel, _) = latency(
        "through server, tunnel, agent and plugin",
        &http,
        &through(setup.people(), "bench"),
        Some(&token),
    )
    .await?;
    let (tenancy, _) = latency(
        "the same with tenancy",
        &http,
        &through(setup.people(), "tenant"),
        Some(&token),
    )
    .await?;
    println!(
        "added latency p50: {:?} (tenancy: {:?})",
        tunnel.saturating_sub(direct),
        tenancy.saturating_sub(direct)
    );
    agent.shutdown().await;
    tenant_agent.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}
