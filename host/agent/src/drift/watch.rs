//! Watches on managed kinds: one kube-runtime watcher per kind and scope (cluster-wide, or one
//! namespace in namespaced mode), shared by every project. A watch keeps nothing: each object Tether
//! owns (it carries the owning-inventory annotation) is handed to the drift loop as it changes, and
//! everything else is dropped on arrival, so memory does not grow with the cluster.
//!
//! When the kind stops being served (its CRD was deleted) the watch ends cleanly and says so.

use std::time::Instant;

use futures::StreamExt;
use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connection::Backoff;
use crate::gitops::ObjectRef;
use crate::gitops::inventory::OWNING_INVENTORY_ANNOTATION;

/// A kind in a scope: `None` is the whole cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespace: Option<String>,
}

impl WatchKey {
    pub fn new(resource: &ApiResource, namespace: Option<&str>) -> Self {
        Self {
            group: resource.group.clone(),
            version: resource.version.clone(),
            kind: resource.kind.clone(),
            plural: resource.plural.clone(),
            namespace: namespace.map(str::to_owned),
        }
    }
}

/// What a watch saw.
#[derive(Debug)]
pub enum Seen {
    /// A managed object as it is now.
    Live(ObjectRef, Box<DynamicObject>),
    /// A managed object was deleted.
    Deleted(ObjectRef),
    /// The kind is no longer served; the watch has ended.
    KindGone(WatchKey),
}

/// Follows one kind in one scope until `stop`, or until the kind is no longer served.
pub async fn watch_kind(
    client: Client,
    resource: ApiResource,
    key: WatchKey,
    seen: mpsc::Sender<Seen>,
    stop: CancellationToken,
) {
    let api: Api<DynamicObject> = match &key.namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    };
    let stream = watcher::watcher(api, watcher::Config::default());
    futures::pin_mut!(stream);
    let mut backoff = Backoff::default();
    let reference = |o: &DynamicObject| ObjectRef {
        group: resource.group.clone(),
        kind: resource.kind.clone(),
        namespace: o.namespace(),
        name: o.name_any(),
    };
    let managed = |o: &DynamicObject| o.annotations().contains_key(OWNING_INVENTORY_ANNOTATION);
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            event = stream.next() => event,
        };
        let sent = match event {
            None => return,
            Some(Ok(Event::Apply(o) | Event::InitApply(o))) if managed(&o) => {
                seen.send(Seen::Live(reference(&o), Box::new(o))).await
            }
            Some(Ok(Event::Delete(o))) if managed(&o) => {
                seen.send(Seen::Deleted(reference(&o))).await
            }
            Some(Ok(Event::InitDone)) => {
                backoff.connected(Instant::now());
                Ok(())
            }
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) if not_served(&e) => {
                tracing::info!(kind = %key.kind, group = %key.group, namespace = ?key.namespace,
                    "the kind is no longer served (its CustomResourceDefinition was deleted?): its drift watch stops");
                let _ = seen.send(Seen::KindGone(key)).await;
                return;
            }
            Some(Err(e)) => {
                let delay = backoff.failed(Instant::now());
                tracing::warn!(kind = %key.kind, group = %key.group, retry_in = ?delay, "drift watch: {e}");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                Ok(())
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

fn not_served(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code == 404,
        watcher::Error::WatchError(s) => s.code == 404,
        _ => false,
    }
}
