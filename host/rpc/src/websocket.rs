//! The WebSocket transport: the agent ↔ server gRPC connection, HTTP/2 unchanged, carried as a byte
//! stream inside one WebSocket connection, for networks whose proxies pass only HTTP/1.1. Binary
//! messages carry the bytes in order and nothing else is framed, so every feature's service runs over
//! it untouched. Both sides use this module: the agent after its handshake ([`client`]), the server
//! after it answered the upgrade ([`server`]).
//!
//! Each connection gets a pump task between the WebSocket and a [`DuplexStream`] that HTTP/2 reads
//! and writes: the two directions run independently (an HTTP/2 peer that stops reading while it
//! writes must not stall the other direction), each through a bounded buffer, so a slow reader holds
//! back its writer instead of growing memory. The pump pings so that proxies that cut idle
//! connections (nginx's `proxy_read_timeout`, 60 s by default) see traffic, and ends a connection
//! whose peer has been silent for [`DEAD_AFTER`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

/// The path tether-server answers WebSocket upgrades on, on the agents' listener. Versioned, so that
/// another framing can live beside this one.
pub const PATH: &str = "/tether.ws/v1";
/// Each side pings this often. Well under the idle timeouts proxies ship with (nginx 60 s, HAProxy's
/// usual `timeout tunnel` of minutes, cloud load balancers 60 s and up); a ping costs a few bytes.
pub const KEEPALIVE: Duration = Duration::from_secs(10);
/// A peer that sent nothing at all (data, ping or pong) for this long is gone: the connection ends
/// and HTTP/2 above it reconnects, rather than waiting for TCP to notice, which can take many minutes.
pub const DEAD_AFTER: Duration = Duration::from_secs(3 * 10);
/// Bytes buffered per direction between the pump and HTTP/2, and the most one message carries.
const BUFFER: usize = 64 * 1024;
/// The largest message or frame accepted. This side never sends more than [`BUFFER`] in one;
/// the default (64 MiB) would let a peer make the pump buffer that much.
const MAX_MESSAGE: usize = 1024 * 1024;
/// After the local side closed, how long to wait for the peer to answer the close.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Why a WebSocket handshake did not give a connection.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Something answered over HTTP, but not by switching to WebSocket: a proxy that does not
    /// forward upgrades, or a URL that does not lead to tether-server's agents' listener.
    #[error(
        "WebSocket {url}: got HTTP {status} instead of 101 Switching Protocols{detail}; every proxy \
         on the way must forward the Upgrade and Connection headers to tether-server's agents' port, \
         and the URL must lead there"
    )]
    Refused {
        url: String,
        status: u16,
        /// `: ` and the first line of the answer's body, or nothing.
        detail: String,
    },
    #[error("WebSocket {url}: {source}")]
    Failed {
        url: String,
        source: tungstenite::Error,
    },
}

/// Opens the WebSocket to `url` (`ws://` or `wss://`) over `io`, already connected (and with TLS
/// for `wss://`) to the URL's host, and returns the byte stream inside it.
pub async fn client<S>(io: S, url: &str) -> Result<DuplexStream, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |source| HandshakeError::Failed {
        url: url.to_owned(),
        source,
    };
    let request = url.into_client_request().map_err(failed)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, io, Some(config()))
        .await
        .map_err(|e| match e {
            tungstenite::Error::Http(response) => {
                let detail = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .and_then(|body| {
                        body.lines()
                            .map(str::trim)
                            .find(|l| !l.is_empty())
                            .map(|l| format!(": {}", l.chars().take(200).collect::<String>()))
                    })
                    .unwrap_or_default();
                HandshakeError::Refused {
                    url: url.to_owned(),
                    status: response.status().as_u16(),
                    detail,
                }
            }
            e => failed(e),
        })?;
    Ok(spawn_pump(ws, url.to_owned()))
}

/// The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`, for a server that answers
/// the upgrade itself (in its HTTP server) before calling [`server`].
pub fn accept_key(key: &[u8]) -> String {
    tungstenite::handshake::derive_accept_key(key)
}

/// The server's side of a connection whose upgrade it has answered with 101: the byte stream
/// inside. `peer` names the connection in logs.
pub async fn server<S>(io: S, peer: String) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await;
    spawn_pump(ws, peer)
}

fn spawn_pump<S>(ws: WebSocketStream<S>, peer: String) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (local, remote) = tokio::io::duplex(BUFFER);
    tokio::spawn(async move {
        match pump(ws, remote).await {
            Ok(()) => tracing::debug!(%peer, "WebSocket closed"),
            Err(e) => tracing::info!(%peer, "WebSocket ended: {e}"),
        }
    });
    local
}

#[derive(Debug, thiserror::Error)]
enum PumpError {
    #[error("{0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("the peer sent nothing for {DEAD_AFTER:?}, not even a pong")]
    Silent,
    #[error("the peer sent a text message; this transport carries binary messages only")]
    Text,
}

