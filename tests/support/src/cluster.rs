//! The local Kubernetes control plane (tests/kube), started once and shared by every test.
//!
//! `scripts/test` starts one control plane for the whole run and names its state directory in
//! `TETHER_TEST_CLUSTER`; a test binary run on its own (`cargo test -p …`) starts one for itself,
//! building it first if needed. Tests isolate themselves by namespace, never by cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::Deserialize;

use crate::process::{Guarded, wait_for_line};

/// Names the state directory of a control plane that is already running (set by scripts/test).
pub const CLUSTER_ENV: &str = "TETHER_TEST_CLUSTER";
/// Label on every namespace a test creates, so a person can find (and remove) them.
pub const TEST_NAMESPACE_LABEL: &str = "tether.test/namespace";

/// A cold start builds the control plane from source; a warm start takes seconds.
const START_TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// What `localkube up` writes to `<dir>/cluster.json` once the control plane is ready.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterInfo {
    /// The apiserver's URL (https on loopback).
    pub server: String,
    /// An admin kubeconfig (group system:masters).
    pub kubeconfig: PathBuf,
    /// The CA that signed the apiserver's certificate.
    pub ca_cert: PathBuf,
    /// The Kubernetes version, as /version reports it.
    pub version: String,
    /// Where the components write their logs.
    pub logs: PathBuf,
    /// The simulated nodes.
    pub nodes: Vec<String>,
}

/// The shared control plane.
#[derive(Debug)]
pub struct Cluster {
    info: ClusterInfo,
    /// Present when this process started the control plane: it stops when this process ends
    /// and takes its state directory with it (`--ephemeral`).
    _owned: Option<Guarded>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The control plane of this test run, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        Cluster::attach_or_start().unwrap_or_else(|e| panic!("local control plane: {e:#}"))
    })
}

impl Cluster {
    fn attach_or_start() -> Result<Self> {
        if let Some(dir) = std::env::var_os(CLUSTER_ENV) {
            let info = read_info(Path::new(&dir))
                .with_context(|| format!("{CLUSTER_ENV}={}", Path::new(&dir).display()))?;
            return Ok(Self { info, _owned: None });
        }
        let localkube = build_localkube()?;
        let dir = tempfile::Builder::new()
            .prefix("tether-localkube-")
            .tempdir()?
            .keep();
        let mut cmd = Command::new(&localkube);
        cmd.args(["up", "--ephemeral", "--dir"]).arg(&dir);
        let (mut process, output) = Guarded::spawn("localkube", &mut cmd)?;
        wait_for_line(&mut process, &output, START_TIMEOUT, |l| {
            l.starts_with("localkube ready:")
        })?;
        let info = read_info(&dir)?;
        Ok(Self {
            info,
            _owned: Some(process),
        })
    }

    pub fn info(&self) -> &ClusterInfo {
        &self.info
    }

    /// Path of the admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.info.kubeconfig
    }

    /// A client with cluster-admin rights. Make one per test: a client belongs to the Tokio
    /// runtime it was first used on, and every `#[tokio::test]` has its own.
    pub async fn admin(&self) -> Result<Client> {
        client_from_kubeconfig(&self.info.kubeconfig).await
    }

    /// A fresh namespace for one test.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        let name = unique_name(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_owned(), "true".to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(self.admin().await?)
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("create namespace {name}"))?;
        Ok(TestNamespace { name })
    }

    /// Creates the ServiceAccount `namespace/name`, grants it `grants` through RBAC and returns
    /// credentials from the TokenRequest API, as a pod of that ServiceAccount would have.
    pub async fn service_account(
        &self,
        namespace: &str,
        name: &str,
        grants: &[Grant],
    ) -> Result<ServiceAccountCredentials> {
        let admin = self.admin().await?;
        let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), namespace);
        let account = ServiceAccount {
            metadata: meta(name),
            ..Default::default()
        };
        accounts
            .create(&PostParams::default(), &account)
            .await
            .with_context(|| format!("create ServiceAccount {namespace}/{name}"))?;
        let subject = Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Default::default()
        };
        for (i, grant) in grants.iter().enumerate() {
            grant.apply(&admin, namespace, name, i, &subject).await?;
        }
        self.token_for(namespace, name).await
    }

    /// Credentials of an existing ServiceAccount from the TokenRequest API, as a pod of it gets.
    pub async fn token_for(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<ServiceAccountCredentials> {
        let accounts = Api::<ServiceAccount>::namespaced(self.admin().await?, namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let token = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("TokenRequest for {namespace}/{name}"))?
            .status
            .context("TokenRequest answered without a status")?
            .token
            .context("TokenRequest answered without a token")?;
        ServiceAccountCredentials::write(&self.info, namespace, name, token)
    }
}

