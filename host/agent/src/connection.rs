//! The agent's connection to tether-server: one gRPC channel that dials out (the cluster needs no
//! inbound port), the agent's token on every call, whether the server accepts that token, the last
//! reports to send again after a reconnection, and the backoff every long-lived call retries with.
//! The token is a secret: it is never logged and never handed to a module.
//!
//! A refused token is not a network error: retrying cannot fix it, only a new token can. So the
//! first refusal is logged once at ERROR, every call but the registration probe waits at the gate
//! instead of hammering the server, and the token file is re-read so a rotated Secret recovers the
//! agent without a restart.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tether_rpc::agent::v1::agent_service_client::AgentServiceClient;
use tether_rpc::agent::v1::{ConfigurationReport, ProjectStatus, StatusReport};
use tether_rpc::configuration::v1::configuration_service_client::ConfigurationServiceClient;
use tether_rpc::gitops::v1::gitops_service_client::GitopsServiceClient;
use tether_rpc::tunnel::v1::tunnel_service_client::TunnelServiceClient;
use tokio::sync::watch;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tower::{Service, ServiceExt};

/// How long a connection must stay up before the backoff starts from the beginning again.
pub const HEALTHY_PERIOD: Duration = Duration::from_secs(60);
/// First and longest wait between probes while the server refuses the token: a new token takes a
/// person or a Secret rotation (which the token file's watch notices at once), so probing fast
/// would only load the server and its failure limit.
pub const TOKEN_REFUSED_BACKOFF: (Duration, Duration) =
    (Duration::from_secs(30), Duration::from_secs(300));
/// How often the token file is read for a rotated token. Kubernetes updates a mounted Secret
/// within about a minute; this adds little to that.
pub const TOKEN_FILE_POLL: Duration = Duration::from_secs(5);
const KEEPALIVE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("server address {address}: {source}")]
    Address {
        address: String,
        source: tonic::transport::Error,
    },
    #[error(
        "server address {address}: give https://HOST:PORT, or wss://HOST[:PORT] through proxies that \
         pass only HTTP/1.1 (http:// and ws:// to a loopback address)"
    )]
    Scheme { address: String },
    #[error(
        "server address {address}: http:// and ws:// would send the agent's token in clear text to a \
         host that is not loopback; use https:// or wss:// (or pass --insecure-plaintext if the \
         network is trusted)"
    )]
    Plaintext { address: String },
    #[error("server address {address}: {message}")]
    WebSocket { address: String, message: String },
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the agent's token is empty ({from})")]
    EmptyToken { from: String },
    #[error("the token is not a valid header value (it must be printable ASCII)")]
    Token,
}

/// Where the agent's token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// Read now and re-read whenever it changes (a mounted Secret that is rotated).
    File(PathBuf),
    /// Given once (from the environment); cannot change while the agent runs.
    Value(SecretString),
}

impl TokenSource {
    fn header(&self) -> Result<http::HeaderValue, ConnectionError> {
        let (token, from) = match self {
            TokenSource::File(path) => (
                SecretString::from(std::fs::read_to_string(path).map_err(|source| {
                    ConnectionError::TokenFile {
                        path: path.clone(),
                        source,
                    }
                })?),
                path.display().to_string(),
            ),
            TokenSource::Value(token) => (token.clone(), "TETHER_TOKEN".to_owned()),
        };
        let token = token.expose_secret().trim();
        if token.is_empty() {
            return Err(ConnectionError::EmptyToken { from });
        }
        let mut header = http::HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| ConnectionError::Token)?;
        header.set_sensitive(true);
        Ok(header)
    }
}

/// Whether the server currently accepts the agent, as the last call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No call has got through yet (or only network errors since the start).
    Connecting,
    /// The last answer came from the server with the token accepted.
    Connected,
    /// The server refused the token (Unauthenticated).
    TokenRefused,
}

