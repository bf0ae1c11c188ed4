//! The tunnel feature module: the agent keeps a pool of `Tunnel` streams open to the server (the cluster
//! needs no inbound port) and serves the one request each stream carries — for now a person's call to the
//! Kubernetes API, made with the agent's own credentials and, per `user_access`, impersonating the person.
//!
//! It never decides who may use the cluster (the server does, from the same `user_access`); it only refuses
//! a request its own configuration does not grant either, so a server bug cannot widen access.

mod kubernetes_api;
mod pool;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::connection::ServerConnection;
use crate::module::{ActiveConfig, ConfigWatch, Module};

pub use pool::{GROW_STEP, IDLE_TIMEOUT, MAX_STREAMS, MIN_IDLE, PoolStats};

/// Errors of one tunnel stream; they end that stream only, the pool opens another.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("the server refused the tunnel stream: {0}")]
    Connect(#[from] tonic::Status),
    #[error(transparent)]
    Order(#[from] tether_rpc::tunnel_stream::TunnelOrderError),
    #[error("the server ended the stream before the request was complete")]
    Cancelled,
    #[error("the server is no longer reading the stream")]
    ServerGone,
}

pub struct TunnelModule {
    pub client: kube::Client,
    pub connection: ServerConnection,
    pub stats: Arc<PoolStats>,
    /// The `prometheus` service's proxy, when the agent runs the prometheus module.
    pub prometheus: Option<tokio::sync::watch::Receiver<crate::prometheus::Availability>>,
}

/// The services every stream offers, and which one serves a request.
pub(crate) struct Services {
    kubernetes_api: kubernetes_api::KubernetesApi,
    prometheus: Option<crate::prometheus::PrometheusService>,
}

impl Services {
    fn offered(&self) -> Vec<String> {
        let mut offered = vec![tether_rpc::tunnel_stream::SERVICE_KUBERNETES_API.to_owned()];
        if self.prometheus.is_some() {
            offered.push(tether_rpc::tunnel_stream::SERVICE_PROMETHEUS.to_owned());
        }
        offered
    }

    async fn serve(
        &self,
        info: tether_rpc::tunnel::v1::RequestInfo,
        inbound: &mut tonic::Streaming<tether_rpc::tunnel::v1::ConnectResponse>,
        order: tether_rpc::tunnel_stream::ServerOrder,
        tx: &tokio::sync::mpsc::Sender<tether_rpc::tunnel::v1::ConnectRequest>,
    ) -> Result<(), TunnelError> {
        match &self.prometheus {
            Some(prometheus) if info.service == tether_rpc::tunnel_stream::SERVICE_PROMETHEUS => {
                prometheus.serve(info, inbound, order, tx).await
            }
            // Refuses any other service by name.
            _ => self.kubernetes_api.serve(info, inbound, order, tx).await,
        }
    }
}

impl std::fmt::Debug for TunnelModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelModule")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Module for TunnelModule {
    fn name(&self) -> &'static str {
        "tunnel"
    }

    fn validate(&self, _config: &ActiveConfig) -> Result<(), String> {
        // `user_access` is validated while parsing; nothing here depends on the cluster.
        Ok(())
    }

    fn run(
        self: Arc<Self>,
        config: ConfigWatch,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        let service = Arc::new(Services {
            kubernetes_api: kubernetes_api::KubernetesApi::new(self.client.clone(), config.clone()),
            prometheus: self.prometheus.clone().map(|availability| {
                crate::prometheus::PrometheusService::new(availability, config)
            }),
        });
        pool::run(self.connection.clone(), service, self.stats.clone(), stop).boxed()
    }
}
