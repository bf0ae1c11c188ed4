//! The kustomization file (`kustomize.config.k8s.io/v1beta1` `Kustomization`, `v1alpha1` `Component`) as
//! typed values. Unknown fields are errors, as in kustomize; fields this renderer does not implement are
//! rejected by name in [`Kustomization::reject_unsupported`] rather than ignored.

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// A string map whose values may be written as any YAML scalar (kustomize's loader stringifies them).
pub type StringMap = BTreeMap<String, String>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kustomization {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<Value>,
    #[serde(rename = "openapi")]
    pub openapi: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub name_prefix: String,
    #[serde(default)]
    pub name_suffix: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default, deserialize_with = "string_map")]
    pub common_labels: StringMap,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default, deserialize_with = "string_map")]
    pub common_annotations: StringMap,
    #[serde(default)]
    pub patches_strategic_merge: Vec<String>,
    #[serde(default)]
    pub patches_json6902: Vec<Patch>,
    #[serde(default)]
    pub patches: Vec<Patch>,
    #[serde(default)]
    pub images: Vec<Image>,
    #[serde(default)]
    pub image_tags: Vec<Image>,
    #[serde(default)]
    pub replacements: Vec<Value>,
    #[serde(default)]
    pub replicas: Vec<Replica>,
    #[serde(default)]
    pub vars: Vec<Var>,
    pub sort_options: Option<SortOptions>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub crds: Vec<String>,
    #[serde(default)]
    pub bases: Vec<String>,
    #[serde(default)]
    pub config_map_generator: Vec<GeneratorArgs>,
    #[serde(default)]
    pub secret_generator: Vec<GeneratorArgs>,
    pub helm_globals: Option<Value>,
    pub helm_charts: Option<Value>,
    pub helm_chart_inflation_generator: Option<Value>,
    pub generator_options: Option<GeneratorOptions>,
    #[serde(default)]
    pub configurations: Vec<String>,
    #[serde(default)]
    pub generators: Vec<String>,
    #[serde(default)]
    pub transformers: Vec<String>,
    pub validators: Option<Value>,
    pub build_metadata: Option<Value>,
    #[serde(skip)]
    deprecated: Vec<&'static str>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Label {
    #[serde(default, deserialize_with = "string_map")]
    pub pairs: StringMap,
    #[serde(default)]
    pub include_selectors: bool,
    #[serde(default)]
    pub include_templates: bool,
    #[serde(default)]
    pub fields: Vec<crate::fieldspec::UserFieldSpec>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patch {
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Selector>,
    #[serde(default)]
    pub options: BTreeMap<String, bool>,
}

