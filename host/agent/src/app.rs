//! The agent program: flags, the connection, registration, and the one list of feature modules,
//! started in order and stopped in reverse.

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
use tether_config::agent::AgentMode;
use tether_plugin_host::{EngineOptions, PluginEngine};
use tether_rpc::agent::v1::{AgentMeta, HeartbeatRequest, RegisterRequest};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::configuration;
use crate::connection::{Backoff, ServerConnection};
use crate::gitops::module::{GitopsModule, REAPPLY_INTERVAL};
use crate::leader::LeaderElection;
use crate::metrics::Metrics;
use crate::module::{ActiveConfig, Module};

/// How the agent is started. Every flag can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentOptions {
    /// tether-server's gRPC address: https://host:port (or http:// on loopback).
    #[arg(long, env = "TETHER_SERVER")]
    pub server: String,
    /// File holding the agent's token (as issued by `tether-server token create`).
    #[arg(long, env = "TETHER_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// The agent's token itself; prefer --token-file, which keeps it out of the process list.
    #[arg(long, env = "TETHER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to verify the server with, instead of the system roots.
    #[arg(long, env = "TETHER_SERVER_CA_FILE")]
    pub server_ca_file: Option<PathBuf>,
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

    fn token(&self) -> Result<SecretString> {
        let token = match (&self.token_file, &self.token) {
            (Some(file), _) => std::fs::read_to_string(file)
                .with_context(|| format!("read the token file {}", file.display()))?,
            (None, Some(token)) => token.clone(),
            (None, None) => bail!("give the agent's token with --token-file or TETHER_TOKEN"),
        };
        let token = token.trim().to_owned();
        if token.is_empty() {
            bail!("the agent's token is empty");
        }
        Ok(SecretString::from(token))
    }
}

/// A running agent; stop it with [`RunningAgent::shutdown`].
pub struct RunningAgent {
    pub agent_name: String,
    pub observability_addr: SocketAddr,
    pub config: watch::Receiver<Option<Arc<ActiveConfig>>>,
    pub metrics: Arc<Metrics>,
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
    let token = options.token()?;
    let ca = options
        .server_ca_file
        .as_ref()
        .map(|f| std::fs::read(f).with_context(|| format!("read {}", f.display())))
        .transpose()?;
    let connection = ServerConnection::new(&options.server, &token, ca)?;
    drop(token);
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
    let (agent_name, heartbeat_every) =
        register(&connection, &options, &kubernetes_version, &stop).await?;
    tracing::info!(agent = %agent_name, server = %options.server, "registered");

    let mut stages = Vec::new();
    let (config_tx, config_rx) = watch::channel(None);

    // Stage: observability, first up and last down.
    let listener = tokio::net::TcpListener::bind(options.observability_addr)
        .await
        .with_context(|| format!("listen on {}", options.observability_addr))?;
    let observability_addr = listener.local_addr()?;
    let observability = TaskTracker::new();
    observability.spawn(serve_observability(
        listener,
        config_rx.clone(),
        metrics.clone(),
        stop.clone(),
    ));
    stages.push(("observability", observability));

    // Stage: heartbeat and leader election.
    let presence = TaskTracker::new();
    presence.spawn(heartbeat(connection.clone(), heartbeat_every, stop.clone()));
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
    let engine = Arc::new(PluginEngine::new(EngineOptions {
        cache_dir: options.cache_dir.clone(),
        ..EngineOptions::default()
    })?);
    let applied = crate::applied::AppliedPublisher::default();
    let mut modules: Vec<Arc<dyn Module>> = vec![Arc::new(GitopsModule {
        client: client.clone(),
        connection: connection.clone(),
        engine,
        plugin_dir: options.plugin_dir.clone(),
        agent_name: agent_name.clone(),
        agent_namespace: options.namespace.clone(),
        leader: leader.clone(),
        metrics: metrics.clone(),
        reapply_interval: REAPPLY_INTERVAL,
        applied: applied.clone(),
    })];
    modules.push(Arc::new(crate::drift::DriftModule {
        client: client.clone(),
        connection: connection.clone(),
        applied: applied.subscribe(),
        leader,
        metrics: metrics.clone(),
        agent_name: agent_name.clone(),
    }));

    // Stage: the modules; the configuration stream feeds them.
    let running = TaskTracker::new();
    for module in &modules {
        running.spawn(module.clone().run(config_rx.clone(), stop.child_token()));
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
        stop,
        stages,
    })
}

async fn register(
    connection: &ServerConnection,
    options: &AgentOptions,
    kubernetes_version: &str,
    stop: &CancellationToken,
) -> Result<(String, Duration)> {
    let mut backoff = Backoff::default();
    loop {
        let request = RegisterRequest {
            meta: Some(AgentMeta {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                git_commit: String::new(),
                pod_namespace: options.namespace.clone(),
                pod_name: options.pod_name.clone(),
                kubernetes_version: kubernetes_version.to_owned(),
            }),
        };
        match connection.agent().register(request).await {
            Ok(response) => {
                let response = response.into_inner();
                // The server says how often it expects to hear from the agent.
                let every =
                    Duration::from_secs(u64::from(response.heartbeat_interval_seconds.max(1)));
                return Ok((response.agent_name, every));
            }
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                bail!("the server refused the agent's token (Unauthenticated)")
            }
            Err(status) => {
                let delay = backoff.failed(Instant::now());
                tracing::warn!(retry_in = ?delay, "cannot register with the server: {}", status.message());
                tokio::select! {
                    _ = stop.cancelled() => bail!("stopped before registering"),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

async fn heartbeat(connection: ServerConnection, every: Duration, stop: CancellationToken) {
    let mut interval = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = interval.tick() => {
                if let Err(e) = connection.agent().heartbeat(HeartbeatRequest {}).await {
                    tracing::warn!("heartbeat: {}", e.message());
                }
            }
        }
    }
}

async fn serve_observability(
    listener: tokio::net::TcpListener,
    config: watch::Receiver<Option<Arc<ActiveConfig>>>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = config.borrow().is_some();
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "waiting for the configuration\n",
                        )
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
