//! The `drift:` section: how the agent notices that the cluster no longer holds what Git says, what
//! judges it, what it ignores, and whether it puts things back. Per agent, overridable per manifest
//! project (`gitops.manifest_projects[].drift`).
//!
//! ```yaml
//! drift:
//!   mode: correct                 # or report; `correct: true|false` is still read
//!   detector: hpa-aware           # a drift-detector from `plugins:`; the built-in `drift` by default
//!   interval: 5m                  # full re-check besides the watch
//!   ignore:
//!     - target: {group: apps, kind: Deployment, name: web, namespace: apps, label_selector: "tier=web"}
//!       paths: [/spec/replicas]
//! ```
//!
//! Validation happens while deserializing: a malformed JSON pointer or label selector is refused
//! with the file and line it is written at.

use crate::duration::GoDuration;
use crate::plugins::PluginName;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The agent re-checks every managed object this often besides watching them, unless
/// `drift.interval` says otherwise (GitLab's agent re-applies every 5 minutes).
pub const DEFAULT_DRIFT_INTERVAL: Duration = Duration::from_secs(300);
/// Re-checks more often than this would load the API server for no benefit.
pub const MIN_DRIFT_INTERVAL: Duration = Duration::from_secs(10);
/// Drift is put back by default: GitLab's agent re-applies blindly, and users moving from it keep
/// that behaviour.
pub const DEFAULT_CORRECT: bool = true;
/// The drift detector compiled into the agent.
pub const BUILTIN_DETECTOR: &str = "drift";

/// `drift:` for the whole agent, or one manifest project's after its overrides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DriftFields")]
pub struct Drift {
    pub enabled: bool,
    pub interval: Duration,
    /// `None`: the built-in detector ([`BUILTIN_DETECTOR`]).
    pub detector: Option<PluginName>,
    /// `true` (`mode: correct`): drift is put back at once; `false` (`mode: report`): only reported.
    pub correct: bool,
    pub ignore: Vec<IgnoreRule>,
}

impl Default for Drift {
    fn default() -> Self {
        Drift {
            enabled: true,
            interval: DEFAULT_DRIFT_INTERVAL,
            detector: None,
            correct: DEFAULT_CORRECT,
            ignore: Vec::new(),
        }
    }
}

impl Drift {
    /// This agent-wide setting with one manifest project's overrides on top: keys the project sets
    /// win; its ignore rules come after the agent's.
    pub fn with_override(&self, project: Option<&DriftOverride>) -> Drift {
        let mut drift = self.clone();
        if let Some(o) = project {
            if let Some(enabled) = o.enabled {
                drift.enabled = enabled;
            }
            if let Some(interval) = o.interval {
                drift.interval = interval;
            }
            if let Some(detector) = &o.detector {
                drift.detector = Some(detector.clone());
            }
            if let Some(correct) = o.correct {
                drift.correct = correct;
            }
            drift.ignore.extend(o.ignore.iter().cloned());
        }
        drift
    }

    /// The detector's name, the built-in one when none is configured.
    pub fn detector_name(&self) -> &str {
        self.detector
            .as_ref()
            .map_or(BUILTIN_DETECTOR, PluginName::as_str)
    }
}

