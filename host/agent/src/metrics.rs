//! The agent's metrics, in Prometheus' text format on `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Completed syncs (any result), for whoever waits for the next one.
    syncs: watch::Sender<u64>,
    /// Whether the configuration stream to the server is up right now.
    server_connected: watch::Sender<bool>,
    pub syncs_succeeded: AtomicU64,
    pub syncs_failed: AtomicU64,
    pub objects_applied: AtomicU64,
    pub objects_pruned: AtomicU64,
    pub config_commits: AtomicU64,
    pub config_rejected: AtomicU64,
    pub drift: crate::drift::report::DriftMetrics,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts a finished sync of any result.
    pub fn sync_finished(&self) {
        self.syncs.send_modify(|n| *n += 1);
    }

    /// The configuration stream opened (true) or failed (false).
    pub fn set_server_connected(&self, connected: bool) {
        self.server_connected
            .send_if_modified(|c| std::mem::replace(c, connected) != connected);
    }

    /// Whether the agent is connected to the server, changing as it connects and loses it.
    pub fn subscribe_server_connected(&self) -> watch::Receiver<bool> {
        self.server_connected.subscribe()
    }

    /// Changes whenever a sync finishes; holds how many have.
    pub fn subscribe_syncs(&self) -> watch::Receiver<u64> {
        self.syncs.subscribe()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP tether_agent_syncs_total Manifest project syncs, by result.\n\
             # TYPE tether_agent_syncs_total counter\n\
             tether_agent_syncs_total{{result=\"succeeded\"}} {}\n\
             tether_agent_syncs_total{{result=\"failed\"}} {}",
            get(&self.syncs_succeeded),
            get(&self.syncs_failed)
        );
        let _ = writeln!(
            out,
            "# HELP tether_agent_server_connected Whether the agent's stream to tether-server is up.\n\
             # TYPE tether_agent_server_connected gauge\n\
             tether_agent_server_connected {}",
            u8::from(*self.server_connected.borrow())
        );
        for (name, help, value) in [
            (
                "tether_agent_objects_applied_total",
                "Objects created or changed by server-side apply.",
                get(&self.objects_applied),
            ),
            (
                "tether_agent_objects_pruned_total",
                "Objects deleted because they left the manifests.",
                get(&self.objects_pruned),
            ),
            (
                "tether_agent_configurations_total",
                "Configuration commits applied.",
                get(&self.config_commits),
            ),
            (
                "tether_agent_configurations_rejected_total",
                "Configuration commits refused as invalid.",
                get(&self.config_rejected),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        out.push_str(&self.drift.render());
        out
    }
}
