//! The agent program: flags, the connection, registration on every connection, readiness, and
//! the one list of feature modules, supervised, started in order and stopped in reverse.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use k8s_openapi::api::coordination::v1::Lease;
use secrecy::SecretString;
use tether_config::agent::{AgentMode, LogLevel, Logging};
use tether_plugin_host::{EngineOptions, PluginEngine};
use tether_rpc::agent::v1::{AgentMeta, HeartbeatRequest, RegisterRequest};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::configuration;
use crate::connection::{Backoff, LinkState, PassesGate, ServerConnection, TokenSource};
use crate::gitops::module::GitopsModule;
use crate::leader::LeaderElection;
use crate::metrics::Metrics;
use crate::module::{ActiveConfig, ConfigWatch, Module, ModuleHealth, supervise};

/// How the agent is started. Every flag can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentOptions {
    /// tether-server's agents' address: https://host:port for gRPC over HTTP/2, or wss://host[:port]
    /// for the same inside a WebSocket, through proxies that pass only HTTP/1.1 (http:// and ws://
    /// on loopback).
    #[arg(long, env = "TETHER_SERVER")]
    pub server: String,
    /// File holding the agent's token (as issued by `tether-server token create`).
    #[arg(long, env = "TETHER_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// The agent's token itself; prefer --token-file, which keeps it out of the process list.
    #[arg(long, env = "TETHER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to verify an https:// server with, besides the system's roots.
    #[arg(long, env = "TETHER_SERVER_CA_FILE")]
    pub server_ca_file: Option<PathBuf>,
    /// Allow http:// to a server that is not on loopback: the token then crosses the network in
    /// clear text. Only for networks that are encrypted otherwise (a service mesh).
    #[arg(long, env = "TETHER_INSECURE_PLAINTEXT")]
    pub insecure_plaintext: bool,
    /// Kubeconfig to use out of cluster; in a pod the ServiceAccount is used.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The agent's own namespace: inventories and the leader lease live there.
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: String,
    /// This replica's name in leader election (the pod name in a cluster).
    #[arg(long, env = "POD_NAME", default_value = "tether-agent")]
    pub pod_name: String,
    /// The widest mode the repository's configuration may ask for.
    #[arg(long, value_enum, default_value = "cluster-wide", env = "TETHER_MODE")]
    pub mode: ModeFlag,
    /// With --mode namespaced: the namespaces the agent may use (comma-separated).
    #[arg(long, value_delimiter = ',', env = "TETHER_NAMESPACES")]
    pub namespaces: Vec<String>,
    /// Directory of plugins the configuration may name with `path:`.
    #[arg(long, env = "TETHER_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Where compiled plugins are cached between restarts.
    #[arg(long, env = "TETHER_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Where the agent writes what it works on (each commit's files while rendering). Default:
    /// `work` under --cache-dir, else the system's temp dir. In a pod with a read-only root
    /// filesystem, mount an emptyDir here.
    #[arg(long, env = "TETHER_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        env = "TETHER_OBSERVABILITY_ADDR"
    )]
    pub observability_addr: SocketAddr,
    /// Elect a leader among replicas through a Lease; off, every replica applies.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "TETHER_LEADER_ELECTION")]
    pub leader_election: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeFlag {
    ClusterWide,
    Namespaced,
}

impl AgentOptions {
    fn mode(&self) -> Result<AgentMode> {
        match self.mode {
            ModeFlag::ClusterWide if self.namespaces.is_empty() => Ok(AgentMode::ClusterWide),
            ModeFlag::ClusterWide => bail!("--namespaces is only for --mode namespaced"),
            ModeFlag::Namespaced if self.namespaces.is_empty() => {
                bail!("--mode namespaced needs --namespaces")
            }
            ModeFlag::Namespaced => {
                let mut namespaces = self.namespaces.clone();
                namespaces.sort();
                namespaces.dedup();
                Ok(AgentMode::Namespaced { namespaces })
            }
        }
    }

    fn token(&self) -> Result<TokenSource> {
        match (&self.token_file, &self.token) {
            (Some(file), _) => Ok(TokenSource::File(file.clone())),
            (None, Some(token)) => Ok(TokenSource::Value(SecretString::from(token.clone()))),
            (None, None) => bail!("give the agent's token with --token-file or TETHER_TOKEN"),
        }
    }

