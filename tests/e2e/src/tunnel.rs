//! The tunnel's real parts for end-to-end tests and benchmarks: a config repository whose agents grant
//! people access (`user_access`), tether-server with its people's listener (HTTPS, with a certificate
//! made for the test: kubectl sends no token over plain HTTP) and users store, agents connected to the
//! local control plane, the real `tether kubeconfig` and the real kubectl (from the control plane's
//! build).

use std::path::{Path, PathBuf};
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

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
    /// The people's listener's certificate, its own CA (PEM).
    pub ca_file: PathBuf,
    /// Trusts the people's listener's certificate.
    pub tls: Arc<rustls::ClientConfig>,
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
        // The people's listener's own certificate: the agents' gRPC stays plaintext on loopback.
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])?;
        let (ca_file, key_file) = (
            data.path().join("people.crt"),
            data.path().join("people.key"),
        );
        std::fs::write(&ca_file, certified.cert.pem())?;
        std::fs::write(&key_file, certified.signing_key.serialize_pem())?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certified.cert.der().clone())?;
        let tls = Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
        );
        let config = tether_config::server::parse_server_config(
            &format!(
                "data_dir: {}\nlisten: {{grpc: '127.0.0.1:0', http: '127.0.0.1:0'}}\npeople: {{listen: '127.0.0.1:0', tls: {{cert_file: {}, key_file: {}}}}}\napi: {{admin_token_file: {}}}\nrepositories:\n  - name: {REPO}\n    url: {}\n",
                data.path().display(),
                ca_file.display(),
                key_file.display(),
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
            ca_file,
            tls,
        })
    }

    pub fn people(&self) -> std::net::SocketAddr {
        self.server
            .people_addr
            .expect("the people's listener is configured")
    }

    /// The people's listener as a person's tools name it.
    pub fn people_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.people().port())
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
        let now = tether_server::store::now();
        self.person_until(name, groups, agent, now + 3600)
    }

    /// A person with a personal token that expires at `expires_at` (seconds since the epoch).
    pub fn person_until(
        &self,
        name: &str,
        groups: &[&str],
        agent: Option<&str>,
        expires_at: i64,
    ) -> Result<(i64, String)> {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        if self.users.user(name)?.is_none() {
            self.users.create_user(name, &groups, 0)?;
        }
        let token = tether_server::users::token::generate();
        let now = tether_server::store::now();
        let record = self
            .users
            .create_token(name, &token.hash, agent, "e2e", expires_at, now)?;
        Ok((record.id, token.secret.expose_secret().to_owned()))
    }

    /// A kubeconfig for `agent` through the proxy, written by the real `tether kubeconfig` with the
    /// token in a file.
    pub async fn kubeconfig(&self, agent: &str, token: &str) -> Result<PathBuf> {
        let id = &token[5..13];
        let path = self.data.path().join(format!("kubeconfig-{agent}-{id}"));
        let token_file = self.data.path().join(format!("token-{id}"));
        std::fs::write(&token_file, token)?;
        let output = tokio::process::Command::new(tether_cli()?)
            .arg("kubeconfig")
            .args(["--server", &self.people_url(), "--agent", agent])
            .arg("--token-file")
            .arg(&token_file)
            .arg("--certificate-authority")
            .arg(&self.ca_file)
            .args(["--namespace", self.ns.name()])
            .arg("--output")
            .arg(&path)
            .kill_on_drop(true)
            .output()
            .await?;
        if !output.status.success() {
            bail!(
                "tether kubeconfig failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(path)
    }

    /// A TLS connection to the people's listener, for requests kubectl would not make.
    pub async fn connect(&self) -> Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.people()).await?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
        Ok(tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?)
    }

    /// One HTTP/1.1 request on a fresh connection (`Connection: close`): status line and the rest.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, String)> {
        let mut stream = self.connect().await?;
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // The server may answer (and close) before taking all of a request it refuses.
        if stream.write_all(head.as_bytes()).await.is_ok() {
            let _ = stream.write_all(body).await;
        }
        let mut out = Vec::new();
        tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out))
            .await
            .context("no answer")?
            .or_else(|e| {
                // A server that closes without TLS close_notify after a refusal still answered.
                if out.is_empty() { Err(e) } else { Ok(0) }
            })?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP response: {text:.200}"))?;
        Ok((status, text))
    }
}

/// The `tether` CLI of this workspace, built (once per process) with the test builds' features so
/// nothing is rebuilt; always the dev profile's, also under `cargo bench`.
pub fn tether_cli() -> Result<PathBuf> {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(path) = PATH.get() {
        return Ok(path.clone());
    }
    // A given binary (the benchmark, whose build differs from the tests').
    if let Some(path) = std::env::var_os("TETHER_CLI") {
        return Ok(PATH.get_or_init(|| path.into()).clone());
    }
    // target/PROFILE/deps/THIS → target
    let exe = std::env::current_exe()?;
    let target = exe
        .ancestors()
        .nth(3)
        .context("the test binary is not in target/PROFILE/deps")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--workspace", "--locked", "--quiet"])
        .args(["--bin", "tether", "--test", "tunnel"])
        .arg("--target-dir")
        .arg(target)
        .current_dir(tether_testkit::repo_root())
        .status()
        .context("run cargo to build the tether CLI")?;
    if !status.success() {
        bail!("building the tether CLI failed ({status})");
    }
    let path = target.join("debug/tether");
    Ok(PATH.get_or_init(|| path).clone())
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
pub async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    kubectl_input(kubeconfig, args, None).await
}

/// `kubectl ARGS` with `input` on its standard input.
pub async fn kubectl_input(
    kubeconfig: &Path,
    args: &[&str],
    input: Option<&str>,
) -> Result<(bool, String, String)> {
    let mut child = tokio::process::Command::new(localkube()?)
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().context("kubectl's stdin")?;
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).await?;
    }
    drop(stdin);
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .with_context(|| format!("kubectl {args:?} did not finish within {DEADLINE:?}"))??;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

pub async fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> Result<String> {
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
