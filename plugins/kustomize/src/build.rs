//! One `kustomize build`: load the kustomization tree, accumulate resources, generators, components and
//! transformers level by level (kustomize's `KustTarget`), then at the top add content hashes, fix name
//! references, resolve vars and sort.

use crate::error::{Error, Result};
use crate::fieldspec::TransformerConfig;
use crate::generators::{GeneratedKind, GeneratorContext};
use crate::kustomization::{Kustomization, Var};
use crate::loader::{Loader, display_dir};
use crate::resource::{ResMap, Resource};
use crate::transformers::{images, labels, namespace, prefix_suffix, replicas};
use serde_json::Value;
use std::borrow::Cow;
use tether_strategic_merge::Schema;

/// What a build produced: the objects `kustomize build <dir>` prints, in its order, and the warnings it
/// prints to stderr (deprecated fields, by kustomization file).
#[derive(Debug)]
pub struct Built {
    pub resources: Vec<Resource>,
    pub warnings: Vec<(String, String)>,
}

/// `kustomize build <dir>`.
pub fn build(loader: &Loader, dir: &str) -> Result<Vec<Resource>> {
    build_with_warnings(loader, dir).map(|built| built.resources)
}

pub fn build_with_warnings(loader: &Loader, dir: &str) -> Result<Built> {
    // A Component at the top is built like a kustomization: kustomize applies it to its own
    // resources (only a Component listed under `resources:` is refused).
    let target = Target::load(loader, dir)?.ok_or_else(|| missing_kustomization(dir))?;
    let mut accumulator = Accumulator::default();
    let mut stack = Vec::new();
    let schema = target.schema(loader)?;
    target.accumulate(loader, &schema, &mut accumulator, &mut stack)?;
    let Accumulator {
        mut resources,
        config,
        vars,
        warnings: accumulator_warnings,
    } = accumulator;

    for resource in &mut resources.resources {
        if resource.needs_hash {
            let hash = crate::hash::content_hash(&resource.object);
            resource.store_previous_id();
            let name = format!("{}-{hash}", resource.name());
            resource.set_name(&name);
        }
    }
    crate::namereference::fix(&mut resources, &config)?;
    crate::vars::resolve(&mut resources, &vars, &config)?;
    resources.resources.retain(|r| {
        r.object
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get("config.kubernetes.io/local-config"))
            .and_then(Value::as_str)
            != Some("true")
    });
    for resource in &mut resources.resources {
        let mut object = Value::Object(std::mem::take(&mut resource.object));
        crate::yaml11::normalize_numbers(&mut object);
        if let Value::Object(map) = object {
            resource.object = map;
        }
    }
    crate::order::sort(
        &mut resources.resources,
        target.kustomization.sort_options.as_ref(),
    )?;
    Ok(Built {
        resources: resources.resources,
        warnings: accumulator_warnings,
    })
}

fn missing_kustomization(dir: &str) -> Error {
    Error::input(format!(
        "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'",
        display_dir(dir)
    ))
}

/// What a level hands to the level above.
#[derive(Debug, Default)]
struct Accumulator {
    resources: ResMap,
    config: TransformerConfig,
    vars: Vec<Var>,
    warnings: Vec<(String, String)>,
}

/// A kustomization (or component) directory.
#[derive(Debug)]
struct Target {
    dir: String,
    file: String,
    text: String,
    kustomization: Kustomization,
}

impl Target {
    fn load(loader: &Loader, dir: &str) -> Result<Option<Target>> {
        let Some(file) = loader.kustomization_file(dir)? else {
            return Ok(None);
        };
        let text = loader.read_text(&file)?;
        let kustomization = Kustomization::parse(&file, &text)?;
        Ok(Some(Target {
            dir: dir.to_owned(),
            file,
            text,
            kustomization,
        }))
    }

