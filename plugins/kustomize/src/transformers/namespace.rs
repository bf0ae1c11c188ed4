//! `namespace:` — set `metadata.namespace` of namespaced objects, the namespace field specs, and
//! RoleBinding subjects as kustomize's `defaultOnly` mode does.

use crate::error::Result;
use crate::fieldspec::{FieldSpec, visit};
use crate::resource::ResMap;
use serde_json::Value;

/// Which RoleBinding subjects get the namespace (kustomize's `setRoleBindingSubjects`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subjects {
    /// Subjects named `default` (kustomize's `defaultOnly`, its default).
    #[default]
    DefaultOnly,
    None,
    AllServiceAccounts,
}

/// The NamespaceTransformer's options; a kustomization's `namespace:` uses the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Only fill namespaces that are empty (kustomize's `unsetOnly`).
    pub unset_only: bool,
    pub subjects: Subjects,
}

pub fn apply(resources: &mut ResMap, namespace: &str, specs: &[FieldSpec]) -> Result<()> {
    apply_with(resources, namespace, specs, Options::default())
}

pub fn apply_with(
    resources: &mut ResMap,
    namespace: &str,
    specs: &[FieldSpec],
    options: Options,
) -> Result<()> {
    if namespace.is_empty() {
        return Ok(());
    }
    for index in 0..resources.resources.len() {
        let resource = &mut resources.resources[index];
        resource.store_previous_id();
        let id = resource.cur_id();
        let keep_existing = options.unset_only && !resource.namespace().is_empty();
        if !id.is_cluster_scoped() && !keep_existing {
            resource.set_namespace(namespace);
        }
        let api_version = resource
            .object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let is_binding = matches!(id.kind.as_str(), "RoleBinding" | "ClusterRoleBinding");
        if is_binding {
            set_subjects(&mut resource.object, namespace, options);
        }
        for spec in specs {
            if spec.path == "metadata/namespace"
                || (spec.path == "metadata/name" && api_version != "v1")
            {
                continue;
            }
            if is_binding && spec.path.starts_with("subjects") {
                continue;
            }
            if !spec.selects(&id) {
                continue;
            }
            let mut node = Value::Object(std::mem::take(&mut resource.object));
            let result = visit(
                &mut node,
                &spec.segments(),
                spec.create,
                &|| Value::String(String::new()),
                &mut |value| {
                    let unset = value.as_str().is_none_or(str::is_empty);
                    if unset || !options.unset_only {
                        *value = Value::String(namespace.to_owned());
                    }
                    Ok(())
                },
            );
            resource.object = match node {
                Value::Object(map) => map,
                _ => unreachable!("an object stays an object"),
            };
            result?;
        }
    }
    // Namespaces may have merged two objects into one id; kustomize checks after each object, the
    // first clash in map order is the same one.
    let mut seen = std::collections::HashSet::new();
    for resource in &resources.resources {
        let id = resource.id_ref();
        if !seen.insert((
            id.group,
            id.version,
            id.kind,
            id.name,
            id.effective_namespace(),
        )) {
            return Err(resource.error(format!(
                "namespace transformation produces ID conflict: {}",
                resource.cur_id()
            )));
        }
    }
    Ok(())
}

/// Set the namespace of the subjects the mode picks.
fn set_subjects(object: &mut serde_json::Map<String, Value>, namespace: &str, options: Options) {
    let Some(Value::Array(subjects)) = object.get_mut("subjects") else {
        return;
    };
    for subject in subjects {
        let Value::Object(subject) = subject else {
            continue;
        };
        let picked = match options.subjects {
            Subjects::None => false,
            Subjects::DefaultOnly => subject.get("name").and_then(Value::as_str) == Some("default"),
            Subjects::AllServiceAccounts => {
                subject.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
            }
        };
        let unset = subject
            .get("namespace")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if picked && (unset || !options.unset_only) {
            subject.insert("namespace".into(), Value::String(namespace.to_owned()));
        }
    }
}
