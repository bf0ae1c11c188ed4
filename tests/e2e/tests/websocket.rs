//! The WebSocket transport end to end: an agent whose only way to tether-server is a real nginx
//! configured as an HTTP/1.1-only reverse proxy gets its configuration and syncs a manifest project
//! onto the local control plane — everything inside one WebSocket that outlives the proxy's idle
//! timeout — and serves a person's Kubernetes API request through the tunnel over it. A proxy that
//! does not forward the upgrade gives an error naming the URL and the HTTP status.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use secrecy::{ExposeSecret, SecretString};
use tether_agent::connection::{ServerConnection, TokenSource};
use tether_e2e::fleet::{DEADLINE, Fleet, config_map};
use tether_e2e::tunnel::grant_config_maps;
use tether_e2e::wait::{has_value, until};
use tether_rpc::agent::v1::RegisterRequest;
use tether_testkit::{Nginx, NginxOptions, cluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AGENT: &str = "edge";
/// alice may use the agent, as `tether:user:alice` (the cluster's RBAC decides).
const USER_ACCESS: &str = "user_access:\n  access_as: {user: {}}\n  users: [alice]\n";
/// What nginx logs for a WebSocket it carried, once the connection closes.
const UPGRADED: &str = "\"GET /tether.ws/v1 HTTP/1.1\" HTTP/1.1 101 upgrade=websocket";
/// Shorter than every periodic message of gRPC above the WebSocket (heartbeats and HTTP/2 pings
/// come every 30 s), longer than the WebSocket's own pings (every 10 s).
const PROXY_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_behind_an_http1_only_proxy_gets_its_configuration_and_syncs_over_one_websocket()
-> Result<()> {
    let ns = cluster().namespace("e2e-ws").await?;
    let fleet = Fleet::start_with(&[(AGENT, ns.name())], &[("a", "1")], USER_ACCESS).await?;
    let nginx = Nginx::start(&NginxOptions {
        idle_timeout: PROXY_IDLE_TIMEOUT,
        ..NginxOptions::websocket(fleet.server.grpc_addr)
    })?;

    // The control: gRPC's HTTP/2 does not pass this proxy, so whatever reaches the server through
    // it below went inside the WebSocket.
    let h2 = probe(&format!("http://{}", nginx.addr())).await;
    assert!(h2.is_err(), "HTTP/2 through an HTTP/1.1-only nginx: {h2:?}");
    until_logged(&nginx, "\"PRI * HTTP/2.0\" - 400").await?;

    let agent = fleet
        .agent_with(AGENT, ns.name(), |options| {
            options.server = format!("ws://{}", nginx.addr());
        })
        .await?;
    // Configuration: the agent has its config (with user_access) from the server.
    let mut config = agent.config.clone();
    tokio::time::timeout(DEADLINE, config.wait_for(Option::is_some))
        .await
        .context("the agent's configuration did not arrive")??;
    // GitOps: the first commit's ConfigMap is applied on the control plane.
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "a", has_value("1")).await?;

    // Idle for longer than nginx allows: only the WebSocket's pings keep the connection open.
    tokio::time::sleep(PROXY_IDLE_TIMEOUT + Duration::from_secs(5)).await;
    let log = nginx.access_log()?;
    assert!(
        !log.contains(UPGRADED),
        "the proxy closed the WebSocket while it was idle:\n{log}\n{}",
        nginx.error_log()
    );

    // A new commit arrives over the same connection.
    fleet.repo.write("manifests/b.yaml", config_map("b", "2"))?;
    let commit = fleet.push("add b")?;
    until(&config_maps, "b", has_value("2")).await?;
    let status = fleet.status_of(AGENT, &commit).await?;
    assert_eq!(status.result, "succeeded", "{status:?}");

    // Everything went through nginx, in one WebSocket, logged when it closes.
    assert!(!nginx.access_log()?.contains(UPGRADED), "still open");
    agent.shutdown().await;
    fleet.server.shutdown().await;
    let log = until_logged(&nginx, UPGRADED).await?;
    assert_eq!(
        log.matches(UPGRADED).count(),
        1,
        "one WebSocket carried everything:\n{log}"
    );
    // Every request nginx served but the control's was HTTP/1.1.
    for line in log.lines().filter(|l| !l.contains("\"PRI * HTTP/2.0\"")) {
        assert!(
            line.contains("\" HTTP/1.1 "),
            "nginx spoke no HTTP/2: {line}"
        );
    }
    Ok(())
}

