//! A chart as helm's loader sees it: `Chart.yaml` (v1 or v2, plus a v1 chart's `requirements.yaml`),
//! default values, the schema, templates, the other files, and the subcharts of `charts/` (directories
//! and `.tgz` archives), loaded recursively.
//!
//! Owns reading the chart from the source tree and from archives; never evaluates values or templates.

use crate::archive;
use crate::error::ChartError;
use crate::values::{self, Values};
use serde_json::{Map, Value};
use std::path::Path;

const STRING_FIELDS: &[&str] = &[
    "apiVersion",
    "name",
    "version",
    "appVersion",
    "kubeVersion",
    "description",
    "type",
    "home",
    "icon",
];

/// One file of a chart: its path inside the chart (`/`-separated) and its bytes.
#[derive(Debug, Clone)]
pub struct ChartFile {
    pub name: String,
    pub data: Vec<u8>,
}

/// A dependency declared in `Chart.yaml` (or a v1 chart's `requirements.yaml`).
#[derive(Debug, Clone, Default)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub alias: String,
    pub import_values: Vec<Value>,
    pub enabled: bool,
}

/// A loaded chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `Chart.yaml` as parsed, for `.Chart` (field names as helm's `Metadata` struct has them).
    pub metadata: Map<String, Value>,
    pub api_version: String,
    pub name: String,
    pub library: bool,
    pub dependencies: Vec<Dependency>,
    /// `values.yaml` (empty when the chart has none).
    pub values: Values,
    pub schema: Option<Vec<u8>>,
    pub templates: Vec<ChartFile>,
    pub files: Vec<ChartFile>,
    /// The loaded subcharts (after dependency processing: the enabled ones, under their alias).
    pub subcharts: Vec<Chart>,
    /// Where the chart was found, relative to the source tree, for error messages (`charts/x.tgz` for
    /// an archive, with the path inside the archive after `!`).
    pub origin: String,
}

impl Chart {
    /// Load a chart directory or a packaged chart (`.tgz`), as `helm template` takes either.
    pub fn load(path: &Path, origin: &str) -> Result<Chart, ChartError> {
        if path.is_file() && origin.ends_with(".tgz") {
            let data = std::fs::read(path)
                .map_err(|e| ChartError::at(origin, format!("cannot read the chart: {e}")))?;
            let files = archive::unpack(&data)
                .map_err(|e| ChartError::at(origin, format!("cannot unpack the chart: {e}")))?;
            return Chart::from_files(files, &format!("{origin}!"));
        }
        Chart::load_dir(path, origin)
    }

    /// Load the chart directory `dir` (a path under the source tree; `origin` is how errors name it).
    pub fn load_dir(dir: &Path, origin: &str) -> Result<Chart, ChartError> {
        let mut files = Vec::new();
        collect(dir, "", &mut files)
            .map_err(|e| ChartError::at(origin, format!("cannot read the chart: {e}")))?;
        let ignore = files
            .iter()
            .find(|f| f.name == ".helmignore")
            .map(|f| HelmIgnore::parse(&String::from_utf8_lossy(&f.data)))
            .unwrap_or_default();
        files.retain(|f| !ignore.ignored(&f.name));
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Chart::from_files(files, origin)
    }

