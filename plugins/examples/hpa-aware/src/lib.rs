//! Example drift detector: `hpa-aware`. It judges like the built-in detector (fields Git sets, lists
//! item by item, Tether's own normalised values are not drift) with one rule added: `spec.replicas`
//! of a workload that a HorizontalPodAutoscaler drives is never drift, so Tether does not fight the
//! autoscaler.
//!
//! How it knows an autoscaler drives the workload — a detector sees only the object, so two ways:
//! - field ownership: the HPA controller writes `spec.replicas` through the scale subresource as field
//!   manager `kube-controller-manager`; when a manager listed in the `managers` setting owns the live
//!   `spec.replicas`, an autoscaler has taken it over;
//! - the `targets` setting: `namespace/name` of workloads known to be autoscaled (comma-separated),
//!   for autoscalers that write as another manager (KEDA, a custom controller).
//!
//! Settings: `managers` (default `kube-controller-manager`), `targets`, `kinds` (default
//! `Deployment,StatefulSet,ReplicaSet`), `manager` (Tether's field manager, default `tether`).
//!
//! Configure it in the agent's `config.yaml`:
//! ```yaml
//! plugins:
//!   - {name: hpa-aware, world: drift-detector, path: hpa-aware.wasm, sha256: ...}
//! drift: {detector: hpa-aware}
//! ```

wit_bindgen::generate!({ path: "../../../wit", world: "tether:plugin/drift-detector@0.1.0" });

use exports::tether::plugin::detect::{Drift, FieldOwner, Guest, Observed, Report, Verdict};
use serde_json::Value;
use tether::plugin::types::{Diagnostic, Error};

/// Written by the API server, not by Git.
const SERVER_FIELDS: &[&str] = &[
    "/status",
    "/metadata/managedFields",
    "/metadata/resourceVersion",
];

struct Settings {
    managers: Vec<String>,
    targets: Vec<String>,
    kinds: Vec<String>,
    manager: String,
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn settings(pairs: &[(String, String)]) -> Result<Settings, Error> {
    let mut s = Settings {
        managers: vec!["kube-controller-manager".to_owned()],
        targets: Vec::new(),
        kinds: list("Deployment,StatefulSet,ReplicaSet"),
        manager: "tether".to_owned(),
    };
    for (key, value) in pairs {
        match key.as_str() {
            "managers" => s.managers = list(value),
            "targets" => s.targets = list(value),
            "kinds" => s.kinds = list(value),
            "manager" => s.manager = value.clone(),
            other => {
                return Err(Error::InvalidSettings(Diagnostic {
                    message: format!(
                        "unknown setting `{other}` (known: managers, targets, kinds, manager)"
                    ),
                    location: None,
                }));
            }
        }
    }
    Ok(s)
}

struct Detector;

impl Guest for Detector {
    fn detect(pairs: Vec<(String, String)>, observed: Vec<Observed>) -> Result<Vec<Report>, Error> {
        let settings = settings(&pairs)?;
        observed
            .iter()
            .enumerate()
            .map(|(i, o)| report(i, o, &settings))
            .collect()
    }
}

export!(Detector);

fn parse(index: usize, which: &str, json: &str) -> Result<Value, Error> {
    serde_json::from_str(json).map_err(|e| {
        Error::InvalidInput(Diagnostic {
            message: format!("observed[{index}].{which} is not JSON: {e}"),
            location: None,
        })
    })
}

fn report(index: usize, o: &Observed, s: &Settings) -> Result<Report, Error> {
    let verdict = |verdict| Report {
        verdict,
        drifts: Vec::new(),
    };
    let (desired, live) = match (&o.desired, &o.live) {
        (None, None) => return Ok(verdict(Verdict::InSync)),
        (None, Some(_)) => return Ok(verdict(Verdict::Extraneous)),
        (Some(_), None) => return Ok(verdict(Verdict::Missing)),
        (Some(d), Some(l)) => (parse(index, "desired", d)?, parse(index, "live", l)?),
    };
    let mut drifts = Vec::new();
    compare(
        "",
        &desired,
        Some(&live),
        &o.owners,
        &s.manager,
        &mut drifts,
    );
    if autoscaled(&live, &o.owners, s) {
        drifts.retain(|d| d.path != "/spec/replicas");
    }
    Ok(Report {
        verdict: if drifts.is_empty() {
            Verdict::InSync
        } else {
            Verdict::Drifted
        },
        drifts,
    })
}

/// Whether an autoscaler drives this workload's replicas.
fn autoscaled(live: &Value, owners: &[FieldOwner], s: &Settings) -> bool {
    let text = |p: &str| live.pointer(p).and_then(Value::as_str).unwrap_or_default();
    if !s.kinds.iter().any(|k| k == text("/kind")) {
        return false;
    }
    let id = format!("{}/{}", text("/metadata/namespace"), text("/metadata/name"));
    s.targets.contains(&id)
        || owners.iter().any(|o| {
            s.managers.contains(&o.manager) && o.fields.iter().any(|f| f == "/spec/replicas")
        })
}

fn compare(
    path: &str,
    desired: &Value,
    live: Option<&Value>,
    owners: &[FieldOwner],
    manager: &str,
    drifts: &mut Vec<Drift>,
) {
    if SERVER_FIELDS
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
    {
        return;
    }
    match (desired, live) {
        (Value::Object(wanted), Some(Value::Object(have))) => {
            for (key, value) in wanted {
                let child = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
                compare(&child, value, have.get(key), owners, manager, drifts);
            }
        }
        (Value::Array(wanted), Some(Value::Array(have))) if wanted.len() == have.len() => {
            for (i, (value, item)) in wanted.iter().zip(have).enumerate() {
                compare(
                    &format!("{path}/{i}"),
                    value,
                    Some(item),
                    owners,
                    manager,
                    drifts,
                );
            }
        }
        _ if live == Some(desired) => {}
        (_, Some(_))
            if owners
                .iter()
                .any(|o| o.manager == manager && o.fields.iter().any(|f| f == path)) => {}
        _ => drifts.push(Drift {
            path: path.to_owned(),
            desired: Some(desired.to_string()),
            live: live.map(Value::to_string),
            owner: owners
                .iter()
                .flat_map(|o| o.fields.iter().map(move |f| (f, &o.manager)))
                .filter(|(f, _)| path == f.as_str() || path.starts_with(&format!("{f}/")))
                .max_by_key(|(f, _)| f.len())
                .map(|(_, m)| m.clone()),
        }),
    }
}
