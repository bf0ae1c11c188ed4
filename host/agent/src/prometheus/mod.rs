//! The prometheus feature module: the cluster's Prometheus, served to people on the server side as the
//! tunnel service `prometheus` by a proxy plugin (the built-in `prometheus`, or the one
//! `prometheus.plugin` names).
//!
//! It owns which Prometheus is asked (`prometheus.url`, else the one feature discovery found), the
//! plugin loaded for it — whose only way out is the host's `outbound` call, allowed to reach that one
//! URL — and the limits it runs under. It never decides what a query may read: the plugin does.

mod service;
mod transport;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tether_config::plugins::{AllowedUrl, ByteSize, PluginLimits, Settings, World};
use tether_config::prometheus::{Prometheus, RESPONSE_HEADROOM};
use tether_plugin_host::{HttpRequest, Plugin, PluginDefinition, PluginEngine, PluginError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connection::ServerConnection;
use crate::module::{ActiveConfig, ConfigWatch, Module};
use crate::plugin_files::AgentPluginFiles;

pub use service::PrometheusService;
pub use transport::HttpTransport;

/// Time the outbound call gets beyond Prometheus' own evaluation timeout (connecting, sending the
/// answer); the plugin's call gets as much again, so the outbound call always ends first and the
/// person gets the transport's message rather than a plugin timeout.
const NETWORK_MARGIN: Duration = Duration::from_secs(2);
/// Queries answered at once; more wait for a free slot.
const PROXY_CONCURRENCY: u32 = 16;

/// The Prometheus proxy in force, or why there is none.
#[derive(Debug, Clone)]
pub enum Availability {
    Ready(Arc<ProxyInstance>),
    Unavailable(String),
}

/// A loaded proxy plugin and the Prometheus it may reach.
#[derive(Debug)]
pub struct ProxyInstance {
    pub plugin: Plugin,
    pub url: String,
    pub transport: Arc<HttpTransport>,
}

/// What the module needs to know to load the plugin; a change of any of it loads it again.
#[derive(Debug, Clone, PartialEq)]
struct Wanted {
    url: String,
    section: Prometheus,
    commit_id: String,
}

pub struct PrometheusModule {
    pub engine: Arc<PluginEngine>,
    pub connection: ServerConnection,
    pub plugin_dir: Option<PathBuf>,
    /// The base URL of a Prometheus feature discovery found; `None` while it found none.
    pub discovered: watch::Receiver<Option<String>>,
    pub availability: watch::Sender<Availability>,
}

impl std::fmt::Debug for PrometheusModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusModule").finish_non_exhaustive()
    }
}

/// The default availability before the module ran.
pub fn not_started() -> Availability {
    Availability::Unavailable("the agent has not read its configuration yet".to_owned())
}

impl Module for PrometheusModule {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn validate(&self, config: &ActiveConfig) -> Result<(), String> {
        let Some(name) = config
            .config
            .prometheus
            .as_ref()
            .and_then(|p| p.plugin.as_ref())
        else {
            return Ok(());
        };
        match config.config.plugins.iter().find(|p| p.name == *name) {
            Some(spec) if spec.world == World::Proxy => Ok(()),
            Some(spec) => Err(format!(
                "prometheus.plugin: plugin `{name}` is a {}, not a proxy",
                spec.world
            )),
            None => Err(format!(
                "prometheus.plugin: no plugin named `{name}` in `plugins`"
            )),
        }
    }

    fn run(
        self: Arc<Self>,
        mut config: ConfigWatch,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let mut discovered = self.discovered.clone();
            let mut discovery_gone = false;
            let mut loaded: Option<Wanted> = None;
            loop {
                let active = config.borrow_and_update().clone();
                let found = discovered.borrow_and_update().clone();
                if let Some(active) = active {
                    let section = active.config.prometheus.clone().unwrap_or_default();
                    let url = section
                        .url
                        .as_ref()
                        .map(|u| u.as_str().trim_end_matches('/').to_owned())
                        .or(found);
                    match url {
                        None => {
                            loaded = None;
                            self.availability.send_replace(Availability::Unavailable(
                                "this agent knows no Prometheus: set `prometheus.url` in its configuration, or run one that feature discovery finds".to_owned(),
                            ));
                        }
                        Some(url) => {
                            let wanted = Wanted {
                                url,
                                section,
                                commit_id: active.commit_id.clone(),
                            };
                            if loaded.as_ref() != Some(&wanted) {
                                let availability = self.load(&active, &wanted).await;
                                if let Availability::Unavailable(why) = &availability {
                                    tracing::error!("prometheus: {why}");
                                } else {
                                    tracing::info!(url = %wanted.url, "prometheus proxy ready");
                                }
                                self.availability.send_replace(availability);
                                loaded = Some(wanted);
                            }
                        }
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    changed = config.changed() => if changed.is_err() { return },
                    changed = discovered.changed(), if !discovery_gone => {
                        // Discovery is gone for good: keep what is loaded, follow the configuration.
                        discovery_gone = changed.is_err();
                    }
                }
            }
        }
        .boxed()
    }
}

