//! Bearer-token authentication of every gRPC call, and the per-source limit on failed attempts.
//!
//! A refused call gets `Unauthenticated` with the same message whatever was wrong (missing, malformed,
//! unknown or revoked token), so a caller learns nothing about which tokens exist. A source that fails
//! too often within a minute is refused outright until the minute is over, valid token or not.

use crate::metrics::Metrics;
use crate::store::{Agent, Store};
use crate::token;
use secrecy::SecretString;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tonic::{Request, Status};

/// Length of the window failed attempts are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Sources tracked at most; beyond that, expired windows are dropped first.
const MAX_TRACKED_SOURCES: usize = 10_000;

/// Who made an authenticated call: put into the request's extensions for the services.
#[derive(Debug, Clone)]
pub struct AuthenticatedAgent {
    pub agent: Agent,
    pub token_id: i64,
}

/// Failed attempts per source address within [`FAILURE_WINDOW`].
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `source` may try at `now`.
    pub fn allowed(&self, source: IpAddr, now: Instant) -> bool {
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match windows.get(&source) {
            Some((start, count)) => {
                now.duration_since(*start) >= FAILURE_WINDOW || *count < self.limit
            }
            None => true,
        }
    }

    /// Counts a failed attempt of `source` at `now`.
    pub fn record_failure(&self, source: IpAddr, now: Instant) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED_SOURCES {
            windows.retain(|_, (start, _)| now.duration_since(*start) < FAILURE_WINDOW);
        }
        let entry = windows.entry(source).or_insert((now, 0));
        if now.duration_since(entry.0) >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

/// The gRPC interceptor: checks the bearer token against the store on every call.
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

    fn authenticate(&self, request: &Request<()>) -> Result<AuthenticatedAgent, Status> {
        let source = request.remote_addr().map(|a| a.ip());
        let now = Instant::now();
        if let Some(source) = source
            && !self.limiter.allowed(source, now)
        {
            self.metrics
                .inc("tether_server_auth_rate_limited_total", &[]);
            return Err(Status::resource_exhausted(
                "too many failed authentications; retry later",
            ));
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| token::well_formed(t))
            .map(|t| SecretString::from(t.to_owned()));
        let found = match presented {
            Some(secret) => match self
                .store
                .authenticate(&token::hash(&secret), crate::store::now())
            {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!("authentication: {e}");
                    return Err(Status::unavailable(
                        "the server cannot check tokens right now",
                    ));
                }
            },
            None => None,
        };
        match found {
            Some((agent, token)) => Ok(AuthenticatedAgent {
                agent,
                token_id: token.id,
            }),
            None => {
                if let Some(source) = source {
                    self.limiter.record_failure(source, now);
                }
                self.metrics.inc("tether_server_auth_failures_total", &[]);
                Err(unauthenticated())
            }
        }
    }
}

/// The one answer to every authentication failure.
pub fn unauthenticated() -> Status {
    Status::unauthenticated("unauthenticated")
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let agent = self.authenticate(&request)?;
        request.extensions_mut().insert(agent);
        Ok(request)
    }
}

/// The authenticated agent of a request (set by [`Authenticator`]).
pub fn agent_of<T>(request: &Request<T>) -> Result<AuthenticatedAgent, Status> {
    request
        .extensions()
        .get::<AuthenticatedAgent>()
        .cloned()
        .ok_or_else(unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_source_is_refused_after_too_many_failures_until_the_window_ends() {
        let limiter = FailureLimiter::new(3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.allowed(ip, Instant::now()));
            limiter.record_failure(ip, Instant::now());
        }
        assert!(!limiter.allowed(ip, Instant::now()));
        assert!(
            limiter.allowed(other, Instant::now()),
            "other sources are not affected"
        );
        tokio::time::advance(FAILURE_WINDOW - Duration::from_secs(1)).await;
        assert!(!limiter.allowed(ip, Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.allowed(ip, Instant::now()));
        limiter.record_failure(ip, Instant::now());
        assert!(
            limiter.allowed(ip, Instant::now()),
            "a new window starts counting from zero"
        );
    }
}
