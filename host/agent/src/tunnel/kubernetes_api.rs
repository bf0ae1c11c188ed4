//! The `kubernetes_api` service: one person's request to the cluster's API server, made with the agent's
//! own credentials (the kube client's configuration: the ServiceAccount in a pod) and, per the
//! configuration's `user_access.access_as`, impersonating the person, so the cluster's RBAC decides.
//!
//! The request body is collected before the call (kube's client takes a whole body; the server bounds it
//! to `MAX_REQUEST_BODY`); the response streams back as it arrives, so a watch is never buffered. The
//! server ending the stream at any point drops the call to the API server.

use axum::body::HttpBody;
use axum::http::{self, HeaderValue, Method, Request};
use bytes::{Bytes, BytesMut};
use tether_config::user_access::{AccessAs, IMPERSONATED_GROUP_PREFIX, IMPERSONATED_USER_PREFIX};
use tether_rpc::limits::MAX_CHUNK_SIZE;
use tether_rpc::tunnel::v1::{
    ConnectRequest, ConnectResponse, Error, Header, Message, RequestInfo, Trailer, User,
    connect_request::Msg,
};
use tether_rpc::tunnel_stream::{
    MAX_REQUEST_BODY, SERVICE_KUBERNETES_API, ServerOrder, ServerStep, forwardable_request_header,
    forwardable_response_header, headers_from_proto, headers_to_proto,
};
use tokio::sync::mpsc;
use tonic::Streaming;

use super::TunnelError;
use crate::module::ConfigWatch;

/// As whom a request goes to the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Agent,
    Impersonate { user: String, groups: Vec<String> },
}

pub(super) struct KubernetesApi {
    client: kube::Client,
    config: ConfigWatch,
}

impl KubernetesApi {
    pub(super) fn new(client: kube::Client, config: ConfigWatch) -> Self {
        Self { client, config }
    }

    /// Serves the request `info` opened; its body follows on `inbound`, the answer goes to `tx`.
    pub(super) async fn serve(
        &self,
        info: RequestInfo,
        inbound: &mut Streaming<ConnectResponse>,
        mut order: ServerOrder,
        tx: &mpsc::Sender<ConnectRequest>,
    ) -> Result<(), TunnelError> {
        if info.service != SERVICE_KUBERNETES_API {
            return refuse(tx, format!("this agent does not offer `{}`", info.service)).await;
        }
        let mut body = BytesMut::new();
        loop {
            let message = inbound.message().await?.ok_or(TunnelError::Cancelled)?;
            match (order.accept(message.msg.as_ref())?, message.msg) {
                (
                    ServerStep::Message,
                    Some(tether_rpc::tunnel::v1::connect_response::Msg::Message(m)),
                ) => {
                    if body.len() + m.data.len() > MAX_REQUEST_BODY {
                        return refuse(
                            tx,
                            format!("the request body is over {MAX_REQUEST_BODY} bytes"),
                        )
                        .await;
                    }
                    body.extend_from_slice(&m.data);
                }
                (ServerStep::CloseSend, _) => break,
                _ => unreachable!("the order allows only Message or CloseSend after RequestInfo"),
            }
        }
        let identity = match self.identity(info.user.as_ref()) {
            Ok(identity) => identity,
            Err(why) => return refuse(tx, why).await,
        };
        let request = match build_request(&info, &identity, body.freeze()) {
            Ok(request) => request,
            Err(why) => return refuse(tx, why).await,
        };
        tracing::debug!(method = %info.method, path = %info.path_and_query, ?identity, "tunnelled Kubernetes API request");
        let response = tokio::select! {
            response = self.client.send(request) => response,
            // Anything from the server now is the end of the stream: the person has gone.
            _ = inbound.message() => return Err(TunnelError::Cancelled),
        };
        let response = match response {
            Ok(response) => response,
            Err(e) => return refuse(tx, format!("the Kubernetes API server: {e}")).await,
        };
        let (parts, mut body) = response.into_parts();
        send(
            tx,
            Msg::Header(Header {
                status: u32::from(parts.status.as_u16()),
                headers: headers_to_proto(&parts.headers, forwardable_response_header),
            }),
        )
        .await?;
        loop {
            let frame = tokio::select! {
                frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)) => frame,
                _ = inbound.message() => return Err(TunnelError::Cancelled),
            };
            match frame {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while !data.is_empty() {
                            let chunk = data.split_to(data.len().min(MAX_CHUNK_SIZE));
                            send(tx, Msg::Message(Message { data: chunk })).await?;
                        }
                    }
                }
                Some(Err(e)) => {
                    return send(
                        tx,
                        Msg::Error(Error {
                            message: format!("reading the Kubernetes API server's response: {e}"),
                        }),
                    )
                    .await;
                }
            }
        }
        send(tx, Msg::Trailer(Trailer {})).await
    }

    /// Who the request runs as, from the configuration in force: nothing unless `user_access` grants
    /// the person (the server checked the same; this is the agent's own word on it).
    fn identity(&self, user: Option<&User>) -> Result<Identity, String> {
        let config = self.config.borrow().clone();
        let Some(access) = config.as_ref().and_then(|c| c.config.user_access.as_ref()) else {
            return Err(
                "this agent's configuration has no `user_access`: nobody may use it".to_owned(),
            );
        };
        let user = user.ok_or("the request names no user")?;
        if !access.grants(&user.name, &user.groups) {
            return Err(format!(
                "user `{}` is not granted this agent by its configuration's `user_access`",
                user.name
            ));
        }
        Ok(match &access.access_as {
            AccessAs::Agent => Identity::Agent,
            AccessAs::User => Identity::Impersonate {
                user: format!("{IMPERSONATED_USER_PREFIX}{}", user.name),
                groups: user
                    .groups
                    .iter()
                    .map(|g| format!("{IMPERSONATED_GROUP_PREFIX}{g}"))
                    .collect(),
            },
            AccessAs::Impersonate { username, groups } => Identity::Impersonate {
                user: username.clone(),
                groups: groups.clone(),
            },
        })
    }
}

