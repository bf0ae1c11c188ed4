//! The discovery feature's server part: receives `ReportFeatures` from agents, keeps the latest per
//! agent in memory, and shows it at `GET /api/v1/agents/{name}/features`.

use crate::auth::agent_of;
use crate::context::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tether_rpc::discovery::v1::discovery_service_server::{
    DiscoveryService, DiscoveryServiceServer,
};
use tether_rpc::discovery::v1::{ReportFeaturesRequest, ReportFeaturesResponse};
use tonic::{Request, Response, Status};

/// Bounds of one report: a cluster has tens of features and at most a few hundred CRD groups; a
/// report far beyond is refused rather than kept.
pub const MAX_FEATURES: usize = 256;
pub const MAX_CRD_GROUPS: usize = 4096;
const MAX_TEXT: usize = 512;

/// One agent's latest report, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentFeatures {
    pub agent: String,
    pub features: Vec<FeatureRecord>,
    pub crd_groups: Vec<String>,
    /// Unix seconds of the report; `None`: the agent has not reported since the server started.
    pub reported_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeatureRecord {
    pub name: String,
    pub category: String,
    pub evidence: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// One agent's report: features, CRD groups, when.
type Report = (Vec<FeatureRecord>, Vec<String>, i64);

/// Every agent's latest report.
#[derive(Debug, Default)]
pub struct FeatureLog {
    by_agent: Mutex<BTreeMap<String, Report>>,
}

impl FeatureLog {
    pub fn record(&self, agent: &str, features: Vec<FeatureRecord>, crd_groups: Vec<String>) {
        self.lock().insert(
            agent.to_owned(),
            (features, crd_groups, crate::store::now()),
        );
    }

    pub fn of(&self, agent: &str) -> AgentFeatures {
        let found = self.lock().get(agent).cloned();
        let (features, crd_groups, reported_at) = match found {
            Some((f, g, at)) => (f, g, Some(at)),
            None => (Vec::new(), Vec::new(), None),
        };
        AgentFeatures {
            agent: agent.to_owned(),
            features,
            crd_groups,
            reported_at,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Report>> {
        self.by_agent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Debug, Clone)]
pub struct DiscoveryApi {
    ctx: Arc<Context>,
}

impl DiscoveryApi {
    pub fn server(ctx: Arc<Context>) -> DiscoveryServiceServer<Self> {
        DiscoveryServiceServer::new(Self { ctx })
    }
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[tonic::async_trait]
impl DiscoveryService for DiscoveryApi {
    async fn report_features(
        &self,
        request: Request<ReportFeaturesRequest>,
    ) -> Result<Response<ReportFeaturesResponse>, Status> {
        let who = agent_of(&request)?;
        let report = request.into_inner();
        if report.features.len() > MAX_FEATURES || report.crd_groups.len() > MAX_CRD_GROUPS {
            return Err(Status::invalid_argument(format!(
                "a features report holds at most {MAX_FEATURES} features and {MAX_CRD_GROUPS} CRD groups"
            )));
        }
        let features = report
            .features
            .into_iter()
            .map(|f| FeatureRecord {
                name: cut(f.name),
                category: cut(f.category),
                evidence: f.evidence.into_iter().take(MAX_FEATURES).map(cut).collect(),
                url: cut(f.url),
            })
            .collect::<Vec<_>>();
        tracing::info!(agent = %who.agent.name, features = features.len(), "features reported");
        self.ctx.features.record(
            &who.agent.name,
            features,
            report.crd_groups.into_iter().map(cut).collect(),
        );
        Ok(Response::new(ReportFeaturesResponse {}))
    }
}
