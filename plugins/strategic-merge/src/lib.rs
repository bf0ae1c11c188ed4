//! Strategic merge patch and JSON 6902 patch of Kubernetes objects, as `kustomize build` applies
//! them, with merge keys and strategies generated from the OpenAPI schema of a real control plane.
//!
//! Pure functions over `serde_json::Value`: no files, no network, no threads, so the same code runs
//! in the renderer plugins (wasm32-wasip2) and natively in tests.
//!
//! What `kustomize build` does around a patch is the caller's: putting back the kind, name and
//! namespace a patch may not change, and dropping an empty `metadata.annotations` from every
//! object it prints.

mod elements;
mod error;
mod json6902;
mod list;
mod merge;
mod openapi;
mod schema;
mod tables;

#[rustfmt::skip]
mod generated;

#[cfg(feature = "codegen")]
pub mod codegen;

#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod robustness_tests;

pub use error::{MergeError, PatchError, SchemaError};
pub use json6902::apply_json6902;
pub use schema::Schema;

use serde_json::Value;

/// `patch` (a strategic merge patch) merged into `base`, with the list semantics `schema` gives
/// the base's `apiVersion`/`kind`. Returns `Value::Null` when the patch deletes the whole object
/// (`$patch: delete` at its top); `$patch: replace` at the top leaves the object as it was, as in
/// kustomize.
///
/// Like kustomize, this keeps whatever the patch says about `metadata.name`, `kind` and
/// `metadata.namespace`; restoring them (kustomize does unless the patch allows changing them) is
/// the caller's decision.
pub fn strategic_merge(base: &Value, patch: &Value, schema: &Schema) -> Result<Value, MergeError> {
    let merger = merge::Merger { schema };
    let walked = merger.walk(
        merge::Sources {
            base: Some(base.clone()),
            patch: Some(patch.clone()),
            shape: None,
            aliased: false,
        },
        "",
    )?;
    Ok(match walked {
        merge::Walked::Cleared => Value::Null,
        merge::Walked::Base(merged) => merged,
        // kustomize keeps the object it merged into in place; a top-level `$patch: replace` makes
        // the walk build a new object from the patch, which kustomize then drops.
        merge::Walked::Patch(_) => base.clone(),
    })
}
