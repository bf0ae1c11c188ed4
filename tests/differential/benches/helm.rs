//! Benchmark: the `helm` plugin against real helm (being written).
fn main() {}
