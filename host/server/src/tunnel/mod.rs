//! The tunnel feature's server part: agents open `Tunnel` streams and offer them here; a request for an
//! agent's cluster takes one idle stream of that agent ([`Tunnels::take`]) and is forwarded over it
//! ([`exchange`]). One stream carries one request; the agent opens the next.
//!
//! It never authorises anyone: whoever calls [`Tunnels::take`] has decided the request may reach the agent.

pub mod exchange;

use crate::auth::agent_of;
use crate::context::Context;
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_rpc::tunnel::v1::tunnel_service_server::{TunnelService, TunnelServiceServer};
use tether_rpc::tunnel::v1::{ConnectRequest, ConnectResponse, connect_request};
use tether_rpc::tunnel_stream::AgentOrder;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Idle streams one agent may hold open here (the agent's own pool stops at the same number).
pub const MAX_IDLE_PER_AGENT: usize = 500;
/// How long an agent has to describe a new stream before it is dropped.
pub const DESCRIPTOR_WAIT: Duration = Duration::from_secs(10);
/// Messages queued towards the agent per stream; gRPC flow control does the rest of the backpressure.
pub const OUTBOUND_BUFFER: usize = 4;
/// HTTP/2 receive window of one stream from an agent: what a response may have in flight towards a
/// person who is not reading (a chunk is at most 128 KiB).
pub const STREAM_WINDOW: u32 = 128 * 1024;
/// HTTP/2 receive window of an agent's whole connection. h2 gives connection credit back only as
/// each stream's data is read, so with hyper's default (1 MiB, the same as one stream's) a single
/// person not reading a watch would stall every stream of that agent. Room for every stream of a
/// full pool to be stalled at once: no stream can starve another, and an agent's stalled responses
/// hold at most this much memory.
pub const CONNECTION_WINDOW: u32 = MAX_IDLE_PER_AGENT as u32 * STREAM_WINDOW;

type Outbound = mpsc::Sender<Result<ConnectResponse, Status>>;

/// A described stream waiting for a request.
#[derive(Debug)]
pub struct IdleTunnel {
    pub agent: String,
    services: Vec<String>,
    token_id: i64,
    tx: Outbound,
    inbound: Streaming<ConnectRequest>,
    order: AgentOrder,
}

/// Why no stream could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TakeError {
    #[error("agent `{agent}` is not connected (no tunnel within {waited:?})")]
    NotConnected { agent: String, waited: Duration },
    #[error("agent `{agent}` does not offer the `{service}` service")]
    NotOffered { agent: String, service: String },
}

/// A request waiting for a stream of an agent: the next stream offered that carries `service` is
/// handed to it directly, first come first served.
#[derive(Debug)]
struct Waiter {
    service: String,
    tx: oneshot::Sender<IdleTunnel>,
}

/// One agent's idle streams and the requests waiting for one (never both at once for a service).
#[derive(Debug, Default)]
struct AgentTunnels {
    idle: VecDeque<IdleTunnel>,
    waiting: VecDeque<Waiter>,
}

/// The idle streams of every agent.
#[derive(Debug, Default)]
pub struct Tunnels {
    agents: Mutex<HashMap<String, AgentTunnels>>,
}

impl Tunnels {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, AgentTunnels>> {
        self.agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Idle streams of `agent` whose agent is still there.
    pub fn idle_count(&self, agent: &str) -> usize {
        self.lock()
            .get(agent)
            .map_or(0, |a| a.idle.iter().filter(|t| !t.tx.is_closed()).count())
    }

    /// Hands `tunnel` to the first request waiting for its services, or queues it; gives it back when
    /// the agent holds too many idle streams already.
    fn offer(&self, mut tunnel: IdleTunnel) -> Result<(), Box<IdleTunnel>> {
        let mut agents = self.lock();
        let agent = agents.entry(tunnel.agent.clone()).or_default();
        // A hand-off under the lock: no waiter can miss a stream, and no stream waits while a
        // request does.
        while let Some(index) = agent
            .waiting
            .iter()
            .position(|w| tunnel.services.contains(&w.service))
        {
            let Some(waiter) = agent.waiting.remove(index) else {
                break;
            };
            match waiter.tx.send(tunnel) {
                Ok(()) => return Ok(()),
                // That request gave up (its person left or its wait ran out): the next one.
                Err(back) => tunnel = back,
            }
        }
        agent.waiting.retain(|w| !w.tx.is_closed());
        agent.idle.retain(|t| !t.tx.is_closed());
        if agent.idle.len() >= MAX_IDLE_PER_AGENT {
            return Err(Box::new(tunnel));
        }
        agent.idle.push_back(tunnel);
        Ok(())
    }