    /// The work dir, created and checked writable now so that a read-only filesystem is one
    /// clear error at start rather than a failed render per commit.
    fn work_dir(&self) -> Result<PathBuf> {
        let dir = match (&self.work_dir, &self.cache_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(cache)) => cache.join("work"),
            (None, None) => std::env::temp_dir(),
        };
        std::fs::create_dir_all(&dir)
            .and_then(|()| tempfile::tempfile_in(&dir).map(drop))
            .with_context(|| {
                format!(
                    "the work dir {} is not writable; point --work-dir (TETHER_WORK_DIR) at a \
                     writable directory, in a pod an emptyDir volume",
                    dir.display()
                )
            })?;
        Ok(dir)
    }
}

/// A running agent; stop it with [`RunningAgent::shutdown`].
pub struct RunningAgent {
    pub agent_name: String,
    pub observability_addr: SocketAddr,
    pub config: watch::Receiver<Option<Arc<ActiveConfig>>>,
    pub metrics: Arc<Metrics>,
    pub tunnel_pool: Arc<crate::tunnel::PoolStats>,
    stop: CancellationToken,
    stages: Vec<(&'static str, TaskTracker)>,
}

impl std::fmt::Debug for RunningAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningAgent")
            .field("agent_name", &self.agent_name)
            .finish_non_exhaustive()
    }
}

impl RunningAgent {
    /// Stops the stages in reverse start order, each drained before the next.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while let Some((name, stage)) = self.stages.pop() {
            stage.close();
            stage.wait().await;
            tracing::debug!(stage = name, "stopped");
        }
    }
}

