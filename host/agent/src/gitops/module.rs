//! The gitops feature module: one worker per manifest project of the configuration, started,
//! restarted or stopped as the configuration changes (a removed project stops syncing; nothing is
//! deleted for it). Each worker follows its project's stream of commits from the server, renders
//! each commit, applies it while this replica leads, and reports the result.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tether_config::gitops::{GitRef, ManifestProject};
use tether_config::plugins::Plugins;
use tether_plugin_host::{PluginCatalog, PluginEngine};
use tether_rpc::agent::v1::{self as agent_rpc, SyncResult};
use tether_rpc::gitops::v1::{self as gitops_rpc, ObjectsToSynchronizeRequest, PathSelector};
use tether_rpc::sync_stream::{ObjectsSet, SyncAssembler};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{Backoff, ServerConnection};
use crate::gitops::{
    ClusterCapabilities, InventoryId, KindFilter, ProjectFiles, SyncOptions, SyncReport,
    Synchronizer, render_project,
};
use crate::metrics::Metrics;
use crate::module::{ActiveConfig, ConfigWatch, Module};
use crate::plugin_files::AgentPluginFiles;

/// What every project worker shares.
pub struct GitopsModule {
    pub client: kube::Client,
    pub connection: ServerConnection,
    pub engine: Arc<PluginEngine>,
    pub plugin_dir: Option<std::path::PathBuf>,
    /// Where each commit's files are written for rendering (the agent's --work-dir).
    pub work_dir: std::path::PathBuf,
    /// The agent's name on the server: part of every inventory's name.
    pub agent_name: String,
    /// Where inventories live: the agent's own namespace.
    pub agent_namespace: String,
    pub leader: watch::Receiver<bool>,
    pub metrics: Arc<Metrics>,
    /// Where each sync publishes what it applied, for the drift module.
    pub applied: crate::applied::AppliedPublisher,
}

impl std::fmt::Debug for GitopsModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitopsModule")
            .field("agent_name", &self.agent_name)
            .field("agent_namespace", &self.agent_namespace)
            .finish_non_exhaustive()
    }
}

