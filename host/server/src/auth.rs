//! Bearer-token authentication of every gRPC call, and the limit on failed attempts.
//!
//! A refused call gets `Unauthenticated` with the same message whatever was wrong (missing, malformed,
//! unknown or revoked token), so a caller learns nothing about which tokens exist.
//!
//! Failures are counted per token for tokens the store knows but refuses (a revoked token whose agent
//! keeps retrying), and per source address only for tokens it does not know (guessing, garbage). Many
//! agents share one address behind a NAT or an ingress: one agent's revoked token, or a stranger's
//! guesses, must never lock the others out, so a valid token is never refused for what its address did.
//! A token or address over its limit is refused without a store lookup until its window is over.
//!
//! The store lookup runs on the blocking pool ([`crate::store::blocking`]): the check is an async
//! service around each feature's gRPC service, not a (synchronous) tonic interceptor.

use crate::metrics::Metrics;
use crate::store::{Agent, Store, TokenLookup};
use crate::token::{self, TokenHash};
use axum::http;
use secrecy::SecretString;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tonic::Status;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// Length of the window failed attempts are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Tokens and sources tracked at most: the map has a fixed size whatever an attacker sends.
pub const MAX_TRACKED: usize = 10_000;

/// Who made an authenticated call: put into the request's extensions for the services.
#[derive(Debug, Clone)]
pub struct AuthenticatedAgent {
    pub agent: Agent,
    pub token_id: i64,
}

/// What failed attempts are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureKey {
    /// A token the store knows and refuses (revoked): counted per token, wherever it comes from.
    Token(TokenHash),
    /// Missing, malformed or unknown tokens: counted per source address.
    Source(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

/// Failed attempts per [`FailureKey`] within [`FAILURE_WINDOW`], in a map of at most `capacity` keys.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    capacity: usize,
    windows: Mutex<HashMap<FailureKey, Window>>,
}

impl FailureLimiter {
    pub fn new(limit: u32) -> Self {
        Self::with_capacity(limit, MAX_TRACKED)
    }

    /// A limiter tracking at most `capacity` keys (at least one).
    pub fn with_capacity(limit: u32, capacity: usize) -> Self {
        Self {
            limit,
            capacity: capacity.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FailureKey, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `key` may try at `now`.
    pub fn allowed(&self, key: &FailureKey, now: Instant) -> bool {
        self.lock().get(key).is_none_or(|w| {
            now.duration_since(w.start) >= FAILURE_WINDOW || w.failures < self.limit
        })
    }

    /// Counts a failed attempt of `key` at `now`. When the map is full, expired windows go first, then
    /// the oldest window: forgetting an old offender early is the price of a bounded map.
    pub fn record_failure(&self, key: FailureKey, now: Instant) {
        let mut windows = self.lock();
        if !windows.contains_key(&key) && windows.len() >= self.capacity {
            windows.retain(|_, w| now.duration_since(w.start) < FAILURE_WINDOW);
            if windows.len() >= self.capacity {
                let oldest = windows
                    .iter()
                    .min_by_key(|(_, w)| w.start)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    windows.remove(&oldest);
                }
            }
        }
        let window = windows.entry(key).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now.duration_since(window.start) >= FAILURE_WINDOW {
            *window = Window {
                start: now,
                failures: 0,
            };
        }
        window.failures += 1;
    }

    /// Keys tracked now (never more than the capacity).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// Checks the bearer token of every gRPC call against the store; [`Authenticator::guard`] puts a
/// feature's service behind it.
#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    limiter: Arc<FailureLimiter>,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, limiter: Arc<FailureLimiter>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            limiter,
            metrics,
        }
    }

    /// `service`, answering only calls with a valid token (the agent in the request's extensions).
    pub fn guard<S>(&self, service: S) -> Authenticated<S> {
        Authenticated {
            inner: service,
            auth: self.clone(),
        }
    }

    fn rate_limited(&self) -> Status {
        self.metrics
            .inc("tether_server_auth_rate_limited_total", &[]);
        Status::resource_exhausted("too many failed authentications; retry later")
    }

    fn refused(&self, key: Option<FailureKey>, now: Instant) -> Status {
        if let Some(key) = key {
            self.limiter.record_failure(key, now);
        }
        self.metrics.inc("tether_server_auth_failures_total", &[]);
        unauthenticated()
    }

    /// The agent of a call with these headers from `source`.
    pub async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        source: Option<IpAddr>,
    ) -> Result<AuthenticatedAgent, Status> {
        let now = Instant::now();
        let by_source = source.map(FailureKey::Source);
        let source_limited = by_source
            .as_ref()
            .is_some_and(|key| !self.limiter.allowed(key, now));
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| token::well_formed(t))
            .map(|t| token::hash(&SecretString::from(t.to_owned())));
        let Some(hash) = presented else {
            if source_limited {
                return Err(self.rate_limited());
            }
            return Err(self.refused(by_source, now));
        };
        let by_token = FailureKey::Token(hash.clone());
        if !self.limiter.allowed(&by_token, now) {
            return Err(self.rate_limited());
        }
        let lookup = crate::store::blocking(&self.store, move |store| {
            store.authenticate(&hash, crate::store::now())
        })
        .await;
        match lookup {
            Ok(TokenLookup::Active(agent, token)) => Ok(AuthenticatedAgent {
                agent,
                token_id: token.id,
            }),
            Ok(TokenLookup::Revoked) => Err(self.refused(Some(by_token), now)),
            Ok(TokenLookup::Unknown) if source_limited => Err(self.rate_limited()),
            Ok(TokenLookup::Unknown) => Err(self.refused(by_source, now)),
            Err(e) => {
                tracing::error!("authentication: {e}");
                Err(Status::unavailable(
                    "the server cannot check tokens right now",
                ))
            }
        }
    }
}

