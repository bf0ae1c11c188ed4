//! Differential suite: every case runs through this crate and through real Go text/template with
//! Sprig and Helm's functions (tests/differential/oracles/gotemplate), and the two must agree:
//! same output, or both fail. Error texts are compared too where the engine promises Go's text
//! (parse errors, and execution errors' location prefix).
//!
//! The oracle is built with the Go toolchain into Cargo's temporary directory on first use.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::json;
use tether_gotemplate::{MissingKey, Options, Templates, Value};

struct Case {
    templates: Vec<(String, String)>,
    data: serde_json::Value,
    missing_key: &'static str,
}

fn case(src: &str, data: serde_json::Value) -> Case {
    Case {
        templates: vec![("main".into(), src.into())],
        data,
        missing_key: "default",
    }
}

fn case_mk(src: &str, data: serde_json::Value, missing_key: &'static str) -> Case {
    Case {
        missing_key,
        ..case(src, data)
    }
}

fn multi(templates: &[(&str, &str)], data: serde_json::Value) -> Case {
    Case {
        templates: templates
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect(),
        data,
        missing_key: "zero",
    }
}

fn oracle() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/differential/oracles/gotemplate");
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gotemplate-oracle");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&src)
            .status()
            .expect("the Go toolchain (`go`) is needed to build the template oracle");
        assert!(status.success(), "building the Go template oracle failed");
        bin
    })
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Output(String),
    Error(String),
}

fn run_go(cases: &[Case]) -> Vec<Outcome> {
    let input: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            let templates: serde_json::Map<String, serde_json::Value> = c
                .templates
                .iter()
                .map(|(n, s)| (n.clone(), serde_json::Value::String(s.clone())))
                .collect();
            json!({"templates": templates, "data": c.data, "missingkey": c.missing_key})
        })
        .collect();
    let mut child = Command::new(oracle())
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the Go template oracle");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&input).expect("json").as_bytes())
        .expect("write cases");
    let out = child.wait_with_output().expect("oracle output");
    assert!(out.status.success(), "the oracle failed");
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("oracle json");
    results
        .into_iter()
        .map(|r| match (r.get("output"), r.get("error")) {
            (Some(o), _) => Outcome::Output(o.as_str().unwrap_or_default().to_string()),
            (_, Some(e)) => Outcome::Error(e.as_str().unwrap_or_default().to_string()),
            _ => Outcome::Error("no result".into()),
        })
        .collect()
}

fn run_rust(c: &Case) -> Outcome {
    let mut t = Templates::new();
    t.set_options(Options {
        missing_key: match c.missing_key {
            "zero" => MissingKey::Zero,
            "error" => MissingKey::Error,
            _ => MissingKey::Default,
        },
        lint_mode: false,
    });
    let mut names: Vec<&(String, String)> = c.templates.iter().collect();
    names.sort();
    for (name, src) in names {
        if let Err(e) = t.parse(name, src) {
            return Outcome::Error(e.to_string());
        }
    }
    match t.execute("main", &Value::from(c.data.clone())) {
        Ok(s) => Outcome::Output(s),
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// Error texts must match exactly, up to the known difference the crate documents: bytes from
/// `index` of a string are `int` (Go: `uint8`).
/// Regular-expression syntax errors are worded by each library; only their presence counts.
fn same_error(go: &str, rust: &str) -> bool {
    let normalize = |s: &str| {
        // Go words len of a nil by whether the nil is boxed; both mean the same.
        let s = s
            .replace(
                "reflect: call of reflect.Value.Type on zero Value",
                "len of nil pointer",
            )
            .replace("uint8", "int");
        match s.find("error parsing regexp: ") {
            Some(i) => s[..i].to_string(),
            None => s,
        }
    };
    normalize(go) == normalize(rust)
}

/// Outputs must be equal, except the wording of YAML syntax errors `fromYaml` reports in its
/// result (each parser words its own).
fn same_output(go: &str, rust: &str) -> bool {
    const YAML_ERROR: &str = "error converting YAML to JSON: yaml: ";
    match (go.find(YAML_ERROR), rust.find(YAML_ERROR)) {
        (Some(i), Some(j)) => go[..i] == rust[..j],
        _ => go == rust,
    }
}

fn compare(cases: Vec<Case>) {
    compare_errors_by(cases, same_error);
}

fn compare_errors_by(cases: Vec<Case>, same: fn(&str, &str) -> bool) {
    let go = run_go(&cases);
    let mut failures = Vec::new();
    for (i, (c, g)) in cases.iter().zip(go).enumerate() {
        let r = run_rust(c);
        let agree = match (&g, &r) {
            (Outcome::Output(a), Outcome::Output(b)) => same_output(a, b),
            (Outcome::Error(a), Outcome::Error(b)) => same(a, b),
            _ => false,
        };
        if !agree {
            failures.push(format!(
                "case {i}: {:?} data={} missingkey={}\n   go: {g:?}\n rust: {r:?}",
                c.templates, c.data, c.missing_key
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Go:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn values() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("int-like float", json!(3)),
        ("big float", json!(1000000)),
        ("fraction", json!(1.5)),
        ("negative", json!(-2.25)),
        ("tiny", json!(0.00001)),
        ("zero", json!(0)),
        ("string", json!("hello")),
        ("empty string", json!("")),
        ("numeric string", json!("42")),
        ("true", json!(true)),
        ("false", json!(false)),
        ("null", json!(null)),
        ("list", json!([1, "a", null, [2]])),
        ("empty list", json!([])),
        ("map", json!({"b": 1, "a": {"c": [true]}})),
        ("empty map", json!({})),
    ]
}

#[path = "go_oracle/charts.rs"]
mod charts;
#[path = "go_oracle/encoders.rs"]
mod encoders;
#[path = "go_oracle/engine.rs"]
mod engine;
#[path = "go_oracle/generated.rs"]
mod generated;
#[path = "go_oracle/sprig.rs"]
mod sprig;
