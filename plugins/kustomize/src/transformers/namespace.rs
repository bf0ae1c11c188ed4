//! `namespace:` — set `metadata.namespace` of namespaced objects, the namespace field specs, and
//! RoleBinding subjects as kustomize's `defaultOnly` mode does.

use crate::error::Result;
use crate::fieldspec::{FieldSpec, visit};
use crate::resource::ResMap;
use serde_json::Value;

pub fn apply(resources: &mut ResMap, namespace: &str, specs: &[FieldSpec]) -> Result<()> {
    if namespace.is_empty() {
        return Ok(());
    }
    for index in 0..resources.resources.len() {
        let resource = &mut resources.resources[index];
        resource.store_previous_id();
        let id = resource.cur_id();
        if !id.is_cluster_scoped() {
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
            set_default_subjects(&mut resource.object, namespace);
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
                    *value = Value::String(namespace.to_owned());
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

/// Subjects named `default` get the namespace (kustomize's `setRoleBindingSubjects: defaultOnly`).
fn set_default_subjects(object: &mut serde_json::Map<String, Value>, namespace: &str) {
    let Some(Value::Array(subjects)) = object.get_mut("subjects") else {
        return;
    };
    for subject in subjects {
        if let Value::Object(subject) = subject
            && subject.get("name").and_then(Value::as_str) == Some("default")
        {
            subject.insert("namespace".into(), Value::String(namespace.to_owned()));
        }
    }
}
