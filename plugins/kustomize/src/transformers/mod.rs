//! The built-in transformers a kustomization configures with its own fields, each in its file.

pub mod images;
pub mod labels;
pub mod namespace;
pub mod prefix_suffix;
pub mod replicas;