/// The tunnel's streams ride the same WebSocket: a person's Kubernetes API request reaches the
/// agent's cluster and the answer comes back through nginx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnelled_kubernetes_api_request_rides_the_websocket() -> Result<()> {
    let ns = cluster().namespace("e2e-ws-tunnel").await?;
    let fleet = Fleet::start_with(&[(AGENT, ns.name())], &[("b", "2")], USER_ACCESS).await?;
    let nginx = Nginx::start(&NginxOptions::websocket(fleet.server.grpc_addr))?;
    let agent = fleet
        .agent_with(AGENT, ns.name(), |options| {
            options.server = format!("ws://{}", nginx.addr());
        })
        .await?;
    let config_maps = Api::<ConfigMap>::namespaced(cluster().admin().await?, ns.name());
    until(&config_maps, "b", has_value("2")).await?;

    // The tunnel: a Kubernetes API request through the server's people's listener and the
    // agent's tunnel streams, which ride the same WebSocket.
    grant_config_maps(ns.name(), "alice").await?;
    let token = personal_token(&fleet, "alice")?;
    let people = fleet
        .server
        .people_addr
        .context("the people's listener is on")?;
    let (status, body) = get(
        people,
        &format!(
            "/k8s-proxy/agents/{AGENT}/api/v1/namespaces/{}/configmaps/b",
            ns.name()
        ),
        &token,
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let b: ConfigMap = serde_json::from_str(&body)?;
    assert_eq!(b.data.unwrap_or_default()["value"], "2");

    agent.shutdown().await;
    fleet.server.shutdown().await;
    until_logged(&nginx, UPGRADED).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_does_not_forward_the_upgrade_is_named_with_its_status() -> Result<()> {
    let fleet = Fleet::start(&[(AGENT, "default")], &[]).await?;
    let nginx = Nginx::start(&NginxOptions {
        forward_upgrades: false,
        ..NginxOptions::websocket(fleet.server.grpc_addr)
    })?;
    let url = format!("ws://{}/tether.ws/v1", nginx.addr());
    let status = probe(&format!("ws://{}", nginx.addr()))
        .await
        .expect_err("no WebSocket through this proxy");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let message = status.message();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("HTTP 426"), "{message}");
    assert!(
        message.contains("forward the Upgrade and Connection headers"),
        "{message}"
    );

    // A URL that leads elsewhere on the server: its 404.
    let wrong = format!("ws://{}/somewhere", nginx.addr());
    let status = probe(&wrong).await.expect_err("no WebSocket there");
    let message = status.message();
    assert!(
        message.contains(&wrong) && message.contains("HTTP 404"),
        "{message}"
    );
    fleet.server.shutdown().await;
    Ok(())
}

/// One registration attempt through `address`, with a token the server does not know.
async fn probe(address: &str) -> Result<(), tonic::Status> {
    let connection = ServerConnection::new(
        address,
        TokenSource::Value(SecretString::from("tthr_unknown")),
        None,
        false,
    )
    .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    connection
        .agent()
        .register(RegisterRequest { meta: None })
        .await
        .map(drop)
}

/// A personal token of `user`, for this fleet's agent only.
fn personal_token(fleet: &Fleet, user: &str) -> Result<String> {
    let users = tether_server::users::open_store(fleet.data_dir())?;
    let now = tether_server::store::now();
    users.create_user(user, &[], now)?;
    let token = tether_server::users::token::generate();
    users.create_token(user, &token.hash, Some(AGENT), "e2e", now + 3600, now)?;
    Ok(token.secret.expose_secret().to_owned())
}

/// `GET path` from `addr` with `token`: the status and the body. (No `Connection: close`: the
/// tunnel forwards that hop-by-hop header to the API server today, which breaks the request.)
async fn get(addr: std::net::SocketAddr, path: &str, token: &str) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: tether\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let read = async {
        let mut response = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await?;
            response.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&response).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let lower = head.to_ascii_lowercase();
                let length = lower
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|l| l.trim().parse::<usize>().ok());
                let complete = match length {
                    Some(length) => body.len() >= length,
                    None => body.ends_with("0\r\n\r\n"),
                };
                if complete || n == 0 {
                    let status = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .context("an HTTP status line")?;
                    let body = if length.is_some() {
                        body.to_owned()
                    } else {
                        dechunk(body)
                    };
                    return Ok::<_, anyhow::Error>((status, body));
                }
            }
            if n == 0 {
                bail!("the connection closed mid-answer: {text}");
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .context("no answer through the tunnel")?
}

/// The body of a chunked HTTP/1.1 answer.
fn dechunk(mut chunked: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = chunked.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        body.push_str(&rest[..size]);
        chunked = rest[size..].trim_start_matches("\r\n");
    }
    body
}

/// nginx's access log once it has a line containing `wanted`. nginx writes the log itself, with
/// no event to wait on: read it again every 50 ms until the deadline.
async fn until_logged(nginx: &Nginx, wanted: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let log = nginx.access_log()?;
        if log.contains(wanted) {
            return Ok(log);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("nginx never logged {wanted:?} within {DEADLINE:?}; its log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