impl Module for GitopsModule {
    fn name(&self) -> &'static str {
        "gitops"
    }

    fn validate(&self, config: &ActiveConfig) -> Result<(), String> {
        for project in config.config.gitops.manifest_projects.iter() {
            if let Err(e) = crate::gitops::policy::check_mode(
                &config.mode,
                &crate::gitops::ObjectRef {
                    group: String::new(),
                    kind: "ConfigMap".into(),
                    namespace: Some(project.default_namespace.clone()),
                    name: "x".into(),
                },
                true,
            ) {
                return Err(format!(
                    "manifest project {}: default_namespace: {e}",
                    project.id
                ));
            }
        }
        Ok(())
    }

    fn run(
        self: Arc<Self>,
        mut config: ConfigWatch,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let tracker = TaskTracker::new();
            // One discovery cache for every project's renders.
            let capabilities = Arc::new(ClusterCapabilities::new(self.client.clone()));
            // Running workers by project id, with what they were started with.
            let mut running: HashMap<
                String,
                (Arc<ActiveConfig>, ManifestProject, CancellationToken),
            > = HashMap::new();
            // Set while a plugin file could not be fetched: fetch again after it, and restart the
            // workers once the catalog is complete.
            let mut plugin_backoff = Backoff::default();
            let mut refetch_after: Option<Duration> = None;
            let mut refetching = false;
            // The last complete catalog and the plugins it was loaded for: most configuration
            // commits leave `plugins:` alone, and the same specs (digests included) load the same
            // components, so they are neither fetched nor compiled again.
            let mut loaded: Option<(Plugins, Arc<PluginCatalog>)> = None;
            loop {
                let active = config.borrow_and_update().clone();
                if let Some(active) = active {
                    let reusable = loaded
                        .as_ref()
                        .filter(|(plugins, _)| *plugins == active.config.plugins)
                        .map(|(_, catalog)| catalog.clone());
                    let catalog = match reusable {
                        Some(catalog) => catalog,
                        None => {
                            let fetched = tokio::select! {
                                _ = stop.cancelled() => break,
                                fetched = self.catalog(&active) => fetched,
                            };
                            let (catalog, complete) = fetched;
                            let catalog = Arc::new(catalog);
                            refetch_after = if complete {
                                plugin_backoff.connected(Instant::now());
                                loaded = Some((active.config.plugins.clone(), catalog.clone()));
                                None
                            } else {
                                loaded = None;
                                Some(plugin_backoff.failed(Instant::now()))
                            };
                            if refetching && complete {
                                tracing::info!("all plugins loaded: restarting the project workers with them");
                                for (_, (_, _, token)) in running.drain() {
                                    token.cancel();
                                }
                            }
                            catalog
                        }
                    };
                    refetching = false;
                    let wanted: HashMap<String, ManifestProject> = active
                        .config
                        .gitops
                        .manifest_projects
                        .iter()
                        .map(|p| (p.id.to_string(), p.clone()))
                        .collect();
                    running.retain(|id, (old, project, token)| {
                        let same = wanted.get(id) == Some(project)
                            && old.mode == active.mode
                            && old.config.resource_inclusions == active.config.resource_inclusions
                            && old.config.resource_exclusions == active.config.resource_exclusions
                            && old.config.plugins == active.config.plugins;
                        if !same {
                            tracing::info!(project = %id, "stopping the project's worker");
                            token.cancel();
                        }
                        same
                    });
                    for (id, project) in wanted {
                        if running.contains_key(&id) {
                            continue;
                        }
                        let token = stop.child_token();
                        tracing::info!(project = %id, "starting the project's worker");
                        tracker.spawn(self.clone().run_project(
                            active.clone(),
                            project.clone(),
                            catalog.clone(),
                            capabilities.clone(),
                            token.clone(),
                        ));
                        running.insert(id, (active.clone(), project, token));
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    changed = config.changed() => if changed.is_err() { break },
                    _ = tokio::time::sleep(refetch_after.unwrap_or_default()), if refetch_after.is_some() => {
                        refetching = true;
                    }
                }
            }
            tracker.close();
            tracker.wait().await;
        }
        .boxed()
    }
}

impl GitopsModule {
    /// The built-ins plus the configured plugins, and whether every repository file arrived.
    async fn catalog(&self, active: &ActiveConfig) -> (PluginCatalog, bool) {
        let files = AgentPluginFiles::fetch(
            &self.connection,
            self.plugin_dir.clone(),
            &active.commit_id,
            &active.config.plugins,
        )
        .await;
        let engine = self.engine.clone();
        let plugins = active.config.plugins.clone();
        let complete = files.complete();
        let (catalog, complete) = match crate::plugin_files::off_the_runtime(move || {
            PluginCatalog::load(&engine, &plugins, &files)
        })
        .await
        {
            Ok(catalog) => (catalog, complete),
            // Retried with backoff like an unfetched plugin file; the workers fail to render meanwhile.
            Err(e) => {
                tracing::error!("loading the plugins failed: {e}");
                (PluginCatalog::default(), false)
            }
        };
        for failure in catalog.failures() {
            tracing::error!(plugin = %failure.plugin, "plugin not loaded: {}", failure.error);
        }
        (catalog, complete)
    }

    fn sync_options(&self, active: &ActiveConfig, project: &ManifestProject) -> SyncOptions {
        let mut options = SyncOptions::new(
            InventoryId::new(&self.agent_name, project.id.as_str()),
            &self.agent_namespace,
        );
        options.default_namespace = project.default_namespace.clone();
        options.mode = active.mode.clone();
        options.kinds = KindFilter {
            inclusions: active.config.resource_inclusions.clone(),
            exclusions: active.config.resource_exclusions.clone(),
        };
        options.inventory_policy = project.inventory_policy;
        options.dry_run = project.dry_run_strategy;
        options.prune = project.prune;
        options.prune_propagation = project.prune_propagation_policy;
        options.prune_timeout = project.prune_timeout;
        options.reconcile_timeout = project.reconcile_timeout;
        options.force_conflicts = project.force_conflicts;
        options.allow_empty = project.allow_empty;
        options
    }

