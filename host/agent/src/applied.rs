//! What each manifest project's last successful sync applied, published by the gitops module and read
//! by the drift module: the desired objects with the project's identity and commit, and whether a sync
//! is in flight or the last commit failed to render. Drift never corrects anything while either is
//! true: the cluster is about to change anyway, or Git's intent is unknown.
//!
//! Published as the latest value (`tokio::sync::watch`): the drift module only ever needs the current
//! state, never the history.

use std::collections::BTreeMap;
use std::sync::Arc;

use tether_config::gitops::DryRunStrategy;
use tether_plugin_host::PluginCatalog;
use tokio::sync::watch;

use crate::gitops::{DesiredObject, SyncOptions};

/// The objects one commit of a project applied.
#[derive(Debug)]
pub struct AppliedSet {
    pub commit_id: String,
    /// The inventory's id, as written in each object's owning-inventory annotation.
    pub inventory_id: String,
    /// Given to namespaced objects that name none.
    pub default_namespace: String,
    /// As rendered; the namespace is settled when the drift module resolves each kind.
    pub objects: Vec<DesiredObject>,
    /// The plugins loaded for that sync: the project's drift detector is among them.
    pub catalog: Arc<PluginCatalog>,
}

/// One manifest project, as the drift module sees it.
#[derive(Debug, Clone, Default)]
pub struct ProjectState {
    /// The last commit that applied without error; `None` before the first.
    pub applied: Option<Arc<AppliedSet>>,
    /// A commit is being rendered or applied.
    pub syncing: bool,
    /// The newest commit could not be rendered: what Git wants is unknown.
    pub render_failed: bool,
}

impl ProjectState {
    /// Whether drift of this project may be corrected now.
    pub fn settled(&self) -> bool {
        !self.syncing && !self.render_failed && self.applied.is_some()
    }
}

/// Every project's state, by project id.
pub type AppliedProjects = BTreeMap<String, ProjectState>;

/// The gitops module's side: one per agent, cloned into whoever publishes.
#[derive(Debug, Clone)]
pub struct AppliedPublisher {
    tx: Arc<watch::Sender<AppliedProjects>>,
}

impl Default for AppliedPublisher {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(AppliedProjects::new())),
        }
    }
}

impl AppliedPublisher {
    pub fn subscribe(&self) -> watch::Receiver<AppliedProjects> {
        self.tx.subscribe()
    }

    /// A sync of `project_id` starts: the project counts as in flight until the returned guard
    /// records how it ended or is dropped (a newer commit cancels the sync by dropping it).
    pub fn begin(&self, project_id: &str, catalog: &Arc<PluginCatalog>) -> SyncInFlight {
        self.tx.send_modify(|projects| {
            projects.entry(project_id.to_owned()).or_default().syncing = true;
        });
        SyncInFlight {
            tx: self.tx.clone(),
            project_id: project_id.to_owned(),
            catalog: catalog.clone(),
            rendered: None,
        }
    }
}

/// One sync in flight; see [`AppliedPublisher::begin`].
#[derive(Debug)]
pub struct SyncInFlight {
    tx: Arc<watch::Sender<AppliedProjects>>,
    project_id: String,
    catalog: Arc<PluginCatalog>,
    rendered: Option<AppliedSet>,
}

impl SyncInFlight {
    /// The commit rendered these objects (kept until [`SyncInFlight::synced`]), or failed to
    /// render (`None`).
    pub fn rendered(
        &mut self,
        commit_id: &str,
        rendered: Option<&[DesiredObject]>,
        options: &SyncOptions,
    ) {
        match rendered {
            // A dry run applies nothing: there is nothing drift could compare with or put back.
            Some(_) if options.dry_run != DryRunStrategy::None => {}
            Some(objects) => {
                self.rendered = Some(AppliedSet {
                    commit_id: commit_id.to_owned(),
                    inventory_id: options.inventory.id(),
                    default_namespace: options.default_namespace.clone(),
                    objects: objects.to_vec(),
                    catalog: self.catalog.clone(),
                });
                self.tx.send_modify(|projects| {
                    projects
                        .entry(self.project_id.clone())
                        .or_default()
                        .render_failed = false;
                });
            }
            None => self.tx.send_modify(|projects| {
                projects
                    .entry(self.project_id.clone())
                    .or_default()
                    .render_failed = true;
            }),
        }
    }

    /// The sync ended; with `success` its objects become the desired state drift compares with.
    /// A failed apply keeps the previous desired state: what failed may be half-applied.
    pub fn synced(mut self, success: bool) {
        let applied = self.rendered.take().filter(|_| success).map(Arc::new);
        self.tx.send_modify(|projects| {
            let state = projects.entry(self.project_id.clone()).or_default();
            if let Some(applied) = applied {
                state.applied = Some(applied);
            }
            state.syncing = false;
        });
    }
}

impl Drop for SyncInFlight {
    fn drop(&mut self) {
        self.tx.send_if_modified(|projects| {
            projects
                .get_mut(&self.project_id)
                .is_some_and(|s| std::mem::replace(&mut s.syncing, false))
        });
    }
}
