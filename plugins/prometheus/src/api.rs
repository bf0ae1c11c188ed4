//! The read API of Prometheus, and nothing else: which paths are served, which parameters each takes,
//! the limits checked on them, and the request sent on to Prometheus — built afresh from the checked
//! values, so a parameter this proxy did not check (a second `query`, one in the body and one in the
//! URL) never reaches Prometheus.

use crate::settings::{MAX_POINTS, Settings};
use crate::tenancy::Refusal;
use crate::tether::plugin::outbound::OutboundError;
use crate::tether::plugin::types::{HttpRequest, HttpResponse};
use std::time::Duration;

/// The endpoints served; every other path is refused with 403.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Query,
    QueryRange,
    Series,
    Labels,
    LabelValues(String),
    Metadata,
    QueryExemplars,
    BuildInfo,
}

impl Endpoint {
    fn from_path(path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix("/api/v1/")?;
        Some(match rest {
            "query" => Endpoint::Query,
            "query_range" => Endpoint::QueryRange,
            "series" => Endpoint::Series,
            "labels" => Endpoint::Labels,
            "metadata" => Endpoint::Metadata,
            "query_exemplars" => Endpoint::QueryExemplars,
            "status/buildinfo" => Endpoint::BuildInfo,
            other => {
                let name = other.strip_prefix("label/")?.strip_suffix("/values")?;
                if !is_label_name(name) {
                    return None;
                }
                Endpoint::LabelValues(name.to_owned())
            }
        })
    }

    /// Prometheus accepts a form body on these (long queries, many `match[]`).
    fn takes_post(&self) -> bool {
        matches!(
            self,
            Endpoint::Query
                | Endpoint::QueryRange
                | Endpoint::Series
                | Endpoint::Labels
                | Endpoint::QueryExemplars
        )
    }

    fn path(&self) -> String {
        match self {
            Endpoint::Query => "/api/v1/query".to_owned(),
            Endpoint::QueryRange => "/api/v1/query_range".to_owned(),
            Endpoint::Series => "/api/v1/series".to_owned(),
            Endpoint::Labels => "/api/v1/labels".to_owned(),
            Endpoint::LabelValues(name) => format!("/api/v1/label/{name}/values"),
            Endpoint::Metadata => "/api/v1/metadata".to_owned(),
            Endpoint::QueryExemplars => "/api/v1/query_exemplars".to_owned(),
            Endpoint::BuildInfo => "/api/v1/status/buildinfo".to_owned(),
        }
    }
}

/// An answer in Prometheus' error format (`{"status":"error","errorType":…,"error":…}`), so Grafana
/// and client libraries show the message as they show Prometheus' own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub error_type: &'static str,
    pub message: String,
}

impl Problem {
    fn bad_data(message: impl Into<String>) -> Problem {
        Problem {
            status: 400,
            error_type: "bad_data",
            message: message.into(),
        }
    }

    fn forbidden(message: impl Into<String>) -> Problem {
        Problem {
            status: 403,
            error_type: "forbidden",
            message: message.into(),
        }
    }

    pub fn response(&self) -> HttpResponse {
        let body = serde_json::json!({
            "status": "error",
            "errorType": self.error_type,
            "error": self.message,
        });
        HttpResponse {
            status: self.status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }
}

impl From<Refusal> for Problem {
    fn from(refusal: Refusal) -> Problem {
        match refusal {
            Refusal::Invalid(message) => Problem::bad_data(message),
            Refusal::Escapes(message) => Problem::forbidden(message),
        }
    }
}

/// The request's parameters: the URL's and, for a form POST, the body's, in that order.
struct Params(Vec<(String, String)>);

impl Params {
    fn of(request: &HttpRequest) -> Result<Params, Problem> {
        let mut pairs = request.query.clone();
        if request.method == "POST" {
            let content_type = request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.to_ascii_lowercase());
            match content_type.as_deref() {
                Some(t) if t.starts_with("application/x-www-form-urlencoded") => {
                    pairs.extend(form_urlencoded::parse(&request.body).into_owned());
                }
                _ if request.body.is_empty() => {}
                other => {
                    return Err(Problem::bad_data(format!(
                        "a POST body must be application/x-www-form-urlencoded, not {}",
                        other.unwrap_or("(no content-type)")
                    )));
                }
            }
        }
        Ok(Params(pairs))
    }

    /// A parameter given at most once: two values (e.g. one in the URL and one in the body) would let
    /// the one checked here differ from the one Prometheus reads.
    fn single(&self, name: &str) -> Result<Option<&str>, Problem> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(Problem::bad_data(format!(
                "parameter `{name}` is given more than once"
            )));
        }
        Ok(first.map(String::as_str))
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends a request to Prometheus through the host.
pub type Upstream<'a> = dyn FnMut(&HttpRequest) -> Result<HttpResponse, OutboundError> + 'a;

