//! The tunnel's real parts for end-to-end tests and benchmarks: a config repository whose agents grant
//! people access (`user_access`), tether-server with its people's listener and users store, agents
//! connected to the local control plane, and the real kubectl (from the control plane's build).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use secrecy::ExposeSecret;
use tether_agent::app::{AgentOptions, ModeFlag, RunningAgent};
use tether_server::RunningServer;
use tether_server::store::{SqliteStore, Store};
use tether_server::users::store::UserStore;
use tether_testkit::{GitServer, Repo, TestNamespace, cluster};

/// A deadline, not a synchronisation: every wait returns as soon as its condition holds.
pub const DEADLINE: Duration = Duration::from_secs(60);
const REPO: &str = "platform/config";
const ADMIN_TOKEN: &str = "e2e-admin-token";

/// A config repository, a server with its people's listener, and people in its users store.
#[derive(Debug)]
pub struct Setup {
    _git: GitServer,
    _repo: Repo,
    pub server: RunningServer,
    store: Arc<SqliteStore>,
    pub users: UserStore,
    pub data: tempfile::TempDir,
    pub ns: TestNamespace,
}

impl Setup {
    /// `agents`: (name, the `user_access` block of its config, or "" for none).
    pub async fn start(agents: &[(&str, &str)]) -> Result<Self> {
        let ns = cluster().namespace("e2e-tunnel").await?;
        let git = GitServer::start()?;
        let repo = git.create_repo(REPO)?;
        for (agent, user_access) in agents {
            repo.write(
                &format!(".tether/agents/{agent}/config.yaml"),
                format!("observability: {{logging: {{level: debug}}}}\n{user_access}"),
            )?;
        }
        repo.commit("agents")?;
        let data = tempfile::tempdir()?;
        let admin_file = data.path().join("admin-token");
        std::fs::write(&admin_file, ADMIN_TOKEN)?;
        let config = tether_config::server::parse_server_config(
            &format!(
                "data_dir: {}\nlisten: {{grpc: '127.0.0.1:0', http: '127.0.0.1:0'}}\npeople: {{listen: '127.0.0.1:0'}}\napi: {{admin_token_file: {}}}\nrepositories:\n  - name: {REPO}\n    url: {}\n",
                data.path().display(),
                admin_file.display(),
                git.http_url(REPO)
            ),
            "server.yaml",
        )?;
        let store = Arc::new(SqliteStore::open(&data.path().join("tether.db"))?);
        for (agent, _) in agents {
            store.register_agent(agent, REPO, 0)?;
        }
        let server = tether_server::start(config, store.clone() as Arc<dyn Store>).await?;
        let users = tether_server::users::open_store(data.path())?;
        Ok(Self {
            _git: git,
            _repo: repo,
            server,
            store,
            users,
            data,
            ns,
        })
    }

    pub fn people(&self) -> std::net::SocketAddr {
        self.server
            .people_addr
            .expect("the people's listener is configured")
    }

    /// Starts agent `name` as the cluster's admin (which may impersonate), with a fresh token.
    pub async fn agent(&self, name: &str) -> Result<RunningAgent> {
        let token = tether_server::token::generate();
        self.store.create_token(name, &token.hash, "e2e", 3, 0)?;
        let token_file = self.data.path().join(format!("{name}-token"));
        std::fs::write(&token_file, token.secret.expose_secret())?;
        let agent = tether_agent::app::start(AgentOptions {
            server: format!("http://{}", self.server.grpc_addr),
            token_file: Some(token_file),
            token: None,
            server_ca_file: None,
            kubeconfig: Some(cluster().kubeconfig().to_owned()),
            namespace: self.ns.name().to_owned(),
            pod_name: format!("{name}-0"),
            mode: ModeFlag::ClusterWide,
            namespaces: vec![],
            plugin_dir: None,
            cache_dir: None,
            observability_addr: "127.0.0.1:0".parse()?,
            leader_election: false,
            insecure_plaintext: false,
            work_dir: None,
        })
        .await?;
        // The agent has its configuration (with its user_access) once it is ready.
        let mut config = agent.config.clone();
        tokio::time::timeout(DEADLINE, config.wait_for(Option::is_some))
            .await
            .context("the agent's configuration did not arrive")??;
        Ok(agent)
    }

    /// A person with a personal token valid for an hour (`agent`: the only agent it reaches).
    pub fn person(
        &self,
        name: &str,
        groups: &[&str],
        agent: Option<&str>,
    ) -> Result<(i64, String)> {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        if self.users.user(name)?.is_none() {
            self.users.create_user(name, &groups, 0)?;
        }
        let token = tether_server::users::token::generate();
        let now = tether_server::store::now();
        let record = self
            .users
            .create_token(name, &token.hash, agent, "e2e", now + 3600, now)?;
        Ok((record.id, token.secret.expose_secret().to_owned()))
    }

    /// A kubeconfig for `agent` through the proxy, as `tether kubeconfig` writes it.
    pub fn kubeconfig(&self, agent: &str, token: &str) -> Result<PathBuf> {
        let path = self
            .data
            .path()
            .join(format!("kubeconfig-{agent}-{}", &token[5..13]));
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "t", "cluster": {"server": format!("http://{}/k8s-proxy/agents/{agent}", self.people())}}],
            "users": [{"name": "t", "user": {"token": token}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": self.ns.name()}}],
            "current-context": "t",
        });
        std::fs::write(&path, serde_json::to_vec(&config)?)?;
        Ok(path)
    }
}

pub fn localkube() -> Result<PathBuf> {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(path) = PATH.get() {
        return Ok(path.clone());
    }
    let path = tether_testkit::cluster::build_localkube()?;
    Ok(PATH.get_or_init(|| path).clone())
}

/// `kubectl ARGS` with `kubeconfig`; its output, and whether it succeeded.
pub async fn kubectl(
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> Result<(bool, String, String)> {
    let output = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(localkube()?)
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("kubectl {args:?} did not finish within {DEADLINE:?}"))??;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

pub async fn kubectl_ok(kubeconfig: &std::path::Path, args: &[&str]) -> Result<String> {
    let (ok, out, err) = kubectl(kubeconfig, args).await?;
    if !ok {
        bail!("kubectl {args:?} failed: {err}");
    }
    Ok(out)
}

/// Lets `tether:user:NAME` do anything with ConfigMaps in `namespace`, and nothing else.
pub async fn grant_config_maps(namespace: &str, user: &str) -> Result<()> {
    let admin = cluster().admin().await?;
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        ..Default::default()
    };
    Api::<Role>::namespaced(admin.clone(), namespace)
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta("config-maps"),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["configmaps".into()]),
                    verbs: vec!["*".into()],
                    ..Default::default()
                }]),
            },
        )
        .await?;
    Api::<RoleBinding>::namespaced(admin, namespace)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta("config-maps"),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "Role".into(),
                    name: "config-maps".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "User".into(),
                    name: format!("tether:user:{user}"),
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    ..Default::default()
                }]),
            },
        )
        .await?;
    Ok(())
}

pub fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some([("value".to_owned(), "1".to_owned())].into()),
        ..Default::default()
    }
}
