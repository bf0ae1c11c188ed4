//! `replacements:` (being written).

use crate::error::{Error, Result};
use crate::loader::Loader;
use crate::resource::ResMap;
use serde_json::Value;

pub fn apply(
    _loader: &Loader,
    _dir: &str,
    _resources: &mut ResMap,
    _replacements: &[Value],
) -> Result<()> {
    Err(Error::input(
        "`replacements` is not supported by the kustomize renderer yet",
    ))
}
