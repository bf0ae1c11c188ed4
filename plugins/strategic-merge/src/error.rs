//! The errors of this crate: each names the place (a JSON pointer into the object or patch) and what
//! was wrong there, so a renderer can show them to a person next to the patch file's name.

/// A strategic merge patch that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The object and the patch hold different kinds of value at the same place (a map in one, a
    /// list or scalar in the other); kustomize refuses these too.
    #[error("{path}: cannot merge a {found} into a {expected}")]
    KindMismatch {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    /// `$patch` holds something other than `merge`, `replace` or `delete`.
    #[error("{path}: unknown patch strategy '{value}' (expected merge, replace or delete)")]
    UnknownDirective { path: String, value: String },
    /// A merge-by-key list holds an element that cannot be matched (e.g. a map in a list of
    /// scalars).
    #[error("{path}: {reason}")]
    InvalidListElement { path: String, reason: String },
}

/// A JSON 6902 patch that is malformed or does not apply to its target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The operations are not a list of objects with `op` and `path`.
    #[error("operation {index}: {reason}")]
    Malformed { index: usize, reason: String },
    /// A `path` or `from` that is not a JSON pointer (it must be empty or start with `/`).
    #[error("operation {index} ({op}): '{pointer}' is not a JSON pointer")]
    InvalidPointer {
        index: usize,
        op: String,
        pointer: String,
    },
    /// The pointer names a place the document does not have.
    #[error("operation {index} ({op}): {pointer}: {reason}")]
    Missing {
        index: usize,
        op: String,
        pointer: String,
        reason: String,
    },
    /// A `test` operation whose value differs from the document's.
    #[error("operation {index} (test): {pointer}: value differs from the expected {expected}")]
    TestFailed {
        index: usize,
        pointer: String,
        expected: String,
    },
}

/// An OpenAPI document whose merge metadata cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The document has neither `definitions` (Swagger 2.0) nor is a CustomResourceDefinition.
    #[error("the OpenAPI document has no `definitions` map")]
    NoDefinitions,
    /// An extension holds a value of the wrong type.
    #[error("{pointer}: {reason}")]
    InvalidExtension { pointer: String, reason: String },
}
