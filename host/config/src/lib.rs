//! Tether's configuration schema: serde types with `deny_unknown_fields`, defaults as named constants next
//! to them, validated while parsing so errors carry the file and line. One module per section of the
//! agent's `config.yaml`.

pub mod agent;
pub mod drift;
pub mod duration;
pub mod gitops;
pub mod plugins;
pub mod prometheus;
pub mod server;
pub mod user_access;
pub mod yaml;
