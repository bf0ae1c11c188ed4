//! The objects a sync works with and how they are named in errors, inventories and reports.

use std::fmt;

use kube::api::DynamicObject;
use kube::core::GroupVersionKind;
use serde::{Deserialize, Serialize};

/// Identifies an object across versions of its API: group, kind, namespace and name, the key
/// inventories and prune work with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The API group; empty for the core group.
    pub group: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The inventory key, in cli-utils' `namespace_name_group_kind` form (an empty namespace for
    /// cluster-scoped objects), so `kubectl get configmap inventory-…` reads the same as the GitLab
    /// agent's.
    pub fn inventory_key(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace.as_deref().unwrap_or(""),
            self.name,
            self.group,
            self.kind
        )
    }

    /// Parses [`Self::inventory_key`]. Names, namespaces, groups and kinds never contain `_`.
    pub fn from_inventory_key(key: &str) -> Option<Self> {
        let mut parts = key.splitn(4, '_');
        let (namespace, name, group, kind) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if name.is_empty() || kind.is_empty() {
            return None;
        }
        Some(Self {
            group: group.to_owned(),
            kind: kind.to_owned(),
            namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
            name: name.to_owned(),
        })
    }
}

/// `Kind.group/namespace/name`, like kubectl's `kind.group/name`, with the namespace where there
/// is one: `Deployment.apps/web/frontend`, `Namespace/web`, `ConfigMap/web/settings`.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, "/{ns}")?;
        }
        write!(f, "/{}", self.name)
    }
}

/// One object of the desired state, with where it came from for error messages.
#[derive(Debug, Clone)]
pub struct DesiredObject {
    pub object: DynamicObject,
    /// Where the object was rendered from, e.g. `apps/web.yaml:12`; empty if unknown.
    pub source: String,
}

impl DesiredObject {
    pub fn new(object: DynamicObject, source: impl Into<String>) -> Self {
        Self {
            object,
            source: source.into(),
        }
    }

    /// Parses one object from JSON (what renderer plugins return).
    pub fn from_json(value: serde_json::Value, source: impl Into<String>) -> Result<Self, String> {
        let object: DynamicObject =
            serde_json::from_value(value).map_err(|e| format!("not a Kubernetes object: {e}"))?;
        Ok(Self::new(object, source))
    }

    /// The object's group, version and kind, or what is missing.
    pub fn gvk(&self) -> Result<GroupVersionKind, String> {
        let types = self
            .object
            .types
            .as_ref()
            .ok_or("apiVersion and kind are missing")?;
        if types.kind.is_empty() {
            return Err("kind is missing".into());
        }
        if types.api_version.is_empty() {
            return Err("apiVersion is missing".into());
        }
        GroupVersionKind::try_from(types).map_err(|e| format!("bad apiVersion: {e}"))
    }

    pub fn name(&self) -> Option<&str> {
        self.object
            .metadata
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object.metadata.namespace.as_deref()
    }

    /// Where to point a person: the source if known, the object otherwise.
    pub(crate) fn describe(&self) -> String {
        let what = match (self.gvk(), self.name()) {
            (Ok(gvk), Some(name)) => match self.namespace() {
                Some(ns) => format!("{}/{ns}/{name}", gvk.kind),
                None => format!("{}/{name}", gvk.kind),
            },
            (Ok(gvk), None) => format!("a {} without a name", gvk.kind),
            _ => "an object".to_owned(),
        };
        if self.source.is_empty() {
            what
        } else {
            format!("{what} ({})", self.source)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_keys_round_trip() {
        for r in [
            ObjectRef {
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: Some("web".into()),
                name: "front-end".into(),
            },
            ObjectRef {
                group: String::new(),
                kind: "Namespace".into(),
                namespace: None,
                name: "web".into(),
            },
            ObjectRef {
                group: "apiextensions.k8s.io".into(),
                kind: "CustomResourceDefinition".into(),
                namespace: None,
                name: "widgets.example.com".into(),
            },
        ] {
            assert_eq!(ObjectRef::from_inventory_key(&r.inventory_key()), Some(r));
        }
        assert_eq!(ObjectRef::from_inventory_key("only_three_parts"), None);
        assert_eq!(ObjectRef::from_inventory_key("ns__apps_Deployment"), None);
    }

    #[test]
    fn display_names_kind_group_namespace_and_name() {
        let r = ObjectRef {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: Some("web".into()),
            name: "front".into(),
        };
        assert_eq!(r.to_string(), "Deployment.apps/web/front");
        let ns = ObjectRef {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: None,
            name: "web".into(),
        };
        assert_eq!(ns.to_string(), "Namespace/web");
    }

    #[test]
    fn objects_without_type_or_name_say_what_is_missing() {
        let o =
            DesiredObject::from_json(serde_json::json!({"metadata": {"name": "x"}}), "a.yaml:1")
                .unwrap();
        assert_eq!(o.gvk().unwrap_err(), "apiVersion and kind are missing");
        let o = DesiredObject::from_json(
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
            "a.yaml:3",
        )
        .unwrap();
        assert_eq!(o.name(), None);
        assert_eq!(o.describe(), "a ConfigMap without a name (a.yaml:3)");
    }
}
