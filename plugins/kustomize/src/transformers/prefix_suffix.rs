//! `namePrefix:` / `nameSuffix:` — rename objects (except CRDs, APIServices and Namespaces, whose names
//! are not theirs to choose) and remember the change for name references.

use crate::error::Result;
use crate::fieldspec::{FieldSpec, visit};
use crate::resource::{ResId, ResMap};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affix {
    Prefix,
    Suffix,
}

fn skipped(id: &ResId) -> bool {
    id.kind == "CustomResourceDefinition"
        || id.kind == "Namespace"
        || (id.group == "apiregistration.k8s.io" && id.kind == "APIService")
}

pub fn apply(resources: &mut ResMap, affix: Affix, text: &str, specs: &[FieldSpec]) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    for resource in &mut resources.resources {
        let id = resource.org_id.clone();
        if skipped(&id) {
            continue;
        }
        for spec in specs {
            if !spec.selects(&id) {
                continue;
            }
            if spec.path == "metadata/name" {
                match affix {
                    Affix::Prefix => resource.prefixes.push(text.to_owned()),
                    Affix::Suffix => resource.suffixes.push(text.to_owned()),
                }
                resource.store_previous_id();
            }
            let mut node = Value::Object(std::mem::take(&mut resource.object));
            let result = visit(
                &mut node,
                &spec.segments(),
                spec.create,
                &|| Value::String(String::new()),
                &mut |value| {
                    if let Value::String(s) = value {
                        *s = match affix {
                            Affix::Prefix => format!("{text}{s}"),
                            Affix::Suffix => format!("{s}{text}"),
                        };
                    }
                    Ok(())
                },
            );
            if let Value::Object(map) = node {
                resource.object = map;
            }
            result?;
        }
    }
    Ok(())
}
