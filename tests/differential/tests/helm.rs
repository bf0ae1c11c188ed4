//! Differential suite: the `helm` plugin against `helm template` (v4.2.4) on the charts written for it
//! (cases/helm/<chart>/, each rendered with its default values and with `<chart>.overrides.yaml` plus
//! the `--set` lines of `<chart>.set` when present) and on every chart of the shared corpus (default
//! values, then each of its `ci/*.yaml` and `values-*.yaml` files). Outputs must be equal as object sets; when helm
//! refuses a case the plugin must refuse it too. Every failing case is reported by name.

use std::path::{Path, PathBuf};
use tether_differential::{Oracle, Renderers, compare_as_set, corpus, parse_stream, repo_root};
use tether_plugin_host::RenderOutput;

const RELEASE: &str = "tether";
const NAMESPACE: &str = "apps";

/// One rendering to compare: a chart, the values files (relative to `root`) and `--set` lines.
#[derive(Debug)]
struct Case {
    name: String,
    root: PathBuf,
    chart: String,
    values_files: Vec<String>,
    set: Vec<String>,
}

impl Case {
    /// `helm template` of the case, run in `root`.
    fn oracle(&self) -> Result<String, String> {
        let mut args = vec![
            "template",
            RELEASE,
            self.chart.as_str(),
            "--namespace",
            NAMESPACE,
        ];
        for file in &self.values_files {
            args.extend(["--values", file.as_str()]);
        }
        for set in &self.set {
            args.extend(["--set", set.as_str()]);
        }
        Oracle::Helm.run(&self.root, &args)
    }

    fn plugin(&self, renderers: &Renderers) -> Result<RenderOutput, String> {
        let values_files = self.values_files.join("\n");
        let set = self.set.join("\n");
        let settings = [
            ("chart", self.chart.as_str()),
            ("values_files", values_files.as_str()),
            ("set", set.as_str()),
        ];
        renderers
            .render("helm", &self.root, &settings, NAMESPACE, RELEASE)
            .map_err(|e| e.to_string())
    }

    /// `None` when plugin and helm agree.
    fn check(&self, renderers: &Renderers) -> Option<String> {
        match (self.oracle(), self.plugin(renderers)) {
            (Ok(expected), Ok(actual)) => compare(&expected, &actual).err(),
            (Err(_), Err(_)) => None,
            (Ok(_), Err(error)) => Some(format!("helm renders it, the plugin fails: {error}")),
            (Err(error), Ok(_)) => Some(format!(
                "helm fails ({}), the plugin renders it",
                error.trim()
            )),
        }
    }
}

/// helm's output against the plugin's, as object sets. Objects of templates the plugin reports as
/// non-deterministic (`randAlphaNum` in a name, a generated certificate) can't be equal between two
/// renders; of those only the kinds and how many must agree.
fn compare(helm_output: &str, plugin: &RenderOutput) -> Result<(), String> {
    let random: Vec<&str> = plugin
        .warnings
        .iter()
        .filter(|w| w.message.contains("differs from one render to the next"))
        .filter_map(|w| w.location.as_ref().map(|l| l.file.as_str()))
        .collect();
    let is_random = |source: &str| {
        random
            .iter()
            .any(|file| source == *file || source.ends_with(&format!("/{file}")))
    };
    let mut expected = Vec::new();
    let mut expected_random = Vec::new();
    for (source, object) in sourced_objects(helm_output)? {
        if is_random(&source) {
            expected_random.push(kind_of(&object));
        } else {
            expected.push(object);
        }
    }
    let mut actual = Vec::new();
    let mut actual_random = Vec::new();
    for object in &plugin.objects {
        let source = object
            .origin
            .as_ref()
            .map(|o| o.file.as_str())
            .unwrap_or_default();
        if is_random(source) {
            actual_random.push(kind_of(&object.manifest));
        } else {
            actual.push(object.manifest.clone());
        }
    }
    expected_random.sort();
    actual_random.sort();
    if expected_random != actual_random {
        return Err(format!(
            "objects of non-deterministic templates differ in kind or number\n  oracle: {expected_random:?}\n  plugin: {actual_random:?}"
        ));
    }
    compare_as_set(&expected, &actual)
}

fn kind_of(object: &serde_json::Value) -> String {
    object["kind"].as_str().unwrap_or_default().to_owned()
}

/// The objects of `helm template`'s output with the template each came from (its `# Source:` line).
fn sourced_objects(output: &str) -> Result<Vec<(String, serde_json::Value)>, String> {
    let mut objects = Vec::new();
    for document in output.split("\n---\n") {
        let source = document
            .lines()
            .find_map(|l| l.strip_prefix("# Source: "))
            .unwrap_or_default()
            .to_owned();
        // The split took the line break of a block scalar ending the document.
        for object in parse_stream(&format!("{document}\n"))? {
            expand_list(&source, object, &mut objects);
        }
    }
    Ok(objects)
}

/// A `kind: List` is its items, as kubectl applies it (the plugin returns the items).
fn expand_list(
    source: &str,
    object: serde_json::Value,
    out: &mut Vec<(String, serde_json::Value)>,
) {
    match object.get("items") {
        Some(serde_json::Value::Array(items)) if kind_of(&object) == "List" => {
            for item in items {
                expand_list(source, item.clone(), out);
            }
        }
        _ => out.push((source.to_owned(), object)),
    }
}

