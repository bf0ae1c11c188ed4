//! The agent binary against a real tether-server over TLS, on the local control plane: verified
//! with the system's roots (or `--server-ca-file`) and writing nothing outside its work dir;
//! registering again after a server restart with its last reports; and a revoked token, which
//! makes it not ready and disconnected until a new token is written to its token file.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::wait::await_condition;
use secrecy::ExposeSecret;
use tether_server::RunningServer;
use tether_server::registry::Connection;
use tether_server::store::{SqliteStore, Store};
use tether_testkit::{GitServer, Repo, cluster};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

/// A deadline for a state to be reached; every wait returns as soon as it is.
const DEADLINE: Duration = Duration::from_secs(60);
const AGENT: &str = "edge";
const REPO: &str = "platform/config";

/// A config repository served over smart HTTP and a tether-server mirroring it over TLS.
struct Setup {
    _git: GitServer,
    repo: Repo,
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    server_config: String,
    server: Option<RunningServer>,
    namespace: String,
}

impl Setup {
    /// `config` is the agent's config.yaml; `manifests/settings.yaml` holds ConfigMap `settings`.
    async fn start(config: &str) -> Result<Self> {
        let namespace = cluster().namespace("connection").await?.name;
        let git = GitServer::start()?;
        let repo = git.create_repo(REPO)?;
        repo.write(
            &format!(".tether/agents/{AGENT}/config.yaml"),
            config.replace("NAMESPACE", &namespace),
        )?;
        repo.write(
            "manifests/settings.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: \"1\"\n",
        )?;
        repo.commit("first")?;

        let dir = tempfile::tempdir()?;
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        std::fs::write(dir.path().join("ca.pem"), certified.cert.pem())?;
        std::fs::write(
            dir.path().join("tls.key"),
            certified.signing_key.serialize_pem(),
        )?;
        std::fs::create_dir(dir.path().join("work"))?;
        let store = Arc::new(SqliteStore::open(&dir.path().join("tether.db"))?);
        store.register_agent(AGENT, REPO, 0)?;
        let server_config = format!(
            "data_dir: {0}\nlisten: {{grpc: '127.0.0.1:PORT', http: '127.0.0.1:0'}}\n\
             tls: {{cert_file: {0}/ca.pem, key_file: {0}/tls.key}}\n\
             repositories:\n  - name: {REPO}\n    url: {1}\n",
            dir.path().display(),
            git.http_url(REPO)
        );
        let mut setup = Self {
            _git: git,
            repo,
            dir,
            store,
            server_config,
            server: None,
            namespace,
        };
        setup.start_server(0).await?;
        Ok(setup)
    }

    async fn start_server(&mut self, port: u16) -> Result<()> {
        let config = tether_config::server::parse_server_config(
            &self.server_config.replace("PORT", &port.to_string()),
            "server.yaml",
        )?;
        let server = tether_server::start(config, self.store.clone() as Arc<dyn Store>).await?;
        self.server = Some(server);
        Ok(())
    }

    fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("the server runs")
    }

    /// Stops the server and starts a new one on the same port, with nothing in memory.
    async fn restart_server(&mut self) -> Result<()> {
        let server = self.server.take().expect("the server runs");
        let port = server.grpc_addr.port();
        server.shutdown().await;
        self.start_server(port).await
    }

    fn address(&self) -> String {
        format!("https://localhost:{}", self.server().grpc_addr.port())
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues a new token for the agent and writes it to its token file; the token's id.
    fn issue_token(&self) -> Result<i64> {
        let token = tether_server::token::generate();
        let record = self.store.create_token(AGENT, &token.hash, "test", 3, 0)?;
        std::fs::write(self.token_file(), token.secret.expose_secret())?;
        Ok(record.id)
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    /// Until the server's view of the agent satisfies `wanted`.
    async fn until_server_shows(
        &self,
        what: &str,
        wanted: impl Fn(&Connection) -> bool,
    ) -> Result<Connection> {
        let registry = &self.server().context().registry;
        let mut changes = registry.subscribe();
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(c) = registry.get(AGENT).filter(|c| wanted(c)) {
                    return Ok::<_, anyhow::Error>(c);
                }
                changes.changed().await?;
            }
        })
        .await;
        match found {
            Ok(found) => found,
            Err(_) => bail!(
                "the server never showed the agent {what} within {DEADLINE:?}; last: {:?}",
                registry.get(AGENT)
            ),
        }
    }

    async fn until_config_map(&self) -> Result<()> {
        let api = Api::<ConfigMap>::namespaced(cluster().admin().await?, &self.namespace);
        tokio::time::timeout(
            DEADLINE,
            await_condition(api, "settings", |cm: Option<&ConfigMap>| cm.is_some()),
        )
        .await
        .context("ConfigMap settings never appeared")??;
        Ok(())
    }
}

/// The agent binary, its log (JSON lines) collected as it runs; killed when dropped.
struct AgentProcess {
    child: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    changes: watch::Receiver<usize>,
    observability: String,
}

