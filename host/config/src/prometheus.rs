//! `prometheus:` — the Prometheus the agent's proxy plugin queries for people on the server side, and
//! the limits and tenancy every query is held to.
//!
//! ```yaml
//! prometheus:
//!   url: http://prometheus.monitoring.svc:9090   # omitted: the one feature discovery finds
//!   plugin: prometheus                           # omitted: the built-in
//!   max_range: 744h                              # longest span one request may read
//!   min_step: 1s                                 # smallest step of a range query
//!   max_response: 16Mi                           # largest answer relayed
//!   timeout: 30s                                 # evaluation timeout given to Prometheus
//!   enforce: 'namespace=~"team-a|team-b"'        # label matchers forced into every selector
//! ```
//!
//! The section may be left out: the agent then proxies the Prometheus discovery finds, with the
//! defaults below, to the people `user_access` grants.

use crate::duration::GoDuration;
use crate::plugins::{AllowedUrl, ByteSize, MAX_OUTPUT, MAX_TIMEOUT, PluginName};
use serde::Deserialize;
use std::time::Duration;

/// A month of data: what a dashboard's "last 30 days" needs.
pub const DEFAULT_MAX_RANGE: Duration = Duration::from_secs(31 * 24 * 3600);
pub const DEFAULT_MIN_STEP: Duration = Duration::from_secs(1);
/// As much as a plugin may return by default.
pub const DEFAULT_MAX_RESPONSE: ByteSize = ByteSize(16 * 1024 * 1024);
/// Prometheus' own default query timeout is 2 minutes; a person waiting on a dashboard, less.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Room the plugin needs beyond the answer it relays (its error texts, headers).
pub const RESPONSE_HEADROOM: ByteSize = ByteSize(1024 * 1024);

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PrometheusFields")]
pub struct Prometheus {
    /// Base URL, e.g. `http://prometheus.monitoring.svc:9090`; `None`: the discovered one.
    pub url: Option<AllowedUrl>,
    /// The proxy plugin to use; the built-in `prometheus` when omitted.
    pub plugin: Option<PluginName>,
    pub max_range: Duration,
    pub min_step: Duration,
    pub max_response: ByteSize,
    pub timeout: Duration,
    /// Label matchers (PromQL, the inside of a selector's braces) every selector is made to carry.
    pub enforce: Option<String>,
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            url: None,
            plugin: None,
            max_range: DEFAULT_MAX_RANGE,
            min_step: DEFAULT_MIN_STEP,
            max_response: DEFAULT_MAX_RESPONSE,
            timeout: DEFAULT_TIMEOUT,
            enforce: None,
        }
    }
}

impl Prometheus {
    /// The settings handed to the proxy plugin, as the built-in reads them.
    pub fn plugin_settings(&self, url: &str) -> Vec<(String, String)> {
        let mut settings = vec![
            ("url".to_owned(), url.to_owned()),
            ("max_range".to_owned(), seconds(self.max_range)),
            ("min_step".to_owned(), seconds(self.min_step)),
            (
                "max_response".to_owned(),
                self.max_response.bytes().to_string(),
            ),
            ("timeout".to_owned(), seconds(self.timeout)),
        ];
        if let Some(enforce) = &self.enforce {
            settings.push(("enforce".to_owned(), enforce.clone()));
        }
        settings
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusFields {
    #[serde(default)]
    url: Option<AllowedUrl>,
    #[serde(default)]
    plugin: Option<PluginName>,
    #[serde(default)]
    max_range: Option<GoDuration>,
    #[serde(default)]
    min_step: Option<GoDuration>,
    #[serde(default)]
    max_response: Option<ByteSize>,
    #[serde(default)]
    timeout: Option<GoDuration>,
    #[serde(default)]
    enforce: Option<String>,
}

impl TryFrom<PrometheusFields> for Prometheus {
    type Error = String;

    fn try_from(f: PrometheusFields) -> Result<Self, String> {
        let positive = |key: &str, d: Option<GoDuration>, default: Duration| {
            let d = d.map_or(default, GoDuration::get);
            if d.is_zero() {
                Err(format!("prometheus.{key} must be more than 0"))
            } else {
                Ok(d)
            }
        };
        let timeout = positive("timeout", f.timeout, DEFAULT_TIMEOUT)?;
        if timeout > MAX_TIMEOUT {
            return Err(format!(
                "prometheus.timeout is over the maximum of {}s",
                MAX_TIMEOUT.as_secs()
            ));
        }
        let max_response = f.max_response.unwrap_or(DEFAULT_MAX_RESPONSE);
        if max_response.bytes() == 0
            || max_response.bytes() > MAX_OUTPUT.bytes() - RESPONSE_HEADROOM.bytes()
        {
            return Err(format!(
                "prometheus.max_response must be between 1 byte and {} (got {max_response})",
                ByteSize(MAX_OUTPUT.bytes() - RESPONSE_HEADROOM.bytes())
            ));
        }
        let enforce = f
            .enforce
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty());
        if let Some(e) = &enforce
            && !["=", "!=", "=~", "!~"].iter().any(|op| e.contains(op))
        {
            return Err(format!(
                "prometheus.enforce `{e}` is not a list of label matchers (e.g. namespace=~\"team-a|team-b\")"
            ));
        }
        Ok(Prometheus {
            url: f.url,
            plugin: f.plugin,
            max_range: positive("max_range", f.max_range, DEFAULT_MAX_RANGE)?,
            min_step: positive("min_step", f.min_step, DEFAULT_MIN_STEP)?,
            max_response,
            timeout,
            enforce,
        })
    }
}
