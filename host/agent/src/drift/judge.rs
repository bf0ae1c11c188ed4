//! Asking the project's drift detector whether an object drifted: desired, live (without
//! `managedFields`) and field owners go in, a verdict with the drifted fields comes out.
//!
//! A configured detector is untrusted code: if it traps, runs out of time or memory, or answers
//! something that cannot be right, the built-in detector's verdict is used instead and the failure is
//! reported by the plugin's name. A broken detector must never cause a wrong correction.

use serde_json::Value;
use tether_config::drift::{BUILTIN_DETECTOR, IgnoreRule, ObjectIdentity};
use tether_config::plugins::Settings;
use tether_plugin_host::{Observed, PluginCatalog, Report, Verdict};

use crate::drift::owners::field_owners;
use crate::gitops::ObjectRef;

/// What a detector found, after the ignore rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub drifts: Vec<FieldDrift>,
    /// A configured detector that failed, and why; its verdict was replaced by the built-in's.
    pub detector_failure: Option<DetectorFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorFailure {
    pub plugin: String,
    pub error: String,
}

/// One drifted field; values are JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldDrift {
    pub path: String,
    pub desired: Option<String>,
    pub live: Option<String>,
    pub owner: Option<String>,
}

/// Why no verdict could be had at all (not even the built-in's).
#[derive(Debug, thiserror::Error)]
#[error("drift detector `{plugin}`: {error}")]
pub struct JudgeError {
    pub plugin: String,
    pub error: String,
}

/// What one judgement needs: the object, both sides, and the project's detector and ignore rules.
#[derive(Debug)]
pub struct Case<'a> {
    pub reference: &'a ObjectRef,
    pub desired: &'a Value,
    /// `None`: the object does not exist.
    pub live: Option<&'a Value>,
    pub catalog: &'a PluginCatalog,
    pub detector: &'a str,
    pub ignore: &'a [IgnoreRule],
}

/// Judges one object. Blocking: a plugin call may take up to its time limit.
pub fn judge(case: &Case<'_>) -> Result<Judgement, JudgeError> {
    let observed = observed(case.desired, case.live);
    let mut failure = None;
    if case.detector != BUILTIN_DETECTOR {
        match detect(case.catalog, case.detector, &observed) {
            Ok(report) => return Ok(finish(case, report, None)),
            Err(error) => {
                failure = Some(DetectorFailure {
                    plugin: case.detector.to_owned(),
                    error,
                });
            }
        }
    }
    let report = detect(case.catalog, BUILTIN_DETECTOR, &observed).map_err(|error| JudgeError {
        plugin: BUILTIN_DETECTOR.to_owned(),
        error,
    })?;
    Ok(finish(case, report, failure))
}

fn observed(desired: &Value, live: Option<&Value>) -> Observed {
    let owners = live.map(field_owners).unwrap_or_default();
    let live = live.map(|l| {
        let mut l = l.clone();
        if let Some(meta) = l.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        l.to_string()
    });
    Observed {
        desired: Some(desired.to_string()),
        live,
        owners,
    }
}

/// One call, with the answer checked: exactly one report, a verdict that fits the input, drifts
/// that are JSON pointers with JSON values.
fn detect(catalog: &PluginCatalog, name: &str, observed: &Observed) -> Result<Report, String> {
    let plugin = catalog.get(name).map_err(|e| e.to_string())?;
    let mut reports = plugin
        .detect_drift(&Settings::default(), std::slice::from_ref(observed))
        .map_err(|e| e.to_string())?;
    let report = reports.pop().ok_or("no report")?;
    let fits = match report.verdict {
        Verdict::Missing => observed.live.is_none(),
        Verdict::InSync | Verdict::Drifted => observed.live.is_some(),
        Verdict::Extraneous => false,
    };
    if !fits {
        return Err(format!(
            "verdict {:?} for an object that {}",
            report.verdict,
            if observed.live.is_some() {
                "exists"
            } else {
                "does not exist"
            }
        ));
    }
    if report.verdict == Verdict::Drifted && report.drifts.is_empty() {
        return Err("verdict drifted without any drifted field".to_owned());
    }
    for d in &report.drifts {
        if !(d.path.is_empty() || d.path.starts_with('/')) {
            return Err(format!("drift path `{}` is not a JSON pointer", d.path));
        }
        for value in [&d.desired, &d.live].into_iter().flatten() {
            if serde_json::from_str::<Value>(value).is_err() {
                return Err(format!("the value at `{}` is not JSON", d.path));
            }
        }
    }
    Ok(report)
}

