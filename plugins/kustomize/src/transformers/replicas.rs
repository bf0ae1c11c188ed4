//! `replicas:` — set the replica count of the named workloads.

use crate::error::{Error, Result};
use crate::fieldspec::{FieldSpec, visit};
use crate::kustomization::Replica;
use crate::resource::ResMap;
use serde_json::Value;

pub fn apply(resources: &mut ResMap, replica: &Replica, specs: &[FieldSpec]) -> Result<()> {
    let mut found = false;
    for spec in specs {
        for resource in &mut resources.resources {
            let matches = resource.had_name(&replica.name)
                && resource
                    .any_ids()
                    .iter()
                    .any(|id| id.name == replica.name && spec.selects(id));
            if !matches {
                continue;
            }
            found = true;
            let mut node = Value::Object(std::mem::take(&mut resource.object));
            let result = visit(
                &mut node,
                &spec.segments(),
                spec.create,
                &|| Value::Null,
                &mut |value| {
                    *value = Value::from(replica.count);
                    Ok(())
                },
            );
            if let Value::Object(map) = node {
                resource.object = map;
            }
            result?;
        }
    }
    if !found {
        let kinds: Vec<&str> = specs.iter().map(|s| s.kind.as_ref()).collect();
        return Err(Error::input(format!(
            "replicas: resource with name {} does not match a config with the following GVK {kinds:?}",
            replica.name
        )));
    }
    Ok(())
}
