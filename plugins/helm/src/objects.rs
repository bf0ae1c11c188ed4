//! The objects templates see besides `.Values`: `.Release`, `.Chart` (helm v4 gives templates the
//! metadata as a map keyed by Go field names) and `.Capabilities` (what `helm template` assumes when no
//! cluster is known, or the cluster the agent knows). `.Files` is in `files.rs`.

use crate::chart::{Chart, Dependency};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tether_gotemplate::{Map, MapMethods, Object, Value};

/// helm v4.2's default Kubernetes version for `helm template` (its client library's version).
pub const DEFAULT_KUBE_VERSION: &str = "v1.36.0";

/// What helm v4.2.4 lists as `.Capabilities.APIVersions` when no cluster is asked (its built-in scheme).
pub const DEFAULT_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1",
    "resource.k8s.io/v1beta2",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha2",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

/// Values as templates see them: numbers from YAML are float64, `--set` integers int64.
pub fn to_template(value: &Json) -> Value {
    match value {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        // Only `--set` makes integers here (YAML numbers are floats): Go's int64.
        Json::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => Value::Int64(i),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::str(s.as_str()),
        Json::Array(items) => Value::list(items.iter().map(to_template).collect()),
        Json::Object(map) => Value::map(
            map.iter()
                .map(|(k, v)| (k.clone(), to_template(v)))
                .collect(),
        ),
    }
}

/// `.Values` as templates see it: helm's `common.Values`, a map with methods (`.Values.AsMap` hands
/// the values to `dig`, `.Values.Table "a.b"` reads a section, `.Values.PathValue "a.b"` a leaf).
pub fn values_object(values: Value) -> Value {
    match values {
        Value::Map(map) => Value::Map(map.with_methods(Arc::new(ValuesType))),
        other => other,
    }
}

/// The methods of helm's `common.Values` (pkg/chart/common/values.go), with its error wording.
#[derive(Debug)]
struct ValuesType;

impl ValuesType {
    fn typed(map: &Map) -> Value {
        Value::Map(map.with_methods(Arc::new(ValuesType)))
    }

    /// `Table`: the section at a dotted path; every step must be a map.
    fn table(map: &Map, path: &str) -> Result<Map, String> {
        let mut table = map.without_methods();
        for key in path.split('.') {
            match table.get(key) {
                Some(Value::Map(next)) => table = next.without_methods(),
                _ => return Err(format!("{key:?} is not a table")),
            }
        }
        Ok(table)
    }

    /// `PathValue`: the leaf at a dotted path; a section is no value.
    fn path_value(map: &Map, path: &str) -> Result<Value, String> {
        if path.is_empty() {
            return Err("YAML path cannot be empty".to_owned());
        }
        let (table, key) = match path.rsplit_once('.') {
            Some((prefix, key)) => (
                Self::table(map, prefix).map_err(|_| format!("{key:?} is not a value"))?,
                key,
            ),
            None => (map.without_methods(), path),
        };
        match table.get(key) {
            Some(Value::Map(_)) | None => Err(format!("{key:?} is not a value")),
            Some(value) => Ok(value),
        }
    }
}

impl MapMethods for ValuesType {
    fn call(&self, map: &Map, method: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let no_args = |result: Value| match args {
            [] => Ok(result),
            _ => Err(format!(
                "wrong number of args for {method}: want 0 got {}",
                args.len()
            )),
        };
        let path = || match args {
            [Value::String(path)] => Ok(path.to_string()),
            [other] => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
            _ => Err(format!(
                "wrong number of args for {method}: want 1 got {}",
                args.len()
            )),
        };
        Some(match method {
            // An empty Values gives a new map (Go: `map[string]interface{}{}`), else the same one.
            "AsMap" => no_args(Value::Map(if map.is_empty() {
                Map::new()
            } else {
                map.without_methods()
            })),
            // sigs.k8s.io/yaml's Marshal, what toYaml prints before trimming the final newline.
            "YAML" => no_args(Value::str(Value::Map(map.without_methods()).to_yaml())),
            "Table" => path().and_then(|p| Self::table(map, &p).map(|t| Self::typed(&t))),
            "PathValue" => path().and_then(|p| Self::path_value(map, &p)),
            _ => return None,
        })
    }

