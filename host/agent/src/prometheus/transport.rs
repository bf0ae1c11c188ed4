//! The proxy plugin's way out: the host checks each URL against the plugin's `allowed_urls` (only the
//! Prometheus in use), then this sends it. It never follows redirects, reads at most `max_body` bytes
//! of an answer (a 1 GB answer is stopped at the limit, not buffered) and gives up after `timeout`.
//!
//! The plugin runs on a blocking thread and its host calls are synchronous, so the request runs as a
//! task on the agent's runtime and the plugin's thread waits for its result.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tether_plugin_host::{HttpRequest, HttpResponse, OutboundError, OutboundTransport};

/// Headers of Prometheus' answer handed to the plugin; the rest (cookies, server names) stays here.
const ANSWER_HEADERS: &[&str] = &["content-type"];

#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    max_body: u64,
    timeout: Duration,
}

impl HttpTransport {
    /// Must be made on the agent's runtime (it keeps a handle to it).
    pub fn new(max_body: u64, timeout: Duration) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        Arc::new(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            runtime: tokio::runtime::Handle::current(),
            max_body,
            timeout,
        })
    }

    async fn send_async(&self, request: HttpRequest) -> Result<HttpResponse, OutboundError> {
        let mut url = request.target.clone();
        if !request.query.is_empty() {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &request.query {
                query.append_pair(k, v);
            }
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query.finish());
        }
        if url.starts_with("https://") {
            return Err(OutboundError::Failed(format!(
                "{url}: https is not supported for Prometheus yet; use its in-cluster http:// address"
            )));
        }
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| OutboundError::Failed(format!("invalid URL `{url}`: {e}")))?;
        let method = hyper::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| OutboundError::Failed(format!("invalid method `{}`", request.method)))?;
        let mut builder = hyper::Request::builder().method(method).uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let outbound = builder
            .body(Full::new(Bytes::from(request.body)))
            .map_err(|e| OutboundError::Failed(e.to_string()))?;
        let response = self
            .client
            .request(outbound)
            .await
            .map_err(|e| OutboundError::Failed(describe(&e)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| ANSWER_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let mut body = response.into_body();
        let mut collected = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| OutboundError::Failed(format!("reading the answer: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if (collected.len() + data.len()) as u64 > self.max_body {
                    // Dropping the body closes the connection: nothing more is read.
                    return Err(OutboundError::TooLarge(self.max_body));
                }
                collected.extend_from_slice(&data);
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body: collected,
        })
    }
}

/// hyper's error with its causes: "client error (Connect): tcp connect error: Connection refused".
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl OutboundTransport for HttpTransport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, OutboundError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let this = self.clone();
        let target = request.target.clone();
        // A task of the runtime, not a nested `block_on`: the plugin's thread is already inside one.
        let task = self.runtime.spawn(async move {
            let result = tokio::time::timeout(this.timeout, this.send_async(request)).await;
            let _ = tx.send(result);
        });
        match rx.recv() {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(OutboundError::Failed(format!(
                "{target}: no answer within {:?}",
                self.timeout
            ))),
            Err(_) => {
                task.abort();
                Err(OutboundError::Failed(
                    "the agent is shutting down".to_owned(),
                ))
            }
        }
    }
}
