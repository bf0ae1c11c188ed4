//! The server's TLS: one certificate (`tls` in the configuration) for the agents' listener, and for the
//! HTTP listener whenever that is not on a loopback address. Tokens, the admin token and agent status
//! never cross a network in clear text; on loopback the HTTP API stays plaintext so that a Git hook on
//! the same machine (`tether-server notify`) needs no certificate.
//!
//! HTTP over TLS: a task accepts connections and runs each handshake in its own task with a deadline, so
//! a client that connects and stalls holds up nobody; finished handshakes are handed to axum through a
//! [`Listener`](axum::serve::Listener).

use crate::StartError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tether_config::server::Tls;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A client has this long to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the HTTP server to take them.
const ACCEPTED_BACKLOG: usize = 64;

/// The certificate chain and key of `tls`, read once at start.
#[derive(Debug)]
pub struct ServerCertificate {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    cert_file: String,
}

impl ServerCertificate {
    pub fn load(tls: &Tls) -> Result<Self, StartError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| StartError::TlsFile {
                path: path.display().to_string(),
                source,
            })
        };
        Ok(Self {
            cert_pem: read(&tls.cert_file)?,
            key_pem: read(&tls.key_file)?,
            cert_file: tls.cert_file.display().to_string(),
        })
    }

    /// The agents' listener's TLS settings: HTTP/2 for gRPC, HTTP/1.1 for the WebSocket upgrade
    /// (see [`crate::websocket`]).
    pub fn agents(&self) -> Result<Arc<rustls::ServerConfig>, StartError> {
        self.config(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
    }

    /// The HTTP server's TLS settings (HTTP/1.1, the only protocol the HTTP API speaks).
    pub fn http(&self) -> Result<Arc<rustls::ServerConfig>, StartError> {
        self.config(vec![b"http/1.1".to_vec()])
    }

    fn config(&self, alpn: Vec<Vec<u8>>) -> Result<Arc<rustls::ServerConfig>, StartError> {
        let invalid = |message: String| StartError::TlsCertificate {
            path: self.cert_file.clone(),
            message,
        };
        let chain = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| invalid(format!("key: {e}")))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| invalid(e.to_string()))?;
        config.alpn_protocols = alpn;
        Ok(Arc::new(config))
    }
}

/// Connections of a TCP listener after their TLS handshake.
#[derive(Debug)]
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener` until `cancel`; the accepting and handshaking tasks are `tracker`'s.
    pub fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_BACKLOG);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let handshakes = tracker.clone();
        tracker.spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tx.closed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors and the like: wait a little instead of spinning.
                            tracing::warn!("HTTP accept: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                // Small responses (a proxied GET) must not wait for a delayed ACK.
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx, cancel) = (acceptor.clone(), tx.clone(), cancel.clone());
                handshakes.spawn(async move {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    let stream = tokio::select! {
                        () = cancel.cancelled() => return,
                        done = handshake => match done {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                    };
                    let _ = tx.send((stream, peer)).await;
                });
            }
        });
        Ok(Self {
            accepted,
            local_addr,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended (shutdown): axum stops accepting on its own signal.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
