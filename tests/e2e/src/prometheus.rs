//! Real parts for the Prometheus proxy's end-to-end tests and benchmark: a Debian Prometheus on
//! loopback scraping itself as two "namespaces" (so tenancy has something to keep apart), an HTTP
//! client for Prometheus' API direct and through tether-server's people's listener, and the waits.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tether_testkit::Prometheus;
use tokio_rustls::rustls;

use crate::tunnel::DEADLINE;

/// How long the workloads' samples exist before [`Metrics::start`] returns.
pub const SETTLED: Duration = Duration::from_secs(5);

/// Unix time in seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A time [`SETTLED`] seconds back, whole: Prometheus has every sample up to it, so direct and
/// tunnelled instant queries at it evaluate the same samples.
pub fn settled_time() -> f64 {
    (unix_now() - SETTLED.as_secs_f64()).floor()
}

/// Prometheus scraping itself three times: as `prometheus`, and as a workload of namespace `team-a`
/// and one of `kube-system` (labels set by file-based service discovery, written once the port is
/// known).
#[derive(Debug)]
pub struct Metrics {
    pub prometheus: Prometheus,
    _targets: tempfile::TempDir,
}

impl Metrics {
    pub async fn start() -> Result<Self> {
        let targets = tempfile::tempdir()?;
        let file = |ns: &str| targets.path().join(format!("{ns}.json"));
        let scrape = |ns: &str| {
            format!(
                "job_name: {ns}-app\nfile_sd_configs:\n  - files: ['{}']\n    refresh_interval: 1s\n",
                file(ns).display()
            )
        };
        let (a, system) = (scrape("team-a"), scrape("kube-system"));
        let prometheus = Prometheus::start_with_scrape_configs(&[&a, &system])?;
        for ns in ["team-a", "kube-system"] {
            let sd = serde_json::json!([{
                "targets": [format!("127.0.0.1:{}", prometheus.port())],
                "labels": {"namespace": ns},
            }]);
            std::fs::write(file(ns), sd.to_string())?;
        }
        let metrics = Metrics {
            prometheus,
            _targets: targets,
        };
        // Ready once both workloads have been scraped for a few seconds: tests ask for a time a few
        // seconds back, so that direct and tunnelled answers evaluate the same, complete samples.
        let http = Http::new();
        let deadline = Instant::now() + DEADLINE;
        loop {
            // The same whole second tests ask for: a fractional time checked here could lie after
            // the first samples while a test's floored time lies before them.
            let back = settled_time();
            let (_, body) = http
                .get(
                    &metrics.prometheus.url(),
                    &format!("/api/v1/query?query=count%20by%20(namespace)%20(up)&time={back}"),
                    None,
                )
                .await?;
            let v: Value = serde_json::from_slice(&body)?;
            // Three groups: the `prometheus` job has no namespace label, the workloads one each.
            if v["data"]["result"].as_array().is_some_and(|r| r.len() == 3) {
                return Ok(metrics);
            }
            if Instant::now() > deadline {
                bail!("Prometheus did not scrape both workloads: {v}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn url(&self) -> String {
        self.prometheus.url()
    }
}

/// A small HTTP/1.1 client: plain HTTP to Prometheus, HTTPS to the people's listener.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// Plain HTTP only (no certificate is trusted).
    pub fn new() -> Self {
        let nothing_trusted = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        Self::with_tls(std::sync::Arc::new(nothing_trusted))
    }

    /// HTTP, and HTTPS verified by `tls` (the people's listener: [`crate::tunnel::Setup::tls`]).
    pub fn with_tls(tls: std::sync::Arc<rustls::ClientConfig>) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// GET `base` + `path_and_query`; the status and the whole body.
    pub async fn get(
        &self,
        base: &str,
        path_and_query: &str,
        token: Option<&str>,
    ) -> Result<(u16, Bytes)> {
        self.send("GET", base, path_and_query, token, None).await
    }

    /// POST a form.
    pub async fn post_form(
        &self,
        base: &str,
        path: &str,
        token: Option<&str>,
        form: &[(&str, &str)],
    ) -> Result<(u16, Bytes)> {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            body.append_pair(k, v);
        }
        self.send("POST", base, path, token, Some(body.finish()))
            .await
    }

    async fn send(
        &self,
        method: &str,
        base: &str,
        path_and_query: &str,
        token: Option<&str>,
        form: Option<String>,
    ) -> Result<(u16, Bytes)> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{base}{path_and_query}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match form {
            Some(form) => {
                request = request.header("content-type", "application/x-www-form-urlencoded");
                Bytes::from(form)
            }
            None => Bytes::new(),
        };
        let response = tokio::time::timeout(
            DEADLINE,
            self.client.request(request.body(Full::new(body))?),
        )
        .await
        .with_context(|| format!("{method} {path_and_query}: no answer within {DEADLINE:?}"))??;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// `https://127.0.0.1:PORT/api/v1/agents/AGENT/prometheus`: the server as a Prometheus data source.
pub fn through(people: SocketAddr, agent: &str) -> String {
    format!(
        "https://127.0.0.1:{}/api/v1/agents/{agent}/prometheus",
        people.port()
    )
}

/// The JSON of a body, with the body in the error when it is not JSON.
pub fn json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body)
        .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(body)))
}

/// `(status, errorType, error)` of a Prometheus error answer.
pub fn error_of(status: u16, body: &[u8]) -> Result<(u16, String, String)> {
    let v = json(body)?;
    if v["status"] != "error" {
        bail!("not an error answer ({status}): {v}");
    }
    Ok((
        status,
        v["errorType"].as_str().unwrap_or_default().to_owned(),
        v["error"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// The `namespace` label of every series of a vector or matrix result.
pub fn namespaces(v: &Value) -> Vec<String> {
    v["data"]["result"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .map(|s| s["metric"]["namespace"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}
