//! The HTTP API for people and tools: health, readiness, Prometheus metrics, agents with their
//! connection state and sync status, the pollers' state, and the push endpoints.
//!
//! Every `/api/v1/` route but the push endpoints answers only an authenticated [`Caller`]; reads
//! included, since agents, token metadata and sources tell an attacker what to aim at. Store calls run
//! on the blocking pool ([`crate::store::blocking`]).

pub mod caller;

use crate::context::Context;
use crate::push::{self, PushKind, PushSecrets};
use crate::store::{StoreError, blocking};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caller::{Caller, Credentials};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Push payloads larger than this are refused (GitLab's push events for huge pushes are ~MBs).
const MAX_PUSH_BODY: usize = 25 * 1024 * 1024;

#[derive(Debug, Clone)]
struct ApiState {
    ctx: Arc<Context>,
    secrets: Arc<PushSecrets>,
    credentials: Credentials,
}

pub fn router(ctx: Arc<Context>, secrets: PushSecrets, admin: Option<SecretString>) -> Router {
    let state = ApiState {
        ctx,
        secrets: Arc::new(secrets),
        credentials: Credentials::new(admin),
    };
    // Every `/api/` route but the push endpoints belongs here, behind the one authentication.
    let authenticated = Router::new()
        .route("/api/v1/agents", get(agents).post(register_agent))
        .route("/api/v1/agents/{name}", get(agent))
        .route(
            "/api/v1/agents/{name}/drift",
            get(
                |State(s): State<ApiState>, Path(name): Path<String>| async move {
                    Json(crate::drift::agent_drift_view(&s.ctx, &name))
                },
            ),
        )
        .route(
            "/api/v1/agents/{name}/features",
            get(
                |State(s): State<ApiState>, Path(name): Path<String>| async move {
                    Json(s.ctx.features.of(&name))
                },
            ),
        )
        .route("/api/v1/agents/{name}/tokens", post(create_token))
        .route("/api/v1/tokens", get(tokens))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/v1/sources", get(sources))
        .route_layer(axum::middleware::from_extractor_with_state::<Caller, _>(
            state.clone(),
        ));
    Router::new()
        .merge(authenticated)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/push",
            post(|s, h, b| push(s, h, b, PushKind::Generic)),
        )
        .route(
            "/api/v1/push/gitlab",
            post(|s, h, b| push(s, h, b, PushKind::GitLab)),
        )
        .route(
            "/api/v1/push/github",
            post(|s, h, b| push(s, h, b, PushKind::GitHub)),
        )
        .route(
            "/api/v1/push/gitea",
            post(|s, h, b| push(s, h, b, PushKind::Gitea)),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PUSH_BODY))
        .with_state(state)
}

fn store_error(e: &StoreError) -> Response {
    use StoreError as E;
    let status = match e {
        E::AgentExists(_) | E::TooManyTokens { .. } => StatusCode::CONFLICT,
        E::NoSuchAgent(_) | E::NoSuchToken(_) => StatusCode::NOT_FOUND,
        E::InvalidName(_) => StatusCode::BAD_REQUEST,
        E::Database(_) | E::Io { .. } | E::Worker(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, format!("{e}\n")).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterAgent {
    name: String,
    config_repository: String,
}

async fn register_agent(
    State(s): State<ApiState>,
    caller: Caller,
    Json(body): Json<RegisterAgent>,
) -> Response {
    if let Err(refused) = caller.may_administer() {
        return refused.into_response();
    }
    if !s.ctx.sources.contains(&body.config_repository) {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "repository `{}` is not in the server configuration\n",
                body.config_repository
            ),
        )
            .into_response();
    }
    let registered = blocking(&s.ctx.store, move |store| {
        store.register_agent(&body.name, &body.config_repository, crate::store::now())
    })
    .await;
    match registered {
        Ok(agent) => (StatusCode::CREATED, Json(agent)).into_response(),
        Err(e) => store_error(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    #[serde(default)]
    description: String,
}

#[derive(Debug, Serialize)]
struct CreatedToken {
    #[serde(flatten)]
    record: crate::store::TokenRecord,
    /// The secret, shown this once.
    token: String,
}

async fn create_token(
    State(s): State<ApiState>,
    caller: Caller,
    Path(agent): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(refused) = caller.may_administer() {
        return refused.into_response();
    }
    let request: CreateToken = if body.is_empty() {
        CreateToken::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        }
    };
    let new = crate::token::generate();
    let hash = new.hash.clone();
    let max_active = s.ctx.config.max_tokens_per_agent.0;
    let created = blocking(&s.ctx.store, move |store| {
        store.create_token(
            &agent,
            &hash,
            &request.description,
            max_active,
            crate::store::now(),
        )
    })
    .await;
    match created {
        Ok(record) => {
            use secrecy::ExposeSecret;
            let token = new.secret.expose_secret().to_owned();
            (StatusCode::CREATED, Json(CreatedToken { record, token })).into_response()
        }
        Err(e) => store_error(&e),
    }
}

#[derive(Debug, Deserialize)]
struct TokenFilter {
    agent: Option<String>,
}

async fn tokens(
    State(s): State<ApiState>,
    axum::extract::Query(filter): axum::extract::Query<TokenFilter>,
) -> Response {
    match blocking(&s.ctx.store, move |store| {
        store.tokens(filter.agent.as_deref())
    })
    .await
    {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => store_error(&e),
    }
}

async fn revoke_token(State(s): State<ApiState>, caller: Caller, Path(id): Path<i64>) -> Response {
    if let Err(refused) = caller.may_administer() {
        return refused.into_response();
    }
    match blocking(&s.ctx.store, move |store| {
        store.revoke_token(id, crate::store::now())
    })
    .await
    {
        Ok(record) => Json(record).into_response(),
        Err(e) => store_error(&e),
    }
}

async fn readyz(State(s): State<ApiState>) -> Response {
    match blocking(&s.ctx.store, |store| store.agents()).await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")).into_response(),
    }
}

