//! The inventory: which objects a manifest project's sync owns, recorded in the cluster (a
//! ConfigMap in the agent's namespace) so that an agent that restarts, or is replaced, still
//! knows what it may prune — and marked on each object (an annotation) so that two inventories
//! never fight over one object.
//!
//! An inventory's id is a readable prefix plus a hash of the full (agent, project) identity, so two
//! projects never share one (`group/app` and `group-app` did when the id was only the cleaned-up
//! names), and the ConfigMap stores that identity: an inventory recorded for someone else is never
//! adopted. Inventories written before the hash (the legacy name) are migrated without pruning.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sha2::{Digest, Sha256};
use tether_config::gitops::InventoryPolicy;

use crate::gitops::apply::describe;
use crate::gitops::{FIELD_MANAGER, ObjectRef};

/// Annotation on every applied object naming the inventory that owns it.
pub const OWNING_INVENTORY_ANNOTATION: &str = "tether.dev/owning-inventory";
/// Label on inventory ConfigMaps, holding the inventory id.
pub const INVENTORY_LABEL: &str = "tether.dev/inventory-id";
/// Annotations on an inventory ConfigMap holding the full identity it was recorded for.
pub const INVENTORY_AGENT_ANNOTATION: &str = "tether.dev/inventory-agent";
pub const INVENTORY_PROJECT_ANNOTATION: &str = "tether.dev/inventory-project";

/// Hex digits of the identity hash in an id: 64 bits, so accidental collisions need billions of
/// projects, and the id stays a valid label value (at most 63 characters).
const HASH_HEX_DIGITS: usize = 16;
/// The readable part of an id, leaving room for `-` and the hash within 63 characters.
const PREFIX_MAX: usize = 63 - 1 - HASH_HEX_DIGITS;

/// One manifest project of one agent: the unit that owns objects. A project is synced at one ref
/// only (the configuration refuses two entries of one repository), so the ref is not part of it:
/// moving a project from a branch to a tag keeps its inventory and prunes nothing.
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

    /// `<agent>-<project>` cleaned up and cut short for reading, then `-` and a hash of the exact
    /// (agent, project): a valid label value, and different for every identity.
    pub fn id(&self) -> String {
        let readable = clean(&format!("{}-{}", self.agent, self.project), PREFIX_MAX);
        // Length-prefixed, so no (agent, project) split of one string hashes like another.
        let mut hasher = Sha256::new();
        hasher.update(format!(
            "{}:{}/{}",
            self.agent.len(),
            self.agent,
            self.project
        ));
        let hash = hex::encode(hasher.finalize());
        format!("{readable}-{}", &hash[..HASH_HEX_DIGITS])
    }

    /// Name of the inventory ConfigMap: `inventory-<id>`.
    pub fn config_map_name(&self) -> String {
        format!("inventory-{}", self.id())
    }

    /// The id inventories had before it carried a hash: `<agent>-<project>` cleaned up and cut at
    /// 63 characters, which different projects could share. Only read, to migrate.
    pub fn legacy_id(&self) -> String {
        clean(&format!("{}-{}", self.agent, self.project), 63)
    }

    /// The ConfigMap name of [`Self::legacy_id`].
    pub fn legacy_config_map_name(&self) -> String {
        format!("inventory-{}", self.legacy_id())
    }
}

impl std::fmt::Display for InventoryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "agent `{}` project `{}`", self.agent, self.project)
    }
}

/// What a label value may hold, lower-cased, at most `max` characters, alphanumeric at both ends.
fn clean(raw: &str, max: usize) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(max)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// Why an inventory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("read inventory {name}: {}", describe(.source))]
    Read { name: String, source: kube::Error },
    #[error("record inventory {name}: {}", describe(.source))]
    Write { name: String, source: kube::Error },
    #[error(
        "inventory {name} was recorded for {recorded}, not for {ours}; refusing to adopt it (nothing \
         applied or pruned): delete or rename that ConfigMap if it is stale"
    )]
    ForeignIdentity {
        name: String,
        recorded: String,
        ours: String,
    },
}

