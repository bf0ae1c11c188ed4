//! tether-agent: the half of Tether that runs inside a cluster.
//!
//! Feature modules, each with its own configuration and lifecycle, registered in one list by the
//! binary. So far: [`gitops`], which turns a rendered set of objects into cluster state, and
//! [`leader`], which makes sure only one replica does so.

pub mod gitops;
pub mod leader;
