//! The inventory: which objects a manifest project's sync owns, recorded in the cluster (a
//! ConfigMap in the agent's namespace) so that an agent that restarts, or is replaced, still
//! knows what it may prune — and marked on each object (an annotation) so that two inventories
//! never fight over one object.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tether_config::gitops::InventoryPolicy;

use crate::gitops::{FIELD_MANAGER, ObjectRef};

/// Annotation on every applied object naming the inventory that owns it.
pub const OWNING_INVENTORY_ANNOTATION: &str = "tether.dev/owning-inventory";
/// Label on inventory ConfigMaps, holding the inventory id.
pub const INVENTORY_LABEL: &str = "tether.dev/inventory-id";

/// One manifest project of one agent: the unit that owns objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryId {
    pub agent: String,
    pub project: String,
}

impl InventoryId {
    pub fn new(agent: impl Into<String>, project: impl Into<String>) -> Self {
        Self {
            agent: agent.into(),
            project: project.into(),
        }
    }

    /// `<agent>-<project>`, with what a label value may not hold replaced by `-`.
    pub fn id(&self) -> String {
        let raw = format!("{}-{}", self.agent, self.project);
        let cleaned: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        // Label values: at most 63 characters, alphanumeric at both ends.
        let trimmed: String = cleaned.chars().take(63).collect();
        trimmed
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_owned()
    }

    /// Name of the inventory ConfigMap: `inventory-<agent>-<project>`, as GitLab's agent names it.
    pub fn config_map_name(&self) -> String {
        format!("inventory-{}", self.id())
    }
}

/// Whether inventory `ours` may apply an existing object owned by `live_owner` under `policy`.
pub fn permits(
    policy: InventoryPolicy,
    ours: &str,
    live_owner: Option<&str>,
) -> Result<(), String> {
    match (policy, live_owner) {
        (_, Some(owner)) if owner == ours => Ok(()),
        (InventoryPolicy::AdoptAll, _) => Ok(()),
        (InventoryPolicy::AdoptIfNoInventory, None) => Ok(()),
        (InventoryPolicy::MustMatch, None) => Err(
            "the object exists and no inventory owns it; inventory_policy must_match refuses to \
             adopt it (use adopt_if_no_inventory to take it over)"
                .into(),
        ),
        (_, Some(owner)) => Err(format!(
            "the object belongs to inventory {owner}; inventory_policy {} refuses to take it",
            policy_name(policy)
        )),
    }
}

fn policy_name(policy: InventoryPolicy) -> &'static str {
    match policy {
        InventoryPolicy::MustMatch => "must_match",
        InventoryPolicy::AdoptIfNoInventory => "adopt_if_no_inventory",
        InventoryPolicy::AdoptAll => "adopt_all",
    }
}

/// Reads and writes one inventory ConfigMap.
#[derive(Debug, Clone)]
pub(crate) struct InventoryStore {
    api: Api<ConfigMap>,
    id: InventoryId,
}

impl InventoryStore {
    pub(crate) fn new(api: Api<ConfigMap>, id: InventoryId) -> Self {
        Self { api, id }
    }

    /// The objects recorded, or an empty set for a project never synced.
    pub(crate) async fn load(&self) -> Result<BTreeSet<ObjectRef>, kube::Error> {
        let Some(cm) = self.api.get_opt(&self.id.config_map_name()).await? else {
            return Ok(BTreeSet::new());
        };
        Ok(cm
            .data
            .unwrap_or_default()
            .keys()
            .filter_map(|k| ObjectRef::from_inventory_key(k))
            .collect())
    }

    /// Records exactly `objects`. Server-side apply by one field manager drops the keys no longer
    /// listed.
    pub(crate) async fn save(&self, objects: &BTreeSet<ObjectRef>) -> Result<(), kube::Error> {
        let data: BTreeMap<String, String> = objects
            .iter()
            .map(|o| (o.inventory_key(), String::new()))
            .collect();
        let name = self.id.config_map_name();
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "labels": {INVENTORY_LABEL: self.id.id()},
            },
            "data": data,
        });
        self.api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_label_values() {
        let id = InventoryId::new("prod-agent", "group/Sub Group/manifests");
        assert_eq!(id.id(), "prod-agent-group-sub-group-manifests");
        assert_eq!(
            id.config_map_name(),
            "inventory-prod-agent-group-sub-group-manifests"
        );
        let long = InventoryId::new("a", "x".repeat(100) + "/");
        assert!(long.id().len() <= 63);
    }

    #[test]
    fn policies_decide_who_may_apply_existing_objects() {
        use InventoryPolicy::*;
        for policy in [MustMatch, AdoptIfNoInventory, AdoptAll] {
            assert!(permits(policy, "me", Some("me")).is_ok());
        }
        assert!(permits(MustMatch, "me", None).is_err());
        assert!(permits(MustMatch, "me", Some("other")).is_err());
        assert!(permits(AdoptIfNoInventory, "me", None).is_ok());
        let err = permits(AdoptIfNoInventory, "me", Some("other")).unwrap_err();
        assert!(err.contains("belongs to inventory other"), "{err}");
        assert!(permits(AdoptAll, "me", Some("other")).is_ok());
        assert!(permits(AdoptAll, "me", None).is_ok());
    }
}
