//! Name references: after prefixes, suffixes, namespaces and hashes changed names, fields that named an
//! object (a Deployment's ConfigMap volume, a RoleBinding's subjects, an HPA's target…) are rewritten to
//! the object's new name. The candidate is chosen with kustomize's sieve: a previous name matches, the
//! GVK matches, same namespace as the referrer, then the same prefixes and suffixes.

use crate::error::{Error, Result};
use crate::fieldspec::{FieldSpec, NameReference, TransformerConfig, visit};
use crate::resource::{ResId, ResMap, Resource};
use serde_json::Value;

pub fn fix(resources: &mut ResMap, config: &TransformerConfig) -> Result<()> {
    // Referrer fields never hold an object's own name or kind, so ids are stable during the fix-up.
    let ids: Vec<ResId> = resources.resources.iter().map(|r| r.cur_id()).collect();
    for reference in &config.name_reference {
        for spec in &reference.referrers {
            for (index, id) in ids.iter().enumerate() {
                if !spec.selects(id) {
                    continue;
                }
                fix_referrer(resources, index, reference, spec)?;
            }
        }
    }
    Ok(())
}

fn fix_referrer(
    resources: &mut ResMap,
    index: usize,
    reference: &NameReference,
    spec: &FieldSpec,
) -> Result<()> {
    let mut object = Value::Object(std::mem::take(&mut resources.resources[index].object));
    let referrer = Referrer {
        id: {
            // The object is taken out while it is edited; its id is read from the copy.
            let map = object.as_object().expect("resources are objects");
            ResId::of(map)
        },
        prefixes: resources.resources[index].prefixes.clone(),
        suffixes: resources.resources[index].suffixes.clone(),
        role_ref: object.get("roleRef").cloned(),
    };
    let candidates = &resources.resources;
    let result = visit(
        &mut object,
        &spec.segments(),
        false,
        &|| Value::Null,
        &mut |value| update(value, &referrer, candidates, reference, spec),
    );
    resources.resources[index].object = match object {
        Value::Object(map) => map,
        _ => unreachable!("an object stays an object"),
    };
    result.map_err(|e| resources.resources[index].error(e.message))
}

struct Referrer {
    id: ResId,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    role_ref: Option<Value>,
}

fn update(
    value: &mut Value,
    referrer: &Referrer,
    candidates: &[Resource],
    reference: &NameReference,
    spec: &FieldSpec,
) -> Result<()> {
    match value {
        Value::String(old) => {
            let all: Vec<&Resource> = candidates.iter().collect();
            if let Some(referral) = select(old, all, referrer, reference, spec, false)? {
                *old = referral.name().to_owned();
            }
        }
        Value::Array(items) => {
            for item in items {
                update(item, referrer, candidates, reference, spec)?;
            }
        }
        Value::Object(map) => {
            let Some(old) = map.get("name").and_then(Value::as_str).map(str::to_owned) else {
                return Err(Error::input(format!(
                    "name reference at `{}`: no 'name' field in node",
                    spec.path
                )));
            };
            // kustomize groups the candidates by effective namespace (none is `default`), first
            // as they were in the source, then as they are now: a subject `namespace: default`
            // names a ServiceAccount written without one, which then moved to the build's namespace.
            let scoped: Vec<&Resource> = match map.get("namespace").and_then(Value::as_str) {
                None => candidates.iter().collect(),
                Some(namespace) => {
                    let in_namespace = |id: &ResId| {
                        !id.is_cluster_scoped() && id.effective_namespace() == namespace
                    };
                    let original: Vec<&Resource> = candidates
                        .iter()
                        .filter(|r| in_namespace(&r.org_id))
                        .collect();
                    if original.is_empty() {
                        candidates
                            .iter()
                            .filter(|r| in_namespace(&r.cur_id()))
                            .collect()
                    } else {
                        original
                    }
                }
            };
            let Some(referral) = select(&old, scoped, referrer, reference, spec, true)? else {
                return Ok(());
            };
            if referral.name() == old && referral.namespace().is_empty() {
                return Ok(());
            }
            map.insert("name".into(), Value::String(referral.name().to_owned()));
            if !referral.namespace().is_empty() {
                map.insert(
                    "namespace".into(),
                    Value::String(referral.namespace().to_owned()),
                );
            }
        }
        _ => {}
    }
    Ok(())
}

