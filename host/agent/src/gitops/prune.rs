//! Pruning one object that left the manifests: only if it still carries this inventory's mark
//! (another inventory may have adopted it since), with the configured propagation policy, and
//! waiting until it is gone.

use std::time::Duration;

use kube::api::{DeleteParams, DynamicObject, Preconditions, PropagationPolicy};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, ResourceExt};

use crate::gitops::ObjectRef;
use crate::gitops::apply::describe;
use crate::gitops::inventory::OWNING_INVENTORY_ANNOTATION;
use crate::gitops::kinds::ResolvedKind;

/// What became of an object to prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pruned {
    Deleted,
    /// Already gone, or no longer this inventory's: nothing to do.
    NotOurs,
}

pub(crate) async fn prune(
    client: &Client,
    reference: &ObjectRef,
    kind: &ResolvedKind,
    inventory_id: &str,
    propagation: PropagationPolicy,
    timeout: Duration,
) -> Result<Pruned, String> {
    let api: Api<DynamicObject> = match &reference.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &kind.resource),
        None => Api::all_with(client.clone(), &kind.resource),
    };
    let Some(live) = api
        .get_opt(&reference.name)
        .await
        .map_err(|e| format!("read the live object: {}", describe(&e)))?
    else {
        return Ok(Pruned::NotOurs);
    };
    let owner = live.annotations().get(OWNING_INVENTORY_ANNOTATION);
    if owner.map(String::as_str) != Some(inventory_id) {
        return Ok(Pruned::NotOurs);
    }
    let uid = live.uid().unwrap_or_default();
    let params = DeleteParams {
        propagation_policy: Some(propagation),
        // Never delete a same-named successor created since we read it.
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&reference.name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Pruned::Deleted),
        Err(e) => return Err(format!("delete: {}", describe(&e))),
    }
    tokio::time::timeout(
        timeout,
        await_condition(api, &reference.name, conditions::is_deleted(&uid)),
    )
    .await
    .map_err(|_| format!("still present after prune_timeout ({timeout:?})"))?
    .map_err(|e| format!("watch: {e}"))?;
    Ok(Pruned::Deleted)
}
