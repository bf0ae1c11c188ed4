//! What discovery looks for: one table. A rule names a feature, its category and the evidence that
//! gives it away; any one piece of evidence is enough. Adding a rule is adding an entry here.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// What gives a feature away.
#[derive(Debug, Clone, Copy)]
pub enum Evidence {
    /// An installed CRD whose API group is this one or a subdomain of it (`toolkit.fluxcd.io` matches
    /// `source.toolkit.fluxcd.io`).
    CrdGroup(&'static str),
    /// A Service carrying this label with this value.
    ServiceLabel(&'static str, &'static str),
    /// A Service with this name, in any namespace.
    ServiceName(&'static str),
    /// An IngressClass whose `spec.controller` is this.
    IngressController(&'static str),
}

/// How to reach a feature found by a Service.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint {
    /// The Service's HTTP API: the port with one of these names, else this number, else the first.
    Http {
        port_names: &'static [&'static str],
        port: i32,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub category: &'static str,
    pub evidence: &'static [Evidence],
    /// For features found by a Service: the URL to reach it at.
    pub endpoint: Option<Endpoint>,
}

const PROMETHEUS_PORT: Endpoint = Endpoint::Http {
    port_names: &["web", "http-web", "http"],
    port: 9090,
};

/// The one table.
pub const RULES: &[Rule] = &[
    Rule {
        name: "prometheus",
        category: "monitoring",
        evidence: &[
            Evidence::ServiceLabel("app.kubernetes.io/name", "prometheus"),
            // The Service Prometheus Operator makes for each `Prometheus` object.
            Evidence::ServiceLabel("operated-prometheus", "true"),
            Evidence::ServiceName("prometheus"),
            Evidence::ServiceName("prometheus-server"),
            Evidence::ServiceName("prometheus-k8s"),
            Evidence::ServiceName("prometheus-operated"),
        ],
        endpoint: Some(PROMETHEUS_PORT),
    },
    Rule {
        name: "prometheus-operator",
        category: "monitoring",
        evidence: &[Evidence::CrdGroup("monitoring.coreos.com")],
        endpoint: None,
    },
    Rule {
        name: "flux",
        category: "gitops",
        evidence: &[Evidence::CrdGroup("toolkit.fluxcd.io")],
        endpoint: None,
    },
    Rule {
        name: "flux-receivers",
        category: "gitops",
        evidence: &[Evidence::CrdGroup("notification.toolkit.fluxcd.io")],
        endpoint: None,
    },
    Rule {
        name: "argo-cd",
        category: "gitops",
        evidence: &[Evidence::CrdGroup("argoproj.io")],
        endpoint: None,
    },
    Rule {
        name: "cert-manager",
        category: "certificates",
        evidence: &[Evidence::CrdGroup("cert-manager.io")],
        endpoint: None,
    },
    Rule {
        name: "ingress-nginx",
        category: "ingress",
        evidence: &[
            Evidence::IngressController("k8s.io/ingress-nginx"),
            Evidence::ServiceLabel("app.kubernetes.io/name", "ingress-nginx"),
        ],
        endpoint: None,
    },
    Rule {
        name: "traefik",
        category: "ingress",
        evidence: &[
            Evidence::IngressController("traefik.io/ingress-controller"),
            Evidence::CrdGroup("traefik.io"),
        ],
        endpoint: None,
    },
    Rule {
        name: "gateway-api",
        category: "ingress",
        evidence: &[Evidence::CrdGroup("gateway.networking.k8s.io")],
        endpoint: None,
    },
    Rule {
        name: "istio",
        category: "mesh",
        evidence: &[Evidence::CrdGroup("istio.io")],
        endpoint: None,
    },
    Rule {
        name: "linkerd",
        category: "mesh",
        evidence: &[Evidence::CrdGroup("linkerd.io")],
        endpoint: None,
    },
    Rule {
        name: "cilium",
        category: "mesh",
        evidence: &[Evidence::CrdGroup("cilium.io")],
        endpoint: None,
    },
    Rule {
        name: "metrics-server",
        category: "metrics",
        evidence: &[
            Evidence::ServiceName("metrics-server"),
            Evidence::ServiceLabel("k8s-app", "metrics-server"),
            Evidence::ServiceLabel("app.kubernetes.io/name", "metrics-server"),
        ],
        endpoint: None,
    },
];

/// One feature found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: &'static str,
    pub category: &'static str,
    /// Sorted, so equal clusters give equal reports.
    pub evidence: BTreeSet<String>,
    /// The first URL in the order of the evidence (Services sorted by namespace and name).
    pub url: Option<String>,
}

/// What the cluster runs, by `rules`, from what the watches hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    pub features: Vec<Found>,
    pub crd_groups: Vec<String>,
}

