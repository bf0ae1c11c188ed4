//! The strategic-merge crate's built-in schema (plugins/strategic-merge/src/generated.rs) is what
//! the local control plane serves: merge keys and strategies from its `/openapi/v2`, namespaced
//! flags from its discovery. The check fails when they drift apart; with `TETHER_UPDATE_SCHEMA=1` it
//! rewrites the file instead. Custom resources and aggregated APIs that other tests register on the
//! shared control plane are left out.

use std::collections::BTreeSet;
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

/// Groups the control plane serves for others: custom resources and aggregated APIs. Other tests
/// may register some on the shared control plane; they are no built-in type.
fn foreign_groups(localkube: &Path, kubeconfig: &Path) -> BTreeSet<String> {
    let crds = get_raw(
        localkube,
        kubeconfig,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    );
    let services = get_raw(
        localkube,
        kubeconfig,
        "/apis/apiregistration.k8s.io/v1/apiservices",
    );
    let items = |list: &Value| list["items"].as_array().cloned().unwrap_or_default();
    let custom = items(&crds)
        .into_iter()
        .filter_map(|crd| crd["spec"]["group"].as_str().map(str::to_owned));
    let aggregated = items(&services)
        .into_iter()
        .filter(|service| !service["spec"]["service"].is_null())
        .filter_map(|service| service["spec"]["group"].as_str().map(str::to_owned));
    custom.chain(aggregated).collect()
}

/// Every served kind of the built-in groups: `/api/v1` and every version of every group under
/// `/apis`.
fn discovery(
    localkube: &Path,
    kubeconfig: &Path,
    foreign: &BTreeSet<String>,
) -> Vec<DiscoveredKind> {
    let mut paths = vec!["/api/v1".to_owned()];
    let groups = get_raw(localkube, kubeconfig, "/apis");
    for group in groups["groups"].as_array().expect("/apis lists groups") {
        if foreign.contains(group["name"].as_str().unwrap_or_default()) {
            continue;
        }
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

/// `openapi` without the definitions of kinds in `foreign` groups.
fn without_foreign_kinds(mut openapi: Value, foreign: &BTreeSet<String>) -> Value {
    if let Some(definitions) = openapi["definitions"].as_object_mut() {
        definitions.retain(|_, definition| {
            let gvks = definition["x-kubernetes-group-version-kind"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            !gvks
                .iter()
                .any(|gvk| foreign.contains(gvk["group"].as_str().unwrap_or_default()))
        });
    }
    openapi
}

fn generated_path() -> PathBuf {
    tether_testkit::repo_root().join("plugins/strategic-merge/src/generated.rs")
}

#[test]
fn generated_schema_matches_the_control_plane() {
    let localkube = build_localkube().expect("localkube");
    let kubeconfig = cluster().kubeconfig();
    let foreign = foreign_groups(&localkube, kubeconfig);
    let openapi = without_foreign_kinds(get_raw(&localkube, kubeconfig, "/openapi/v2"), &foreign);
    let kinds = discovery(&localkube, kubeconfig, &foreign);
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
