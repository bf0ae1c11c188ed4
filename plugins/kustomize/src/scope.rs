//! Which built-in kinds are cluster-scoped, as kustomize's embedded OpenAPI schema says. Anything not
//! listed (custom resources included) is treated as namespaced, as kustomize does without `openapi`.

/// `(group, kind)` of the cluster-scoped kinds of the Kubernetes API. A `match` rather than a table:
/// this is asked for every object in several loops.
pub fn is_cluster_scoped(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "ComponentStatus")
            | ("", "Namespace")
            | ("", "Node")
            | ("", "PersistentVolume")
            | (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration"
            )
            | (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration"
            )
            | ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy")
            | (
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicyBinding"
            )
            | ("admissionregistration.k8s.io", "MutatingAdmissionPolicy")
            | (
                "admissionregistration.k8s.io",
                "MutatingAdmissionPolicyBinding"
            )
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("apiregistration.k8s.io", "APIService")
            | ("authentication.k8s.io", "SelfSubjectReview")
            | ("authentication.k8s.io", "TokenReview")
            | ("authorization.k8s.io", "SelfSubjectAccessReview")
            | ("authorization.k8s.io", "SelfSubjectRulesReview")
            | ("authorization.k8s.io", "SubjectAccessReview")
            | ("certificates.k8s.io", "CertificateSigningRequest")
            | ("certificates.k8s.io", "ClusterTrustBundle")
            | ("flowcontrol.apiserver.k8s.io", "FlowSchema")
            | ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration")
            | ("internal.apiserver.k8s.io", "StorageVersion")
            | ("networking.k8s.io", "IngressClass")
            | ("networking.k8s.io", "IPAddress")
            | ("networking.k8s.io", "ServiceCIDR")
            | ("node.k8s.io", "RuntimeClass")
            | ("policy", "PodSecurityPolicy")
            | ("rbac.authorization.k8s.io", "ClusterRole")
            | ("rbac.authorization.k8s.io", "ClusterRoleBinding")
            | ("resource.k8s.io", "DeviceClass")
            | ("resource.k8s.io", "ResourceSlice")
            | ("scheduling.k8s.io", "PriorityClass")
            | ("storage.k8s.io", "CSIDriver")
            | ("storage.k8s.io", "CSINode")
            | ("storage.k8s.io", "StorageClass")
            | ("storage.k8s.io", "VolumeAttachment")
            | ("storage.k8s.io", "VolumeAttributesClass")
            | ("storagemigration.k8s.io", "StorageVersionMigration")
    )
}

#[cfg(test)]
mod tests {
    use super::is_cluster_scoped;

    #[test]
    fn cluster_scoped_kinds_by_group() {
        assert!(is_cluster_scoped(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration"
        ));
        assert!(is_cluster_scoped(
            "rbac.authorization.k8s.io",
            "ClusterRole"
        ));
        assert!(is_cluster_scoped("", "Namespace"));
        assert!(!is_cluster_scoped("rbac.authorization.k8s.io", "Role"));
        // A custom kind of the same name in another group is namespaced, as in kustomize.
        assert!(!is_cluster_scoped("example.com", "Namespace"));
    }
}
