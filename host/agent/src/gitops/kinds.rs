//! Which API resource serves a kind, and whether it is namespaced, asked of the API server's
//! discovery once per kind and remembered for the agent's life.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Client;
use kube::core::GroupVersionKind;
use kube::discovery::{self, ApiResource, Scope};

#[derive(Debug, Clone)]
pub(crate) struct ResolvedKind {
    pub(crate) resource: ApiResource,
    pub(crate) namespaced: bool,
}

#[derive(Debug, Default)]
pub(crate) struct KindResolver {
    known: Mutex<HashMap<GroupVersionKind, ResolvedKind>>,
    /// By group and kind alone, for objects known only from an inventory.
    preferred: Mutex<HashMap<(String, String), ResolvedKind>>,
}

impl KindResolver {
    /// Resolves a kind; `Ok(None)` if the server does not serve it (yet).
    pub(crate) async fn resolve(
        &self,
        client: &Client,
        gvk: &GroupVersionKind,
    ) -> Result<Option<ResolvedKind>, kube::Error> {
        if let Some(known) = self.lock().get(gvk) {
            return Ok(Some(known.clone()));
        }
        match discovery::pinned_kind(client, gvk).await {
            Ok((resource, caps)) => {
                let resolved = ResolvedKind {
                    resource,
                    namespaced: caps.scope == Scope::Namespaced,
                };
                self.lock().insert(gvk.clone(), resolved.clone());
                Ok(Some(resolved))
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Resolves a kind at its group's preferred version; `Ok(None)` if the server does not serve
    /// it (any more).
    pub(crate) async fn resolve_group_kind(
        &self,
        client: &Client,
        group: &str,
        kind: &str,
    ) -> Result<Option<ResolvedKind>, kube::Error> {
        let key = (group.to_owned(), kind.to_owned());
        if let Some(known) = lock(&self.preferred).get(&key) {
            return Ok(Some(known.clone()));
        }
        let api_group = match discovery::group(client, group).await {
            Ok(g) => g,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
            Err(kube::Error::Discovery(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some((resource, caps)) = api_group.recommended_kind(kind) else {
            return Ok(None);
        };
        let resolved = ResolvedKind {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
        };
        lock(&self.preferred).insert(key, resolved.clone());
        Ok(Some(resolved))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GroupVersionKind, ResolvedKind>> {
        lock(&self.known)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps are only ever inserted into; a panic elsewhere cannot leave them inconsistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
