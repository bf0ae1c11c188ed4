//! `patches:`, `patchesStrategicMerge:` and `patchesJson6902:` — strategic merge patches (by the patch's
//! own id, or to every object a `target` selects) and JSON 6902 operations, applied with
//! `tether-strategic-merge`. A patch that deletes an object (`$patch: delete`) removes it.

use crate::error::{Error, Result};
use crate::kustomization::Patch;
use crate::loader::Loader;
use crate::resource::{ResId, ResMap, Resource};
use crate::selector::CompiledSelector;
use serde_json::Value;
use tether_strategic_merge::{Schema, apply_json6902, strategic_merge};

#[derive(Debug)]
pub struct PatchContext<'a> {
    pub loader: &'a Loader,
    pub schema: &'a Schema,
    pub dir: &'a str,
    pub kustomization_file: &'a str,
}

/// The patch's text and the file it came from (the kustomization for an inline patch).
fn patch_text(context: &PatchContext<'_>, patch: &Patch) -> Result<(String, String)> {
    match (&patch.path, &patch.patch) {
        (Some(_), Some(_)) => Err(Error::input("patch and path can't be set at the same time")),
        (None, None) => Err(Error::input("must specify one of patch and path")),
        (None, Some(inline)) => Ok((inline.clone(), context.kustomization_file.to_owned())),
        (Some(relative), None) => {
            let path = context.loader.join(context.dir, relative)?;
            Ok((context.loader.read_within(context.dir, &path)?, path))
        }
    }
}

enum Parsed {
    StrategicMerge(Vec<Value>),
    Json6902(Value),
}

fn parse(file: &str, text: &str) -> Result<Parsed> {
    let documents = crate::loader::documents(file, text)?;
    if let [only] = documents.as_slice()
        && only.value.is_array()
    {
        return Ok(Parsed::Json6902(only.value.clone()));
    }
    if documents.is_empty() {
        return Err(Error::input("the patch is empty").in_file(file));
    }
    let mut patches = Vec::new();
    for document in documents {
        if !document.value.is_object() {
            return Err(Error::input(
                "unable to parse SM or JSON patch: expected a mapping or a list of operations",
            )
            .in_file(file)
            .at_line(document.line));
        }
        patches.push(document.value);
    }
    Ok(Parsed::StrategicMerge(patches))
}

/// One `patches:` (or `patchesJson6902:`) entry.
pub fn apply_patch(
    context: &PatchContext<'_>,
    resources: &mut ResMap,
    patch: &Patch,
    json_only: bool,
) -> Result<()> {
    let (text, file) = patch_text(context, patch)?;
    let allow_name = patch
        .options
        .get("allowNameChange")
        .copied()
        .unwrap_or(false);
    let allow_kind = patch
        .options
        .get("allowKindChange")
        .copied()
        .unwrap_or(false);
    let selector = patch
        .target
        .as_ref()
        .map(CompiledSelector::new)
        .transpose()?;
    match parse(&file, &text)? {
        Parsed::Json6902(operations) => {
            let Some(selector) = selector else {
                return Err(Error::input("must specify a target for JSON patch").in_file(&file));
            };
            for resource in resources
                .resources
                .iter_mut()
                .filter(|r| selector.matches(r))
            {
                resource.store_previous_id();
                let patched = apply_json6902(
                    &Value::Object(std::mem::take(&mut resource.object)),
                    &operations,
                );
                let original = resource.clone();
                match patched {
                    Ok(Value::Object(map)) => resource.object = map,
                    Ok(_) => {
                        return Err(
                            original.error("the JSON patch left something that is not an object")
                        );
                    }
                    Err(e) => {
                        return Err(Error::input(format!(
                            "JSON patch on {}: {e}",
                            original.cur_id()
                        ))
                        .in_file(&file));
                    }
                }
            }
            Ok(())
        }
        Parsed::StrategicMerge(_) if json_only => Err(Error::input(
            "patchesJson6902 needs a list of JSON patch operations",
        )
        .in_file(&file)),
        Parsed::StrategicMerge(patches) => {
            for body in patches {
                match &selector {
                    Some(selector) => {
                        let mut kept = Vec::with_capacity(resources.len());
                        for mut resource in std::mem::take(&mut resources.resources) {
                            if selector.matches(&resource) {
                                let mut body = body.clone();
                                // kustomize gives the copy the target's apiVersion (for the schema).
                                if let (Value::Object(b), Some(api)) =
                                    (&mut body, resource.object.get("apiVersion"))
                                {
                                    b.insert("apiVersion".into(), api.clone());
                                }
                                if !merge_into(
                                    &mut resource,
                                    &body,
                                    context.schema,
                                    allow_name,
                                    allow_kind,
                                    &file,
                                )? {
                                    continue;
                                }
                            }
                            kept.push(resource);
                        }
                        resources.resources = kept;
                    }
                    None => apply_by_id(
                        resources,
                        &body,
                        context.schema,
                        allow_name,
                        allow_kind,
                        &file,
                    )?,
                }
            }
            Ok(())
        }
    }
}