    /// Follows one project until `stop`: each new commit cancels a sync still in flight.
    async fn run_project(
        self: Arc<Self>,
        active: Arc<ActiveConfig>,
        project: ManifestProject,
        catalog: Arc<PluginCatalog>,
        capabilities: Arc<ClusterCapabilities>,
        stop: CancellationToken,
    ) {
        let synchronizer = Arc::new(Synchronizer::new(
            self.client.clone(),
            self.sync_options(&active, &project),
        ));
        let mut backoff = Backoff::default();
        // The last commit applied without error: the stream resumes after it.
        let mut applied_commit = String::new();
        let mut last_set: Option<ObjectsSet> = None;
        // Whether the last sync applied everything: a failed one is retried every `drift.interval`.
        let mut last_succeeded = false;
        // With drift detection on, the drift module re-checks every object each `drift.interval`
        // and judges it with the project's detector and ignore rules; a blind re-apply would undo
        // edits the detector or an ignore rule lets stand, and correct in `report` mode. With it
        // off, the last commit is re-applied as often, as GitLab's agent does every 5 minutes.
        let drift = active.config.drift.with_override(project.drift.as_ref());
        let blind_reapply = !drift.enabled;
        let mut reapply = tokio::time::interval(drift.interval);
        reapply.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reapply.tick().await;
        loop {
            let request = ObjectsToSynchronizeRequest {
                project_id: project.id.to_string(),
                r#ref: project.git_ref.as_ref().map(rpc_ref),
                paths: project
                    .paths
                    .iter()
                    .map(|p| PathSelector {
                        glob: p.glob.as_str().to_owned(),
                    })
                    .collect(),
                commit_id: applied_commit.clone(),
            };
            let mut client = self.connection.gitops();
            let opened = tokio::select! {
                _ = stop.cancelled() => return,
                r = client.get_objects_to_synchronize(request) => r,
            };
            let mut stream = match opened {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    tracing::warn!(project = %project.id, code = ?status.code(), "objects stream: {}", status.message());
                    self.report_failure(
                        &project,
                        &applied_commit,
                        format!("cannot fetch the manifests: {}", status.message()),
                    )
                    .await;
                    if !wait(&stop, backoff.failed(Instant::now())).await {
                        return;
                    }
                    continue;
                }
            };
            backoff.connected(Instant::now());
            let mut assembler = SyncAssembler::new();
            let mut in_flight: Option<BoxFuture<'static, (ObjectsSet, Outcome)>> = None;
            let mut next: Option<ObjectsSet> = None;
            let ended = loop {
                if in_flight.is_none()
                    && let Some(set) = next.take()
                {
                    in_flight = Some(
                        self.clone()
                            .process(
                                synchronizer.clone(),
                                catalog.clone(),
                                capabilities.clone(),
                                project.clone(),
                                set,
                            )
                            .boxed(),
                    );
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    message = stream.message() => match message {
                        Ok(Some(message)) => match assembler.accept(message) {
                            Ok(Some(set)) => {
                                if in_flight.take().is_some() {
                                    tracing::info!(project = %project.id, commit = %set.commit_id, "a newer commit cancels the sync in flight");
                                }
                                next = Some(set);
                            }
                            Ok(None) => {}
                            Err(e) => break format!("the server broke the stream's order: {e}"),
                        },
                        Ok(None) => break "the server closed the stream".to_owned(),
                        Err(status) => break status.message().to_owned(),
                    },
                    (set, outcome) = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                        in_flight = None;
                        last_succeeded = outcome.succeeded();
                        if last_succeeded {
                            applied_commit = set.commit_id.clone();
                        }
                        self.report(&project, &set.commit_id, &outcome).await;
                        // Not done, only paused: the commit is synced again once this replica
                        // leads again (process waits for that), unless a newer one is queued.
                        if matches!(outcome, Outcome::LeadershipLost) && next.is_none() {
                            next = Some(set.clone());
                        }
                        last_set = Some(set);
                    }
                    _ = reapply.tick(), if in_flight.is_none() && next.is_none() => {
                        if blind_reapply || !last_succeeded {
                            next = last_set.clone();
                        }
                    }
                }
            };
            tracing::warn!(project = %project.id, "objects stream ended: {ended}");
            if !wait(&stop, backoff.failed(Instant::now())).await {
                return;
            }
        }
    }

    /// Renders and applies one commit. Waits for leadership before writing anything.
    async fn process(
        self: Arc<Self>,
        synchronizer: Arc<Synchronizer>,
        catalog: Arc<PluginCatalog>,
        capabilities: Arc<ClusterCapabilities>,
        project: ManifestProject,
        set: ObjectsSet,
    ) -> (ObjectsSet, Outcome) {
        let started = Instant::now();
        let mut in_flight = self.applied.begin(project.id.as_str(), &catalog);
        // Charts branch on what the cluster serves (`.Capabilities`): render against this cluster.
        let cluster = match capabilities.get().await {
            Ok(cluster) => cluster,
            Err(e) => {
                in_flight.rendered(&set.commit_id, None, synchronizer.options());
                return (
                    set,
                    Outcome::RenderFailed(vec![format!(
                        "cannot read the cluster's version and API versions (discovery): {e}"
                    )]),
                );
            }
        };
        let rendered = tokio::task::spawn_blocking({
            let set = set.clone();
            let work_dir = self.work_dir.clone();
            move || {
                let files = ProjectFiles::write_in(
                    &work_dir,
                    set.files
                        .iter()
                        .map(|(path, data)| (path.as_str(), data.as_ref())),
                )
                .map_err(|e| vec![e.to_string()])?;
                render_project(&catalog, &project, &files, &cluster)
                    .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())
            }
        })
        .await
        .unwrap_or_else(|e| Err(vec![format!("rendering panicked: {e}")]));
        in_flight.rendered(
            &set.commit_id,
            rendered.as_ref().ok().map(|r| r.objects.as_slice()),
            synchronizer.options(),
        );
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(errors) => return (set, Outcome::RenderFailed(errors)),
        };
        let mut leader = self.leader.clone();
        if leader.wait_for(|leading| *leading).await.is_err() {
            return (
                set,
                Outcome::RenderFailed(vec!["leader election stopped".into()]),
            );
        }
        // Leadership can lapse during a sync that runs for up to reconcile_timeout: the sync stops
        // writing the moment it does, since another replica may already be applying.
        let Some(report) = synchronizer
            .sync_while_leading(rendered.objects, self.leader.clone())
            .await
        else {
            return (set, Outcome::LeadershipLost);
        };
        in_flight.synced(report.is_success());
        (
            set,
            Outcome::Synced {
                report: Box::new(report),
                duration: started.elapsed(),
                warnings: rendered.warnings,
            },
        )
    }

    async fn report(&self, project: &ManifestProject, commit: &str, outcome: &Outcome) {
        let status = match outcome {
            Outcome::LeadershipLost => {
                // The new leader reports this commit; a status from here would race with it.
                tracing::warn!(project = %project.id, commit, "leadership lost mid-sync: stopped writing");
                return;
            }
            Outcome::RenderFailed(errors) => {
                Metrics::add(&self.metrics.syncs_failed, 1);
                tracing::error!(project = %project.id, commit, "render failed, nothing applied or pruned: {}", errors.join("; "));
                agent_rpc::ProjectStatus {
                    project_id: project.id.to_string(),
                    commit_id: commit.to_owned(),
                    result: SyncResult::Failed.into(),
                    message: format!(
                        "render failed, nothing applied or pruned: {}",
                        errors.join("; ")
                    ),
                    ..Default::default()
                }
            }
            Outcome::Synced {
                report,
                duration,
                warnings,
            } => {
                for warning in warnings {
                    tracing::warn!(project = %project.id, commit, "{warning}");
                }
                let counter = if report.is_success() {
                    &self.metrics.syncs_succeeded
                } else {
                    &self.metrics.syncs_failed
                };
                Metrics::add(counter, 1);
                Metrics::add(&self.metrics.objects_applied, report.applied.len());
                Metrics::add(&self.metrics.objects_pruned, report.pruned.len());
                tracing::info!(
                    project = %project.id, commit,
                    applied = report.applied.len(), unchanged = report.unchanged.len(),
                    pruned = report.pruned.len(), errors = report.errors.len(),
                    duration_ms = duration.as_millis() as u64,
                    "synced"
                );
                status_of(project, commit, report, warnings, *duration)
            }
        };
        self.send_status(status).await;
        self.metrics.sync_finished();
    }

    async fn report_failure(&self, project: &ManifestProject, commit: &str, message: String) {
        self.send_status(agent_rpc::ProjectStatus {
            project_id: project.id.to_string(),
            commit_id: commit.to_owned(),
            result: SyncResult::Failed.into(),
            message,
            ..Default::default()
        })
        .await;
    }

    async fn send_status(&self, status: agent_rpc::ProjectStatus) {
        self.connection.report_status(status).await;
    }
}