    fn type_name(&self) -> String {
        "common.Values".into()
    }
}

fn text(s: &str) -> Value {
    Value::str(s)
}

/// `.Release` for `helm template`: a first install.
pub fn release(name: &str, namespace: &str) -> Value {
    let mut map = BTreeMap::new();
    map.insert("Name".into(), text(name));
    map.insert("Namespace".into(), text(namespace));
    map.insert("IsUpgrade".into(), Value::Bool(false));
    map.insert("IsInstall".into(), Value::Bool(true));
    map.insert("Revision".into(), Value::Int(1));
    map.insert("Service".into(), text("Helm"));
    Value::map(map)
}

/// `.Chart`: the metadata keyed by helm's Go field names, every field present (zero values included),
/// plus `IsRoot`.
pub fn chart(chart: &Chart, is_root: bool) -> Value {
    let meta = &chart.metadata;
    let string = |key: &str| match meta.get(key) {
        Some(Json::String(s)) => text(s),
        Some(Json::Null) | None => text(""),
        Some(other) => text(&other.to_string()),
    };
    let strings = |key: &str| match meta.get(key) {
        Some(Json::Array(items)) => Value::list(
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| text(&i.to_string()), text))
                .collect(),
        ),
        _ => Value::list(Vec::new()),
    };
    let mut map = BTreeMap::new();
    map.insert("Name".into(), text(&chart.name));
    map.insert("Home".into(), string("home"));
    map.insert("Sources".into(), strings("sources"));
    map.insert("Version".into(), string("version"));
    map.insert("Description".into(), string("description"));
    map.insert("Keywords".into(), strings("keywords"));
    let maintainers = match meta.get("maintainers") {
        Some(Json::Array(items)) => items
            .iter()
            .map(|m| {
                let field = |k: &str| text(m.get(k).and_then(Json::as_str).unwrap_or_default());
                let mut entry = BTreeMap::new();
                entry.insert("Name".into(), field("name"));
                entry.insert("Email".into(), field("email"));
                entry.insert("URL".into(), field("url"));
                Value::map(entry)
            })
            .collect(),
        _ => Vec::new(),
    };
    map.insert("Maintainers".into(), Value::list(maintainers));
    map.insert("Icon".into(), string("icon"));
    map.insert("APIVersion".into(), text(&chart.api_version));
    map.insert("Condition".into(), string("condition"));
    map.insert("Tags".into(), string("tags"));
    map.insert("AppVersion".into(), string("appVersion"));
    map.insert(
        "Deprecated".into(),
        Value::Bool(
            meta.get("deprecated")
                .and_then(Json::as_bool)
                .unwrap_or(false),
        ),
    );
    let annotations = match meta.get("annotations") {
        Some(Json::Object(a)) => Value::map(
            a.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| text(&v.to_string()), text),
                    )
                })
                .collect(),
        ),
        _ => Value::Nil,
    };
    map.insert("Annotations".into(), annotations);
    map.insert("KubeVersion".into(), string("kubeVersion"));
    map.insert(
        "Dependencies".into(),
        Value::list(chart.dependencies.iter().map(dependency).collect()),
    );
    map.insert("Type".into(), string("type"));
    map.insert("IsRoot".into(), Value::Bool(is_root));
    Value::map(map)
}

fn dependency(d: &Dependency) -> Value {
    let mut map = BTreeMap::new();
    map.insert("Name".into(), text(&d.name));
    map.insert("Version".into(), text(&d.version));
    map.insert("Repository".into(), text(&d.repository));
    map.insert("Condition".into(), text(&d.condition));
    map.insert(
        "Tags".into(),
        Value::list(d.tags.iter().map(|t| text(t)).collect()),
    );
    map.insert("Enabled".into(), Value::Bool(d.enabled));
    map.insert(
        "ImportValues".into(),
        Value::list(d.import_values.iter().map(to_template).collect()),
    );
    map.insert("Alias".into(), text(&d.alias));
    Value::map(map)
}

