//! The admin API for people, on the people's listener: create users, issue, list and revoke their
//! personal tokens. It needs the server's admin token (`api.admin_token_file`) and is off without one.

use super::People;
use super::store::UserStoreError;
use super::token;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::sync::Arc;

pub(super) fn routes(people: Arc<People>) -> Router<Arc<People>> {
    Router::new()
        .route(
            "/api/v1/users",
            axum::routing::get(list_users).post(create_user),
        )
        .route(
            "/api/v1/users/{name}/tokens",
            axum::routing::get(list_tokens).post(create_token),
        )
        .route(
            "/api/v1/personal-tokens/{id}",
            axum::routing::delete(revoke_token),
        )
        .route_layer(axum::middleware::from_fn_with_state(people, require_admin))
}

async fn require_admin(
    State(people): State<Arc<People>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(admin) = &people.admin else {
        return (
            StatusCode::FORBIDDEN,
            "the admin API is off; set `api.admin_token_file` in the server configuration\n",
        )
            .into_response();
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !crate::push::token_matches(admin, presented) {
        return (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response();
    }
    next.run(request).await
}

fn store_error(e: &UserStoreError) -> Response {
    let status = match e {
        UserStoreError::UserExists(_) => StatusCode::CONFLICT,
        UserStoreError::NoSuchUser(_) | UserStoreError::NoSuchToken(_) => StatusCode::NOT_FOUND,
        UserStoreError::InvalidName(_) => StatusCode::BAD_REQUEST,
        UserStoreError::Database(_) | UserStoreError::Io { .. } | UserStoreError::Task(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, format!("{e}\n")).into_response()
}

async fn list_users(State(people): State<Arc<People>>) -> Response {
    match people.with_users(|users| users.users()).await {
        Ok(users) => Json(users).into_response(),
        Err(e) => store_error(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
}

async fn create_user(State(people): State<Arc<People>>, Json(body): Json<CreateUser>) -> Response {
    let result = people
        .with_users(move |users| users.create_user(&body.name, &body.groups, crate::store::now()))
        .await;
    match result {
        Ok(user) => (StatusCode::CREATED, Json(user)).into_response(),
        Err(e) => store_error(&e),
    }
}

async fn list_tokens(State(people): State<Arc<People>>, Path(name): Path<String>) -> Response {
    match people
        .with_users(move |users| users.tokens(Some(&name)))
        .await
    {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => store_error(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    /// The only agent the token reaches.
    agent: Option<String>,
    #[serde(default)]
    description: String,
    expires_in_days: Option<u32>,
}

async fn create_token(
    State(people): State<Arc<People>>,
    Path(name): Path<String>,
    Json(body): Json<CreateToken>,
) -> Response {
    let now = crate::store::now();
    let days = body.expires_in_days.unwrap_or(token::DEFAULT_EXPIRY_DAYS);
    let Some(expires_at) = token::expiry(now, days) else {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "expires_in_days {days} must be between 1 and {}\n",
                token::MAX_EXPIRY_DAYS
            ),
        )
            .into_response();
    };
    let new = token::generate();
    let hash = new.hash.clone();
    let result = people
        .with_users(move |users| {
            users.create_token(
                &name,
                &hash,
                body.agent.as_deref(),
                &body.description,
                expires_at,
                now,
            )
        })
        .await;
    match result {
        Ok(record) => (
            StatusCode::CREATED,
            Json(serde_json::json!({
                "token": new.secret.expose_secret(),
                "record": record,
            })),
        )
            .into_response(),
        Err(e) => store_error(&e),
    }
}

async fn revoke_token(State(people): State<Arc<People>>, Path(id): Path<i64>) -> Response {
    match people
        .with_users(move |users| users.revoke_token(id, crate::store::now()))
        .await
    {
        Ok(record) => Json(record).into_response(),
        Err(e) => store_error(&e),
    }
}
