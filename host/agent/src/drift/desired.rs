//! The desired objects as the sync sent them: each kind resolved to its API resource, the namespace
//! settled, the server-set fields removed and the owning-inventory annotation added, so that a
//! correction sends exactly what the sync sent and a comparison sees exactly what Git wants.

use std::collections::HashMap;

use kube::Client;
use kube::core::GroupVersionKind;
use kube::discovery::{self, ApiResource, Scope};
use serde_json::Value;

use crate::gitops::inventory::OWNING_INVENTORY_ANNOTATION;
use crate::gitops::{DesiredObject, ObjectRef};

/// A kind as served: its resource and scope.
#[derive(Debug, Clone)]
pub struct ServedKind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// Discovery, asked once per kind for the agent's life; a kind not served is asked again next time
/// (its CRD may be applied by then).
#[derive(Debug, Default)]
pub struct Kinds {
    known: HashMap<GroupVersionKind, ServedKind>,
}

impl Kinds {
    pub async fn resolve(
        &mut self,
        client: &Client,
        gvk: &GroupVersionKind,
    ) -> Result<Option<ServedKind>, kube::Error> {
        if let Some(known) = self.known.get(gvk) {
            return Ok(Some(known.clone()));
        }
        match discovery::pinned_kind(client, gvk).await {
            Ok((resource, caps)) => {
                let served = ServedKind {
                    resource,
                    namespaced: caps.scope == Scope::Namespaced,
                };
                self.known.insert(gvk.clone(), served.clone());
                Ok(Some(served))
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A kind stopped being served (its CRD was deleted): ask again before using it.
    pub fn forget(&mut self, resource: &ApiResource) {
        self.known
            .retain(|gvk, _| !(gvk.group == resource.group && gvk.kind == resource.kind));
    }
}

/// One desired object, ready to compare and to re-apply.
#[derive(Debug, Clone)]
pub struct SettledObject {
    pub reference: ObjectRef,
    pub kind: ServedKind,
    pub body: Value,
}

/// Settles `object` the way the sync did; `None` when its kind is not served (any more).
pub async fn settle(
    kinds: &mut Kinds,
    client: &Client,
    object: &DesiredObject,
    default_namespace: &str,
    inventory_id: &str,
) -> Result<Option<SettledObject>, String> {
    let gvk = object.gvk()?;
    let name = object.name().ok_or("metadata.name is missing")?.to_owned();
    let Some(kind) = kinds
        .resolve(client, &gvk)
        .await
        .map_err(|e| format!("discovery of {}/{}: {e}", gvk.group, gvk.kind))?
    else {
        return Ok(None);
    };
    let namespace = kind.namespaced.then(|| {
        object
            .namespace()
            .filter(|ns| !ns.is_empty())
            .unwrap_or(default_namespace)
            .to_owned()
    });
    let mut body = serde_json::to_value(&object.object).map_err(|e| e.to_string())?;
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
        ] {
            meta.remove(field);
        }
        match &namespace {
            Some(ns) => {
                meta.insert("namespace".into(), Value::from(ns.as_str()));
            }
            None => {
                meta.remove("namespace");
            }
        }
    }
    body["metadata"]["annotations"][OWNING_INVENTORY_ANNOTATION] = Value::from(inventory_id);
    Ok(Some(SettledObject {
        reference: ObjectRef {
            group: gvk.group,
            kind: gvk.kind,
            namespace,
            name,
        },
        kind,
        body,
    }))
}
