//! Resources as kustomize tracks them: the object plus what a build remembers about it (the ids it had,
//! the prefixes and suffixes it received, whether its name gets a content hash), and the ordered map of
//! them with kustomize's id rules.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// Group, version, kind, namespace and name of an object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResId {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ResId {
    pub fn of(object: &Map<String, Value>) -> ResId {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
        let (group, version) = split_api_version(
            object
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        let metadata = object.get("metadata");
        ResId {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: text(object.get("kind")),
            namespace: text(metadata.and_then(|m| m.get("namespace"))),
            name: text(metadata.and_then(|m| m.get("name"))),
        }
    }

    /// kustomize's `Gvk.IsSelected`: empty selector fields match anything.
    pub fn gvk_selected(&self, group: &str, version: &str, kind: &str) -> bool {
        (group.is_empty() || group == self.group)
            && (version.is_empty() || version == self.version)
            && (kind.is_empty() || kind == self.kind)
    }

    pub fn same_gvk(&self, other: &ResId) -> bool {
        self.group == other.group && self.version == other.version && self.kind == other.kind
    }

    pub fn is_cluster_scoped(&self) -> bool {
        crate::scope::is_cluster_scoped(&self.group, &self.kind)
    }

    /// The namespace the object lands in: `default` for a namespaced object without one.
    pub fn effective_namespace(&self) -> &str {
        if self.is_cluster_scoped() {
            ""
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// kustomize's `ResId.Equals`: same GVK and name, same effective namespace.
    pub fn equals(&self, other: &ResId) -> bool {
        self.same_gvk(other)
            && self.name == other.name
            && self.effective_namespace() == other.effective_namespace()
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl std::fmt::Display for ResId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let api = self.api_version();
        if self.namespace.is_empty() {
            write!(f, "{} {} {}", api, self.kind, self.name)
        } else {
            write!(f, "{} {} {}/{}", api, self.kind, self.namespace, self.name)
        }
    }
}

/// An id borrowed from an object or a [`ResId`]: comparisons in the hot loops (appending, patch
/// targets, namespace clashes) then allocate nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRef<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl<'a> IdRef<'a> {
    pub fn of(object: &'a Map<String, Value>) -> IdRef<'a> {
        let text = |v: Option<&'a Value>| v.and_then(Value::as_str).unwrap_or("");
        let (group, version) = split_api_version(text(object.get("apiVersion")));
        let metadata = object.get("metadata");
        IdRef {
            group,
            version,
            kind: text(object.get("kind")),
            namespace: text(metadata.and_then(|m| m.get("namespace"))),
            name: text(metadata.and_then(|m| m.get("name"))),
        }
    }

    pub fn effective_namespace(&self) -> &'a str {
        if crate::scope::is_cluster_scoped(self.group, self.kind) {
            ""
        } else if self.namespace.is_empty() {
            "default"
        } else {
            self.namespace
        }
    }

    /// kustomize's `ResId.Equals`.
    pub fn equals(&self, other: &IdRef<'_>) -> bool {
        self.group == other.group
            && self.version == other.version
            && self.kind == other.kind
            && self.name == other.name
            && self.effective_namespace() == other.effective_namespace()
    }
}

impl ResId {
    pub fn as_ref(&self) -> IdRef<'_> {
        IdRef {
            group: &self.group,
            version: &self.version,
            kind: &self.kind,
            namespace: &self.namespace,
            name: &self.name,
        }
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// How a generated object joins objects of the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    #[default]
    Create,
    Merge,
    Replace,
}

/// One object of a build and its history.
#[derive(Debug, Clone)]
pub struct Resource {
    pub object: Map<String, Value>,
    /// Where it was read from (relative to the source root) and the document's first line.
    pub file: Option<String>,
    pub line: Option<usize>,
    /// The id it was loaded or generated with.
    pub org_id: ResId,
    /// Ids it had before each rename or namespace change, oldest first.
    pub prev_ids: Vec<ResId>,
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    pub needs_hash: bool,
    pub behavior: Behavior,
}

impl Resource {
    pub fn new(object: Map<String, Value>, file: Option<String>, line: Option<usize>) -> Resource {
        let org_id = ResId::of(&object);
        Resource {
            object,
            file,
            line,
            org_id,
            prev_ids: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            behavior: Behavior::Create,
        }
    }

    pub fn cur_id(&self) -> ResId {
        ResId::of(&self.object)
    }

    pub fn id_ref(&self) -> IdRef<'_> {
        IdRef::of(&self.object)
    }

    /// Whether any name it had (original, previous, current) is `name`: a cheap first test before ids.
    pub fn had_name(&self, name: &str) -> bool {
        self.name() == name
            || self.org_id.name == name
            || self.prev_ids.iter().any(|p| p.name == name)
    }

    /// Whether any id it had (original, previous, current) equals `id`.
    pub fn had_id(&self, id: &IdRef<'_>) -> bool {
        if !self.had_name(id.name) {
            return false;
        }
        self.id_ref().equals(id)
            || self.org_id.as_ref().equals(id)
            || self.prev_ids.iter().any(|p| p.as_ref().equals(id))
    }

    /// The original id, the previous ones and the current one (kustomize's "any id").
    pub fn any_ids(&self) -> Vec<ResId> {
        let mut ids = vec![self.org_id.clone()];
        ids.extend(self.prev_ids.iter().cloned());
        ids.push(self.cur_id());
        ids
    }

    /// Remember the current id before a rename or namespace change.
    pub fn store_previous_id(&mut self) {
        let id = self.cur_id();
        self.prev_ids.push(id);
    }

    pub fn name(&self) -> &str {
        self.metadata_str("name")
    }

    pub fn namespace(&self) -> &str {
        self.metadata_str("namespace")
    }

    pub fn kind(&self) -> &str {
        self.object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn metadata_str(&self, key: &str) -> &str {
        self.object
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let metadata = self
            .object
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !metadata.is_object() {
            *metadata = Value::Object(Map::new());
        }
        metadata.as_object_mut().expect("made an object above")
    }

    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert("name".into(), Value::String(name.to_owned()));
    }

    pub fn set_namespace(&mut self, namespace: &str) {
        if namespace.is_empty() {
            self.metadata_mut().remove("namespace");
        } else {
            self.metadata_mut()
                .insert("namespace".into(), Value::String(namespace.to_owned()));
        }
    }

    /// `metadata.labels` or `metadata.annotations` as a string map (absent is empty).
    pub fn string_map(&self, key: &str) -> Vec<(String, String)> {
        self.object
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// For messages: `Kind name` and where it came from.
    pub fn describe(&self) -> String {
        let id = self.cur_id();
        match &self.file {
            Some(file) => format!("{} `{}` (from {file})", id.kind, id.name),
            None => format!("{} `{}`", id.kind, id.name),
        }
    }

    pub fn error(&self, message: impl Into<String>) -> Error {
        let error = Error::input(message);
        match (&self.file, self.line) {
            (Some(file), Some(line)) => error.in_file(file).at_line(line),
            (Some(file), None) => error.in_file(file),
            _ => error,
        }
    }
}

/// The resources of a build in order; ids are unique.
#[derive(Debug, Clone, Default)]
pub struct ResMap {
    pub resources: Vec<Resource>,
}

impl ResMap {
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Add a resource; an object with the same current id already present is kustomize's error.
    pub fn append(&mut self, resource: Resource) -> Result<()> {
        let id = resource.id_ref();
        if let Some(existing) = self.resources.iter().find(|r| r.id_ref().equals(&id)) {
            return Err(resource.error(format!(
                "may not add resource with an already registered id: {} (already added from {})",
                resource.cur_id(),
                existing.file.as_deref().unwrap_or("a generator")
            )));
        }
        self.resources.push(resource);
        Ok(())
    }

    /// Append many at once: the id clash check indexes the map once instead of scanning it per object.
    pub fn append_all(&mut self, other: ResMap) -> Result<()> {
        self.extend(other.resources)
    }

    pub fn extend(&mut self, resources: Vec<Resource>) -> Result<()> {
        let key = |r: &Resource| {
            let id = r.id_ref();
            (
                id.group.to_owned(),
                id.version.to_owned(),
                id.kind.to_owned(),
                id.name.to_owned(),
                id.effective_namespace().to_owned(),
            )
        };
        let mut seen: std::collections::HashSet<_> = self.resources.iter().map(key).collect();
        for resource in resources {
            if !seen.insert(key(&resource)) {
                // Reported by `append`, which names the object added first.
                return self.append(resource);
            }
            self.resources.push(resource);
        }
        Ok(())
    }

    /// Indices of resources any of whose ids equals `id`.
    pub fn matching_any_id(&self, id: &ResId) -> Vec<usize> {
        self.resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.had_id(&id.as_ref()))
            .map(|(i, _)| i)
            .collect()
    }
}