/// Moves bytes both ways until either side closes.
async fn pump<S>(ws: WebSocketStream<S>, remote: DuplexStream) -> Result<(), PumpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (mut from_local, mut to_local) = tokio::io::split(remote);
    let start = Instant::now();
    // When the peer was last heard from, in milliseconds since `start`.
    let heard = Arc::new(AtomicU64::new(0));
    let heard_in = heard.clone();

    let outgoing = async move {
        let mut buf = vec![0u8; BUFFER];
        let mut ping = tokio::time::interval_at(start + KEEPALIVE, KEEPALIVE);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                read = from_local.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await?,
                },
                _ = ping.tick() => {
                    let silent = start.elapsed().saturating_sub(Duration::from_millis(heard.load(Ordering::Relaxed)));
                    if silent > DEAD_AFTER {
                        return Err(PumpError::Silent);
                    }
                    sink.send(Message::Ping(Bytes::new())).await?;
                }
            }
        }
        // HTTP/2 closed the connection: start the closing handshake.
        sink.close().await?;
        Ok::<(), PumpError>(())
    };
    let incoming = async move {
        while let Some(message) = stream.next().await {
            heard_in.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
            match message? {
                Message::Binary(data) => {
                    if to_local.write_all(&data).await.is_err() {
                        // HTTP/2 is gone; the outgoing side notices and closes.
                        break;
                    }
                }
                // Tungstenite answers pings and the peer's close itself, while reading on; the
                // stream ends after the close.
                Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {}
                Message::Text(_) => return Err(PumpError::Text),
            }
        }
        // End of stream for HTTP/2, which then closes its side.
        let _ = to_local.shutdown().await;
        Ok::<(), PumpError>(())
    };
    tokio::pin!(outgoing, incoming);
    tokio::select! {
        end = &mut outgoing => {
            if end.is_ok() {
                let _ = tokio::time::timeout(CLOSE_GRACE, &mut incoming).await;
            }
            end
        }
        end = &mut incoming => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's side with the handshake answered by tungstenite (in tether-server, its HTTP
    /// server answers it and calls [`server`]).
    async fn server(io: DuplexStream, peer: String) -> DuplexStream {
        let ws = tokio_tungstenite::accept_async_with_config(io, Some(config()))
            .await
            .unwrap();
        spawn_pump(ws, peer)
    }

    /// A client and a server connected over an in-memory socket: what one side writes into its
    /// byte stream comes out of the other's, in order, both ways, and a close reaches the other side.
    #[tokio::test]
    async fn bytes_cross_both_ways_in_order_and_close_ends_the_other_side() {
        let (a, b) = tokio::io::duplex(4096);
        let server = tokio::spawn(server(b, "test".into()));
        let mut client = client(a, "ws://example.test/tether.ws/v1").await.unwrap();
        let mut server = server.await.unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let expected = big.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&big).await.unwrap();
            client
        });
        let mut got = vec![0u8; expected.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expected);
        let mut client = writer.await.unwrap();
        server.write_all(b"answer").await.unwrap();
        let mut answer = [0u8; 6];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");
        drop(client);
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(10), server.read_to_end(&mut rest))
            .await
            .expect("the server side sees the close")
            .unwrap();
        assert_eq!(n, 0);
    }

    /// Both directions flow at once with neither side reading until it has written everything:
    /// the pump must not serialise them (HTTP/2 does exactly this under load).
    #[tokio::test]
    async fn both_directions_flow_while_neither_side_reads() {
        let (a, b) = tokio::io::duplex(4096);
        let server = tokio::spawn(server(b, "test".into()));
        let client = client(a, "ws://example.test/tether.ws/v1").await.unwrap();
        let server = server.await.unwrap();
        let size = 4 * BUFFER;
        let exchange = |mut io: DuplexStream| async move {
            io.write_all(&vec![7u8; size]).await.unwrap();
            let mut got = vec![0u8; size];
            io.read_exact(&mut got).await.unwrap();
            got.iter().all(|b| *b == 7)
        };
        let both = tokio::time::timeout(
            Duration::from_secs(10),
            futures::future::join(exchange(client), exchange(server)),
        )
        .await
        .expect("no deadlock");
        assert_eq!(both, (true, true));
    }

    /// A peer that answers HTTP without upgrading gets an error naming the URL and the status.
    #[tokio::test]
    async fn a_refused_upgrade_names_the_url_and_the_status() {
        let (a, mut b) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = b.read(&mut request).await;
            b.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 14\r\n\r\nno websockets\n")
                .await
                .unwrap();
        });
        let e = client(a, "ws://proxy.test:8080/tether.ws/v1")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("ws://proxy.test:8080/tether.ws/v1"), "{e}");
        assert!(e.contains("HTTP 403"), "{e}");
        assert!(e.contains("no websockets"), "{e}");
    }

    /// A peer that stops answering (here: a WebSocket that is never read, so it answers no ping)
    /// is given up on after DEAD_AFTER, not kept forever.
    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_ends_the_connection() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(server(b, "test".into()));
        let request = "ws://example.test/tether.ws/v1"
            .into_client_request()
            .unwrap();
        let (_silent, _) = tokio_tungstenite::client_async(request, a).await.unwrap();
        let mut server = server.await.unwrap();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(DEAD_AFTER * 2, server.read_to_end(&mut rest))
            .await
            .expect("the server side ends")
            .unwrap();
        assert_eq!(n, 0);
    }
}