    /// An idle stream of `agent` offering `service`, waiting up to `wait` for one to arrive. Streams
    /// whose agent has gone, or whose token was revoked, are dropped on the way.
    pub async fn take(
        &self,
        ctx: &Context,
        agent: &str,
        service: &str,
        wait: Duration,
    ) -> Result<IdleTunnel, TakeError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let tunnel = match self.pop_or_wait(agent, service) {
                Ok(tunnel) => tunnel,
                Err(Some(rx)) => {
                    let handed = tokio::time::timeout_at(deadline, rx).await;
                    match handed {
                        Ok(Ok(tunnel)) => tunnel,
                        // The server is closing every stream.
                        Ok(Err(_)) | Err(_) => break,
                    }
                }
                Err(None) => {
                    return Err(TakeError::NotOffered {
                        agent: agent.to_owned(),
                        service: service.to_owned(),
                    });
                }
            };
            if tunnel.tx.is_closed() {
                continue;
            }
            if !ctx.token_active(tunnel.token_id).await {
                let _ = tunnel.tx.try_send(Err(crate::auth::unauthenticated()));
                continue;
            }
            return Ok(tunnel);
        }
        Err(TakeError::NotConnected {
            agent: agent.to_owned(),
            waited: wait,
        })
    }

    /// An idle stream now; else a place in the queue for the next one (`Err(Some)`), or `Err(None)`
    /// when the agent's idle streams do not offer `service`.
    #[allow(clippy::type_complexity)]
    fn pop_or_wait(
        &self,
        agent: &str,
        service: &str,
    ) -> Result<IdleTunnel, Option<oneshot::Receiver<IdleTunnel>>> {
        let mut agents = self.lock();
        let queue = agents.entry(agent.to_owned()).or_default();
        let mut not_offered = false;
        while let Some(tunnel) = queue.idle.pop_front() {
            if tunnel.tx.is_closed() {
                continue;
            }
            if tunnel.services.iter().any(|s| s == service) {
                return Ok(tunnel);
            }
            // Kept: it may serve other services.
            not_offered = true;
            queue.idle.push_front(tunnel);
            break;
        }
        if not_offered {
            return Err(None);
        }
        let (tx, rx) = oneshot::channel();
        queue.waiting.push_back(Waiter {
            service: service.to_owned(),
            tx,
        });
        Err(Some(rx))
    }

    fn close_all(&self) {
        self.lock().clear();
    }
}

#[derive(Debug, Clone)]
pub struct TunnelApi {
    ctx: Arc<Context>,
}

impl TunnelApi {
    pub fn server(ctx: Arc<Context>) -> TunnelServiceServer<Self> {
        // Idle streams would hold up the gRPC server's graceful shutdown: they end with the server.
        let owner = ctx.clone();
        ctx.tracker.spawn(async move {
            owner.cancel.cancelled().await;
            owner.tunnels.close_all();
        });
        TunnelServiceServer::new(Self { ctx })
    }
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl TunnelService for TunnelApi {
    type TunnelStream = Stream<ConnectResponse>;

    async fn tunnel(
        &self,
        request: Request<Streaming<ConnectRequest>>,
    ) -> Result<Response<Self::TunnelStream>, Status> {
        let who = agent_of(&request)?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(OUTBOUND_BUFFER);
        let ctx = self.ctx.clone();
        // The descriptor is read apart from this call, so the agent gets its response headers at once.
        self.ctx.tracker.spawn(async move {
            let mut order = AgentOrder::new();
            let first = tokio::select! {
                m = tokio::time::timeout(DESCRIPTOR_WAIT, inbound.message()) => m,
                () = ctx.cancel.cancelled() => return,
            };
            let descriptor = match first {
                Ok(Ok(Some(m))) => match order.accept(m.msg.as_ref()) {
                    Ok(_) => match m.msg {
                        Some(connect_request::Msg::Descriptor(d)) => d,
                        _ => unreachable!("the order allows only a descriptor first"),
                    },
                    Err(e) => {
                        let _ = tx.send(Err(Status::invalid_argument(e.to_string()))).await;
                        return;
                    }
                },
                Ok(_) => return,
                Err(_) => {
                    let _ = tx
                        .send(Err(Status::deadline_exceeded(
                            "no AgentDescriptor within the time allowed",
                        )))
                        .await;
                    return;
                }
            };
            let tunnel = IdleTunnel {
                agent: who.agent.name,
                services: descriptor.services,
                token_id: who.token_id,
                tx,
                inbound,
                order,
            };
            if let Err(tunnel) = ctx.tunnels.offer(tunnel) {
                let _ = tunnel
                    .tx
                    .send(Err(Status::resource_exhausted(format!(
                        "the agent already holds {MAX_IDLE_PER_AGENT} idle tunnel streams"
                    ))))
                    .await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