/// The cluster's version as helm writes it (`v1.36.0`), or helm template's default when unknown.
pub fn kube_version(cluster_version: &str) -> String {
    if cluster_version.is_empty() {
        DEFAULT_KUBE_VERSION.to_owned()
    } else if cluster_version.starts_with('v') {
        cluster_version.to_owned()
    } else {
        format!("v{cluster_version}")
    }
}

/// `.Capabilities`.
#[derive(Debug)]
pub struct Capabilities {
    kube_version: Value,
    api_versions: Value,
    helm_version: Value,
}

impl Capabilities {
    /// From the cluster the host knows, or helm template's defaults for what is empty.
    pub fn new(cluster_version: &str, api_versions: &[String]) -> Capabilities {
        let version = kube_version(cluster_version);
        let versions: Vec<String> = if api_versions.is_empty() {
            DEFAULT_API_VERSIONS
                .iter()
                .map(|v| (*v).to_owned())
                .collect()
        } else {
            api_versions.to_vec()
        };
        Capabilities {
            kube_version: Value::Object(Arc::new(KubeVersion::parse(&version))),
            api_versions: Value::Object(Arc::new(ApiVersions(versions))),
            helm_version: Value::Object(Arc::new(HelmVersion)),
        }
    }
}

impl Object for Capabilities {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "KubeVersion" => Some(self.kube_version.clone()),
            "APIVersions" => Some(self.api_versions.clone()),
            "HelmVersion" => Some(self.helm_version.clone()),
            _ => None,
        }
    }

    fn call(&self, _method: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn type_name(&self) -> String {
        "*common.Capabilities".into()
    }

    fn to_value(&self) -> Option<Value> {
        let encode = |v: &Value| match v {
            Value::Object(o) => o.to_value().unwrap_or(Value::Nil),
            other => other.clone(),
        };
        let mut map = BTreeMap::new();
        map.insert("KubeVersion".into(), encode(&self.kube_version));
        map.insert("APIVersions".into(), encode(&self.api_versions));
        map.insert("HelmVersion".into(), encode(&self.helm_version));
        Some(Value::map(map))
    }

    /// `toJson` writes the struct's fields in declaration order.
    fn json_fields(&self) -> Option<Vec<(String, Value)>> {
        Some(vec![
            ("KubeVersion".into(), self.kube_version.clone()),
            ("APIVersions".into(), self.api_versions.clone()),
            ("HelmVersion".into(), self.helm_version.clone()),
        ])
    }
}

/// `.Capabilities.HelmVersion`: the helm this renderer matches.
#[derive(Debug)]
struct HelmVersion;

impl Object for HelmVersion {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Version" => Some(text("v4.2")),
            "GitCommit" | "GitTreeState" => Some(text("")),
            "GoVersion" => Some(text("go1.26.8")),
            "KubeClientVersion" => Some(text("v1.36")),
            _ => None,
        }
    }

    fn call(&self, _method: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn type_name(&self) -> String {
        "version.BuildInfo".into()
    }

    /// Go marshals it with its JSON tags (empty commit fields omitted).
    fn to_value(&self) -> Option<Value> {
        let mut map = BTreeMap::new();
        map.insert("version".into(), text("v4.2"));
        map.insert("go_version".into(), text("go1.26.8"));
        map.insert("kube_client_version".into(), text("v1.36"));
        Some(Value::map(map))
    }

    fn json_fields(&self) -> Option<Vec<(String, Value)>> {
        Some(vec![
            ("version".into(), text("v4.2")),
            ("go_version".into(), text("go1.26.8")),
            ("kube_client_version".into(), text("v1.36")),
        ])
    }
}

/// `.Capabilities.KubeVersion`: `Version`/`GitVersion` (`v1.36.0`), `Major`, `Minor`.
#[derive(Debug)]
struct KubeVersion {
    version: String,
    major: String,
    minor: String,
}

impl KubeVersion {
    fn parse(version: &str) -> KubeVersion {
        let bare = version.trim_start_matches('v');
        let mut parts = bare.split(['.', '-', '+']);
        KubeVersion {
            version: version.to_owned(),
            major: parts.next().unwrap_or_default().to_owned(),
            minor: parts.next().unwrap_or_default().to_owned(),
        }
    }
}

