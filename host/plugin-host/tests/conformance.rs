//! Renderer conformance: every case directory in `conformance/` is run against the Rust `raw` renderer
//! and the Python renderer (componentize-py), which must give the same objects and the same errors. The
//! `raw-cases/` directories (YAML) run against `raw` only.

mod common;

use common::ENGINE;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use tether_config::plugins::Settings;
use tether_plugin_host::artifacts;
use tether_plugin_host::{
    GuestErrorKind, Plugin, PluginDefinition, PluginError, RenderRequest, World,
};

static RAW: LazyLock<Plugin> = LazyLock::new(|| common::renderer("raw", artifacts::RAW_PATH));

static PYTHON: LazyLock<Plugin> = LazyLock::new(|| {
    let path = artifacts::PYTHON_RENDERER_PATH.expect(
        "the Python renderer was not built: componentize-py is missing (scripts/setup/20-plugins.sh installs it)",
    );
    let bytes = common::read(path);
    ENGINE
        .load(PluginDefinition::new("python-raw", World::Renderer, &bytes))
        .expect("the Python renderer loads")
});

fn case_dir(group: &str, case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(group)
        .join(case)
}

fn settings(dir: &Path) -> Settings {
    let text = std::fs::read_to_string(dir.join("settings")).unwrap_or_default();
    let pairs = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("settings lines are key=value");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Settings::new(pairs).unwrap()
}

fn kind_name(kind: GuestErrorKind) -> &'static str {
    match kind {
        GuestErrorKind::InvalidInput => "invalid-input",
        GuestErrorKind::InvalidSettings => "invalid-settings",
        GuestErrorKind::Denied => "denied",
        GuestErrorKind::Failed => "failed",
    }
}

fn run_case(plugin: &Plugin, group: &str, case: &str) {
    let dir = case_dir(group, case);
    let request = RenderRequest::new(dir.join("input")).with_settings(settings(&dir));
    let result = plugin.render(&request);
    if let Ok(expected) = std::fs::read_to_string(dir.join("error.txt")) {
        let error = result.expect_err("the case expects an error");
        let PluginError::Guest { error: guest, .. } = &error else {
            panic!("{case}: expected the plugin's error value, got {error:?}");
        };
        let mut actual = kind_name(guest.kind).to_owned();
        if guest.kind == GuestErrorKind::InvalidInput
            && let Some(location) = &guest.location
        {
            actual = format!("{actual} {location}");
        }
        assert_eq!(actual, expected.trim(), "{case}: {error}");
        assert!(
            error
                .to_string()
                .contains(&format!("plugin `{}`", plugin.name())),
            "{error}"
        );
        return;
    }
    let output = result.unwrap_or_else(|e| panic!("{case}: {e}"));
    let actual: Vec<Value> = output
        .objects
        .iter()
        .map(|o| {
            serde_json::json!({
                "origin": o.origin.as_ref().map(ToString::to_string),
                "manifest": o.manifest,
            })
        })
        .collect();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(Value::Array(actual), expected, "{case}");
}

/// One test per case directory and renderer.
macro_rules! cases {
    ($group:literal, $plugin:ident: $($test:ident => $case:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run_case(&$plugin, $group, $case);
            }
        )*
    };
}

mod raw {
    use super::*;
    cases!("conformance", RAW:
        single_object => "single-object",
        lists_in_path_order => "lists-in-path-order",
        hidden_files_skipped => "hidden-files-skipped",
        glob_setting => "glob-setting",
        empty_tree => "empty-tree",
        invalid_json => "invalid-json",
        missing_kind => "missing-kind",
        missing_name => "missing-name",
        unknown_setting => "unknown-setting",
    );
    cases!("raw-cases", RAW:
        yaml_multi_document => "multi-document",
        yaml_syntax_error => "yaml-syntax-error",
        yaml_not_an_object => "yaml-not-an-object",
        yaml_unclosed_at_end => "yaml-unclosed-at-end",
        gitlab_leading_slash_glob => "gitlab-leading-slash-glob",
    );
}

mod python {
    use super::*;
    cases!("conformance", PYTHON:
        single_object => "single-object",
        lists_in_path_order => "lists-in-path-order",
        hidden_files_skipped => "hidden-files-skipped",
        glob_setting => "glob-setting",
        empty_tree => "empty-tree",
        invalid_json => "invalid-json",
        missing_kind => "missing-kind",
        missing_name => "missing-name",
        unknown_setting => "unknown-setting",
    );
}

#[test]
fn every_conformance_directory_has_a_test() {
    let listed = [
        "single-object",
        "lists-in-path-order",
        "hidden-files-skipped",
        "glob-setting",
        "empty-tree",
        "invalid-json",
        "missing-kind",
        "missing-name",
        "unknown-setting",
    ];
    let mut found: Vec<String> = std::fs::read_dir(case_dir("conformance", ""))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut listed: Vec<String> = listed.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "add new case directories to the cases! lists"
    );
}
