//! Drift: notice within a second that the cluster no longer holds what Git says, judge it with the
//! project's drift-detector plugin, and report it — or put it back (`mode: correct`).
//!
//! The gitops module publishes what each project's last sync applied ([`crate::applied`]); this
//! module watches every kind among those objects (one watch per kind and scope, shared by all
//! projects), and judges each managed object as it changes and again every `drift.interval`. It
//! never corrects a project whose sync is in flight or whose newest commit failed to render, never
//! acts on a replica that does not lead, and never deletes anything.

pub mod desired;
pub mod judge;
pub mod owners;
pub mod remedy;
pub mod report;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Client;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use serde_json::Value;
use tether_config::agent::AgentMode;
use tether_config::drift::{BUILTIN_DETECTOR, Drift, IgnoreRule};
use tether_config::plugins::World;
use tether_plugin_host::{PluginCatalog, Verdict};
use tokio::sync::{mpsc, watch as latest};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::applied::{AppliedProjects, AppliedSet};
use crate::connection::ServerConnection;
use crate::drift::desired::{Kinds, SettledObject, settle};
use crate::drift::judge::{Case, Judgement, judge};
use crate::drift::remedy::{Decision, Remedy};
use crate::drift::report::{Action, DriftEvent};
use crate::drift::watch::{Seen, WatchKey, watch_kind};
use crate::gitops::{FIELD_MANAGER, ObjectRef};
use crate::metrics::Metrics;
use crate::module::{ActiveConfig, ConfigWatch, Module};

/// Changes seen by the watches waiting for the drift loop; a full queue slows the watches down
/// rather than growing memory.
const SEEN_QUEUE: usize = 1024;

/// The agent part of the drift feature.
pub struct DriftModule {
    pub client: Client,
    pub connection: ServerConnection,
    pub applied: latest::Receiver<AppliedProjects>,
    pub leader: latest::Receiver<bool>,
    pub metrics: Arc<Metrics>,
    pub agent_name: String,
}

impl std::fmt::Debug for DriftModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftModule")
            .field("agent_name", &self.agent_name)
            .finish_non_exhaustive()
    }
}

impl Module for DriftModule {
    fn name(&self) -> &'static str {
        "drift"
    }

    /// A detector must be the built-in one or a configured drift-detector plugin.
    fn validate(&self, config: &ActiveConfig) -> Result<(), String> {
        let agent = &config.config.drift;
        let mut wanted = vec![(
            "drift.detector".to_owned(),
            agent.detector_name().to_owned(),
        )];
        for project in config.config.gitops.manifest_projects.iter() {
            let drift = agent.with_override(project.drift.as_ref());
            wanted.push((
                format!("manifest project {}: drift.detector", project.id),
                drift.detector_name().to_owned(),
            ));
        }
        for (key, name) in wanted {
            if name == BUILTIN_DETECTOR {
                continue;
            }
            match config
                .config
                .plugins
                .iter()
                .find(|p| p.name.as_str() == name)
            {
                Some(p) if p.world == World::DriftDetector => {}
                Some(p) => {
                    return Err(format!(
                        "{key}: plugin `{name}` is a {}, not a drift-detector",
                        p.world.as_str()
                    ));
                }
                None => {
                    return Err(format!(
                        "{key}: no plugin `{name}` in `plugins:` (the built-in detector is `{BUILTIN_DETECTOR}`)"
                    ));
                }
            }
        }
        Ok(())
    }

    fn run(
        self: Arc<Self>,
        config: ConfigWatch,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let (seen_tx, seen_rx) = mpsc::channel(SEEN_QUEUE);
            let recorder = Recorder::new(
                self.client.clone(),
                Reporter {
                    controller: "tether-agent".to_owned(),
                    instance: Some(self.agent_name.clone()),
                },
            );
            let mut state = DriftLoop {
                module: self.clone(),
                recorder,
                seen_tx,
                watches: HashMap::new(),
                tracker: TaskTracker::new(),
                kinds: Kinds::default(),
                projects: HashMap::new(),
                tracked: HashMap::new(),
                due: HashMap::new(),
                next_recheck: tokio::time::Instant::now(),
            };
            state.run(config, seen_rx, stop).await;
        }
        .boxed()
    }
}

