//! Waiting for the cluster to reach a state: each wait watches and returns as soon as it does, or
//! fails at [`DEADLINE`](crate::fleet::DEADLINE) naming what it waited for.

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::wait::{Condition, await_condition};

use crate::fleet::DEADLINE;

/// Until ConfigMap `name` satisfies `condition`.
pub async fn until(
    api: &Api<ConfigMap>,
    name: &str,
    condition: impl Condition<ConfigMap>,
) -> Result<()> {
    tokio::time::timeout(DEADLINE, await_condition(api.clone(), name, condition))
        .await
        .map_err(|_| anyhow::anyhow!("ConfigMap {name}: not reached within {DEADLINE:?}"))??;
    Ok(())
}

/// The ConfigMap exists with `data.value == value`.
pub fn has_value(value: &'static str) -> impl Condition<ConfigMap> {
    move |cm: Option<&ConfigMap>| {
        cm.and_then(|c| c.data.as_ref())
            .and_then(|d| d.get("value"))
            .is_some_and(|v| v == value)
    }
}

/// The ConfigMap does not exist.
pub fn gone(cm: Option<&ConfigMap>) -> bool {
    cm.is_none()
}