    /// Build a chart from its files, the way helm's `LoadFiles` sorts them into parts.
    pub fn from_files(files: Vec<ChartFile>, origin: &str) -> Result<Chart, ChartError> {
        let join = |name: &str| {
            if origin.is_empty() || origin == "." {
                name.to_owned()
            } else {
                format!("{origin}/{name}")
            }
        };
        let chart_yaml = files
            .iter()
            .find(|f| f.name == "Chart.yaml")
            .ok_or_else(|| ChartError::at(origin, "Chart.yaml file is missing"))?;
        let mut metadata = parse_metadata(&chart_yaml.data, &join("Chart.yaml"))?;
        // Go unmarshals these into string fields; YAML may have written `version: 1.0`.
        for key in STRING_FIELDS {
            if let Some(value @ (Value::Number(_) | Value::Bool(_))) = metadata.get(*key) {
                let text = value.to_string();
                metadata.insert((*key).to_owned(), Value::String(text));
            }
        }
        let api_version = match metadata.get("apiVersion").and_then(Value::as_str) {
            Some(v) if !v.is_empty() => v.to_owned(),
            _ => "v1".to_owned(),
        };
        metadata.insert("apiVersion".into(), Value::String(api_version.clone()));
        let name = metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            return Err(ChartError::at(
                join("Chart.yaml"),
                "validation: chart.metadata.name is required",
            ));
        }
        if metadata
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            return Err(ChartError::at(
                join("Chart.yaml"),
                format!("validation: chart.metadata.version is required (chart `{name}`)"),
            ));
        }
        if api_version != "v1" && api_version != "v2" {
            return Err(ChartError::at(
                join("Chart.yaml"),
                format!("apiVersion `{api_version}` is not valid: helm knows v1 and v2"),
            ));
        }
        let library = metadata.get("type").and_then(Value::as_str) == Some("library");

        let mut chart = Chart {
            metadata,
            api_version,
            name,
            library,
            dependencies: Vec::new(),
            values: Values::new(),
            schema: None,
            templates: Vec::new(),
            files: Vec::new(),
            subcharts: Vec::new(),
            origin: origin.to_owned(),
        };
        // Subchart files grouped by their first path segment under charts/, in file order.
        let mut subcharts: Vec<(String, Vec<ChartFile>)> = Vec::new();
        for file in files {
            match file.name.as_str() {
                "Chart.yaml" | "Chart.lock" | "requirements.lock" => {}
                "values.yaml" => {
                    let text = String::from_utf8_lossy(&file.data);
                    chart.values = values::parse_values(&text, &join("values.yaml"))?;
                }
                "values.schema.json" => chart.schema = Some(file.data),
                "requirements.yaml" => {
                    // Only v1 charts declare dependencies here; helm reads it into the metadata either way.
                    let requirements = parse_metadata(&file.data, &join("requirements.yaml"))?;
                    if let Some(deps) = requirements.get("dependencies") {
                        chart.metadata.insert("dependencies".into(), deps.clone());
                    }
                    if chart.api_version == "v1" {
                        chart.files.push(file);
                    }
                }
                name if name.starts_with("templates/") => chart.templates.push(file),
                name if name.starts_with("charts/") && !name.ends_with(".prov") => {
                    let rest = &name["charts/".len()..];
                    let (sub, inner) = rest.split_once('/').unwrap_or((rest, ""));
                    let sub = sub.to_owned();
                    let entry = ChartFile {
                        name: inner.to_owned(),
                        data: file.data,
                    };
                    match subcharts.iter_mut().find(|(n, _)| *n == sub) {
                        Some((_, list)) => list.push(entry),
                        None => subcharts.push((sub, vec![entry])),
                    }
                }
                _ => chart.files.push(file),
            }
        }
        chart.dependencies = dependencies_of(&chart.metadata, &join("Chart.yaml"))?;
        for (sub, files) in subcharts {
            if sub.starts_with(['_', '.']) {
                continue;
            }
            let sub_origin = join(&format!("charts/{sub}"));
            let loaded = if sub.ends_with(".tgz") {
                let Some(file) = files.into_iter().find(|f| f.name.is_empty()) else {
                    continue;
                };
                let inner = archive::unpack(&file.data).map_err(|e| {
                    ChartError::at(&sub_origin, format!("cannot unpack the subchart: {e}"))
                })?;
                Chart::from_files(inner, &format!("{sub_origin}!"))?
            } else {
                let files = files.into_iter().filter(|f| !f.name.is_empty()).collect();
                Chart::from_files(files, &sub_origin)?
            };
            chart.subcharts.push(loaded);
        }
        Ok(chart)
    }

    /// The chart's CRD files (`crds/`), in file order.
    pub fn crds(&self) -> impl Iterator<Item = &ChartFile> {
        self.files.iter().filter(|f| f.name.starts_with("crds/"))
    }
}

/// Read a directory recursively into chart files (paths relative to the chart root).
fn collect(dir: &Path, prefix: &str, out: &mut Vec<ChartFile>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&entry.path(), &path, out)?;
        } else {
            out.push(ChartFile {
                data: std::fs::read(entry.path())?,
                name: path,
            });
        }
    }
    Ok(())
}

fn parse_metadata(data: &[u8], file: &str) -> Result<Map<String, Value>, ChartError> {
    let text = String::from_utf8_lossy(data);
    let value: Value = serde_yaml::from_str(&text).map_err(|e| ChartError::yaml(file, &e))?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(ChartError::at(file, "expected a mapping")),
    }
}

