//! Applying one object: the inventory policy check against the live object, then server-side
//! apply with Tether's field manager, then (optionally) waiting for it to become healthy.

use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

use crate::gitops::health::{Health, health};
use tether_config::gitops::InventoryPolicy;

use crate::gitops::inventory::{OWNING_INVENTORY_ANNOTATION, permits};
use crate::gitops::kinds::ResolvedKind;
use crate::gitops::{FIELD_MANAGER, ObjectRef};

/// An object ready to apply: checked, namespaced, resolved to its API resource.
#[derive(Debug, Clone)]
pub(crate) struct PlannedObject {
    pub(crate) reference: ObjectRef,
    pub(crate) kind: ResolvedKind,
    pub(crate) body: Value,
}

impl PlannedObject {
    pub(crate) fn api(&self, client: &Client) -> Api<DynamicObject> {
        match &self.reference.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.kind.resource),
            None => Api::all_with(client.clone(), &self.kind.resource),
        }
    }
}

/// What applying did to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Created or changed.
    Changed,
    /// The cluster already held exactly this.
    Unchanged,
}

pub(crate) struct ApplyRequest<'a> {
    pub(crate) client: &'a Client,
    pub(crate) inventory_id: &'a str,
    /// The id this inventory had before ids carried a hash: an object marked with it is this
    /// project's own (marked by an older agent), so re-marking it is migration, not adoption.
    pub(crate) legacy_inventory_id: &'a str,
    pub(crate) policy: InventoryPolicy,
    pub(crate) force: bool,
    pub(crate) server_dry_run: bool,
}

pub(crate) async fn apply(
    req: &ApplyRequest<'_>,
    planned: &PlannedObject,
) -> Result<Applied, String> {
    let api = planned.api(req.client);
    let name = &planned.reference.name;
    let live = api
        .get_opt(name)
        .await
        .map_err(|e| format!("read the live object: {}", describe(&e)))?;
    if let Some(live) = &live {
        let owner = live
            .annotations()
            .get(OWNING_INVENTORY_ANNOTATION)
            .map(String::as_str)
            .map(|owner| {
                if owner == req.legacy_inventory_id {
                    req.inventory_id
                } else {
                    owner
                }
            });
        permits(req.policy, req.inventory_id, owner)?;
    }
    let mut body = planned.body.clone();
    body["metadata"]["annotations"][OWNING_INVENTORY_ANNOTATION] = Value::from(req.inventory_id);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = req.force;
    params.dry_run = req.server_dry_run;
    let applied = api
        .patch(name, &params, &Patch::Apply(&body))
        .await
        .map_err(|e| format!("server-side apply: {}", describe(&e)))?;
    // A server-side apply that changes nothing leaves resourceVersion alone.
    let unchanged = live.is_some_and(|l| l.resource_version() == applied.resource_version());
    Ok(if unchanged {
        Applied::Unchanged
    } else {
        Applied::Changed
    })
}

/// Waits until the object is healthy, has failed, or `timeout` passes; watches, never polls.
pub(crate) async fn wait_healthy(
    client: &Client,
    planned: &PlannedObject,
    timeout: Duration,
) -> Result<(), String> {
    let api = planned.api(client);
    let (group, kind) = (
        planned.reference.group.clone(),
        planned.reference.kind.clone(),
    );
    let done = move |o: Option<&DynamicObject>| match o {
        Some(o) => !matches!(health(&group, &kind, o), Health::Progressing(_)),
        None => true,
    };
    let waited = tokio::time::timeout(
        timeout,
        await_condition(api.clone(), &planned.reference.name, done),
    )
    .await;
    let last = match waited {
        Ok(Ok(Some(object))) => object,
        Ok(Ok(None)) => return Err("the object was deleted while waiting for it".into()),
        Ok(Err(e)) => return Err(format!("watch: {e}")),
        Err(_) => match api.get_opt(&planned.reference.name).await {
            Ok(Some(object)) => {
                let state = match health(&planned.reference.group, &planned.reference.kind, &object)
                {
                    Health::Progressing(why) | Health::Failed(why) => why,
                    Health::Healthy => return Ok(()),
                };
                return Err(format!(
                    "not healthy after reconcile_timeout ({timeout:?}): {state}"
                ));
            }
            _ => return Err(format!("not healthy after reconcile_timeout ({timeout:?})")),
        },
    };
    match health(&planned.reference.group, &planned.reference.kind, &last) {
        Health::Failed(why) => Err(why),
        _ => Ok(()),
    }
}

/// The API server's message, without the transport's wrapping.
pub(crate) fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}
