//! tether-server: knows the agents and their tokens, reads Git, and streams every agent its
//! configuration and the files to synchronise; an HTTP API for people, tools and Git hosts.
//!
//! Feature modules, GitLab-agent style: each feature's server part is a module registered in
//! [`GRPC_MODULES`]; they share a [`context::Context`] and never call each other. Stages start in order
//! (store → sources → gRPC and HTTP servers) and stop in reverse.

pub mod agent_api;
pub mod api;
pub mod auth;
pub mod configuration;
pub mod context;
pub mod drift;
pub mod gitops;
pub mod metrics;
pub mod push;
pub mod registry;
pub mod sources;
pub mod store;
pub mod token;

use crate::auth::{Authenticator, FailureLimiter};
use crate::context::Context;
use crate::metrics::Metrics;
use crate::sources::Sources;
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use tether_config::server::ServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;

/// How long shutdown waits for open connections to finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A feature's gRPC service, added behind the token check.
pub type GrpcModule = fn(&Arc<Context>, &Authenticator, &mut tonic::service::RoutesBuilder);

/// Every feature module of the server, in start order: the one list.
pub const GRPC_MODULES: &[(&str, GrpcModule)] = &[
    ("agent", |ctx, auth, routes| {
        routes.add_service(InterceptedService::new(
            agent_api::AgentApi::server(ctx.clone()),
            auth.clone(),
        ));
    }),
    ("configuration", |ctx, auth, routes| {
        routes.add_service(InterceptedService::new(
            configuration::Configuration::server(ctx.clone()),
            auth.clone(),
        ));
    }),
    ("gitops", |ctx, auth, routes| {
        routes.add_service(InterceptedService::new(
            gitops::Gitops::server(ctx.clone()),
            auth.clone(),
        ));
    }),
    ("drift", |ctx, auth, routes| {
        routes.add_service(InterceptedService::new(
            drift::DriftApi::server(ctx.clone()),
            auth.clone(),
        ));
    }),
];

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "gRPC would listen on {0} without TLS; configure `tls` (cert_file, key_file) or listen on a loopback address"
    )]
    PlaintextNotLoopback(SocketAddr),
    #[error("TLS: cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] tonic::transport::Error),
    #[error(transparent)]
    Push(#[from] push::PushError),
}

/// A running server; [`RunningServer::shutdown`] stops it.
#[derive(Debug)]
pub struct RunningServer {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    ctx: Arc<Context>,
    servers: TaskTracker,
}

impl RunningServer {
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Stops accepting calls, ends every stream, stops the pollers; in that order.
    pub async fn shutdown(self) {
        self.shutdown_within(SHUTDOWN_GRACE).await;
    }

    /// [`shutdown`](Self::shutdown) with another grace period for open connections.
    pub async fn shutdown_within(self, grace: std::time::Duration) {
        self.ctx.cancel.cancel();
        self.servers.close();
        // Streams end at once on cancellation, but a client that stopped reading keeps its HTTP/2
        // stream open; in-flight work gets a grace period, not a veto over shutdown.
        if tokio::time::timeout(grace, self.servers.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after {grace:?}; stopping anyway");
        }
        self.ctx.tracker.close();
        self.ctx.tracker.wait().await;
        self.ctx.sources.shutdown().await;
    }
}

/// Starts the gRPC and HTTP servers of `config` on `store`.
pub async fn start(
    config: ServerConfig,
    store: Arc<dyn Store>,
) -> Result<RunningServer, StartError> {
    let secrets = push::PushSecrets::load(&config.webhooks)?;
    let admin = config
        .api
        .admin_token_file
        .as_deref()
        .map(push::read_secret)
        .transpose()?;
    let tls = match &config.tls {
        Some(tls) => {
            let read = |path: &std::path::Path| {
                std::fs::read(path).map_err(|source| StartError::TlsFile {
                    path: path.display().to_string(),
                    source,
                })
            };
            let identity =
                tonic::transport::Identity::from_pem(read(&tls.cert_file)?, read(&tls.key_file)?);
            Some(tonic::transport::ServerTlsConfig::new().identity(identity))
        }
        None if !config.listen.grpc.ip().is_loopback() => {
            return Err(StartError::PlaintextNotLoopback(config.listen.grpc));
        }
        None => None,
    };
    let listen = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { addr, source })
    };
    let grpc_listener = listen(config.listen.grpc).await?;
    let http_listener = listen(config.listen.http).await?;
    let grpc_addr = grpc_listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            addr: config.listen.grpc,
            source,
        })?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            addr: config.listen.http,
            source,
        })?;

    let metrics = Arc::new(Metrics::new());
    let sources = Arc::new(Sources::new(&config, metrics.clone()));
    let limiter = Arc::new(FailureLimiter::new(config.auth_failures_per_minute.0));
    let ctx = Arc::new(Context {
        config,
        store: store.clone(),
        sources,
        registry: registry::Registry::new(),
        metrics: metrics.clone(),
        drift: drift::DriftLog::default(),
        cancel: CancellationToken::new(),
        tracker: TaskTracker::new(),
    });
    let auth = Authenticator::new(store, limiter, metrics);

    let mut routes = tonic::service::RoutesBuilder::default();
    for (name, register) in GRPC_MODULES {
        register(&ctx, &auth, &mut routes);
        tracing::debug!(module = name, "gRPC module registered");
    }
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let servers = TaskTracker::new();
    let grpc = builder
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            ctx.cancel.clone().cancelled_owned(),
        );
    servers.spawn(async move {
        if let Err(e) = grpc.await {
            tracing::error!("gRPC server: {e}");
        }
    });
    let http = axum::serve(
        http_listener,
        api::router(ctx.clone(), secrets, admin)
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(ctx.cancel.clone().cancelled_owned());
    servers.spawn(async move {
        if let Err(e) = http.await {
            tracing::error!("HTTP server: {e}");
        }
    });
    tracing::info!(%grpc_addr, %http_addr, "tether-server listening");
    Ok(RunningServer {
        grpc_addr,
        http_addr,
        ctx,
        servers,
    })
}
