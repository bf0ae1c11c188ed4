//! Differential suite: the built-in `kustomize` renderer (run in the plugin runtime, as the agent runs
//! it) against the real kustomize v5.8.1, on the golden cases of `cases/kustomize/` and on every build
//! root of the shared corpus of real kustomizations. Outputs must be equal objects in equal order;
//! where kustomize fails, the plugin must fail too.
//!
//! A case directory is the source root. Optional files in it: `build-dir` (the directory to build,
//! relative to the case; default the case itself), `load-restrictor-none` (both sides run without the
//! load restrictor), `expect-error` (kustomize fails on it; the file says why) and `known-difference`
//! (a difference owned by another crate, named in the file: the case must still differ, so the marker
//! is removed as soon as it is fixed).

use serde_json::Value;
use std::path::{Path, PathBuf};
use tether_differential::{
    Oracle, Renderers, compare_ordered, corpus, objects_of, parse_stream, repo_root,
};

/// One build: a source root and the directory in it to build.
struct Build {
    name: String,
    source: PathBuf,
    dir: String,
    no_restrictor: bool,
    expect_error: bool,
    known_difference: bool,
}

fn run(renderers: &Renderers, build: &Build) -> Result<(), String> {
    let target = build.source.join(&build.dir);
    let mut args = vec!["build", "."];
    if build.no_restrictor {
        args.extend(["--load-restrictor", "LoadRestrictionsNone"]);
    }
    let oracle = Oracle::Kustomize.run(&target, &args);
    let mut settings = vec![("dir", build.dir.as_str())];
    if build.no_restrictor {
        settings.push(("load_restrictor", "none"));
    }
    let plugin = renderers.render("kustomize", &build.source, &settings, "default", "release");
    match (oracle, plugin) {
        (Ok(yaml), Ok(output)) => {
            if build.expect_error {
                return Err("marked expect-error but kustomize builds it".into());
            }
            let expected = parse_stream(&yaml)?;
            let actual: Vec<Value> = objects_of(&output);
            compare_ordered(&expected, &actual)
        }
        (Err(oracle), Ok(_)) => Err(format!("kustomize fails but the plugin renders:\n{oracle}")),
        (Ok(_), Err(plugin)) => Err(format!("the plugin fails but kustomize renders: {plugin}")),
        (Err(_), Err(_)) if build.expect_error => Ok(()),
        (Err(oracle), Err(plugin)) => Err(format!(
            "both fail, but the case is not marked expect-error\n  kustomize: {}\n  plugin: {plugin}",
            oracle.trim()
        )),
    }
}

/// Run every build and report all failures by name at once.
fn check_all(builds: Vec<Build>) {
    assert!(!builds.is_empty(), "no builds found");
    let renderers = Renderers::new();
    let mut failures = Vec::new();
    for build in &builds {
        match (run(&renderers, build), build.known_difference) {
            (Err(why), false) => failures.push(format!("=== {}\n{why}", build.name)),
            (Ok(()), true) => failures.push(format!(
                "=== {}\nnow equals kustomize: remove its `known-difference` file",
                build.name
            )),
            // Documented by its marker file; reported here only once it goes away.
            (Err(_), true) | (Ok(()), false) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} builds differ from kustomize:\n{}",
        failures.len(),
        builds.len(),
        failures.join("\n")
    );
}

fn case_builds() -> Vec<Build> {
    let root = repo_root().join("tests/differential/cases/kustomize");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("cases/kustomize")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
        .into_iter()
        .map(|source| {
            let dir = std::fs::read_to_string(source.join("build-dir"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| ".".to_owned());
            Build {
                name: source
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
                no_restrictor: source.join("load-restrictor-none").exists(),
                expect_error: source.join("expect-error").exists(),
                known_difference: source.join("known-difference").exists(),
                dir,
                source,
            }
        })
        .collect()
}

/// Every folder of the corpus holding a kustomization file, built with the corpus as source root.
fn corpus_builds() -> Option<Vec<Build>> {
    let root = corpus("kustomize")?;
    let mut dirs = Vec::new();
    collect_roots(&root, &root, &mut dirs);
    dirs.sort();
    Some(
        dirs.into_iter()
            .map(|dir| Build {
                name: dir.clone(),
                source: root.clone(),
                dir,
                no_restrictor: false,
                // Where kustomize itself fails on a published example, the plugin must fail too.
                expect_error: false,
                known_difference: false,
            })
            .collect(),
    )
}

fn collect_roots(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let names = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
    if names.iter().any(|n| dir.join(n).is_file()) {
        let relative = dir
            .strip_prefix(root)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        out.push(if relative.is_empty() {
            ".".into()
        } else {
            relative
        });
    }
    for entry in std::fs::read_dir(dir).expect("readable corpus") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_roots(root, &path, out);
        }
    }
}

#[test]
fn golden_cases_equal_kustomize() {
    check_all(case_builds());
}

#[test]
fn corpus_build_roots_equal_kustomize() {
    let Some(builds) = corpus_builds() else {
        return;
    };
    // Published examples kustomize itself rejects (a configuration file missing upstream).
    let known_broken = ["kustomize-examples/examples/transformerconfigs/images"];
    let builds = builds
        .into_iter()
        .map(|mut b| {
            b.expect_error = known_broken.contains(&b.name.as_str());
            b
        })
        .collect();
    check_all(builds);
}
