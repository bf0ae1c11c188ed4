//! The built-in Prometheus proxy (world `proxy`): serves Prometheus' read API to people on the server
//! side of the tunnel, asking the cluster's Prometheus through the host's `outbound.send` — the only
//! way out of the sandbox, and the host lets it reach only the configured Prometheus.
//!
//! What it serves: `/api/v1/query`, `query_range`, `series`, `labels`, `label/<name>/values`,
//! `metadata`, `query_exemplars` and `status/buildinfo`, by GET and (where Prometheus takes one) by
//! form POST. Everything else — the admin API, remote write, federation, the UI — is refused with 403.
//! Prometheus' JSON comes back unchanged; refusals use Prometheus' error format.
//!
//! Settings (strings): `url` (required, Prometheus' base URL), `max_range` (31d), `min_step` (1s),
//! `max_response` (bytes, 16 MiB), `timeout` (30s), `enforce` (label matchers such as
//! `namespace=~"team-a|team-b"`; every selector of every query is made to carry them).

wit_bindgen::generate!({ path: "../../wit", world: "tether:plugin/proxy@0.1.0" });

mod api;
mod settings;
mod tenancy;

use exports::tether::plugin::handler::Guest;
use tether::plugin::types::{Diagnostic, Error, HttpRequest, HttpResponse};

struct PrometheusProxy;

impl Guest for PrometheusProxy {
    fn handle(
        settings: Vec<(String, String)>,
        request: HttpRequest,
    ) -> Result<HttpResponse, Error> {
        let settings = settings::Settings::parse(&settings).map_err(|message| {
            Error::InvalidSettings(Diagnostic {
                message,
                location: None,
            })
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Ok(api::handle(
            &settings,
            &request,
            now,
            &mut tether::plugin::outbound::send,
        ))
    }
}

export!(PrometheusProxy);
