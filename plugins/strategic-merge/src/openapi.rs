//! Reading merge metadata out of OpenAPI documents: a Swagger 2.0 document with `definitions` (what
//! `/openapi/v2` serves and what a kustomization's `openapi:` file holds) or a
//! CustomResourceDefinition (its versions' `openAPIV3Schema`). Only the parts merging needs are
//! kept; everything else in the document is ignored, never rejected.

use serde_json::Value;

use crate::error::SchemaError;
use crate::schema::{KindEntry, ListShape, ObjectShape, Schema, Shape};

const DEFINITION_PREFIX: &str = "#/definitions/";

impl Schema {
    /// This schema plus the definitions of `document` (a Swagger 2.0 document or a
    /// CustomResourceDefinition); a definition or kind it names replaces this schema's. To use a
    /// document *instead of* the built-in types (what kustomize's `openapi:` field does), start
    /// from `Schema::default()`.
    pub fn with_openapi(&self, document: &Value) -> Result<Schema, SchemaError> {
        let mut schema = self.clone();
        if document.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
            add_crd(&mut schema, document)?;
            return Ok(schema);
        }
        let definitions = document
            .get("definitions")
            .and_then(Value::as_object)
            .ok_or(SchemaError::NoDefinitions)?;
        for (name, definition) in definitions {
            let pointer = format!("/definitions/{}", escape(name));
            schema
                .definitions
                .insert(name.clone(), shape_of(definition, &pointer)?);
            for (api_version, kind) in group_version_kinds(definition) {
                let namespaced = schema
                    .kinds
                    .get(&(api_version.clone(), kind.clone()))
                    .and_then(|entry| entry.namespaced);
                schema.kinds.insert(
                    (api_version, kind),
                    KindEntry {
                        definition: name.clone(),
                        namespaced,
                    },
                );
            }
        }
        Ok(schema)
    }
}

/// `apiVersion`/`kind` pairs from `x-kubernetes-group-version-kind`.
pub(crate) fn group_version_kinds(definition: &Value) -> Vec<(String, String)> {
    let Some(list) = definition
        .get("x-kubernetes-group-version-kind")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|gvk| {
            let text = |key| gvk.get(key).and_then(Value::as_str);
            let (group, version, kind) = (text("group")?, text("version")?, text("kind")?);
            Some((api_version(group, version), kind.to_owned()))
        })
        .collect()
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

fn add_crd(schema: &mut Schema, crd: &Value) -> Result<(), SchemaError> {
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
    let kind = spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or(SchemaError::NoDefinitions)?;
    for (index, version) in versions.iter().enumerate() {
        let Some(name) = version.get("name").and_then(Value::as_str) else {
            continue;
        };
        let api_version = api_version(group, name);
        let definition = format!("{api_version}/{kind}");
        if let Some(root) = version.pointer("/schema/openAPIV3Schema") {
            let pointer = format!("/spec/versions/{index}/schema/openAPIV3Schema");
            schema
                .definitions
                .insert(definition.clone(), shape_of(root, &pointer)?);
        }
        schema.kinds.insert(
            (api_version, kind.to_owned()),
            KindEntry {
                definition,
                namespaced: Some(namespaced),
            },
        );
    }
    Ok(())
}

