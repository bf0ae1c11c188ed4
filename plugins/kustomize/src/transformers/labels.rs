//! `labels:`, `commonLabels:`, `commonAnnotations:` and the LabelTransformer / AnnotationsTransformer
//! configs of `transformers:` — merge string pairs into the maps the field specs name.

use crate::error::Result;
use crate::fieldspec::{FieldSpec, visit};
use crate::kustomization::StringMap;
use crate::resource::ResMap;
use serde_json::{Map, Value};

/// Set `pairs` in the map at every field spec that selects an object.
pub fn apply(resources: &mut ResMap, pairs: &StringMap, specs: &[FieldSpec]) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    for resource in &mut resources.resources {
        let id = resource.cur_id();
        let mut node = Value::Object(std::mem::take(&mut resource.object));
        let mut result = Ok(());
        for spec in specs.iter().filter(|s| s.selects(&id)) {
            result = visit(
                &mut node,
                &spec.segments(),
                spec.create,
                &|| Value::Object(Map::new()),
                &mut |value| {
                    if value.is_null() {
                        *value = Value::Object(Map::new());
                    }
                    if let Value::Object(map) = value {
                        for (k, v) in pairs {
                            map.insert(k.clone(), Value::String(v.clone()));
                        }
                    }
                    Ok(())
                },
            );
            if result.is_err() {
                break;
            }
        }
        if let Value::Object(map) = node {
            resource.object = map;
        }
        result?;
    }
    Ok(())
}

/// Field specs of one `labels:` entry, as kustomize's LabelTransformer configurator assembles them.
pub fn label_specs(
    label: &crate::kustomization::Label,
    config: &crate::fieldspec::TransformerConfig,
) -> Vec<FieldSpec> {
    let mut specs: Vec<FieldSpec> = label.fields.iter().cloned().map(FieldSpec::from).collect();
    let mut add = |more: &[FieldSpec]| {
        for spec in more {
            if !specs.contains(spec) {
                specs.push(spec.clone());
            }
        }
    };
    add(&config.labels);
    if label.include_selectors {
        add(&config.common_labels);
    } else {
        if label.include_templates {
            add(&config.template_labels);
        }
        add(&[crate::fieldspec::fs("metadata/labels", "", "", "", true)]);
    }
    specs
}
