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

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error(
        "the people's listener would serve {0} without TLS; listen on a loopback address (TLS for it is not built yet)"
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

    /// The person a request's personal token belongs to, or the answer to give.
    #[allow(clippy::result_large_err)] // the error is the response itself
    pub(crate) fn authenticate(
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
            Some(secret) => self
                .users
                .authenticate(&crate::token::hash(&secret), crate::store::now())
                .map_err(|e| {
                    tracing::error!("authenticating a person: {e}");
                    proxy::kube_status(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailable",
                        "the server cannot check tokens right now".to_owned(),
                    )
                })?,
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

/// Serves `people` on `listener` until the server's cancellation.
pub async fn serve(people: Arc<People>, listener: TcpListener) {
    let cancel = people.ctx.cancel.clone();
    let served = axum::serve(
        listener,
        router(people).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(cancel.cancelled_owned())
    .await;
    if let Err(e) = served {
        tracing::error!("people's HTTP listener: {e}");
    }
}

/// Opens the users store of the server's data dir.
pub fn open_store(data_dir: &std::path::Path) -> Result<UserStore, store::UserStoreError> {
    UserStore::open(&data_dir.join(store::USERS_FILE))
}

/// Checks the address is one the people's listener may use without TLS.
pub fn check_address(addr: SocketAddr) -> Result<(), PeopleError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(PeopleError::PlaintextNotLoopback(addr))
    }
}
