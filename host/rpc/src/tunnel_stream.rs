//! The order of messages on one tunnel stream, declared once and checked by whichever side receives:
//!
//! - agent → server: `AgentDescriptor`, then `Header` → `Message`* → (`Trailer` | `Error`), or `Error`
//!   straight after the descriptor (the agent could not even start the request);
//! - server → agent: `RequestInfo` → `Message`* → `CloseSend`.
//!
//! Nothing may follow the end of either direction. A body chunk is at most [`MAX_CHUNK_SIZE`], so one
//! message never holds more than that in memory on either side.

use crate::limits::{MAX_CHUNK_SIZE, format_size};
use crate::tunnel::v1::{HeaderValues, connect_request, connect_response};

/// The Kubernetes API of the agent's cluster.
pub const SERVICE_KUBERNETES_API: &str = "kubernetes_api";

/// Prometheus' read API of the agent's cluster, answered by the agent's proxy plugin.
pub const SERVICE_PROMETHEUS: &str = "prometheus";

/// A request body through the tunnel is at most this large, checked by both sides. The Kubernetes API
/// server refuses bodies over 3 MiB; this leaves room for that limit to grow.
pub const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;

/// A message that breaks the declared order, or one without content or with too large a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelOrderError {
    #[error("tunnel stream order ({from}): expected {expected}, got {got}")]
    Order {
        from: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error("tunnel stream message without content ({from})")]
    Empty { from: &'static str },
    #[error("tunnel body chunk of {size} bytes ({from}); the limit is {} per message", format_size(MAX_CHUNK_SIZE as u64))]
    ChunkTooLarge { from: &'static str, size: usize },
}

/// What the agent said, as far as the order goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStep {
    Descriptor,
    Header,
    Message,
    /// The response is complete (`Trailer`) or abandoned (`Error`): the stream is over.
    End,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum AgentState {
    #[default]
    Start,
    Described,
    Responding,
    Done,
}

/// Checks what the agent sends (used by the server).
#[derive(Debug, Default)]
pub struct AgentOrder {
    state: AgentState,
}

impl AgentOrder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn accept(
        &mut self,
        message: Option<&connect_request::Msg>,
    ) -> Result<AgentStep, TunnelOrderError> {
        use connect_request::Msg;
        const FROM: &str = "agent";
        let message = message.ok_or(TunnelOrderError::Empty { from: FROM })?;
        let got = match message {
            Msg::Descriptor(_) => "AgentDescriptor",
            Msg::Header(_) => "Header",
            Msg::Message(_) => "Message",
            Msg::Trailer(_) => "Trailer",
            Msg::Error(_) => "Error",
        };
        let order = |expected| TunnelOrderError::Order {
            from: FROM,
            expected,
            got,
        };
        let (next, step) = match (self.state, message) {
            (AgentState::Start, Msg::Descriptor(_)) => {
                (AgentState::Described, AgentStep::Descriptor)
            }
            (AgentState::Start, _) => return Err(order("AgentDescriptor")),
            (AgentState::Described, Msg::Header(_)) => (AgentState::Responding, AgentStep::Header),
            (AgentState::Described, Msg::Error(_)) => (AgentState::Done, AgentStep::End),
            (AgentState::Described, _) => return Err(order("Header or Error")),
            (AgentState::Responding, Msg::Message(m)) => {
                check_chunk(FROM, m.data.len())?;
                (AgentState::Responding, AgentStep::Message)
            }
            (AgentState::Responding, Msg::Trailer(_) | Msg::Error(_)) => {
                (AgentState::Done, AgentStep::End)
            }
            (AgentState::Responding, _) => return Err(order("Message, Trailer or Error")),
            (AgentState::Done, _) => return Err(order("the end of the stream")),
        };
        self.state = next;
        Ok(step)
    }
}

/// What the server said, as far as the order goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStep {
    RequestInfo,
    Message,
    CloseSend,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    #[default]
    Start,
    Sending,
    Closed,
}

/// Checks what the server sends (used by the agent).
#[derive(Debug, Default)]
pub struct ServerOrder {
    state: ServerState,
}

