//! What a renderer returns, checked the way the Kubernetes API server would check it, before any caller
//! (the agent's sync, `tether render`) sees it: one place, so that an object that could never be
//! applied — or that would be applied as something other than it reads — fails the render with the
//! plugin and the object named, instead of half a sync later or not at all.
//!
//! Checked here: duplicate JSON keys (the API server's decoder keeps the last, so `"kind": "ConfigMap",
//! …, "kind": "Secret"` reads as one kind and applies as another), `kind: List`, object names per kind
//! (DNS subdomain, DNS label, DNS-1035 label, or path segment), namespaces (a DNS label; none on the
//! built-in cluster-scoped kinds), and two objects with one identity (group, kind, namespace, name).
//!
//! Not here: anything that needs the cluster (the scope of custom resources, schemas); the apply does that.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// Why one object was refused. The caller adds the plugin and the object's index and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectProblem(pub(crate) String);

/// Refuse a manifest text in which an object has the same key twice, naming the key and where it is.
pub(crate) fn check_duplicate_keys(manifest: &str) -> Result<(), ObjectProblem> {
    let mut deserializer = serde_json::Deserializer::from_str(manifest);
    UniqueKeys {
        path: String::new(),
    }
    .deserialize(&mut deserializer)
    .map_err(|e| ObjectProblem(e.to_string()))
}

/// The identity of an object, as `kind/namespace/name` for messages and `(group, kind, ns, name)` for
/// duplicates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Identity {
    group: String,
    kind: String,
    namespace: Option<String>,
    name: String,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{}/{namespace}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// Checks every object of one render; `default_namespace` is where an object without a namespace goes,
/// which matters for finding duplicates.
#[derive(Debug)]
pub(crate) struct ObjectSet<'a> {
    default_namespace: &'a str,
    seen: HashMap<Identity, usize>,
}

impl<'a> ObjectSet<'a> {
    pub(crate) fn new(default_namespace: &'a str) -> Self {
        ObjectSet {
            default_namespace,
            seen: HashMap::new(),
        }
    }

    /// Check object `index` (already known to be an object with a string `apiVersion`, `kind` and name).
    pub(crate) fn check(&mut self, index: usize, manifest: &Value) -> Result<(), ObjectProblem> {
        let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
        let kind = manifest["kind"].as_str().unwrap_or_default();
        let metadata = &manifest["metadata"];
        let (name, generated) = match metadata["name"].as_str() {
            Some(name) => (name, false),
            None => (metadata["generateName"].as_str().unwrap_or_default(), true),
        };
        let problem = |reason: String| {
            let shown = format!("{kind}/{}", crate::text::guest_text(name, 300));
            ObjectProblem(format!("{shown}: {reason}"))
        };
        if kind == "List" || (kind.ends_with("List") && manifest.get("items").is_some()) {
            return Err(problem(
                "a List is not an object the API server stores; return its items as objects".into(),
            ));
        }
        let group = api_version
            .rsplit_once('/')
            .map_or("", |(group, _version)| group);
        let rule = name_rule(group, kind);
        // generateName is a prefix: the server appends five characters.
        let checked = if generated {
            name.trim_end_matches('-')
        } else {
            name
        };
        if let Err(reason) = rule.check(checked) {
            return Err(problem(format!(
                "`metadata.{}` {reason}",
                if generated { "generateName" } else { "name" }
            )));
        }
        let namespace = match &metadata["namespace"] {
            Value::Null => None,
            Value::String(namespace) => Some(namespace.as_str()),
            _ => return Err(problem("`metadata.namespace` is not a string".into())),
        };
        let cluster_scoped = is_cluster_scoped(group, kind);
        if let Some(namespace) = namespace {
            if cluster_scoped {
                return Err(problem(format!(
                    "a {kind} is cluster-scoped and cannot have `metadata.namespace` (`{}`)",
                    crate::text::guest_text(namespace, 100)
                )));
            }
            NameRule::DnsLabel
                .check(namespace)
                .map_err(|reason| problem(format!("`metadata.namespace` {reason}")))?;
        }
        if generated {
            // Each apply makes a new object: no identity to collide with.
            return Ok(());
        }
        let identity = Identity {
            group: group.to_owned(),
            kind: kind.to_owned(),
            namespace: (!cluster_scoped)
                .then(|| namespace.unwrap_or(self.default_namespace).to_owned()),
            name: name.to_owned(),
        };
        if let Some(first) = self.seen.get(&identity) {
            return Err(problem(format!(
                "object #{first} is {identity} too; one object per identity"
            )));
        }
        self.seen.insert(identity, index);
        Ok(())
    }
}

/// How the API server validates the name of a kind (k8s.io/apimachinery `validation` and each kind's
/// `Validate…Name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameRule {
    /// RFC 1123 subdomain: most kinds, and custom resources.
    DnsSubdomain,
    /// RFC 1123 label: Namespace (and every namespace field).
    DnsLabel,
    /// RFC 1035 label (starts with a letter): Service.
    Dns1035Label,
    /// Any text but `.`, `..` or one with `/` or `%`: the RBAC kinds.
    PathSegment,
}

fn name_rule(group: &str, kind: &str) -> NameRule {
    match (group, kind) {
        ("", "Namespace") => NameRule::DnsLabel,
        ("", "Service") => NameRule::Dns1035Label,
        (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        ) => NameRule::PathSegment,
        _ => NameRule::DnsSubdomain,
    }
}

