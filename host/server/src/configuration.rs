//! The configuration feature's server part: streams each agent its `config.yaml` from its config
//! repository — a message whenever a commit changes it, never an invalid one (the error goes to the
//! agent's status and the previous configuration stays in force) — and the plugin files it references.

use crate::auth::agent_of;
use crate::context::Context;
use crate::gitops::parse_commit;
use crate::sources::{SourceError, SourceKey, SourceState};
use std::pin::Pin;
use std::sync::Arc;
use tether_config::agent::parse_agent_config;
use tether_rpc::configuration::v1::configuration_service_server::{
    ConfigurationService, ConfigurationServiceServer,
};
use tether_rpc::configuration::v1::{
    ConfigurationRequest, ConfigurationResponse, PluginFileChunk, PluginFileRequest,
};
use tether_rpc::limits::{MAX_CHUNK_SIZE, MAX_CONFIG_FILE_SIZE};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Plugin components can be large (a Python one is ~35 MB); this bounds what one request can pull.
pub const MAX_PLUGIN_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Where an agent's configuration lives in its config repository, in order of preference.
pub fn config_paths(agent: &str) -> [String; 2] {
    [
        format!(".tether/agents/{agent}/config.yaml"),
        format!(".gitlab/agents/{agent}/config.yaml"),
    ]
}

#[derive(Debug, Clone)]
pub struct Configuration {
    ctx: Arc<Context>,
}

impl Configuration {
    pub fn server(ctx: Arc<Context>) -> ConfigurationServiceServer<Self> {
        ConfigurationServiceServer::new(Self { ctx })
    }
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl ConfigurationService for Configuration {
    type GetConfigurationStream = Stream<ConfigurationResponse>;
    type GetPluginFileStream = Stream<PluginFileChunk>;

    async fn get_configuration(
        &self,
        request: Request<ConfigurationRequest>,
    ) -> Result<Response<Self::GetConfigurationStream>, Status> {
        let who = agent_of(&request)?;
        let resume = parse_commit(&request.get_ref().commit_id)?;
        let repository = who.agent.config_repository.clone();
        let state = self
            .ctx
            .sources
            .watch(SourceKey {
                repository: repository.clone(),
                git_ref: None,
            })
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let (tx, rx) = mpsc::channel(4);
        let task = ConfigTask {
            ctx: self.ctx.clone(),
            agent: who.agent.name,
            repository,
            token_id: who.token_id,
            tx,
        };
        self.ctx.tracker.spawn(task.run(state, resume));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_plugin_file(
        &self,
        request: Request<PluginFileRequest>,
    ) -> Result<Response<Self::GetPluginFileStream>, Status> {
        let who = agent_of(&request)?;
        let request = request.into_inner();
        let Some(commit) = parse_commit(&request.commit_id)? else {
            return Err(Status::invalid_argument("commit_id is required"));
        };
        tether_config::plugins::RelativePath::try_from(request.path.clone())
            .map_err(Status::invalid_argument)?;
        // The size comes from the tree: a file over the limit is refused before it is read.
        let content = self
            .ctx
            .sources
            .file_at(
                &who.agent.config_repository,
                commit,
                &request.path,
                MAX_PLUGIN_FILE_SIZE,
            )
            .await
            .map_err(|e| match e {
                SourceError::TooLarge { .. } => Status::failed_precondition(e.to_string()),
                e => Status::not_found(e.to_string()),
            })?
            .ok_or_else(|| {
                Status::not_found(format!("no file `{}` at commit {commit}", request.path))
            })?;
        let content = bytes::Bytes::from(content);
        let chunks: Vec<Result<PluginFileChunk, Status>> =
            (0..content.len().div_ceil(MAX_CHUNK_SIZE))
                .map(|i| {
                    let end = ((i + 1) * MAX_CHUNK_SIZE).min(content.len());
                    Ok(PluginFileChunk {
                        data: content.slice(i * MAX_CHUNK_SIZE..end),
                    })
                })
                .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}

struct ConfigTask {
    ctx: Arc<Context>,
    agent: String,
    repository: String,
    token_id: i64,
    tx: mpsc::Sender<Result<ConfigurationResponse, Status>>,
}

impl ConfigTask {
    async fn send(&self, message: Result<ConfigurationResponse, Status>) -> bool {
        self.ctx.send(&self.tx, message).await
    }

    /// Ends the stream of an agent whose token was revoked; every agent has this stream open, so
    /// the agent is shown as disconnected from now on.
    async fn token_refused(&self) {
        self.ctx
            .registry
            .disconnected(&self.agent, crate::store::now());
        self.send(Err(crate::auth::unauthenticated())).await;
    }

    async fn run(self, mut state: watch::Receiver<SourceState>, resume: Option<gix::ObjectId>) {
        // What the agent has: the configuration at the commit it resumes from, if that can be read.
        let mut sent: Option<(String, String)> = match resume {
            Some(commit) => self.read(commit).await.ok().flatten(),
            None => None,
        };
        let mut seen = resume;
        loop {
            let (current, never_read) = {
                let state = state.borrow_and_update();
                (state.commit, state.never_read().map(str::to_owned))
            };
            if let Some(error) = never_read {
                self.send(Err(Status::unavailable(error))).await;
                return;
            }
            if let Some(commit) = current
                && Some(commit) != seen
            {
                seen = Some(commit);
                if !self.ctx.token_active(self.token_id).await {
                    self.token_refused().await;
                    return;
                }
                match self.read(commit).await {
                    Ok(Some((file, yaml)))
                        if sent.as_ref() != Some(&(file.clone(), yaml.clone())) =>
                    {
                        let message = ConfigurationResponse {
                            commit_id: commit.to_string(),
                            file: file.clone(),
                            config_yaml: yaml.clone(),
                        };
                        if !self.send(Ok(message)).await {
                            return;
                        }
                        self.ctx
                            .metrics
                            .inc("tether_server_configurations_total", &[]);
                        self.ctx.registry.configuration_sent(
                            &self.agent,
                            commit.to_string(),
                            file.clone(),
                        );
                        sent = Some((file, yaml));
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(agent = %self.agent, %commit, "invalid configuration: {error}");
                        self.ctx
                            .metrics
                            .inc("tether_server_configuration_errors_total", &[]);
                        self.ctx
                            .registry
                            .configuration_failed(&self.agent, format!("commit {commit}: {error}"));
                    }
                }
            }
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                () = self.tx.closed() => return,
                () = self.ctx.cancel.cancelled() => return,
                () = tokio::time::sleep(crate::context::TOKEN_RECHECK) => {
                    if !self.ctx.token_active(self.token_id).await {
                        self.token_refused().await;
                        return;
                    }
                }
            }
        }
    }

    /// The validated configuration at `commit`: `(file, yaml)`; `(.., "")` when the agent has no file
    /// (an empty configuration, as in GitLab); an error message for an invalid one, or one over the
    /// size limit (refused from the tree, before it is read).
    async fn read(&self, commit: gix::ObjectId) -> Result<Option<(String, String)>, String> {
        for path in config_paths(&self.agent) {
            let content = self
                .ctx
                .sources
                .file_at(&self.repository, commit, &path, MAX_CONFIG_FILE_SIZE)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(content) = content {
                let text =
                    String::from_utf8(content).map_err(|_| format!("{path}: not UTF-8 text"))?;
                parse_agent_config(&text, &path).map_err(|e| e.to_string())?;
                return Ok(Some((path, text)));
            }
        }
        Ok(Some((String::new(), String::new())))
    }
}
