//! Benchmark: the `kustomize` plugin against real kustomize (being written).
fn main() {}