fn select<'a>(
    old: &str,
    candidates: Vec<&'a Resource>,
    referrer: &Referrer,
    reference: &NameReference,
    spec: &FieldSpec,
    compare_namespaces: bool,
) -> Result<Option<&'a Resource>> {
    let role_ref_gvk = if spec.path.ends_with("roleRef/name") {
        referrer.role_ref.as_ref().map(|r| {
            let kind = r
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let group = r
                .get("apiGroup")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            (group, kind)
        })
    } else {
        None
    };
    let mut candidates: Vec<&Resource> = candidates
        .into_iter()
        .filter(|r| r.prev_ids.iter().any(|id| id.name == old))
        .filter(|r| {
            r.prev_ids
                .iter()
                .any(|id| id.gvk_selected(&reference.group, &reference.version, &reference.kind))
        })
        .filter(|r| match &role_ref_gvk {
            Some((group, kind)) => r.prev_ids.iter().any(|id| id.gvk_selected(group, "", kind)),
            None => true,
        })
        .filter(|r| {
            if referrer.id.is_cluster_scoped() {
                return true;
            }
            let id = r.cur_id();
            id.is_cluster_scoped()
                || r.kind() == "ServiceAccount"
                || id.effective_namespace() == referrer.id.effective_namespace()
        })
        .collect();
    if candidates.len() == 1 {
        return Ok(candidates.pop());
    }
    candidates.retain(|r| affixes_equal(r, referrer, true));
    if candidates.len() > 1 {
        candidates.retain(|r| affixes_equal(r, referrer, false));
    }
    match candidates.len() {
        0 => Ok(None),
        1 => Ok(candidates.pop()),
        _ => {
            let first = candidates[0];
            let identical = candidates.iter().all(|r| {
                r.name() == first.name()
                    && (!compare_namespaces || r.namespace() == first.namespace())
            });
            if identical {
                Ok(Some(first))
            } else {
                let ids: Vec<String> = candidates.iter().map(|r| r.cur_id().to_string()).collect();
                Err(Error::input(format!(
                    "found multiple possible referrals for `{old}` at `{}`: {}",
                    spec.path,
                    ids.join(", ")
                )))
            }
        }
    }
}

fn affixes_equal(candidate: &Resource, referrer: &Referrer, allow_empty: bool) -> bool {
    if allow_empty {
        let prefix_ok = candidate.prefixes.is_empty()
            || referrer.prefixes.is_empty()
            || same_ending(&candidate.prefixes, &referrer.prefixes);
        let suffix_ok = candidate.suffixes.is_empty()
            || referrer.suffixes.is_empty()
            || same_ending(&candidate.suffixes, &referrer.suffixes);
        prefix_ok && suffix_ok
    } else {
        same_ending(&candidate.prefixes, &referrer.prefixes)
            && same_ending(&candidate.suffixes, &referrer.suffixes)
    }
}

/// kustomize's `SameEndingSubSlice`: the shorter list is the end of the longer one.
fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return long.is_empty();
    }
    long.ends_with(short)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(value: Value) -> Resource {
        Resource::new(value.as_object().cloned().expect("object"), None, None)
    }

    fn renamed(value: Value, new_name: &str) -> Resource {
        let mut r = resource(value);
        r.store_previous_id();
        r.set_name(new_name);
        r
    }

    #[test]
    fn a_renamed_config_map_is_followed_by_its_referrers() {
        let cm = renamed(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}),
            "cfg-abc",
        );
        let pod = resource(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"volumes": [{"name": "v", "configMap": {"name": "cfg"}}, {"name": "w", "configMap": {"name": "other"}}]}}),
        );
        let mut map = ResMap {
            resources: vec![cm, pod],
        };
        fix(&mut map, &TransformerConfig::default()).unwrap();
        let volumes = &map.resources[1].object["spec"]["volumes"];
        assert_eq!(volumes[0]["configMap"]["name"], "cfg-abc");
        assert_eq!(volumes[1]["configMap"]["name"], "other");
    }

    #[test]
    fn a_referral_in_another_namespace_is_not_taken() {
        let mut cm = resource(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "a"}}),
        );
        cm.store_previous_id();
        cm.set_name("x-cfg");
        let pod = resource(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "b"},
            "spec": {"volumes": [{"name": "v", "configMap": {"name": "cfg"}}]}}),
        );
        let mut map = ResMap {
            resources: vec![cm, pod],
        };
        fix(&mut map, &TransformerConfig::default()).unwrap();
        assert_eq!(
            map.resources[1].object["spec"]["volumes"][0]["configMap"]["name"],
            "cfg"
        );
    }

    #[test]
    fn same_ending_compares_the_tails() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert!(same_ending(&s(&["a", "b"]), &s(&["b"])));
        assert!(!same_ending(&s(&["a", "b"]), &s(&["a"])));
        assert!(same_ending(&s(&[]), &s(&[])));
        assert!(!same_ending(&s(&[]), &s(&["a"])));
    }
}