/// Marks a call that goes through even while the token is refused: the registration probe that
/// finds out whether a token works again, and reports that must never wait.
#[derive(Debug, Clone, Copy)]
pub struct PassesGate;

/// The `authorization: Bearer <token>` header, as last read; marked sensitive so no debug output
/// of a request shows it.
#[derive(Clone)]
pub struct BearerToken(Arc<RwLock<http::HeaderValue>>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    fn current(&self) -> http::HeaderValue {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The channel with a gate in front: while the token is refused, calls wait here (the probe and
/// reports excepted); each call gets the token as read when it passes the gate (a call that waited
/// goes out with the new token, not the refused one); every answer's status says whether the token
/// was accepted.
#[derive(Debug, Clone)]
pub struct GatedChannel {
    channel: Channel,
    link: Arc<watch::Sender<LinkState>>,
    token: BearerToken,
}

impl Service<http::Request<Body>> for GatedChannel {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is awaited on a clone of the channel inside `call`, after the gate.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let channel = self.channel.clone();
        let link = self.link.clone();
        let token = self.token.clone();
        Box::pin(async move {
            if request.extensions().get::<PassesGate>().is_none() {
                let mut state = link.subscribe();
                // Only a dropped sender ends the wait early, and the connection holds it.
                let _ = state.wait_for(|s| *s != LinkState::TokenRefused).await;
            }
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, token.current());
            let response = channel.oneshot(request).await?;
            observe(&link, response.headers());
            Ok(response)
        })
    }
}

/// Reads the token verdict from an answer's headers. Authentication failures come back as
/// "trailers only" answers, so the status is in the headers; an answer without a status is a
/// stream the server accepted. Other errors say nothing about the token.
fn observe(link: &watch::Sender<LinkState>, headers: &http::HeaderMap) {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from);
    let state = match code {
        None | Some(tonic::Code::Ok) => LinkState::Connected,
        // Only Unauthenticated: tether-server answers PermissionDenied for a repository the
        // agent is not granted, a mistake in one project's configuration, not in the token.
        Some(tonic::Code::Unauthenticated) => LinkState::TokenRefused,
        Some(_) => return,
    };
    let previous = link.send_replace(state);
    match (previous, state) {
        (LinkState::TokenRefused, LinkState::TokenRefused) => {}
        (_, LinkState::TokenRefused) => tracing::error!(
            code = ?code.unwrap_or(tonic::Code::Unauthenticated),
            "tether-server refused the agent's token: it may have been revoked or expired. The agent \
             is not ready and checks every few minutes, and at once when its token file changes"
        ),
        (LinkState::TokenRefused, _) => {
            tracing::info!("tether-server accepts the agent's token again");
        }
        _ => {}
    }
}

type Authed = GatedChannel;

/// A lazily connected channel to the server; tonic reconnects it as needed.
#[derive(Debug, Clone)]
pub struct ServerConnection {
    channel: GatedChannel,
    token: BearerToken,
    source: Arc<TokenSource>,
    /// Bumped whenever a different token is read from the token file.
    token_changes: Arc<watch::Sender<u64>>,
    /// Bumped whenever a long-lived stream is opened again after it failed: the server may have
    /// restarted, so the agent registers again.
    reopened: Arc<watch::Sender<u64>>,
    reports: Arc<Mutex<LastReports>>,
}

/// What the server was last told, to tell a restarted server at once.
#[derive(Debug, Default)]
struct LastReports {
    projects: BTreeMap<String, ProjectStatus>,
    configuration: Option<ConfigurationReport>,
}