    /// The schema patches merge with: Kubernetes' built-in types, or only the document `openapi: {path}`
    /// names (kustomize reads it from the top kustomization only and replaces its built-in schema).
    fn schema(&self, loader: &Loader) -> Result<Cow<'static, Schema>> {
        let Some(openapi) = &self.kustomization.openapi else {
            return Ok(Cow::Borrowed(Schema::kubernetes()));
        };
        let Some(relative) = openapi.get("path") else {
            return Err(self.field_error(
                "openapi",
                Error::input("only `openapi: {path: …}` is supported by the kustomize renderer (not `version`)"),
            ));
        };
        let path = loader.join(&self.dir, relative)?;
        let text = loader
            .read_within(&self.dir, &path)
            .map_err(|e| self.field_error("openapi", e))?;
        let document = crate::loader::parse_yaml(&text).map_err(|(m, _)| {
            Error::input(format!("invalid OpenAPI document: {m}")).in_file(&path)
        })?;
        Schema::default()
            .with_openapi(&document)
            .map(Cow::Owned)
            .map_err(|e| Error::input(format!("invalid OpenAPI document: {e}")).in_file(&path))
    }

    /// An error about a field of this kustomization, at the field's line.
    fn field_error(&self, field: &str, error: Error) -> Error {
        // An error from a deeper file already says where it is.
        if error.file.is_some() {
            return error;
        }
        let error = error.context(field).in_file(&self.file);
        match crate::kustomization::key_line(&self.text, field) {
            Some(line) => error.at_line(line),
            None => error,
        }
    }

    fn accumulate(
        &self,
        loader: &Loader,
        schema: &Schema,
        acc: &mut Accumulator,
        stack: &mut Vec<String>,
    ) -> Result<()> {
        if stack.contains(&self.dir) {
            return Err(Error::input(format!(
                "cycle detected: `{}` includes itself (through {})",
                display_dir(&self.dir),
                stack.join(" -> ")
            )));
        }
        stack.push(self.dir.clone());
        for message in self.kustomization.deprecations() {
            acc.warnings
                .push((self.file.clone(), (*message).to_owned()));
        }
        let result = self.accumulate_inner(loader, schema, acc, stack);
        stack.pop();
        result
    }

    fn accumulate_inner(
        &self,
        loader: &Loader,
        schema: &Schema,
        acc: &mut Accumulator,
        stack: &mut Vec<String>,
    ) -> Result<()> {
        let k = &self.kustomization;
        // Objects of this level's files are appended together: one id index instead of one per file.
        let mut loaded = Vec::new();
        for entry in &k.resources {
            self.accumulate_resource(loader, schema, acc, &mut loaded, stack, entry)
                .map_err(|e| self.field_error("resources", e))?;
        }
        acc.resources
            .extend(loaded)
            .map_err(|e| self.field_error("resources", e))?;
        for entry in &k.configurations {
            let path = loader.join(&self.dir, entry)?;
            let text = loader
                .read_within(&self.dir, &path)
                .map_err(|e| self.field_error("configurations", e))?;
            acc.config.merge_file(&path, &text)?;
        }
        for entry in &k.crds {
            let path = loader.join(&self.dir, entry)?;
            let text = loader
                .read_within(&self.dir, &path)
                .map_err(|e| self.field_error("crds", e))?;
            crate::fieldspec::crds::merge_file(&mut acc.config, &path, &text)?;
        }
        self.run_generators(loader, acc)?;
        for entry in &k.components {
            self.accumulate_component(loader, schema, acc, stack, entry)
                .map_err(|e| self.field_error("components", e))?;
        }
        self.run_transformers(loader, schema, acc)?;
        for var in &k.vars {
            if acc.vars.iter().any(|v| v.name == var.name) {
                return Err(self.field_error(
                    "vars",
                    Error::input(format!("var '{}' already encountered", var.name)),
                ));
            }
            acc.vars.push(var.clone());
        }
        Ok(())
    }

    fn accumulate_resource(
        &self,
        loader: &Loader,
        schema: &Schema,
        acc: &mut Accumulator,
        loaded: &mut Vec<Resource>,
        stack: &mut Vec<String>,
        entry: &str,
    ) -> Result<()> {
        let path = loader.join(&self.dir, entry)?;
        if loader.is_dir(&path) {
            let sub = Target::load(loader, &path)?.ok_or_else(|| missing_kustomization(&path))?;
            if sub.kustomization.is_component() {
                return Err(Error::input(format!(
                    "expected kind != 'Component' for path '{}'",
                    display_dir(&path)
                ))
                .in_file(&sub.file));
            }
            let mut sub_acc = Accumulator::default();
            sub.accumulate(loader, schema, &mut sub_acc, stack)?;
            loaded.extend(sub_acc.resources.resources);
            acc.warnings.append(&mut sub_acc.warnings);
            acc.config.merge(&sub_acc.config);
            for var in sub_acc.vars {
                if acc.vars.iter().any(|v| v.name == var.name) {
                    return Err(Error::input(format!(
                        "var '{}' already encountered",
                        var.name
                    )));
                }
                acc.vars.push(var);
            }
            return Ok(());
        }
        if !loader.is_file(&path) {
            return Err(Error::input(format!(
                "accumulating resources: '{entry}': no such file or directory"
            )));
        }
        loader.check_restriction(&self.dir, &path)?;
        loaded.extend(crate::objects::load(loader, &path)?);
        Ok(())
    }

    fn accumulate_component(
        &self,
        loader: &Loader,
        schema: &Schema,
        acc: &mut Accumulator,
        stack: &mut Vec<String>,
        entry: &str,
    ) -> Result<()> {
        let path = loader.join(&self.dir, entry)?;
        let component = Target::load(loader, &path)?.ok_or_else(|| missing_kustomization(&path))?;
        if !component.kustomization.is_component() {
            return Err(Error::input(format!(
                "expected kind 'Component' for path '{}' but got 'Kustomization'",
                display_dir(&path)
            ))
            .in_file(&component.file));
        }
        component.accumulate(loader, schema, acc, stack)
    }

    fn run_generators(&self, loader: &Loader, acc: &mut Accumulator) -> Result<()> {
        let k = &self.kustomization;
        let context = GeneratorContext {
            loader,
            dir: &self.dir,
            kustomization_file: &self.file,
            global_options: k.generator_options.as_ref(),
        };
        let all = k
            .config_map_generator
            .iter()
            .enumerate()
            .map(|(i, args)| (GeneratedKind::ConfigMap, i, args))
            .chain(
                k.secret_generator
                    .iter()
                    .enumerate()
                    .map(|(i, args)| (GeneratedKind::Secret, i, args)),
            );
        for (kind, index, args) in all {
            let generated = crate::generators::generate(&context, kind, index, args)?;
            crate::generators::absorb(&mut acc.resources, generated)
                .map_err(|e| e.in_file(&self.file))?;
        }
        Ok(())
    }

    fn run_transformers(
        &self,
        loader: &Loader,
        schema: &Schema,
        acc: &mut Accumulator,
    ) -> Result<()> {
        let k = &self.kustomization;
        let config = acc.config.clone();
        let resources = &mut acc.resources;
        let patch_context = crate::patches::PatchContext {
            loader,
            schema,
            dir: &self.dir,
            kustomization_file: &self.file,
        };
        for (index, entry) in k.patches_strategic_merge.iter().enumerate() {
            crate::patches::apply_strategic_merge_entry(&patch_context, resources, entry).map_err(
                |e| self.field_error("patchesStrategicMerge", e.context(format!("[{index}]"))),
            )?;
        }
        for (index, patch) in k.patches.iter().enumerate() {
            crate::patches::apply_patch(&patch_context, resources, patch, false)
                .map_err(|e| self.field_error("patches", e.context(format!("[{index}]"))))?;
        }
        namespace::apply(resources, &k.namespace, &config.namespace)
            .map_err(|e| self.field_error("namespace", e))?;
        prefix_suffix::apply(
            resources,
            prefix_suffix::Affix::Prefix,
            &k.name_prefix,
            &config.name_prefix,
        )?;
        prefix_suffix::apply(
            resources,
            prefix_suffix::Affix::Suffix,
            &k.name_suffix,
            &config.name_suffix,
        )?;
        for label in &k.labels {
            labels::apply(
                resources,
                &label.pairs,
                &labels::label_specs(label, &config),
            )?;
        }
        labels::apply(resources, &k.common_labels, &config.common_labels)?;
        labels::apply(resources, &k.common_annotations, &config.common_annotations)?;
        for (index, patch) in k.patches_json6902.iter().enumerate() {
            crate::patches::apply_patch(&patch_context, resources, patch, true).map_err(|e| {
                self.field_error("patchesJson6902", e.context(format!("[{index}]")))
            })?;
        }
        for replica in &k.replicas {
            replicas::apply(resources, replica, &config.replicas)
                .map_err(|e| self.field_error("replicas", e))?;
        }
        for image in &k.images {
            images::apply(resources, image, &config.images)?;
        }
        if !k.replacements.is_empty() {
            crate::replacements::apply(loader, &self.dir, resources, &k.replacements)
                .map_err(|e| self.field_error("replacements", e))?;
        }
        for entry in &k.transformers {
            crate::configured::run(loader, &self.dir, resources, entry)
                .map_err(|e| self.field_error("transformers", e))?;
        }
        Ok(())
    }
}
