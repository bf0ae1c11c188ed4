//! Benchmark: every chart of the shared corpus rendered with its default values, once through the
//! `helm` plugin (inside the plugin runtime, a fresh instance per render as the agent does) and once
//! through `helm template` v4.2.4 (a process per render, as a user or a CI job runs it).
//!
//! `cargo bench -p tether-differential --bench helm`; results in docs/PERFORMANCE.md.

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::PathBuf;
use tether_differential::{Oracle, Renderers, corpus};

const RELEASE: &str = "bench";
const NAMESPACE: &str = "apps";

fn charts() -> Vec<(String, PathBuf)> {
    let root = corpus("charts").expect("the benchmark renders the shared corpus of charts");
    let mut charts: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .expect("the shared corpus of charts")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    charts.sort();
    charts
}

fn corpus_charts(c: &mut Criterion) {
    let charts = charts();
    let renderers = Renderers::new();
    // Both sides must succeed before their times mean anything.
    for (name, dir) in &charts {
        renderers
            .render("helm", dir, &[], NAMESPACE, RELEASE)
            .unwrap_or_else(|e| panic!("the plugin fails on {name}: {e:?}"));
        Oracle::Helm
            .run(dir, &["template", RELEASE, ".", "--namespace", NAMESPACE])
            .unwrap_or_else(|e| panic!("helm fails on {name}: {e}"));
    }
    let mut group = c.benchmark_group(format!("helm corpus ({} charts)", charts.len()));
    group.sample_size(10);
    group.bench_function("plugin", |b| {
        b.iter(|| {
            for (_, dir) in &charts {
                renderers
                    .render("helm", dir, &[], NAMESPACE, RELEASE)
                    .expect("plugin renders");
            }
        });
    });
    group.bench_function("helm template", |b| {
        b.iter(|| {
            for (_, dir) in &charts {
                Oracle::Helm
                    .run(dir, &["template", RELEASE, ".", "--namespace", NAMESPACE])
                    .expect("helm renders");
            }
        });
    });
    group.finish();
}

criterion_group!(benches, corpus_charts);
criterion_main!(benches);
