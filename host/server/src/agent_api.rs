//! The agent feature's server part: registration with metadata, heartbeats and status reports, kept in
//! the in-memory [`Registry`](crate::registry::Registry) for the HTTP API and metrics.

use crate::auth::agent_of;
use crate::context::Context;
use crate::registry::{self, HEARTBEAT_INTERVAL};
use std::sync::Arc;
use tether_rpc::agent::v1::agent_service_server::{AgentService, AgentServiceServer};
use tether_rpc::agent::v1::{
    ConfigurationReport, ConfigurationReportResponse, HeartbeatRequest, HeartbeatResponse,
    RegisterRequest, RegisterResponse, StatusReport, StatusReportResponse, SyncResult,
};
use tonic::{Request, Response, Status};

/// Status reports carry at most this many per-object errors per project; more are summarised.
const MAX_OBJECT_ERRORS: usize = 100;

#[derive(Debug, Clone)]
pub struct AgentApi {
    ctx: Arc<Context>,
}

impl AgentApi {
    pub fn server(ctx: Arc<Context>) -> AgentServiceServer<Self> {
        AgentServiceServer::new(Self { ctx })
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let who = agent_of(&request)?;
        let meta = request.into_inner().meta.unwrap_or_default();
        self.ctx.registry.register(
            &who.agent.name,
            registry::AgentMeta {
                version: meta.version,
                git_commit: meta.git_commit,
                pod_namespace: meta.pod_namespace,
                pod_name: meta.pod_name,
                kubernetes_version: meta.kubernetes_version,
            },
            crate::store::now(),
        );
        tracing::info!(agent = %who.agent.name, "agent registered");
        Ok(Response::new(RegisterResponse {
            agent_name: who.agent.name,
            heartbeat_interval_seconds: u32::try_from(HEARTBEAT_INTERVAL.as_secs())
                .unwrap_or(u32::MAX),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let who = agent_of(&request)?;
        let registered = self
            .ctx
            .registry
            .heartbeat(&who.agent.name, crate::store::now());
        Ok(Response::new(HeartbeatResponse { registered }))
    }

    async fn report_configuration(
        &self,
        request: Request<ConfigurationReport>,
    ) -> Result<Response<ConfigurationReportResponse>, Status> {
        let who = agent_of(&request)?;
        let report = request.into_inner();
        let error = (!report.error.is_empty()).then_some(report.error);
        if let Some(error) = &error {
            tracing::warn!(agent = %who.agent.name, commit = %report.commit_id, "the agent refused its configuration: {error}");
        }
        self.ctx.registry.configuration_reported(
            &who.agent.name,
            report.commit_id,
            error,
            report.warnings,
        );
        Ok(Response::new(ConfigurationReportResponse {}))
    }

    async fn report_status(
        &self,
        request: Request<StatusReport>,
    ) -> Result<Response<StatusReportResponse>, Status> {
        let who = agent_of(&request)?;
        let now = crate::store::now();
        let statuses = request
            .into_inner()
            .projects
            .into_iter()
            .map(|p| {
                let result = match SyncResult::try_from(p.result).unwrap_or(SyncResult::Unspecified)
                {
                    SyncResult::Unspecified => "unknown",
                    SyncResult::Succeeded => "succeeded",
                    SyncResult::Failed => "failed",
                    SyncResult::InProgress => "in_progress",
                };
                let mut message = p.message;
                if p.errors.len() > MAX_OBJECT_ERRORS {
                    message = format!(
                        "{message} ({} object errors, first {MAX_OBJECT_ERRORS} kept)",
                        p.errors.len()
                    );
                }
                registry::ProjectStatus {
                    project_id: p.project_id,
                    commit_id: p.commit_id,
                    result,
                    message,
                    errors: p
                        .errors
                        .into_iter()
                        .take(MAX_OBJECT_ERRORS)
                        .map(|e| registry::ObjectError {
                            group: e.group,
                            kind: e.kind,
                            namespace: e.namespace,
                            name: e.name,
                            message: e.message,
                        })
                        .collect(),
                    applied: p.applied,
                    unchanged: p.unchanged,
                    pruned: p.pruned,
                    duration_ms: p.duration_ms,
                    reported_at: now,
                }
            })
            .collect();
        self.ctx.registry.report(&who.agent.name, statuses, now);
        Ok(Response::new(StatusReportResponse {}))
    }
}
