//! Generates the tonic code of every feature's protobuf package. protoc comes from the
//! `protoc-bin-vendored` build-dependency, so the build needs no system package and no network.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/tether/agent/v1/agent.proto",
    "proto/tether/configuration/v1/configuration.proto",
    "proto/tether/gitops/v1/gitops.proto",
    "proto/tether/tunnel/v1/tunnel.proto",
    "proto/tether/drift/v1/drift.proto",
    "proto/tether/discovery/v1/discovery.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // tonic-build names only the listed files; a new .proto or a changed list must rebuild too.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=proto");
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // File contents travel as `bytes::Bytes` so chunks are sliced from one buffer, not copied.
    config.bytes([
        ".tether.gitops.v1.File.data",
        ".tether.configuration.v1.PluginFileChunk.data",
        ".tether.tunnel.v1.Message.data",
    ]);
    let protos: Vec<PathBuf> = PROTOS.iter().map(PathBuf::from).collect();
    tonic_prost_build::configure().compile_with_config(
        config,
        &protos,
        &[PathBuf::from("proto")],
    )?;
    Ok(())
}
