//! What `tether render` prints (host/cli/src/yaml.rs, compiled in here as it is) reads back as the
//! same objects in a YAML 1.1 reader: kubectl's own (go-yaml v2 through sigs.k8s.io/yaml), the one
//! that applies it. kubectl reads every printed document offline (`patch --local` with an empty
//! patch prints what it read as JSON); the objects are those the plugins render for every golden
//! kustomize case and every own chart, and objects made of the strings YAML 1.1 reads as something
//! other than a string (`yes`, `off`, `y`, `0x1f`, `012`, `1_000`, `1e3`, `12:30`, dates, …) in
//! every position: keys, values, list items, multi-line text.

#[path = "../../../host/cli/src/yaml.rs"]
#[allow(dead_code, unreachable_pub)]
mod yaml;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use tether_differential::{Renderers, identity, objects_of, repo_root};
use tether_testkit::cluster::build_localkube;

/// Strings a YAML 1.1 reader resolves to something else when they stand unquoted, and strings
/// with the characters that decide between plain, quoted and block style.
const TRICKY: &[&str] = &[
    "yes",
    "Yes",
    "YES",
    "no",
    "No",
    "NO",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
    "y",
    "Y",
    "n",
    "N",
    "true",
    "False",
    "~",
    "null",
    "Null",
    "",
    "0x1f",
    "0X1F",
    "-0x1f",
    "012",
    "0o17",
    "0b101",
    "+12",
    "-7",
    "1_000",
    "1e3",
    "1E3",
    "-1.5e-3",
    "1.",
    ".5",
    "6.8523015e+5",
    ".inf",
    "-.Inf",
    ".NaN",
    "12:30",
    "190:20:30.15",
    "2024-01-02",
    "2001-12-14t21:59:43.10-05:00",
    "<<",
    "=",
    "-",
    "- x",
    "?",
    ": x",
    "a: b",
    "a #b",
    "trailing:",
    " lead",
    "trail ",
    "#x",
    "*x",
    "&x",
    "!x",
    "%x",
    "@x",
    "`x",
    "'x",
    "\"x",
    "{x}",
    "[x]",
    "|x",
    ">x",
    ",x",
    "---",
    "...",
    "tab\tin",
    "1.2.3",
    "v1",
    "-Xmx1g",
    "http://a.b/c?d=e#f",
    "nginx:1.25",
    "ünïcode",
    "a\u{85}b",
    "a\u{2028}b",
    "line\nbreak",
    "two\nlines\n",
    "kept\n\n",
    "\nleading",
    "  indented\nblock\n",
    "trailing space \nline",
    "crlf\r\nline",
    "only\n",
    "\n",
    "tab\n\tindented\n",
    "# not a comment\n- not a list\nkey: not a map\n",
];

/// kubectl from the local control plane's build (`localkube kubectl`).
fn kubectl() -> PathBuf {
    build_localkube().unwrap_or_else(|e| panic!("localkube: {e:#}"))
}

/// The objects as kubectl reads them from `text` (a YAML stream), in order.
fn read_with_kubectl(localkube: &Path, text: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, text).expect("write rendered.yaml");
    let output = Command::new(localkube)
        .arg("kubectl")
        .args([
            "patch", "--local", "--type", "merge", "-p", "{}", "-o", "json", "-f",
        ])
        .arg(&file)
        .env("KUBECONFIG", dir.path().join("none"))
        .output()
        .unwrap_or_else(|e| panic!("run localkube kubectl: {e}"));
    assert!(
        output.status.success(),
        "kubectl cannot read the printed YAML: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 from kubectl");
    let mut objects = Vec::new();
    for value in serde_json::Deserializer::from_str(&stdout).into_iter::<Value>() {
        let value = value.expect("JSON from kubectl");
        match value.get("items") {
            Some(Value::Array(items)) if value["kind"] == "List" => objects.extend(items.clone()),
            _ => objects.push(value),
        }
    }
    objects
}

/// What `tether render` prints for `objects`.
fn print(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|object| format!("---\n{}", yaml::to_document(object)))
        .collect()
}

/// Every object must come back from kubectl as it went in.
fn check_round_trip(localkube: &Path, objects: &[Value]) -> Vec<String> {
    let text = print(objects);
    let read = read_with_kubectl(localkube, &text);
    if read.len() != objects.len() {
        return vec![format!(
            "kubectl read {} objects from {} printed",
            read.len(),
            objects.len()
        )];
    }
    objects
        .iter()
        .zip(&read)
        .filter(|(printed, read)| printed != read)
        .map(|(printed, read)| {
            format!(
                "{} reads back differently\n--- printed\n{}--- kubectl read\n{}",
                identity(printed),
                yaml::to_document(printed),
                serde_json::to_string_pretty(read).unwrap_or_default()
            )
        })
        .collect()
}

/// ConfigMaps holding every tricky string as a key, a value, a label, a list item and a nested
/// value, plus the other scalar kinds beside them.
fn tricky_objects() -> Vec<Value> {
    let mut data = serde_json::Map::new();
    let mut labels = serde_json::Map::new();
    for (i, s) in TRICKY.iter().enumerate() {
        data.insert(format!("value-{i}"), json!(s));
        data.insert((*s).to_owned(), json!(format!("key-{i}")));
        if !s.contains(['\n', '\r']) {
            labels.insert(format!("l{i}"), json!(s));
        }
    }
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tricky-strings", "namespace": "yes", "labels": labels},
            "data": data,
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tricky-positions", "annotations": {"on": "off"}},
            "entries": TRICKY,
            "nested": [[TRICKY[0], [TRICKY[10], {}]], {"y": [], "n": {"0x1f": TRICKY}}],
            "scalars": [true, false, null, 0, -1, 1.5, 12345678901_i64, "true", "1.5", "null"],
        }),
    ]
}

#[test]
fn tricky_strings_read_back_as_printed_in_kubectl() {
    let failures = check_round_trip(&kubectl(), &tricky_objects());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every golden kustomize case and every own chart, printed as `tether render` prints them.
#[test]
fn rendered_cases_read_back_as_printed_in_kubectl() {
    let localkube = kubectl();
    let renderers = Renderers::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    let kustomize_cases = repo_root().join("tests/differential/cases/kustomize");
    for case in sorted_dirs(&kustomize_cases) {
        let dir = std::fs::read_to_string(case.join("build-dir"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| ".".to_owned());
        let mut settings = vec![("dir", dir.as_str())];
        if case.join("load-restrictor-none").exists() {
            settings.push(("load_restrictor", "none"));
        }
        if let Ok(output) = renderers.render("kustomize", &case, &settings, "default", "release") {
            checked += 1;
            failures.extend(check_round_trip(&localkube, &objects_of(&output)));
        }
    }
    let charts = repo_root().join("tests/differential/cases/helm");
    for chart in sorted_dirs(&charts) {
        let name = chart
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let settings = [("chart", name.as_str())];
        if let Ok(output) = renderers.render("helm", &charts, &settings, "apps", "tether") {
            checked += 1;
            failures.extend(check_round_trip(&localkube, &objects_of(&output)));
        }
    }
    assert!(checked > 80, "only {checked} cases rendered");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn sorted_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('_'))
        })
        .collect();
    dirs.sort();
    dirs
}
