//! What a feature module is to the agent: something that checks a new configuration before any
//! module sees it, then runs against the latest valid configuration until told to stop; and the
//! supervisor that restarts a module that dies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use tether_config::agent::{AgentConfig, AgentMode};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connection::Backoff;

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

/// Which modules are down and why, for `/readyz`.
#[derive(Debug, Default)]
pub struct ModuleHealth {
    down: watch::Sender<BTreeMap<&'static str, String>>,
}

impl ModuleHealth {
    /// The modules that are not running, with why.
    pub fn down(&self) -> BTreeMap<&'static str, String> {
        self.down.borrow().clone()
    }

    /// Changes whenever a module goes down or comes back.
    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<&'static str, String>> {
        self.down.subscribe()
    }

    fn set(&self, module: &'static str, down: Option<String>) {
        self.down.send_if_modified(|map| match down {
            Some(why) => map.insert(module, why.clone()) != Some(why),
            None => map.remove(module).is_some(),
        });
    }
}

/// Runs `module` until `stop`, restarting it with backoff whenever it ends or panics before that.
/// While it is down, `health` says so and the agent is not ready: a module that silently died
/// would leave the agent "ready" while nothing syncs.
pub async fn supervise(
    module: Arc<dyn Module>,
    config: ConfigWatch,
    stop: CancellationToken,
    health: Arc<ModuleHealth>,
) {
    let name = module.name();
    let mut backoff = Backoff::default();
    loop {
        backoff.connected(Instant::now());
        // A task of its own so that a panic ends only this run; awaited below, so it has an owner.
        let run = tokio::spawn(module.clone().run(config.clone(), stop.child_token()));
        let ended = run.await;
        if stop.is_cancelled() {
            return;
        }
        let why = match ended {
            Ok(()) => "it stopped on its own".to_owned(),
            Err(e) if e.is_panic() => format!("it panicked: {}", panic_message(e.into_panic())),
            Err(e) => e.to_string(),
        };
        let delay = backoff.failed(Instant::now());
        tracing::error!(module = name, retry_in = ?delay, "module down, restarting it: {why}");
        health.set(name, Some(why));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        health.set(name, None);
    }
}

/// The message a panic was raised with, when it is text.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_owned(), |s| (*s).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures::FutureExt;

    use super::*;

    /// Panics on its first run, then runs until stopped.
    #[derive(Debug, Default)]
    struct FragileModule {
        runs: AtomicU32,
    }

    impl Module for FragileModule {
        fn name(&self) -> &'static str {
            "fragile"
        }

        fn validate(&self, _: &ActiveConfig) -> Result<(), String> {
            Ok(())
        }

        fn run(self: Arc<Self>, _: ConfigWatch, stop: CancellationToken) -> BoxFuture<'static, ()> {
            async move {
                if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("lost its footing");
                }
                stop.cancelled().await;
            }
            .boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_module_that_dies_is_reported_down_and_restarted() {
        let module = Arc::new(FragileModule::default());
        let health = Arc::new(ModuleHealth::default());
        let mut changes = health.subscribe();
        let stop = CancellationToken::new();
        let supervisor = tokio::spawn(supervise(
            module.clone(),
            watch::channel(None).1,
            stop.clone(),
            health.clone(),
        ));
        let down = changes.wait_for(|d| !d.is_empty()).await.unwrap().clone();
        assert_eq!(
            down.get("fragile").map(String::as_str),
            Some("it panicked: lost its footing")
        );
        changes.wait_for(BTreeMap::is_empty).await.unwrap();
        assert_eq!(module.runs.load(Ordering::SeqCst), 2);
        stop.cancel();
        supervisor.await.unwrap();
        assert!(health.down().is_empty());
    }
}
