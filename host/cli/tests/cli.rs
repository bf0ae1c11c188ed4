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
        "--setting",
        "name=greeting",
        "--setting",
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

    let output = tether(&[
        "render",
        dir.path().to_str().unwrap(),
        "--setting",
        "novalue",
    ]);
    assert!(
        stderr(&output).contains("--setting novalue: expected KEY=VALUE"),
        "{}",
        stderr(&output)
    );
    let output = tether(&["render", dir.path().to_str().unwrap(), "--set", "a=1"]);
    assert!(
        stderr(&output).contains("--values, --set and --set-string are for charts"),
        "{}",
        stderr(&output)
    );
    let output = tether(&["render", dir.path().to_str().unwrap(), "--plugin", "nope"]);
    assert!(
        stderr(&output)
            .contains("no plugin named `nope` is loaded (loaded: drift, helm, kustomize, raw)"),
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

fn write(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn objects(output: &Output) -> Vec<serde_yaml::Value> {
    assert!(output.status.success(), "{}", stderr(output));
    stdout(output)
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect()
}

#[test]
fn render_a_chart_with_release_namespace_values_files_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("web");
    write(
        &chart,
        "Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    );
    write(
        &chart,
        "values.yaml",
        "colour: red\nsize: small\nreplicas: 1\n",
    );
    write(
        &chart,
        "templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-web\n  namespace: {{ .Release.Namespace }}\ndata:\n  colour: {{ .Values.colour | quote }}\n  size: {{ .Values.size | quote }}\n  replicas: {{ .Values.replicas | quote }}\n",
    );
    write(dir.path(), "prod.yaml", "colour: blue\nsize: large\n");
    let output = tether(&[
        "render",
        chart.to_str().unwrap(),
        "--release",
        "shop",
        "--namespace",
        "apps",
        "--values",
        dir.path().join("prod.yaml").to_str().unwrap(),
        "--set",
        "size=huge",
        "--set-string",
        "replicas=3",
    ]);
    let objects = objects(&output);
    assert_eq!(objects.len(), 1, "{objects:?}");
    let cm = &objects[0];
    assert_eq!(cm["metadata"]["name"].as_str(), Some("shop-web"));
    assert_eq!(cm["metadata"]["namespace"].as_str(), Some("apps"));
    assert_eq!(
        cm["data"]["colour"].as_str(),
        Some("blue"),
        "from the values file"
    );
    assert_eq!(cm["data"]["size"].as_str(), Some("huge"), "--set wins");
    assert_eq!(cm["data"]["replicas"].as_str(), Some("3"));
}

#[test]
fn render_an_overlay_that_reaches_its_base_in_the_same_repository() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    write(
        dir.path(),
        "base/kustomization.yaml",
        "resources:\n  - cm.yaml\n",
    );
    write(
        dir.path(),
        "base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n",
    );
    write(
        dir.path(),
        "overlays/prod/kustomization.yaml",
        "resources:\n  - ../../base\nnamePrefix: prod-\n",
    );
    let output = tether(&["render", dir.path().join("overlays/prod").to_str().unwrap()]);
    let objects = objects(&output);
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(
        objects[0]["metadata"]["name"].as_str(),
        Some("prod-settings")
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

// `plugin check` is the tool for vetting untrusted components: a component built to make compiling
// slow and hungry is stopped at either limit, in the compiler process `tether` starts of itself.
#[test]
fn plugin_check_stops_a_compilation_at_its_memory_and_time_limits() {
    let dir = tempfile::tempdir().unwrap();
    let hungry = dir.path().join("hungry.wasm");
    std::fs::write(
        &hungry,
        tether_plugin_host::hostile::expensive_component(60_000),
    )
    .unwrap();
    let output = tether(&[
        "--compile-memory",
        "256Mi",
        "plugin",
        "check",
        hungry.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        stdout(&output).contains(
            "conforms:     no — plugin `hungry` was not compiled: over the compile memory limit: \
             compiling needed more than 256Mi of memory"
        ),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );

    let slow = dir.path().join("slow.wasm");
    std::fs::write(
        &slow,
        tether_plugin_host::hostile::expensive_component(200_000),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let output = tether(&[
        "--compile-timeout",
        "2s",
        "--compile-memory",
        "8Gi",
        "plugin",
        "check",
        slow.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        stdout(&output).contains("over the compile time limit"),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

// Loading is most of a small render's time: a call loads the one plugin it renders with.
#[test]
fn render_loads_only_the_plugin_it_uses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["render", dir.path().to_str().unwrap()])
        .env("TETHER_CACHE_DIR", dir.path().join("cache"))
        .env("TETHER_LOG", "tether_plugin_host=debug")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let log = stderr(&output);
    let loaded: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("plugin loaded"))
        .collect();
    assert_eq!(loaded.len(), 1, "{log}");
    assert!(loaded[0].contains("raw"), "{log}");
}
