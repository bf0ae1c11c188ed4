//! From rendered template files to the objects `helm template` prints: documents split at `---`,
//! empty ones dropped, hooks (`helm.sh/hook`) told apart from plain manifests, and both sorted in
//! helm's install order (by kind, stable in file-path order).

use crate::error::ChartError;
use serde::Deserialize;
use serde_json::Value;

/// One object of the output and the template file it came from (helm's `# Source:`).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: String,
    pub object: Value,
    pub kind: String,
    pub hook: Option<Vec<String>>,
}

/// The hook events helm knows; a manifest with any other is dropped, as helm does.
const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

/// helm's `InstallOrder`: kinds not listed sort after these, alphabetically.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The objects of a YAML stream (a rendered file or a CRD file), `origin` naming it in errors.
pub fn documents(text: &str, origin: &str) -> Result<Vec<Value>, ChartError> {
    let mut out = Vec::new();
    let mut start = 1;
    let mut current = String::new();
    let mut flush = |start: usize, current: &str| -> Result<(), ChartError> {
        if current.trim().is_empty() {
            return Ok(());
        }
        let value =
            Value::deserialize(serde_yaml::Deserializer::from_str(current)).map_err(|e| {
                let mut error = ChartError::yaml(origin, &e);
                error.message =
                    format!("YAML parse error in the rendered output: {}", error.message);
                error.line = error.line.map(|l| l + start - 1);
                error
            })?;
        match value {
            Value::Null => {}
            Value::Object(_) => out.push(value),
            _ => {
                return Err(ChartError::at_line(
                    origin,
                    start,
                    "the rendered output is not a Kubernetes object (a mapping)",
                ));
            }
        }
        Ok(())
    };
    for (index, line) in text.lines().enumerate() {
        if is_separator(line) {
            flush(start, &current)?;
            current.clear();
            start = index + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(start, &current)?;
    Ok(out)
}

fn is_separator(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.trim().is_empty() || rest.starts_with([' ', '\t', '#']))
}

/// The manifests of the rendered files (`(name, content)`, in any order): plain ones and hooks, each
/// sorted like helm sorts them.
pub fn sort(files: Vec<(String, String)>) -> Result<(Vec<Manifest>, Vec<Manifest>), ChartError> {
    let mut files = files;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut generic = Vec::new();
    let mut hooks = Vec::new();
    for (name, content) in files {
        let base = name.rsplit('/').next().unwrap_or(&name);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for object in documents(&content, &name)? {
            let kind = object
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let hook = object
                .pointer("/metadata/annotations/helm.sh~1hook")
                .map(|h| h.as_str().map_or_else(|| h.to_string(), str::to_owned));
            let manifest = Manifest {
                source: name.clone(),
                object,
                kind,
                hook: None,
            };
            match hook {
                None => generic.push(manifest),
                Some(events) => {
                    let events: Vec<String> =
                        events.split(',').map(|e| e.trim().to_lowercase()).collect();
                    if events.iter().all(|e| HOOK_EVENTS.contains(&e.as_str())) {
                        hooks.push(Manifest {
                            hook: Some(events),
                            ..manifest
                        });
                    }
                }
            }
        }
    }
    generic.sort_by(|a, b| by_kind(&a.kind, &b.kind));
    hooks.sort_by(|a, b| by_kind(&a.kind, &b.kind));
    Ok((generic, hooks))
}

/// helm's `lessByKind` as an ordering (the sorts above are stable, as `sort.SliceStable`).
fn by_kind(a: &str, b: &str) -> std::cmp::Ordering {
    let rank = |kind: &str| INSTALL_ORDER.iter().position(|k| *k == kind);
    match (rank(a), rank(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The objects to apply for one printed document: a `kind: List` is its items (kubectl applies them
/// one by one; the agent takes objects), anything else itself.
pub fn expand_lists(object: &Value, out: &mut Vec<Value>) {
    match object.get("items") {
        Some(Value::Array(items)) if object.get("kind").and_then(Value::as_str) == Some("List") => {
            for item in items {
                expand_lists(item, out);
            }
        }
        _ => out.push(object.clone()),
    }
}

/// Whether a hook is one of the chart's tests (`--skip-tests` drops them).
pub fn is_test_hook(manifest: &Manifest) -> bool {
    manifest
        .hook
        .as_ref()
        .is_some_and(|events| events.iter().any(|e| e == "test" || e == "test-success"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_drops_empty_and_sorts_by_kind() {
        let files = vec![
            (
                "c/templates/b.yaml".to_owned(),
                "# just a comment\n---\nkind: Deployment\nmetadata: {name: d}\n---\n\n".to_owned(),
            ),
            (
                "c/templates/a.yaml".to_owned(),
                "kind: Foo\nmetadata: {name: f}\n---\nkind: Service\nmetadata: {name: s}\n"
                    .to_owned(),
            ),
            (
                "c/templates/hook.yaml".to_owned(),
                "kind: Job\nmetadata:\n  name: j\n  annotations: {helm.sh/hook: test}\n".to_owned(),
            ),
            (
                "c/templates/unknown-hook.yaml".to_owned(),
                "kind: Job\nmetadata:\n  name: u\n  annotations: {helm.sh/hook: sometime}\n"
                    .to_owned(),
            ),
            (
                "c/templates/_helpers.tpl".to_owned(),
                "kind: X\n".to_owned(),
            ),
        ];
        let (generic, hooks) = sort(files).unwrap();
        let kinds: Vec<_> = generic.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["Service", "Deployment", "Foo"]);
        assert_eq!(hooks.len(), 1);
        assert!(is_test_hook(&hooks[0]));
    }

    #[test]
    fn yaml_errors_name_the_rendered_file() {
        let error = sort(vec![(
            "c/templates/x.yaml".into(),
            "a: 1\n---\nb: [\n".into(),
        )])
        .unwrap_err();
        assert_eq!(error.file, "c/templates/x.yaml");
        assert!(error.line.unwrap() >= 3);
    }
}