/// A manifest project's `drift:`: every key optional, the agent's value where absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DriftFields")]
pub struct DriftOverride {
    pub enabled: Option<bool>,
    pub interval: Option<Duration>,
    pub detector: Option<PluginName>,
    pub correct: Option<bool>,
    pub ignore: Vec<IgnoreRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftMode {
    /// Report drift and put it back.
    Correct,
    /// Report drift only.
    Report,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DriftFields {
    enabled: Option<bool>,
    interval: Option<GoDuration>,
    mode: Option<DriftMode>,
    detector: Option<PluginName>,
    /// Before `detector`: a list, of which only one entry was ever meaningful.
    #[serde(default)]
    detectors: Vec<PluginName>,
    /// Before `mode`.
    correct: Option<bool>,
    #[serde(default)]
    ignore: Vec<IgnoreRule>,
}

impl TryFrom<DriftFields> for DriftOverride {
    type Error = String;

    fn try_from(f: DriftFields) -> Result<Self, String> {
        if let Some(interval) = f.interval
            && interval.get() < MIN_DRIFT_INTERVAL
        {
            return Err(format!(
                "drift.interval {interval} is shorter than the minimum of {}s",
                MIN_DRIFT_INTERVAL.as_secs()
            ));
        }
        let correct = match (f.mode, f.correct) {
            (Some(mode), Some(correct)) if (mode == DriftMode::Correct) != correct => {
                return Err(
                    "drift: `mode` and the older `correct` disagree; keep only `mode`".to_owned(),
                );
            }
            (Some(mode), _) => Some(mode == DriftMode::Correct),
            (None, correct) => correct,
        };
        if f.detectors.len() > 1 {
            return Err(
                "drift.detectors: one detector judges a project; name it with `detector`"
                    .to_owned(),
            );
        }
        let detector = match (f.detector, f.detectors.into_iter().next()) {
            (Some(_), Some(_)) => {
                return Err("drift: give `detector` or the older `detectors`, not both".to_owned());
            }
            (a, b) => a.or(b),
        };
        Ok(DriftOverride {
            enabled: f.enabled,
            interval: f.interval.map(GoDuration::get),
            detector,
            correct,
            ignore: f.ignore,
        })
    }
}

impl TryFrom<DriftFields> for Drift {
    type Error = String;

    fn try_from(f: DriftFields) -> Result<Self, String> {
        let o = DriftOverride::try_from(f)?;
        Ok(Drift::default().with_override(Some(&o)))
    }
}

/// `ignore[]`: fields never counted as drift on the objects `target` selects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRule {
    #[serde(default)]
    pub target: IgnoreTarget,
    pub paths: Vec<JsonPointer>,
}

impl IgnoreRule {
    /// Whether `path` of object (`group`, `kind`, `namespace`, `name`, `labels`) is ignored.
    pub fn ignores(&self, object: &ObjectIdentity<'_>, path: &str) -> bool {
        self.target.selects(object) && self.paths.iter().any(|p| p.covers(path))
    }
}

/// What an ignore rule looks at to select an object.
#[derive(Debug, Clone, Copy)]
pub struct ObjectIdentity<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// Which objects an ignore rule applies to; an absent key matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreTarget {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<LabelSelector>,
}

impl IgnoreTarget {
    pub fn selects(&self, o: &ObjectIdentity<'_>) -> bool {
        let is = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        is(&self.group, Some(o.group))
            && is(&self.kind, Some(o.kind))
            && is(&self.name, Some(o.name))
            && is(&self.namespace, o.namespace)
            && self
                .label_selector
                .as_ref()
                .is_none_or(|s| s.matches(o.labels))
    }
}

/// An RFC 6901 JSON pointer (`/spec/replicas`, `/metadata/labels/app.kubernetes.io~1name`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct JsonPointer(String);