/// The charts written for this suite.
fn own_cases() -> Vec<Case> {
    let root = repo_root().join("tests/differential/cases/helm");
    let mut cases = Vec::new();
    for chart in sorted_dirs(&root) {
        let overrides = format!("{chart}.overrides.yaml");
        let set_file = root.join(format!("{chart}.set"));
        cases.push(Case {
            name: format!("{chart} (defaults)"),
            root: root.clone(),
            chart: chart.clone(),
            values_files: Vec::new(),
            set: Vec::new(),
        });
        let values_files: Vec<String> = if root.join(&overrides).is_file() {
            vec![overrides]
        } else {
            Vec::new()
        };
        let set: Vec<String> = std::fs::read_to_string(&set_file)
            .map(|text| {
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if !values_files.is_empty() || !set.is_empty() {
            cases.push(Case {
                name: format!("{chart} (overrides)"),
                root: root.clone(),
                chart,
                values_files,
                set,
            });
        }
    }
    cases
}

/// The published charts of the shared corpus: defaults, then each of their override values files.
fn corpus_cases() -> Option<Vec<Case>> {
    let root = corpus("charts")?;
    let mut cases = Vec::new();
    for chart in sorted_dirs(&root) {
        let dir = root.join(&chart);
        cases.push(Case {
            name: format!("corpus {chart} (defaults)"),
            root: dir.clone(),
            chart: ".".into(),
            values_files: Vec::new(),
            set: Vec::new(),
        });
        // The chart's own override files: its CI values, and `values-*.yaml` beside values.yaml
        // (podinfo's values-prod.yaml).
        let yaml_files = |sub: &str, keep: &dyn Fn(&str) -> bool| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir.join(sub))
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.ends_with(".yaml") && keep(n))
                        .map(|n| if sub == "." { n } else { format!("{sub}/{n}") })
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        };
        let overrides = yaml_files("ci", &|_| true)
            .into_iter()
            .chain(yaml_files(".", &|n| n.starts_with("values-")));
        for file in overrides {
            cases.push(Case {
                name: format!("corpus {chart} ({file})"),
                root: dir.clone(),
                chart: ".".into(),
                values_files: vec![file],
                set: Vec::new(),
            });
        }
    }
    Some(cases)
}

fn sorted_dirs(root: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // `_errors/` holds charts both must refuse (see below).
        .filter(|name| !name.starts_with('_'))
        .collect();
    dirs.sort();
    dirs
}

fn run(cases: Vec<Case>, minimum: usize) {
    assert!(
        cases.len() >= minimum,
        "expected at least {minimum} cases, found {}",
        cases.len()
    );
    let renderers = Renderers::new();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            case.check(&renderers)
                .map(|why| format!("== {}\n{why}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from helm template:\n{}\n\nfailing: {}",
        failures.len(),
        cases.len(),
        failures.join("\n\n"),
        failures
            .iter()
            .map(|f| f
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("== "))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]
fn own_charts_render_like_helm_template() {
    // 20 charts, each with defaults and overrides.
    run(own_cases(), 40);
}

#[test]
fn corpus_charts_render_like_helm_template() {
    // 7 published charts with defaults, plus 62 ci/ values files and podinfo's values-prod.yaml.
    if let Some(cases) = corpus_cases() {
        run(cases, 70);
    }
}

/// Charts helm refuses: the plugin refuses them too, naming the file (relative to the source tree),
/// the line when there is one, and what is wrong.
#[test]
fn refused_charts_are_errors_naming_file_line_and_cause() {
    let root = repo_root().join("tests/differential/cases/helm/_errors");
    let cases: &[(&str, &[&str])] = &[
        (
            "unknown-function",
            &["unknown-function/templates/cm.yaml:6", "frobnicate"],
        ),
        (
            "fail",
            &["fail/templates/cm.yaml:5", "this chart needs .Values.url"],
        ),
        (
            "schema-violation",
            &["values.schema.json", "/replicas", "integer"],
        ),
        (
            "missing-dependency",
            &["missing-dependency/Chart.yaml", "postgresql", "charts/"],
        ),
        ("bad-output", &["bad-output/templates/cm.yaml", "YAML"]),
        (
            "values-method-not-a-value",
            &[
                "values-method-not-a-value/templates/cm.yaml:7",
                "error calling PathValue: \"image\" is not a value",
            ],
        ),
    ];
    let renderers = Renderers::new();
    let mut problems = Vec::new();
    for (chart, fragments) in cases {
        if Oracle::Helm
            .run(&root, &["template", RELEASE, chart])
            .is_ok()
        {
            problems.push(format!("{chart}: helm renders it"));
        }
        match renderers.render("helm", &root, &[("chart", chart)], NAMESPACE, RELEASE) {
            Ok(_) => problems.push(format!("{chart}: the plugin renders it")),
            Err(error) => {
                let message = error.to_string();
                for fragment in *fragments {
                    if !message.contains(fragment) {
                        problems.push(format!("{chart}: `{fragment}` missing from: {message}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
