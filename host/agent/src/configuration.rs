//! Receives the agent's configuration from the server, one message per commit that changed it,
//! validates it with every module, and publishes the latest valid one. An invalid configuration
//! is logged at ERROR, reported to the server and ignored: the previous one stays in force. Keys
//! the agent accepts without acting on them (GitLab's, for features Tether lacks) are logged at
//! WARN by name and reported with the applied configuration.

use std::sync::Arc;
use std::time::Instant;

use tether_config::agent::{AgentMode, parse_agent_config};
use tether_rpc::agent::v1::ConfigurationReport;
use tether_rpc::configuration::v1::ConfigurationRequest;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connection::{Backoff, ServerConnection};
use crate::gitops::policy::narrow_mode;
use crate::metrics::Metrics;
use crate::module::{ActiveConfig, Module};

/// The configuration as the server sent it: checks that need no module.
pub fn parse(
    commit_id: &str,
    file: &str,
    yaml: &str,
    bound: &AgentMode,
) -> Result<ActiveConfig, String> {
    let config = parse_agent_config(yaml, file).map_err(|e| e.to_string())?;
    let mode =
        narrow_mode(bound, config.mode.as_ref()).map_err(|e| format!("{file}: mode: {e}"))?;
    Ok(ActiveConfig {
        commit_id: commit_id.to_owned(),
        file: file.to_owned(),
        config,
        mode,
    })
}

/// What the agent accepts in `active` without acting on it, one message per key.
pub fn warnings(active: &ActiveConfig) -> Vec<String> {
    active
        .config
        .gitlab_keys_ignored()
        .into_iter()
        .map(|key| {
            format!(
                "{}: `{key}` is a GitLab agent key for a feature Tether does not have; it is ignored",
                active.file
            )
        })
        .collect()
}

/// Follows the configuration stream until `stop`, reconnecting with backoff.
pub async fn follow(
    connection: ServerConnection,
    bound: AgentMode,
    modules: Vec<Arc<dyn Module>>,
    publish: watch::Sender<Option<Arc<ActiveConfig>>>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut last_commit = String::new();
    let mut failed_before = false;
    loop {
        let mut client = connection.configuration();
        let request = ConfigurationRequest {
            commit_id: last_commit.clone(),
        };
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            r = client.get_configuration(request) => r,
        };
        match stream {
            Ok(response) => {
                backoff.connected(Instant::now());
                metrics.set_server_connected(true);
                if failed_before {
                    // The server may be a new one that has never heard of this agent.
                    connection.stream_reopened();
                }
                let mut stream = response.into_inner();
                loop {
                    let message = tokio::select! {
                        _ = stop.cancelled() => return,
                        m = stream.message() => m,
                    };
                    match message {
                        Ok(Some(msg)) => {
                            // Resume after this commit whatever its verdict: it will not change.
                            last_commit = msg.commit_id.clone();
                            match parse(&msg.commit_id, &msg.file, &msg.config_yaml, &bound)
                                .and_then(|active| {
                                    for module in &modules {
                                        module
                                            .validate(&active)
                                            .map_err(|e| format!("{}: {e}", module.name()))?;
                                    }
                                    Ok(active)
                                }) {
                                Ok(active) => {
                                    tracing::info!(commit = %active.commit_id, file = %active.file, "configuration applied");
                                    let warnings = warnings(&active);
                                    for warning in &warnings {
                                        tracing::warn!(commit = %active.commit_id, file = %active.file, "{warning}");
                                    }
                                    Metrics::add(&metrics.config_commits, 1);
                                    publish.send_replace(Some(Arc::new(active)));
                                    connection
                                        .report_configuration(ConfigurationReport {
                                            commit_id: msg.commit_id,
                                            file: msg.file,
                                            error: String::new(),
                                            warnings,
                                        })
                                        .await;
                                }
                                Err(e) => {
                                    Metrics::add(&metrics.config_rejected, 1);
                                    tracing::error!(
                                        commit = %msg.commit_id,
                                        "configuration refused, the previous one stays in force: {e}"
                                    );
                                    connection
                                        .report_configuration(ConfigurationReport {
                                            commit_id: msg.commit_id,
                                            file: msg.file,
                                            error: e,
                                            warnings: Vec::new(),
                                        })
                                        .await;
                                }
                            }
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!("configuration stream: {}", status.message());
                            break;
                        }
                    }
                }
            }
            Err(status) => tracing::warn!(
                code = ?status.code(),
                "configuration stream: {}",
                status.message()
            ),
        }
        metrics.set_server_connected(false);
        failed_before = true;
        let delay = backoff.failed(Instant::now());
        tracing::warn!(retry_in = ?delay, "not connected to the server; the cluster stays as it is");
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_keys_for_missing_features_are_warned_about_by_name() {
        let file = ".gitlab/agents/edge/config.yaml";
        let yaml = "gitops:\n  manifest_projects:\n    - id: group/apps\n\
                    ci_access:\n  projects:\n    - id: group/app\n\
                    remote_development:\n  enabled: true\n";
        let active = parse("abc", file, yaml, &AgentMode::ClusterWide).unwrap();
        assert_eq!(
            warnings(&active),
            [
                format!(
                    "{file}: `ci_access` is a GitLab agent key for a feature Tether does not have; it is ignored"
                ),
                format!(
                    "{file}: `remote_development` is a GitLab agent key for a feature Tether does not have; it is ignored"
                ),
            ]
        );
        let unknown = parse("abc", file, "ci_acces: {}\n", &AgentMode::ClusterWide).unwrap_err();
        assert!(unknown.contains("unknown field `ci_acces`"), "{unknown}");
    }
}
