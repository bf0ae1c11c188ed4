//! Developer tool: build kustomization directories natively and with the real kustomize, and say where
//! they differ. The differential suite (tests/differential) is the real check; this is its fast loop.
//!
//! `cargo run --target x86_64-unknown-linux-gnu --example compare -- SOURCE_ROOT DIR...`
//! (`$TETHER_KUSTOMIZE` or kustomize on PATH is the oracle; DIR is relative to SOURCE_ROOT).

use serde::Deserialize;
use serde_json::Value;
use std::process::Command;
use tether_kustomize::loader::{LoadRestrictor, Loader};

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().expect("SOURCE_ROOT");
    let oracle = std::env::var("TETHER_KUSTOMIZE").unwrap_or_else(|_| "kustomize".into());
    let mut failed = 0;
    let dirs: Vec<String> = args.collect();
    for dir in &dirs {
        let path = std::path::Path::new(&root).join(dir);
        let no_restrictor = std::path::Path::new(&root)
            .join("load-restrictor-none")
            .exists();
        let mut command = Command::new(&oracle);
        command.arg("build");
        if no_restrictor {
            command.args(["--load-restrictor", "LoadRestrictionsNone"]);
        }
        let output = command
            .current_dir(&path)
            .env("HOME", &path)
            .output()
            .expect("run kustomize");
        let expected: Result<Vec<Value>, String> = if output.status.success() {
            Ok(serde_yaml::Deserializer::from_slice(&output.stdout)
                .map(|d| Value::deserialize(d).expect("kustomize prints YAML"))
                .filter(|v| !v.is_null())
                .collect())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        };
        let restrictor = if no_restrictor {
            LoadRestrictor::None
        } else {
            LoadRestrictor::RootOnly
        };
        let loader = Loader::new(&root, restrictor);
        let started = std::time::Instant::now();
        let built = tether_kustomize::build::build(&loader, dir);
        eprintln!("  native build of {dir}: {:?}", started.elapsed());
        let actual = built
            .map(|rs| {
                rs.into_iter()
                    .map(|r| Value::Object(r.object))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| e.to_string());
        match (&expected, &actual) {
            (Ok(e), Ok(a)) if e == a => println!("ok    {dir}"),
            (Err(_), Err(a)) => println!("ok    {dir} (both fail; ours: {a})"),
            (Ok(e), Ok(a)) => {
                failed += 1;
                println!("DIFF  {dir}");
                let ids = |v: &[Value]| {
                    v.iter()
                        .map(|o| {
                            format!(
                                "{}/{}",
                                o["kind"].as_str().unwrap_or(""),
                                o["metadata"]["name"].as_str().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                };
                if ids(e) != ids(a) {
                    println!("  oracle: {:?}\n  ours:   {:?}", ids(e), ids(a));
                }
                for (x, y) in e.iter().zip(a) {
                    if x != y {
                        println!(
                            "--- oracle\n{}--- ours\n{}",
                            serde_yaml::to_string(x).unwrap(),
                            serde_yaml::to_string(y).unwrap()
                        );
                        break;
                    }
                }
            }
            (Ok(_), Err(a)) => {
                failed += 1;
                println!("FAIL  {dir}: ours errs: {a}");
            }
            (Err(e), Ok(_)) => {
                failed += 1;
                println!("FAIL  {dir}: kustomize errs but ours builds: {}", e.trim());
            }
        }
    }
    println!("{failed} of {} differ", dirs.len());
}
