//! Field specs: "this path in objects of this GVK", kustomize's way of saying where a transformer
//! writes. The built-in tables are data (see `builtin`); `configurations:` files add to them.

mod builtin;
pub mod crds;

use crate::error::{Error, Result};
use crate::resource::ResId;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub path: Cow<'static, str>,
    pub group: Cow<'static, str>,
    pub version: Cow<'static, str>,
    pub kind: Cow<'static, str>,
    pub create: bool,
}

pub const fn fs(
    path: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    create: bool,
) -> FieldSpec {
    FieldSpec {
        path: Cow::Borrowed(path),
        group: Cow::Borrowed(group),
        version: Cow::Borrowed(version),
        kind: Cow::Borrowed(kind),
        create,
    }
}

impl FieldSpec {
    pub fn selects(&self, id: &ResId) -> bool {
        id.gvk_selected(&self.group, &self.version, &self.kind)
    }

    /// Path elements; `\/` escapes a slash inside an element (annotation keys).
    pub fn segments(&self) -> Vec<String> {
        split_path(&self.path)
    }
}

pub fn split_path(path: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                current.push('/');
                chars.next();
            }
            '/' => segments.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    segments.push(current);
    segments.retain(|s| !s.is_empty());
    segments
}

/// A field spec as written in a `configurations:` file or a `labels[].fields` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserFieldSpec {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub create: bool,
}

impl From<UserFieldSpec> for FieldSpec {
    fn from(u: UserFieldSpec) -> Self {
        FieldSpec {
            path: u.path.into(),
            group: u.group.into(),
            version: u.version.into(),
            kind: u.kind.into(),
            create: u.create,
        }
    }
}

/// A kind whose name other objects refer to, and where they do.
#[derive(Debug, Clone)]
pub struct NameBackReference {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub referrers: &'static [FieldSpec],
}

/// A user-supplied name reference (owned strings).
#[derive(Debug, Clone)]
pub struct NameReference {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub referrers: Vec<FieldSpec>,
}

/// Every transformer's field specs for one build (kustomize's `TransformerConfig`).
#[derive(Debug, Clone)]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
    pub var_reference: Vec<FieldSpec>,
    pub name_reference: Vec<NameReference>,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            name_prefix: builtin::NAME_PREFIX.to_vec(),
            name_suffix: builtin::NAME_SUFFIX.to_vec(),
            namespace: builtin::NAMESPACE.to_vec(),
            common_labels: builtin::COMMON_LABELS.to_vec(),
            labels: Vec::new(),
            template_labels: builtin::TEMPLATE_LABELS.to_vec(),
            common_annotations: builtin::COMMON_ANNOTATIONS.to_vec(),
            images: builtin::IMAGES.to_vec(),
            replicas: builtin::REPLICAS.to_vec(),
            var_reference: builtin::VAR_REFERENCE.to_vec(),
            name_reference: builtin::NAME_REFERENCE
                .iter()
                .map(|r| NameReference {
                    group: r.group.to_owned(),
                    version: r.version.to_owned(),
                    kind: r.kind.to_owned(),
                    referrers: r.referrers.to_vec(),
                })
                .collect(),
        }
    }
}

/// The shape of a `configurations:` file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    name_prefix: Vec<UserFieldSpec>,
    #[serde(default)]
    name_suffix: Vec<UserFieldSpec>,
    #[serde(default)]
    namespace: Vec<UserFieldSpec>,
    #[serde(default)]
    common_labels: Vec<UserFieldSpec>,
    #[serde(default)]
    labels: Vec<UserFieldSpec>,
    #[serde(default)]
    template_labels: Vec<UserFieldSpec>,
    #[serde(default)]
    common_annotations: Vec<UserFieldSpec>,
    #[serde(default)]
    images: Vec<UserFieldSpec>,
    #[serde(default)]
    replicas: Vec<UserFieldSpec>,
    #[serde(default)]
    var_reference: Vec<UserFieldSpec>,
    #[serde(default)]
    name_reference: Vec<UserNameReference>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserNameReference {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    field_specs: Vec<UserFieldSpec>,
}

