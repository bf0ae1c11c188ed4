//! What the feature modules share: the server config, the store, the Git sources, the registry of
//! connected agents and the metrics, plus the cancellation and task tracking of every stream.

use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::sources::Sources;
use crate::store::{Agent, Store};
use std::sync::Arc;
use std::time::Duration;
use tether_config::server::ServerConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Long-lived streams re-check their token at least this often, so a revoked token's streams end
/// without waiting for a new commit.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Context {
    pub config: ServerConfig,
    pub store: Arc<dyn Store>,
    pub sources: Arc<Sources>,
    pub registry: Registry,
    /// The agents' idle tunnel streams.
    pub tunnels: crate::tunnel::Tunnels,
    pub metrics: Arc<Metrics>,
    pub drift: crate::drift::DriftLog,
    /// What each agent's cluster runs, as it last reported.
    pub features: crate::discovery::FeatureLog,
    /// Cancelled at shutdown: every stream ends.
    pub cancel: CancellationToken,
    /// Every stream's task, so shutdown can wait for them.
    pub tracker: TaskTracker,
}

impl Context {
    /// Whether `agent` may read `repository`: its config repository always, others by grant.
    pub fn may_read(&self, agent: &Agent, repository: &str) -> bool {
        self.sources.contains(repository)
            && (agent.config_repository == repository
                || self.config.granted(&agent.name, repository))
    }

    /// Sends one message of a stream unless the client is gone or the server shuts down (a client
    /// that stops reading must not hold up shutdown); `false` ends the stream.
    pub async fn send<T>(&self, tx: &tokio::sync::mpsc::Sender<T>, message: T) -> bool {
        tokio::select! {
            sent = tx.send(message) => sent.is_ok(),
            () = self.cancel.cancelled() => false,
        }
    }

    /// Whether token `id` is still valid; a store failure counts as invalid (fail closed). The lookup
    /// runs on the blocking pool: every open stream asks, and none may stall the runtime.
    pub async fn token_active(&self, id: i64) -> bool {
        crate::store::blocking(&self.store, move |store| store.token_active(id))
            .await
            .unwrap_or_else(|e| {
                tracing::error!("checking token {id}: {e}");
                false
            })
    }
}
