//! The drift-detector and proxy worlds end to end, and the catalog the agent loads plugins through.

mod common;

use common::{ENGINE, load, read};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use tether_config::plugins::{PluginLimits, Settings, parse_plugins_section};
use tether_plugin_host::artifacts;
use tether_plugin_host::builtin;
use tether_plugin_host::{
    FieldOwner, GuestErrorKind, HttpRequest, HttpResponse, LoadError, LocalPluginFiles, Observed,
    OutboundError, OutboundTransport, PluginCatalog, PluginDefinition, PluginError, RenderRequest,
    Verdict, World,
};

fn observed(desired: Option<&str>, live: Option<&str>, owners: Vec<FieldOwner>) -> Observed {
    Observed {
        desired: desired.map(str::to_owned),
        live: live.map(str::to_owned),
        owners,
    }
}

#[test]
fn the_drift_detector_reports_changed_fields_with_their_owner() {
    let drift = load(
        "drift",
        World::DriftDetector,
        artifacts::DRIFT_PATH,
        PluginLimits::default(),
    );
    let desired = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"replicas":2}}"#;
    let live = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","uid":"1","labels":{"app":"web","extra":"x"}},"spec":{"replicas":5,"paused":false},"status":{"ready":1}}"#;
    let owners = vec![
        FieldOwner {
            manager: "tether".into(),
            operation: "Apply".into(),
            fields: vec!["/spec".into()],
        },
        FieldOwner {
            manager: "kubectl-scale".into(),
            operation: "Update".into(),
            fields: vec!["/spec/replicas".into()],
        },
    ];
    let reports = drift
        .detect_drift(
            &Settings::default(),
            &[
                observed(Some(desired), Some(live), owners),
                observed(Some(desired), Some(desired), vec![]),
                observed(Some(desired), None, vec![]),
                observed(None, Some(live), vec![]),
            ],
        )
        .unwrap();
    assert_eq!(reports.len(), 4);
    assert_eq!(reports[0].verdict, Verdict::Drifted);
    assert_eq!(reports[0].drifts.len(), 1, "{:?}", reports[0].drifts);
    let drift0 = &reports[0].drifts[0];
    assert_eq!(drift0.path, "/spec/replicas");
    assert_eq!(
        (drift0.desired.as_deref(), drift0.live.as_deref()),
        (Some("2"), Some("5"))
    );
    assert_eq!(
        drift0.owner.as_deref(),
        Some("kubectl-scale"),
        "the most specific owner wins"
    );
    assert_eq!(reports[1].verdict, Verdict::InSync);
    assert_eq!(reports[2].verdict, Verdict::Missing);
    assert_eq!(reports[3].verdict, Verdict::Extraneous);

    let ignore = Settings::new(vec![("ignore".into(), "/spec/replicas".into())]).unwrap();
    let reports = drift
        .detect_drift(&ignore, &[observed(Some(desired), Some(live), vec![])])
        .unwrap();
    assert_eq!(reports[0].verdict, Verdict::InSync);

    let error = drift
        .detect_drift(
            &Settings::default(),
            &[observed(Some("{not json"), Some("{}"), vec![])],
        )
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::Guest { error, .. } if error.kind == GuestErrorKind::InvalidInput),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("observed[0].desired is not JSON"),
        "{error}"
    );
}

/// Records what the host let through and answers with a canned response.
#[derive(Default)]
struct FakeUpstream {
    seen: Mutex<Vec<String>>,
}

impl OutboundTransport for FakeUpstream {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, OutboundError> {
        let query: Vec<String> = request
            .query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        self.seen.lock().unwrap().push(format!(
            "{} {}?{}",
            request.method,
            request.target,
            query.join("&")
        ));
        Ok(HttpResponse {
            status: 200,
            headers: vec![],
            body: br#"{"status":"success"}"#.to_vec(),
        })
    }
}

fn proxy_with(upstream: &str, allowed: &str) -> tether_plugin_host::Plugin {
    let bytes = read(artifacts::PROXY_PATH);
    ENGINE
        .load(PluginDefinition {
            settings: Settings::new(vec![("upstream".into(), upstream.into())]).unwrap(),
            allowed_urls: vec![allowed.to_owned().try_into().unwrap()],
            ..PluginDefinition::new("prometheus", World::Proxy, &bytes)
        })
        .unwrap()
}

fn get(target: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        target: target.into(),
        query: vec![("query".into(), "up".into())],
        headers: vec![
            ("accept".into(), "application/json".into()),
            ("authorization".into(), "secret".into()),
        ],
        body: vec![],
    }
}

#[test]
fn the_proxy_reaches_allowed_urls_only_through_the_host() {
    let upstream = Arc::new(FakeUpstream::default());
    let proxy = proxy_with("http://prometheus:9090", "http://prometheus:9090/api/v1/");
    let response = proxy
        .handle(&get("/api/v1/query"), upstream.clone())
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, br#"{"status":"success"}"#);
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        ["GET http://prometheus:9090/api/v1/query?query=up"]
    );

    // Outside the allow-list: the guest sees `denied` as a value and reports it; nothing is sent.
    let error = proxy
        .handle(&get("/admin/tsdb/delete"), upstream.clone())
        .unwrap_err();
    let PluginError::Guest {
        plugin,
        error: guest,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (plugin.as_str(), guest.kind),
        ("prometheus", GuestErrorKind::Denied)
    );
    assert!(
        guest
            .message
            .contains("not in the allowed_urls of plugin `prometheus`"),
        "{guest}"
    );
    let error = proxy
        .handle(&get("/api/v1/../../admin"), upstream.clone())
        .unwrap_err();
    assert!(error.to_string().contains("dot segments"), "{error}");
    assert_eq!(
        upstream.seen.lock().unwrap().len(),
        1,
        "denied requests never reach the transport"
    );

    let mut post = get("/api/v1/query");
    post.method = "POST".into();
    assert_eq!(proxy.handle(&post, upstream).unwrap().status, 405);
}

