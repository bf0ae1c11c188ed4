//! kustomize's `Selector` (patch and replacement targets): exact GVK, anchored regexes for name and
//! namespace matched against the original or current id, Kubernetes label and annotation selectors.

use crate::error::{Error, Result};
use crate::kustomization::Selector;
use crate::resource::Resource;
use regex::Regex;

/// A selector compiled once for a transformer run.
#[derive(Debug)]
pub struct CompiledSelector {
    group: String,
    version: String,
    kind: String,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Vec<Requirement>,
    annotations: Vec<Requirement>,
}

impl CompiledSelector {
    pub fn new(selector: &Selector) -> Result<Self> {
        let anchored = |pattern: &str, what: &str| -> Result<Option<Regex>> {
            if pattern.is_empty() {
                return Ok(None);
            }
            Regex::new(&format!("^(?:{pattern})$"))
                .map(Some)
                .map_err(|e| {
                    Error::input(format!(
                        "target {what} `{pattern}` is not a valid regex: {e}"
                    ))
                })
        };
        Ok(CompiledSelector {
            group: selector.group.clone(),
            version: selector.version.clone(),
            kind: selector.kind.clone(),
            name: anchored(&selector.name, "name")?,
            namespace: anchored(&selector.namespace, "namespace")?,
            labels: parse_requirements(&selector.label_selector)?,
            annotations: parse_requirements(&selector.annotation_selector)?,
        })
    }

    /// Selected by id alone (name and namespace regexes, GVK); replacements test every id an object had.
    pub fn matches_id(&self, id: &crate::resource::ResId) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|n| n.is_match(id.effective_namespace()))
            && self.name.as_ref().is_none_or(|n| n.is_match(&id.name))
            && id.gvk_selected(&self.group, &self.version, &self.kind)
    }

    /// Whether the selector names anything besides labels and annotations.
    pub fn has_id_criteria(&self) -> bool {
        self.name.is_some()
            || self.namespace.is_some()
            || !self.group.is_empty()
            || !self.version.is_empty()
            || !self.kind.is_empty()
    }

    /// The label and annotation parts hold (vacuously when empty).
    pub fn matches_labels(&self, resource: &Resource) -> bool {
        let labels = resource.string_map("labels");
        let annotations = resource.string_map("annotations");
        self.labels.iter().all(|r| r.matches(&labels))
            && self.annotations.iter().all(|r| r.matches(&annotations))
    }

    /// A reject selector with label or annotation parts that all hold.
    pub fn rejects_labels(&self, resource: &Resource) -> bool {
        (!self.labels.is_empty() || !self.annotations.is_empty()) && self.matches_labels(resource)
    }

    pub fn matches(&self, resource: &Resource) -> bool {
        let current = resource.cur_id();
        let original = &resource.org_id;
        if let Some(namespace) = &self.namespace
            && !namespace.is_match(original.effective_namespace())
            && !namespace.is_match(current.effective_namespace())
        {
            return false;
        }
        if let Some(name) = &self.name
            && !name.is_match(&original.name)
            && !name.is_match(&current.name)
        {
            return false;
        }
        if !current.gvk_selected(&self.group, &self.version, &self.kind) {
            return false;
        }
        let labels = resource.string_map("labels");
        let annotations = resource.string_map("annotations");
        self.labels.iter().all(|r| r.matches(&labels))
            && self.annotations.iter().all(|r| r.matches(&annotations))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn matches(&self, map: &[(String, String)]) -> bool {
        let get = |key: &str| map.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|value| vs.iter().any(|v| v == value)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|value| vs.iter().all(|v| v != value)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }
}

/// Split at commas outside parentheses, then read each requirement.
fn parse_requirements(text: &str) -> Result<Vec<Requirement>> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    let mut requirements = Vec::new();
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let invalid = || Error::input(format!("invalid selector `{text}` near `{part}`"));
        let set = |rest: &str| -> Result<Vec<String>> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(invalid)?;
            Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
        };
        let requirement = if let Some(key) = part.strip_prefix('!') {
            Requirement::NotExists(key.trim().to_owned())
        } else if let Some((key, value)) = part.split_once("!=") {
            Requirement::NotEquals(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, value)) = part.split_once("==") {
            Requirement::Equals(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, value)) = part.split_once('=') {
            Requirement::Equals(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, rest)) = part.split_once(" notin ") {
            Requirement::NotIn(key.trim().to_owned(), set(rest)?)
        } else if let Some((key, rest)) = part.split_once(" in ") {
            Requirement::In(key.trim().to_owned(), set(rest)?)
        } else if part.contains(char::is_whitespace) || part.contains(['(', ')']) {
            return Err(invalid());
        } else {
            Requirement::Exists(part.to_owned())
        };
        requirements.push(requirement);
    }
    Ok(requirements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_parse_all_forms() {
        let r = parse_requirements("a=b, c!=d,e in (x, y),f notin (z),g,!h").unwrap();
        assert_eq!(r.len(), 6);
        let labels = vec![
            ("a".to_owned(), "b".to_owned()),
            ("e".to_owned(), "y".to_owned()),
            ("g".to_owned(), "".to_owned()),
        ];
        assert!(r.iter().all(|r| r.matches(&labels)));
        assert!(!Requirement::Exists("h".into()).matches(&labels));
    }
}