impl ServerConnection {
    /// `address` is `https://…`, verified against the system roots plus `ca_pem`, or `http://…`,
    /// which is refused for a host that is not loopback unless `insecure_plaintext`; `wss://…` and
    /// `ws://…` are the same over a WebSocket (see [`WebSocketDialer`]).
    pub fn new(
        address: &str,
        token: TokenSource,
        ca_pem: Option<Vec<u8>>,
        insecure_plaintext: bool,
    ) -> Result<Self, ConnectionError> {
        let err = |source| ConnectionError::Address {
            address: address.to_owned(),
            source,
        };
        let uri: http::Uri = address.parse().map_err(|_| ConnectionError::Scheme {
            address: address.to_owned(),
        })?;
        let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
        if matches!(scheme.as_deref(), Some("http" | "ws")) {
            check_plaintext(address, &uri, insecure_plaintext)?;
        }
        let channel = match scheme.as_deref() {
            Some("https" | "http") => {
                let mut endpoint = endpoint(address.to_owned()).map_err(err)?;
                if scheme.as_deref() == Some("https") {
                    let tls = |native: bool| {
                        let mut tls = ClientTlsConfig::new();
                        if native {
                            tls = tls.with_native_roots();
                        }
                        if let Some(ca) = &ca_pem {
                            tls = tls.ca_certificate(Certificate::from_pem(ca));
                        }
                        tls
                    };
                    endpoint = match endpoint.clone().tls_config(tls(true)) {
                        Ok(endpoint) => endpoint,
                        // A minimal image may have no system roots; the given CA is enough then.
                        Err(e) if ca_pem.is_some() => {
                            tracing::info!(
                                "no system root certificates ({e}); verifying the server with --server-ca-file only"
                            );
                            endpoint.tls_config(tls(false)).map_err(err)?
                        }
                        Err(e) => return Err(err(e)),
                    };
                }
                endpoint.connect_lazy()
            }
            Some("wss" | "ws") => {
                let dialer = WebSocketDialer::new(address, &uri, ca_pem.as_deref())?;
                // The gRPC requests inside name the server as the WebSocket URL does; the scheme
                // of this endpoint only keeps tonic from adding TLS of its own.
                let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
                endpoint(format!("http://{authority}"))
                    .map_err(err)?
                    .connect_with_connector_lazy(tower::service_fn(move |_: http::Uri| {
                        dialer.clone().dial()
                    }))
            }
            _ => {
                return Err(ConnectionError::Scheme {
                    address: address.to_owned(),
                });
            }
        };
        let token_header = BearerToken(Arc::new(RwLock::new(token.header()?)));
        Ok(Self {
            channel: GatedChannel {
                channel,
                link: Arc::new(watch::Sender::new(LinkState::Connecting)),
                token: token_header.clone(),
            },
            token: token_header,
            source: Arc::new(token),
            token_changes: Arc::new(watch::Sender::new(0)),
            reopened: Arc::new(watch::Sender::new(0)),
            reports: Arc::default(),
        })
    }

    pub fn gitops(&self) -> GitopsServiceClient<Authed> {
        GitopsServiceClient::new(self.channel.clone())
    }

    pub fn configuration(&self) -> ConfigurationServiceClient<Authed> {
        ConfigurationServiceClient::new(self.channel.clone())
    }

    pub fn drift(&self) -> tether_rpc::drift::v1::drift_service_client::DriftServiceClient<Authed> {
        tether_rpc::drift::v1::drift_service_client::DriftServiceClient::new(self.channel.clone())
    }

    pub fn discovery(
        &self,
    ) -> tether_rpc::discovery::v1::discovery_service_client::DiscoveryServiceClient<Authed> {
        tether_rpc::discovery::v1::discovery_service_client::DiscoveryServiceClient::new(
            self.channel.clone(),
        )
    }

    pub fn agent(&self) -> AgentServiceClient<Authed> {
        AgentServiceClient::new(self.channel.clone())
    }

    /// Whether the server accepts the agent's token, changing as calls find out.
    pub fn link(&self) -> watch::Receiver<LinkState> {
        self.channel.link.subscribe()
    }

    /// Changes whenever a new token has been read from the token file.
    pub fn token_changes(&self) -> watch::Receiver<u64> {
        self.token_changes.subscribe()
    }

