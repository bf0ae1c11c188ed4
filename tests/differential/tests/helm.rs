//! Differential suite: the `helm` plugin against real helm (being written).
