//! Who calls the HTTP API: the one authentication of every `/api/v1/` endpoint except the push
//! endpoints (those verify their Git host's signature instead).
//!
//! Today the admin token (`api.admin_token_file`) is the only credential. Another kind (user tokens)
//! joins as a [`Caller`] variant recognised in [`Credentials::authenticate`]; no handler authenticates on
//! its own, and no `/api/` route is reachable without a [`Caller`].

use super::ApiState;
use crate::push;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use std::sync::Arc;

/// The credentials the HTTP API accepts.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The admin token; without it nobody can use the API.
    admin: Option<Arc<SecretString>>,
}

impl Credentials {
    pub fn new(admin: Option<SecretString>) -> Self {
        Self {
            admin: admin.map(Arc::new),
        }
    }

    /// The caller presenting `headers`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (&self.admin, presented) {
            (Some(admin), Some(presented)) if push::token_matches(admin, presented) => {
                Ok(Caller::Admin)
            }
            (Some(_), _) => Err(Refusal::Unauthenticated),
            (None, _) => Err(Refusal::NoCredentials),
        }
    }
}

/// Why the API refuses a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials are configured at all: say which key enables the API.
    NoCredentials,
    /// Missing or wrong token.
    Unauthenticated,
    /// Authenticated, but not allowed to do this.
    Forbidden,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let unauthorized = |message: &'static str| {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                message,
            )
                .into_response()
        };
        match self {
            Refusal::NoCredentials => unauthorized(
                "the HTTP API needs a token: set `api.admin_token_file` in the server configuration\n",
            ),
            Refusal::Unauthenticated => unauthorized("unauthorized\n"),
            Refusal::Forbidden => (StatusCode::FORBIDDEN, "forbidden\n").into_response(),
        }
    }
}

/// An authenticated caller of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Holder of the admin token: reads everything, registers agents, manages tokens.
    Admin,
}

impl Caller {
    /// `Ok` when the caller may register agents and manage tokens.
    pub fn may_administer(&self) -> Result<(), Refusal> {
        match self {
            Caller::Admin => Ok(()),
        }
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Refusal> {
        state.credentials.authenticate(&parts.headers)
    }
}