    /// Changes whenever a long-lived stream was opened again after failing.
    pub fn reopened(&self) -> watch::Receiver<u64> {
        self.reopened.subscribe()
    }

    /// A long-lived stream failed and is open again.
    pub fn stream_reopened(&self) {
        self.reopened.send_modify(|n| *n += 1);
    }

    /// Reads the token file again; true if it holds a different token, which is used from now on.
    pub fn reload_token(&self) -> Result<bool, ConnectionError> {
        let header = self.source.header()?;
        let changed = {
            let mut current = self
                .token
                .0
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = *current != header;
            *current = header;
            changed
        };
        if changed {
            tracing::info!("read a new token from the token file");
            self.token_changes.send_modify(|n| *n += 1);
        }
        Ok(changed)
    }

    /// Re-reads the token file every [`TOKEN_FILE_POLL`] until `stop`. Polling, rather than file
    /// events, because Kubernetes replaces a mounted Secret by swapping a symlink of the directory.
    pub async fn watch_token_file(self, stop: CancellationToken) {
        if !matches!(*self.source, TokenSource::File(_)) {
            return;
        }
        let mut failing = false;
        let mut poll = tokio::time::interval(TOKEN_FILE_POLL);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = poll.tick() => {}
            }
            match self.reload_token() {
                Ok(_) => failing = false,
                // Logged once per spell of failures: the old token stays in use meanwhile.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!("{e}; the agent keeps using the token it has");
                }
                Err(_) => {}
            }
        }
    }

    /// Reports a project's status, remembered to be sent again after a reconnection. Never waits
    /// for a refused token to be replaced.
    pub async fn report_status(&self, status: ProjectStatus) {
        self.lock_reports()
            .projects
            .insert(status.project_id.clone(), status.clone());
        let mut request = tonic::Request::new(StatusReport {
            projects: vec![status],
        });
        request.extensions_mut().insert(PassesGate);
        if let Err(e) = self.agent().report_status(request).await {
            tracing::warn!("status report not delivered: {}", e.message());
        }
    }

    /// Reports what the agent made of a configuration, remembered like statuses.
    pub async fn report_configuration(&self, report: ConfigurationReport) {
        self.lock_reports().configuration = Some(report.clone());
        let mut request = tonic::Request::new(report);
        request.extensions_mut().insert(PassesGate);
        if let Err(e) = self.agent().report_configuration(request).await {
            tracing::warn!("configuration report not delivered: {}", e.message());
        }
    }

    /// Sends the last status of every project and the last configuration report again: the
    /// server keeps them in memory only, so after it restarts it knows nothing until told.
    pub async fn resend_reports(&self) {
        let (projects, configuration) = {
            let reports = self.lock_reports();
            (
                reports.projects.values().cloned().collect::<Vec<_>>(),
                reports.configuration.clone(),
            )
        };
        if let Some(report) = configuration {
            self.report_configuration(report).await;
        }
        if !projects.is_empty() {
            let mut request = tonic::Request::new(StatusReport { projects });
            request.extensions_mut().insert(PassesGate);
            if let Err(e) = self.agent().report_status(request).await {
                tracing::warn!("status reports not delivered again: {}", e.message());
            }
        }
    }

    fn lock_reports(&self) -> std::sync::MutexGuard<'_, LastReports> {
        self.reports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn tunnel(&self) -> TunnelServiceClient<Authed> {
        TunnelServiceClient::new(self.channel.clone())
    }
}

/// The endpoint settings both transports share: HTTP/2 keepalive (which also finds a dead
/// connection through a WebSocket) and a bounded connect.
fn endpoint(uri: String) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(uri)?
        .http2_keep_alive_interval(KEEPALIVE)
        .keep_alive_while_idle(true)
        .connect_timeout(Duration::from_secs(10)))
}

