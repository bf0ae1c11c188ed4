//! The agent's connection to tether-server: one gRPC channel that dials out (the cluster needs no
//! inbound port), the agent's token on every call, and the backoff every long-lived call retries
//! with. The token is a secret: it is never logged and never handed to a module.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tether_rpc::agent::v1::agent_service_client::AgentServiceClient;
use tether_rpc::configuration::v1::configuration_service_client::ConfigurationServiceClient;
use tether_rpc::gitops::v1::gitops_service_client::GitopsServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// How long a connection must stay up before the backoff starts from the beginning again.
pub const HEALTHY_PERIOD: Duration = Duration::from_secs(60);
const KEEPALIVE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("server address {address}: {source}")]
    Address {
        address: String,
        source: tonic::transport::Error,
    },
    #[error("the token is not a valid header value (it must be printable ASCII)")]
    Token,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerToken(Arc<MetadataValue<Ascii>>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", (*self.0).clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, BearerToken>;

/// A lazily connected channel to the server; tonic reconnects it as needed.
#[derive(Debug, Clone)]
pub struct ServerConnection {
    channel: Channel,
    token: BearerToken,
}

impl ServerConnection {
    /// `address` is `http://…` (plaintext, for loopback) or `https://…`, verified against `ca_pem`
    /// or the system roots.
    pub fn new(
        address: &str,
        token: &SecretString,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<Self, ConnectionError> {
        let err = |source| ConnectionError::Address {
            address: address.to_owned(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(address.to_owned())
            .map_err(err)?
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_while_idle(true)
            .connect_timeout(Duration::from_secs(10));
        if address.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_enabled_roots();
            if let Some(ca) = ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            endpoint = endpoint.tls_config(tls).map_err(err)?;
        }
        let header = format!("Bearer {}", token.expose_secret())
            .parse::<MetadataValue<Ascii>>()
            .map_err(|_| ConnectionError::Token)?;
        Ok(Self {
            channel: endpoint.connect_lazy(),
            token: BearerToken(Arc::new(header)),
        })
    }

    pub fn gitops(&self) -> GitopsServiceClient<Authed> {
        GitopsServiceClient::with_interceptor(self.channel.clone(), self.token.clone())
    }

    pub fn configuration(&self) -> ConfigurationServiceClient<Authed> {
        ConfigurationServiceClient::with_interceptor(self.channel.clone(), self.token.clone())
    }

    pub fn drift(&self) -> tether_rpc::drift::v1::drift_service_client::DriftServiceClient<Authed> {
        tether_rpc::drift::v1::drift_service_client::DriftServiceClient::with_interceptor(
            self.channel.clone(),
            self.token.clone(),
        )
    }

    pub fn agent(&self) -> AgentServiceClient<Authed> {
        AgentServiceClient::with_interceptor(self.channel.clone(), self.token.clone())
    }
}

/// Jittered exponential backoff that starts over once a connection has been healthy for a while.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    healthy_since: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(60))
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
            healthy_since: None,
        }
    }

    /// A call got through; the connection counts as healthy from `now`.
    pub fn connected(&mut self, now: Instant) {
        self.healthy_since.get_or_insert(now);
    }

    /// The call failed at `now`: how long to wait before the next attempt. ±20% jitter keeps a
    /// fleet of agents from reconnecting in lockstep after a server restart.
    pub fn failed(&mut self, now: Instant) -> Duration {
        if self
            .healthy_since
            .take()
            .is_some_and(|since| now.duration_since(since) >= HEALTHY_PERIOD)
        {
            self.next = self.initial;
        }
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::rng().random_range(0.8..1.2);
        base.mul_f64(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let now = Instant::now();
        let delays: Vec<_> = (0..6).map(|_| b.failed(now).as_secs_f64()).collect();
        for (delay, base) in delays.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            assert!((base * 0.8..=base * 1.2).contains(delay), "{delays:?}");
        }
    }

    #[test]
    fn backoff_starts_over_only_after_a_healthy_period() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..4 {
            b.failed(start);
        }
        // Up briefly: still backing off from where it was.
        b.connected(start);
        let short = b.failed(start + Duration::from_secs(5));
        assert!(short >= Duration::from_secs(12), "{short:?}");
        // Up for longer than the healthy period: from the beginning.
        b.connected(start);
        let reset = b.failed(start + HEALTHY_PERIOD);
        assert!(reset <= Duration::from_millis(1200), "{reset:?}");
    }

    #[tokio::test]
    async fn the_token_never_shows_in_debug_output() {
        let conn = ServerConnection::new(
            "http://127.0.0.1:1",
            &SecretString::from("tthr_very_secret"),
            None,
        )
        .unwrap();
        assert!(!format!("{conn:?}").contains("very_secret"));
    }
}
