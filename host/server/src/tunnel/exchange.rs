//! One request through one tunnel stream: `RequestInfo`, the body pumped as `Message`s and `CloseSend`,
//! while the agent's `Header`, `Message`s and `Trailer` (or `Error`) come back as a response whose body
//! streams — a watch is passed on event by event, never buffered.
//!
//! The stream stays open until the response is complete: dropping the response body (the person went
//! away) ends the stream, and with it the agent's call to the cluster.

use super::IdleTunnel;
use crate::context::Context;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use tether_rpc::limits::MAX_CHUNK_SIZE;
use tether_rpc::tunnel::v1::{
    CloseSend, ConnectRequest, ConnectResponse, Message, RequestInfo, connect_request,
    connect_response,
};
use tether_rpc::tunnel_stream::{
    AgentOrder, AgentStep, MAX_REQUEST_BODY, TunnelOrderError, forwardable_response_header,
    headers_from_proto,
};
use tokio::sync::oneshot;
use tonic::{Status, Streaming};

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the agent refused the request: {0}")]
    Refused(String),
    #[error("the agent's tunnel closed before it answered")]
    AgentGone,
    #[error("the request body is over the limit of {MAX_REQUEST_BODY} bytes")]
    BodyTooLarge,
    #[error("the agent broke the tunnel protocol: {0}")]
    Order(#[from] TunnelOrderError),
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// The agent's answer; `body` ends when the agent's response does.
pub struct TunnelResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
}

impl std::fmt::Debug for TunnelResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A stream that accepted a request.
#[derive(Debug)]
pub struct OpenTunnel {
    tunnel: IdleTunnel,
}

impl IdleTunnel {
    /// Sends `info`; `Err` gives the stream back when its agent has gone (the caller takes another).
    pub async fn open(self, info: RequestInfo) -> Result<OpenTunnel, IdleTunnel> {
        let message = ConnectResponse {
            msg: Some(connect_response::Msg::RequestInfo(info)),
        };
        match self.tx.send(Ok(message)).await {
            Ok(()) => Ok(OpenTunnel { tunnel: self }),
            Err(_) => Err(self),
        }
    }
}

impl OpenTunnel {
    /// Pumps `body` to the agent and waits for the response's header.
    pub async fn forward(
        self,
        ctx: &Arc<Context>,
        body: axum::body::Body,
    ) -> Result<TunnelResponse, ExchangeError> {
        let IdleTunnel {
            tx,
            mut inbound,
            mut order,
            ..
        } = self.tunnel;
        let (pumped_tx, pumped) = oneshot::channel();
        let pump_tx = tx.clone();
        if axum::body::HttpBody::is_end_stream(&body) {
            // No body (most requests: GET, watch): only `CloseSend`, which the channel has room for.
            let _ = pumped_tx.send(pump(body, pump_tx).await);
        } else {
            ctx.tracker.spawn(async move {
                let _ = pumped_tx.send(pump(body, pump_tx).await);
            });
        }
        let mut pumped = pumped;
        let mut pump_done = false;
        let first = loop {
            tokio::select! {
                m = inbound.message() => break m,
                // A body over the limit ends the exchange here: the agent is still waiting for the
                // rest of it, and dropping the stream tells it to give up.
                result = &mut pumped, if !pump_done => {
                    pump_done = true;
                    if let Ok(Err(e)) = result {
                        return Err(e);
                    }
                }
                () = ctx.cancel.cancelled() => return Err(ExchangeError::ShuttingDown),
            }
        };
        let first = match first {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => {
                // Not waiting for the pump: it may be blocked on a slow person's body.
                if !pump_done && let Ok(Err(e)) = pumped.try_recv() {
                    return Err(e);
                }
                return Err(ExchangeError::AgentGone);
            }
        };
        order.accept(first.msg.as_ref())?;
        let header = match first.msg {
            Some(connect_request::Msg::Header(h)) => h,
            Some(connect_request::Msg::Error(e)) => return Err(ExchangeError::Refused(e.message)),
            _ => unreachable!("the order allows only Header or Error here"),
        };
        let status = u16::try_from(header.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::BAD_GATEWAY);
        let headers = headers_from_proto(header.headers, forwardable_response_header);
        let body = ResponseBody {
            inbound,
            order,
            _tx: tx,
            cancel: ctx.cancel.clone(),
        };
        Ok(TunnelResponse {
            status,
            headers,
            body: futures::stream::unfold(body, ResponseBody::next).boxed(),
        })
    }
}

/// The request body to the agent, in chunks the contract allows, then `CloseSend`.
async fn pump(
    body: axum::body::Body,
    tx: tokio::sync::mpsc::Sender<Result<ConnectResponse, Status>>,
) -> Result<(), ExchangeError> {
    let send = |msg| tx.send(Ok(ConnectResponse { msg: Some(msg) }));
    let mut data = body.into_data_stream();
    let mut total = 0usize;
    while let Some(chunk) = data.next().await {
        // A person who stops sending mid-body: the stream ends, the agent drops the request.
        let Ok(mut chunk) = chunk else {
            return Err(ExchangeError::AgentGone);
        };
        total += chunk.len();
        if total > MAX_REQUEST_BODY {
            return Err(ExchangeError::BodyTooLarge);
        }
        while !chunk.is_empty() {
            let part = chunk.split_to(chunk.len().min(MAX_CHUNK_SIZE));
            if send(connect_response::Msg::Message(Message { data: part }))
                .await
                .is_err()
            {
                return Err(ExchangeError::AgentGone);
            }
        }
    }
    send(connect_response::Msg::CloseSend(CloseSend {}))
        .await
        .map_err(|_| ExchangeError::AgentGone)
}

/// The agent's `Message`s after its `Header`.
struct ResponseBody {
    inbound: Streaming<ConnectRequest>,
    order: AgentOrder,
    /// Held so the stream stays open until the response is complete.
    _tx: tokio::sync::mpsc::Sender<Result<ConnectResponse, Status>>,
    cancel: tokio_util::sync::CancellationToken,
}

impl ResponseBody {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        let message = tokio::select! {
            m = self.inbound.message() => m,
            () = self.cancel.cancelled() => return None,
        };
        match message {
            Ok(Some(m)) => match self.order.accept(m.msg.as_ref()) {
                Ok(AgentStep::Message) => match m.msg {
                    Some(connect_request::Msg::Message(m)) => Some((Ok(m.data), self)),
                    _ => unreachable!("AgentStep::Message is a Message"),
                },
                Ok(AgentStep::End) => match m.msg {
                    // An error after the header: cut the response, so the person cannot take a
                    // truncated body for a whole one.
                    Some(connect_request::Msg::Error(e)) => Some((
                        Err(std::io::Error::other(format!("the agent: {}", e.message))),
                        self,
                    )),
                    _ => None,
                },
                Ok(step) => Some((
                    Err(std::io::Error::other(format!(
                        "the agent sent {step:?} in a response body"
                    ))),
                    self,
                )),
                Err(e) => Some((Err(std::io::Error::other(e)), self)),
            },
            // The agent went away: the response ends as an API server ends a watch, and the client
            // decides (kubectl's watch stops; a list sees a short body).
            Ok(None) | Err(_) => {
                tracing::debug!("tunnel stream ended before the agent's trailer");
                None
            }
        }
    }
}