impl ServerOrder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn accept(
        &mut self,
        message: Option<&connect_response::Msg>,
    ) -> Result<ServerStep, TunnelOrderError> {
        use connect_response::Msg;
        const FROM: &str = "server";
        let message = message.ok_or(TunnelOrderError::Empty { from: FROM })?;
        let got = match message {
            Msg::RequestInfo(_) => "RequestInfo",
            Msg::Message(_) => "Message",
            Msg::CloseSend(_) => "CloseSend",
        };
        let order = |expected| TunnelOrderError::Order {
            from: FROM,
            expected,
            got,
        };
        let (next, step) = match (self.state, message) {
            (ServerState::Start, Msg::RequestInfo(_)) => {
                (ServerState::Sending, ServerStep::RequestInfo)
            }
            (ServerState::Start, _) => return Err(order("RequestInfo")),
            (ServerState::Sending, Msg::Message(m)) => {
                check_chunk(FROM, m.data.len())?;
                (ServerState::Sending, ServerStep::Message)
            }
            (ServerState::Sending, Msg::CloseSend(_)) => {
                (ServerState::Closed, ServerStep::CloseSend)
            }
            (ServerState::Sending, _) => return Err(order("Message or CloseSend")),
            (ServerState::Closed, _) => return Err(order("the end of the stream")),
        };
        self.state = next;
        Ok(step)
    }
}

/// Whether a request header may travel through the tunnel: never the caller's credentials or
/// impersonation (a caller must not become `system:masters`), never the front-proxy identity headers,
/// never hop-by-hop headers, which belong to one connection.
pub fn forwardable_request_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !(matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "host" | "content-length"
    ) || name.starts_with("impersonate-")
        || name.starts_with("x-remote-")
        || hop_by_hop(&name))
}

/// Whether a response header may travel back: everything but hop-by-hop headers and the length,
/// which the body's framing on the person's connection decides.
pub fn forwardable_response_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !(name == "content-length" || hop_by_hop(&name))
}

fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The headers of `map` that `keep` lets through, as the contract carries them. Values that are not
/// visible ASCII are dropped: Kubernetes headers never have them.
pub fn headers_to_proto(
    map: &tonic::codegen::http::HeaderMap,
    keep: fn(&str) -> bool,
) -> std::collections::HashMap<String, HeaderValues> {
    let mut out = std::collections::HashMap::<String, HeaderValues>::new();
    for (name, value) in map {
        if keep(name.as_str())
            && let Ok(value) = value.to_str()
        {
            out.entry(name.as_str().to_owned())
                .or_default()
                .values
                .push(value.to_owned());
        }
    }
    out
}

/// The inverse of [`headers_to_proto`], filtering again on receipt: the peer is not trusted to have.
pub fn headers_from_proto(
    headers: std::collections::HashMap<String, HeaderValues>,
    keep: fn(&str) -> bool,
) -> tonic::codegen::http::HeaderMap {
    use tonic::codegen::http::{HeaderName, HeaderValue};
    let mut out = tonic::codegen::http::HeaderMap::new();
    for (name, values) in headers {
        let Ok(name) = HeaderName::try_from(name) else {
            continue;
        };
        if !keep(name.as_str()) {
            continue;
        }
        for value in values.values {
            if let Ok(value) = HeaderValue::try_from(value) {
                out.append(name.clone(), value);
            }
        }
    }
    out
}

