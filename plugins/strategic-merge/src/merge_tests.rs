//! `strategic_merge` on Kubernetes objects: every directive and list strategy, with expectations
//! taken from `kustomize build` v5.8.1 (the differential suite checks the same kind of cases
//! against the binary).

use serde_json::{Value, json};

use crate::{MergeError, Schema, strategic_merge};

fn deployment(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec})
}

fn merge(base: Value, patch: Value) -> Value {
    strategic_merge(&base, &patch, Schema::kubernetes()).expect("the patch applies")
}

fn pod_spec(containers: Value) -> Value {
    deployment(json!({"template": {"spec": {"containers": containers}}}))
}

fn containers_of(object: &Value) -> &Value {
    &object["spec"]["template"]["spec"]["containers"]
}

#[test]
fn maps_merge_recursively_and_null_deletes() {
    let base = deployment(json!({"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}));
    let patch = deployment(json!({"replicas": null, "selector": {"matchLabels": {"tier": "1"}}}));
    let merged = merge(base, patch);
    assert_eq!(
        merged["spec"],
        json!({"selector": {"matchLabels": {"app": "web", "tier": "1"}}})
    );
}

#[test]
fn null_for_a_field_the_base_lacks_adds_nothing() {
    let merged = merge(deployment(json!({})), deployment(json!({"paused": null})));
    assert_eq!(merged["spec"], json!({}));
}

#[test]
fn an_explicit_null_in_the_base_stays() {
    let merged = merge(
        deployment(json!({"paused": null})),
        deployment(json!({"replicas": 1})),
    );
    assert_eq!(merged["spec"], json!({"paused": null, "replicas": 1}));
}

#[test]
fn merge_key_lists_put_the_patch_elements_first() {
    let base = pod_spec(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
    let patch = pod_spec(json!([{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]));
    assert_eq!(
        containers_of(&merge(base, patch)),
        &json!([
            {"name": "b", "image": "b:2"},
            {"name": "c", "image": "c:1"},
            {"name": "a", "image": "a:1"}
        ])
    );
}

#[test]
fn elements_merge_recursively_with_their_own_lists() {
    let base = pod_spec(json!([{"name": "a", "env": [{"name": "X", "value": "1"}]}]));
    let patch = pod_spec(json!([{"name": "a", "env": [{"name": "Y", "value": "2"}]}]));
    assert_eq!(
        containers_of(&merge(base, patch)),
        &json!([{"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]}])
    );
}

#[test]
fn lists_without_a_merge_strategy_are_replaced() {
    let base = pod_spec(json!([{"name": "a", "args": ["x", "y"]}]));
    let patch = pod_spec(json!([{"name": "a", "args": ["z"]}]));
    assert_eq!(containers_of(&merge(base, patch))[0]["args"], json!(["z"]));
}

#[test]
fn scalar_lists_with_a_merge_strategy_are_unions_patch_first() {
    let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a", "b"]}});
    let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["c", "a"]}});
    assert_eq!(
        merge(base, patch)["metadata"]["finalizers"],
        json!(["c", "a", "b"])
    );
}

#[test]
fn lists_of_unknown_kinds_are_replaced() {
    let widget = |items: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"items": items}});
    let merged = merge(
        widget(json!([{"name": "a"}, {"name": "b"}])),
        widget(json!([{"name": "c"}])),
    );
    assert_eq!(merged["spec"]["items"], json!([{"name": "c"}]));
}

#[test]
fn ports_match_on_both_keys_and_new_ones_come_first() {
    let base = pod_spec(json!([{"name": "a", "ports": [
        {"containerPort": 80, "protocol": "TCP", "name": "http"},
        {"containerPort": 80, "protocol": "UDP", "name": "dns"}
    ]}]));
    let patch = pod_spec(json!([{"name": "a", "ports": [
        {"containerPort": 80, "protocol": "UDP", "name": "dns2"},
        {"containerPort": 8080}
    ]}]));
    assert_eq!(
        containers_of(&merge(base, patch))[0]["ports"],
        json!([
            {"containerPort": 8080},
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
            {"containerPort": 80, "protocol": "UDP", "name": "dns2"}
        ])
    );
}

#[test]
fn patch_delete_on_an_element_removes_it_and_keeps_the_list() {
    let base =
        deployment(json!({"template": {"spec": {"volumes": [{"name": "v1", "emptyDir": {}}]}}}));
    let patch = deployment(
        json!({"template": {"spec": {"volumes": [{"name": "v1", "$patch": "delete"}]}}}),
    );
    assert_eq!(
        merge(base, patch)["spec"]["template"]["spec"]["volumes"],
        json!([])
    );
}

#[test]
fn patch_replace_on_an_element_keeps_the_base_element() {
    // kyaml puts the base's element back over the replacing one.
    let base = pod_spec(json!([{"name": "a", "image": "a:1", "args": ["x"]}]));
    let patch = pod_spec(json!([{"name": "a", "image": "a:3", "$patch": "replace"}]));
    assert_eq!(
        containers_of(&merge(base, patch)),
        &json!([{"name": "a", "image": "a:1", "args": ["x"]}])
    );
}

#[test]
fn patch_replace_on_a_list_replaces_it() {
    let base = pod_spec(json!([{"name": "a", "env": [{"name": "E1", "value": "1"}]}]));
    let patch = pod_spec(
        json!([{"name": "a", "env": [{"$patch": "replace"}, {"name": "E3", "value": "3"}]}]),
    );
    assert_eq!(
        containers_of(&merge(base, patch))[0]["env"],
        json!([{"name": "E3", "value": "3"}])
    );
}

#[test]
fn patch_delete_on_a_list_removes_it() {
    let base = pod_spec(json!([{"name": "a", "env": [{"name": "E1", "value": "1"}]}]));
    let patch = pod_spec(json!([{"name": "a", "env": [{"$patch": "delete"}]}]));
    assert_eq!(containers_of(&merge(base, patch))[0], json!({"name": "a"}));
}

#[test]
fn patch_replace_on_a_map_replaces_it() {
    let base =
        deployment(json!({"template": {"spec": {"nodeSelector": {"disk": "ssd", "zone": "a"}}}}));
    let patch = deployment(
        json!({"template": {"spec": {"nodeSelector": {"$patch": "replace", "disk": "hdd"}}}}),
    );
    assert_eq!(
        merge(base, patch)["spec"]["template"]["spec"]["nodeSelector"],
        json!({"disk": "hdd"})
    );
}

#[test]
fn patch_delete_on_a_map_removes_it() {
    let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"k": "v"}}});
    let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"$patch": "delete"}}});
    assert_eq!(merge(base, patch)["metadata"], json!({"name": "c"}));
}