/// The shape of one OpenAPI schema object; `pointer` locates it for error messages.
pub(crate) fn shape_of(node: &Value, pointer: &str) -> Result<Shape, SchemaError> {
    if let Some(reference) = reference_of(node) {
        return Ok(Shape::Named(reference.to_owned()));
    }
    let is_array =
        node.get("type").and_then(Value::as_str) == Some("array") || node.get("items").is_some();
    if is_array {
        let text = |key: &str| -> Result<Option<String>, SchemaError> {
            match node.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(SchemaError::InvalidExtension {
                    pointer: format!("{pointer}/{key}"),
                    reason: "expected a string".to_owned(),
                }),
            }
        };
        let map_keys = match node.get("x-kubernetes-list-map-keys") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(keys)) => keys
                .iter()
                .map(|k| k.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| SchemaError::InvalidExtension {
                    pointer: format!("{pointer}/x-kubernetes-list-map-keys"),
                    reason: "expected a list of strings".to_owned(),
                })?,
            Some(_) => {
                return Err(SchemaError::InvalidExtension {
                    pointer: format!("{pointer}/x-kubernetes-list-map-keys"),
                    reason: "expected a list of strings".to_owned(),
                });
            }
        };
        let items = match node.get("items") {
            Some(items) if items.is_object() => {
                Some(Box::new(shape_of(items, &format!("{pointer}/items"))?))
            }
            _ => None,
        };
        return Ok(Shape::List(ListShape {
            strategy: text("x-kubernetes-patch-strategy")?,
            merge_key: text("x-kubernetes-patch-merge-key")?,
            list_type: text("x-kubernetes-list-type")?,
            map_keys,
            items,
        }));
    }
    let mut object = ObjectShape::default();
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let at = format!("{pointer}/properties/{}", escape(name));
            object.fields.insert(name.clone(), shape_of(property, &at)?);
        }
    }
    if let Some(additional) = node.get("additionalProperties")
        && additional.is_object()
    {
        let at = format!("{pointer}/additionalProperties");
        object.additional = Some(Box::new(shape_of(additional, &at)?));
    }
    Ok(Shape::Object(object))
}

/// The definition a schema object refers to: `$ref`, or the single `$ref` of an `allOf` (how
/// OpenAPI v3 documents attach a description to a reference).
fn reference_of(node: &Value) -> Option<&str> {
    let reference = node.get("$ref").or_else(|| {
        let all_of = node.get("allOf")?.as_array()?;
        match all_of.as_slice() {
            [only] => only.get("$ref"),
            _ => None,
        }
    })?;
    let reference = reference.as_str()?;
    Some(
        reference
            .strip_prefix(DEFINITION_PREFIX)
            .or_else(|| reference.strip_prefix("#/components/schemas/"))
            .unwrap_or(reference),
    )
}

/// `name` as one JSON pointer token.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn swagger_definitions_add_kinds_and_list_metadata() {
        let document = json!({"definitions": {
            "com.example.v1.Widget": {
                "x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "Widget"}],
                "properties": {"spec": {"$ref": "#/definitions/com.example.v1.WidgetSpec"}}
            },
            "com.example.v1.WidgetSpec": {"properties": {"parts": {
                "type": "array",
                "items": {"type": "object"},
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "id"
            }}}
        }});
        let schema = Schema::default().with_openapi(&document).unwrap();
        let root = schema.shape_of_kind("example.com/v1", "Widget");
        let parts = schema.field(schema.field(root, "spec"), "parts");
        let Some(Shape::List(list)) = parts else {
            panic!("parts is not a list: {parts:?}")
        };
        assert!(list.merges());
        assert_eq!(list.keys(), vec!["id"]);
        // Only discovery knows scopes.
        assert_eq!(schema.is_namespaced("example.com/v1", "Widget"), None);
    }

    #[test]
    fn crd_versions_become_kinds_with_their_scope() {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "spec": {
                "group": "example.com",
                "names": {"kind": "Gadget"},
                "scope": "Cluster",
                "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "properties": {"tags": {
                        "type": "array", "items": {"type": "string"},
                        "x-kubernetes-patch-strategy": "merge"
                    }}}}
                }}}]
            }
        });
        let schema = Schema::default().with_openapi(&crd).unwrap();
        assert_eq!(
            schema.is_namespaced("example.com/v1", "Gadget"),
            Some(false)
        );
        let root = schema.shape_of_kind("example.com/v1", "Gadget");
        let tags = schema.field(schema.field(root, "spec"), "tags");
        assert!(matches!(tags, Some(Shape::List(list)) if list.merges()));
    }

    #[test]
    fn a_malformed_extension_names_its_place() {
        let document = json!({"definitions": {"a.B": {"properties": {"xs": {
            "type": "array", "x-kubernetes-patch-merge-key": 3
        }}}}});
        let error = Schema::default().with_openapi(&document).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/definitions/a.B/properties/xs/x-kubernetes-patch-merge-key: expected a string"
        );
    }

    #[test]
    fn a_document_without_definitions_is_refused() {
        assert_eq!(
            Schema::default().with_openapi(&json!({"swagger": "2.0"})),
            Err(SchemaError::NoDefinitions)
        );
    }
}