fn check_chunk(from: &'static str, size: usize) -> Result<(), TunnelOrderError> {
    if size > MAX_CHUNK_SIZE {
        Err(TunnelOrderError::ChunkTooLarge { from, size })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_impersonation_and_hop_by_hop_headers_never_travel() {
        for name in [
            "Authorization",
            "impersonate-user",
            "Impersonate-Group",
            "Impersonate-Extra-Scopes",
            "Impersonate-Uid",
            "X-Remote-User",
            "Cookie",
            "Connection",
            "Transfer-Encoding",
            "Upgrade",
        ] {
            assert!(!forwardable_request_header(name), "{name}");
        }
        for name in ["accept", "content-type", "user-agent", "accept-encoding"] {
            assert!(forwardable_request_header(name), "{name}");
        }
        let mut map = tonic::codegen::http::HeaderMap::new();
        map.append("accept", "application/json".parse().unwrap());
        map.append("accept", "*/*".parse().unwrap());
        map.append("impersonate-user", "system:admin".parse().unwrap());
        let proto = headers_to_proto(&map, forwardable_request_header);
        assert_eq!(proto.len(), 1);
        assert_eq!(proto["accept"].values, ["application/json", "*/*"]);
        // A peer that sends what it should not have is filtered again on receipt.
        let mut hostile = proto.clone();
        hostile.insert(
            "impersonate-group".into(),
            HeaderValues {
                values: vec!["system:masters".into()],
            },
        );
        let back = headers_from_proto(hostile, forwardable_request_header);
        assert_eq!(back.get_all("accept").iter().count(), 2);
        assert!(back.get("impersonate-group").is_none());
    }
    use crate::tunnel::v1::{
        AgentDescriptor, CloseSend, Error, Header, Message, RequestInfo, Trailer,
    };
    use connect_request::Msg as A;
    use connect_response::Msg as S;

    fn chunk(n: usize) -> Message {
        Message {
            data: bytes::Bytes::from(vec![0; n]),
        }
    }

    #[test]
    fn the_agents_declared_orders_are_accepted() {
        let full = [
            A::Descriptor(AgentDescriptor::default()),
            A::Header(Header::default()),
            A::Message(chunk(3)),
            A::Message(chunk(MAX_CHUNK_SIZE)),
            A::Trailer(Trailer {}),
        ];
        let mut order = AgentOrder::new();
        let steps: Vec<_> = full
            .iter()
            .map(|m| order.accept(Some(m)).unwrap())
            .collect();
        assert_eq!(steps.last(), Some(&AgentStep::End));
        for early_error in [
            vec![
                A::Descriptor(AgentDescriptor::default()),
                A::Error(Error::default()),
            ],
            vec![
                A::Descriptor(AgentDescriptor::default()),
                A::Header(Header::default()),
                A::Error(Error::default()),
            ],
        ] {
            let mut order = AgentOrder::new();
            for m in &early_error {
                order.accept(Some(m)).unwrap();
            }
        }
    }

    #[test]
    fn the_agent_breaking_the_order_is_refused() {
        let mut order = AgentOrder::new();
        assert_eq!(
            order.accept(Some(&A::Header(Header::default()))),
            Err(TunnelOrderError::Order {
                from: "agent",
                expected: "AgentDescriptor",
                got: "Header"
            })
        );
        let mut order = AgentOrder::new();
        order
            .accept(Some(&A::Descriptor(AgentDescriptor::default())))
            .unwrap();
        assert!(
            order.accept(Some(&A::Message(chunk(1)))).is_err(),
            "body before Header"
        );
        let mut order = AgentOrder::new();
        order
            .accept(Some(&A::Descriptor(AgentDescriptor::default())))
            .unwrap();
        order.accept(Some(&A::Header(Header::default()))).unwrap();
        assert_eq!(
            order.accept(Some(&A::Message(chunk(MAX_CHUNK_SIZE + 1)))),
            Err(TunnelOrderError::ChunkTooLarge {
                from: "agent",
                size: MAX_CHUNK_SIZE + 1
            })
        );
        order.accept(Some(&A::Trailer(Trailer {}))).unwrap();
        let after = order.accept(Some(&A::Message(chunk(1)))).unwrap_err();
        assert!(
            after.to_string().contains("the end of the stream"),
            "{after}"
        );
        assert_eq!(
            AgentOrder::new().accept(None),
            Err(TunnelOrderError::Empty { from: "agent" })
        );
    }

    #[test]
    fn the_servers_order_is_enforced() {
        let mut order = ServerOrder::new();
        assert!(
            order.accept(Some(&S::Message(chunk(1)))).is_err(),
            "body before RequestInfo"
        );
        let mut order = ServerOrder::new();
        assert_eq!(
            order.accept(Some(&S::RequestInfo(RequestInfo::default()))),
            Ok(ServerStep::RequestInfo)
        );
        assert_eq!(
            order.accept(Some(&S::Message(chunk(2)))),
            Ok(ServerStep::Message)
        );
        assert!(
            order
                .accept(Some(&S::RequestInfo(RequestInfo::default())))
                .is_err(),
            "one stream carries one request"
        );
        let mut order = ServerOrder::new();
        order
            .accept(Some(&S::RequestInfo(RequestInfo::default())))
            .unwrap();
        assert_eq!(
            order.accept(Some(&S::CloseSend(CloseSend {}))),
            Ok(ServerStep::CloseSend)
        );
        assert!(order.accept(Some(&S::Message(chunk(1)))).is_err());
    }
}