#[test]
fn a_plugin_of_one_world_cannot_be_called_as_another() {
    let drift = load(
        "drift",
        World::DriftDetector,
        artifacts::DRIFT_PATH,
        PluginLimits::default(),
    );
    let dir = common::empty_dir();
    let error = drift.render(&RenderRequest::new(dir.path())).unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `drift` is a drift-detector, not a renderer"
    );
}

#[test]
fn the_catalog_reports_failed_plugins_by_name_and_loads_the_rest() {
    let plugin_dir = tempfile::tempdir().unwrap();
    let hello = read(artifacts::HELLO_PATH);
    std::fs::write(plugin_dir.path().join("hello.wasm"), &hello).unwrap();
    std::fs::write(
        plugin_dir.path().join("liar.wasm"),
        read(artifacts::WRONG_EXPORTS_PATH),
    )
    .unwrap();
    let good = hex(&hello);
    let config = format!(
        r#"
plugins:
  - {{name: hello, world: renderer, path: hello.wasm, sha256: {good}, settings: {{name: greeting}}}}
  - {{name: tampered, world: renderer, path: hello.wasm, sha256: {zero}}}
  - {{name: absent, world: renderer, path: absent.wasm, sha256: {good}}}
  - {{name: liar, world: renderer, path: liar.wasm, sha256: {liar}}}
  - {{name: raw, world: renderer, path: hello.wasm, sha256: {good}}}
"#,
        zero = "0".repeat(64),
        liar = hex(&read(artifacts::WRONG_EXPORTS_PATH)),
    );
    let specs = parse_plugins_section(&config, "config.yaml").unwrap();
    let files = LocalPluginFiles {
        plugin_dir: Some(plugin_dir.path().to_owned()),
        repo_root: None,
    };
    let catalog = PluginCatalog::load(&ENGINE, &specs, &files);

    let failed: Vec<(&str, String)> = catalog
        .failures()
        .iter()
        .map(|f| (f.plugin.as_str(), f.error.to_string()))
        .collect();
    assert_eq!(
        failed.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["tampered", "absent", "liar", "raw"]
    );
    assert!(matches!(
        catalog.failures()[0].error,
        LoadError::Sha256Mismatch { .. }
    ));
    assert!(matches!(
        catalog.failures()[1].error,
        LoadError::Read { .. }
    ));
    assert!(matches!(
        catalog.failures()[2].error,
        LoadError::WorldMismatch { .. }
    ));
    assert!(matches!(
        catalog.failures()[3].error,
        LoadError::ShadowsBuiltin { .. }
    ));
    for (name, message) in &failed {
        assert!(message.contains(&format!("plugin `{name}`")), "{message}");
    }

    let names: Vec<&str> = catalog.plugins().map(|p| p.name()).collect();
    assert_eq!(names, ["drift", "hello", "helm", "kustomize", "raw"]);
    let dir = common::empty_dir();
    let output = catalog
        .renderer("hello")
        .unwrap()
        .render(&RenderRequest::new(dir.path()))
        .unwrap();
    assert_eq!(
        output.objects[0].name(),
        "greeting",
        "configured settings reach the plugin"
    );
    assert!(catalog.renderer("drift").is_err());
    let missing = catalog.get("nope").unwrap_err().to_string();
    assert_eq!(
        missing,
        "no plugin named `nope` is loaded (loaded: drift, hello, helm, kustomize, raw)"
    );
    // Where a configured plugin is used, the reason it did not load is part of the error.
    let refused = catalog.renderer("tampered").unwrap_err().to_string();
    assert!(
        refused.starts_with("plugin `tampered` is configured but did not load:")
            && refused.contains("sha256 mismatch"),
        "{refused}"
    );
}

#[test]
fn plugin_files_cannot_escape_their_directory() {
    let outer = tempfile::tempdir().unwrap();
    let plugin_dir = outer.path().join("plugins");
    std::fs::create_dir(&plugin_dir).unwrap();
    let hello = read(artifacts::HELLO_PATH);
    std::fs::write(outer.path().join("outside.wasm"), &hello).unwrap();
    std::os::unix::fs::symlink(
        outer.path().join("outside.wasm"),
        plugin_dir.join("link.wasm"),
    )
    .unwrap();
    let specs = parse_plugins_section(
        &format!(
            "plugins:\n  - {{name: sneaky, world: renderer, path: link.wasm, sha256: {}}}\n",
            hex(&hello)
        ),
        "config.yaml",
    )
    .unwrap();
    let files = LocalPluginFiles {
        plugin_dir: Some(plugin_dir),
        repo_root: None,
    };
    let catalog = PluginCatalog::load_with(&ENGINE, &[], &specs, &files);
    assert_eq!(catalog.failures().len(), 1);
    assert!(
        matches!(catalog.failures()[0].error, LoadError::Read { .. }),
        "{:?}",
        catalog.failures()
    );
}

#[test]
fn built_ins_are_embedded_and_load() {
    for plugin in builtin::ALL {
        assert!(
            plugin.component.starts_with(b"\0asm"),
            "{} is a wasm binary",
            plugin.name
        );
        ENGINE
            .load(PluginDefinition::new(
                plugin.name,
                plugin.world,
                plugin.component,
            ))
            .unwrap();
    }
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