/// RBAC rules granted to a ServiceAccount: in one namespace (Role) or cluster-wide (ClusterRole).
#[derive(Debug, Clone)]
pub struct Grant {
    /// `None` for a ClusterRole and ClusterRoleBinding.
    pub namespace: Option<String>,
    pub rules: Vec<PolicyRule>,
}

impl Grant {
    pub fn in_namespace(namespace: &str, rules: Vec<PolicyRule>) -> Self {
        Self {
            namespace: Some(namespace.to_owned()),
            rules,
        }
    }

    pub fn cluster_wide(rules: Vec<PolicyRule>) -> Self {
        Self {
            namespace: None,
            rules,
        }
    }

    async fn apply(
        &self,
        admin: &Client,
        sa_namespace: &str,
        sa_name: &str,
        index: usize,
        subject: &Subject,
    ) -> Result<()> {
        let pp = PostParams::default();
        match &self.namespace {
            Some(ns) => {
                let role_name = format!("{sa_name}-{index}");
                let role = Role {
                    metadata: meta(&role_name),
                    rules: Some(self.rules.clone()),
                };
                Api::<Role>::namespaced(admin.clone(), ns)
                    .create(&pp, &role)
                    .await
                    .with_context(|| format!("create Role {ns}/{role_name}"))?;
                let binding = RoleBinding {
                    metadata: meta(&role_name),
                    role_ref: role_ref("Role", &role_name),
                    subjects: Some(vec![subject.clone()]),
                };
                Api::<RoleBinding>::namespaced(admin.clone(), ns)
                    .create(&pp, &binding)
                    .await
                    .with_context(|| format!("create RoleBinding {ns}/{role_name}"))?;
            }
            None => {
                let role_name = format!("{sa_namespace}-{sa_name}-{index}");
                let role = ClusterRole {
                    metadata: meta(&role_name),
                    rules: Some(self.rules.clone()),
                    ..Default::default()
                };
                Api::<ClusterRole>::all(admin.clone())
                    .create(&pp, &role)
                    .await
                    .with_context(|| format!("create ClusterRole {role_name}"))?;
                let binding = ClusterRoleBinding {
                    metadata: meta(&role_name),
                    role_ref: role_ref("ClusterRole", &role_name),
                    subjects: Some(vec![subject.clone()]),
                };
                Api::<ClusterRoleBinding>::all(admin.clone())
                    .create(&pp, &binding)
                    .await
                    .with_context(|| format!("create ClusterRoleBinding {role_name}"))?;
            }
        }
        Ok(())
    }
}

/// A ServiceAccount's token and a kubeconfig that uses it.
#[derive(Debug)]
pub struct ServiceAccountCredentials {
    pub token: String,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl ServiceAccountCredentials {
    fn write(info: &ClusterInfo, namespace: &str, name: &str, token: String) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("tether-sa-").tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        let user = format!("system:serviceaccount:{namespace}:{name}");
        // JSON is YAML: every kubeconfig reader accepts it.
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "localkube", "cluster": {
                "server": info.server,
                "certificate-authority": info.ca_cert,
            }}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "localkube", "context": {
                "cluster": "localkube", "user": user, "namespace": namespace,
            }}],
            "current-context": "localkube",
        });
        std::fs::write(&kubeconfig, serde_json::to_vec_pretty(&config)?)?;
        Ok(Self {
            token,
            kubeconfig,
            _dir: dir,
        })
    }

    /// A client that authenticates as the ServiceAccount.
    pub async fn client(&self) -> Result<Client> {
        client_from_kubeconfig(&self.kubeconfig).await
    }
}

/// A namespace created for one test. Namespaces are not deleted afterwards: the control plane of a
/// test run is thrown away whole, and a failed test's objects stay there to look at.
#[derive(Debug, Clone)]
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A client for the cluster, user and namespace a kubeconfig file names.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("read kubeconfig {}", path.display()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("load kubeconfig {}", path.display()))?;
    Client::try_from(config).context("build Kubernetes client")
}

/// Builds localkube if its cache misses (tests/kube/build.sh) and returns its path.
pub fn build_localkube() -> Result<PathBuf> {
    let script = crate::repo_root().join("tests/kube/build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("run {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    let path = String::from_utf8(output.stdout)?;
    let path = path.lines().last().context("build.sh printed no path")?;
    Ok(PathBuf::from(path))
}

fn read_info(dir: &Path) -> Result<ClusterInfo> {
    let path = dir.join("cluster.json");
    let data = std::fs::read(&path)
        .with_context(|| format!("read {} (is the control plane running?)", path.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("parse {}", path.display()))
}

/// A DNS-1123 name unique within this test run.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{:x}{:x}{n}",
        std::process::id() % 0xfff,
        nanos % 0xffff
    )
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        ..Default::default()
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: kind.into(),
        name: name.into(),
    }
}