fn build_request(
    info: &RequestInfo,
    identity: &Identity,
    body: Bytes,
) -> Result<Request<kube::client::Body>, String> {
    let method = Method::from_bytes(info.method.as_bytes())
        .map_err(|_| format!("invalid method `{}`", info.method))?;
    if !info.path_and_query.starts_with('/') {
        return Err(format!("invalid path `{}`", info.path_and_query));
    }
    let uri: http::Uri = info
        .path_and_query
        .parse()
        .map_err(|_| format!("invalid path `{}`", info.path_and_query))?;
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(kube::client::Body::from(body))
        .map_err(|e| e.to_string())?;
    // Filtered again here: the server strips these, but the agent does not rely on it.
    *request.headers_mut() = headers_from_proto(info.headers.clone(), forwardable_request_header);
    if let Identity::Impersonate { user, groups } = identity {
        let value =
            |v: &str| HeaderValue::try_from(v).map_err(|_| format!("invalid identity `{v}`"));
        request
            .headers_mut()
            .insert("impersonate-user", value(user)?);
        for group in groups {
            request
                .headers_mut()
                .append("impersonate-group", value(group)?);
        }
    }
    Ok(request)
}

async fn send(tx: &mpsc::Sender<ConnectRequest>, msg: Msg) -> Result<(), TunnelError> {
    tx.send(ConnectRequest { msg: Some(msg) })
        .await
        .map_err(|_| TunnelError::ServerGone)
}

/// Ends the request with an error the server shows the person.
async fn refuse(tx: &mpsc::Sender<ConnectRequest>, why: String) -> Result<(), TunnelError> {
    tracing::info!("tunnelled request refused: {why}");
    send(tx, Msg::Error(Error { message: why })).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(headers: &[(&str, &str)]) -> RequestInfo {
        RequestInfo {
            service: SERVICE_KUBERNETES_API.into(),
            method: "GET".into(),
            path_and_query: "/api/v1/namespaces?limit=1".into(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        tether_rpc::tunnel::v1::HeaderValues {
                            values: vec![(*v).to_owned()],
                        },
                    )
                })
                .collect(),
            user: None,
        }
    }

    #[test]
    fn the_agent_sets_the_identity_and_drops_the_callers() {
        let request = build_request(
            &info(&[
                ("impersonate-user", "system:admin"),
                ("impersonate-group", "system:masters"),
                ("authorization", "Bearer stolen"),
                ("accept", "application/json"),
            ]),
            &Identity::Impersonate {
                user: "tether:user:alice".into(),
                groups: vec!["tether:group:a".into(), "tether:group:b".into()],
            },
            Bytes::new(),
        )
        .unwrap();
        let h = request.headers();
        assert_eq!(h["impersonate-user"], "tether:user:alice");
        let groups: Vec<_> = h.get_all("impersonate-group").iter().collect();
        assert_eq!(groups, ["tether:group:a", "tether:group:b"]);
        assert!(h.get("authorization").is_none());
        assert_eq!(h["accept"], "application/json");
        assert_eq!(request.uri(), "/api/v1/namespaces?limit=1");

        let as_agent = build_request(
            &info(&[("impersonate-user", "system:admin")]),
            &Identity::Agent,
            Bytes::new(),
        )
        .unwrap();
        assert!(as_agent.headers().get("impersonate-user").is_none());
    }

    #[test]
    fn bad_methods_and_paths_are_refused() {
        let mut bad = info(&[]);
        bad.method = "GE T".into();
        assert!(build_request(&bad, &Identity::Agent, Bytes::new()).is_err());
        let mut bad = info(&[]);
        bad.path_and_query = "http://elsewhere/api".into();
        assert!(build_request(&bad, &Identity::Agent, Bytes::new()).is_err());
    }
}
