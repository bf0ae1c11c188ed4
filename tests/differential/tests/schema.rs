//! The strategic-merge crate's built-in schema (plugins/strategic-merge/src/generated.rs) is what
//! the local control plane serves: merge keys and strategies from its `/openapi/v2`, namespaced
//! flags from its discovery. The check fails when they drift apart; with `TETHER_UPDATE_SCHEMA=1` it
//! rewrites the file instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tether_strategic_merge::codegen::{DiscoveredKind, discovered_kinds, generate};
use tether_testkit::cluster::{build_localkube, cluster};

/// Set to rewrite generated.rs from the live control plane instead of checking it.
const UPDATE_ENV: &str = "TETHER_UPDATE_SCHEMA";

/// `GET path` on the control plane, parsed.
fn get_raw(localkube: &Path, kubeconfig: &Path, path: &str) -> Value {
    let output = Command::new(localkube)
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "--raw", path])
        .output()
        .unwrap_or_else(|e| panic!("run localkube kubectl for {path}: {e}"));
    assert!(
        output.status.success(),
        "GET {path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Every served kind: `/api/v1` and every version of every group under `/apis`.
fn discovery(localkube: &Path, kubeconfig: &Path) -> Vec<DiscoveredKind> {
    let mut paths = vec!["/api/v1".to_owned()];
    let groups = get_raw(localkube, kubeconfig, "/apis");
    for group in groups["groups"].as_array().expect("/apis lists groups") {
        for version in group["versions"]
            .as_array()
            .expect("a group lists versions")
        {
            let group_version = version["groupVersion"].as_str().expect("groupVersion");
            paths.push(format!("/apis/{group_version}"));
        }
    }
    paths
        .iter()
        .flat_map(|path| discovered_kinds(&get_raw(localkube, kubeconfig, path)))
        .collect()
}

fn generated_path() -> PathBuf {
    tether_testkit::repo_root().join("plugins/strategic-merge/src/generated.rs")
}

#[test]
fn generated_schema_matches_the_control_plane() {
    let localkube = build_localkube().expect("localkube");
    let kubeconfig = cluster().kubeconfig();
    let openapi = get_raw(&localkube, kubeconfig, "/openapi/v2");
    let kinds = discovery(&localkube, kubeconfig);
    assert!(
        kinds
            .iter()
            .any(|k| k.api_version == "apps/v1" && k.kind == "Deployment"),
        "discovery lists apps/v1 Deployment"
    );
    let source = generate(&openapi, &kinds).expect("the control plane's OpenAPI document");

    let path = generated_path();
    if std::env::var_os(UPDATE_ENV).is_some() {
        std::fs::write(&path, &source).expect("write generated.rs");
        return;
    }
    let committed = std::fs::read_to_string(&path).expect("read generated.rs");
    assert!(
        committed == source,
        "{} differs from what the control plane serves; run \
         `{UPDATE_ENV}=1 cargo test -p tether-differential --test schema` and commit the result",
        path.display()
    );
}
