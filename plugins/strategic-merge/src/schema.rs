//! The merge metadata of Kubernetes types: which lists merge by key (and by which keys), which are
//! unions of scalars, and which kinds are namespaced. Owns the lookup from an object's
//! `apiVersion`/`kind` to that metadata; never decides how to merge (that is `merge`).
//!
//! The built-in types come from `generated.rs`, written by the differential suite from the OpenAPI
//! document and discovery of a real control plane, as static tables: a plugin call runs in a fresh
//! WebAssembly instance, so parsing megabytes of OpenAPI per call is not an option.
//!
//! kustomize v5.8.1 embeds the schema of Kubernetes 1.21.2; this one is the repository's control
//! plane's. They agree on every list that both know, but lists added since 1.21 (e.g.
//! `PodSpec.schedulingGates` and `resourceClaims`, admission `matchConditions`, a CRD schema's
//! `x-kubernetes-validations`, ephemeral containers' `ports`) merge by key here where kustomize
//! replaces them.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use crate::generated;
use crate::tables::StaticShape;

/// Merge metadata of a set of types, keyed by OpenAPI definition name and by `apiVersion`/`kind`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    pub(crate) definitions: HashMap<String, Shape>,
    pub(crate) kinds: HashMap<(String, String), KindEntry>,
}

/// What the schema knows of one `apiVersion`/`kind`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KindEntry {
    /// The OpenAPI definition of the kind's objects.
    pub(crate) definition: String,
    /// From discovery; `None` when only the OpenAPI document named the kind.
    pub(crate) namespaced: Option<bool>,
}

/// The shape of a value, reduced to what merging needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// A definition of the schema, looked up by name when used (definitions refer to each other
    /// and to themselves).
    Named(String),
    Object(ObjectShape),
    List(ListShape),
}

/// A map with known fields, or with values of one shape (`additionalProperties`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ObjectShape {
    pub(crate) fields: BTreeMap<String, Shape>,
    pub(crate) additional: Option<Box<Shape>>,
}

/// A list and how a patch combines with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ListShape {
    /// `x-kubernetes-patch-strategy`, e.g. `merge` or `merge,retainKeys`.
    pub(crate) strategy: Option<String>,
    /// `x-kubernetes-patch-merge-key`.
    pub(crate) merge_key: Option<String>,
    /// `x-kubernetes-list-type` (`atomic`, `set`, `map`).
    pub(crate) list_type: Option<String>,
    /// `x-kubernetes-list-map-keys`.
    pub(crate) map_keys: Vec<String>,
    pub(crate) items: Option<Box<Shape>>,
}

impl ListShape {
    /// Whether elements merge with the base's instead of replacing the list. kustomize (kyaml)
    /// looks only at the patch strategy, not at `x-kubernetes-list-type`.
    pub(crate) fn merges(&self) -> bool {
        self.strategy
            .as_deref()
            .is_some_and(|s| s.split(',').any(|part| part == "merge"))
    }

    /// The keys that identify an element: the list-map keys when the type declares them (kyaml
    /// prefers them), else the patch merge key; empty for lists of scalars.
    pub(crate) fn keys(&self) -> Vec<String> {
        if !self.map_keys.is_empty() {
            self.map_keys.clone()
        } else {
            self.merge_key.iter().cloned().collect()
        }
    }
}

/// `group/version` as its parts; the core group is empty.
fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// How deep `Named` references are followed before a definition is taken to be unknown; only a
/// malformed document (a definition that is only a reference to itself) gets near it.
const MAX_REFERENCE_DEPTH: usize = 64;