impl NameRule {
    fn check(self, name: &str) -> Result<(), String> {
        let shown = || crate::text::guest_text(name, 100);
        if name.is_empty() {
            return Err("is empty".into());
        }
        let max = match self {
            NameRule::DnsSubdomain | NameRule::PathSegment => 253,
            NameRule::DnsLabel | NameRule::Dns1035Label => 63,
        };
        if name.len() > max {
            return Err(format!(
                "is {} characters long; the most is {max}",
                name.len()
            ));
        }
        match self {
            NameRule::PathSegment => {
                if name == "." || name == ".." || name.contains(['/', '%']) {
                    return Err(format!(
                        "`{}` cannot be `.` or `..` or contain `/` or `%`",
                        shown()
                    ));
                }
                if name.chars().any(char::is_control) {
                    return Err(format!("`{}` contains control characters", shown()));
                }
            }
            NameRule::DnsSubdomain => {
                if !name.split('.').all(is_dns_label) {
                    return Err(format!(
                        "`{}` is not a DNS subdomain name (lower-case letters, digits, `-` and `.`, \
                         starting and ending with a letter or digit)",
                        shown()
                    ));
                }
            }
            NameRule::DnsLabel => {
                if !is_dns_label(name) {
                    return Err(format!(
                        "`{}` is not a DNS label (lower-case letters, digits and `-`, starting and \
                         ending with a letter or digit, at most 63)",
                        shown()
                    ));
                }
            }
            NameRule::Dns1035Label => {
                if !is_dns_label(name) || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
                    return Err(format!(
                        "`{}` is not a DNS-1035 label (lower-case letters, digits and `-`, starting \
                         with a letter and ending with a letter or digit, at most 63)",
                        shown()
                    ));
                }
            }
        }
        Ok(())
    }
}

fn is_dns_label(label: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !label.is_empty()
        && label.len() <= 63
        && label.chars().all(|c| alnum(c) || c == '-')
        && label.starts_with(alnum)
        && label.ends_with(alnum)
}

/// The built-in kinds that live outside namespaces, by API group. A custom resource's scope is in its
/// CRD, on the cluster; the apply finds it.
fn is_cluster_scoped(group: &str, kind: &str) -> bool {
    const CLUSTER_SCOPED: &[(&str, &str)] = &[
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("networking.k8s.io", "IngressClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
        ),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
        ),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding",
        ),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ];
    CLUSTER_SCOPED.iter().any(|&(g, k)| g == group && k == kind)
}

/// Walks a JSON document refusing a repeated key in any object; `path` is where it is, for the message.
struct UniqueKeys {
    path: String,
}

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !keys.insert(key) {
                return Err(de::Error::custom(format!(
                    "key `{}` appears twice; the API server would keep only the last",
                    crate::text::guest_text(&path, 300)
                )));
            }
            map.next_value_seed(UniqueKeys { path })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(UniqueKeys {
                path: format!("{}[{index}]", self.path),
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_all(objects: &[Value]) -> Result<(), String> {
        let mut set = ObjectSet::new("default");
        for (index, object) in objects.iter().enumerate() {
            set.check(index, object).map_err(|p| p.0)?;
        }
        Ok(())
    }

    fn config_map(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    }

    #[test]
    fn names_are_checked_per_kind() {
        check_all(&[config_map("a.b-c"), config_map("x")]).unwrap();
        for bad in [
            "a/b",
            "..",
            "Upper",
            "new\nline",
            &"a".repeat(254),
            "-a",
            "",
        ] {
            assert!(check_all(&[config_map(bad)]).is_err(), "{bad:?}");
        }
        let service =
            |name: &str| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}});
        assert!(check_all(&[service("1abc")]).is_err());
        assert!(check_all(&[service("a.b")]).is_err());
        check_all(&[service("abc-1")]).unwrap();
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:Aggregate"}});
        check_all(&[role]).unwrap();
    }

    #[test]
    fn cluster_scoped_kinds_have_no_namespace_and_namespaces_are_labels() {
        let error = check_all(&[json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team", "namespace": "other"}})])
        .unwrap_err();
        assert!(error.contains("cluster-scoped"), "{error}");
        let error = check_all(&[json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "a.b"}})])
        .unwrap_err();
        assert!(error.contains("metadata.namespace"), "{error}");
    }

    #[test]
    fn one_identity_once_counting_the_default_namespace() {
        let explicit = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "default"}});
        let error = check_all(&[config_map("a"), explicit]).unwrap_err();
        assert!(
            error.contains("object #0 is ConfigMap/default/a too"),
            "{error}"
        );
        // Same name, another kind or group: different objects.
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}});
        check_all(&[config_map("a"), secret]).unwrap();
    }

    #[test]
    fn a_list_is_refused() {
        let list =
            json!({"apiVersion": "v1", "kind": "List", "metadata": {"name": "x"}, "items": []});
        assert!(check_all(&[list]).unwrap_err().contains("List"));
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth() {
        let error = check_duplicate_keys(
            r#"{"kind":"ConfigMap","apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}"#,
        )
        .unwrap_err();
        assert!(error.0.contains("key `kind` appears twice"), "{error:?}");
        let error =
            check_duplicate_keys(r#"{"a":[{"b":1},{"b":1,"c":{"d":1,"d":2}}]}"#).unwrap_err();
        assert!(error.0.contains("`a[1].c.d`"), "{error:?}");
        check_duplicate_keys(r#"{"a":{"b":1},"c":{"b":1}}"#).unwrap();
    }
}