/// The one answer to every authentication failure.
pub fn unauthenticated() -> Status {
    Status::unauthenticated("unauthenticated")
}

/// A gRPC service behind [`Authenticator`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Authenticator,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

/// The address a call came from, over plaintext or TLS.
fn source_of<B>(request: &http::Request<B>) -> Option<IpAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
        .map(|a| a.ip())
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Error = Infallible> + Clone + Send + 'static,
    S::Response: From<http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The service that was polled ready serves this call; its clone waits for the next one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let auth = self.auth.clone();
        Box::pin(async move {
            let source = source_of(&request);
            match auth.authenticate(request.headers(), source).await {
                Ok(agent) => {
                    request.extensions_mut().insert(agent);
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http::<tonic::body::Body>().into()),
            }
        })
    }
}

/// The authenticated agent of a request (set by [`Authenticator`]).
pub fn agent_of<T>(request: &tonic::Request<T>) -> Result<AuthenticatedAgent, Status> {
    request
        .extensions()
        .get::<AuthenticatedAgent>()
        .cloned()
        .ok_or_else(unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str) -> FailureKey {
        FailureKey::Source(ip.parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_refused_after_too_many_failures_until_the_window_ends() {
        let limiter = FailureLimiter::new(3);
        let ip = source("10.0.0.1");
        let other = source("10.0.0.2");
        for _ in 0..3 {
            assert!(limiter.allowed(&ip, Instant::now()));
            limiter.record_failure(ip.clone(), Instant::now());
        }
        assert!(!limiter.allowed(&ip, Instant::now()));
        assert!(
            limiter.allowed(&other, Instant::now()),
            "other sources are not affected"
        );
        tokio::time::advance(FAILURE_WINDOW - Duration::from_secs(1)).await;
        assert!(!limiter.allowed(&ip, Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.allowed(&ip, Instant::now()));
        limiter.record_failure(ip.clone(), Instant::now());
        assert!(
            limiter.allowed(&ip, Instant::now()),
            "a new window starts counting from zero"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_token_is_limited_apart_from_its_source_address() {
        let limiter = FailureLimiter::new(2);
        let revoked = FailureKey::Token(token::generate().hash);
        for _ in 0..2 {
            limiter.record_failure(revoked.clone(), Instant::now());
        }
        assert!(!limiter.allowed(&revoked, Instant::now()));
        assert!(
            limiter.allowed(&source("10.0.0.1"), Instant::now()),
            "the address the revoked token came from is not limited"
        );
        assert!(limiter.allowed(&FailureKey::Token(token::generate().hash), Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_map_never_holds_more_than_its_capacity_and_drops_the_oldest_first() {
        let limiter = FailureLimiter::with_capacity(1, 3);
        for i in 0..3 {
            limiter.record_failure(source(&format!("10.0.0.{i}")), Instant::now());
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(limiter.tracked(), 3);
        limiter.record_failure(source("10.0.1.1"), Instant::now());
        assert_eq!(limiter.tracked(), 3, "bounded");
        assert!(
            limiter.allowed(&source("10.0.0.0"), Instant::now()),
            "the oldest window was dropped"
        );
        assert!(!limiter.allowed(&source("10.0.0.2"), Instant::now()));
        assert!(!limiter.allowed(&source("10.0.1.1"), Instant::now()));
        for i in 0..10_000 {
            limiter.record_failure(
                FailureKey::Source(std::net::IpAddr::V6(std::net::Ipv6Addr::from(i as u128))),
                Instant::now(),
            );
        }
        assert_eq!(limiter.tracked(), 3);
    }
}
