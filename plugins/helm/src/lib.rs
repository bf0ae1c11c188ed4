//! The built-in `helm` renderer: renders a chart directory of the source tree the way `helm template`
//! (helm v4) does, and returns the objects it prints.
//!
//! Settings (all optional):
//! - `chart`: the chart directory (or a packaged `.tgz`) relative to the source root (default `.`);
//! - `release`, `namespace`: `.Release.Name`/`.Release.Namespace` (default: the context's);
//! - `values_files`: newline-separated values files relative to the source root, merged in order;
//! - `values`: a YAML stream, each document a values mapping merged after the files;
//! - `set`, `set_string`: newline-separated `--set` / `--set-string` expressions, applied last;
//! - `include_crds`, `skip_tests`, `no_hooks`: `true`/`false`, as the `helm template` flags.
//!
//! What it never does: reach a cluster (`lookup` returns nothing, as in `helm template`), fetch a
//! dependency or a remote schema, or write anywhere.

mod archive;
mod chart;
mod error;
mod files;
mod functions;
mod manifest;
mod objects;
mod render;
mod schema;
mod strvals;
mod values;
mod yaml11;

use chart::Chart;
use error::ChartError;
use manifest::Manifest;
use serde_json::Value as Json;
use std::path::Path;
use tether_plugin_sdk::{
    Diagnostic, Location, Object, PluginError, RenderOutput, RenderRequest, Renderer, Settings,
};
use values::{Notes, Values};

const SETTINGS: &[&str] = &[
    "chart",
    "release",
    "namespace",
    "values_files",
    "values",
    "set",
    "set_string",
    "include_crds",
    "skip_tests",
    "no_hooks",
];

const DEFAULT_CHART: &str = ".";

struct Helm;

impl Renderer for Helm {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        let options = RenderOptions::from_request(&request)?;
        let root = Path::new(&request.context.source_dir);
        let rendered = render_chart(root, &options)?;
        Ok(rendered.into_output())
    }
}

tether_plugin_sdk::renderer!(Helm);

/// The settings, checked once.
#[derive(Debug)]
struct RenderOptions {
    chart: String,
    release: String,
    namespace: String,
    values_files: Vec<String>,
    values: Option<String>,
    set: Vec<String>,
    set_string: Vec<String>,
    include_crds: bool,
    skip_tests: bool,
    no_hooks: bool,
    cluster_version: String,
    api_versions: Vec<String>,
}

