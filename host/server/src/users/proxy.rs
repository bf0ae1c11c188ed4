//! `/k8s-proxy/agents/NAME/...`: a person's Kubernetes API request, forwarded through the agent's tunnel.
//!
//! The person is authenticated by a personal token and authorised by the agent's `user_access`; their
//! credentials and any impersonation headers are stripped before anything leaves the server (the agent
//! adds its own credentials and identity). Its own refusals are plain text, which kubectl shows as the
//! error's message.

use super::People;
use crate::tunnel::TakeError;
use crate::tunnel::exchange::ExchangeError;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tether_rpc::tunnel::v1::{RequestInfo, User as TunnelUser};
use tether_rpc::tunnel_stream::{
    MAX_REQUEST_BODY, SERVICE_KUBERNETES_API, forwardable_request_header, headers_to_proto,
};

/// Where the proxy lives on the people's listener.
pub const PROXY_PREFIX: &str = "/k8s-proxy/agents/";
/// How long a request waits for a tunnel of an agent that has none idle before 503.
pub const TUNNEL_WAIT: Duration = Duration::from_secs(5);

/// The proxy's own refusals, in plain text: client-go shows a plain-text error body as the message
/// (`Error from server (Forbidden): user `bob` … is not granted …`) on every request, discovery
/// included, whereas a JSON `Status` on a discovery request is shown only as `unknown`.
pub(super) fn kube_status(code: StatusCode, _reason: &str, message: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

pub(super) async fn proxy(
    State(people): State<Arc<People>>,
    ConnectInfo(super::PeerAddr(peer)): ConnectInfo<super::PeerAddr>,
    request: axum::extract::Request,
) -> Response {
    let Some(rest) = request.uri().path().strip_prefix(PROXY_PREFIX) else {
        return kube_status(StatusCode::NOT_FOUND, "NotFound", "no such path".to_owned());
    };
    let (agent_name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let agent_name = agent_name.to_owned();
    let path_and_query = match request.uri().query() {
        Some(query) => format!("/{tail}?{query}"),
        None => format!("/{tail}"),
    };

    let (user, token) = match people.authenticate(request.headers(), peer.ip()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Some(only) = token.agent.as_deref()
        && only != agent_name
    {
        return kube_status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "token {} of user `{}` is for agent `{only}` only, not `{agent_name}`",
                token.id, user.name
            ),
        );
    }
    let ctx = &people.ctx;
    let lookup = agent_name.clone();
    let agent = match crate::store::blocking(&ctx.store, move |store| store.agent(&lookup)).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            return kube_status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("no agent named `{agent_name}`"),
            );
        }
        Err(e) => {
            return kube_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                e.to_string(),
            );
        }
    };
    match people.access.user_access(ctx, &agent).await {
        Ok(Some(access)) if access.grants(&user.name, &user.groups) => {}
        Ok(Some(access)) => {
            return kube_status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "user `{}` (groups {:?}) is not granted agent `{agent_name}`: its user_access lists users {:?} and groups {:?}",
                    user.name, user.groups, access.users, access.groups
                ),
            );
        }
        Ok(None) => {
            return kube_status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("agent `{agent_name}` grants nobody: its configuration has no user_access"),
            );
        }
        Err(e @ crate::users::access::AccessError::Invalid { .. }) => {
            return kube_status(StatusCode::FORBIDDEN, "Forbidden", e.to_string());
        }
        Err(e) => {
            return kube_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                e.to_string(),
            );
        }
    }
    if request.headers().contains_key(header::UPGRADE) {
        return kube_status(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "connection upgrades (exec, attach, port-forward) are not carried by the tunnel yet"
                .to_owned(),
        );
    }
    if content_length(request.headers()).is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        return too_large();
    }

    let info = RequestInfo {
        service: SERVICE_KUBERNETES_API.to_owned(),
        method: request.method().as_str().to_owned(),
        path_and_query,
        headers: headers_to_proto(request.headers(), forwardable_request_header),
        user: Some(TunnelUser {
            name: user.name.clone(),
            groups: user.groups.clone(),
        }),
    };
    let open = loop {
        let tunnel = match ctx
            .tunnels
            .take(ctx, &agent_name, SERVICE_KUBERNETES_API, people.tunnel_wait)
            .await
        {
            Ok(tunnel) => tunnel,
            Err(e @ TakeError::NotConnected { .. }) => {
                return kube_status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    e.to_string(),
                );
            }
            Err(e @ TakeError::NotOffered { .. }) => {
                return kube_status(StatusCode::NOT_IMPLEMENTED, "NotImplemented", e.to_string());
            }
        };
        // A stream whose agent left after it was offered: take the next one.
        if let Ok(open) = tunnel.open(info.clone()).await {
            break open;
        }
    };
    match open.forward(ctx, request.into_body()).await {
        Ok(response) => {
            let mut out = Response::new(Body::from_stream(response.body));
            *out.status_mut() = response.status;
            *out.headers_mut() = response.headers;
            out
        }
        Err(ExchangeError::BodyTooLarge) => too_large(),
        Err(e @ ExchangeError::ShuttingDown) => kube_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            e.to_string(),
        ),
        Err(e) => kube_status(
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            format!("agent `{agent_name}`: {e}"),
        ),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large() -> Response {
    kube_status(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        format!("the request body is over the limit of {MAX_REQUEST_BODY} bytes"),
    )
}

/// The bearer token of a request, if it has the shape of a personal token.
pub(super) fn presented_token(headers: &HeaderMap) -> Option<SecretString> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| super::token::well_formed(t))
        .map(|t| SecretString::from(t.to_owned()))
}