#[test]
fn patch_delete_at_the_top_deletes_the_object() {
    let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "$patch": "delete"});
    assert_eq!(merge(deployment(json!({})), patch), Value::Null);
}

#[test]
fn apimachinery_only_directives_stay_as_fields() {
    // kyaml knows `$patch` only; kustomize prints the others as they are.
    let base = deployment(json!({"strategy": {"type": "RollingUpdate"}}));
    let patch = deployment(json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}));
    assert_eq!(
        merge(base, patch)["spec"]["strategy"],
        json!({"$retainKeys": ["type"], "type": "Recreate"})
    );
}

#[test]
fn directives_inside_new_fields_are_applied_not_copied() {
    let base = deployment(json!({}));
    let patch = deployment(
        json!({"template": {"$patch": "replace", "spec": {"volumes": [
            {"name": "gone", "$patch": "delete"},
            {"name": "kept"}
        ]}}}),
    );
    assert_eq!(
        merge(base, patch)["spec"]["template"],
        json!({"spec": {"volumes": [{"name": "kept"}]}})
    );
}

#[test]
fn an_unknown_directive_is_an_error_naming_its_place() {
    let base = deployment(json!({"template": {}}));
    let patch = deployment(json!({"template": {"$patch": "bogus"}}));
    let error = strategic_merge(&base, &patch, Schema::kubernetes()).unwrap_err();
    assert_eq!(
        error,
        MergeError::UnknownDirective {
            path: "/spec/template/$patch".to_owned(),
            value: "bogus".to_owned()
        }
    );
}

