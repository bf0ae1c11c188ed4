//! GitOps: make the cluster hold exactly the objects of a manifest project's commit.
//!
//! A [`Synchronizer`] owns one manifest project's sync: it checks the desired objects against the
//! agent's policy, applies them with server-side apply (Namespaces and CRDs first), waits for them
//! to become healthy, and prunes what left the manifests — recording every object it owns in an
//! inventory in the cluster so that a restarted agent knows what it owns. It never deletes
//! anything unless the whole commit applied: a failed check or apply prunes nothing.

mod apply;
pub mod capabilities;
mod health;
pub mod inventory;
mod kinds;
pub mod module;
pub mod object;
pub mod policy;
mod prune;
pub mod render;
mod sync;

pub use capabilities::ClusterCapabilities;
pub use inventory::InventoryId;
pub use object::{DesiredObject, ObjectRef};
pub use policy::KindFilter;
pub use render::{ProjectFiles, RenderError, RenderedProject, render_project};
pub use sync::{
    DEFAULT_CONCURRENCY, ObjectError, ObjectErrorKind, SyncOptions, SyncReport, Synchronizer,
};

/// The field manager Tether applies with. GitLab's agent uses `agentk`.
pub const FIELD_MANAGER: &str = "tether";
