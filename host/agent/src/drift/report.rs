//! Telling people about drift: a Kubernetes Event on the object, metrics, a structured log line and
//! a report to the server. Values of Secrets never leave the agent: they are masked before anything
//! is logged or sent.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use tether_plugin_host::Verdict;

use crate::drift::judge::{FieldDrift, Judgement};
use crate::gitops::ObjectRef;

/// Shown instead of a Secret's values.
pub const MASK: &str = "\"***\"";

/// What the agent did about a drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `mode: report`, or the project is mid-sync: only reported.
    Reported,
    Corrected,
    /// Waiting out the backoff before the next correction.
    Delayed,
    /// Another manager keeps setting the field: no more corrections.
    Contested,
    /// The correction was refused by the API server.
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reported => "reported",
            Action::Corrected => "corrected",
            Action::Delayed => "delayed",
            Action::Contested => "contested",
            Action::Failed => "correction-failed",
        }
    }
}

pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::InSync => "in-sync",
        Verdict::Drifted => "drifted",
        Verdict::Missing => "missing",
        Verdict::Extraneous => "extraneous",
    }
}

/// Secrets' values replaced by [`MASK`].
pub fn masked(reference: &ObjectRef, drifts: &[FieldDrift]) -> Vec<FieldDrift> {
    let secret = reference.group.is_empty() && reference.kind == "Secret";
    drifts
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if secret {
                d.desired = d.desired.as_ref().map(|_| MASK.to_owned());
                d.live = d.live.as_ref().map(|_| MASK.to_owned());
            }
            d
        })
        .collect()
}

/// The drift metrics, rendered into the agent's `/metrics`.
#[derive(Debug, Default)]
pub struct DriftMetrics {
    /// Objects drifted or missing right now, by project.
    drifted: Mutex<BTreeMap<String, u64>>,
    pub corrections: AtomicU64,
    pub contested: AtomicU64,
    detector_failures: Mutex<BTreeMap<String, u64>>,
    /// Watches running, one per kind and scope.
    watches: tokio::sync::watch::Sender<usize>,
    /// Full re-checks of every managed object done since start.
    rechecks: tokio::sync::watch::Sender<u64>,
}

impl DriftMetrics {
    pub fn set_watches(&self, n: usize) {
        self.watches
            .send_if_modified(|w| std::mem::replace(w, n) != n);
    }

    /// Changes as watches start and stop; holds how many run.
    pub fn subscribe_watches(&self) -> tokio::sync::watch::Receiver<usize> {
        self.watches.subscribe()
    }

    pub fn recheck_done(&self) {
        self.rechecks.send_modify(|n| *n += 1);
    }

    /// Changes after each full re-check; holds how many were done.
    pub fn subscribe_rechecks(&self) -> tokio::sync::watch::Receiver<u64> {
        self.rechecks.subscribe()
    }

    pub fn set_drifted(&self, counts: BTreeMap<String, u64>) {
        *lock(&self.drifted) = counts;
    }

    pub fn detector_failed(&self, plugin: &str) {
        *lock(&self.detector_failures)
            .entry(plugin.to_owned())
            .or_default() += 1;
    }

    pub fn drifted(&self, project: &str) -> u64 {
        lock(&self.drifted).get(project).copied().unwrap_or(0)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tether_drift_objects Managed objects that differ from Git or are missing, by manifest project.\n\
             # TYPE tether_drift_objects gauge"
        );
        for (project, n) in lock(&self.drifted).iter() {
            let _ = writeln!(out, "tether_drift_objects{{project=\"{project}\"}} {n}");
        }
        for (name, help, value) in [
            (
                "tether_drift_corrections_total",
                "Drifted objects put back by server-side apply.",
                &self.corrections,
            ),
            (
                "tether_drift_contested_total",
                "Fields Tether stopped correcting because another manager keeps setting them.",
                &self.contested,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tether_drift_rechecks_total Full re-checks of every managed object (drift.interval).\n\
             # TYPE tether_drift_rechecks_total counter\n\
             tether_drift_rechecks_total {}",
            *self.rechecks.borrow()
        );
        let _ = writeln!(
            out,
            "# HELP tether_drift_watches Watches on managed kinds, one per kind and scope.\n\
             # TYPE tether_drift_watches gauge\n\
             tether_drift_watches {}",
            *self.watches.borrow()
        );
        let _ = writeln!(
            out,
            "# HELP tether_drift_detector_failures_total Drift detector plugins that failed; the built-in verdict was used.\n\
             # TYPE tether_drift_detector_failures_total counter"
        );
        for (plugin, n) in lock(&self.detector_failures).iter() {
            let _ = writeln!(
                out,
                "tether_drift_detector_failures_total{{plugin=\"{plugin}\"}} {n}"
            );
        }
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain counters: a panic elsewhere cannot leave them inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One drift, as logged, recorded and sent.
#[derive(Debug, Clone)]
pub struct DriftEvent<'a> {
    pub project: &'a str,
    pub commit: &'a str,
    pub reference: &'a ObjectRef,
    pub api_version: &'a str,
    pub judgement: &'a Judgement,
    pub action: Action,
    /// For a contested object: the field and the manager Tether gave up to.
    pub contested: Option<(&'a str, &'a str)>,
}

impl DriftEvent<'_> {
    pub fn log(&self) {
        let paths: Vec<&str> = self
            .judgement
            .drifts
            .iter()
            .map(|d| d.path.as_str())
            .collect();
        let owners: Vec<&str> = self
            .judgement
            .drifts
            .iter()
            .filter_map(|d| d.owner.as_deref())
            .collect();
        tracing::warn!(
            project = self.project,
            commit = self.commit,
            object = %self.reference,
            verdict = verdict_name(self.judgement.verdict),
            paths = ?paths,
            owners = ?owners,
            action = self.action.as_str(),
            contested_by = self.contested.map(|(_, m)| m),
            "drift"
        );
        if let Some(f) = &self.judgement.detector_failure {
            tracing::error!(plugin = %f.plugin, object = %self.reference, "drift detector failed, the built-in verdict was used: {}", f.error);
        }
    }

    /// A Kubernetes Event on the object, for `kubectl describe` and `kubectl events`.
    pub async fn record(&self, recorder: &Recorder) {
        let reason = match (self.judgement.verdict, self.action) {
            (_, Action::Contested) => "DriftContested",
            (Verdict::Missing, _) => "Missing",
            _ => "Drifted",
        };
        let mut note = format!(
            "{} ({}): ",
            verdict_name(self.judgement.verdict),
            self.action.as_str()
        );
        for d in &self.judgement.drifts {
            let _ = write!(
                note,
                "{} by {}; ",
                d.path,
                d.owner.as_deref().unwrap_or("unknown")
            );
        }
        if let Some((path, manager)) = self.contested {
            let _ = write!(
                note,
                "Tether stopped correcting {path}: {manager} keeps setting it"
            );
        }
        note.truncate(1000);
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            note: Some(note),
            action: self.action.as_str().to_owned(),
            secondary: None,
        };
        let object = ObjectReference {
            api_version: Some(self.api_version.to_owned()),
            kind: Some(self.reference.kind.clone()),
            name: Some(self.reference.name.clone()),
            namespace: self.reference.namespace.clone(),
            ..ObjectReference::default()
        };
        if let Err(e) = recorder.publish(&event, &object).await {
            tracing::debug!(object = %self.reference, "drift event not recorded: {e}");
        }
    }
}
