//! `transformers:` entries: files holding configs of kustomize's built-in transformers
//! (`apiVersion: builtin`). Each runs with exactly the field specs it lists, as in kustomize. External
//! plugins can't run in the sandbox and are refused by kind.

use crate::error::{Error, Result};
use crate::fieldspec::{FieldSpec, UserFieldSpec};
use crate::kustomization::{Image, Replica, StringMap};
use crate::loader::Loader;
use crate::resource::ResMap;
use crate::transformers::{images, labels, namespace, prefix_suffix, replicas};
use serde::Deserialize;
use serde_json::Value;

/// The fields of the supported built-in configs; anything else (`unsetOnly`, `setRoleBindingSubjects`,
/// …) is refused rather than ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(default)]
    labels: StringMap,
    #[serde(default)]
    annotations: StringMap,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    suffix: String,
    #[serde(default)]
    field_specs: Vec<UserFieldSpec>,
    image_tag: Option<Image>,
    replica: Option<Replica>,
    metadata: Option<Value>,
    #[serde(default)]
    unset_only: bool,
    #[serde(default)]
    set_role_binding_subjects: String,
}

pub fn run(loader: &Loader, dir: &str, resources: &mut ResMap, entry: &str) -> Result<()> {
    let (file, text) = if entry.contains('\n') {
        (String::new(), entry.to_owned())
    } else {
        let path = loader.join(dir, entry)?;
        if loader.is_dir(&path) {
            return Err(Error::input(format!(
                "`{entry}` is a directory; the kustomize renderer reads transformer configs from files only"
            )));
        }
        (path.clone(), loader.read_within(dir, &path)?)
    };
    for document in crate::loader::documents(&file, &text)? {
        let at = |e: Error| {
            if file.is_empty() {
                e
            } else {
                e.in_file(&file).at_line(document.line)
            }
        };
        let api_version = document
            .value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = document
            .value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if api_version != "builtin" {
            return Err(at(Error::input(format!(
                "transformer `{api_version}` `{kind}` is an external plugin; only kustomize's built-in \
                 transformers (apiVersion: builtin) can run in the sandbox"
            ))));
        }
        let config: Config = serde_json::from_value(document.value.clone())
            .map_err(|e| at(Error::input(format!("invalid {kind} config: {e}"))))?;
        let specs: Vec<FieldSpec> = config
            .field_specs
            .iter()
            .cloned()
            .map(FieldSpec::from)
            .collect();
        match kind.as_str() {
            "LabelTransformer" => labels::apply(resources, &config.labels, &specs)?,
            "AnnotationsTransformer" => labels::apply(resources, &config.annotations, &specs)?,
            "PrefixTransformer" | "PrefixSuffixTransformer" if !config.prefix.is_empty() => {
                prefix_suffix::apply(
                    resources,
                    prefix_suffix::Affix::Prefix,
                    &config.prefix,
                    &specs,
                )?;
                prefix_suffix::apply(
                    resources,
                    prefix_suffix::Affix::Suffix,
                    &config.suffix,
                    &specs,
                )?;
            }
            "SuffixTransformer" | "PrefixSuffixTransformer" => {
                prefix_suffix::apply(
                    resources,
                    prefix_suffix::Affix::Suffix,
                    &config.suffix,
                    &specs,
                )?;
            }
            "NamespaceTransformer" => {
                let ns = config
                    .metadata
                    .as_ref()
                    .and_then(|m| m.get("namespace"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let subjects = match config.set_role_binding_subjects.as_str() {
                    "" | "defaultOnly" => namespace::Subjects::DefaultOnly,
                    "none" => namespace::Subjects::None,
                    "allServiceAccounts" => namespace::Subjects::AllServiceAccounts,
                    other => {
                        return Err(at(Error::input(format!(
                            "invalid value \"{other}\" for setRoleBindingSubjects: must be one of \"defaultOnly\", \"none\" or \"allServiceAccounts\""
                        ))));
                    }
                };
                let options = namespace::Options {
                    unset_only: config.unset_only,
                    subjects,
                };
                namespace::apply_with(resources, ns, &specs, options)?;
            }
            "ImageTagTransformer" => {
                let image = config
                    .image_tag
                    .ok_or_else(|| at(Error::input("ImageTagTransformer needs imageTag")))?;
                images::apply(resources, &image, &specs)?;
            }
            "ReplicaCountTransformer" => {
                let replica = config
                    .replica
                    .ok_or_else(|| at(Error::input("ReplicaCountTransformer needs replica")))?;
                replicas::apply(resources, &replica, &specs)?;
            }
            other => {
                return Err(at(Error::input(format!(
                    "built-in transformer `{other}` is not supported by the kustomize renderer in `transformers:`"
                ))));
            }
        }
    }
    Ok(())
}
