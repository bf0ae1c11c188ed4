//! What the cluster serves, for renderers: the API server's version and every served
//! `group/version` and `group/version/Kind` — what helm's `.Capabilities.KubeVersion` and
//! `.Capabilities.APIVersions` hold when helm talks to a cluster — read by discovery, shared by
//! every project's renders, and read again once it is older than [`CAPABILITIES_TTL`] (a CRD
//! installed since is seen by the next render after that).

use std::collections::BTreeSet;
use std::time::Duration;

use kube::Client;
use kube::discovery::Discovery;
use tether_plugin_host::ClusterInfo;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long discovery's answer is reused. Discovery of every group costs one request per group
/// version; a render per commit (or per re-apply) must not repeat it each time.
pub const CAPABILITIES_TTL: Duration = Duration::from_secs(60);

/// The cluster's [`ClusterInfo`], cached.
pub struct ClusterCapabilities {
    client: Client,
    ttl: Duration,
    cached: Mutex<Option<(ClusterInfo, Instant)>>,
}

impl std::fmt::Debug for ClusterCapabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCapabilities")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ClusterCapabilities {
    pub fn new(client: Client) -> Self {
        Self::with_ttl(client, CAPABILITIES_TTL)
    }

    pub fn with_ttl(client: Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// The cached answer while fresh, else discovery's. A failed discovery is an error, never an
    /// empty answer: charts rendered against helm's defaults instead of this cluster could drop
    /// objects, and a sync must not prune on such a render.
    pub async fn get(&self) -> Result<ClusterInfo, kube::Error> {
        let mut cached = self.cached.lock().await;
        if let Some((info, read)) = cached.as_ref()
            && read.elapsed() < self.ttl
        {
            return Ok(info.clone());
        }
        let info = discover(&self.client).await?;
        *cached = Some((info.clone(), Instant::now()));
        Ok(info)
    }
}

/// Every served version of every group, as helm's `GetVersionSet` lists them.
pub async fn discover(client: &Client) -> Result<ClusterInfo, kube::Error> {
    let version = client.apiserver_version().await?.git_version;
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut api_versions = BTreeSet::new();
    for group in discovery.groups() {
        for version in group.versions() {
            let group_version = if group.name().is_empty() {
                version.to_owned()
            } else {
                format!("{}/{version}", group.name())
            };
            for (resource, _) in group.versioned_resources(version) {
                api_versions.insert(format!("{group_version}/{}", resource.kind));
            }
            api_versions.insert(group_version);
        }
    }
    Ok(ClusterInfo {
        version,
        api_versions: api_versions.into_iter().collect(),
    })
}