/// One project as drift handles it.
struct Project {
    drift: Drift,
    applied: Arc<AppliedSet>,
    /// Whether drift of it may be judged (no sync in flight) and corrected (and it rendered).
    syncing: bool,
    render_failed: bool,
}

/// One managed object.
struct Tracked {
    project: String,
    object: SettledObject,
    remedy: Remedy,
    /// Drifted or missing at the last look.
    drifted: bool,
    /// What was last reported, so a drift is reported once, not on every status update.
    last_reported: Option<u64>,
}

struct DriftLoop {
    module: Arc<DriftModule>,
    recorder: Recorder,
    seen_tx: mpsc::Sender<Seen>,
    watches: HashMap<WatchKey, CancellationToken>,
    tracker: TaskTracker,
    kinds: Kinds,
    projects: HashMap<String, Project>,
    tracked: HashMap<ObjectRef, Tracked>,
    /// Objects to look at again when their correction backoff ends.
    due: HashMap<ObjectRef, Instant>,
    next_recheck: tokio::time::Instant,
}

impl DriftLoop {
    async fn run(
        &mut self,
        mut config: ConfigWatch,
        mut seen: mpsc::Receiver<Seen>,
        stop: CancellationToken,
    ) {
        let mut applied = self.module.applied.clone();
        let mut dirty = true;
        loop {
            if dirty {
                dirty = false;
                let active = config.borrow_and_update().clone();
                let projects = applied.borrow_and_update().clone();
                if let Some(active) = active {
                    self.rebuild(&active, &projects).await;
                }
            }
            let next_due = self.due.values().min().copied();
            tokio::select! {
                _ = stop.cancelled() => break,
                changed = config.changed() => {
                    if changed.is_err() { break }
                    dirty = true;
                }
                changed = applied.changed() => {
                    if changed.is_err() { break }
                    dirty = true;
                }
                Some(s) = seen.recv() => self.seen(s).await,
                _ = tokio::time::sleep_until(next_due.map_or_else(tokio::time::Instant::now, Into::into)), if next_due.is_some() => {
                    let now = Instant::now();
                    let ready: Vec<ObjectRef> = self.due.iter().filter(|(_, t)| **t <= now).map(|(r, _)| r.clone()).collect();
                    for reference in ready {
                        self.due.remove(&reference);
                        self.look(&reference).await;
                    }
                }
                _ = tokio::time::sleep_until(self.next_recheck), if !self.tracked.is_empty() => {
                    let every = self.projects.values().map(|p| p.drift.interval).min().unwrap_or(Duration::from_secs(300));
                    self.next_recheck = tokio::time::Instant::now() + every;
                    let all: Vec<ObjectRef> = self.tracked.keys().cloned().collect();
                    for reference in all {
                        self.look(&reference).await;
                    }
                    self.module.metrics.drift.recheck_done();
                }
            }
        }
        for (_, token) in self.watches.drain() {
            token.cancel();
        }
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Follows the configuration and what the syncs applied: which objects to judge, with which
    /// settings, and which watches that takes.
    async fn rebuild(&mut self, active: &ActiveConfig, applied: &AppliedProjects) {
        let mut projects = HashMap::new();
        for project in active.config.gitops.manifest_projects.iter() {
            let id = project.id.to_string();
            let drift = active.config.drift.with_override(project.drift.as_ref());
            let Some(state) = applied.get(&id) else {
                continue;
            };
            let Some(set) = &state.applied else { continue };
            if !drift.enabled {
                continue;
            }
            projects.insert(
                id,
                Project {
                    drift,
                    applied: set.clone(),
                    syncing: state.syncing,
                    render_failed: state.render_failed,
                },
            );
        }
        let mut tracked = HashMap::new();
        for (id, project) in &projects {
            // The same commit as before: its objects are settled already.
            let unchanged = self
                .projects
                .get(id)
                .is_some_and(|old| Arc::ptr_eq(&old.applied, &project.applied));
            if unchanged {
                let keep: Vec<ObjectRef> = self
                    .tracked
                    .iter()
                    .filter(|(_, t)| &t.project == id)
                    .map(|(r, _)| r.clone())
                    .collect();
                for r in keep {
                    if let Some(t) = self.tracked.remove(&r) {
                        tracked.insert(r, t);
                    }
                }
                continue;
            }
            let set = &project.applied;
            for object in &set.objects {
                let settled = settle(
                    &mut self.kinds,
                    &self.module.client,
                    object,
                    &set.default_namespace,
                    &set.inventory_id,
                )
                .await;
                let settled = match settled {
                    Ok(Some(s)) => s,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(project = %id, "drift: object {} not watched: {e}", object.describe());
                        continue;
                    }
                };
                // Corrections and contention carry over while Git leaves the object alone.
                let previous = self
                    .tracked
                    .remove(&settled.reference)
                    .filter(|t| t.object.body == settled.body);
                let entry = previous.unwrap_or_else(|| Tracked {
                    project: id.clone(),
                    object: settled.clone(),
                    remedy: Remedy::default(),
                    drifted: false,
                    last_reported: None,
                });
                tracked.insert(
                    settled.reference.clone(),
                    Tracked {
                        project: id.clone(),
                        object: settled,
                        ..entry
                    },
                );
            }
        }
        // A project judged by other rules now (detector, ignore, mode): look at its objects again.
        let now = Instant::now();
        let rejudge: Vec<String> = projects
            .iter()
            .filter(|(id, p)| {
                self.projects
                    .get(*id)
                    .is_some_and(|old| old.drift != p.drift)
            })
            .map(|(id, _)| id.clone())
            .collect();
        self.projects = projects;
        self.tracked = tracked;
        self.due.retain(|r, _| self.tracked.contains_key(r));
        for (r, t) in &self.tracked {
            if rejudge.contains(&t.project) {
                self.due.insert(r.clone(), now);
            }
        }
        self.update_gauge();

        // The watches these objects take: per kind, cluster-wide or per namespace.
        let wanted: HashMap<WatchKey, kube::discovery::ApiResource> = self
            .tracked
            .values()
            .map(|t| {
                let scope = match (&active.mode, t.object.kind.namespaced) {
                    (AgentMode::Namespaced { .. }, true) => t.object.reference.namespace.as_deref(),
                    _ => None,
                };
                (
                    WatchKey::new(&t.object.kind.resource, scope),
                    t.object.kind.resource.clone(),
                )
            })
            .collect();
        self.watches.retain(|key, token| {
            let keep = wanted.contains_key(key);
            if !keep {
                token.cancel();
            }
            keep
        });
        for (key, resource) in wanted {
            if self.watches.contains_key(&key) {
                continue;
            }
            let token = CancellationToken::new();
            tracing::debug!(kind = %key.kind, namespace = ?key.namespace, "drift watch starts");
            self.tracker.spawn(watch_kind(
                self.module.client.clone(),
                resource,
                key.clone(),
                self.seen_tx.clone(),
                token.clone(),
            ));
            self.watches.insert(key, token);
        }
        self.module.metrics.drift.set_watches(self.watches.len());
    }