impl TransformerConfig {
    /// Add the field specs of a `configurations:` file.
    pub fn merge_file(&mut self, path: &str, text: &str) -> Result<()> {
        let value = crate::loader::parse_yaml(text).map_err(|(message, _)| {
            Error::input(format!("invalid transformer configuration: {message}")).in_file(path)
        })?;
        let file: ConfigFile = serde_json::from_value(value).map_err(|e| {
            Error::input(format!("invalid transformer configuration: {e}")).in_file(path)
        })?;
        let add = |into: &mut Vec<FieldSpec>, specs: Vec<UserFieldSpec>| {
            for spec in specs {
                let spec = FieldSpec::from(spec);
                if !into.contains(&spec) {
                    into.push(spec);
                }
            }
        };
        add(&mut self.name_prefix, file.name_prefix);
        add(&mut self.name_suffix, file.name_suffix);
        add(&mut self.namespace, file.namespace);
        add(&mut self.common_labels, file.common_labels);
        add(&mut self.labels, file.labels);
        add(&mut self.template_labels, file.template_labels);
        add(&mut self.common_annotations, file.common_annotations);
        add(&mut self.images, file.images);
        add(&mut self.replicas, file.replicas);
        add(&mut self.var_reference, file.var_reference);
        for reference in file.name_reference {
            let specs: Vec<FieldSpec> = reference
                .field_specs
                .into_iter()
                .map(FieldSpec::from)
                .collect();
            match self.name_reference.iter_mut().find(|r| {
                r.group == reference.group
                    && r.version == reference.version
                    && r.kind == reference.kind
            }) {
                Some(existing) => {
                    for spec in specs {
                        if !existing.referrers.contains(&spec) {
                            existing.referrers.push(spec);
                        }
                    }
                }
                None => self.name_reference.push(NameReference {
                    group: reference.group,
                    version: reference.version,
                    kind: reference.kind,
                    referrers: specs,
                }),
            }
        }
        Ok(())
    }

    /// Take in a sub-kustomization's additions (kustomize merges configs up the tree).
    pub fn merge(&mut self, other: &TransformerConfig) {
        fn add(into: &mut Vec<FieldSpec>, from: &[FieldSpec]) {
            for spec in from {
                if !into.contains(spec) {
                    into.push(spec.clone());
                }
            }
        }
        add(&mut self.name_prefix, &other.name_prefix);
        add(&mut self.name_suffix, &other.name_suffix);
        add(&mut self.namespace, &other.namespace);
        add(&mut self.common_labels, &other.common_labels);
        add(&mut self.labels, &other.labels);
        add(&mut self.template_labels, &other.template_labels);
        add(&mut self.common_annotations, &other.common_annotations);
        add(&mut self.images, &other.images);
        add(&mut self.replicas, &other.replicas);
        add(&mut self.var_reference, &other.var_reference);
        for reference in &other.name_reference {
            match self.name_reference.iter_mut().find(|r| {
                r.group == reference.group
                    && r.version == reference.version
                    && r.kind == reference.kind
            }) {
                Some(existing) => add(&mut existing.referrers, &reference.referrers),
                None => self.name_reference.push(reference.clone()),
            }
        }
    }
}

/// Visit the values at `segments` of `node`. Sequences met on the way are walked element by element (a
/// `[]` suffix only documents that). With `create`, missing maps on the way are made and a missing last
/// field is set to `leaf()` before visiting.
pub fn visit(
    node: &mut Value,
    segments: &[String],
    create: bool,
    leaf: &dyn Fn() -> Value,
    f: &mut dyn FnMut(&mut Value) -> Result<()>,
) -> Result<()> {
    let Some((first, rest)) = segments.split_first() else {
        return f(node);
    };
    match node {
        Value::Array(items) => {
            for item in items {
                visit(item, segments, create, leaf, f)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            let name = first.strip_suffix("[]").unwrap_or(first);
            let missing = map.get(name).is_none_or(Value::is_null);
            if missing {
                if !create || first.ends_with("[]") {
                    return Ok(());
                }
                let made = if rest.is_empty() {
                    leaf()
                } else {
                    Value::Object(Map::new())
                };
                map.insert(name.to_owned(), made);
            }
            let child = map.get_mut(name).expect("present or inserted above");
            visit(child, rest, create, leaf, f)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_split_on_unescaped_slashes() {
        assert_eq!(
            split_path("metadata/annotations/a.io\\/b"),
            vec!["metadata", "annotations", "a.io/b"]
        );
        assert_eq!(
            split_path("spec/containers[]/image"),
            vec!["spec", "containers[]", "image"]
        );
    }

    #[test]
    fn visit_walks_sequences_and_creates_when_asked() {
        let mut object = json!({"spec": {"containers": [{"image": "a"}, {"image": "b"}]}});
        let mut seen = Vec::new();
        visit(
            &mut object,
            &split_path("spec/containers/image"),
            false,
            &|| Value::Null,
            &mut |v| {
                seen.push(v.as_str().unwrap().to_owned());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, ["a", "b"]);
        visit(
            &mut object,
            &split_path("metadata/labels"),
            true,
            &|| json!({}),
            &mut |v| {
                v.as_object_mut().unwrap().insert("x".into(), json!("y"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(object["metadata"]["labels"]["x"], "y");
    }

    #[test]
    fn builtin_tables_are_loaded() {
        let config = TransformerConfig::default();
        assert!(
            config
                .name_reference
                .iter()
                .any(|r| r.kind == "ConfigMap" && r.referrers.len() > 40)
        );
        assert!(
            config
                .common_labels
                .iter()
                .any(|s| s.path == "spec/selector/matchLabels" && s.kind == "Deployment")
        );
    }
}
