//! PromQL through the tunnel, end to end: a real Prometheus on loopback, tether-server's people's
//! listener, the agent's tunnel and its `prometheus` proxy plugin — what comes back equals what
//! Prometheus answers directly, and what must be refused is.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceValidation, JSONSchemaProps,
};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use serde_json::Value;
use tether_e2e::prometheus::{Http, Metrics, error_of, json, namespaces, settled_time, through};
use tether_e2e::tunnel::{DEADLINE, Setup};
use tether_testkit::cluster;

/// alice may use the agent, as the agent.
const ALICE: &str = "user_access:\n  access_as: {agent: {}}\n  users: [alice]\n";

fn encode(query: &str) -> String {
    form_urlencoded::byte_serialize(query.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_through_the_server_equal_prometheus_and_the_limits_hold() -> Result<()> {
    let metrics = Metrics::start().await?;
    let config = format!(
        "{ALICE}prometheus:\n  url: {}\n  max_response: 64Ki\n",
        metrics.url()
    );
    let setup = Setup::start(&[("prod", &config)]).await?;
    let agent = setup.agent("prod").await?;
    let (_, token) = setup.person("alice", &[], None)?;
    let (_, bob) = setup.person("bob", &[], None)?;
    let http = Http::with_tls(setup.tls.clone());
    let direct = metrics.url();
    let tunnel = through(setup.people(), "prod");
    let t = settled_time();

    // The same questions, direct and through the server: the same JSON.
    let mut answers = Vec::new();
    for path in [
        format!(
            "/api/v1/query?query={}&time={t}",
            encode(r#"up{job="prometheus"}"#)
        ),
        format!(
            "/api/v1/query_range?query={}&start={}&end={t}&step=1",
            encode("sum by (namespace) (up)"),
            t - 30.0
        ),
        format!("/api/v1/series?match%5B%5D=up&start={}&end={t}", t - 60.0),
        format!("/api/v1/labels?start={}&end={t}", t - 60.0),
        format!("/api/v1/label/job/values?start={}&end={t}", t - 60.0),
        "/api/v1/status/buildinfo".to_owned(),
        "/api/v1/metadata?metric=up".to_owned(),
    ] {
        let (status, mine) = tunnel_get(&http, &tunnel, &path, &token).await?;
        let (_, theirs) = http.get(&direct, &path, None).await?;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&mine));
        assert_eq!(json(&mine)?, json(&theirs)?, "{path}");
        answers.push(json(&mine)?);
    }
    // Equal, and not because both are empty.
    assert_eq!(
        answers[0]["data"]["result"].as_array().map(Vec::len),
        Some(1),
        "at {t}: {}",
        answers[0]
    );
    assert_eq!(
        answers[1]["data"]["result"].as_array().map(Vec::len),
        Some(3)
    );
    // A form POST, as Grafana sends long queries.
    let time = t.to_string();
    let form = [("query", "count(up)"), ("time", time.as_str())];
    let (status, mine) = http
        .post_form(&tunnel, "/api/v1/query", Some(&token), &form)
        .await?;
    let (_, theirs) = http
        .post_form(&direct, "/api/v1/query", None, &form)
        .await?;
    assert_eq!(status, 200);
    assert_eq!(json(&mine)?, json(&theirs)?);

    // The admin API, remote write, federation: 403 from the plugin, nothing reaches Prometheus.
    for path in [
        "/api/v1/admin/tsdb/snapshot",
        "/api/v1/write",
        "/federate?match%5B%5D=up",
        "/api/v1/status/config",
    ] {
        let (status, body) = http.post_form(&tunnel, path, Some(&token), &[]).await?;
        let (status, kind, message) = error_of(status, &body)?;
        assert_eq!(
            (status, kind.as_str()),
            (403, "forbidden"),
            "{path}: {message}"
        );
    }

    // Ten years at one-second steps: refused with the limit named.
    let ten_years = 10.0 * 365.0 * 86_400.0;
    let path = format!(
        "/api/v1/query_range?query=up&start={}&end={t}&step=1s",
        t - ten_years
    );
    let (status, body) = tunnel_get(&http, &tunnel, &path, &token).await?;
    let (status, kind, message) = error_of(status, &body)?;
    assert_eq!((status, kind.as_str()), (400, "bad_data"));
    assert!(message.contains("max_range"), "{message}");

    // Every series of this Prometheus is far more than 64 KiB of JSON: an error, never a cut document.
    let path = format!("/api/v1/query?query={}", encode(r#"{__name__=~".+"}"#));
    let (status, body) = tunnel_get(&http, &tunnel, &path, &token).await?;
    let (status, kind, message) = error_of(status, &body)?;
    assert_eq!((status, kind.as_str()), (422, "execution"), "{message}");
    assert!(
        message.contains("larger than 64 KiB (max_response)"),
        "{message}"
    );

    // People: no token, a person not granted.
    let path = "/api/v1/query?query=up";
    let (status, _) = http.get(&tunnel, path, None).await?;
    assert_eq!(status, 401);
    let (status, body) = http.get(&tunnel, path, Some(&bob)).await?;
    let (status, _, message) = error_of(status, &body)?;
    assert_eq!(status, 403);
    assert!(message.contains("`bob`"), "{message}");

    // After all that, the agent still answers.
    let (status, _) = tunnel_get(&http, &tunnel, path, &token).await?;
    assert_eq!(status, 200);
    agent.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_holds_against_escape_attempts() -> Result<()> {
    let metrics = Metrics::start().await?;
    let config = format!(
        "{ALICE}prometheus:\n  url: {}\n  enforce: 'namespace=~\"team-a\"'\n",
        metrics.url()
    );
    let setup = Setup::start(&[("prod", &config)]).await?;
    let agent = setup.agent("prod").await?;
    let (_, token) = setup.person("alice", &[], None)?;
    let http = Http::with_tls(setup.tls.clone());
    let tunnel = through(setup.people(), "prod");
    let direct = metrics.url();
    let t = settled_time();

    // (query, whether team-a has series for it)
    for (query, some) in [
        ("up", true),
        (r#"{__name__=~".+"}"#, true),
        (r#"up or {__name__=~".+", namespace="kube-system"}"#, true),
        ("max_over_time(up[1m:1s])", true),
        (r#"label_replace(up, "namespace", "team-a", "", "")"#, true),
        (r#"{namespace="kube-system"}"#, false),
    ] {
        let path = format!("/api/v1/query?query={}&time={t}", encode(query));
        let (status, body) = tunnel_get(&http, &tunnel, &path, &token).await?;
        assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
        let found = namespaces(&json(&body)?);
        assert!(
            found.iter().all(|ns| ns == "team-a"),
            "{query} leaked {found:?}"
        );
        // Directly, the same query does see the other namespace (so the test can fail).
        let (_, theirs) = http.get(&direct, &path, None).await?;
        let unconfined = json(&theirs)?["data"]["result"]
            .as_array()
            .map_or(0, Vec::len);
        let confined = json(&body)?["data"]["result"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(
            confined < unconfined && (confined > 0) == some,
            "{query}: {confined} series through the server, {unconfined} direct at {t} ({path}): {}",
            String::from_utf8_lossy(&theirs)
        );
    }
    // label_replace can't relabel the other namespace's series into view: one series, not two.
    let relabelled = r#"label_replace(up{job=~".*-app"}, "namespace", "team-a", "", "")"#;
    let path = format!("/api/v1/query?query={}&time={t}", encode(relabelled));
    let (_, body) = tunnel_get(&http, &tunnel, &path, &token).await?;
    let relabelled = json(&body)?;
    assert_eq!(
        relabelled["data"]["result"].as_array().map(Vec::len),
        Some(1),
        "{relabelled}"
    );
    // Sums see the allowed series only.
    let path = format!("/api/v1/query?query={}&time={t}", encode("sum(up)"));
    let (_, mine) = tunnel_get(&http, &tunnel, &path, &token).await?;
    let path_a = format!(
        "/api/v1/query?query={}&time={t}",
        encode(r#"sum(up{namespace=~"team-a"})"#)
    );
    let (_, theirs) = http.get(&direct, &path_a, None).await?;
    assert_eq!(json(&mine)?, json(&theirs)?);
    // Label values and series are confined too.
    let (_, body) = tunnel_get(&http, &tunnel, "/api/v1/label/namespace/values", &token).await?;
    assert_eq!(json(&body)?["data"], serde_json::json!(["team-a"]));
    let (_, body) = tunnel_get(&http, &tunnel, "/api/v1/series?match%5B%5D=up", &token).await?;
    let series = json(&body)?;
    let labels = series["data"].as_array().context("series")?;
    assert!(!labels.is_empty() && labels.iter().all(|s| s["namespace"] == "team-a"));
    // What can't be confined is refused.
    for path in ["/api/v1/metadata", "/api/v1/query?query=info(up)"] {
        let (status, body) = tunnel_get(&http, &tunnel, path, &token).await?;
        let (status, kind, _) = error_of(status, &body)?;
        assert_eq!((status, kind.as_str()), (403, "forbidden"), "{path}");
    }
    agent.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_down_or_silent_is_a_clear_error_and_the_agent_carries_on() -> Result<()> {
    // Nothing listens on `down`; `silent` accepts connections and never answers.
    let down = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let silent_addr = silent.local_addr()?;
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let config = |url: String| format!("{ALICE}prometheus:\n  url: {url}\n  timeout: 1s\n");
    let setup = Setup::start(&[
        ("down", &config(format!("http://{down}"))),
        ("silent", &config(format!("http://{silent_addr}"))),
    ])
    .await?;
    let down_agent = setup.agent("down").await?;
    let silent_agent = setup.agent("silent").await?;
    let (_, token) = setup.person("alice", &[], None)?;
    let http = Http::with_tls(setup.tls.clone());

    let (status, body) = tunnel_get(
        &http,
        &through(setup.people(), "down"),
        "/api/v1/query?query=up",
        &token,
    )
    .await?;
    let (status, kind, message) = error_of(status, &body)?;
    assert_eq!((status, kind.as_str()), (503, "unavailable"));
    assert!(message.contains("did not answer"), "{message}");

    let started = Instant::now();
    let (status, body) = tunnel_get(
        &http,
        &through(setup.people(), "silent"),
        "/api/v1/query?query=up",
        &token,
    )
    .await?;
    let (status, _, message) = error_of(status, &body)?;
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("no answer within"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(15));

    // The agents are unharmed: their pools are idle again and they answer the next request.
    for agent in [&down_agent, &silent_agent] {
        let mut busy = agent.tunnel_pool.busy();
        tokio::time::timeout(DEADLINE, busy.wait_for(|n| *n == 0)).await??;
    }
    let (status, _) = tunnel_get(
        &http,
        &through(setup.people(), "down"),
        "/api/v1/query?query=up",
        &token,
    )
    .await?;
    assert_eq!(status, 503);
    held.abort();
    down_agent.shutdown().await;
    silent_agent.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_prometheus_and_a_crd_and_the_proxy_uses_what_it_found() -> Result<()> {
    let metrics = Metrics::start().await?;
    // No `prometheus.url`: the agent must find it.
    let setup = Setup::start(&[("found", ALICE)]).await?;
    let admin = cluster().admin().await?;
    let ns = setup.ns.name().to_owned();
    // The Prometheus runs on this host, not in the cluster: an ExternalName Service points at it.
    let service = Service {
        metadata: ObjectMeta {
            name: Some("prometheus".into()),
            namespace: Some(ns.clone()),
            labels: Some(std::collections::BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "prometheus".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some("localhost".into()),
            ports: Some(vec![ServicePort {
                name: Some("web".into()),
                port: i32::from(metrics.prometheus.port()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    Api::<Service>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &service)
        .await?;
    let group = format!("{ns}.tether-e2e.example");
    let crds = Api::<CustomResourceDefinition>::all(admin.clone());
    let crd = crds
        .create(&PostParams::default(), &widget_crd(&group))
        .await?;
    let agent = setup.agent("found").await?;

    // The server shows what the agent found.
    let admin_token = std::fs::read_to_string(setup.data.path().join("admin-token"))?;
    let http = Http::with_tls(setup.tls.clone());
    let api = format!("http://{}", setup.server.http_addr);
    let expected_url = format!("http://localhost:{}", metrics.prometheus.port());
    let deadline = Instant::now() + DEADLINE;
    let features = loop {
        let (status, body) = http
            .get(
                &api,
                "/api/v1/agents/found/features",
                Some(admin_token.trim()),
            )
            .await?;
        assert_eq!(status, 200);
        let v = json(&body)?;
        let has_group = v["crd_groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g == group.as_str()));
        let has_prometheus = v["features"].as_array().is_some_and(|f| {
            f.iter()
                .any(|f| f["name"] == "prometheus" && f["url"] == expected_url.as_str())
        });
        if has_group && has_prometheus {
            break v;
        }
        assert!(Instant::now() < deadline, "not discovered: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let evidence: Vec<Value> = features["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "prometheus")
        .flat_map(|f| f["evidence"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(
        evidence
            .iter()
            .any(|e| *e == format!("service {ns}/prometheus").as_str()),
        "{evidence:?}"
    );

    // And the proxy asks the Prometheus it found.
    let (_, token) = setup.person("alice", &[], None)?;
    let t = settled_time();
    let path = format!("/api/v1/query?query=count(up)&time={t}");
    let deadline = Instant::now() + DEADLINE;
    let mine = loop {
        let (status, body) =
            tunnel_get(&http, &through(setup.people(), "found"), &path, &token).await?;
        if status == 200 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&body)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (_, theirs) = http.get(&metrics.url(), &path, None).await?;
    assert_eq!(json(&mine)?, json(&theirs)?);

    crds.delete(
        crd.metadata.name.as_deref().unwrap(),
        &DeleteParams::default(),
    )
    .await?;
    agent.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}

fn widget_crd(group: &str) -> CustomResourceDefinition {
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("widgets.{group}")),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: group.to_owned(),
            names: CustomResourceDefinitionNames {
                kind: "Widget".into(),
                plural: "widgets".into(),
                ..CustomResourceDefinitionNames::default()
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: "v1".into(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(JSONSchemaProps {
                        type_: Some("object".into()),
                        x_kubernetes_preserve_unknown_fields: Some(true),
                        ..JSONSchemaProps::default()
                    }),
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    }
}

/// A GET through the server; while the agent's prometheus module has not loaded its plugin yet
/// (just after the agent started) the answer is a 503 saying so, and the request is made again.
async fn tunnel_get(
    http: &Http,
    base: &str,
    path: &str,
    token: &str,
) -> Result<(u16, bytes::Bytes)> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = http.get(base, path, Some(token)).await?;
        let starting = status == 503
            && String::from_utf8_lossy(&body).contains("has not read its configuration yet");
        if !starting || Instant::now() > deadline {
            return Ok((status, body));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
