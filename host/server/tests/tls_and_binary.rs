//! TLS on the gRPC and HTTP listeners, the refusal of plaintext off loopback, and the `tether-server run`
//! binary started with only a config file and a data dir.

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
    let (cert_pem, tls) = certificate(dir.path())?;
    let h = common::Harness::start(&tls).await?;
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
async fn plaintext_is_refused_off_loopback_for_grpc_and_http() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for (listen, refused) in [
        ("{grpc: '0.0.0.0:0', http: '127.0.0.1:0'}", "gRPC"),
        ("{grpc: '127.0.0.1:0', http: '0.0.0.0:0'}", "HTTP"),
    ] {
        let config = parse_server_config(
            &format!("data_dir: {}\nlisten: {listen}\n", dir.path().display()),
            "server.yaml",
        )?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory()?);
        let error = tether_server::start(config, store).await.unwrap_err();
        assert!(
            matches!(error, StartError::PlaintextNotLoopback { listener, .. } if listener == refused),
            "{error}"
        );
        assert!(error.to_string().contains("configure `tls`"), "{error}");
        assert!(error.to_string().starts_with(refused), "{error}");
    }
    Ok(())
}

/// A self-signed certificate for `localhost` in `dir`: its PEM, and the `tls:` configuration line.
fn certificate(dir: &std::path::Path) -> anyhow::Result<(String, String)> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert_pem = certified.cert.pem();
    std::fs::write(dir.join("tls.crt"), &cert_pem)?;
    std::fs::write(dir.join("tls.key"), certified.signing_key.serialize_pem())?;
    Ok((
        cert_pem,
        format!(
            "tls: {{cert_file: {0}/tls.crt, key_file: {0}/tls.key}}\n",
            dir.display()
        ),
    ))
}

/// One HTTP/1.1 GET over TLS to `port` on this machine, trusting only `cert_pem` for `localhost`.
async fn https_get(
    port: u16,
    cert_pem: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(rustls::pki_types::ServerName::try_from("localhost")?, tcp)
        .await?;
    let mut head =
        format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes()).await?;
    let mut response = Vec::new();
    // A server may close without TLS close_notify once the response is complete.
    if let Err(e) = tls.read_to_end(&mut response).await {
        anyhow::ensure!(!response.is_empty(), "reading the response: {e}");
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .parse()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_speaks_tls_off_loopback() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert_pem, tls) = certificate(dir.path())?;
    let h = common::Harness::start(&format!(
        "listen: {{grpc: '127.0.0.1:0', http: '0.0.0.0:0'}}\n{tls}"
    ))
    .await?;
    let port = h.server.http_addr.port();
    let bearer = format!("Bearer {}", common::ADMIN_TOKEN);
    let (status, body) = https_get(
        port,
        &cert_pem,
        "/api/v1/agents",
        &[("authorization", &bearer)],
    )
    .await?;
    assert_eq!((status, body.as_str()), (200, "[]"));
    assert_eq!(
        https_get(port, &cert_pem, "/api/v1/agents", &[]).await?.0,
        401
    );
    assert_eq!(
        https_get(port, &cert_pem, "/healthz", &[]).await?,
        (200, "ok\n".to_owned())
    );

    // Plain HTTP gets no HTTP answer from the TLS listener.
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let plaintext = common::http(local, "GET", "/healthz", &[], b"").await;
    assert!(
        plaintext.is_err() || plaintext.as_ref().is_ok_and(|(status, _)| *status != 200),
        "{plaintext:?}"
    );
    h.server.shutdown().await;

    // On loopback the HTTP API stays plaintext (for `notify` from a Git hook), gRPC still uses TLS.
    let h = common::Harness::start(&tls).await?;
    assert_eq!(h.get("/healthz").await?, (200, "ok\n".to_owned()));
    h.server.shutdown().await;
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
