//! Text encodings of template values whose exact output charts depend on.

pub mod json;
mod scalar;
pub mod toml;
pub mod yaml;
mod yaml_in;

pub use json::{go_json_error, to_json};
pub use toml::to_toml;
pub use yaml::{to_yaml, to_yaml_pretty};
pub use yaml_in::from_yaml;
