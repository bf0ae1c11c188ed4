//! Values the way helm computes them: YAML read like `sigs.k8s.io/yaml` does (every number a float64),
//! user values merged file after file, then coalesced with the chart's defaults and its subcharts'
//! (`null` deletes a default, `global` is copied down), subcharts enabled by `condition`s and `tags`,
//! and `import-values` pulled up into the parent.
//!
//! Owns the values tree only; never reads files or renders templates.

use crate::chart::Chart;
use crate::error::ChartError;
use serde_json::{Map, Number, Value};

/// A values mapping (keys sorted, as Go's maps are iterated by templates).
pub type Values = Map<String, Value>;

pub const GLOBAL: &str = "global";

/// A values file: a YAML stream whose documents are merged in order (helm's `LoadValues`).
pub fn parse_values(text: &str, file: &str) -> Result<Values, ChartError> {
    let mut values = Values::new();
    let text = crate::yaml11::rewrite(text);
    for (start, document) in documents(&text) {
        let value: Value = serde_yaml::from_str(&document).map_err(|e| {
            let mut error = ChartError::yaml(file, &e);
            error.line = error.line.map(|l| l + start - 1);
            error
        })?;
        match normalize_numbers(value) {
            Value::Object(map) => values = merge_maps(values, map),
            Value::Null => {}
            _ => {
                return Err(ChartError::at_line(
                    file,
                    start,
                    "values must be a mapping of keys to values",
                ));
            }
        }
    }
    Ok(values)
}

/// Split a YAML stream at `---` lines, remembering each document's first line.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut start = 1;
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        let separator = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '#']));
        if separator {
            out.push((start, std::mem::take(&mut current)));
            start = index + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    out.push((start, current));
    out
}

/// helm reads YAML through JSON into `interface{}`, so every number becomes a float64 (`1000000` prints
/// as `1e+06`); only `--set` produces int64s.
pub fn normalize_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(Number::from_f64)
            .map_or(Value::Number(n), Value::Number),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalize_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// helm's `MergeMaps`: `b` over `a`, mappings merged recursively, anything else replaced.
pub fn merge_maps(mut a: Values, b: Values) -> Values {
    for (key, value) in b {
        match (a.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                let merged = merge_maps(std::mem::take(existing), incoming);
                *existing = merged;
            }
            (_, value) => {
                a.insert(key, value);
            }
        }
    }
    a
}

/// Warnings helm only logs (a table overwritten by a scalar and the like), kept for the output.
pub type Notes = Vec<String>;

/// helm's `CoalesceValues` (`merge == false`: nulls delete) and `MergeValues` (`merge == true`).
pub fn coalesce(
    chart: &Chart,
    dest: Values,
    prefix: &str,
    merge: bool,
    notes: &mut Notes,
) -> Result<Values, ChartError> {
    let mut dest = dest;
    coalesce_values(chart, &mut dest, prefix, merge, notes);
    coalesce_deps(chart, dest, prefix, merge, notes)
}

