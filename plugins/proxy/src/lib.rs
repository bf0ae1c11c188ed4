//! A minimal proxy plugin (the shape of the Prometheus proxy): forwards `GET` requests to the `upstream`
//! setting (a base URL) through the host's `outbound.send`, and refuses everything else with 405. A URL the
//! host denies becomes `error::denied`; an upstream failure becomes a 502 response.

wit_bindgen::generate!({ path: "../../wit", world: "tether:plugin/proxy@0.1.0" });

use exports::tether::plugin::handler::Guest;
use tether::plugin::outbound::{self, OutboundError};
use tether::plugin::types::{Diagnostic, Error, HttpRequest, HttpResponse};

struct Proxy;

impl Guest for Proxy {
    fn handle(
        settings: Vec<(String, String)>,
        request: HttpRequest,
    ) -> Result<HttpResponse, Error> {
        let Some((_, upstream)) = settings.iter().find(|(k, _)| k == "upstream") else {
            return Err(Error::InvalidSettings(Diagnostic {
                message: "setting `upstream` (base URL of the service to query) is required"
                    .to_owned(),
                location: None,
            }));
        };
        if request.method != "GET" {
            return Ok(text(
                405,
                &format!(
                    "method {} not allowed: this proxy is read-only",
                    request.method
                ),
            ));
        }
        let outbound = HttpRequest {
            method: "GET".to_owned(),
            target: format!("{}{}", upstream.trim_end_matches('/'), request.target),
            query: request.query,
            headers: request
                .headers
                .into_iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case("accept"))
                .collect(),
            body: Vec::new(),
        };
        match outbound::send(&outbound) {
            Ok(response) => Ok(response),
            Err(OutboundError::Denied(message)) => Err(Error::Denied(Diagnostic {
                message,
                location: None,
            })),
            Err(OutboundError::Failed(message)) => {
                Ok(text(502, &format!("upstream failed: {message}")))
            }
            Err(OutboundError::TooLarge(limit)) => Ok(text(
                502,
                &format!("upstream response larger than {limit} bytes"),
            )),
        }
    }
}

export!(Proxy);

fn text(status: u16, message: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
        body: message.as_bytes().to_vec(),
    }
}