impl AgentProcess {
    /// Starts the agent in namespaced mode on `setup`'s namespace, with a temp dir it cannot
    /// write to (a read-only root filesystem) and its work dir; `extra` args and `env` on top.
    fn start(setup: &Setup, extra: &[&str], env: &[(&str, &Path)]) -> Result<Self> {
        Self::start_at(setup, &setup.address(), extra, env)
    }

    /// Like [`AgentProcess::start`], with `--server address`.
    fn start_at(
        setup: &Setup,
        address: &str,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Result<Self> {
        let observability = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.to_string()
        };
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether-agent"));
        command
            .args(["--server", address])
            .arg("--token-file")
            .arg(setup.token_file())
            .arg("--kubeconfig")
            .arg(cluster().kubeconfig())
            .args(["--namespace", &setup.namespace])
            .args(["--mode", "namespaced", "--namespaces", &setup.namespace])
            .args(["--observability-addr", &observability])
            .args(["--leader-election", "false", "--log-format", "json"])
            .arg("--work-dir")
            .arg(setup.dir.path().join("work"))
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            // Nothing may be written outside the work dir: /proc takes no new files, even from root.
            .env("TMPDIR", "/proc/tether-read-only")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().context("start tether-agent")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, changes) = watch::channel(0);
        let tx = Arc::new(tx);
        for stream in [
            Box::new(child.stdout.take().expect("piped"))
                as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let (lines, tx) = (lines.clone(), tx.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().unwrap().push(line);
                    tx.send_modify(|n| *n += 1);
                }
            });
        }
        Ok(Self {
            child,
            lines,
            changes,
            observability,
        })
    }

    /// The first log line containing every one of `parts`, once there is one.
    async fn until_logged(&mut self, parts: &[&str]) -> Result<String> {
        let matches = |line: &String| parts.iter().all(|p| line.contains(p));
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(line) = self.lines.lock().unwrap().iter().find(|l| matches(l)) {
                    return Ok::<_, anyhow::Error>(line.clone());
                }
                self.changes.changed().await?;
            }
        })
        .await;
        match found {
            Ok(found) => found,
            Err(_) => bail!(
                "the agent never logged {parts:?} within {DEADLINE:?}; its log:\n{}",
                self.log()
            ),
        }
    }

    fn count_logged(&self, parts: &[&str]) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// `/readyz`: the status code and body.
    async fn readyz(&self) -> Result<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(&self.observability).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.0\r\nHost: agent\r\n\r\n")
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let code = response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("an HTTP status line")?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((code, body))
    }

    async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

const CONFIG: &str = "gitops:\n  manifest_projects:\n    - id: platform/config\n      default_namespace: NAMESPACE\n      paths:\n        - glob: 'manifests/**/*.yaml'\n";

const ERROR: &str = "\"level\":\"ERROR\"";
const WARN: &str = "\"level\":\"WARN\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_binary_syncs_over_tls_verified_by_the_system_roots() -> Result<()> {
    let setup = Setup::start(CONFIG).await?;
    setup.issue_token()?;
    // The test CA stands in for the system's roots (rustls-native-certs reads SSL_CERT_FILE).
    let agent = AgentProcess::start(&setup, &[], &[("SSL_CERT_FILE", &setup.ca_file())])?;
    setup.until_config_map().await?;
    let shown = setup
        .until_server_shows("with a succeeded sync", |c| {
            c.projects.iter().any(|p| p.result == "succeeded")
        })
        .await?;
    assert!(!shown.meta.kubernetes_version.is_empty(), "{shown:?}");
    agent.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_ca_file_is_trusted_and_an_unknown_certificate_is_not() -> Result<()> {
    let setup = Setup::start(CONFIG).await?;
    setup.issue_token()?;
    // No system roots at all: the CA file is what verifies the server.
    let no_roots = setup.dir.path().join("no-roots.pem");
    let ca = setup.ca_file();
    let agent = AgentProcess::start(
        &setup,
        &["--server-ca-file", ca.to_str().unwrap()],
        &[("SSL_CERT_FILE", &no_roots)],
    )?;
    setup.until_config_map().await?;
    agent.stop().await?;

    // The machine's real roots do not vouch for the test certificate: never registered.
    let mut untrusted = AgentProcess::start(&setup, &[], &[])?;
    let line = untrusted
        .until_logged(&["cannot register with the server"])
        .await?;
    assert!(
        line.to_lowercase().contains("certificate") || line.contains("transport error"),
        "{line}"
    );
    untrusted.stop().await
}

