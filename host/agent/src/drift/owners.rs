//! Field ownership as detectors see it: `metadata.managedFields` (the API server's `FieldsV1` trees)
//! turned into JSON pointers into the live object, one list per field manager.
//!
//! `FieldsV1` names map keys `f:<name>`, list items by key `k:{"name":"web"}`, by value `v:<json>` or
//! by index `i:<n>`; a JSON pointer addresses list items by index, so keyed items are looked up in
//! the live object. An item the live object no longer has is left out.

use serde_json::{Map, Value};
use tether_plugin_host::FieldOwner;

/// The owners of the live object's fields, from its `metadata.managedFields`.
pub fn field_owners(live: &Value) -> Vec<FieldOwner> {
    let Some(entries) = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let manager = entry.get("manager")?.as_str()?.to_owned();
            let operation = entry
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let mut fields = Vec::new();
            // Fields set through a subresource (`/scale`, `/status`) are fields of the main object.
            if let Some(Value::Object(tree)) = entry.get("fieldsV1") {
                walk("", tree, Some(live), &mut fields);
            }
            Some(FieldOwner {
                manager,
                operation,
                fields,
            })
        })
        .collect()
}

fn walk(path: &str, tree: &Map<String, Value>, live: Option<&Value>, out: &mut Vec<String>) {
    for (key, child) in tree {
        if key == "." {
            // The node itself is owned (it exists because of this manager).
            if !path.is_empty() {
                out.push(path.to_owned());
            }
            continue;
        }
        let (segment, value) = if let Some(name) = key.strip_prefix("f:") {
            (Some(escape(name)), live.and_then(|l| l.get(name)))
        } else if let Some(index) = key.strip_prefix("i:") {
            let value = index
                .parse::<usize>()
                .ok()
                .and_then(|i| live.and_then(|l| l.get(i)));
            (Some(index.to_owned()), value)
        } else if let Some(json) = key.strip_prefix("k:") {
            item_where(live, json, |item, wanted: &Value| {
                wanted
                    .as_object()
                    .is_some_and(|w| w.iter().all(|(k, v)| item.get(k) == Some(v)))
            })
        } else if let Some(json) = key.strip_prefix("v:") {
            item_where(live, json, |item, wanted| item == wanted)
        } else {
            (None, None)
        };
        let Some(segment) = segment else { continue };
        let child_path = format!("{path}/{segment}");
        match child {
            Value::Object(grand) if !grand.is_empty() => walk(&child_path, grand, value, out),
            _ => out.push(child_path),
        }
    }
}

/// The index of the first item of the live list that `matches` the decoded `json`.
fn item_where<'a>(
    live: Option<&'a Value>,
    json: &str,
    matches: impl Fn(&Value, &Value) -> bool,
) -> (Option<String>, Option<&'a Value>) {
    let Ok(wanted) = serde_json::from_str::<Value>(json) else {
        return (None, None);
    };
    live.and_then(Value::as_array)
        .and_then(|items| items.iter().enumerate().find(|(_, i)| matches(i, &wanted)))
        .map_or((None, None), |(i, item)| (Some(i.to_string()), Some(item)))
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keyed_list_items_become_indexes_of_the_live_object() {
        let live = json!({
            "metadata": {
                "labels": {"app.kubernetes.io/name": "web"},
                "managedFields": [
                    {"manager": "tether", "operation": "Apply", "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}}},
                        "f:spec": {"f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}
                        }}}}
                    }},
                    {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {
                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"gone\"}": {"f:image": {}}
                        }}}}
                    }}
                ]
            },
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "sidecar", "image": "s"}, {"name": "web", "image": "w"}
            ]}}}
        });
        let owners = field_owners(&live);
        assert_eq!(owners[0].manager, "tether");
        assert_eq!(
            owners[0].fields,
            [
                "/metadata/labels/app.kubernetes.io~1name",
                "/spec/template/spec/containers/1",
                "/spec/template/spec/containers/1/image",
                "/spec/template/spec/containers/1/name",
            ]
        );
        assert_eq!(owners[1].operation, "Update");
        assert_eq!(owners[1].fields, ["/spec/replicas"]);
    }
}
