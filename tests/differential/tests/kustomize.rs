//! Differential suite: the `kustomize` plugin against real kustomize (being written).
