//! A tether-server on loopback with real Git servers, and gRPC/HTTP clients for it.
#![allow(dead_code, unreachable_pub)]

use anyhow::{Context as _, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use tether_rpc::configuration::v1::configuration_service_client::ConfigurationServiceClient;
use tether_rpc::gitops::v1::gitops_service_client::GitopsServiceClient;
use tether_rpc::gitops::v1::{
    ObjectsToSynchronizeRequest, ObjectsToSynchronizeResponse, PathSelector,
};
use tether_rpc::sync_stream::{ObjectsSet, SyncAssembler};
use tether_server::RunningServer;
use tether_server::store::{SqliteStore, Store};
use tonic::Streaming;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const WEBHOOK_SECRET: &str = "generic-secret";
/// The HTTP API's admin token, unless a test configures `api` itself.
pub const ADMIN_TOKEN: &str = "admin-secret";

/// A running server and what it was started with.
pub struct Harness {
    pub server: RunningServer,
    pub store: Arc<SqliteStore>,
    pub data: tempfile::TempDir,
}

impl Harness {
    /// Starts a server whose configuration is `extra_yaml` plus loopback listeners, a data dir, a
    /// generic webhook secret and the admin token [`ADMIN_TOKEN`].
    pub async fn start(extra_yaml: &str) -> Result<Self> {
        let data = tempfile::tempdir()?;
        let secret = data.path().join("webhook-secret");
        std::fs::write(&secret, format!("{WEBHOOK_SECRET}\n"))?;
        // A test that configures `webhooks` or `api` itself replaces the default.
        let webhooks = if extra_yaml.contains("webhooks:") {
            String::new()
        } else {
            format!("webhooks: {{secret_file: {}}}\n", secret.display())
        };
        let admin = data.path().join("admin-token");
        std::fs::write(&admin, format!("{ADMIN_TOKEN}\n"))?;
        let api = if extra_yaml.contains("api:") {
            String::new()
        } else {
            format!("api: {{admin_token_file: {}}}\n", admin.display())
        };
        let listen = if extra_yaml.contains("listen:") {
            String::new()
        } else {
            "listen: {grpc: '127.0.0.1:0', http: '127.0.0.1:0'}\n".to_owned()
        };
        let yaml = format!(
            "data_dir: {}\n{listen}{webhooks}{api}{extra_yaml}",
            data.path().display(),
        );
        let config = tether_config::server::parse_server_config(&yaml, "test-server.yaml")?;
        let store = Arc::new(SqliteStore::open(&data.path().join("tether.db"))?);
        let server = tether_server::start(config, store.clone() as Arc<dyn Store>).await?;
        Ok(Self {
            server,
            store,
            data,
        })
    }

    /// Registers `agent` with its config repository and returns a fresh token.
    pub fn agent(&self, agent: &str, config_repository: &str) -> Result<String> {
        if self.store.agent(agent)?.is_none() {
            self.store.register_agent(agent, config_repository, 1)?;
        }
        self.token(agent)
    }

    pub fn token(&self, agent: &str) -> Result<String> {
        use secrecy::ExposeSecret;
        let new = tether_server::token::generate();
        self.store.create_token(agent, &new.hash, "test", 10, 1)?;
        Ok(new.secret.expose_secret().to_owned())
    }

    pub async fn channel(&self) -> Result<Channel> {
        Ok(
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.server.grpc_addr))?
                .connect()
                .await?,
        )
    }

    pub async fn gitops(
        &self,
        token: &str,
    ) -> Result<GitopsServiceClient<InterceptedService<Channel, Bearer>>> {
        Ok(GitopsServiceClient::with_interceptor(
            self.channel().await?,
            Bearer::new(token),
        ))
    }

    pub async fn configuration(
        &self,
        token: &str,
    ) -> Result<ConfigurationServiceClient<InterceptedService<Channel, Bearer>>> {
        Ok(ConfigurationServiceClient::with_interceptor(
            self.channel().await?,
            Bearer::new(token),
        ))
    }

    /// Opens a GetObjectsToSynchronize stream for `project` (default branch) with `globs`.
    pub async fn sync(&self, token: &str, project: &str, globs: &[&str]) -> Result<SyncClient> {
        let stream = self
            .gitops(token)
            .await?
            .get_objects_to_synchronize(sync_request(project, globs))
            .await?
            .into_inner();
        Ok(SyncClient::new(stream))
    }

    /// Wakes the server's pollers of `repository` through the signed generic push endpoint.
    pub async fn push(&self, repository: &str) -> Result<(u16, String)> {
        let body = serde_json::to_vec(&serde_json::json!({ "repository": repository }))?;
        let secret = secrecy::SecretString::from(WEBHOOK_SECRET.to_owned());
        let signature = tether_server::push::sign(&secret, &body);
        http(
            self.server.http_addr,
            "POST",
            "/api/v1/push",
            &[("x-tether-signature", &signature)],
            &body,
        )
        .await
    }

    /// GET `path` with the admin token.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        http(
            self.server.http_addr,
            "GET",
            path,
            &[("authorization", &bearer)],
            b"",
        )
        .await
    }
}

pub fn sync_request(project: &str, globs: &[&str]) -> ObjectsToSynchronizeRequest {
    ObjectsToSynchronizeRequest {
        project_id: project.to_owned(),
        r#ref: None,
        paths: globs
            .iter()
            .map(|g| PathSelector {
                glob: (*g).to_owned(),
            })
            .collect(),
        commit_id: String::new(),
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Self(format!("Bearer {token}").parse().expect("ascii token"))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A GetObjectsToSynchronize stream read set by set, order checked.
pub struct SyncClient {
    stream: Streaming<ObjectsToSynchronizeResponse>,
    assembler: SyncAssembler,
    /// Messages received so far (to prove nothing partial arrived before an error).
    pub messages: usize,
}

impl SyncClient {
    pub fn new(stream: Streaming<ObjectsToSynchronizeResponse>) -> Self {
        Self {
            stream,
            assembler: SyncAssembler::new(),
            messages: 0,
        }
    }

    /// The next complete set, or the stream's error status.
    pub async fn next_set(&mut self) -> Result<ObjectsSet, tonic::Status> {
        loop {
            let message = self
                .stream
                .message()
                .await?
                .ok_or_else(|| tonic::Status::aborted("stream ended"))?;
            self.messages += 1;
            if let Some(set) = self
                .assembler
                .accept(message)
                .map_err(|e| tonic::Status::internal(format!("stream order: {e}")))?
            {
                return Ok(set);
            }
        }
    }
}

pub fn paths(set: &ObjectsSet) -> Vec<&str> {
    set.files.iter().map(|(p, _)| p.as_str()).collect()
}

/// One HTTP/1.1 request on a fresh connection; returns status and body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .context("no status line")?
        .parse()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
