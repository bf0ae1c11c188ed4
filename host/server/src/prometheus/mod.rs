//! `/api/v1/agents/NAME/prometheus/...` on the people's listener: Prometheus' read API of an agent's
//! cluster, asked through the agent's tunnel (service `prometheus`), answered by its proxy plugin.
//!
//! A person is authenticated by a personal token, authorised by the agent's `user_access` (the same
//! check as the Kubernetes API proxy) and held to a per-user rate. Prometheus' JSON comes back
//! unchanged, so Grafana or any Prometheus client can use `https://SERVER/api/v1/agents/NAME/prometheus`
//! as a Prometheus data source; the server's own refusals use Prometheus' error format too.
//!
//! It never reads or changes a query: what may be asked is the plugin's decision, inside the cluster.

mod rate;

use crate::tunnel::TakeError;
use crate::tunnel::exchange::ExchangeError;
use crate::users::People;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tether_rpc::tunnel::v1::{RequestInfo, User as TunnelUser};
use tether_rpc::tunnel_stream::{SERVICE_PROMETHEUS, forwardable_request_header, headers_to_proto};

pub use rate::UserRate;

/// Where the proxy lives on the people's listener.
pub const PREFIX: &str = "/api/v1/agents/";
/// A Prometheus request (a query, a list of `match[]`) is small; a larger body is refused before it
/// goes anywhere.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// The routes, for the people's router.
pub fn routes() -> Router<Arc<People>> {
    let proxy = axum::routing::any(proxy);
    Router::new()
        .route("/api/v1/agents/{agent}/prometheus", proxy.clone())
        .route("/api/v1/agents/{agent}/prometheus/{*path}", proxy)
}

/// Prometheus' error format.
pub fn error(status: StatusCode, error_type: &str, message: String) -> Response {
    let body = serde_json::json!({
        "status": "error",
        "errorType": error_type,
        "error": message,
    });
    (status, axum::Json(body)).into_response()
}

async fn proxy(
    State(people): State<Arc<People>>,
    ConnectInfo(crate::users::PeerAddr(peer)): ConnectInfo<crate::users::PeerAddr>,
    request: axum::extract::Request,
) -> Response {
    let path = request.uri().path().to_owned();
    let Some((agent_name, tail)) = path
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once("/prometheus"))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such path".to_owned(),
        );
    };
    let agent_name = agent_name.to_owned();
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{tail}?{query}"),
        None => tail.to_owned(),
    };
    let path_and_query = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        format!("/{path_and_query}")
    };

    // The same checks as the Kubernetes API proxy: a valid token, for this agent, granted by the
    // agent's user_access. Their answers are Kubernetes Status objects; the status code is what a
    // Prometheus client acts on.
    let (user, token) = match people.authenticate(request.headers(), peer.ip()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Some(only) = token.agent.as_deref()
        && only != agent_name
    {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token {} of user `{}` is for agent `{only}` only, not `{agent_name}`",
                token.id, user.name
            ),
        );
    }
    if !people.prometheus_rate.allow(&user.name) {
        people
            .ctx
            .metrics
            .inc("tether_server_prometheus_rate_limited_total", &[]);
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "user `{}` sent more than {} Prometheus requests a minute; retry later",
                user.name,
                people.prometheus_rate.per_minute()
            ),
        );
    }
    let ctx = &people.ctx;
    let agent = match ctx.store.agent(&agent_name) {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no agent named `{agent_name}`"),
            );
        }
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            );
        }
    };
    match people.access.user_access(ctx, &agent).await {
        Ok(Some(access)) if access.grants(&user.name, &user.groups) => {}
        Ok(Some(_)) => {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "user `{}` (groups {:?}) is not granted agent `{agent_name}` by its user_access",
                    user.name, user.groups
                ),
            );
        }
        Ok(None) => {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("agent `{agent_name}` grants nobody: its configuration has no user_access"),
            );
        }
        Err(e @ crate::users::access::AccessError::Invalid { .. }) => {
            return error(StatusCode::FORBIDDEN, "forbidden", e.to_string());
        }
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            );
        }
    }
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad_data",
            format!("the request body is over the limit of {MAX_REQUEST_BODY} bytes"),
        )
    };
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        return too_large();
    }

    let info = RequestInfo {
        service: SERVICE_PROMETHEUS.to_owned(),
        method: request.method().as_str().to_owned(),
        path_and_query,
        headers: headers_to_proto(request.headers(), forwardable_request_header),
        user: Some(TunnelUser {
            name: user.name.clone(),
            groups: user.groups.clone(),
        }),
    };
    let body = match axum::body::to_bytes(request.into_body(), MAX_REQUEST_BODY).await {
        Ok(body) => body,
        Err(_) => return too_large(),
    };
    let open = loop {
        let tunnel = match ctx
            .tunnels
            .take(ctx, &agent_name, SERVICE_PROMETHEUS, people.tunnel_wait)
            .await
        {
            Ok(tunnel) => tunnel,
            Err(e @ TakeError::NotConnected { .. }) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                );
            }
            Err(e @ TakeError::NotOffered { .. }) => {
                return error(StatusCode::NOT_IMPLEMENTED, "unavailable", e.to_string());
            }
        };
        if let Ok(open) = tunnel.open(info.clone()).await {
            break open;
        }
    };
    match open.forward(ctx, Body::from(body)).await {
        Ok(response) => {
            let mut out = Response::new(Body::from_stream(response.body));
            *out.status_mut() = response.status;
            *out.headers_mut() = response.headers;
            out
        }
        Err(ExchangeError::BodyTooLarge) => too_large(),
        Err(e @ ExchangeError::ShuttingDown) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            "unavailable",
            format!("agent `{agent_name}`: {e}"),
        ),
    }
}
