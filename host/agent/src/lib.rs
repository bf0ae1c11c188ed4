//! tether-agent: the half of Tether that runs inside a cluster.
//!
//! Feature modules, each with its own configuration and lifecycle, registered in one list by the
//! binary ([`app`]). So far: [`gitops`], which turns each commit of a manifest project into cluster
//! state, fed by [`configuration`] and guarded by [`leader`] so that only one replica applies.

pub mod app;
pub mod applied;
pub mod configuration;
pub mod connection;
pub mod discovery;
pub mod drift;
pub mod gitops;
pub mod leader;
pub mod metrics;
pub mod module;
pub mod plugin_files;
pub mod prometheus;
pub mod tunnel;
