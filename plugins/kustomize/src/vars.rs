//! `vars:` (being written).

use crate::error::{Error, Result};
use crate::fieldspec::TransformerConfig;
use crate::kustomization::Var;
use crate::resource::ResMap;

pub fn resolve(_resources: &mut ResMap, vars: &[Var], _config: &TransformerConfig) -> Result<()> {
    if vars.is_empty() {
        return Ok(());
    }
    Err(Error::input(
        "`vars` is not supported by the kustomize renderer yet",
    ))
}