/// How processing one commit ended.
enum Outcome {
    RenderFailed(Vec<String>),
    /// This replica stopped leading before the sync finished; it wrote nothing more.
    LeadershipLost,
    Synced {
        report: Box<SyncReport>,
        duration: Duration,
        warnings: Vec<String>,
    },
}

impl Outcome {
    fn succeeded(&self) -> bool {
        matches!(self, Outcome::Synced { report, .. } if report.is_success())
    }
}

fn status_of(
    project: &ManifestProject,
    commit: &str,
    report: &SyncReport,
    warnings: &[String],
    duration: Duration,
) -> agent_rpc::ProjectStatus {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut summary = format!(
        "{} applied, {} unchanged, {} pruned, {} errors",
        report.applied.len(),
        report.unchanged.len(),
        report.pruned.len(),
        report.errors.len()
    );
    if !report.abandoned.is_empty() {
        summary.push_str(&format!(
            "; {} left in the cluster unpruned",
            report.abandoned.len()
        ));
    }
    // Failures of the whole project (the inventory, an empty render) are named by no object: the
    // message says them, so the status shows why without opening the object errors.
    for error in report.errors.iter().filter(|e| e.reference.is_none()) {
        summary.push_str("; ");
        summary.push_str(&error.to_string());
    }
    // The status has no field for warnings: they travel in the message, after the counts.
    for warning in warnings {
        summary.push_str("; warning: ");
        summary.push_str(warning);
    }
    agent_rpc::ProjectStatus {
        project_id: project.id.to_string(),
        commit_id: commit.to_owned(),
        result: if report.is_success() {
            SyncResult::Succeeded
        } else {
            SyncResult::Failed
        }
        .into(),
        message: summary,
        errors: report
            .errors
            .iter()
            .map(|e| {
                let r = e
                    .reference
                    .clone()
                    .unwrap_or_else(|| crate::gitops::ObjectRef {
                        group: String::new(),
                        kind: String::new(),
                        namespace: None,
                        name: e.object.clone(),
                    });
                agent_rpc::ObjectError {
                    group: r.group,
                    kind: r.kind,
                    namespace: r.namespace.unwrap_or_default(),
                    name: r.name,
                    message: e.message.clone(),
                }
            })
            .collect(),
        applied: count(report.applied.len()),
        unchanged: count(report.unchanged.len()),
        pruned: count(report.pruned.len()),
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
    }
}

fn rpc_ref(r: &GitRef) -> gitops_rpc::Ref {
    use gitops_rpc::r#ref::Ref;
    gitops_rpc::Ref {
        r#ref: Some(match r {
            GitRef::Branch(b) => Ref::Branch(b.clone()),
            GitRef::Tag(t) => Ref::Tag(t.clone()),
            GitRef::Commit(c) => Ref::Commit(c.clone()),
        }),
    }
}

/// Waits `delay` unless stopped first; false if stopped.
async fn wait(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}