impl RenderOptions {
    fn from_request(request: &RenderRequest) -> Result<RenderOptions, PluginError> {
        let settings = &request.settings;
        settings.expect_only(SETTINGS)?;
        let lines = |key: &str| -> Vec<String> {
            settings
                .get(key)
                .map(|v| {
                    v.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let chart = settings
            .get("chart")
            .map(|c| c.trim().trim_end_matches('/'))
            .filter(|c| !c.is_empty())
            .unwrap_or(DEFAULT_CHART)
            .to_owned();
        if chart.starts_with('/') || chart.split('/').any(|s| s == "..") {
            return Err(PluginError::invalid_setting(format!(
                "setting `chart`: `{chart}` must be a directory inside the source tree (relative, without `..`)"
            )));
        }
        Ok(RenderOptions {
            chart,
            release: settings
                .get("release")
                .filter(|r| !r.is_empty())
                .unwrap_or(&request.context.release_name)
                .to_owned(),
            namespace: settings
                .get("namespace")
                .filter(|n| !n.is_empty())
                .unwrap_or(&request.context.namespace)
                .to_owned(),
            values_files: lines("values_files"),
            values: settings.get("values").map(str::to_owned),
            set: lines("set"),
            set_string: lines("set_string"),
            include_crds: flag(settings, "include_crds")?,
            skip_tests: flag(settings, "skip_tests")?,
            no_hooks: flag(settings, "no_hooks")?,
            cluster_version: request.context.cluster_version.clone(),
            api_versions: request.context.api_versions.clone(),
        })
    }
}

fn flag(settings: &Settings, key: &str) -> Result<bool, PluginError> {
    Ok(settings.parse::<bool>(key)?.unwrap_or(false))
}

/// The result of one render: objects in `helm template`'s order and what the user should know.
#[derive(Debug)]
struct ChartOutput {
    objects: Vec<(Json, String)>,
    /// What the user should know, and the file it is about when there is one.
    warnings: Vec<(String, Option<String>)>,
}

impl ChartOutput {
    fn into_output(self) -> RenderOutput {
        RenderOutput {
            objects: self
                .objects
                .iter()
                .map(|(object, origin)| Object::from_json(object, Some(Location::file(origin))))
                .collect(),
            warnings: self
                .warnings
                .into_iter()
                .map(|(message, file)| Diagnostic::new(message, file.map(Location::file)))
                .collect(),
        }
    }
}

fn render_chart(root: &Path, options: &RenderOptions) -> Result<ChartOutput, PluginError> {
    let mut chart = Chart::load(&root.join(&options.chart), &options.chart)?;
    if chart.library {
        return Err(ChartError::at(
            render::source_path(&chart.origin, "Chart.yaml"),
            "library charts are not installable",
        )
        .into());
    }
    for dependency in &chart.dependencies {
        if !chart.subcharts.iter().any(|s| s.name == dependency.name) {
            return Err(ChartError::at(
                render::source_path(&chart.origin, "Chart.yaml"),
                format!(
                    "found in Chart.yaml, but missing in charts/ directory: {} (vendor it into charts/ with `helm dependency build`)",
                    dependency.name
                ),
            )
            .into());
        }
    }
    check_kube_version(&chart, &options.cluster_version)?;
    let user = user_values(root, options)?;
    let mut notes = Notes::new();
    values::process_enabled(&mut chart, &user, "", &mut notes)?;
    values::process_imports(&mut chart, &mut notes)?;
    let coalesced = values::coalesce(&chart, user, "", false, &mut notes)?;
    let mut warnings = Vec::new();
    validate_schemas(&chart, &coalesced, &mut warnings)?;

    let capabilities = objects::Capabilities::new(&options.cluster_version, &options.api_versions);
    let release = objects::release(&options.release, &options.namespace);
    let rendered = render::render(
        &chart,
        &coalesced,
        release,
        tether_gotemplate::Value::Object(std::sync::Arc::new(capabilities)),
    )?;
    let mut warnings: Vec<(String, Option<String>)> =
        warnings.into_iter().map(|w| (w, None)).collect();
    for (file, calls) in &rendered.nondeterministic {
        warnings.push((
            format!("calls {calls}: the output differs from one render to the next"),
            Some(file.clone()),
        ));
    }

    let files = rendered
        .files
        .into_iter()
        .filter(|f| !f.name.ends_with("NOTES.txt"))
        .map(|f| (f.name, f.content))
        .collect();
    let (generic, hooks) = manifest::sort(files).map_err(|mut e| {
        e.file = rendered.sources.get(&e.file).cloned().unwrap_or(e.file);
        e
    })?;
    let origin = |m: &Manifest| {
        rendered
            .sources
            .get(&m.source)
            .cloned()
            .unwrap_or_else(|| m.source.clone())
    };
    let mut objects = Vec::new();
    if options.include_crds {
        collect_crds(&chart, &mut objects)?;
    }
    let hooks = hooks
        .iter()
        .filter(|h| !options.no_hooks && (!options.skip_tests || !manifest::is_test_hook(h)));
    for m in generic.iter().chain(hooks) {
        let mut expanded = Vec::new();
        manifest::expand_lists(&m.object, &mut expanded);
        objects.extend(expanded.into_iter().map(|object| (object, origin(m))));
    }
    notes.sort();
    notes.dedup();
    warnings.extend(notes.into_iter().map(|n| (n, None)));
    Ok(ChartOutput { objects, warnings })
}

/// A chart's `kubeVersion` constraint against the cluster's version (helm template's default when the
/// cluster is unknown), checked with the template engine's `semverCompare` so both agree on ranges.
fn check_kube_version(chart: &Chart, cluster_version: &str) -> Result<(), ChartError> {
    let Some(constraint) = chart.metadata.get("kubeVersion").and_then(Json::as_str) else {
        return Ok(());
    };
    if constraint.trim().is_empty() {
        return Ok(());
    }
    let version = objects::kube_version(cluster_version);
    let mut check = tether_gotemplate::Templates::new();
    let chart_yaml = render::source_path(&chart.origin, "Chart.yaml");
    let mut data = std::collections::BTreeMap::new();
    data.insert(
        "constraint".to_owned(),
        tether_gotemplate::Value::str(constraint),
    );
    data.insert(
        "version".to_owned(),
        tether_gotemplate::Value::str(version.as_str()),
    );
    let compatible = check
        .parse("kubeVersion", "{{ semverCompare .constraint .version }}")
        .and_then(|()| check.execute("kubeVersion", &tether_gotemplate::Value::map(data)))
        .map_err(|e| {
            ChartError::at(
                &chart_yaml,
                format!("kubeVersion `{constraint}`: {}", e.message),
            )
        })?;
    if compatible != "true" {
        return Err(ChartError::at(
            chart_yaml,
            format!(
                "chart requires kubeVersion: {constraint} which is incompatible with Kubernetes {version}"
            ),
        ));
    }
    Ok(())
}

/// The CRDs of `crds/` of the chart and its enabled subcharts, as helm's `CRDObjects`.
fn collect_crds(chart: &Chart, objects: &mut Vec<(Json, String)>) -> Result<(), ChartError> {
    for file in chart.crds() {
        let path = render::source_path(&chart.origin, &file.name);
        let text = String::from_utf8_lossy(&file.data);
        for object in manifest::documents(&text, &path)? {
            let mut expanded = Vec::new();
            manifest::expand_lists(&object, &mut expanded);
            objects.extend(expanded.into_iter().map(|o| (o, path.clone())));
        }
    }
    for sub in &chart.subcharts {
        collect_crds(sub, objects)?;
    }
    Ok(())
}

/// The user's values: files, then `values` documents, then `--set`, then `--set-string`.
fn user_values(root: &Path, options: &RenderOptions) -> Result<Values, PluginError> {
    let mut user = Values::new();
    for file in &options.values_files {
        if file.starts_with('/') || file.split('/').any(|s| s == "..") {
            return Err(PluginError::invalid_setting(format!(
                "setting `values_files`: `{file}` must be a path inside the source tree"
            )));
        }
        let text = std::fs::read_to_string(root.join(file)).map_err(|e| {
            PluginError::invalid_setting(format!(
                "setting `values_files`: cannot read `{file}`: {e}"
            ))
        })?;
        user = values::merge_maps(user, values::parse_values(&text, file)?);
    }
    if let Some(text) = &options.values {
        let given = values::parse_values(text, "values").map_err(|e| {
            PluginError::invalid_setting(format!(
                "setting `values`{}: {}",
                e.line.map(|l| format!(", line {l}")).unwrap_or_default(),
                e.message
            ))
        })?;
        user = values::merge_maps(user, given);
    }
    for (key, expressions, strings_only) in [
        ("set", &options.set, false),
        ("set_string", &options.set_string, true),
    ] {
        for expression in expressions {
            strvals::parse_into(expression, &mut user, strings_only).map_err(|e| {
                PluginError::invalid_setting(format!("setting `{key}`: `{expression}`: {e}"))
            })?;
        }
    }
    Ok(user)
}

/// helm's `ValidateAgainstSchema`: each chart's schema against its part of the values.
fn validate_schemas(
    chart: &Chart,
    values: &Values,
    warnings: &mut Vec<String>,
) -> Result<(), ChartError> {
    let mut report = String::new();
    schema_report(chart, values, warnings, &mut report)?;
    if report.is_empty() {
        return Ok(());
    }
    Err(ChartError::at(
        render::source_path(&chart.origin, "values.schema.json"),
        format!(
            "values don't meet the specifications of the schema(s) in the following chart(s):\n{report}"
        ),
    ))
}

fn schema_report(
    chart: &Chart,
    values: &Values,
    warnings: &mut Vec<String>,
    report: &mut String,
) -> Result<(), ChartError> {
    if let Some(schema) = &chart.schema {
        let path = render::source_path(&chart.origin, "values.schema.json");
        let schema: Json = serde_json::from_slice(schema)
            .map_err(|e| ChartError::at_line(&path, e.line(), format!("invalid JSON: {e}")))?;
        let errors = schema::validate(&schema, &Json::Object(values.clone()), warnings);
        if !errors.is_empty() {
            report.push_str(&format!("{}:\n{}\n", chart.name, errors.join("\n")));
        }
    }
    for sub in &chart.subcharts {
        match values.get(&sub.name) {
            None | Some(Json::Null) => {}
            Some(Json::Object(sub_values)) => schema_report(sub, sub_values, warnings, report)?,
            Some(other) => report.push_str(&format!(
                "{}:\ninvalid type for values: expected object (map), got {other}\n",
                sub.name
            )),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cases() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/differential/cases/helm")
    }

    fn options(chart: &str) -> RenderOptions {
        RenderOptions {
            chart: chart.into(),
            release: "r".into(),
            namespace: "ns".into(),
            values_files: Vec::new(),
            values: None,
            set: Vec::new(),
            set_string: Vec::new(),
            include_crds: false,
            skip_tests: false,
            no_hooks: false,
            cluster_version: String::new(),
            api_versions: Vec::new(),
        }
    }

    fn names(output: &ChartOutput) -> Vec<String> {
        output
            .objects
            .iter()
            .map(|(o, _)| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn values_documents_then_set_then_set_string() {
        let mut options = options("crds");
        options.values = Some("widgets: [a, b]\n---\nwidgets: [c]\n".into());
        options.set = vec!["widgets={d,e}".into()];
        options.set_string = vec!["widgets[1]=f".into()];
        let output = render_chart(&cases(), &options).unwrap();
        assert_eq!(names(&output), ["Widget/d", "Widget/f"]);
    }

    #[test]
    fn crds_hooks_and_tests_follow_the_flags() {
        let mut options = options("crds");
        options.include_crds = true;
        let output = render_chart(&cases(), &options).unwrap();
        assert_eq!(
            names(&output),
            ["CustomResourceDefinition/widgets.example.com", "Widget/a"]
        );
        assert_eq!(output.objects[0].1, "crds/crds/widget.yaml");

        let all = render_chart(&cases(), &options_for_hooks(false, false)).unwrap();
        assert_eq!(
            names(&all),
            [
                "ServiceAccount/hooks",
                "ConfigMap/annotated-but-not-a-hook",
                "ConfigMap/post",
                "Pod/r-test",
                "Job/migrate"
            ]
        );
        let no_tests = render_chart(&cases(), &options_for_hooks(true, false)).unwrap();
        assert!(!names(&no_tests).contains(&"Pod/r-test".to_owned()));
        let no_hooks = render_chart(&cases(), &options_for_hooks(false, true)).unwrap();
        assert_eq!(
            names(&no_hooks),
            ["ServiceAccount/hooks", "ConfigMap/annotated-but-not-a-hook"]
        );
    }

    fn options_for_hooks(skip_tests: bool, no_hooks: bool) -> RenderOptions {
        RenderOptions {
            skip_tests,
            no_hooks,
            ..options("hooks")
        }
    }

    #[test]
    fn cluster_version_decides_capabilities_and_kube_version() {
        let mut options = options("capabilities");
        options.cluster_version = "1.19.3".into();
        let error = render_chart(&cases(), &options).unwrap_err();
        let message = format!("{error:?}");
        assert!(
            message.contains("incompatible with Kubernetes v1.19.3"),
            "{message}"
        );
        options.cluster_version = "1.31.0".into();
        options.api_versions = vec!["v1".into(), "policy/v1beta1".into()];
        let output = render_chart(&cases(), &options).unwrap();
        let data = &output.objects[0].0["data"];
        assert_eq!(data["gitVersion"], "v1.31.0");
        assert_eq!(data["hasBeta"], "true");
        assert_eq!(data["hasWanted"], "false");
    }

    #[test]
    fn a_packaged_chart_renders_like_its_directory() {
        let output =
            render_chart(&cases(), &options("subchart-tgz/charts/child-0.1.2.tgz")).unwrap();
        assert_eq!(names(&output), ["Deployment/r-child"]);
        assert_eq!(
            output.objects[0].1,
            "subchart-tgz/charts/child-0.1.2.tgz!templates/deploy.yaml"
        );
    }

    #[test]
    fn settings_are_checked() {
        let request = |settings: Vec<(&str, &str)>| RenderRequest {
            settings: Settings::new(
                settings
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            context: tether_plugin_sdk::Context {
                source_dir: "/src".into(),
                namespace: "ns".into(),
                release_name: "rel".into(),
                cluster_version: String::new(),
                api_versions: Vec::new(),
            },
        };
        assert!(RenderOptions::from_request(&request(vec![("chart", "../x")])).is_err());
        assert!(RenderOptions::from_request(&request(vec![("valuesFiles", "a.yaml")])).is_err());
        assert!(RenderOptions::from_request(&request(vec![("include_crds", "maybe")])).is_err());
        let options = RenderOptions::from_request(&request(vec![("set", "a=1\n\nb=2\n")])).unwrap();
        assert_eq!(options.set, ["a=1", "b=2"]);
        assert_eq!(options.release, "rel");
        assert_eq!(options.chart, ".");
    }

    /// Render the chart `$TETHER_HELM_CHART` of the tree `$TETHER_HELM_ROOT` (values files in `$TETHER_HELM_VALUES`, newline
    /// separated, relative to the root) natively and print the objects as JSON lines: a quick loop
    /// against `helm template` while developing; the differential suite is the real check.
    #[test]
    #[ignore = "developer tool: needs TETHER_HELM_ROOT"]
    fn render_chart_from_environment() {
        let Ok(dir) = std::env::var("TETHER_HELM_ROOT") else {
            return;
        };
        let options = RenderOptions {
            chart: std::env::var("TETHER_HELM_CHART").unwrap_or_else(|_| ".".into()),
            release: "tether".into(),
            namespace: "apps".into(),
            values_files: std::env::var("TETHER_HELM_VALUES")
                .map(|v| v.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            values: None,
            set: std::env::var("TETHER_HELM_SET")
                .map(|v| v.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            set_string: Vec::new(),
            include_crds: false,
            skip_tests: false,
            no_hooks: false,
            cluster_version: String::new(),
            api_versions: Vec::new(),
        };
        match render_chart(Path::new(&dir), &options) {
            Ok(output) => {
                for (object, _) in output.objects {
                    println!("OBJECT {object}");
                }
                for (warning, file) in output.warnings {
                    println!("WARNING {warning} ({file:?})");
                }
            }
            Err(e) => println!("ERROR {e:?}"),
        }
    }
}