/// Answers one request. `now` is the current Unix time in seconds (for windows left open).
pub fn handle(
    settings: &Settings,
    request: &HttpRequest,
    now: f64,
    upstream: &mut Upstream<'_>,
) -> HttpResponse {
    match forward(settings, request, now, upstream) {
        Ok(response) => response,
        Err(problem) => problem.response(),
    }
}

fn forward(
    settings: &Settings,
    request: &HttpRequest,
    now: f64,
    upstream: &mut Upstream<'_>,
) -> Result<HttpResponse, Problem> {
    let Some(endpoint) = Endpoint::from_path(&request.target) else {
        return Err(Problem::forbidden(format!(
            "`{}` is not part of the read API this proxy serves (query, query_range, series, labels, \
             label/<name>/values, metadata, query_exemplars, status/buildinfo)",
            request.target
        )));
    };
    match request.method.as_str() {
        "GET" => {}
        "POST" if endpoint.takes_post() => {}
        method => {
            return Err(Problem {
                status: 405,
                error_type: "bad_data",
                message: format!("method {method} is not allowed on {}", endpoint.path()),
            });
        }
    }
    let params = Params::of(request)?;
    let outbound = checked_params(settings, &endpoint, &params, now)?;
    let target = format!("{}{}", settings.url, endpoint.path());
    let outbound_request = if endpoint.takes_post() {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &outbound {
            form.append_pair(k, v);
        }
        HttpRequest {
            method: "POST".to_owned(),
            target,
            query: Vec::new(),
            headers: vec![(
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            )],
            body: form.finish().into_bytes(),
        }
    } else {
        HttpRequest {
            method: "GET".to_owned(),
            target,
            query: outbound,
            headers: Vec::new(),
            body: Vec::new(),
        }
    };
    let too_large = |limit: u64| Problem {
        status: 422,
        error_type: "execution",
        message: format!(
            "Prometheus' answer is larger than {} (max_response); narrow the query: fewer series, a shorter range or a larger step",
            human_bytes(limit)
        ),
    };
    match upstream(&outbound_request) {
        Ok(response) if response.body.len() as u64 > settings.max_response => {
            Err(too_large(settings.max_response))
        }
        Ok(response) => Ok(HttpResponse {
            status: response.status,
            headers: response
                .headers
                .into_iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .collect(),
            body: response.body,
        }),
        Err(OutboundError::TooLarge(limit)) => Err(too_large(limit.min(settings.max_response))),
        Err(OutboundError::Failed(why)) => Err(Problem {
            status: 503,
            error_type: "unavailable",
            message: format!("Prometheus at {} did not answer: {why}", settings.url),
        }),
        Err(OutboundError::Denied(why)) => Err(Problem {
            status: 502,
            error_type: "internal",
            message: format!("the agent does not let this proxy reach Prometheus: {why}"),
        }),
    }
}

/// The parameters sent on, checked against the limits and confined to the enforced matchers.
fn checked_params(
    settings: &Settings,
    endpoint: &Endpoint,
    params: &Params,
    now: f64,
) -> Result<Vec<(String, String)>, Problem> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_owned(), v));
    let enforced = &settings.enforced;
    match endpoint {
        Endpoint::Query => {
            let query = confined_query(settings, params)?;
            put("query", query);
            if let Some(time) = params.single("time")? {
                parse_time("time", time)?;
                put("time", time.to_owned());
            }
            put("timeout", timeout(settings, params)?);
        }
        Endpoint::QueryRange => {
            let query = confined_query(settings, params)?;
            let start = required_time(params, "start")?;
            let end = required_time(params, "end")?;
            let step_text = params
                .single("step")?
                .ok_or_else(|| Problem::bad_data("parameter `step` is required"))?;
            let step = parse_step(step_text)?;
            if end < start {
                return Err(Problem::bad_data("`end` is before `start`"));
            }
            let range = end - start;
            check_range(settings, "the query range (end - start)", range)?;
            if step < settings.min_step {
                return Err(Problem::bad_data(format!(
                    "step {} is below the minimum step of {} (min_step)",
                    human_duration(step),
                    human_duration(settings.min_step)
                )));
            }
            let points = (range / step.as_secs_f64()).floor() as u64 + 1;
            if points > MAX_POINTS {
                return Err(Problem::bad_data(format!(
                    "{points} points per series ({} at a {} step) is over the limit of {MAX_POINTS}; use a larger step or a shorter range",
                    human_duration(Duration::from_secs_f64(range)),
                    human_duration(step)
                )));
            }
            put("query", query);
            put(
                "start",
                params.single("start")?.unwrap_or_default().to_owned(),
            );
            put("end", params.single("end")?.unwrap_or_default().to_owned());
            put("step", step_text.to_owned());
            put("timeout", timeout(settings, params)?);
        }
        Endpoint::Series | Endpoint::Labels | Endpoint::LabelValues(_) => {
            let matches = params.all("match[]");
            for selector in &matches {
                put("match[]", enforced.confine_selector(selector)?);
            }
            if matches.is_empty() && !enforced.is_none() {
                put("match[]", enforced.all_series());
            }
            let (start, end) = window(settings, params, now)?;
            put("start", start);
            put("end", end);
            if let Some(limit) = params.single("limit")? {
                limit
                    .parse::<u64>()
                    .map_err(|_| Problem::bad_data(format!("`limit` {limit} is not a number")))?;
                put("limit", limit.to_owned());
            }
        }
        Endpoint::Metadata => {
            if !enforced.is_none() {
                return Err(Problem::forbidden(format!(
                    "metric metadata is not kept per series, so it can't be limited to {{{}}}; it is not served while `enforce` is set",
                    enforced.describe()
                )));
            }
            for name in ["metric", "limit", "limit_per_metric"] {
                if let Some(value) = params.single(name)? {
                    put(name, value.to_owned());
                }
            }
        }
        Endpoint::QueryExemplars => {
            let query = confined_query(settings, params)?;
            let (start, end) = window(settings, params, now)?;
            put("query", query);
            put("start", start);
            put("end", end);
        }
        Endpoint::BuildInfo => {}
    }
    Ok(out)
}

