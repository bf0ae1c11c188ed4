//! End-to-end tests of Tether live in `tests/` (one file per area: the control plane itself, the
//! agent's gitops loop); [`fleet`] assembles the real parts they and the benchmarks run against.

pub mod fleet;
pub mod prometheus;
pub mod tunnel;
pub mod wait;
