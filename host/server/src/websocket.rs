//! The agents' listener, one port for both transports: gRPC over HTTP/2 as it arrives, and the same
//! gRPC connection inside a WebSocket for agents behind proxies that pass only HTTP/1.1.
//!
//! Each accepted connection gets its own task (TLS handshake when configured, offering ALPN `h2` and
//! `http/1.1`), which reads its first four bytes within [`HANDSHAKE_TIMEOUT`]: HTTP/2's connection
//! preface (`PRI `) goes to tonic as it is (those bytes handed back first); anything else is HTTP/1.1,
//! where only a WebSocket upgrade on [`PATH`] is served, and the byte stream inside the WebSocket goes
//! to tonic as a connection of its own. So every gRPC service, the token check included, is the same
//! for both transports. Everything else on HTTP/1.1 gets a short answer saying what is served here.
//!
//! A WebSocket connection's remote address is the last proxy's: the failure limiter then counts all
//! agents behind that proxy together (a forwarded-for header would be the caller's word, not trusted).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tether_rpc::websocket::PATH;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::tls::HANDSHAKE_TIMEOUT;

/// Connections ready for tonic, waiting for it to take them.
const ACCEPTED_BACKLOG: usize = 64;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One agent's connection as tonic's server takes it: HTTP/2 straight from the socket, or from
/// inside a WebSocket.
pub struct AgentConnection {
    /// Bytes read while telling the protocols apart; read again first.
    prefix: Bytes,
    io: Box<dyn Io>,
    info: TcpConnectInfo,
    websocket: bool,
}

impl std::fmt::Debug for AgentConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConnection")
            .field("remote_addr", &self.info.remote_addr)
            .field("websocket", &self.websocket)
            .finish_non_exhaustive()
    }
}

impl Connected for AgentConnection {
    // The same as a plain TCP connection's, so the token check finds the peer either way.
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for AgentConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for AgentConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

type Accepted = mpsc::Sender<io::Result<AgentConnection>>;

/// Accepts agents on `listener` until `cancel`, with TLS when `tls` is given; the accepting and
/// handshaking tasks are `tracker`'s. The stream is for tonic's `serve_with_incoming`.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> ReceiverStream<io::Result<AgentConnection>> {
    let (tx, rx) = mpsc::channel(ACCEPTED_BACKLOG);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
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
                        tracing::warn!("agents' listener accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (acceptor, tx, cancel) = (acceptor.clone(), tx.clone(), cancel.clone());
            handshakes.spawn(async move {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = open(tcp, peer, acceptor, tx) => {}
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// TLS, then which protocol: hands the connection to tonic, or serves the upgrade first.
async fn open(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    tx: Accepted,
) {
    // HTTP/2 multiplexes many small frames (tunnel requests, pings): Nagle would delay them.
    let _ = tcp.set_nodelay(true);
    let info = TcpConnectInfo {
        local_addr: tcp.local_addr().ok(),
        remote_addr: Some(peer),
    };
    let opening = async {
        let mut io: Box<dyn Io> = match acceptor {
            Some(acceptor) => Box::new(acceptor.accept(tcp).await?),
            None => Box::new(tcp),
        };
        let mut head = [0u8; 4];
        io.read_exact(&mut head).await?;
        Ok::<_, io::Error>((io, head))
    };
    let (io, head) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, opening).await {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "agents' listener: connection ended before its first request: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "agents' listener: no TLS handshake or request within {HANDSHAKE_TIMEOUT:?}");
            return;
        }
    };
    let connection = AgentConnection {
        prefix: Bytes::copy_from_slice(&head),
        io,
        info: info.clone(),
        websocket: false,
    };
    if &head == b"PRI " {
        let _ = tx.send(Ok(connection)).await;
        return;
    }
    let service = hyper::service::service_fn(move |request| {
        let (tx, info) = (tx.clone(), info.clone());
        async move { Ok::<_, Infallible>(upgrade(request, info, tx)) }
    });
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(TokioIo::new(connection), service)
        .with_upgrades();
    if let Err(e) = http.await {
        tracing::debug!(%peer, "agents' listener, HTTP/1.1: {e}");
    }
}

/// Answers one HTTP/1.1 request: 101 and the WebSocket for an upgrade on [`PATH`], else why not.
fn upgrade(
    mut request: Request<Incoming>,
    info: TcpConnectInfo,
    tx: Accepted,
) -> Response<Full<Bytes>> {
    if request.uri().path() != PATH {
        return answer(
            StatusCode::NOT_FOUND,
            format!(
                "this is tether-server's agents' listener: gRPC over HTTP/2, or a WebSocket upgrade on {PATH}\n"
            ),
        );
    }
    let has_token = |name: header::HeaderName, token: &str| {
        request.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if request.method() != hyper::Method::GET
        || !has_token(header::UPGRADE, "websocket")
        || !has_token(header::CONNECTION, "upgrade")
    {
        let mut response = answer(
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "{PATH} takes a WebSocket upgrade (GET with Upgrade: websocket and Connection: Upgrade); \
                 a proxy on the way may have dropped those headers\n"
            ),
        );
        response
            .headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    }
    if request
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut response = answer(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken here\n".to_owned(),
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs Sec-WebSocket-Key\n".to_owned(),
        );
    };
    let accept = tether_rpc::websocket::accept_key(key.as_bytes());
    let upgraded = hyper::upgrade::on(&mut request);
    let peer = info.remote_addr.map(|a| a.to_string()).unwrap_or_default();
    tokio::spawn(async move {
        let upgraded = match tokio::time::timeout(HANDSHAKE_TIMEOUT, upgraded).await {
            Ok(Ok(upgraded)) => upgraded,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "WebSocket upgrade failed: {e}");
                return;
            }
            Err(_) => return,
        };
        tracing::debug!(%peer, "WebSocket connection from an agent");
        let io = tether_rpc::websocket::server(TokioIo::new(upgraded), peer).await;
        let _ = tx
            .send(Ok(AgentConnection {
                prefix: Bytes::new(),
                io: Box::new(io),
                info,
                websocket: true,
            }))
            .await;
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::try_from(accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // One answer per connection that is not an upgrade. (Not hyper's keep_alive(false): that
    // would also put `Connection: close` on the 101.)
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