fn concat(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn coalesce_deps(
    chart: &Chart,
    mut dest: Values,
    prefix: &str,
    merge: bool,
    notes: &mut Notes,
) -> Result<Values, ChartError> {
    for sub in &chart.subcharts {
        let current = dest
            .remove(&sub.name)
            .unwrap_or_else(|| Value::Object(Values::new()));
        let Value::Object(mut sub_values) = current else {
            return Err(ChartError::at(
                &chart.origin,
                format!(
                    "type mismatch on {}: values for the subchart must be a mapping, got {current}",
                    sub.name
                ),
            ));
        };
        let sub_prefix = concat(prefix, &chart.name);
        coalesce_globals(&mut sub_values, &dest, &sub_prefix, notes);
        let coalesced = coalesce(sub, sub_values, &sub_prefix, merge, notes)?;
        dest.insert(sub.name.clone(), Value::Object(coalesced));
    }
    Ok(dest)
}

/// Copy the parent's `global` into the subchart's: parent globals win, subchart globals fill in.
fn coalesce_globals(dest: &mut Values, src: &Values, prefix: &str, notes: &mut Notes) {
    let mut dest_globals = match dest.get(GLOBAL) {
        None => Values::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            notes.push(format!(
                "skipping globals because destination {GLOBAL} is not a table."
            ));
            return;
        }
    };
    let src_globals = match src.get(GLOBAL) {
        None => Values::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            notes.push(format!(
                "skipping globals because source {GLOBAL} is not a table."
            ));
            return;
        }
    };
    for (key, value) in src_globals {
        match value {
            Value::Object(table) => {
                let mut copied = table;
                match dest_globals.get(&key) {
                    None => {
                        dest_globals.insert(key, Value::Object(copied));
                    }
                    Some(Value::Object(existing)) => {
                        coalesce_tables(
                            &mut copied,
                            existing.clone(),
                            &concat(prefix, &key),
                            true,
                            notes,
                        );
                        dest_globals.insert(key, Value::Object(copied));
                    }
                    Some(_) => notes.push(format!(
                        "Conflict: cannot merge map onto non-map for {key:?}. Skipping."
                    )),
                }
            }
            value => {
                if matches!(dest_globals.get(&key), Some(Value::Object(_))) {
                    notes.push(format!("key {key} is table. Skipping"));
                } else {
                    dest_globals.insert(key, value);
                }
            }
        }
    }
    dest.insert(GLOBAL.to_owned(), Value::Object(dest_globals));
}

/// The chart's defaults under the values given (`v`), which win.
fn coalesce_values(chart: &Chart, v: &mut Values, prefix: &str, merge: bool, notes: &mut Notes) {
    let sub_prefix = concat(prefix, &chart.name);
    for (key, default) in chart.values.clone() {
        match v.get_mut(&key) {
            Some(Value::Null) if !merge => {
                v.remove(&key);
            }
            Some(Value::Object(given)) => match default {
                Value::Object(mut default) => {
                    // A subchart's section keeps its nulls so the subchart's own coalescing sees them.
                    let merge = merge || chart.subcharts.iter().any(|s| s.name == key);
                    if !merge {
                        clean_nulls(&mut default);
                    }
                    coalesce_tables(given, default, &concat(&sub_prefix, &key), merge, notes);
                }
                Value::Null => {}
                _ => notes.push(format!(
                    "skipped value for {sub_prefix}.{key}: Not a table."
                )),
            },
            Some(_) => {}
            None => {
                let mut default = default;
                if !merge {
                    if default.is_null() {
                        continue;
                    }
                    if let Value::Object(map) = &mut default {
                        clean_nulls(map);
                    }
                }
                v.insert(key, default);
            }
        }
    }
}

/// helm's `coalesceTablesFullKey`: `src` fills in `dst`; a null in `dst` deletes (unless merging).
pub fn coalesce_tables(
    dst: &mut Values,
    mut src: Values,
    prefix: &str,
    merge: bool,
    notes: &mut Notes,
) {
    let src_non_null: Vec<String> = src
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    for (key, value) in dst.iter() {
        if value.is_null() {
            src.insert(key.clone(), Value::Null);
        }
    }
    for (key, value) in src {
        let full = concat(prefix, &key);
        match dst.get_mut(&key) {
            Some(Value::Null) if !merge && src_non_null.contains(&key) => {
                dst.remove(&key);
            }
            None => {
                dst.insert(key, value);
            }
            Some(existing) => match (existing, value) {
                (Value::Object(existing), Value::Object(value)) => {
                    coalesce_tables(existing, value, &full, merge, notes);
                }
                (_, Value::Object(_)) => {
                    notes.push(format!("cannot overwrite table with non table for {full}"));
                }
                (Value::Object(_), value) if !value.is_null() => {
                    notes.push(format!(
                        "destination for {full} is a table. Ignoring non-table value ({value})"
                    ));
                }
                _ => {}
            },
        }
    }
}

fn clean_nulls(map: &mut Values) {
    map.retain(|_, v| !v.is_null());
    for value in map.values_mut() {
        if let Value::Object(sub) = value {
            clean_nulls(sub);
        }
    }
}