#[test]
fn a_map_over_a_scalar_is_an_error_naming_its_place() {
    let base = deployment(json!({"replicas": 1}));
    let patch = deployment(json!({"replicas": {"n": 1}}));
    let error = strategic_merge(&base, &patch, Schema::kubernetes()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/spec/replicas: cannot merge a map into a scalar"
    );
}

#[test]
fn patch_replace_at_the_top_leaves_the_object_alone() {
    let base = deployment(json!({"replicas": 1, "paused": true}));
    let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "$patch": "replace", "spec": {"replicas": 2}});
    assert_eq!(merge(base.clone(), patch), base);
}

#[test]
fn lists_newer_than_kustomizes_schema_merge_by_their_live_keys() {
    // kustomize's embedded 1.21 schema lacks schedulingGates and would replace the list.
    let pod = |gates: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"schedulingGates": gates}});
    let merged = merge(pod(json!([{"name": "a"}])), pod(json!([{"name": "b"}])));
    assert_eq!(
        merged["spec"]["schedulingGates"],
        json!([{"name": "b"}, {"name": "a"}])
    );
}

#[test]
fn merge_keys_match_as_text_and_keep_the_base_value() {
    let service = |ports: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": ports}});
    let merged = merge(
        service(json!([{"port": 80, "protocol": "TCP", "name": "a"}])),
        service(json!([{"port": "80", "protocol": "TCP", "name": "b"}])),
    );
    assert_eq!(
        merged["spec"]["ports"],
        json!([{"port": "80", "protocol": "TCP", "name": "b"}])
    );
}

#[test]
fn with_openapi_gives_custom_resources_merge_keys() {
    let document = json!({"definitions": {"com.example.v1.Widget": {
        "x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "Widget"}],
        "properties": {"spec": {"properties": {"parts": {
            "type": "array",
            "items": {"type": "object"},
            "x-kubernetes-patch-strategy": "merge",
            "x-kubernetes-patch-merge-key": "id"
        }}}}
    }}});
    let schema = Schema::kubernetes().with_openapi(&document).unwrap();
    let widget = |parts: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"parts": parts}});
    let merged = strategic_merge(
        &widget(json!([{"id": "a", "n": 1}, {"id": "b"}])),
        &widget(json!([{"id": "a", "n": 2}])),
        &schema,
    )
    .unwrap();
    assert_eq!(
        merged["spec"]["parts"],
        json!([{"id": "a", "n": 2}, {"id": "b"}])
    );
}

#[test]
fn a_new_list_whose_empty_element_matches_nothing_loses_its_elements() {
    // kyaml merges a new list with itself; removing the unmatched `{}` removes every element with
    // a name from that one list, so nothing is left to add.
    let base = deployment(json!({"template": {"spec": {}}}));
    let patch = deployment(json!({"template": {"spec": {"initContainers": [{}, {"name": "c"}]}}}));
    assert_eq!(
        merge(base, patch)["spec"]["template"]["spec"]["initContainers"],
        json!([])
    );
}

#[test]
fn a_directive_element_in_a_new_scalar_list_is_dropped() {
    let config_map =
        |metadata: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata});
    let merged = merge(
        config_map(json!({"name": "c"})),
        config_map(json!({"name": "c", "finalizers": [{"$patch": "delete"}, "h", "g"]})),
    );
    assert_eq!(merged["metadata"]["finalizers"], json!(["h", "g"]));
}
