//! Differential suite: the strategic-merge crate's `strategic_merge` and `apply_json6902` against
//! the real kustomize v5.8.1 applying the same patch to the same object.
//!
//! A case directory under `cases/strategic-merge/` holds `base.yaml` (one object) and either
//! `patch.yaml` (a strategic merge patch naming the object) or `ops.yaml` (JSON 6902 operations,
//! targeted at the object by kind and name), and optionally `expect-error` (kustomize refuses the
//! patch; the file says why) and `openapi.json` (the kustomization's `openapi:` document, which
//! kustomize uses instead of its built-in schema). kustomize builds a kustomization of exactly that; the crate's function
//! runs on the same values, after which the kind, name and namespace are restored as kustomize's
//! patch transformer does.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tether_differential::{Oracle, compare_ordered, parse_stream, repo_root};
use tether_strategic_merge::{Schema, apply_json6902, strategic_merge};

/// The patch a case applies.
enum Patch {
    StrategicMerge(Value),
    Json6902(Value),
}

struct Case {
    name: String,
    dir: PathBuf,
    base: Value,
    patch: Patch,
    openapi: Option<Value>,
    expect_error: bool,
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn load(dir: &Path) -> Case {
    let patch = if dir.join("patch.yaml").is_file() {
        Patch::StrategicMerge(read_yaml(&dir.join("patch.yaml")))
    } else {
        Patch::Json6902(read_yaml(&dir.join("ops.yaml")))
    };
    Case {
        name: dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned(),
        dir: dir.to_owned(),
        base: read_yaml(&dir.join("base.yaml")),
        patch,
        openapi: dir
            .join("openapi.json")
            .is_file()
            .then(|| read_yaml(&dir.join("openapi.json"))),
        expect_error: dir.join("expect-error").is_file(),
    }
}

/// kustomize's output for a case, built in a scratch copy of the case directory.
fn oracle(case: &Case) -> Result<Vec<Value>, String> {
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    for file in ["base.yaml", "patch.yaml", "ops.yaml", "openapi.json"] {
        if case.dir.join(file).is_file() {
            std::fs::copy(case.dir.join(file), scratch.path().join(file))
                .map_err(|e| e.to_string())?;
        }
    }
    let patches = match case.patch {
        Patch::StrategicMerge(_) => "- path: patch.yaml\n".to_owned(),
        Patch::Json6902(_) => format!(
            "- path: ops.yaml\n  target:\n    kind: {}\n    name: {}\n",
            text(&case.base, "/kind"),
            text(&case.base, "/metadata/name")
        ),
    };
    let mut kustomization = format!("resources:\n- base.yaml\npatches:\n{patches}");
    if case.openapi.is_some() {
        kustomization.push_str("openapi:\n  path: openapi.json\n");
    }
    std::fs::write(scratch.path().join("kustomization.yaml"), kustomization)
        .map_err(|e| e.to_string())?;
    parse_stream(&Oracle::Kustomize.run(scratch.path(), &["build", "."])?)
}

/// The crate's result for a case: the patched objects (none when the patch deletes the object).
fn ours(case: &Case) -> Result<Vec<Value>, String> {
    let patched = match &case.patch {
        Patch::StrategicMerge(patch) => {
            let schema = match &case.openapi {
                Some(document) => Schema::default()
                    .with_openapi(document)
                    .map_err(|e| e.to_string())?,
                None => Schema::kubernetes().clone(),
            };
            let mut merged =
                strategic_merge(&case.base, patch, &schema).map_err(|e| e.to_string())?;
            if merged.is_null() {
                return Ok(Vec::new());
            }
            // kustomize's patch transformer puts back what a patch may not change.
            for (pointer, key) in [("/kind", "kind"), ("/metadata/name", "name")] {
                if let Some(original) = case.base.pointer(pointer) {
                    let parent = if key == "kind" {
                        Some(&mut merged)
                    } else {
                        merged.get_mut("metadata")
                    };
                    if let Some(Value::Object(fields)) = parent {
                        fields.insert(key.to_owned(), original.clone());
                    }
                }
            }
            merged
        }
        Patch::Json6902(operations) => {
            apply_json6902(&case.base, operations).map_err(|e| e.to_string())?
        }
    };
    Ok(vec![as_kustomize_prints(patched)])
}

/// What `kustomize build` does to every object after the patches: it drops an empty
/// `metadata.annotations` (the kustomize renderer's job, not the patch's).
fn as_kustomize_prints(mut object: Value) -> Value {
    if let Some(Value::Object(metadata)) = object.get_mut("metadata")
        && metadata
            .get("annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.is_empty())
    {
        metadata.remove("annotations");
    }
    object
}

fn check(case: &Case) -> Result<(), String> {
    match (oracle(case), ours(case)) {
        (Ok(_), Ok(_)) if case.expect_error => {
            Err("marked expect-error but kustomize applies it".to_owned())
        }
        (Ok(expected), Ok(actual)) => compare_ordered(&expected, &actual),
        (Err(oracle), Ok(_)) => Err(format!(
            "kustomize fails but the crate applies it:\n{oracle}"
        )),
        (Ok(_), Err(ours)) => Err(format!("the crate fails but kustomize applies it: {ours}")),
        (Err(_), Err(_)) if case.expect_error => Ok(()),
        (Err(oracle), Err(ours)) => Err(format!(
            "both fail, but the case is not marked expect-error\n  kustomize: {}\n  crate: {ours}",
            oracle.trim()
        )),
    }
}

#[test]
fn cases_match_kustomize() {
    let root = repo_root().join("tests/differential/cases/strategic-merge");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("cases/strategic-merge")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no cases in {}", root.display());
    let failures: Vec<String> = dirs
        .iter()
        .map(|dir| load(dir))
        .filter_map(|case| {
            check(&case)
                .err()
                .map(|why| format!("=== {}\n{why}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from kustomize:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}

/// Random Deployments and patches, the same every run: the golden cases cover what someone thought
/// of, these find kyaml's quirks nobody did (two were found this way).
const RANDOM_CASES: usize = 40;

/// xorshift64: deterministic, no dependency.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick(&mut self, choices: &[&str]) -> Value {
        json!(choices[self.below(choices.len() as u64) as usize])
    }

    fn list(&mut self, max: u64, mut element: impl FnMut(&mut Self) -> Value) -> Value {
        Value::Array((0..self.below(max + 1)).map(|_| element(self)).collect())
    }

    fn directive(&mut self) -> Value {
        self.pick(&["merge", "replace", "delete"])
    }

    fn container(&mut self, patch: bool) -> Value {
        let mut container = json!({});
        if !patch || self.chance(95) {
            container["name"] = self.pick(&["a", "b", "c"]);
        }
        if self.chance(60) {
            container["image"] = self.pick(&["i:1", "i:2"]);
        }
        if self.chance(40) {
            container["env"] = self.list(3, |r| {
                let mut env =
                    json!({"name": r.pick(&["X", "Y", "Z"]), "value": r.pick(&["1", "2"])});
                if patch && r.chance(15) {
                    env["$patch"] = r.directive();
                }
                env
            });
        }
        if self.chance(30) {
            container["ports"] = self.list(3, |r| {
                let number = [80, 81, 443][r.below(3) as usize];
                let mut port = json!({"containerPort": number});
                if r.chance(50) {
                    port["protocol"] = r.pick(&["TCP", "UDP"]);
                }
                port
            });
        }
        if patch && self.chance(10) {
            container["$patch"] = self.directive();
        }
        if patch && self.chance(10) {
            container["image"] = Value::Null;
        }
        container
    }

    fn deployment(&mut self, patch: bool) -> Value {
        let mut object =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        if self.chance(30) {
            let mut finalizers = self.list(3, |r| r.pick(&["f", "g", "h"]));
            if patch && self.chance(20) {
                finalizers
                    .as_array_mut()
                    .expect("a list")
                    .insert(0, json!({"$patch": "delete"}));
            }
            object["metadata"]["finalizers"] = finalizers;
        }
        let mut spec = json!({});
        if self.chance(80) {
            spec["containers"] = self.list(3, |r| r.container(patch));
        }
        if self.chance(30) {
            spec["initContainers"] = self.list(2, |r| r.container(patch));
        }
        if self.chance(30) {
            spec["volumes"] =
                self.list(2, |r| json!({"name": r.pick(&["v", "w"]), "emptyDir": {}}));
        }
        if patch && self.chance(10) {
            spec["nodeSelector"] = json!({"$patch": self.directive(), "disk": "ssd"});
        }
        if patch && self.chance(10) {
            spec["$patch"] = self.pick(&["merge", "replace"]);
        }
        object["spec"] = json!({"template": {"spec": spec}});
        if self.chance(30) {
            object["spec"]["replicas"] = if patch && self.chance(50) {
                Value::Null
            } else {
                json!(2)
            };
        }
        object
    }
}

#[test]
fn random_patches_match_kustomize() {
    let mut random = Random(0x7e7e_5eed_0000_0001);
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut failures = Vec::new();
    for index in 0..RANDOM_CASES {
        let dir = scratch.path().join(format!("random-{index}"));
        std::fs::create_dir(&dir).expect("a case directory");
        let base = random.deployment(false);
        let patch = random.deployment(true);
        // JSON is YAML: kustomize reads these as they are.
        std::fs::write(dir.join("base.yaml"), base.to_string()).expect("write base");
        std::fs::write(dir.join("patch.yaml"), patch.to_string()).expect("write patch");
        let case = load(&dir);
        if let Err(why) = check(&case) {
            failures.push(format!("=== base {base}\n=== patch {patch}\n{why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {RANDOM_CASES} random patches differ from kustomize:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
