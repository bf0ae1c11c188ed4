//! What an agent may touch: the namespaces of its mode and the kinds its configuration includes.
//! Checked for every object before any write, so a refused object costs the cluster nothing.
//!
//! The shapes come from the configuration (`mode`, `resource_inclusions`, `resource_exclusions`);
//! this module decides with them.

use tether_config::agent::{AgentMode, ResourceFilter};

use crate::gitops::ObjectRef;

/// The mode the repository's configuration asks for, bounded by `bound` (the agent's own flags):
/// it may narrow but never widen. No mode in the configuration means the flags' mode.
pub fn narrow_mode(bound: &AgentMode, requested: Option<&AgentMode>) -> Result<AgentMode, String> {
    let Some(requested) = requested else {
        return Ok(bound.clone());
    };
    match (bound, requested) {
        (AgentMode::ClusterWide, r) => Ok(r.clone()),
        (AgentMode::Namespaced { .. }, AgentMode::ClusterWide) => Err(
            "the configuration asks for cluster-wide mode, but the agent runs namespaced".into(),
        ),
        (
            AgentMode::Namespaced {
                namespaces: allowed,
            },
            AgentMode::Namespaced { namespaces },
        ) => {
            let outside: Vec<_> = namespaces
                .iter()
                .filter(|ns| !allowed.contains(ns))
                .cloned()
                .collect();
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

/// Whether `object` (of a namespaced kind or not, per discovery) is within `mode`.
pub fn check_mode(
    mode: &AgentMode,
    object: &ObjectRef,
    namespaced_kind: bool,
) -> Result<(), String> {
    let AgentMode::Namespaced { namespaces } = mode else {
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
            namespaces.join(", ")
        )),
        None => Err("the object has no namespace".into()),
    }
}

/// `resource_inclusions` / `resource_exclusions`: with no inclusions every kind is included; an
/// exclusion always wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindFilter {
    pub inclusions: Vec<ResourceFilter>,
    pub exclusions: Vec<ResourceFilter>,
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

    fn namespaced(namespaces: &[&str]) -> AgentMode {
        AgentMode::Namespaced {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn rule(groups: &[&str], kinds: &[&str]) -> ResourceFilter {
        ResourceFilter {
            api_groups: groups.iter().map(|s| s.to_string()).collect(),
            kinds: kinds.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn namespaced_mode_refuses_cluster_scoped_and_foreign_namespaces() {
        let mode = namespaced(&["team-a"]);
        assert!(check_mode(&mode, &obj("", "ConfigMap", Some("team-a")), true).is_ok());
        let foreign = check_mode(&mode, &obj("", "ConfigMap", Some("team-b")), true).unwrap_err();
        assert!(foreign.contains("team-b is not one of"), "{foreign}");
        let cluster = check_mode(
            &mode,
            &obj("rbac.authorization.k8s.io", "ClusterRole", None),
            false,
        )
        .unwrap_err();
        assert!(
            cluster.contains("ClusterRole is cluster-scoped"),
            "{cluster}"
        );
        assert!(check_mode(&AgentMode::ClusterWide, &obj("", "Namespace", None), false).is_ok());
    }

    #[test]
    fn configuration_narrows_but_never_widens_the_agent_mode() {
        let flags = namespaced(&["a", "b"]);
        assert_eq!(
            narrow_mode(&flags, Some(&namespaced(&["a"]))).unwrap(),
            namespaced(&["a"])
        );
        assert_eq!(narrow_mode(&flags, None).unwrap(), flags);
        assert!(narrow_mode(&flags, Some(&AgentMode::ClusterWide)).is_err());
        let err = narrow_mode(&flags, Some(&namespaced(&["a", "c"]))).unwrap_err();
        assert!(err.ends_with(": c"), "{err}");
        assert_eq!(
            narrow_mode(&AgentMode::ClusterWide, Some(&namespaced(&["a"]))).unwrap(),
            namespaced(&["a"])
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
