//! The pool of tunnel streams. Each worker opens a stream, waits for the server to route a request to it,
//! serves it, and opens the next one: one stream carries one request. The manager keeps at least
//! [`MIN_IDLE`] workers waiting, growing by [`GROW_STEP`] up to [`MAX_STREAMS`]; a worker idle for
//! [`IDLE_TIMEOUT`] leaves while more than [`MIN_IDLE`] are idle.
//!
//! The numbers (GitLab's agentk: ≥ 2 idle, ≤ 500, +10, 1 min): four idle streams rather than two because
//! a served stream is replaced only after one round trip to the server, and kubectl fires a few discovery
//! requests at once; growing by ten absorbs a burst without opening hundreds of streams for one request;
//! 500 streams bound what one agent can hold open on the server (each is an HTTP/2 stream and two
//! bounded channels); a minute of idleness before shrinking keeps the pool warm between kubectl commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tether_rpc::tunnel::v1::{AgentDescriptor, ConnectRequest, connect_request};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Services;
use super::TunnelError;
use crate::connection::{Backoff, ServerConnection};

pub const MIN_IDLE: usize = 4;
pub const MAX_STREAMS: usize = 500;
pub const GROW_STEP: usize = 10;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a served stream waits for the server to take the end of its response (the person reads
/// it at their pace, through bounded buffers) before giving up on it.
pub(super) const DRAIN_WAIT: Duration = Duration::from_secs(30);
/// Messages queued towards the server per stream; gRPC flow control does the rest of the backpressure.
pub(super) const OUTBOUND_BUFFER: usize = 4;

/// Streams of the pool: waiting for a request (or connecting), serving one, and all.
#[derive(Debug)]
pub struct PoolStats {
    idle: AtomicUsize,
    total: AtomicUsize,
    served: AtomicUsize,
    busy: watch::Sender<usize>,
    changed: Notify,
}

impl Default for PoolStats {
    fn default() -> Self {
        Self {
            idle: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            busy: watch::Sender::new(0),
            changed: Notify::new(),
        }
    }
}

impl PoolStats {
    pub fn idle(&self) -> usize {
        self.idle.load(Ordering::SeqCst)
    }

    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// Requests being served now, as it changes.
    pub fn busy(&self) -> watch::Receiver<usize> {
        self.busy.subscribe()
    }

    /// Requests served since the agent started.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// A worker serving a request does not count as idle; dropping the guard makes it idle again.
pub(super) struct Busy<'a>(&'a PoolStats);

impl<'a> Busy<'a> {
    pub(super) fn start(stats: &'a PoolStats) -> Self {
        stats.idle.fetch_sub(1, Ordering::SeqCst);
        stats.busy.send_modify(|n| *n += 1);
        // The manager may have to grow the pool.
        stats.changed.notify_one();
        Self(stats)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.served.fetch_add(1, Ordering::SeqCst);
        self.0.idle.fetch_add(1, Ordering::SeqCst);
        self.0.busy.send_modify(|n| *n -= 1);
    }
}

/// Keeps the pool sized until `stop`, then waits for every worker.
pub(super) async fn run(
    connection: ServerConnection,
    service: Arc<Services>,
    stats: Arc<PoolStats>,
    stop: CancellationToken,
) {
    let workers = TaskTracker::new();
    loop {
        let (idle, total) = (stats.idle(), stats.total());
        if idle < MIN_IDLE && total < MAX_STREAMS {
            for _ in 0..GROW_STEP.min(MAX_STREAMS - total) {
                stats.total.fetch_add(1, Ordering::SeqCst);
                stats.idle.fetch_add(1, Ordering::SeqCst);
                workers.spawn(worker(
                    connection.clone(),
                    service.clone(),
                    stats.clone(),
                    stop.clone(),
                ));
            }
            continue;
        }
        tokio::select! {
            () = stats.changed.notified() => {}
            () = stop.cancelled() => break,
        }
    }
    workers.close();
    workers.wait().await;
}

/// How one stream ended.
enum Outcome {
    Served,
    IdleTimeout,
    Stopped,
}

async fn worker(
    connection: ServerConnection,
    service: Arc<Services>,
    stats: Arc<PoolStats>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::default();
    loop {
        match one_stream(&connection, &service, &stats, &stop).await {
            Ok(Outcome::Served) => backoff.connected(Instant::now()),
            Ok(Outcome::IdleTimeout) => {
                let retire = stats
                    .idle
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        if n > MIN_IDLE { Some(n - 1) } else { None }
                    })
                    .is_ok();
                if retire {
                    stats.total.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            }
            Ok(Outcome::Stopped) => break,
            Err(e) => {
                let delay = backoff.failed(Instant::now());
                tracing::debug!(retry_in = ?delay, "tunnel stream: {e}");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    stats.idle.fetch_sub(1, Ordering::SeqCst);
    stats.total.fetch_sub(1, Ordering::SeqCst);
}

/// Opens a stream, offers the services, waits for a request and serves it.
async fn one_stream(
    connection: &ServerConnection,
    service: &Services,
    stats: &PoolStats,
    stop: &CancellationToken,
) -> Result<Outcome, TunnelError> {
    let (tx, rx) = mpsc::channel(OUTBOUND_BUFFER);
    let descriptor = ConnectRequest {
        msg: Some(connect_request::Msg::Descriptor(AgentDescriptor {
            services: service.offered(),
        })),
    };
    tx.send(descriptor)
        .await
        .map_err(|_| TunnelError::ServerGone)?;
    let outbound =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut client = connection.tunnel();
    let mut inbound = tokio::select! {
        () = stop.cancelled() => return Ok(Outcome::Stopped),
        r = client.tunnel(outbound) => r?.into_inner(),
    };
    let mut order = tether_rpc::tunnel_stream::ServerOrder::new();
    let first = tokio::select! {
        () = stop.cancelled() => return Ok(Outcome::Stopped),
        () = tokio::time::sleep(IDLE_TIMEOUT) => return Ok(Outcome::IdleTimeout),
        m = inbound.message() => m?.ok_or(TunnelError::Cancelled)?,
    };
    order.accept(first.msg.as_ref())?;
    let Some(tether_rpc::tunnel::v1::connect_response::Msg::RequestInfo(info)) = first.msg else {
        unreachable!("the order allows only RequestInfo first")
    };
    let _busy = Busy::start(stats);
    let outcome = tokio::select! {
        // Shutdown abandons the request: the server sees the stream end and tells the person.
        () = stop.cancelled() => return Ok(Outcome::Stopped),
        served = service.serve(info, &mut inbound, order, &tx) => match served {
            // A person who leaves is no failure of the connection: no backoff for the next stream.
            Ok(()) | Err(TunnelError::Cancelled | TunnelError::ServerGone) => Ok(Outcome::Served),
            Err(e) => Err(e),
        },
    };
    // What `serve` queued is sent only while the call lives: dropping it now would reset the HTTP/2
    // stream and lose the end of the response. The server ends its side once it has read the last
    // message (or its person has gone), so the call is over when its messages stop.
    drop(tx);
    let drained = async { while let Ok(Some(_)) = inbound.message().await {} };
    tokio::select! {
        () = stop.cancelled() => return Ok(Outcome::Stopped),
        _ = tokio::time::timeout(DRAIN_WAIT, drained) => {}
    }
    outcome
}