impl PrometheusModule {
    async fn load(&self, active: &ActiveConfig, wanted: &Wanted) -> Availability {
        let section = &wanted.section;
        let max_body = section.max_response.bytes();
        let transport_timeout = section.timeout + NETWORK_MARGIN;
        let limits = PluginLimits {
            timeout: transport_timeout + NETWORK_MARGIN,
            output: ByteSize(max_body + RESPONSE_HEADROOM.bytes()),
            // A dashboard fires a query per panel at once; each call mostly waits on Prometheus.
            concurrency: PROXY_CONCURRENCY,
            ..PluginLimits::default()
        };
        let definition = match &section.plugin {
            None => {
                let allowed = match AllowedUrl::try_from(format!("{}/api/v1/", wanted.url)) {
                    Ok(allowed) => allowed,
                    Err(e) => return Availability::Unavailable(e),
                };
                let settings = match Settings::new(section.plugin_settings(&wanted.url)) {
                    Ok(settings) => settings,
                    Err(e) => return Availability::Unavailable(e),
                };
                Definition {
                    component: tether_plugin_host::builtin::PROMETHEUS.component.to_vec(),
                    sha256: None,
                    settings,
                    allowed_urls: vec![allowed],
                    limits,
                    name: tether_plugin_host::builtin::PROMETHEUS.name.to_owned(),
                }
            }
            Some(name) => {
                let Some(spec) = active.config.plugins.iter().find(|p| p.name == *name) else {
                    return Availability::Unavailable(format!(
                        "prometheus.plugin: no plugin named `{name}`"
                    ));
                };
                let files = AgentPluginFiles::fetch(
                    &self.connection,
                    self.plugin_dir.clone(),
                    &active.commit_id,
                    &active.config.plugins,
                )
                .await;
                let bytes = match tether_plugin_host::PluginFiles::read(&files, &spec.source) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        return Availability::Unavailable(format!(
                            "plugin `{name}` ({}): {e}",
                            spec.source
                        ));
                    }
                };
                // A configured proxy keeps its own settings and allow-list; the URL in use is added
                // as `url` unless it sets one.
                let url =
                    Settings::new(vec![("url".to_owned(), wanted.url.clone())]).unwrap_or_default();
                Definition {
                    component: bytes,
                    sha256: Some(spec.sha256.clone()),
                    settings: url.overlay(&spec.settings),
                    allowed_urls: spec.allowed_urls.clone(),
                    limits: spec.limits,
                    name: name.to_string(),
                }
            }
        };
        let engine = self.engine.clone();
        let transport = HttpTransport::new(max_body, transport_timeout);
        let url = wanted.url.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let plugin = engine
                .load(PluginDefinition {
                    name: definition.name,
                    world: World::Proxy,
                    component: &definition.component,
                    sha256: definition.sha256,
                    settings: definition.settings,
                    limits: definition.limits,
                    allowed_urls: definition.allowed_urls,
                })
                .map_err(|e| e.to_string())?;
            check_settings(&plugin, &transport)?;
            Ok::<_, String>(ProxyInstance {
                plugin,
                url,
                transport,
            })
        })
        .await;
        match loaded {
            Ok(Ok(instance)) => Availability::Ready(Arc::new(instance)),
            Ok(Err(why)) => Availability::Unavailable(why),
            Err(e) => Availability::Unavailable(format!("loading the plugin: {e}")),
        }
    }
}

struct Definition {
    name: String,
    component: Vec<u8>,
    sha256: Option<tether_config::plugins::Sha256Digest>,
    settings: Settings,
    allowed_urls: Vec<AllowedUrl>,
    limits: PluginLimits,
}

/// Asks the plugin for a path no proxy serves: it reads its settings first, so bad settings (an
/// `enforce` that is no list of matchers) are reported when the configuration arrives, not on the
/// first person's query. Nothing leaves the agent: a refused path is refused before any outbound call.
fn check_settings(plugin: &Plugin, transport: &Arc<HttpTransport>) -> Result<(), String> {
    let probe = HttpRequest {
        method: "GET".to_owned(),
        target: "/-/tether-settings-check".to_owned(),
        query: Vec::new(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    match plugin.handle(&probe, transport.clone()) {
        Ok(_) => Ok(()),
        Err(e @ PluginError::Guest { .. }) => Err(e.to_string()),
        Err(e) => Err(format!("the plugin failed its first call: {e}")),
    }
}
