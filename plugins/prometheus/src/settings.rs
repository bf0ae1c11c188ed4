//! The plugin's settings, parsed once per call from the strings the host hands over. Every key is
//! known; a typo is `invalid-settings`, never a silently ignored limit.

use crate::tenancy::Enforced;
use std::time::Duration;

/// Longest time span one request may read: a query range, a series/labels window, or the lookback of
/// the selectors and subqueries inside one expression.
pub const DEFAULT_MAX_RANGE: Duration = Duration::from_secs(31 * 24 * 3600);
/// Smallest step of a range query.
pub const DEFAULT_MIN_STEP: Duration = Duration::from_secs(1);
/// Prometheus' own ceiling on points per series of a range query; a request over it is refused here
/// with the numbers instead of reaching Prometheus.
pub const MAX_POINTS: u64 = 11_000;
/// Largest answer relayed; beyond it the person gets an error, never a truncated JSON document.
pub const DEFAULT_MAX_RESPONSE: u64 = 16 * 1024 * 1024;
/// Evaluation timeout handed to Prometheus (its `timeout` parameter).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const KNOWN: &[&str] = &[
    "url",
    "max_range",
    "min_step",
    "max_response",
    "timeout",
    "enforce",
];

#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL of Prometheus, without a trailing `/`.
    pub url: String,
    pub max_range: Duration,
    pub min_step: Duration,
    pub max_response: u64,
    pub timeout: Duration,
    /// Label matchers every selector is made to carry; empty: no tenancy.
    pub enforced: Enforced,
}

impl Settings {
    pub fn parse(pairs: &[(String, String)]) -> Result<Settings, String> {
        if let Some((key, _)) = pairs.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
            return Err(format!(
                "unknown setting `{key}` (known: {})",
                KNOWN.join(", ")
            ));
        }
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
        let url = get("url").filter(|u| !u.is_empty()).ok_or(
            "setting `url` (base URL of Prometheus, e.g. http://prometheus:9090) is required",
        )?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "setting `url`: `{url}` must start with http:// or https://"
            ));
        }
        let duration = |key: &str, default: Duration| -> Result<Duration, String> {
            match get(key) {
                None => Ok(default),
                Some(text) => promql_parser::util::parse_duration(text)
                    .map_err(|e| format!("setting `{key}`: `{text}` is not a duration ({e})")),
            }
        };
        let max_response = match get("max_response") {
            None => DEFAULT_MAX_RESPONSE,
            Some(text) => text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("setting `max_response`: `{text}` is not a positive number of bytes")
            })?,
        };
        let enforced = match get("enforce") {
            None | Some("") => Enforced::none(),
            Some(text) => Enforced::parse(text).map_err(|e| format!("setting `enforce`: {e}"))?,
        };
        Ok(Settings {
            url: url.trim_end_matches('/').to_owned(),
            max_range: duration("max_range", DEFAULT_MAX_RANGE)?,
            min_step: duration("min_step", DEFAULT_MIN_STEP)?,
            max_response,
            timeout: duration("timeout", DEFAULT_TIMEOUT)?,
            enforced,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_apply_and_typos_are_refused() {
        let s = Settings::parse(&pairs(&[("url", "http://prom:9090/")])).unwrap();
        assert_eq!(s.url, "http://prom:9090");
        assert_eq!(s.max_range, DEFAULT_MAX_RANGE);
        assert!(s.enforced.is_none());
        let e = Settings::parse(&pairs(&[("url", "http://p"), ("max_rnage", "1d")])).unwrap_err();
        assert!(e.contains("unknown setting `max_rnage`"), "{e}");
        let e = Settings::parse(&pairs(&[])).unwrap_err();
        assert!(e.contains("`url`"), "{e}");
        let e = Settings::parse(&pairs(&[("url", "http://p"), ("min_step", "soon")])).unwrap_err();
        assert!(e.contains("setting `min_step`"), "{e}");
        let e =
            Settings::parse(&pairs(&[("url", "http://p"), ("enforce", "namespace=")])).unwrap_err();
        assert!(e.contains("setting `enforce`"), "{e}");
    }
}