impl Object for KubeVersion {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Version" | "GitVersion" => Some(text(&self.version)),
            "Major" => Some(text(&self.major)),
            "Minor" => Some(text(&self.minor)),
            _ => None,
        }
    }

    fn call(&self, method: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        match method {
            "String" => Some(Ok(text(&self.version))),
            _ => None,
        }
    }

    fn type_name(&self) -> String {
        "common.KubeVersion".into()
    }

    fn display(&self) -> String {
        format!("{{{0} {0} {1} {2}}}", self.version, self.major, self.minor)
    }

    fn to_value(&self) -> Option<Value> {
        let mut map = BTreeMap::new();
        map.insert("Version".into(), text(&self.version));
        map.insert("Major".into(), text(&self.major));
        map.insert("Minor".into(), text(&self.minor));
        Some(Value::map(map))
    }

    fn json_fields(&self) -> Option<Vec<(String, Value)>> {
        Some(vec![
            ("Version".into(), text(&self.version)),
            ("Major".into(), text(&self.major)),
            ("Minor".into(), text(&self.minor)),
        ])
    }
}

/// `.Capabilities.APIVersions` with its `Has` method.
#[derive(Debug)]
struct ApiVersions(Vec<String>);

impl Object for ApiVersions {
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match method {
            "Has" => Some(match args {
                [wanted] => Ok(Value::Bool(
                    wanted
                        .as_str()
                        .is_some_and(|w| self.0.iter().any(|v| v == w)),
                )),
                _ => Err(format!("Has takes one argument, got {}", args.len())),
            }),
            _ => None,
        }
    }

    fn type_name(&self) -> String {
        "common.VersionSet".into()
    }

    fn display(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }

    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i64::try_from(i).unwrap_or(i64::MAX)), text(v)))
                .collect(),
        )
    }

    fn to_value(&self) -> Option<Value> {
        Some(Value::list(self.0.iter().map(|v| text(v)).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_methods_follow_helm() {
        let values = values_object(to_template(&serde_json::json!({
            "image": {"tag": "1.25"}, "name": "web", "deep": {"nested": {"level": 3}}
        })));
        let Value::Map(map) = &values else { panic!() };
        let call = |method: &str, arg: &str| {
            ValuesType
                .call(map, method, &[text(arg)])
                .expect("a method")
        };
        assert_eq!(call("PathValue", "image.tag").unwrap().go_string(), "1.25");
        assert_eq!(call("PathValue", "name").unwrap().go_string(), "web");
        assert_eq!(
            call("PathValue", "image").unwrap_err(),
            "\"image\" is not a value"
        );
        assert_eq!(
            call("PathValue", "nope.x").unwrap_err(),
            "\"x\" is not a value"
        );
        assert_eq!(
            call("PathValue", "").unwrap_err(),
            "YAML path cannot be empty"
        );
        let table = call("Table", "deep.nested").unwrap();
        assert_eq!(table.type_name(), "common.Values");
        assert_eq!(table.go_string(), "map[level:3]");
        assert_eq!(
            call("Table", "name").unwrap_err(),
            "\"name\" is not a table"
        );
        let as_map = ValuesType.call(map, "AsMap", &[]).unwrap().unwrap();
        assert_eq!(as_map.type_name(), "map[string]interface {}");
        assert!(ValuesType.call(map, "image", &[]).is_none());
        let empty = Map::new();
        let yaml = ValuesType.call(&empty, "YAML", &[]).unwrap().unwrap();
        assert_eq!(yaml.go_string(), "{}\n");
    }

    #[test]
    fn capabilities_default_and_from_cluster() {
        let caps = Capabilities::new("", &[]);
        let Some(Value::Object(kube)) = caps.field("KubeVersion") else {
            panic!()
        };
        assert_eq!(kube.field("GitVersion").unwrap().go_string(), "v1.36.0");
        assert_eq!(kube.field("Minor").unwrap().go_string(), "36");
        let caps = Capabilities::new("1.31.2", &["v1".into()]);
        let Some(Value::Object(apis)) = caps.field("APIVersions") else {
            panic!()
        };
        assert!(apis.call("Has", &[text("v1")]).unwrap().unwrap().truthy());
        assert!(
            !apis
                .call("Has", &[text("apps/v1")])
                .unwrap()
                .unwrap()
                .truthy()
        );
    }
}