/// A value by dotted path (`a.b.c`), as helm's `PathValue`.
pub fn path_value<'a>(values: &'a Values, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = values.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// Decide which subcharts are enabled (`tags`, then `condition`s, which win), rename aliased ones,
/// and recurse; helm's `processDependencyEnabled`.
pub fn process_enabled(
    chart: &mut Chart,
    user: &Values,
    path: &str,
    notes: &mut Notes,
) -> Result<(), ChartError> {
    if chart.dependencies.is_empty() {
        return Ok(());
    }
    // Loaded subcharts no dependency names stay as they are; declared ones are copied per declaration
    // (one chart may be declared twice under two aliases).
    let loaded = std::mem::take(&mut chart.subcharts);
    let mut subcharts: Vec<Chart> = loaded
        .iter()
        .filter(|c| !chart.dependencies.iter().any(|d| d.name == c.name))
        .cloned()
        .collect();
    for dependency in &mut chart.dependencies {
        if let Some(found) = loaded.iter().find(|c| c.name == dependency.name) {
            let mut copy = found.clone();
            if !dependency.alias.is_empty() {
                copy.name = dependency.alias.clone();
                copy.metadata
                    .insert("name".into(), Value::String(dependency.alias.clone()));
            }
            subcharts.push(copy);
        }
        if !dependency.alias.is_empty() {
            dependency.name = dependency.alias.clone();
        }
        dependency.enabled = true;
    }
    chart.subcharts = subcharts;

    let coalesced = coalesce(chart, user.clone(), "", false, notes)?;
    apply_tags(chart, &coalesced, notes);
    apply_conditions(chart, &coalesced, path, notes);
    let disabled: Vec<String> = chart
        .dependencies
        .iter()
        .filter(|d| !d.enabled)
        .map(|d| d.name.clone())
        .collect();
    chart.subcharts.retain(|c| !disabled.contains(&c.name));
    chart.dependencies.retain(|d| !disabled.contains(&d.name));
    for sub in &mut chart.subcharts {
        let sub_path = format!("{path}{}.", sub.name);
        process_enabled(sub, &coalesced, &sub_path, notes)?;
    }
    Ok(())
}

fn apply_tags(chart: &mut Chart, values: &Values, notes: &mut Notes) {
    let Some(Value::Object(tags)) = values.get("tags") else {
        return;
    };
    for dependency in &mut chart.dependencies {
        let (mut has_true, mut has_false) = (false, false);
        for tag in &dependency.tags {
            match tags.get(tag) {
                Some(Value::Bool(true)) => has_true = true,
                Some(Value::Bool(false)) => has_false = true,
                Some(_) => notes.push(format!("tag {tag} of {} is not a boolean", dependency.name)),
                None => {}
            }
        }
        dependency.enabled = has_true || !has_false;
    }
}

fn apply_conditions(chart: &mut Chart, values: &Values, path: &str, notes: &mut Notes) {
    for dependency in &mut chart.dependencies {
        for condition in dependency.condition.trim().split(',') {
            let condition = condition.trim();
            if condition.is_empty() {
                continue;
            }
            match path_value(values, &format!("{path}{condition}")) {
                Some(Value::Bool(enabled)) => {
                    dependency.enabled = *enabled;
                    break;
                }
                Some(_) => notes.push(format!(
                    "condition path `{condition}` of {} returned a non-bool value",
                    dependency.name
                )),
                None => {}
            }
        }
    }
}

