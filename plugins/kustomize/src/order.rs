//! Output order: kustomize's `legacy` sort (its default): kinds in a fixed priority, then by GVK, then by
//! namespace and name; or the order resources were accumulated (`sortOptions: {order: fifo}`).

use crate::error::{Error, Result};
use crate::kustomization::SortOptions;
use crate::resource::{ResId, Resource};
use std::cmp::Ordering;

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

pub fn sort(resources: &mut Vec<Resource>, options: Option<&SortOptions>) -> Result<()> {
    let (first, last): (Vec<&str>, Vec<&str>) = match options {
        None => (ORDER_FIRST.to_vec(), ORDER_LAST.to_vec()),
        Some(options) => match options.order.as_str() {
            "fifo" => {
                if options.legacy_sort_options.is_some() {
                    return Err(Error::input(
                        "sortOptions: legacySortOptions is set but the selected sort order is 'fifo', not 'legacy'",
                    ));
                }
                return Ok(());
            }
            "legacy" => match &options.legacy_sort_options {
                Some(legacy) => (
                    legacy.order_first.iter().map(String::as_str).collect(),
                    legacy.order_last.iter().map(String::as_str).collect(),
                ),
                None => (ORDER_FIRST.to_vec(), ORDER_LAST.to_vec()),
            },
            other => {
                return Err(Error::input(format!(
                    "sortOptions: the field 'sortOptions.order' must be one of [legacy, fifo], got `{other}`"
                )));
            }
        },
    };
    let rank = |kind: &str| -> i64 {
        if let Some(i) = first.iter().position(|k| *k == kind) {
            return i as i64 - first.len() as i64;
        }
        if let Some(i) = last.iter().position(|k| *k == kind) {
            return 1 + i as i64;
        }
        0
    };
    let mut keyed: Vec<(i64, String, String, Resource)> = std::mem::take(resources)
        .into_iter()
        .map(|r| {
            let id = r.cur_id();
            (rank(&id.kind), gvk_key(&id), id_key(&id), r)
        })
        .collect();
    keyed.sort_by(compare);
    resources.extend(keyed.into_iter().map(|(_, _, _, r)| r));
    Ok(())
}

type Keyed = (i64, String, String, Resource);

fn compare(a: &Keyed, b: &Keyed) -> Ordering {
    if a.1 != b.1 {
        if a.0 != b.0 {
            return a.0.cmp(&b.0);
        }
        let (ka, kb) = (a.3.kind(), b.3.kind());
        // kustomize puts a Namespace of the core group after Namespaces of other groups.
        let core_namespace = ka == "Namespace"
            && kb == "Namespace"
            && (a.3.cur_id().group.is_empty() || b.3.cur_id().group.is_empty());
        return if core_namespace {
            b.1.cmp(&a.1)
        } else {
            a.1.cmp(&b.1)
        };
    }
    a.2.cmp(&b.2)
}

fn gvk_key(id: &ResId) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_owned()
        } else {
            s.to_owned()
        }
    };
    format!(
        "{}_{}_{}",
        or(&id.group, "~G"),
        or(&id.version, "~V"),
        or(&id.kind, "~K")
    )
}

/// kustomize's `legacyResIDSortString`: `Gvk.String()|namespace|name`.
fn id_key(id: &ResId) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_owned()
        } else {
            s.to_owned()
        }
    };
    format!(
        "{}.{}.{}|{}|{}",
        or(&id.kind, "[noKind]"),
        or(&id.version, "[noVer]"),
        or(&id.group, "[noGrp]"),
        or(&id.namespace, "~X"),
        or(&id.name, "~N")
    )
}