/// Starts the agent: connects, registers, and runs every module until shut down.
pub async fn start(options: AgentOptions) -> Result<RunningAgent> {
    let mode = options.mode()?;
    let work_dir = options.work_dir()?;
    let ca = options
        .server_ca_file
        .as_ref()
        .map(|f| std::fs::read(f).with_context(|| format!("read {}", f.display())))
        .transpose()?;
    let connection = ServerConnection::new(
        &options.server,
        options.token()?,
        ca,
        options.insecure_plaintext,
    )?;
    let client = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("read kubeconfig {}", path.display()))?;
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
            kube::Client::try_from(config)?
        }
        None => kube::Client::try_default()
            .await
            .context("no in-cluster ServiceAccount and no kubeconfig")?,
    };
    let kubernetes_version = client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .unwrap_or_default();

    let stop = CancellationToken::new();
    let metrics = Arc::new(Metrics::default());
    let mut stages = Vec::new();
    let (config_tx, config_rx) = watch::channel(None);
    let health = Arc::new(ModuleHealth::default());

    // Stage: observability, first up and last down: /healthz answers while the agent waits for
    // the server, and /readyz says why it is not ready.
    let listener = tokio::net::TcpListener::bind(options.observability_addr)
        .await
        .with_context(|| format!("listen on {}", options.observability_addr))?;
    let observability_addr = listener.local_addr()?;
    let observability = TaskTracker::new();
    observability.spawn(serve_observability(
        listener,
        Readiness {
            config: config_rx.clone(),
            link: connection.link(),
            modules: health.clone(),
        },
        metrics.clone(),
        stop.clone(),
    ));
    // A rotated Secret is picked up from the start, also while the first registration waits.
    observability.spawn(connection.clone().watch_token_file(stop.clone()));
    stages.push(("observability", observability));

    let meta = AgentMeta {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        git_commit: String::new(),
        pod_namespace: options.namespace.clone(),
        pod_name: options.pod_name.clone(),
        kubernetes_version,
    };
    let registered = tokio::select! {
        registered = register(&connection, &meta, &stop) => registered,
        // Stopped before the server ever answered: the stages started so far are drained.
        _ = stop.cancelled() => None,
    };
    let Some(Registration {
        agent_name,
        heartbeat_every,
    }) = registered
    else {
        stop.cancel();
        for (_, stage) in stages.into_iter().rev() {
            stage.close();
            stage.wait().await;
        }
        bail!("stopped before registering with the server");
    };
    tracing::info!(agent = %agent_name, server = %options.server, "registered");

    // Stage: presence (heartbeats, registration again on every new connection) and leader election.
    let presence = TaskTracker::new();
    presence.spawn(stay_registered(
        connection.clone(),
        meta,
        heartbeat_every,
        stop.clone(),
    ));
    let leader = if options.leader_election {
        let leases = kube::Api::<Lease>::namespaced(client.clone(), &options.namespace);
        let (rx, task) = LeaderElection::new(
            leases,
            &format!("tether-agent-{agent_name}"),
            &options.pod_name,
        )
        .start(stop.clone());
        presence.spawn(async move {
            let _ = task.await;
        });
        rx
    } else {
        watch::channel(true).1
    };
    stages.push(("presence", presence));

    // The one list of feature modules.
    // The tether-agent program compiles in a child process of itself, which can be stopped and
    // capped in memory; an agent embedded in a test compiles on a thread.
    let compiler_program = tether_plugin_host::compiler_program();
    // The compiler process hands its result over through a cache directory. Without --cache-dir it
    // goes under the work dir, the one place known writable (a pod's root filesystem is read-only,
    // and so may be the system's temp dir); it lives as long as that volume.
    let cache_dir = match (&options.cache_dir, &compiler_program) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Some(_)) => Some(work_dir.join("plugin-cache")),
        (None, None) => None,
    };
    let engine = Arc::new(PluginEngine::new(EngineOptions {
        cache_dir,
        compiler_program,
        ..EngineOptions::default()
    })?);
    let applied = crate::applied::AppliedPublisher::default();
    let tunnel_pool = Arc::new(crate::tunnel::PoolStats::default());
    let discovery = crate::discovery::DiscoveryModule::new(client.clone(), connection.clone());
    let prometheus = Arc::new(crate::prometheus::PrometheusModule {
        engine: engine.clone(),
        connection: connection.clone(),
        plugin_dir: options.plugin_dir.clone(),
        discovered: discovery.prometheus_url(),
        availability: watch::Sender::new(crate::prometheus::not_started()),
    });
    let modules: Vec<Arc<dyn Module>> = vec![
        Arc::new(GitopsModule {
            client: client.clone(),
            connection: connection.clone(),
            engine,
            plugin_dir: options.plugin_dir.clone(),
            work_dir,
            agent_name: agent_name.clone(),
            agent_namespace: options.namespace.clone(),
            leader: leader.clone(),
            metrics: metrics.clone(),
            applied: applied.clone(),
        }),
        Arc::new(crate::drift::DriftModule {
            client: client.clone(),
            connection: connection.clone(),
            applied: applied.subscribe(),
            leader,
            metrics: metrics.clone(),
            agent_name: agent_name.clone(),
        }),
        Arc::new(crate::tunnel::TunnelModule {
            client: client.clone(),
            connection: connection.clone(),
            stats: tunnel_pool.clone(),
            prometheus: Some(prometheus.availability.subscribe()),
        }),
        Arc::new(discovery),
        prometheus,
    ];

    // Stage: the modules; the configuration stream feeds them.
    let running = TaskTracker::new();
    for module in &modules {
        running.spawn(supervise(
            module.clone(),
            config_rx.clone(),
            stop.child_token(),
            health.clone(),
        ));
    }
    running.spawn(configuration::follow(
        connection,
        mode,
        modules,
        config_tx,
        metrics.clone(),
        stop.child_token(),
    ));
    stages.push(("modules", running));

    Ok(RunningAgent {
        agent_name,
        observability_addr,
        config: config_rx,
        metrics,
        tunnel_pool,
        stop,
        stages,
    })
}

/// The log filter for `observability.logging`: `level` for the agent, `grpc_level` for the gRPC
/// and HTTP/2 libraries underneath (GitLab's agent has the same two knobs).
pub fn log_filter(logging: &Logging) -> String {
    let name = |level: LogLevel| match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let grpc = name(logging.grpc_level);
    format!(
        "{},tonic={grpc},h2={grpc},hyper={grpc},hyper_util={grpc},tower={grpc}",
        name(logging.level)
    )
}

/// What the server told the agent when it registered.
#[derive(Debug)]
struct Registration {
    agent_name: String,
    heartbeat_every: Duration,
}