    async fn seen(&mut self, seen: Seen) {
        match seen {
            Seen::Live(reference, object) => {
                let live = self.live_value(&reference, *object);
                self.judge_and_act(&reference, live).await;
            }
            Seen::Deleted(reference) => self.judge_and_act(&reference, None).await,
            Seen::KindGone(key) => {
                self.watches.remove(&key);
                self.module.metrics.drift.set_watches(self.watches.len());
                let gone: Vec<ObjectRef> = self
                    .tracked
                    .iter()
                    .filter(|(_, t)| {
                        t.object.kind.resource.group == key.group
                            && t.object.kind.resource.kind == key.kind
                    })
                    .map(|(r, _)| r.clone())
                    .collect();
                if let Some(t) = gone.first().and_then(|r| self.tracked.get(r)) {
                    self.kinds.forget(&t.object.kind.resource);
                }
                for r in gone {
                    self.tracked.remove(&r);
                    self.due.remove(&r);
                }
                self.update_gauge();
            }
        }
    }

    /// Reads the object from the API server and judges it.
    async fn look(&mut self, reference: &ObjectRef) {
        let Some(t) = self.tracked.get(reference) else {
            return;
        };
        let api = api_for(&self.module.client, &t.object);
        match api.get_opt(&reference.name).await {
            Ok(live) => {
                let live = live.and_then(|o| self.live_value(reference, o));
                self.judge_and_act(reference, live).await;
            }
            Err(e) => tracing::warn!(object = %reference, "drift: read the live object: {e}"),
        }
    }

