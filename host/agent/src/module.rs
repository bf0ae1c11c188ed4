//! What a feature module is to the agent: something that checks a new configuration before any
//! module sees it, then runs against the latest valid configuration until told to stop.

use std::sync::Arc;

use futures::future::BoxFuture;
use tether_config::agent::{AgentConfig, AgentMode};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A configuration every module accepted, with the mode the agent's flags allow it.
#[derive(Debug, Clone)]
pub struct ActiveConfig {
    pub commit_id: String,
    /// The file in the config repository it came from.
    pub file: String,
    pub config: AgentConfig,
    /// The configuration's mode, narrowed by the agent's flags.
    pub mode: AgentMode,
}

/// The latest valid configuration; `None` until the first arrives.
pub type ConfigWatch = watch::Receiver<Option<Arc<ActiveConfig>>>;

pub trait Module: Send + Sync {
    fn name(&self) -> &'static str;

    /// Refuses a configuration this module cannot run with. A refusal by any module keeps the
    /// previous configuration in force for all of them.
    fn validate(&self, config: &ActiveConfig) -> Result<(), String>;

    /// Runs until `stop` is cancelled; reads the configuration from `config`.
    fn run(self: Arc<Self>, config: ConfigWatch, stop: CancellationToken)
    -> BoxFuture<'static, ()>;
}