/// Registers until the server accepts, then re-sends the last reports: `None` only if stopped.
/// Network errors are retried with the usual backoff; a refused token is probed far less often,
/// and at once when the token file changes.
async fn register(
    connection: &ServerConnection,
    meta: &AgentMeta,
    stop: &CancellationToken,
) -> Option<Registration> {
    let mut unreachable = Backoff::default();
    let mut refused = Backoff::token_refused();
    let mut token_changes = connection.token_changes();
    loop {
        let mut request = tonic::Request::new(RegisterRequest {
            meta: Some(meta.clone()),
        });
        // The registration is the probe that finds out whether a refused token works again.
        request.extensions_mut().insert(PassesGate);
        let mut client = connection.agent();
        let delay = tokio::select! {
            _ = stop.cancelled() => return None,
            result = client.register(request) => match result {
                Ok(response) => {
                    let response = response.into_inner();
                    connection.resend_reports().await;
                    // The server says how often it expects to hear from the agent.
                    return Some(Registration {
                        agent_name: response.agent_name,
                        heartbeat_every: Duration::from_secs(u64::from(
                            response.heartbeat_interval_seconds.max(1),
                        )),
                    });
                }
                Err(status) if *connection.link().borrow() == LinkState::TokenRefused => {
                    // Logged once at ERROR by the connection; each probe only at DEBUG.
                    let delay = refused.failed(Instant::now());
                    tracing::debug!(retry_in = ?delay, "registration refused: {}", status.message());
                    delay
                }
                Err(status) => {
                    let delay = unreachable.failed(Instant::now());
                    tracing::warn!(retry_in = ?delay, "cannot register with the server: {}", status.message());
                    delay
                }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
            _ = token_changes.changed() => {
                refused.reset();
                unreachable.reset();
            }
        }
    }
}

/// Heartbeats until `stop`, registering again whenever the connection may be a new one: a
/// heartbeat failed, the server says it does not know the agent (it restarted), or a long-lived
/// stream had to be opened again.
async fn stay_registered(
    connection: ServerConnection,
    meta: AgentMeta,
    mut every: Duration,
    stop: CancellationToken,
) {
    let mut reopened = connection.reopened();
    let mut link = connection.link();
    loop {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now, and the agent has just registered.
        interval.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = reopened.changed() => break,
                // Some call found the token refused: probe with registrations from now on.
                _ = link.wait_for(|s| *s == LinkState::TokenRefused) => break,
                _ = interval.tick() => {}
            }
            let mut request = tonic::Request::new(HeartbeatRequest {});
            request.extensions_mut().insert(PassesGate);
            let mut client = connection.agent();
            let beat = tokio::select! {
                _ = stop.cancelled() => return,
                beat = client.heartbeat(request) => beat,
            };
            match beat {
                Ok(response) if response.get_ref().registered => {}
                Ok(_) => {
                    tracing::info!(
                        "the server does not know this agent (it restarted): registering again"
                    );
                    break;
                }
                Err(status) => {
                    tracing::warn!("heartbeat: {}", status.message());
                    break;
                }
            }
        }
        match register(&connection, &meta, &stop).await {
            Some(registration) => {
                tracing::info!(agent = %registration.agent_name, "registered again");
                every = registration.heartbeat_every;
            }
            None => return,
        }
    }
}

/// What `/readyz` answers from: ready once a configuration is in force, the server accepts the
/// token and every module runs.
#[derive(Debug, Clone)]
struct Readiness {
    config: ConfigWatch,
    link: watch::Receiver<LinkState>,
    modules: Arc<ModuleHealth>,
}

impl Readiness {
    /// Why the agent is not ready, if it is not.
    fn not_ready(&self) -> Option<String> {
        if *self.link.borrow() == LinkState::TokenRefused {
            return Some("tether-server refused the agent's token\n".to_owned());
        }
        if let Some((module, why)) = self.modules.down().into_iter().next() {
            return Some(format!("module {module} is down: {why}\n"));
        }
        if self.config.borrow().is_none() {
            return Some("waiting for the configuration\n".to_owned());
        }
        None
    }
}

async fn serve_observability(
    listener: tokio::net::TcpListener,
    readiness: Readiness,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let verdict = readiness.not_ready();
                async move {
                    match verdict {
                        None => (StatusCode::OK, "ready\n".to_owned()),
                        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let text = metrics.render();
                async move { text }
            }),
        );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!("observability endpoint: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_filter_follows_gitlabs_two_levels() {
        assert_eq!(
            log_filter(&Logging::default()),
            "info,tonic=warn,h2=warn,hyper=warn,hyper_util=warn,tower=warn"
        );
        let filter = log_filter(&Logging {
            level: LogLevel::Debug,
            grpc_level: LogLevel::Error,
        });
        assert!(filter.starts_with("debug,tonic=error,"), "{filter}");
        tracing_subscriber::EnvFilter::try_new(&filter).unwrap();
    }
}