/// Pull subchart values up into their parents (`import-values`), bottom-up; helm's
/// `processDependencyImportValues` with merging, which also makes each parent's defaults the merged
/// defaults of its subtree.
pub fn process_imports(chart: &mut Chart, notes: &mut Notes) -> Result<(), ChartError> {
    for sub in &mut chart.subcharts {
        process_imports(sub, notes)?;
    }
    if chart.dependencies.is_empty() {
        return Ok(());
    }
    let merged = coalesce(chart, Values::new(), "", true, notes)?;
    let mut imported = Values::new();
    for dependency in &chart.dependencies {
        for import in &dependency.import_values {
            let (child, parent) = match import {
                Value::Object(map) => {
                    let text = |key: &str| match map.get(key) {
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => "<nil>".to_owned(),
                    };
                    (text("child"), text("parent"))
                }
                Value::String(name) => (format!("exports.{name}"), ".".to_owned()),
                _ => continue,
            };
            let Some(Value::Object(table)) =
                path_value(&merged, &format!("{}.{child}", dependency.name))
            else {
                notes.push(format!(
                    "import-values: {} has no table {child}",
                    dependency.name
                ));
                continue;
            };
            let table = if parent == "." {
                table.clone()
            } else {
                parent.split('.').rev().fold(table.clone(), |inner, key| {
                    let mut outer = Values::new();
                    outer.insert(key.to_owned(), Value::Object(inner));
                    outer
                })
            };
            coalesce_tables(&mut imported, table, "", true, notes);
        }
    }
    let mut values = merged;
    coalesce_tables(&mut values, imported, "", true, notes);
    chart.values = values;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Values {
        value.as_object().unwrap().clone()
    }

    fn chart(name: &str, values: Value, subcharts: Vec<Chart>) -> Chart {
        let mut chart = Chart::from_files(
            vec![crate::chart::ChartFile {
                name: "Chart.yaml".into(),
                data: format!("apiVersion: v2\nname: {name}\nversion: 1.0.0\n").into_bytes(),
            }],
            name,
        )
        .unwrap();
        chart.values = map(values);
        chart.subcharts = subcharts;
        chart
    }

    #[test]
    fn numbers_from_yaml_are_floats() {
        let values = parse_values("a: 1\nb: [2]\n---\nc: 1.5\n", "values.yaml").unwrap();
        assert!(values["a"].is_f64());
        assert!(values["b"][0].is_f64());
        assert_eq!(values["c"], json!(1.5));
    }

    #[test]
    fn yaml_errors_name_file_and_line_of_the_stream() {
        let error = parse_values("a: 1\n---\nb: [\n", "v.yaml").unwrap_err();
        assert_eq!(error.file, "v.yaml");
        assert!(error.line.unwrap() >= 3, "{error}");
    }

    #[test]
    fn user_values_win_and_null_deletes_a_default() {
        let parent = chart(
            "p",
            json!({"a": 1, "b": {"c": 2, "d": 3}, "keep": true}),
            vec![],
        );
        let mut notes = Notes::new();
        let user = map(json!({"a": 5, "b": {"c": null}}));
        let out = coalesce(&parent, user, "", false, &mut notes).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"a": 5, "b": {"d": 3}, "keep": true})
        );
    }

    #[test]
    fn globals_are_copied_into_subcharts() {
        let sub = chart(
            "sub",
            json!({"x": 1, "global": {"g": "sub", "h": "sub"}}),
            vec![],
        );
        let parent = chart(
            "p",
            json!({"global": {"g": "parent"}, "sub": {"x": 2}}),
            vec![sub],
        );
        let mut notes = Notes::new();
        let out = coalesce(&parent, Values::new(), "", false, &mut notes).unwrap();
        assert_eq!(
            out["sub"],
            json!({"x": 2, "global": {"g": "parent", "h": "sub"}})
        );
    }

    #[test]
    fn conditions_win_over_tags() {
        let a = chart("a", json!({}), vec![]);
        let b = chart("b", json!({}), vec![]);
        let mut parent = chart(
            "p",
            json!({"a": {"enabled": false}, "tags": {"t": false}}),
            vec![a, b],
        );
        parent.dependencies = vec![
            crate::chart::Dependency {
                name: "a".into(),
                condition: "a.enabled".into(),
                ..Default::default()
            },
            crate::chart::Dependency {
                name: "b".into(),
                tags: vec!["t".into()],
                ..Default::default()
            },
        ];
        let mut notes = Notes::new();
        let user = map(json!({"a": {"enabled": true}}));
        process_enabled(&mut parent, &user, "", &mut notes).unwrap();
        let names: Vec<_> = parent.subcharts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a"]);
    }
}