    /// The live object as JSON, with the `apiVersion` and `kind` that objects of a list or watch
    /// leave out (Git always sets them: without them every object would drift).
    fn live_value(&self, reference: &ObjectRef, object: DynamicObject) -> Option<Value> {
        let t = self.tracked.get(reference)?;
        let mut live = serde_json::to_value(object).ok()?;
        let resource = &t.object.kind.resource;
        live["apiVersion"] = Value::from(resource.api_version.as_str());
        live["kind"] = Value::from(resource.kind.as_str());
        Some(live)
    }

    async fn judge_and_act(&mut self, reference: &ObjectRef, live: Option<Value>) {
        if !*self.module.leader.borrow() {
            return;
        }
        let Some(t) = self.tracked.get(reference) else {
            return;
        };
        let Some(project) = self.projects.get(&t.project) else {
            return;
        };
        if project.syncing {
            // The sync applies every object anyway; what it meets on the way is not drift.
            return;
        }
        let catalog: Arc<PluginCatalog> = project.applied.catalog.clone();
        let detector = project.drift.detector_name().to_owned();
        let ignore: Vec<IgnoreRule> = project.drift.ignore.clone();
        let desired = t.object.body.clone();
        let reference_owned = reference.clone();
        let judged = tokio::task::spawn_blocking(move || {
            judge(&Case {
                reference: &reference_owned,
                desired: &desired,
                live: live.as_ref(),
                catalog: &catalog,
                detector: &detector,
                ignore: &ignore,
            })
        })
        .await;
        let judgement = match judged {
            Ok(Ok(j)) => j,
            Ok(Err(e)) => {
                tracing::error!(object = %reference, "drift not judged: {e}");
                return;
            }
            Err(e) => {
                tracing::error!(object = %reference, "drift judgement panicked: {e}");
                return;
            }
        };
        if let Some(f) = &judgement.detector_failure {
            self.module.metrics.drift.detector_failed(&f.plugin);
        }
        let project = &self.projects[&self.tracked[reference].project];
        let may_correct = project.drift.correct && !project.render_failed;
        let commit = project.applied.commit_id.clone();
        let project_id = self.tracked[reference].project.clone();
        let now = Instant::now();
        let t = self.tracked.get_mut(reference).expect("looked up above");
        if judgement.verdict == Verdict::InSync {
            t.remedy.in_sync(now);
            if std::mem::take(&mut t.drifted) {
                tracing::info!(project = %project_id, object = %reference, "back in sync");
                t.last_reported = None;
                self.update_gauge();
            }
            return;
        }
        let paths: Vec<(String, Option<String>)> = judgement
            .drifts
            .iter()
            .map(|d| (d.path.clone(), d.owner.clone()))
            .collect();
        let mut contested = None;
        let action = if !may_correct {
            Action::Reported
        } else {
            match t.remedy.decide(&paths, now) {
                Decision::Correct => match correct(&self.module.client, &t.object).await {
                    Ok(()) => {
                        t.remedy.corrected(&paths, now);
                        Metrics::add(&self.module.metrics.drift.corrections, 1);
                        Action::Corrected
                    }
                    Err(e) => {
                        tracing::warn!(object = %reference, "drift correction refused: {e}");
                        t.remedy.corrected(&paths, now);
                        Action::Failed
                    }
                },
                Decision::Wait(at) => {
                    self.due.insert(reference.clone(), at);
                    Action::Delayed
                }
                Decision::Contested { path, manager } => {
                    contested = Some((path, manager));
                    Action::Contested
                }
            }
        };
        let was_drifted = std::mem::replace(&mut t.drifted, true);
        let signature = signature(&judgement, action);
        // A correction is always reported; the same drift in the same state only once.
        let fresh = action == Action::Corrected || t.last_reported != Some(signature);
        t.last_reported = Some(signature);
        if action == Action::Contested && fresh {
            Metrics::add(&self.module.metrics.drift.contested, 1);
        }
        if !was_drifted {
            self.update_gauge();
        }
        if fresh && action != Action::Delayed {
            let t = &self.tracked[reference];
            let api_version = t.object.kind.resource.api_version.clone();
            let masked = Judgement {
                drifts: report::masked(reference, &judgement.drifts),
                ..judgement.clone()
            };
            let event = DriftEvent {
                project: &project_id,
                commit: &commit,
                reference,
                api_version: &api_version,
                judgement: &masked,
                action,
                contested: contested.as_ref().map(|(p, m)| (p.as_str(), m.as_str())),
            };
            event.log();
            event.record(&self.recorder).await;
            self.send(&event).await;
        }
    }

