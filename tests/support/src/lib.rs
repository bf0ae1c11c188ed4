//! Real parts for Tether's tests.
//!
//! Owns starting and stopping the things tests run against — the local Kubernetes control plane
//! ([`cluster`]), Git servers speaking git:// and smart HTTP ([`git`]), Redis and Prometheus
//! ([`services`]), nginx as an HTTP/1.1-only reverse proxy ([`nginx`]) — and guarantees none of them outlives the test process, even one that panics or
//! is killed. It never fakes a behaviour: every helper here starts the real program.

pub mod cluster;
pub mod git;
pub mod nginx;
mod process;
pub mod services;

pub use cluster::{Cluster, TestNamespace, cluster};
pub use git::{GitServer, Repo};
pub use nginx::{Nginx, NginxOptions};
pub use services::{Prometheus, Redis};

/// The repository root, for finding `tests/kube` and fixtures from any crate's tests.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/support sits two levels below the repository root")
        .to_path_buf()
}