/// The same listener takes `wss://`: TLS verified by the CA file, the WebSocket upgrade, and
/// the gRPC connection inside it; an unknown certificate is refused, naming the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_binary_syncs_over_wss_and_refuses_an_unknown_certificate() -> Result<()> {
    let setup = Setup::start(CONFIG).await?;
    setup.issue_token()?;
    let address = format!("wss://localhost:{}", setup.server().grpc_addr.port());
    let no_roots = setup.dir.path().join("no-roots.pem");
    let ca = setup.ca_file();
    let agent = AgentProcess::start_at(
        &setup,
        &address,
        &["--server-ca-file", ca.to_str().unwrap()],
        &[("SSL_CERT_FILE", &no_roots)],
    )?;
    if let Err(e) = setup.until_config_map().await {
        bail!("{e}; the agent's log:\n{}", agent.log());
    }
    setup
        .until_server_shows("with a succeeded sync", |c| {
            c.projects.iter().any(|p| p.result == "succeeded")
        })
        .await?;
    agent.stop().await?;

    let mut untrusted = AgentProcess::start_at(&setup, &address, &[], &[])?;
    let line = untrusted
        .until_logged(&[
            "cannot register with the server",
            &format!("{address}/tether.ws/v1"),
        ])
        .await?;
    assert!(
        line.contains("TLS") && line.to_lowercase().contains("certificate"),
        "{line}"
    );
    untrusted.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_to_a_remote_server_is_refused_at_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "tthr_0123")?;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether-agent"))
        .args(["--server", "http://192.0.2.1:8150", "--namespace", "x"])
        .arg("--token-file")
        .arg(&token_file)
        .env_clear()
        .kill_on_drop(true)
        .output()
        .await?;
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--insecure-plaintext"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_agent_registers_again_with_its_last_reports() -> Result<()> {
    let gitlab_keys = format!("{CONFIG}ci_access:\n  projects:\n    - id: group/app\n");
    let mut setup = Setup::start(&gitlab_keys).await?;
    setup.issue_token()?;
    let ca = setup.ca_file();
    let mut agent = AgentProcess::start(&setup, &["--server-ca-file", ca.to_str().unwrap()], &[])?;
    setup.until_config_map().await?;
    // GitLab's key for a feature Tether lacks: accepted, named at WARN and shown by the server.
    let warned = agent.until_logged(&[WARN, "`ci_access`"]).await?;
    assert!(warned.contains("does not have"), "{warned}");
    setup
        .until_server_shows("with the ci_access warning", |c| {
            c.configuration
                .warnings
                .iter()
                .any(|w| w.contains("`ci_access`"))
        })
        .await?;

    // A configuration the server accepts and the agent refuses (wider than its --mode).
    setup.repo.write(
        &format!(".tether/agents/{AGENT}/config.yaml"),
        format!(
            "{}mode: {{scope: cluster}}\n",
            CONFIG.replace("NAMESPACE", &setup.namespace)
        ),
    )?;
    let refused_commit = setup.repo.commit("ask for more than the agent may")?;
    assert!(setup.server().context().sources.notify(REPO));
    let line = agent
        .until_logged(&[ERROR, "configuration refused", &refused_commit])
        .await?;
    assert!(line.contains("mode"), "{line}");
    setup
        .until_server_shows("with the refused configuration", |c| {
            c.configuration
                .agent_error
                .as_deref()
                .is_some_and(|e| e.contains(&refused_commit) && e.contains("refused by the agent"))
        })
        .await?;

    setup.restart_server().await?;
    // The new server knows nothing until the agent tells it: registration, the last sync and
    // the refused configuration, without a new sync or configuration commit.
    let shown = setup
        .until_server_shows("registered with its reports", |c| {
            c.registered_at.is_some()
                && c.projects.iter().any(|p| p.result == "succeeded")
                && c.configuration
                    .agent_error
                    .as_deref()
                    .is_some_and(|e| e.contains(&refused_commit))
        })
        .await?;
    assert!(shown.connected(tether_server::store::now()), "{shown:?}");
    assert_eq!(shown.meta.pod_namespace, setup.namespace);
    agent.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_makes_the_agent_unready_until_a_new_one_is_written() -> Result<()> {
    let setup = Setup::start(CONFIG).await?;
    let token = setup.issue_token()?;
    let ca = setup.ca_file();
    let mut agent = AgentProcess::start(&setup, &["--server-ca-file", ca.to_str().unwrap()], &[])?;
    setup.until_config_map().await?;
    assert_eq!(agent.readyz().await?.0, 200, "{}", agent.log());

    setup
        .store
        .revoke_token(token, tether_server::store::now())?;
    setup
        .until_server_shows("disconnected", |c| {
            !c.connected(tether_server::store::now())
        })
        .await?;
    agent
        .until_logged(&[ERROR, "refused the agent's token"])
        .await?;
    let (code, why) = agent.readyz().await?;
    assert_eq!(
        (code, why.as_str()),
        (503, "tether-server refused the agent's token\n")
    );

    // A rotated Secret: a new token in the same file.
    setup.issue_token()?;
    agent
        .until_logged(&["accepts the agent's token again"])
        .await?;
    assert_eq!(agent.readyz().await?.0, 200, "{}", agent.log());
    setup
        .until_server_shows("connected again", |c| {
            c.connected(tether_server::store::now())
        })
        .await?;
    assert_eq!(
        agent.count_logged(&[ERROR, "token"]),
        1,
        "one clear error, not one per retry:\n{}",
        agent.log()
    );
    agent.stop().await
}