/// kustomize's `types.Selector`: a GVK, regexes for name and namespace, label and annotation selectors.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub label_selector: String,
    #[serde(default)]
    pub annotation_selector: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub new_name: String,
    #[serde(default, deserialize_with = "scalar_string")]
    pub new_tag: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub tag_suffix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replica {
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Var {
    pub name: String,
    pub objref: VarTarget,
    #[serde(default)]
    pub fieldref: Option<FieldRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VarTarget {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldRef {
    #[serde(default)]
    pub fieldpath: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SortOptions {
    pub order: String,
    pub legacy_sort_options: Option<LegacySortOptions>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacySortOptions {
    #[serde(default)]
    pub order_first: Vec<String>,
    #[serde(default)]
    pub order_last: Vec<String>,
}

/// `configMapGenerator` and `secretGenerator` entries.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneratorArgs {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub behavior: String,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub literals: Vec<String>,
    #[serde(default)]
    pub envs: Vec<String>,
    #[serde(default)]
    pub env: String,
    pub options: Option<GeneratorOptions>,
    /// Secrets only; kustomize accepts the field on both.
    #[serde(default, rename = "type")]
    pub type_: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneratorOptions {
    #[serde(default, deserialize_with = "string_map")]
    pub labels: StringMap,
    #[serde(default, deserialize_with = "string_map")]
    pub annotations: StringMap,
    #[serde(default)]
    pub disable_name_suffix_hash: Option<bool>,
    #[serde(default)]
    pub immutable: Option<bool>,
}

impl Kustomization {
    /// Parse a kustomization file; problems name the file and, when known, the line.
    pub fn parse(path: &str, text: &str) -> Result<Kustomization> {
        let value = crate::loader::parse_yaml(&crate::yaml11::rewrite_yaml11_booleans(text))
            .map_err(|(message, line)| {
                let error = Error::input(format!("invalid kustomization: {message}")).in_file(path);
                match line {
                    Some(line) => error.at_line(line),
                    None => error,
                }
            })?;
        let value = if value.is_null() {
            Value::Object(Default::default())
        } else {
            value
        };
        check_not_empty(path, &value)?;
        let mut kustomization: Kustomization = serde_json::from_value(value).map_err(|e| {
            let message = e.to_string();
            let line = field_line(text, &message);
            let error = Error::input(format!("invalid kustomization: {message}")).in_file(path);
            match line {
                Some(line) => error.at_line(line),
                None => error,
            }
        })?;
        kustomization.reject_unsupported(path, text)?;
        kustomization.enforce_type(path)?;
        let deprecated = [
            (
                !kustomization.bases.is_empty(),
                "'bases' is deprecated. Please use 'resources' instead.",
            ),
            (
                !kustomization.common_labels.is_empty(),
                "'commonLabels' is deprecated. Please use 'labels' instead.",
            ),
            (
                !kustomization.image_tags.is_empty(),
                "'imageTags' is deprecated. Please use 'images' instead.",
            ),
            (
                !kustomization.patches_json6902.is_empty(),
                "'patchesJson6902' is deprecated. Please use 'patches' instead.",
            ),
            (
                !kustomization.patches_strategic_merge.is_empty(),
                "'patchesStrategicMerge' is deprecated. Please use 'patches' instead.",
            ),
            (
                !kustomization.vars.is_empty(),
                "'vars' is deprecated. Please use 'replacements' instead.",
            ),
        ];
        kustomization.deprecated = deprecated
            .into_iter()
            .filter(|(used, _)| *used)
            .map(|(_, m)| m)
            .collect();
        // kustomize's FixKustomization: deprecated spellings join their replacements.
        kustomization.resources.append(&mut kustomization.bases);
        kustomization.images.append(&mut kustomization.image_tags);
        for generator in kustomization
            .config_map_generator
            .iter_mut()
            .chain(kustomization.secret_generator.iter_mut())
        {
            if !generator.env.is_empty() {
                generator.envs.push(std::mem::take(&mut generator.env));
            }
        }
        Ok(kustomization)
    }

    /// kustomize's deprecation warnings for this file (it prints them to stderr; here they become the
    /// render's warnings). Call before `parse` merges the deprecated fields away — `parse` keeps them.
    pub fn deprecations(&self) -> &[&'static str] {
        &self.deprecated
    }

    pub fn is_component(&self) -> bool {
        self.kind.as_deref() == Some("Component")
    }

    /// kustomize's `EnforceFields`: the kind and its API version.
    fn enforce_type(&self, path: &str) -> Result<()> {
        let kind = self.kind.as_deref().unwrap_or("");
        if !matches!(kind, "" | "Kustomization" | "Component") {
            return Err(Error::input("kind should be Kustomization or Component").in_file(path));
        }
        let required = if kind == "Component" {
            "kustomize.config.k8s.io/v1alpha1"
        } else {
            "kustomize.config.k8s.io/v1beta1"
        };
        match self.api_version.as_deref() {
            None | Some("") => Ok(()),
            Some(version) if version == required => Ok(()),
            Some(_) => Err(Error::input(format!(
                "apiVersion for {} should be {required}",
                if kind.is_empty() {
                    "Kustomization"
                } else {
                    kind
                }
            ))
            .in_file(path)),
        }
    }

    /// Fields kustomize knows but this renderer doesn't implement: an error naming the field and file.
    fn reject_unsupported(&self, path: &str, text: &str) -> Result<()> {
        let unsupported = [
            ("helmGlobals", self.helm_globals.is_some()),
            ("helmCharts", self.helm_charts.is_some()),
            (
                "helmChartInflationGenerator",
                self.helm_chart_inflation_generator.is_some(),
            ),
            ("validators", self.validators.is_some()),
            ("buildMetadata", self.build_metadata.is_some()),
            ("generators", !self.generators.is_empty()),
        ];
        for (field, present) in unsupported {
            if present {
                let error = Error::input(format!(
                    "`{field}` is not supported by the kustomize renderer (render helm charts with the \
                     helm renderer; plugins and validators can't run in the sandbox)"
                ))
                .in_file(path);
                return Err(match key_line(text, field) {
                    Some(line) => error.at_line(line),
                    None => error,
                });
            }
        }
        Ok(())
    }
}

/// kustomize's `CheckEmpty`: a kustomization with nothing but its type is an error. Like Go's
/// `reflect.DeepEqual` on the decoded struct, an empty list (`resources: []`) counts as something.
fn check_not_empty(path: &str, value: &Value) -> Result<()> {
    let has_content = value.as_object().is_some_and(|map| {
        map.iter().any(|(key, v)| {
            key != "apiVersion"
                && key != "kind"
                && !matches!(v, Value::Null | Value::Bool(false))
                && v.as_str() != Some("")
        })
    });
    if has_content {
        Ok(())
    } else {
        Err(Error::input(format!("{} is empty", crate::loader::base_name(path))).in_file(path))
    }
}

/// The line of a top-level key, for errors about it.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|index| index + 1)
}

/// serde names the unknown field in backquotes; find its line.
fn field_line(text: &str, message: &str) -> Option<usize> {
    let field = message.split('`').nth(1)?;
    text.lines()
        .position(|line| {
            line.trim_start()
                .trim_start_matches("- ")
                .strip_prefix(field)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|index| index + 1)
}

/// A string; kustomize refuses numbers and booleans where it wants one (quote them).
fn scalar_text(value: Value) -> std::result::Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        Value::Number(n) => Err(format!(
            "cannot unmarshal number {n} into a string (quote it)"
        )),
        Value::Bool(b) => Err(format!(
            "cannot unmarshal bool {b} into a string (quote it)"
        )),
        other => Err(format!("expected a string, got {other}")),
    }
}

fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<StringMap, D::Error> {
    let raw = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
    raw.into_iter()
        .map(|(k, v)| Ok((k, scalar_text(v).map_err(serde::de::Error::custom)?)))
        .collect()
}

fn scalar_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<String, D::Error> {
    scalar_text(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_an_error_with_its_line() {
        let err = Kustomization::parse("k.yaml", "resources: []\nnamePrefx: a-\n").unwrap_err();
        assert!(err.message.contains("namePrefx"), "{}", err.message);
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn empty_and_mistyped_kustomizations_are_errors() {
        assert!(Kustomization::parse("k.yaml", "").is_err());
        assert!(Kustomization::parse("k.yaml", "kind: Component\n").is_err());
        assert!(Kustomization::parse("k.yaml", "resources: []\n").is_ok());
        assert!(Kustomization::parse("k.yaml", "kind: Foo\nresources: []\n").is_err());
        assert!(Kustomization::parse("k.yaml", "apiVersion: v1\nresources: []\n").is_err());
    }

    #[test]
    fn unsupported_field_is_named() {
        let err = Kustomization::parse("k.yaml", "helmCharts:\n- name: x\n").unwrap_err();
        assert!(err.message.contains("helmCharts"));
        assert_eq!(err.line, Some(1));
    }

    #[test]
    fn label_values_must_be_strings_and_deprecated_fields_merge() {
        assert!(Kustomization::parse("k.yaml", "commonLabels: {v: 1}\n").is_err());
        assert!(Kustomization::parse("k.yaml", "commonLabels:\n  v: yes\n").is_err());
        let k = Kustomization::parse(
            "k.yaml",
            "commonLabels: {v: '1'}\nbases: [a]\nresources: [b]\n",
        )
        .unwrap();
        assert_eq!(k.common_labels["v"], "1");
        assert_eq!(k.resources, vec!["b", "a"]);
    }
}