/// `http://` and `ws://` only to loopback, unless the operator said the network is trusted.
fn check_plaintext(
    address: &str,
    uri: &http::Uri,
    insecure_plaintext: bool,
) -> Result<(), ConnectionError> {
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        if !insecure_plaintext {
            return Err(ConnectionError::Plaintext {
                address: address.to_owned(),
            });
        }
        tracing::warn!(
            server = address,
            "--insecure-plaintext: the agent's token goes to the server unencrypted"
        );
    }
    Ok(())
}

/// Why a WebSocket connection to the server could not be opened. Shown in the agent's log as the
/// reason a call failed (tonic keeps a connector's error as the status message).
#[derive(Debug, thiserror::Error)]
pub enum WebSocketError {
    #[error("WebSocket {url}: cannot connect to {host}:{port}: {source}")]
    Connect {
        url: String,
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("WebSocket {url}: TLS with {host}: {source}")]
    Tls {
        url: String,
        host: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Handshake(#[from] tether_rpc::websocket::HandshakeError),
}

/// Opens the agent's connection to the server as a WebSocket (`ws://` or `wss://`), for networks
/// whose proxies pass only HTTP/1.1; the gRPC connection then runs inside it, unchanged.
#[derive(Clone)]
pub struct WebSocketDialer {
    /// The URL dialled: the given one, with [`tether_rpc::websocket::PATH`] when it has no path.
    url: Arc<str>,
    host: String,
    port: u16,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for WebSocketDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketDialer")
            .field("url", &self.url)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl WebSocketDialer {
    /// For `uri` (`address` parsed); `wss://` verifies the server with the system's roots plus
    /// `ca_pem`, as `https://` does.
    pub fn new(
        address: &str,
        uri: &http::Uri,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, ConnectionError> {
        let invalid = |message: String| ConnectionError::WebSocket {
            address: address.to_owned(),
            message,
        };
        let secure = uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("wss"));
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host".to_owned()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        // A URL without a path means the server's own; a proxy that routes by path gets the
        // path given (and must rewrite it to the server's).
        let url = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("" | "/") => format!(
                "{}://{}{}",
                uri.scheme_str().unwrap_or_default(),
                uri.authority().map(|a| a.as_str()).unwrap_or_default(),
                tether_rpc::websocket::PATH
            ),
            Some(_) => address.to_owned(),
        };
        let tls = if secure {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| invalid(format!("{host} is not a valid TLS server name: {e}")))?;
            Some((websocket_tls(address, ca_pem)?, name))
        } else {
            None
        };
        Ok(Self {
            url: url.into(),
            host,
            port,
            tls,
        })
    }

    /// The URL this dialer opens.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// TCP, TLS for `wss://`, the WebSocket handshake; the byte stream inside for HTTP/2.
    pub async fn dial(self) -> Result<TokioIo<tokio::io::DuplexStream>, WebSocketError> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| WebSocketError::Connect {
                url: self.url.to_string(),
                host: self.host.clone(),
                port: self.port,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let stream =
            match self.tls {
                Some((connector, name)) => {
                    let tls = connector.connect(name, tcp).await.map_err(|source| {
                        WebSocketError::Tls {
                            url: self.url.to_string(),
                            host: self.host.clone(),
                            source,
                        }
                    })?;
                    tether_rpc::websocket::client(tls, &self.url).await?
                }
                None => tether_rpc::websocket::client(tcp, &self.url).await?,
            };
        Ok(TokioIo::new(stream))
    }
}

/// TLS for `wss://`: the system's roots plus `ca_pem`, HTTP/1.1 (the WebSocket handshake is an
/// HTTP/1.1 request).
fn websocket_tls(
    address: &str,
    ca_pem: Option<&[u8]>,
) -> Result<tokio_rustls::TlsConnector, ConnectionError> {
    let invalid = |message: String| ConnectionError::WebSocket {
        address: address.to_owned(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if let Some(ca) = ca_pem {
        let mut given = 0;
        for cert in CertificateDer::pem_slice_iter(ca) {
            let cert = cert.map_err(|e| invalid(format!("--server-ca-file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("--server-ca-file: {e}")))?;
            given += 1;
        }
        if given == 0 {
            return Err(invalid(
                "--server-ca-file holds no PEM certificate".to_owned(),
            ));
        }
    } else if added == 0 {
        return Err(invalid(
            "no system root certificates to verify the server with; give --server-ca-file"
                .to_owned(),
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Jittered exponential backoff that starts over once a connection has been healthy for a while.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    healthy_since: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(60))
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
            healthy_since: None,
        }
    }

    /// For probing whether a refused token is accepted again: see [`TOKEN_REFUSED_BACKOFF`].
    pub fn token_refused() -> Self {
        Self::new(TOKEN_REFUSED_BACKOFF.0, TOKEN_REFUSED_BACKOFF.1)
    }

    /// A call got through; the connection counts as healthy from `now`.
    pub fn connected(&mut self, now: Instant) {
        self.healthy_since.get_or_insert(now);
    }

    /// Starts over from the first delay (a new token makes the old failures irrelevant).
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.healthy_since = None;
    }

    /// The call failed at `now`: how long to wait before the next attempt. ±20% jitter keeps a
    /// fleet of agents from reconnecting in lockstep after a server restart.
    pub fn failed(&mut self, now: Instant) -> Duration {
        if self
            .healthy_since
            .take()
            .is_some_and(|since| now.duration_since(since) >= HEALTHY_PERIOD)
        {
            self.next = self.initial;
        }
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::rng().random_range(0.8..1.2);
        base.mul_f64(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> TokenSource {
        TokenSource::Value(SecretString::from("tthr_very_secret"))
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let now = Instant::now();
        let delays: Vec<_> = (0..6).map(|_| b.failed(now).as_secs_f64()).collect();
        for (delay, base) in delays.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            assert!((base * 0.8..=base * 1.2).contains(delay), "{delays:?}");
        }
    }

    #[test]
    fn backoff_starts_over_only_after_a_healthy_period() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..4 {
            b.failed(start);
        }
        // Up briefly: still backing off from where it was.
        b.connected(start);
        let short = b.failed(start + Duration::from_secs(5));
        assert!(short >= Duration::from_secs(12), "{short:?}");
        // Up for longer than the healthy period: from the beginning.
        b.connected(start);
        let reset = b.failed(start + HEALTHY_PERIOD);
        assert!(reset <= Duration::from_millis(1200), "{reset:?}");
    }

    #[test]
    fn a_refused_token_is_probed_far_less_often_than_a_network_error_is_retried() {
        let now = Instant::now();
        let mut network = Backoff::default();
        let mut refused = Backoff::token_refused();
        assert!(refused.failed(now) >= Duration::from_secs(24));
        assert!(network.failed(now) <= Duration::from_millis(600));
        let mut capped = Duration::ZERO;
        for _ in 0..10 {
            capped = refused.failed(now);
        }
        assert!(capped >= Duration::from_secs(240), "{capped:?}");
    }

    #[tokio::test]
    async fn the_token_never_shows_in_debug_output() {
        let conn = ServerConnection::new("http://127.0.0.1:1", token(), None, false).unwrap();
        assert!(!format!("{conn:?}").contains("very_secret"));
    }

    #[tokio::test]
    async fn plaintext_is_refused_off_loopback_unless_asked_for() {
        for address in [
            "http://127.0.0.1:8150",
            "http://localhost:8150",
            "http://[::1]:8150",
        ] {
            ServerConnection::new(address, token(), None, false)
                .unwrap_or_else(|e| panic!("{address}: {e}"));
        }
        for address in ["http://10.0.0.1:8150", "http://tether.example:8150"] {
            let e = ServerConnection::new(address, token(), None, false).unwrap_err();
            assert!(matches!(e, ConnectionError::Plaintext { .. }), "{e}");
            assert!(e.to_string().contains("--insecure-plaintext"), "{e}");
            ServerConnection::new(address, token(), None, true).unwrap();
        }
        for address in ["ws://127.0.0.1:8150", "ws://localhost"] {
            ServerConnection::new(address, token(), None, false)
                .unwrap_or_else(|e| panic!("{address}: {e}"));
        }
        let e = ServerConnection::new("ws://tether.example", token(), None, false).unwrap_err();
        assert!(matches!(e, ConnectionError::Plaintext { .. }), "{e}");
        ServerConnection::new("ws://tether.example", token(), None, true).unwrap();
        let e = ServerConnection::new("tether.example:8150", token(), None, false).unwrap_err();
        assert!(
            matches!(
                e,
                ConnectionError::Scheme { .. } | ConnectionError::Address { .. }
            ),
            "{e}"
        );
    }

    #[test]
    fn a_websocket_url_without_a_path_gets_the_servers() {
        let ca = rcgen::generate_simple_self_signed(vec!["tether.example".to_owned()])
            .unwrap()
            .cert
            .pem();
        let dialer = |address: &str| {
            WebSocketDialer::new(address, &address.parse().unwrap(), Some(ca.as_bytes()))
                .unwrap_or_else(|e| panic!("{address}: {e}"))
        };
        let d = dialer("wss://tether.example");
        assert_eq!(d.url(), "wss://tether.example/tether.ws/v1");
        assert_eq!(
            (d.host.as_str(), d.port, d.tls.is_some()),
            ("tether.example", 443, true)
        );
        let d = dialer("ws://[::1]:8080/");
        assert_eq!(d.url(), "ws://[::1]:8080/tether.ws/v1");
        assert_eq!(
            (d.host.as_str(), d.port, d.tls.is_some()),
            ("::1", 8080, false)
        );
        // A proxy that routes by path gets the path given.
        assert_eq!(
            dialer("wss://proxy.example/tether/agents").url(),
            "wss://proxy.example/tether/agents"
        );
        let e = WebSocketDialer::new(
            "wss://tether.example",
            &"wss://tether.example".parse().unwrap(),
            Some(&b"not a certificate"[..]),
        );
        assert!(e.is_err());
    }

    #[tokio::test]
    async fn a_changed_token_file_is_used_from_then_on() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "tthr_first\n").unwrap();
        let conn = ServerConnection::new(
            "http://127.0.0.1:1",
            TokenSource::File(file.clone()),
            None,
            false,
        )
        .unwrap();
        let changes = conn.token_changes();
        assert!(!conn.reload_token().unwrap());
        std::fs::write(&file, "tthr_second\n").unwrap();
        assert!(conn.reload_token().unwrap());
        assert!(changes.has_changed().unwrap());
        assert_eq!(conn.token.current(), "Bearer tthr_second");
        // An emptied file (a Secret being replaced) keeps the token in use.
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            conn.reload_token(),
            Err(ConnectionError::EmptyToken { .. })
        ));
        assert_eq!(conn.token.current(), "Bearer tthr_second");
    }

    #[test]
    fn answers_tell_whether_the_token_was_accepted() {
        let link = watch::Sender::new(LinkState::Connecting);
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", "14".parse().unwrap());
        observe(&link, &headers);
        assert_eq!(*link.borrow(), LinkState::Connecting, "unavailable");
        headers.insert("grpc-status", "16".parse().unwrap());
        observe(&link, &headers);
        assert_eq!(*link.borrow(), LinkState::TokenRefused);
        for (code, what) in [("8", "rate limited"), ("7", "a repository not granted")] {
            headers.insert("grpc-status", code.parse().unwrap());
            observe(&link, &headers);
            assert_eq!(*link.borrow(), LinkState::TokenRefused, "{what}");
        }
        observe(&link, &http::HeaderMap::new());
        assert_eq!(*link.borrow(), LinkState::Connected, "a stream accepted");
    }
}
