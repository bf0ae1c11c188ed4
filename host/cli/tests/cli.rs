//! `tether` as a user runs it: the real binary, real components, real directories.

use std::path::Path;
use std::process::{Command, Output};
use tether_plugin_host::artifacts;

fn tether(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .env("TETHER_CACHE_DIR", cache.path())
        .output()
        .expect("run tether")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn render_prints_the_raw_renderers_objects_as_yaml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: two\n",
    )
    .unwrap();
    let output = tether(&["render", dir.path().to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let documents: Vec<serde_yaml::Value> = stdout(&output)
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0]["kind"].as_str(), Some("ConfigMap"));
    assert_eq!(documents[1]["metadata"]["name"].as_str(), Some("two"));
}

#[test]
fn render_with_a_plugin_file_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let output = tether(&[
        "render",
        dir.path().to_str().unwrap(),
        "--plugin",
        artifacts::HELLO_PATH,
        "--set",
        "name=greeting",
        "--set",
        "colour=blue",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let object: serde_yaml::Value =
        serde_yaml::from_str(stdout(&output).trim_start_matches("---\n")).unwrap();
    assert_eq!(object["metadata"]["name"].as_str(), Some("greeting"));
    assert_eq!(object["data"]["colour"].as_str(), Some("blue"));
}

#[test]
fn render_errors_name_the_plugin_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n",
    )
    .unwrap();
    let output = tether(&["render", dir.path().to_str().unwrap()]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("plugin `raw`") && message.contains("bad.yaml:"),
        "{message}"
    );
    assert!(stdout(&output).is_empty(), "no partial output");

    let output = tether(&["render", dir.path().to_str().unwrap(), "--set", "novalue"]);
    assert!(
        stderr(&output).contains("--set novalue: expected KEY=VALUE"),
        "{}",
        stderr(&output)
    );
    let output = tether(&["render", dir.path().to_str().unwrap(), "--plugin", "helm"]);
    assert!(
        stderr(&output).contains("no plugin named `helm` is loaded (loaded: drift, raw)"),
        "{}",
        stderr(&output)
    );
    let output = tether(&["render", dir.path().to_str().unwrap(), "--plugin", "drift"]);
    assert!(
        stderr(&output).contains("plugin `drift` is a drift-detector, not a renderer"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plugin_check_reports_a_conforming_renderer() {
    let output = tether(&["plugin", "check", artifacts::HELLO_PATH]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = stdout(&output);
    let size = std::fs::metadata(artifacts::HELLO_PATH).unwrap().len();
    for expected in [
        "world:        renderer (tether:plugin@0.1.0)".to_owned(),
        "exports:      tether:plugin/render@0.1.0".to_owned(),
        format!("size:         {size} bytes"),
        "conforms:     yes".to_owned(),
    ] {
        assert!(
            report.contains(&expected),
            "missing {expected:?} in\n{report}"
        );
    }
    assert!(
        report.contains("compile time: ") && report.contains(" ms"),
        "{report}"
    );
    assert!(
        report.contains("imports:      tether:plugin/types@0.1.0, wasi:"),
        "imports are listed: {report}"
    );
}

#[test]
fn plugin_check_finds_the_world_of_other_plugins() {
    let output = tether(&["plugin", "check", artifacts::PROXY_PATH]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("world:        proxy"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn plugin_check_explains_a_component_that_does_not_conform() {
    let output = tether(&["plugin", "check", artifacts::WRONG_EXPORTS_PATH]);
    assert!(!output.status.success());
    let report = stdout(&output);
    assert!(report.contains("world:        renderer"), "{report}");
    assert!(report.contains("conforms:     no — plugin `tether_hostile_wrong_exports` does not implement the renderer world"), "{report}");

    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), b"not wasm").unwrap();
    let output = tether(&["plugin", "check", junk.path().to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        stdout(&output).contains("conforms:     no — plugin"),
        "{}",
        stdout(&output)
    );
    assert!(Path::new(artifacts::HELLO_PATH).exists());
}