/// One `patchesStrategicMerge:` entry: inline YAML or a file.
pub fn apply_strategic_merge_entry(
    context: &PatchContext<'_>,
    resources: &mut ResMap,
    entry: &str,
) -> Result<()> {
    let inline = crate::loader::documents(context.kustomization_file, entry)
        .ok()
        .filter(|docs| !docs.is_empty() && docs.iter().all(|d| d.value.is_object()));
    let (patches, file) = match inline {
        Some(documents) => (
            documents.into_iter().map(|d| d.value).collect::<Vec<_>>(),
            context.kustomization_file.to_owned(),
        ),
        None => {
            let path = context.loader.join(context.dir, entry)?;
            let text = context.loader.read_within(context.dir, &path)?;
            match parse(&path, &text)? {
                Parsed::StrategicMerge(patches) => (patches, path),
                Parsed::Json6902(_) => {
                    return Err(Error::input("a JSON 6902 patch in patchesStrategicMerge; list it under patches with a target")
                        .in_file(&path));
                }
            }
        }
    };
    for body in patches {
        apply_by_id(resources, &body, context.schema, false, false, &file)?;
    }
    Ok(())
}

/// A strategic merge patch without a target applies to the one object with its id.
fn apply_by_id(
    resources: &mut ResMap,
    body: &Value,
    schema: &Schema,
    allow_name: bool,
    allow_kind: bool,
    file: &str,
) -> Result<()> {
    let id = match body {
        Value::Object(map) => ResId::of(map),
        _ => return Err(Error::input("a strategic merge patch must be a mapping").in_file(file)),
    };
    let matches = resources.matching_any_id(&id);
    let index = match matches.as_slice() {
        [index] => *index,
        [] => {
            return Err(Error::input(format!(
                "no resource matches strategic merge patch \"{id}\""
            ))
            .in_file(file));
        }
        _ => return Err(Error::input(format!("multiple matches for Id {id}")).in_file(file)),
    };
    if !merge_into(
        &mut resources.resources[index],
        body,
        schema,
        allow_name,
        allow_kind,
        file,
    )? {
        resources.resources.remove(index);
    }
    Ok(())
}

/// Merge `body` into `resource`, restoring what the patch may not change; `false` when the patch
/// deleted the object.
fn merge_into(
    resource: &mut Resource,
    body: &Value,
    schema: &Schema,
    allow_name: bool,
    allow_kind: bool,
    file: &str,
) -> Result<bool> {
    let name = resource.name().to_owned();
    let namespace = resource.namespace().to_owned();
    let kind = resource.kind().to_owned();
    if allow_name || allow_kind {
        resource.store_previous_id();
    }
    let base = Value::Object(std::mem::take(&mut resource.object));
    let merged = strategic_merge(&base, body, schema).map_err(|e| {
        Error::input(format!("strategic merge patch on {kind} {name}: {e}")).in_file(file)
    })?;
    let Value::Object(map) = merged else {
        return Ok(false);
    };
    if map.is_empty() {
        return Ok(false);
    }
    resource.object = map;
    if !allow_kind {
        resource.object.insert("kind".into(), Value::String(kind));
    }
    if !allow_name {
        resource.set_name(&name);
    }
    resource.set_namespace(&namespace);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::LoadRestrictor;
    use serde_json::json;

    fn map_of(values: Vec<Value>) -> ResMap {
        ResMap {
            resources: values
                .into_iter()
                .map(|v| Resource::new(v.as_object().cloned().expect("object"), None, None))
                .collect(),
        }
    }

    fn context(loader: &Loader) -> PatchContext<'_> {
        PatchContext {
            loader,
            schema: Schema::kubernetes(),
            dir: "",
            kustomization_file: "kustomization.yaml",
        }
    }

    #[test]
    fn inline_patches_apply_by_id_and_delete() {
        let loader = Loader::new("/nonexistent", LoadRestrictor::RootOnly);
        let mut map = map_of(vec![
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"type": "ClusterIP"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}}),
        ]);
        let entry =
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  type: NodePort\n";
        apply_strategic_merge_entry(&context(&loader), &mut map, entry).unwrap();
        assert_eq!(map.resources[0].object["spec"]["type"], "NodePort");
        let delete = "$patch: delete\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n";
        apply_strategic_merge_entry(&context(&loader), &mut map, delete).unwrap();
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn a_patch_for_a_missing_object_is_an_error() {
        let loader = Loader::new("/nonexistent", LoadRestrictor::RootOnly);
        let mut map = map_of(vec![
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}}),
        ]);
        let entry = "apiVersion: v1\nkind: Service\nmetadata:\n  name: nope\n";
        let err = apply_strategic_merge_entry(&context(&loader), &mut map, entry).unwrap_err();
        assert!(
            err.message.contains("no resource matches"),
            "{}",
            err.message
        );
    }

    #[test]
    fn json_patches_need_a_target() {
        let loader = Loader::new("/nonexistent", LoadRestrictor::RootOnly);
        let mut map = map_of(vec![
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}}),
        ]);
        let patch = Patch {
            patch: Some("- op: add\n  path: /spec\n  value: {}\n".into()),
            ..Default::default()
        };
        let err = apply_patch(&context(&loader), &mut map, &patch, false).unwrap_err();
        assert!(err.message.contains("target"), "{}", err.message);
    }
}