fn dependencies_of(
    metadata: &Map<String, Value>,
    file: &str,
) -> Result<Vec<Dependency>, ChartError> {
    let Some(list) = metadata.get("dependencies") else {
        return Ok(Vec::new());
    };
    let Value::Array(list) = list else {
        if list.is_null() {
            return Ok(Vec::new());
        }
        return Err(ChartError::at(file, "`dependencies` must be a list"));
    };
    let text = |d: &Value, key: &str| match d.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    list.iter()
        .map(|d| {
            let tags = match d.get("tags") {
                Some(Value::Array(tags)) => tags
                    .iter()
                    .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            let import_values = match d.get("import-values") {
                Some(Value::Array(v)) => v.clone(),
                _ => Vec::new(),
            };
            let dependency = Dependency {
                name: text(d, "name"),
                version: text(d, "version"),
                repository: text(d, "repository"),
                condition: text(d, "condition"),
                alias: text(d, "alias"),
                tags,
                import_values,
                enabled: true,
            };
            if dependency.name.is_empty() {
                return Err(ChartError::at(file, "a dependency has no `name`"));
            }
            Ok(dependency)
        })
        .collect()
}

/// The patterns of a `.helmignore` (gitignore-like; negation is not supported, as in helm).
#[derive(Debug)]
struct HelmIgnore {
    patterns: Vec<(String, bool)>,
}

impl Default for HelmIgnore {
    fn default() -> Self {
        // helm always ignores hidden files in templates/.
        HelmIgnore {
            patterns: vec![("templates/.?*".to_owned(), false)],
        }
    }
}

impl HelmIgnore {
    fn parse(text: &str) -> HelmIgnore {
        let mut ignore = HelmIgnore::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let dir_only = line.ends_with('/');
            let pattern = line.trim_end_matches('/').trim_start_matches('/');
            ignore.patterns.push((pattern.to_owned(), dir_only));
        }
        ignore
    }

    /// A file is ignored when it, or one of the directories containing it, matches a pattern: a pattern
    /// without `/` matches a base name at any depth, one with `/` the path from the chart root.
    fn ignored(&self, path: &str) -> bool {
        if path == ".helmignore" {
            return false;
        }
        let segments: Vec<&str> = path.split('/').collect();
        for end in 1..=segments.len() {
            let is_dir = end < segments.len();
            let prefix = segments[..end].join("/");
            let base = segments[end - 1];
            for (pattern, dir_only) in &self.patterns {
                if *dir_only && !is_dir {
                    continue;
                }
                let subject = if pattern.contains('/') {
                    prefix.as_str()
                } else {
                    base
                };
                if glob_match::glob_match(pattern, subject) {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helmignore_matches_base_names_and_paths() {
        let ignore = HelmIgnore::parse("*.bak\n.git/\nci/\n# comment\nsecret/x.yaml\n");
        assert!(ignore.ignored("a/b.bak"));
        assert!(ignore.ignored("ci/values.yaml"));
        assert!(ignore.ignored("secret/x.yaml"));
        assert!(ignore.ignored("templates/.hidden.yaml"));
        assert!(!ignore.ignored("templates/deploy.yaml"));
        assert!(!ignore.ignored("ci"));
    }

    #[test]
    fn files_are_sorted_into_parts() {
        let file = |name: &str, text: &str| ChartFile {
            name: name.to_owned(),
            data: text.as_bytes().to_vec(),
        };
        let chart = Chart::from_files(
            vec![
                file("Chart.yaml", "name: a\nversion: 1.0.0\n"),
                file("values.yaml", "x: 1\n"),
                file("templates/a.yaml", ""),
                file("files/f.txt", "hi"),
                file(
                    "charts/sub/Chart.yaml",
                    "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
                ),
                file("charts/_skip/Chart.yaml", "name: skip\nversion: 1\n"),
            ],
            ".",
        )
        .unwrap();
        assert_eq!(chart.api_version, "v1");
        assert_eq!(chart.templates.len(), 1);
        assert_eq!(chart.files.len(), 1);
        assert_eq!(chart.subcharts.len(), 1);
        assert_eq!(chart.subcharts[0].name, "sub");
        assert_eq!(chart.subcharts[0].origin, "charts/sub");
    }
}
