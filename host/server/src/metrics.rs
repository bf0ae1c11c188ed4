//! The server's metrics in Prometheus' text format. A handful of counters and gauges keyed by name and
//! labels; enough for `/metrics` without a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

type Key = (&'static str, Vec<(&'static str, String)>);

/// Counters (`*_total`) and gauges.
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<Key, i64>>,
}

/// Help text of every metric the server exports.
const HELP: &[(&str, &str, &str)] = &[
    (
        "tether_server_agents_connected",
        "gauge",
        "Agents with a heartbeat within three heartbeat intervals.",
    ),
    (
        "tether_server_auth_failures_total",
        "counter",
        "Calls refused for a missing, malformed, unknown or revoked token.",
    ),
    (
        "tether_server_auth_rate_limited_total",
        "counter",
        "Calls refused because their source failed authentication too often.",
    ),
    (
        "tether_server_git_fetches_total",
        "counter",
        "Fetches from remote repositories into their mirrors.",
    ),
    (
        "tether_server_git_fetch_timeouts_total",
        "counter",
        "Fetches interrupted because they did not finish within fetch_timeout.",
    ),
    (
        "tether_server_git_read_bytes_total",
        "counter",
        "Bytes of file content read from Git (manifests, configurations, plugin files).",
    ),
    (
        "tether_server_git_poll_errors_total",
        "counter",
        "Polls that failed (fetch or ref resolution).",
    ),
    (
        "tether_server_notifications_total",
        "counter",
        "Push events and notify commands that woke a repository's pollers.",
    ),
    (
        "tether_server_sync_set_reads_total",
        "counter",
        "Sets of files read from Git; agents watching the same repository, commit and paths share one.",
    ),
    (
        "tether_server_sync_sets_total",
        "counter",
        "Complete sets of files sent to agents.",
    ),
    (
        "tether_server_sync_limit_errors_total",
        "counter",
        "Syncs refused because a limit was exceeded.",
    ),
    (
        "tether_server_configurations_total",
        "counter",
        "Agent configurations sent.",
    ),
    (
        "tether_server_configuration_errors_total",
        "counter",
        "Invalid agent configuration commits (not sent).",
    ),
];

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], delta: i64) {
        let key = (
            name,
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        );
        *self.lock().entry(key).or_default() += delta;
    }

    pub fn set(&self, name: &'static str, labels: &[(&'static str, &str)], value: i64) {
        let key = (
            name,
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        );
        self.lock().insert(key, value);
    }

    /// Current value (tests and the HTTP API).
    pub fn get(&self, name: &'static str, labels: &[(&'static str, &str)]) -> i64 {
        let key = (
            name,
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        );
        self.lock().get(&key).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, i64>> {
        self.values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let values = self.lock();
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let mut any = false;
            for ((n, labels), value) in values.iter() {
                if n != name {
                    continue;
                }
                any = true;
                let _ = write!(out, "{name}");
                if !labels.is_empty() {
                    let rendered: Vec<String> = labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                        .collect();
                    let _ = write!(out, "{{{}}}", rendered.join(","));
                }
                let _ = writeln!(out, " {value}");
            }
            if !any && labels_free(name) {
                let _ = writeln!(out, "{name} 0");
            }
        }
        out
    }
}

/// Metrics exported without labels get a zero sample before their first change.
fn labels_free(name: &str) -> bool {
    matches!(
        name,
        "tether_server_agents_connected"
            | "tether_server_auth_failures_total"
            | "tether_server_auth_rate_limited_total"
    )
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.inc("tether_server_git_fetches_total", &[("repository", "a\"b")]);
        m.inc("tether_server_git_fetches_total", &[("repository", "a\"b")]);
        m.set("tether_server_agents_connected", &[], 3);
        let text = m.render();
        assert!(
            text.contains("tether_server_git_fetches_total{repository=\"a\\\"b\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tether_server_agents_connected 3\n"),
            "{text}"
        );
        assert!(
            text.contains("tether_server_auth_failures_total 0\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tether_server_sync_sets_total counter"),
            "{text}"
        );
    }
}
