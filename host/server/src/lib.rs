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
pub mod tls;
pub mod token;
pub mod tunnel;
pub mod users;

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

/// How long shutdown waits for open connections to finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A feature's gRPC service, added behind the token check ([`Authenticator::guard`]).
pub type GrpcModule = fn(&Arc<Context>, &Authenticator, &mut tonic::service::RoutesBuilder);

/// Every feature module of the server, in start order: the one list.
pub const GRPC_MODULES: &[(&str, GrpcModule)] = &[
    ("agent", |ctx, auth, routes| {
        routes.add_service(auth.guard(agent_api::AgentApi::server(ctx.clone())));
    }),
    ("configuration", |ctx, auth, routes| {
        routes.add_service(auth.guard(configuration::Configuration::server(ctx.clone())));
    }),
    ("gitops", |ctx, auth, routes| {
        routes.add_service(auth.guard(gitops::Gitops::server(ctx.clone())));
    }),
    ("tunnel", |ctx, auth, routes| {
        routes.add_service(auth.guard(tunnel::TunnelApi::server(ctx.clone())));
    }),
    ("drift", |ctx, auth, routes| {
        routes.add_service(auth.guard(drift::DriftApi::server(ctx.clone())));
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
        "{listener} would listen on {addr} without TLS; configure `tls` (cert_file, key_file) or listen on a loopback address"
    )]
    PlaintextNotLoopback {
        /// `gRPC` or `HTTP`.
        listener: &'static str,
        addr: SocketAddr,
    },
    #[error("TLS: cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS: {path}: {message}")]
    TlsCertificate { path: String, message: String },
    #[error("TLS: {0}")]
    Tls(#[from] tonic::transport::Error),
    #[error(transparent)]
    Push(#[from] push::PushError),
    #[error(transparent)]
    People(#[from] users::PeopleError),
}

/// A running server; [`RunningServer::shutdown`] stops it.
#[derive(Debug)]
pub struct RunningServer {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The people's listener (Kubernetes API proxy), when configured.
    pub people_addr: Option<SocketAddr>,
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
    let certificate = config
        .tls
        .as_ref()
        .map(tls::ServerCertificate::load)
        .transpose()?;
    // Plaintext only where nothing but this machine can listen in: agents' tokens, the admin token and
    // everything the API shows would cross the network in clear text otherwise.
    if certificate.is_none() {
        for (listener, addr) in [("gRPC", config.listen.grpc), ("HTTP", config.listen.http)] {
            if !addr.ip().is_loopback() {
                return Err(StartError::PlaintextNotLoopback { listener, addr });
            }
        }
    }
    let http_tls = match &certificate {
        Some(certificate) if !config.listen.http.ip().is_loopback() => Some(certificate.http()?),
        _ => None,
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

    // The people's listener: bound with the others, so a taken port fails the start.
    let people_listener = match &config.people {
        Some(people) => {
            let tls = users::listener_tls(people, certificate.as_ref())?;
            users::check_address(people.listen, tls.is_some())?;
            let listener = listen(people.listen).await?;
            let users = users::open_store(&config.data_dir).map_err(users::PeopleError::from)?;
            Some((listener, Arc::new(users), tls))
        }
        None => None,
    };
    let people_addr = people_listener
        .as_ref()
        .and_then(|(l, _, _)| l.local_addr().ok());

    let metrics = Arc::new(Metrics::new());
    let sources = Arc::new(Sources::new(&config, metrics.clone()));
    let limiter = Arc::new(FailureLimiter::new(config.auth_failures_per_minute.0));
    let ctx = Arc::new(Context {
        config,
        store: store.clone(),
        sources,
        registry: registry::Registry::new(),
        tunnels: tunnel::Tunnels::new(),
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
    let mut builder = tonic::transport::Server::builder()
        .initial_stream_window_size(tunnel::STREAM_WINDOW)
        .initial_connection_window_size(tunnel::CONNECTION_WINDOW);
    if let Some(certificate) = &certificate {
        builder = builder.tls_config(certificate.grpc())?;
    }
    let servers = TaskTracker::new();
    let grpc = builder
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(
            // tonic sets TCP_NODELAY only on listeners it binds itself: without it Nagle holds back a
            // tunnel's small second message (CloseSend after RequestInfo) for a delayed ACK, 40 ms.
            tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
                |tcp| {
                    if let Ok(tcp) = &tcp {
                        let _ = tcp.set_nodelay(true);
                    }
                    tcp
                },
            ),
            ctx.cancel.clone().cancelled_owned(),
        );
    servers.spawn(async move {
        if let Err(e) = grpc.await {
            tracing::error!("gRPC server: {e}");
        }
    });
    if let Some((listener, users, tls)) = people_listener {
        let people = Arc::new(users::People::new(ctx.clone(), users, admin.clone()));
        let addr = people_addr.unwrap_or(http_addr);
        users::serve(people, listener, tls, &servers)
            .map_err(|source| StartError::Listen { addr, source })?;
    }
    let router = api::router(ctx.clone(), secrets, admin);
    let shutdown = ctx.cancel.clone().cancelled_owned();
    match http_tls {
        Some(config) => {
            let listener =
                tls::TlsListener::new(http_listener, config, ctx.cancel.clone(), &servers)
                    .map_err(|source| StartError::Listen {
                        addr: http_addr,
                        source,
                    })?;
            let http = axum::serve(listener, router).with_graceful_shutdown(shutdown);
            servers.spawn(async move {
                if let Err(e) = http.await {
                    tracing::error!("HTTP server: {e}");
                }
            });
        }
        None => {
            let http = axum::serve(http_listener, router).with_graceful_shutdown(shutdown);
            servers.spawn(async move {
                if let Err(e) = http.await {
                    tracing::error!("HTTP server: {e}");
                }
            });
        }
    }
    tracing::info!(%grpc_addr, %http_addr, "tether-server listening");
    Ok(RunningServer {
        grpc_addr,
        http_addr,
        people_addr,
        ctx,
        servers,
    })
}
