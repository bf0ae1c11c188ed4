//! The discovery feature module: finds what the cluster runs — Prometheus, Prometheus Operator, Flux
//! and its Receivers, cert-manager, ingress controllers, service meshes, metrics-server, the API groups
//! of installed CRDs — by the rules of one table ([`rules::RULES`]), and reports it to the server
//! (`tether.discovery.v1`) whenever it changes. It watches Services, CRDs and IngressClasses (no
//! polling), and publishes the Prometheus URL it found for the prometheus module.
//!
//! It only reads; it never changes anything in the cluster. A watch it may not run (RBAC) is retried
//! with backoff and logged; the others go on.

pub mod rules;

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tether_rpc::discovery::v1::{Feature, ReportFeaturesRequest};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connection::{Backoff, ServerConnection};
use crate::module::{ActiveConfig, ConfigWatch, Module};
use rules::Findings;

pub struct DiscoveryModule {
    client: kube::Client,
    connection: ServerConnection,
    prometheus_url: watch::Sender<Option<String>>,
    findings: watch::Sender<Findings>,
}

impl std::fmt::Debug for DiscoveryModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryModule").finish_non_exhaustive()
    }
}

impl DiscoveryModule {
    pub fn new(client: kube::Client, connection: ServerConnection) -> Self {
        Self {
            client,
            connection,
            prometheus_url: watch::Sender::new(None),
            findings: watch::Sender::new(Findings::default()),
        }
    }

    /// The base URL of the Prometheus found, as it changes.
    pub fn prometheus_url(&self) -> watch::Receiver<Option<String>> {
        self.prometheus_url.subscribe()
    }

    /// What was found, as it changes.
    pub fn findings(&self) -> watch::Receiver<Findings> {
        self.findings.subscribe()
    }
}

impl Module for DiscoveryModule {
    fn name(&self) -> &'static str {
        "discovery"
    }

    fn validate(&self, _config: &ActiveConfig) -> Result<(), String> {
        Ok(())
    }

    fn run(
        self: Arc<Self>,
        _config: ConfigWatch,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let (services, services_w) = reflector::store::<Service>();
            let (crds, crds_w) = reflector::store::<CustomResourceDefinition>();
            let (classes, classes_w) = reflector::store::<IngressClass>();
            let config = watcher::Config::default();
            // Each watch keeps its store current; any event of any of them re-evaluates the rules.
            let events = futures::stream::select_all([
                watch_kind(Api::<Service>::all(self.client.clone()), services_w, config.clone()),
                watch_kind(Api::<CustomResourceDefinition>::all(self.client.clone()), crds_w, config.clone()),
                watch_kind(Api::<IngressClass>::all(self.client.clone()), classes_w, config),
            ]);
            let mut events = std::pin::pin!(events);
            let mut reopened = self.connection.reopened();
            let mut reported: Option<Findings> = None;
            let mut backoff = Backoff::default();
            loop {
                let findings = evaluate(&services, &crds, &classes);
                self.prometheus_url.send_if_modified(|url| {
                    let found = findings
                        .features
                        .iter()
                        .find(|f| f.name == "prometheus")
                        .and_then(|f| f.url.clone());
                    let changed = *url != found;
                    *url = found;
                    changed
                });
                self.findings.send_if_modified(|f| {
                    let changed = *f != findings;
                    *f = findings.clone();
                    changed
                });
                if reported.as_ref() != Some(&findings) && all_ready(&services, &crds, &classes) {
                    match self.report(&findings).await {
                        Ok(()) => {
                            backoff.connected(Instant::now());
                            reported = Some(findings);
                        }
                        Err(status) => {
                            let delay = backoff.failed(Instant::now());
                            tracing::warn!(retry_in = ?delay, "reporting what the cluster runs: {}", status.message());
                            tokio::select! {
                                () = stop.cancelled() => return,
                                () = tokio::time::sleep(delay) => {}
                            }
                            continue;
                        }
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    event = events.next() => if event.is_none() { return },
                    // A new connection may be a restarted server that forgot the report.
                    _ = reopened.changed() => reported = None,
                }
            }
        }
        .boxed()
    }
}

impl DiscoveryModule {
    async fn report(&self, findings: &Findings) -> Result<(), tonic::Status> {
        let request = ReportFeaturesRequest {
            features: findings
                .features
                .iter()
                .map(|f| Feature {
                    name: f.name.to_owned(),
                    category: f.category.to_owned(),
                    evidence: f.evidence.iter().cloned().collect(),
                    url: f.url.clone().unwrap_or_default(),
                })
                .collect(),
            crd_groups: findings.crd_groups.clone(),
        };
        self.connection
            .discovery()
            .report_features(request)
            .await
            .map(drop)
    }
}

/// A watch of one kind into its store, as a stream of "something changed"; errors are logged and
/// retried with kube-runtime's backoff.
fn watch_kind<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    config: watcher::Config,
) -> futures::stream::BoxStream<'static, ()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let kind = K::kind(&()).into_owned();
    reflector::reflector(writer, watcher::watcher(api, config).default_backoff())
        .filter_map(move |event| {
            if let Err(e) = &event {
                tracing::warn!(kind = %kind, "discovery watch: {e}");
            }
            std::future::ready(Some(()))
        })
        .boxed()
}

fn all_ready(
    services: &Store<Service>,
    crds: &Store<CustomResourceDefinition>,
    classes: &Store<IngressClass>,
) -> bool {
    // Before every first list is in, a report would say "nothing" and then change at once.
    services.wait_until_ready().now_or_never().is_some()
        && crds.wait_until_ready().now_or_never().is_some()
        && classes.wait_until_ready().now_or_never().is_some()
}

fn evaluate(
    services: &Store<Service>,
    crds: &Store<CustomResourceDefinition>,
    classes: &Store<IngressClass>,
) -> Findings {
    let services = services.state();
    let crds = crds.state();
    let classes = classes.state();
    let services: Vec<&Service> = services.iter().map(AsRef::as_ref).collect();
    let crds: Vec<&CustomResourceDefinition> = crds.iter().map(AsRef::as_ref).collect();
    let classes: Vec<&IngressClass> = classes.iter().map(AsRef::as_ref).collect();
    rules::evaluate(rules::RULES, &services, &crds, &classes)
}