fn confined_query(settings: &Settings, params: &Params) -> Result<String, Problem> {
    let query = params
        .single("query")?
        .ok_or_else(|| Problem::bad_data("parameter `query` is required"))?;
    let (query, lookback) = settings.enforced.confine_query(query)?;
    if lookback > settings.max_range {
        return Err(Problem::bad_data(format!(
            "the query reads {} back in time (its ranges, subqueries and offsets); the limit is {} (max_range)",
            human_duration(lookback),
            human_duration(settings.max_range)
        )));
    }
    Ok(query)
}

/// `start`/`end` of a series, labels or exemplars request, bounded by `max_range`: an open start is
/// `end - max_range`, an open end is now (Prometheus would read from the beginning of time).
fn window(settings: &Settings, params: &Params, now: f64) -> Result<(String, String), Problem> {
    let end = match params.single("end")? {
        Some(text) => parse_time("end", text)?,
        None => now,
    };
    let start = match params.single("start")? {
        Some(text) => parse_time("start", text)?,
        None => end - settings.max_range.as_secs_f64(),
    };
    if end < start {
        return Err(Problem::bad_data("`end` is before `start`"));
    }
    check_range(settings, "the time window (end - start)", end - start)?;
    Ok((format_time(start), format_time(end)))
}

fn check_range(settings: &Settings, what: &str, seconds: f64) -> Result<(), Problem> {
    if seconds > settings.max_range.as_secs_f64() {
        return Err(Problem::bad_data(format!(
            "{what} of {} is over the limit of {} (max_range)",
            human_duration(Duration::from_secs_f64(seconds.min(1e15))),
            human_duration(settings.max_range)
        )));
    }
    Ok(())
}

/// The evaluation timeout for Prometheus: the person's, but never longer than the setting.
fn timeout(settings: &Settings, params: &Params) -> Result<String, Problem> {
    let asked = match params.single("timeout")? {
        Some(text) => Some(
            promql_parser::util::parse_duration(text)
                .map_err(|e| Problem::bad_data(format!("`timeout` {text}: {e}")))?,
        ),
        None => None,
    };
    let timeout = asked.map_or(settings.timeout, |t| t.min(settings.timeout));
    Ok(format!("{}ms", timeout.as_millis().max(1)))
}

fn required_time(params: &Params, name: &str) -> Result<f64, Problem> {
    let text = params
        .single(name)?
        .ok_or_else(|| Problem::bad_data(format!("parameter `{name}` is required")))?;
    parse_time(name, text)
}

/// Unix seconds (with a fraction) or RFC 3339, as Prometheus accepts them.
fn parse_time(name: &str, text: &str) -> Result<f64, Problem> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok(seconds);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
        .map_err(|_| {
            Problem::bad_data(format!(
                "`{name}` {text} is neither Unix seconds nor an RFC 3339 time"
            ))
        })
}

fn format_time(seconds: f64) -> String {
    format!("{seconds:.3}")
}

fn parse_step(text: &str) -> Result<Duration, Problem> {
    let bad = || Problem::bad_data(format!("`step` {text} is not a positive duration"));
    if let Ok(seconds) = text.parse::<f64>() {
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(bad());
        }
        return Duration::try_from_secs_f64(seconds).map_err(|_| bad());
    }
    promql_parser::util::parse_duration(text).map_err(|_| bad())
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn human_duration(d: Duration) -> String {
    promql_parser::util::display_duration(&d)
}

fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests;
