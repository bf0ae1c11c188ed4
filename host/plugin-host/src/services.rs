//! The drift-detector and proxy worlds as the host's callers see them: their values (generated from the
//! WIT) and the transport a proxy's outbound calls go through.

pub use crate::bindings::drift::exports::tether::plugin::detect::{
    Drift, FieldOwner, Observed, Report, Verdict,
};
pub use crate::bindings::proxy::tether::plugin::outbound::OutboundError;
pub use crate::bindings::types::{HttpRequest, HttpResponse};

/// Sends a proxy plugin's outbound request once the host has checked it against the plugin's
/// `allowed_urls`. The agent implements it with its HTTP client; the runtime itself opens no sockets.
pub trait OutboundTransport: Send + Sync {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, OutboundError>;
}
