//! What an agent may touch: the namespaces of its mode and the kinds its configuration includes.
//! Checked for every object before any write, so a refused object costs the cluster nothing.

use std::collections::BTreeSet;

use crate::gitops::ObjectRef;

/// Where the agent may apply: everywhere, or only in some namespaces (and then never to
/// cluster-scoped objects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentScope {
    ClusterWide,
    Namespaced { namespaces: BTreeSet<String> },
}

impl AgentScope {
    pub fn namespaced<I: IntoIterator<Item = S>, S: Into<String>>(namespaces: I) -> Self {
        Self::Namespaced {
            namespaces: namespaces.into_iter().map(Into::into).collect(),
        }
    }

    /// The scope the repository's configuration asks for, bounded by this one (the agent's own
    /// flags): it may narrow but never widen.
    pub fn narrowed_by(&self, requested: &AgentScope) -> Result<AgentScope, String> {
        match (self, requested) {
            (Self::ClusterWide, r) => Ok(r.clone()),
            (Self::Namespaced { .. }, Self::ClusterWide) => Err(
                "the configuration asks for cluster-wide mode, but the agent runs namespaced"
                    .into(),
            ),
            (
                Self::Namespaced {
                    namespaces: allowed,
                },
                Self::Namespaced { namespaces },
            ) => {
                let outside: Vec<_> = namespaces.difference(allowed).cloned().collect();
                if outside.is_empty() {
                    Ok(requested.clone())
                } else {
                    Err(format!(
                        "the configuration asks for namespaces the agent may not use: {}",
                        outside.join(", ")
                    ))
                }
            }
        }
    }

    /// Whether `object` (namespaced or not, per discovery) is within this scope.
    pub fn check(&self, object: &ObjectRef, namespaced_kind: bool) -> Result<(), String> {
        let Self::Namespaced { namespaces } = self else {
            return Ok(());
        };
        if !namespaced_kind {
            return Err(format!(
                "{} is cluster-scoped and the agent runs in namespaced mode",
                object.kind
            ));
        }
        match &object.namespace {
            Some(ns) if namespaces.contains(ns) => Ok(()),
            Some(ns) => Err(format!(
                "namespace {ns} is not one of the agent's namespaces ({})",
                namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            None => Err("the object has no namespace".into()),
        }
    }
}

/// API groups × kinds, `*` matching any. The core group is the empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRule {
    pub api_groups: Vec<String>,
    pub kinds: Vec<String>,
}

impl KindRule {
    fn matches(&self, group: &str, kind: &str) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|p| p == "*" || p == value);
        any(&self.api_groups, group) && any(&self.kinds, kind)
    }
}

/// `resource_inclusions` / `resource_exclusions`: with no inclusions every kind is included; an
/// exclusion always wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindFilter {
    pub inclusions: Vec<KindRule>,
    pub exclusions: Vec<KindRule>,
}

impl KindFilter {
    pub fn check(&self, object: &ObjectRef) -> Result<(), String> {
        let (group, kind) = (object.group.as_str(), object.kind.as_str());
        let shown = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        if self.exclusions.iter().any(|r| r.matches(group, kind)) {
            return Err(format!("{shown} is excluded by resource_exclusions"));
        }
        if !self.inclusions.is_empty() && !self.inclusions.iter().any(|r| r.matches(group, kind)) {
            return Err(format!("{shown} is not included by resource_inclusions"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(group: &str, kind: &str, ns: Option<&str>) -> ObjectRef {
        ObjectRef {
            group: group.into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: "x".into(),
        }
    }

    fn rule(groups: &[&str], kinds: &[&str]) -> KindRule {
        KindRule {
            api_groups: groups.iter().map(|s| s.to_string()).collect(),
            kinds: kinds.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn namespaced_mode_refuses_cluster_scoped_and_foreign_namespaces() {
        let scope = AgentScope::namespaced(["team-a"]);
        assert!(
            scope
                .check(&obj("", "ConfigMap", Some("team-a")), true)
                .is_ok()
        );
        let foreign = scope
            .check(&obj("", "ConfigMap", Some("team-b")), true)
            .unwrap_err();
        assert!(foreign.contains("team-b is not one of"), "{foreign}");
        let cluster = scope
            .check(
                &obj("rbac.authorization.k8s.io", "ClusterRole", None),
                false,
            )
            .unwrap_err();
        assert!(
            cluster.contains("ClusterRole is cluster-scoped"),
            "{cluster}"
        );
        assert!(
            AgentScope::ClusterWide
                .check(&obj("", "Namespace", None), false)
                .is_ok()
        );
    }

    #[test]
    fn configuration_narrows_but_never_widens_the_agent_scope() {
        let flags = AgentScope::namespaced(["a", "b"]);
        assert_eq!(
            flags.narrowed_by(&AgentScope::namespaced(["a"])).unwrap(),
            AgentScope::namespaced(["a"])
        );
        assert!(flags.narrowed_by(&AgentScope::ClusterWide).is_err());
        let err = flags
            .narrowed_by(&AgentScope::namespaced(["a", "c"]))
            .unwrap_err();
        assert!(err.ends_with(": c"), "{err}");
        assert_eq!(
            AgentScope::ClusterWide
                .narrowed_by(&AgentScope::namespaced(["a"]))
                .unwrap(),
            AgentScope::namespaced(["a"])
        );
    }

    #[test]
    fn exclusions_win_and_inclusions_limit() {
        let filter = KindFilter {
            inclusions: vec![rule(&["", "apps"], &["*"])],
            exclusions: vec![rule(&["*"], &["Secret"])],
        };
        assert!(filter.check(&obj("apps", "Deployment", Some("a"))).is_ok());
        assert!(filter.check(&obj("", "ConfigMap", Some("a"))).is_ok());
        let secret = filter.check(&obj("", "Secret", Some("a"))).unwrap_err();
        assert_eq!(secret, "Secret is excluded by resource_exclusions");
        let role = filter
            .check(&obj("rbac.authorization.k8s.io", "Role", Some("a")))
            .unwrap_err();
        assert_eq!(
            role,
            "Role.rbac.authorization.k8s.io is not included by resource_inclusions"
        );
        assert!(KindFilter::default().check(&obj("x", "Y", None)).is_ok());
    }
}
