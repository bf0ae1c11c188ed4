//! TLS on the gRPC listener, the refusal of plaintext off loopback, and the `tether-server run` binary
//! started with only a config file and a data dir.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use tether_config::server::parse_server_config;
use tether_rpc::agent::v1::HeartbeatRequest;
use tether_rpc::agent::v1::agent_service_client::AgentServiceClient;
use tether_server::StartError;
use tether_server::store::{SqliteStore, Store};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_speaks_tls_when_configured() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert_pem = certified.cert.pem();
    std::fs::write(dir.path().join("tls.crt"), &cert_pem)?;
    std::fs::write(
        dir.path().join("tls.key"),
        certified.signing_key.serialize_pem(),
    )?;
    let h = common::Harness::start(&format!(
        "tls: {{cert_file: {0}/tls.crt, key_file: {0}/tls.key}}\n",
        dir.path().display()
    ))
    .await?;
    h.store.register_agent("prod", "config", 1)?;
    let token = h.token("prod")?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", h.server.grpc_addr))?
        .tls_config(tls)?
        .connect()
        .await?;
    AgentServiceClient::with_interceptor(channel, common::Bearer::new(&token))
        .heartbeat(HeartbeatRequest {})
        .await?;

    // A plaintext client cannot talk to the TLS listener.
    let plaintext =
        AgentServiceClient::with_interceptor(h.channel().await?, common::Bearer::new(&token))
            .heartbeat(HeartbeatRequest {})
            .await;
    assert!(plaintext.is_err());
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn plaintext_grpc_is_refused_off_loopback() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = parse_server_config(
        &format!(
            "data_dir: {}\nlisten: {{grpc: '0.0.0.0:0', http: '127.0.0.1:0'}}\n",
            dir.path().display()
        ),
        "server.yaml",
    )?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory()?);
    let error = tether_server::start(config, store).await.unwrap_err();
    assert!(
        matches!(error, StartError::PlaintextNotLoopback(_)),
        "{error}"
    );
    assert!(error.to_string().contains("configure `tls`"), "{error}");
    Ok(())
}

/// Kills the server process (by its own handle) if the test fails before stopping it.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_with_a_config_file_and_a_data_dir_and_stops_on_sigterm()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("server.yaml");
    std::fs::write(
        &config,
        "listen: {grpc: '127.0.0.1:0', http: '127.0.0.1:0'}\n",
    )?;
    let data = dir.path().join("data");
    let child = Command::new(env!("CARGO_BIN_EXE_tether-server"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg("run")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut server = ServerProcess(child);
    let stderr = server.0.stderr.take().expect("piped stderr");
    let (http_addr, stderr) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let line = line?;
            if let Some(rest) = line.split("http_addr=").nth(1) {
                let addr: std::net::SocketAddr =
                    rest.split_whitespace().next().unwrap_or_default().parse()?;
                return Ok((addr, lines));
            }
        }
        anyhow::bail!("the server exited before listening")
    })
    .await??;
    assert_eq!(
        common::http(http_addr, "GET", "/healthz", &[], b"").await?,
        (200, "ok\n".to_owned())
    );
    assert!(
        data.join("tether.db").exists(),
        "the store lives in the data dir"
    );

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(server.0.id().to_string())
        .status()?;
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || server.0.wait()).await??;
    assert!(exit.success(), "{exit:?}");
    drop(stderr);
    Ok(())
}
