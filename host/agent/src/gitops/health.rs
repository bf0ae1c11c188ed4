//! When is an applied object done: the rules `kubectl rollout status` and cli-utils' kstatus
//! use for the common kinds, and a `Ready` condition for everything else that has one.

use kube::api::DynamicObject;
use serde_json::Value;

/// What an object's status says right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    Healthy,
    Progressing(String),
    Failed(String),
}

pub(crate) fn health(group: &str, kind: &str, object: &DynamicObject) -> Health {
    let data = &object.data;
    let generation = object.metadata.generation.unwrap_or(0);
    let status = &data["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    match (group, kind) {
        ("apps", "Deployment") => {
            let wanted = data["spec"]["replicas"].as_i64().unwrap_or(1);
            if observed < generation {
                return Health::Progressing("the controller has not seen the newest spec".into());
            }
            if condition(status, "Progressing") == Some(("False", "ProgressDeadlineExceeded")) {
                return Health::Failed("progress deadline exceeded".into());
            }
            let (updated, available) = (
                int(&status["updatedReplicas"]),
                int(&status["availableReplicas"]),
            );
            if updated == wanted && available == wanted && int(&status["replicas"]) == wanted {
                Health::Healthy
            } else {
                Health::Progressing(format!(
                    "{available} of {wanted} replicas available, {updated} updated"
                ))
            }
        }
        ("apps", "StatefulSet") => {
            let wanted = data["spec"]["replicas"].as_i64().unwrap_or(1);
            let ready = int(&status["readyReplicas"]);
            if observed >= generation && ready == wanted {
                Health::Healthy
            } else {
                Health::Progressing(format!("{ready} of {wanted} replicas ready"))
            }
        }
        ("apps", "DaemonSet") => {
            let wanted = int(&status["desiredNumberScheduled"]);
            let available = int(&status["numberAvailable"]);
            if observed >= generation && available == wanted {
                Health::Healthy
            } else {
                Health::Progressing(format!("{available} of {wanted} pods available"))
            }
        }
        ("batch", "Job") => {
            if condition(status, "Complete").is_some_and(|(s, _)| s == "True") {
                Health::Healthy
            } else if condition(status, "Failed").is_some_and(|(s, _)| s == "True") {
                Health::Failed("the job failed".into())
            } else {
                Health::Progressing("the job has not completed".into())
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            if condition(status, "Established").is_some_and(|(s, _)| s == "True") {
                Health::Healthy
            } else {
                Health::Progressing("not established yet".into())
            }
        }
        _ => match condition(status, "Ready") {
            Some(("True", _)) | None => Health::Healthy,
            Some((_, reason)) => Health::Progressing(format!("Ready is not True ({reason})")),
        },
    }
}

/// A condition's status and reason.
fn condition<'a>(status: &'a Value, kind: &str) -> Option<(&'a str, &'a str)> {
    status["conditions"].as_array()?.iter().find_map(|c| {
        (c["type"] == kind).then(|| {
            (
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or(""),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn deployments_are_healthy_when_every_replica_is_updated_and_available() {
        let progressing = obj(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}
        }));
        assert!(matches!(
            health("apps", "Deployment", &progressing),
            Health::Progressing(_)
        ));
        let stale = obj(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "generation": 3},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
        }));
        assert!(matches!(
            health("apps", "Deployment", &stale),
            Health::Progressing(_)
        ));
        let done = obj(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
        }));
        assert_eq!(health("apps", "Deployment", &done), Health::Healthy);
    }

    #[test]
    fn jobs_fail_or_complete_and_other_kinds_follow_ready() {
        let failed = obj(json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "status": {"conditions": [{"type": "Failed", "status": "True"}]}
        }));
        assert!(matches!(health("batch", "Job", &failed), Health::Failed(_)));
        let plain =
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
        assert_eq!(health("", "ConfigMap", &plain), Health::Healthy);
        let not_ready = obj(json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Waiting"}]}
        }));
        assert_eq!(
            health("example.com", "Widget", &not_ready),
            Health::Progressing("Ready is not True (Waiting)".into())
        );
    }
}
