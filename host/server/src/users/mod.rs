//! People: users with groups, their personal tokens, and the HTTP listener they use — apart from the
//! agents' gRPC listener and from the operators' HTTP API. It serves the Kubernetes API proxy
//! ([`proxy`]) and the admin API for people ([`admin`]).
//!
//! Authentication is a personal token on every request, checked against the store each time, so a
//! revoked or expired token is refused at once; authorisation is the agent's `user_access` ([`access`]).

pub mod access;
mod admin;
pub mod cli;
pub mod proxy;
pub mod store;
pub mod token;

use crate::auth::{FailureKey, FailureLimiter};
use crate::context::Context;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use store::{PersonalToken, User, UserStore};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error(
        "the people's listener would serve {0} without TLS; configure `people.tls` or `tls` (cert_file, key_file), or listen on a loopback address"
    )]
    PlaintextNotLoopback(SocketAddr),
    #[error(transparent)]
    Store(#[from] store::UserStoreError),
}

/// What the people's listener shares.
#[derive(Debug)]
pub struct People {
    pub ctx: Arc<Context>,
    pub users: Arc<UserStore>,
    admin: Option<Arc<SecretString>>,
    pub(crate) access: access::AccessCache,
    limiter: FailureLimiter,
    /// Prometheus requests per person (`crate::prometheus`).
    pub(crate) prometheus_rate: crate::prometheus::UserRate,
    /// How long a request waits for a tunnel before 503.
    pub tunnel_wait: Duration,
}

impl People {
    pub fn new(ctx: Arc<Context>, users: Arc<UserStore>, admin: Option<SecretString>) -> Self {
        let limiter = FailureLimiter::new(ctx.config.auth_failures_per_minute.0);
        let prometheus_rate = crate::prometheus::UserRate::new(
            ctx.config
                .people
                .as_ref()
                .map(|p| p.prometheus)
                .unwrap_or_default(),
        );
        Self {
            ctx,
            users,
            admin: admin.map(Arc::new),
            access: access::AccessCache::default(),
            limiter,
            prometheus_rate,
            tunnel_wait: proxy::TUNNEL_WAIT,
        }
    }

    /// Runs `f` on the users store on Tokio's blocking pool: SQLite reads the disk and waits up to its
    /// busy timeout for the CLI's writes, which must not stall the async workers serving the proxy.
    pub async fn with_users<T: Send + 'static>(
        &self,
        f: impl FnOnce(&UserStore) -> Result<T, store::UserStoreError> + Send + 'static,
    ) -> Result<T, store::UserStoreError> {
        let users = self.users.clone();
        tokio::task::spawn_blocking(move || f(&users))
            .await
            .unwrap_or_else(|e| Err(store::UserStoreError::Task(e.to_string())))
    }

    /// The person a request's personal token belongs to, or the answer to give.
    #[allow(clippy::result_large_err)] // the error is the response itself
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        source: IpAddr,
    ) -> Result<(User, PersonalToken), Response> {
        let now = tokio::time::Instant::now();
        if !self.limiter.allowed(&FailureKey::Source(source), now) {
            return Err(proxy::kube_status(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "too many failed authentications; retry later".to_owned(),
            ));
        }
        let found = match proxy::presented_token(headers) {
            Some(secret) => {
                let hash = crate::token::hash(&secret);
                self.with_users(move |users| users.authenticate(&hash, crate::store::now()))
                    .await
                    .map_err(|e| {
                        tracing::error!("authenticating a person: {e}");
                        proxy::kube_status(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "ServiceUnavailable",
                            "the server cannot check tokens right now".to_owned(),
                        )
                    })?
            }
            None => None,
        };
        found.ok_or_else(|| {
            self.limiter.record_failure(FailureKey::Source(source), now);
            // One answer whatever was wrong: a caller learns nothing about which tokens exist.
            proxy::kube_status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a valid personal token is required (missing, unknown, revoked or expired)"
                    .to_owned(),
            )
        })
    }
}

/// The people's routes.
pub fn router(people: Arc<People>) -> Router {
    let proxy = axum::routing::any(proxy::proxy);
    Router::new()
        .merge(admin::routes(people.clone()))
        .route("/k8s-proxy/agents/{agent}", proxy.clone())
        .route("/k8s-proxy/agents/{agent}/", proxy.clone())
        .route("/k8s-proxy/agents/{agent}/{*path}", proxy)
        .merge(crate::prometheus::routes())
        // The proxy streams bodies itself and bounds them; axum's default 2 MiB limit does not apply.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(people)
}

/// The address a person connects from (for the failed-authentication limiter), over TLS or not.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Serves `people` on `listener` until the server's cancellation, over TLS when `tls` is given; the
/// serving tasks are `servers`'.
pub fn serve(
    people: Arc<People>,
    listener: TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    servers: &TaskTracker,
) -> std::io::Result<()> {
    let cancel = people.ctx.cancel.clone();
    let app = router(people).into_make_service_with_connect_info::<PeerAddr>();
    let shutdown = cancel.clone().cancelled_owned();
    match tls {
        Some(tls) => {
            let listener = crate::tls::TlsListener::new(listener, tls, cancel, servers)?;
            let served = axum::serve(listener, app).with_graceful_shutdown(shutdown);
            servers.spawn(async move {
                if let Err(e) = served.await {
                    tracing::error!("people's HTTPS listener: {e}");
                }
            });
        }
        None => {
            let served = axum::serve(listener, app).with_graceful_shutdown(shutdown);
            servers.spawn(async move {
                if let Err(e) = served.await {
                    tracing::error!("people's HTTP listener: {e}");
                }
            });
        }
    }
    Ok(())
}

/// The TLS of the people's listener: its own certificate, else the server's (`server_tls`), else none.
pub fn listener_tls(
    people: &tether_config::server::People,
    server_tls: Option<&crate::tls::ServerCertificate>,
) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>, crate::StartError> {
    let own = people
        .tls
        .as_ref()
        .map(crate::tls::ServerCertificate::load)
        .transpose()?;
    own.as_ref().or(server_tls).map(|c| c.http()).transpose()
}

/// Opens the users store of the server's data dir.
pub fn open_store(data_dir: &std::path::Path) -> Result<UserStore, store::UserStoreError> {
    UserStore::open(&data_dir.join(store::USERS_FILE))
}

/// Checks the address is one the people's listener may use (without TLS: loopback only).
pub fn check_address(addr: SocketAddr, tls: bool) -> Result<(), PeopleError> {
    if tls || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(PeopleError::PlaintextNotLoopback(addr))
    }
}