    fn update_gauge(&self) {
        let mut counts: BTreeMap<String, u64> =
            self.projects.keys().map(|p| (p.clone(), 0)).collect();
        for t in self.tracked.values().filter(|t| t.drifted) {
            *counts.entry(t.project.clone()).or_default() += 1;
        }
        self.module.metrics.drift.set_drifted(counts);
    }

    /// Tells the server; a report that cannot be delivered is logged, never retried forever.
    async fn send(&self, event: &DriftEvent<'_>) {
        let request = tether_rpc::drift::v1::ReportDriftRequest {
            project_id: event.project.to_owned(),
            commit_id: event.commit.to_owned(),
            group: event.reference.group.clone(),
            kind: event.reference.kind.clone(),
            namespace: event.reference.namespace.clone().unwrap_or_default(),
            name: event.reference.name.clone(),
            verdict: report::verdict_name(event.judgement.verdict).to_owned(),
            action: event.action.as_str().to_owned(),
            fields: event
                .judgement
                .drifts
                .iter()
                .map(|d| tether_rpc::drift::v1::DriftedField {
                    path: d.path.clone(),
                    desired: d.desired.clone(),
                    live: d.live.clone(),
                    owner: d.owner.clone().unwrap_or_default(),
                })
                .collect(),
            contested_by: event
                .contested
                .map(|(_, m)| m.to_owned())
                .unwrap_or_default(),
            detector_failure: event
                .judgement
                .detector_failure
                .as_ref()
                .map(|f| format!("{}: {}", f.plugin, f.error))
                .unwrap_or_default(),
        };
        if let Err(e) = self.module.connection.drift().report_drift(request).await {
            tracing::warn!("drift report not delivered: {}", e.message());
        }
    }
}

fn api_for(client: &Client, object: &SettledObject) -> kube::Api<DynamicObject> {
    match &object.reference.namespace {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &object.kind.resource),
        None => kube::Api::all_with(client.clone(), &object.kind.resource),
    }
}

/// Puts the object back as the sync applied it: server-side apply with force as `tether`, which
/// also re-creates a deleted object. Nothing else of the project is touched.
async fn correct(client: &Client, object: &SettledObject) -> Result<(), kube::Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api_for(client, object)
        .patch(&object.reference.name, &params, &Patch::Apply(&object.body))
        .await
        .map(drop)
}

fn signature(j: &Judgement, action: Action) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crate::drift::report::verdict_name(j.verdict).hash(&mut h);
    j.drifts.hash(&mut h);
    action.as_str().hash(&mut h);
    h.finish()
}