async fn metrics(State(s): State<ApiState>) -> Response {
    let connected = s.ctx.registry.connected_count(crate::store::now());
    s.ctx.metrics.set(
        "tether_server_agents_connected",
        &[],
        i64::try_from(connected).unwrap_or(i64::MAX),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.ctx.metrics.render(),
    )
        .into_response()
}

#[derive(Debug, Serialize)]
struct AgentView {
    name: String,
    config_repository: String,
    created_at: i64,
    connected: bool,
    #[serde(flatten)]
    connection: crate::registry::Connection,
}

fn view(ctx: &Context, agent: crate::store::Agent) -> AgentView {
    let connection = ctx.registry.get(&agent.name).unwrap_or_default();
    AgentView {
        connected: connection.connected(crate::store::now()),
        name: agent.name,
        config_repository: agent.config_repository,
        created_at: agent.created_at,
        connection,
    }
}

async fn agents(State(s): State<ApiState>) -> Response {
    match blocking(&s.ctx.store, |store| store.agents()).await {
        Ok(agents) => Json(
            agents
                .into_iter()
                .map(|a| view(&s.ctx, a))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn agent(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    let lookup = name.clone();
    match blocking(&s.ctx.store, move |store| store.agent(&lookup)).await {
        Ok(Some(agent)) => Json(view(&s.ctx, agent)).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no agent named `{name}`\n")).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

#[derive(Debug, Serialize)]
struct SourceView {
    repository: String,
    git_ref: String,
    #[serde(flatten)]
    state: crate::sources::SourceState,
}

async fn sources(State(s): State<ApiState>) -> Json<Vec<SourceView>> {
    let mut views: Vec<SourceView> = s
        .ctx
        .sources
        .states()
        .into_iter()
        .map(|(key, state)| SourceView {
            repository: key.repository,
            git_ref: key
                .git_ref
                .map_or_else(|| "default branch".to_owned(), |r| r.to_string()),
            state,
        })
        .collect();
    views.sort_by(|a, b| (&a.repository, &a.git_ref).cmp(&(&b.repository, &b.git_ref)));
    Json(views)
}

async fn push(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
    kind: PushKind,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let secret = match kind {
        PushKind::Generic => &s.secrets.generic,
        PushKind::GitLab => &s.secrets.gitlab,
        PushKind::GitHub => &s.secrets.github,
        PushKind::Gitea => &s.secrets.gitea,
    };
    let Some(secret) = secret else {
        return (StatusCode::NOT_FOUND, "this push endpoint is not enabled\n").into_response();
    };
    let hmac_header = |name: &str| {
        header(name)
            .strip_prefix("sha256=")
            .is_some_and(|sig| push::verify_hex(secret, &body, sig))
    };
    let verified = match kind {
        PushKind::Generic => hmac_header(push::SIGNATURE_HEADER),
        PushKind::GitHub => hmac_header("x-hub-signature-256"),
        PushKind::Gitea => push::verify_hex(secret, &body, header("x-gitea-signature")),
        PushKind::GitLab => push::token_matches(secret, header("x-gitlab-token")),
    };
    if !verified {
        return (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response();
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not JSON\n").into_response();
    };
    let names = push::repository_names(kind, &payload);
    let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
    match s.ctx.sources.find(&candidates) {
        Some(repository) => {
            s.ctx.sources.notify(&repository);
            tracing::info!(%repository, ?kind, "push event");
            (StatusCode::ACCEPTED, format!("notified {repository}\n")).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            "no configured repository matches the payload\n",
        )
            .into_response(),
    }
}