fn finish(case: &Case<'_>, report: Report, failure: Option<DetectorFailure>) -> Judgement {
    let labels = case
        .desired
        .pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let identity = ObjectIdentity {
        group: &case.reference.group,
        kind: &case.reference.kind,
        namespace: case.reference.namespace.as_deref(),
        name: &case.reference.name,
        labels: &labels,
    };
    let drifts: Vec<FieldDrift> = report
        .drifts
        .into_iter()
        .filter(|d| !case.ignore.iter().any(|r| r.ignores(&identity, &d.path)))
        .map(|d| FieldDrift {
            path: d.path,
            desired: d.desired,
            live: d.live,
            owner: d.owner,
        })
        .collect();
    let verdict = match report.verdict {
        Verdict::Drifted if drifts.is_empty() => Verdict::InSync,
        v => v,
    };
    Judgement {
        verdict,
        drifts,
        detector_failure: failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tether_config::plugins::Plugins;
    use tether_plugin_host::{EngineOptions, NoPluginFiles, PluginEngine};

    fn builtins() -> PluginCatalog {
        let engine = PluginEngine::new(EngineOptions::default()).unwrap();
        PluginCatalog::load(&engine, &Plugins::default(), &NoPluginFiles)
    }

    fn web() -> ObjectRef {
        ObjectRef {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: Some("apps".into()),
            name: "web".into(),
        }
    }

    fn desired() -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "labels": {"tier": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1", "resources": {"limits": {"cpu": 0.5}}}
            ]}}}
        })
    }

    /// What the API server holds after Tether applied `desired()`: defaults added, the CPU
    /// quantity in its canonical spelling, every field Tether set owned by `tether`.
    fn live(replicas: u64, replicas_owner: &str) -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "labels": {"tier": "web"},
                "uid": "u", "resourceVersion": "9",
                "managedFields": [
                    {"manager": "tether", "operation": "Apply", "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:tier": {}}},
                        "f:spec": {"f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {},
                                "f:resources": {"f:limits": {"f:cpu": {}}}}}}}}
                    }},
                    {"manager": replicas_owner, "operation": "Update", "fieldsV1": {
                        "f:spec": {"f:replicas": {}}
                    }}
                ]},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1", "imagePullPolicy": "IfNotPresent",
                 "terminationMessagePath": "/dev/termination-log",
                 "resources": {"limits": {"cpu": "500m"}}}
            ]}}},
            "status": {"replicas": replicas}
        })
    }

    fn case<'a>(
        catalog: &'a PluginCatalog,
        reference: &'a ObjectRef,
        desired: &'a serde_json::Value,
        live: Option<&'a serde_json::Value>,
        detector: &'a str,
        ignore: &'a [IgnoreRule],
    ) -> Case<'a> {
        Case {
            reference,
            desired,
            live,
            catalog,
            detector,
            ignore,
        }
    }

    #[test]
    fn defaults_and_tethers_own_spelling_are_not_drift_another_managers_edit_is() {
        let catalog = builtins();
        let (r, d) = (web(), desired());
        let in_sync = live(2, "tether");
        let j = judge(&case(&catalog, &r, &d, Some(&in_sync), "drift", &[])).unwrap();
        assert_eq!(j.verdict, Verdict::InSync, "{j:?}");

        let scaled = live(5, "kubectl-scale");
        let j = judge(&case(&catalog, &r, &d, Some(&scaled), "drift", &[])).unwrap();
        assert_eq!(j.verdict, Verdict::Drifted);
        assert_eq!(
            j.drifts,
            [FieldDrift {
                path: "/spec/replicas".into(),
                desired: Some("2".into()),
                live: Some("5".into()),
                owner: Some("kubectl-scale".into()),
            }]
        );

        let j = judge(&case(&catalog, &r, &d, None, "drift", &[])).unwrap();
        assert_eq!(j.verdict, Verdict::Missing);
    }

    #[test]
    fn ignore_rules_select_by_target_and_path() {
        let catalog = builtins();
        let (r, d, scaled) = (web(), desired(), live(5, "kube-controller-manager"));
        let rules: Vec<IgnoreRule> = serde_yaml::from_str(
            "- target: {kind: Deployment, label_selector: tier=web}\n  paths: [/spec/replicas]\n",
        )
        .unwrap();
        let j = judge(&case(&catalog, &r, &d, Some(&scaled), "drift", &rules)).unwrap();
        assert_eq!(j.verdict, Verdict::InSync, "{j:?}");
        let other: Vec<IgnoreRule> =
            serde_yaml::from_str("- target: {kind: StatefulSet}\n  paths: [/spec/replicas]\n")
                .unwrap();
        let j = judge(&case(&catalog, &r, &d, Some(&scaled), "drift", &other)).unwrap();
        assert_eq!(j.verdict, Verdict::Drifted);
    }

    #[test]
    fn a_detector_that_is_not_there_falls_back_to_the_built_in_verdict() {
        let catalog = builtins();
        let (r, d, scaled) = (web(), desired(), live(5, "kubectl-scale"));
        let j = judge(&case(&catalog, &r, &d, Some(&scaled), "hpa-aware", &[])).unwrap();
        assert_eq!(j.verdict, Verdict::Drifted);
        let failure = j.detector_failure.expect("the failure is reported");
        assert_eq!(failure.plugin, "hpa-aware");
        // A renderer is not a detector either.
        let j = judge(&case(&catalog, &r, &d, Some(&scaled), "raw", &[])).unwrap();
        assert_eq!(j.detector_failure.unwrap().plugin, "raw");
        assert_eq!(j.verdict, Verdict::Drifted);
    }
}