impl Schema {
    /// The types of the Kubernetes release the repository's control plane runs, built once per
    /// process from static tables.
    pub fn kubernetes() -> &'static Schema {
        static KUBERNETES: OnceLock<Schema> = OnceLock::new();
        KUBERNETES.get_or_init(|| {
            let mut schema = Schema::default();
            for (name, shape) in generated::DEFINITIONS {
                schema
                    .definitions
                    .insert((*name).to_owned(), shape.to_shape());
            }
            for kind in generated::KINDS {
                schema.kinds.insert(
                    (kind.api_version.to_owned(), kind.kind.to_owned()),
                    KindEntry {
                        definition: kind.definition.to_owned(),
                        namespaced: Some(kind.namespaced),
                    },
                );
            }
            schema
        })
    }

    /// Whether objects of this kind live in a namespace; `None` for a kind the schema does not know
    /// (kustomize then treats it as namespaced) or knows only from an OpenAPI document.
    ///
    /// A version the control plane no longer serves (`batch/v1beta1` CronJob,
    /// `rbac.authorization.k8s.io/v1beta1` ClusterRole) is answered from a served version of the
    /// same group and kind: kustomize's own schema still has those versions, and neither the scope
    /// nor the merge keys of a kind change between versions of its group.
    pub fn is_namespaced(&self, api_version: &str, kind: &str) -> Option<bool> {
        self.kind_entry(api_version, kind)
            .and_then(|entry| entry.namespaced)
    }

    /// The shape of objects of `apiVersion`/`kind`, if the schema knows the kind (in this version
    /// or, as for `is_namespaced`, another of its group).
    pub(crate) fn shape_of_kind(&self, api_version: &str, kind: &str) -> Option<&Shape> {
        let entry = self.kind_entry(api_version, kind)?;
        self.definitions.get(&entry.definition)
    }

    fn kind_entry(&self, api_version: &str, kind: &str) -> Option<&KindEntry> {
        if let Some(entry) = self.kinds.get(&(api_version.to_owned(), kind.to_owned())) {
            return Some(entry);
        }
        let (group, version) = split_api_version(api_version);
        // The closest version (most leading characters in common: v2beta2 -> v2), then the
        // greatest, so the choice does not depend on hash order.
        self.kinds
            .iter()
            .filter(|((other, other_kind), _)| {
                other_kind == kind && split_api_version(other).0 == group
            })
            .max_by_key(|((other, _), _)| {
                let other_version = split_api_version(other).1;
                let common = version
                    .chars()
                    .zip(other_version.chars())
                    .take_while(|(a, b)| a == b)
                    .count();
                (common, other.clone())
            })
            .map(|(_, entry)| entry)
    }

    /// `shape` with references followed: an object or list shape, or `None` if it names a
    /// definition the schema lacks.
    pub(crate) fn resolve<'a>(&'a self, mut shape: &'a Shape) -> Option<&'a Shape> {
        for _ in 0..MAX_REFERENCE_DEPTH {
            match shape {
                Shape::Named(name) => shape = self.definitions.get(name)?,
                _ => return Some(shape),
            }
        }
        None
    }

    /// The shape of field `name` of a map of shape `shape` (kyaml's `ResourceSchema.Field`).
    pub(crate) fn field<'a>(&'a self, shape: Option<&'a Shape>, name: &str) -> Option<&'a Shape> {
        match self.resolve(shape?)? {
            Shape::Object(object) => object
                .fields
                .get(name)
                .or(object.additional.as_deref())
                .and_then(|s| self.resolve(s)),
            _ => None,
        }
    }

    /// The shape of the elements of a list of shape `shape` (kyaml's `ResourceSchema.Elements`).
    pub(crate) fn elements<'a>(&'a self, shape: Option<&'a Shape>) -> Option<&'a Shape> {
        match self.resolve(shape?)? {
            Shape::List(list) => list.items.as_deref().and_then(|s| self.resolve(s)),
            _ => None,
        }
    }
}

impl StaticShape {
    fn to_shape(&self) -> Shape {
        match self {
            StaticShape::Named(name) => Shape::Named((*name).to_owned()),
            StaticShape::Object { fields, additional } => Shape::Object(ObjectShape {
                fields: fields
                    .iter()
                    .map(|(name, shape)| ((*name).to_owned(), shape.to_shape()))
                    .collect(),
                additional: additional.map(|s| Box::new(s.to_shape())),
            }),
            StaticShape::List {
                strategy,
                merge_key,
                list_type,
                map_keys,
                items,
            } => Shape::List(ListShape {
                strategy: strategy.map(str::to_owned),
                merge_key: merge_key.map(str::to_owned),
                list_type: list_type.map(str::to_owned),
                map_keys: map_keys.iter().map(|k| (*k).to_owned()).collect(),
                items: items.map(|s| Box::new(s.to_shape())),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_of(schema: &Schema, kind: (&str, &str), path: &[&str]) -> ListShape {
        let mut shape = schema.shape_of_kind(kind.0, kind.1);
        for name in path {
            // `[]` steps into a list's elements.
            shape = match *name {
                "[]" => schema.elements(shape),
                name => schema.field(shape, name),
            };
        }
        match shape {
            Some(Shape::List(list)) => list.clone(),
            other => panic!("{path:?} is not a list: {other:?}"),
        }
    }

    #[test]
    fn built_in_containers_merge_by_name() {
        let list = list_of(
            Schema::kubernetes(),
            ("apps/v1", "Deployment"),
            &["spec", "template", "spec", "containers"],
        );
        assert!(list.merges());
        assert_eq!(list.keys(), vec!["name".to_owned()]);
    }

    #[test]
    fn built_in_ports_prefer_the_list_map_keys() {
        let list = list_of(
            Schema::kubernetes(),
            ("v1", "Pod"),
            &["spec", "containers", "[]", "ports"],
        );
        assert_eq!(list.keys(), vec!["containerPort", "protocol"]);
    }

    #[test]
    fn built_in_finalizers_are_a_union_of_scalars() {
        let list = list_of(
            Schema::kubernetes(),
            ("v1", "ConfigMap"),
            &["metadata", "finalizers"],
        );
        assert!(list.merges());
        assert!(list.keys().is_empty());
    }

    #[test]
    fn namespaced_flags_come_from_discovery() {
        let schema = Schema::kubernetes();
        assert_eq!(schema.is_namespaced("v1", "ConfigMap"), Some(true));
        assert_eq!(schema.is_namespaced("v1", "Namespace"), Some(false));
        assert_eq!(
            schema.is_namespaced("rbac.authorization.k8s.io/v1", "ClusterRole"),
            Some(false)
        );
        assert_eq!(schema.is_namespaced("example.com/v1", "Widget"), None);
    }

    #[test]
    fn versions_no_longer_served_borrow_from_their_group() {
        let schema = Schema::kubernetes();
        assert_eq!(
            schema.is_namespaced("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
            Some(false)
        );
        let list = list_of(
            schema,
            ("batch/v1beta1", "CronJob"),
            &[
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "containers",
            ],
        );
        assert_eq!(list.keys(), vec!["name"]);
        // Another group's kind of the same name is not borrowed.
        assert_eq!(
            schema.is_namespaced("serving.knative.dev/v1", "Service"),
            None
        );
        assert_eq!(schema.is_namespaced("v2", "Service"), Some(true));
    }
}