pub fn evaluate(
    rules: &[Rule],
    services: &[&Service],
    crds: &[&CustomResourceDefinition],
    ingress_classes: &[&IngressClass],
) -> Findings {
    let crd_groups: BTreeSet<String> = crds.iter().map(|c| c.spec.group.clone()).collect();
    let mut services: Vec<&Service> = services.to_vec();
    services.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    let mut found: BTreeMap<&'static str, Found> = BTreeMap::new();
    for rule in rules {
        let mut evidence = BTreeSet::new();
        let mut url = None;
        for piece in rule.evidence {
            match *piece {
                Evidence::CrdGroup(group) => {
                    for g in &crd_groups {
                        if g == group || g.ends_with(&format!(".{group}")) {
                            evidence.insert(format!("crd group {g}"));
                        }
                    }
                }
                Evidence::ServiceLabel(..) | Evidence::ServiceName(_) => {
                    for service in services.iter().filter(|s| service_matches(s, piece)) {
                        evidence.insert(format!("service {}", service_name(service)));
                        if url.is_none()
                            && let Some(endpoint) = rule.endpoint
                        {
                            url = service_url(service, endpoint);
                        }
                    }
                }
                Evidence::IngressController(controller) => {
                    for class in ingress_classes {
                        if class.spec.as_ref().and_then(|s| s.controller.as_deref())
                            == Some(controller)
                        {
                            evidence.insert(format!(
                                "ingressclass {}",
                                class.metadata.name.as_deref().unwrap_or_default()
                            ));
                        }
                    }
                }
            }
        }
        if !evidence.is_empty() {
            found.insert(
                rule.name,
                Found {
                    name: rule.name,
                    category: rule.category,
                    evidence,
                    url,
                },
            );
        }
    }
    Findings {
        features: found.into_values().collect(),
        crd_groups: crd_groups.into_iter().collect(),
    }
}

fn service_matches(service: &Service, evidence: &Evidence) -> bool {
    match *evidence {
        Evidence::ServiceLabel(key, value) => service
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .is_some_and(|v| v == value),
        Evidence::ServiceName(name) => service.metadata.name.as_deref() == Some(name),
        _ => false,
    }
}

fn service_name(service: &Service) -> String {
    format!(
        "{}/{}",
        service.metadata.namespace.as_deref().unwrap_or_default(),
        service.metadata.name.as_deref().unwrap_or_default()
    )
}

/// `http://NAME.NAMESPACE.svc:PORT`, or for an ExternalName Service `http://EXTERNAL-NAME:PORT` (a
/// Prometheus outside the cluster, or on the agent's own host).
fn service_url(service: &Service, endpoint: Endpoint) -> Option<String> {
    let Endpoint::Http { port_names, port } = endpoint;
    let spec = service.spec.as_ref()?;
    let ports = spec.ports.as_deref().unwrap_or_default();
    let chosen = ports
        .iter()
        .find(|p| p.name.as_deref().is_some_and(|n| port_names.contains(&n)))
        .or_else(|| ports.iter().find(|p| p.port == port))
        .or_else(|| ports.first())?;
    let host = match spec.type_.as_deref() {
        Some("ExternalName") => spec.external_name.clone()?,
        _ => format!(
            "{}.{}.svc",
            service.metadata.name.as_deref()?,
            service.metadata.namespace.as_deref()?
        ),
    };
    Some(format!("http://{host}:{}", chosen.port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionSpec;
    use kube::api::ObjectMeta;

    fn service(ns: &str, name: &str, labels: &[(&str, &str)], ports: &[(&str, i32)]) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p)| ServicePort {
                            name: Some((*n).into()),
                            port: *p,
                            ..ServicePort::default()
                        })
                        .collect(),
                ),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    fn crd(group: &str) -> CustomResourceDefinition {
        CustomResourceDefinition {
            metadata: ObjectMeta::default(),
            spec: CustomResourceDefinitionSpec {
                group: group.into(),
                ..CustomResourceDefinitionSpec::default()
            },
            status: None,
        }
    }

    #[test]
    fn prometheus_is_found_by_labels_and_reached_on_its_web_port() {
        let prom = service(
            "monitoring",
            "kps-prometheus",
            &[("app.kubernetes.io/name", "prometheus")],
            &[("reloader", 8080), ("http-web", 9090)],
        );
        let other = service("apps", "web", &[("app", "web")], &[("http", 80)]);
        let flux = crd("source.toolkit.fluxcd.io");
        let cm = crd("cert-manager.io");
        let findings = evaluate(RULES, &[&other, &prom], &[&flux, &cm], &[]);
        let names: Vec<_> = findings.features.iter().map(|f| f.name).collect();
        assert_eq!(names, ["cert-manager", "flux", "prometheus"]);
        let prometheus = &findings.features[2];
        assert_eq!(
            prometheus.url.as_deref(),
            Some("http://kps-prometheus.monitoring.svc:9090")
        );
        assert_eq!(
            findings.crd_groups,
            ["cert-manager.io", "source.toolkit.fluxcd.io"]
        );
    }

    #[test]
    fn an_external_name_service_points_outside_the_cluster() {
        let mut prom = service("monitoring", "prometheus", &[], &[("web", 19090)]);
        let spec = prom.spec.as_mut().unwrap();
        spec.type_ = Some("ExternalName".into());
        spec.external_name = Some("localhost".into());
        let findings = evaluate(RULES, &[&prom], &[], &[]);
        assert_eq!(
            findings.features[0].url.as_deref(),
            Some("http://localhost:19090")
        );
    }
}