impl JsonPointer {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `path` is this pointer or lies below it.
    pub fn covers(&self, path: &str) -> bool {
        path == self.0
            || self.0.is_empty()
            || path
                .strip_prefix(self.0.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl TryFrom<String> for JsonPointer {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if !s.is_empty() && !s.starts_with('/') {
            return Err(format!(
                "`{s}` is not a JSON pointer: it must start with `/` (e.g. /spec/replicas)"
            ));
        }
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(format!(
                    "`{s}` is not a JSON pointer: `~` must be followed by 0 (for `~`) or 1 (for `/`)"
                ));
            }
        }
        Ok(JsonPointer(s))
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An equality-based Kubernetes label selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LabelSelector {
    text: String,
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }
}

impl TryFrom<String> for LabelSelector {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = |why: &str| format!("label selector `{text}`: {why}");
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        };
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim) {
            let requirement = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::Absent(k.trim().to_owned())
            } else if part.contains(' ') || part.contains('(') {
                return Err(bad(
                    "set-based requirements (in, notin) are not supported; use k=v, k!=v, k or !k",
                ));
            } else {
                Requirement::Exists(part.to_owned())
            };
            let (Requirement::Equals(k, _)
            | Requirement::NotEquals(k, _)
            | Requirement::Exists(k)
            | Requirement::Absent(k)) = &requirement;
            if !valid(k) {
                return Err(bad(&format!("`{k}` is not a label key")));
            }
            if let Requirement::Equals(_, v) | Requirement::NotEquals(_, v) = &requirement
                && !(v.is_empty() || valid(v))
            {
                return Err(bad(&format!("`{v}` is not a label value")));
            }
            requirements.push(requirement);
        }
        Ok(LabelSelector { text, requirements })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::parse_agent_config;

    const FILE: &str = ".tether/agents/prod/config.yaml";

    #[test]
    fn mode_detector_ignore_and_the_older_keys() {
        let c = parse_agent_config(
            "drift:\n  mode: report\n  detector: hpa-aware\n  ignore:\n    - target: {kind: Deployment, label_selector: 'tier=web,!canary'}\n      paths: [/spec/replicas, '/metadata/labels/a~1b']\n",
            FILE,
        )
        .unwrap();
        assert!(!c.drift.correct);
        assert_eq!(c.drift.detector_name(), "hpa-aware");
        let rule = &c.drift.ignore[0];
        let labels = BTreeMap::from([("tier".to_owned(), "web".to_owned())]);
        let deployment = ObjectIdentity {
            group: "apps",
            kind: "Deployment",
            namespace: Some("apps"),
            name: "web",
            labels: &labels,
        };
        assert!(rule.ignores(&deployment, "/spec/replicas"));
        assert!(!rule.ignores(&deployment, "/spec/replicasX"));
        assert!(!rule.ignores(&deployment, "/spec/template"));
        let other = ObjectIdentity {
            kind: "StatefulSet",
            ..deployment
        };
        assert!(!rule.ignores(&other, "/spec/replicas"));

        let old = parse_agent_config("drift: {detectors: [x], correct: false}\n", FILE).unwrap();
        assert_eq!(old.drift.detector_name(), "x");
        assert!(!old.drift.correct);
        assert_eq!(
            parse_agent_config("drift: {interval: 1m}\n", FILE)
                .unwrap()
                .drift
                .detector_name(),
            BUILTIN_DETECTOR
        );
    }

    #[test]
    fn a_malformed_json_pointer_is_refused_with_its_line() {
        let e = parse_agent_config(
            "drift:\n  ignore:\n    - target: {kind: Deployment}\n      paths:\n        - spec/replicas\n",
            FILE,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.to_string().starts_with(&format!("{FILE}:5")), "{e}");
        assert!(e.message.contains("must start with `/`"), "{e}");
        let e =
            parse_agent_config("drift:\n  ignore:\n    - paths: ['/a/~2']\n", FILE).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("`~` must be followed"), "{e}");
    }

    #[test]
    fn contradictions_and_bad_selectors_are_refused() {
        for (yaml, needle) in [
            ("drift: {mode: report, correct: true}\n", "disagree"),
            ("drift: {detectors: [a, b]}\n", "one detector"),
            ("drift: {detector: a, detectors: [b]}\n", "not both"),
            ("drift: {mode: fix}\n", "unknown variant"),
            (
                "drift: {ignore: [{target: {label_selector: 'a in (b)'}, paths: [/x]}]}\n",
                "set-based",
            ),
        ] {
            let e = parse_agent_config(yaml, FILE).unwrap_err();
            assert!(e.message.contains(needle), "{yaml}: {e}");
        }
    }

    #[test]
    fn a_project_overrides_the_agent() {
        let agent = Drift {
            ignore: vec![IgnoreRule {
                target: IgnoreTarget::default(),
                paths: vec![JsonPointer("/a".into())],
            }],
            ..Drift::default()
        };
        let o = DriftOverride {
            correct: Some(false),
            ignore: vec![IgnoreRule {
                target: IgnoreTarget::default(),
                paths: vec![JsonPointer("/b".into())],
            }],
            ..DriftOverride::default()
        };
        let d = agent.with_override(Some(&o));
        assert!(!d.correct);
        assert_eq!(d.ignore.len(), 2);
        assert_eq!(d.interval, DEFAULT_DRIFT_INTERVAL);
    }
}
