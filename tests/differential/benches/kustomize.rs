//! Benchmark: the same kustomizations built by the `kustomize` plugin (inside the plugin runtime, a
//! fresh instance per render as the agent does) and by `kustomize build` v5.8.1 (a process per build,
//! as a user or a CI job runs it), in one run:
//!
//! - `small`: the podinfo production overlay of the shared corpus (4 bases, generators, a namespace,
//!   a LabelTransformer; 20 objects);
//! - `large`: a generated overlay of 120 apps (360 objects and 20 generated ConfigMaps) with a prefix,
//!   a namespace, labels, annotations, images, replicas, 120 strategic merge patches and 60 JSON 6902
//!   patches.
//!
//! `cargo bench -p tether-differential --bench kustomize`; results in docs/PERFORMANCE.md.

use criterion::{Criterion, criterion_group, criterion_main};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tether_differential::{Oracle, Renderers, compare_ordered, corpus, objects_of, parse_stream};

const APPS: usize = 120;
const JSON_PATCHED: usize = 60;
const GENERATED: usize = 20;

/// Write the large overlay under `root` (`base/` and `overlay/`).
fn write_large(root: &Path) {
    let base = root.join("base");
    let overlay = root.join("overlay");
    std::fs::create_dir_all(&base).expect("base dir");
    std::fs::create_dir_all(overlay.join("patches")).expect("overlay dir");
    let mut base_k = String::from("resources:\n");
    for i in 0..APPS {
        let app = format!("app{i:03}");
        let objects = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\n  labels: {{app: {app}}}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {app}}}\n  template:\n    metadata:\n      labels: {{app: {app}}}\n    spec:\n      serviceAccountName: {app}\n      containers:\n      - name: main\n        image: registry.example.com/team/{app}:1.0.0\n        envFrom:\n        - configMapRef: {{name: {app}-config}}\n        ports:\n        - containerPort: 8080\n      - name: proxy\n        image: envoyproxy/envoy:v1.30.0\n      volumes:\n      - name: settings\n        configMap: {{name: shared{}}}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {app}\nspec:\n  selector: {{app: {app}}}\n  ports:\n  - port: 80\n    targetPort: 8080\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}-config\ndata:\n  LEVEL: info\n  APP: {app}\n",
            i % GENERATED
        );
        std::fs::write(base.join(format!("{app}.yaml")), objects).expect("write app");
        writeln!(base_k, "- {app}.yaml").expect("string");
    }
    base_k.push_str("configMapGenerator:\n");
    for g in 0..GENERATED {
        writeln!(
            base_k,
            "- name: shared{g}\n  literals: [INDEX={g}, ZONE=eu-{g}]"
        )
        .expect("string");
    }
    std::fs::write(base.join("kustomization.yaml"), base_k).expect("base kustomization");

    let mut k = String::from(
        "resources:\n- ../base\nnamePrefix: prod-\nnamespace: production\ncommonLabels:\n  env: production\ncommonAnnotations:\n  owner: platform\nimages:\n- name: envoyproxy/envoy\n  newTag: v1.31.2\nreplicas:\n",
    );
    for i in (0..APPS).step_by(4) {
        writeln!(k, "- name: app{i:03}\n  count: 3").expect("string");
    }
    k.push_str("patches:\n");
    for i in 0..APPS {
        let app = format!("app{i:03}");
        let patch = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  template:\n    spec:\n      containers:\n      - name: main\n        resources:\n          limits: {{memory: 256Mi}}\n        env:\n        - name: REGION\n          value: eu-west-1\n"
        );
        std::fs::write(overlay.join(format!("patches/{app}.yaml")), patch).expect("write patch");
        writeln!(k, "- path: patches/{app}.yaml").expect("string");
    }
    for i in 0..JSON_PATCHED {
        writeln!(
            k,
            "- target:\n    kind: Service\n    name: app{i:03}\n  patch: |-\n    - op: add\n      path: /spec/type\n      value: ClusterIP"
        )
        .expect("string");
    }
    std::fs::write(overlay.join("kustomization.yaml"), k).expect("overlay kustomization");
}

struct Subject {
    name: &'static str,
    source: PathBuf,
    dir: String,
}

fn bench(c: &mut Criterion) {
    let large = tempfile::tempdir().expect("tempdir");
    write_large(large.path());
    let subjects = [
        Subject {
            name: "small",
            source: corpus("kustomize").expect("the small overlay is in the shared corpus"),
            dir: "podinfo/deploy/overlays/production".into(),
        },
        Subject {
            name: "large",
            source: large.path().to_owned(),
            dir: "overlay".into(),
        },
    ];
    let renderers = Renderers::new();
    for subject in &subjects {
        // Both sides must succeed and agree before their times mean anything.
        let target = subject.source.join(&subject.dir);
        let expected = Oracle::Kustomize
            .run(&target, &["build", "."])
            .expect("kustomize builds");
        let output = renderers
            .render(
                "kustomize",
                &subject.source,
                &[("dir", &subject.dir)],
                "default",
                "bench",
            )
            .expect("the plugin renders");
        let expected = parse_stream(&expected).expect("kustomize prints YAML");
        compare_ordered(&expected, &objects_of(&output)).expect("plugin and kustomize agree");

        let mut group = c.benchmark_group(format!("kustomize/{}", subject.name));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(8));
        group.bench_function("plugin", |b| {
            b.iter(|| {
                renderers
                    .render(
                        "kustomize",
                        &subject.source,
                        &[("dir", &subject.dir)],
                        "default",
                        "bench",
                    )
                    .expect("renders")
            })
        });
        group.bench_function("kustomize build", |b| {
            b.iter(|| {
                Oracle::Kustomize
                    .run(&target, &["build", "."])
                    .expect("builds")
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