/// What a sync may take as already owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LoadedInventory {
    /// Objects recorded by this inventory: the ones that may be pruned.
    pub(crate) owned: BTreeSet<ObjectRef>,
    /// Set while migrating from the legacy name: what that inventory recorded. Never pruned (the
    /// legacy inventory may be shared with a colliding project); what the commit no longer lists is
    /// left in the cluster and reported as abandoned.
    pub(crate) legacy: Option<BTreeSet<ObjectRef>>,
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

    /// The objects recorded, or an empty set for a project never synced. An inventory recorded for
    /// another identity is an error; a legacy inventory is offered for migration.
    pub(crate) async fn load(&self) -> Result<LoadedInventory, InventoryError> {
        let name = self.id.config_map_name();
        let read = |name: String| async move {
            self.api
                .get_opt(&name)
                .await
                .map_err(|source| InventoryError::Read { name, source })
        };
        if let Some(cm) = read(name.clone()).await? {
            let annotations = cm.metadata.annotations.clone().unwrap_or_default();
            let recorded = (
                annotations.get(INVENTORY_AGENT_ANNOTATION),
                annotations.get(INVENTORY_PROJECT_ANNOTATION),
            );
            if recorded != (Some(&self.id.agent), Some(&self.id.project)) {
                let recorded = match recorded {
                    (Some(agent), Some(project)) => {
                        InventoryId::new(agent.clone(), project.clone()).to_string()
                    }
                    _ => "no identity (a ConfigMap Tether did not write)".to_owned(),
                };
                return Err(InventoryError::ForeignIdentity {
                    name,
                    recorded,
                    ours: self.id.to_string(),
                });
            }
            return Ok(LoadedInventory {
                owned: keys(&cm),
                legacy: None,
            });
        }
        let legacy = read(self.id.legacy_config_map_name())
            .await?
            .map(|cm| keys(&cm));
        Ok(LoadedInventory {
            owned: BTreeSet::new(),
            legacy,
        })
    }

    /// Records exactly `objects`, with the identity they belong to. Server-side apply by one field
    /// manager drops the keys no longer listed.
    pub(crate) async fn save(&self, objects: &BTreeSet<ObjectRef>) -> Result<(), InventoryError> {
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
                "annotations": {
                    INVENTORY_AGENT_ANNOTATION: self.id.agent,
                    INVENTORY_PROJECT_ANNOTATION: self.id.project,
                },
            },
            "data": data,
        });
        self.api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| InventoryError::Write { name, source })?;
        Ok(())
    }
}

fn keys(cm: &ConfigMap) -> BTreeSet<ObjectRef> {
    cm.data
        .iter()
        .flat_map(|d| d.keys())
        .filter_map(|k| ObjectRef::from_inventory_key(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_label_values() {
        let id = InventoryId::new("prod-agent", "group/Sub Group/manifests");
        let shown = id.id();
        assert!(
            shown.starts_with("prod-agent-group-sub-group-manifests-"),
            "{shown}"
        );
        assert_eq!(
            shown.len(),
            "prod-agent-group-sub-group-manifests-".len() + 16
        );
        assert_eq!(id.config_map_name(), format!("inventory-{shown}"));
        assert_eq!(id.id(), shown, "stable");
        for long in [
            InventoryId::new("a", "x".repeat(100) + "/"),
            InventoryId::new("a".repeat(300), "b".repeat(255)),
        ] {
            let id = long.id();
            assert!(id.len() <= 63, "{id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)),
                "{id}"
            );
        }
    }

    #[test]
    fn identities_that_clean_up_alike_get_different_ids() {
        // The pairs that shared one inventory (and pruned each other's objects) before the hash.
        for (a, b) in [
            (("alpha", "platform/apps"), ("alpha-platform", "apps")),
            (("prod", "group/app"), ("prod", "group-app")),
            (("team-a", "apps"), ("team", "a-apps")),
            (("prod", "Group/App"), ("prod", "group/app")),
            (
                ("a", &"x".repeat(80) as &str),
                ("a", &("x".repeat(80) + "y") as &str),
            ),
        ] {
            let (a, b) = (InventoryId::new(a.0, a.1), InventoryId::new(b.0, b.1));
            assert_eq!(a.legacy_id(), b.legacy_id(), "{a} / {b} collided before");
            assert_ne!(a.id(), b.id(), "{a} / {b}");
            assert_ne!(a.config_map_name(), b.config_map_name());
        }
    }

    #[test]
    fn the_legacy_id_is_the_old_scheme() {
        let id = InventoryId::new("prod", "platform/config");
        assert_eq!(id.legacy_id(), "prod-platform-config");
        assert_eq!(
            id.legacy_config_map_name(),
            "inventory-prod-platform-config"
        );
        assert_ne!(id.id(), id.legacy_id());
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
