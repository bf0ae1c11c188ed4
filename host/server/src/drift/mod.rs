//! The drift feature's server part: receives `ReportDrift` from agents, keeps the latest drift of
//! each object per agent and manifest project in memory, and serves it to the status API
//! (`GET /api/v1/agents/{name}/drift`). Secret values are masked here too, whatever an agent sent.

use crate::auth::agent_of;
use crate::context::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tether_rpc::drift::v1::drift_service_server::{DriftService, DriftServiceServer};
use tether_rpc::drift::v1::{ReportDriftRequest, ReportDriftResponse};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// Objects kept per agent and project; the oldest reports go first beyond it, so a cluster in
/// turmoil cannot grow the server's memory without bound.
pub const MAX_OBJECTS_PER_PROJECT: usize = 1000;
/// Shown instead of a Secret's values.
pub const MASK: &str = "\"***\"";
/// Longest value kept per field; longer ones are cut (the object is in the cluster, not here).
const MAX_VALUE_LEN: usize = 4096;

/// One object's latest drift as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftRecord {
    pub object: ObjectId,
    pub commit_id: String,
    pub verdict: String,
    pub action: String,
    pub fields: Vec<FieldRecord>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub contested_by: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detector_failure: String,
    pub reported_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectId {
    pub group: String,
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldRecord {
    pub path: String,
    pub desired: Option<String>,
    pub live: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub owner: String,
}

/// Agent → project → drift records, newest last.
type Records = BTreeMap<String, BTreeMap<String, Vec<DriftRecord>>>;

/// Every agent's drift reports.
#[derive(Debug)]
pub struct DriftLog {
    records: Mutex<Records>,
    changes: watch::Sender<u64>,
}

impl Default for DriftLog {
    fn default() -> Self {
        Self {
            records: Mutex::new(Records::new()),
            changes: watch::Sender::new(0),
        }
    }
}

impl DriftLog {
    /// Changes whenever a report arrives.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn record(&self, agent: &str, project: &str, record: DriftRecord) {
        {
            let mut all = self.lock();
            let list = all
                .entry(agent.to_owned())
                .or_default()
                .entry(project.to_owned())
                .or_default();
            list.retain(|r| r.object != record.object);
            list.push(record);
            if list.len() > MAX_OBJECTS_PER_PROJECT {
                let excess = list.len() - MAX_OBJECTS_PER_PROJECT;
                list.drain(..excess);
            }
        }
        self.changes.send_modify(|n| *n += 1);
    }

    /// One agent's records by project.
    pub fn of(&self, agent: &str) -> BTreeMap<String, Vec<DriftRecord>> {
        self.lock().get(agent).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        // Inserted and removed whole; a panic elsewhere cannot leave a record half-written.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct DriftApi {
    ctx: Arc<Context>,
}

impl DriftApi {
    pub fn server(ctx: Arc<Context>) -> DriftServiceServer<Self> {
        DriftServiceServer::new(Self { ctx })
    }
}

#[tonic::async_trait]
impl DriftService for DriftApi {
    async fn report_drift(
        &self,
        request: Request<ReportDriftRequest>,
    ) -> Result<Response<ReportDriftResponse>, Status> {
        let who = agent_of(&request)?;
        let r = request.into_inner();
        if r.project_id.is_empty() || r.kind.is_empty() || r.name.is_empty() {
            return Err(Status::invalid_argument(
                "a drift report needs project_id, kind and name",
            ));
        }
        let secret = r.group.is_empty() && r.kind == "Secret";
        let value = |v: Option<String>| v.map(|v| if secret { MASK.to_owned() } else { cut(v) });
        let record = DriftRecord {
            object: ObjectId {
                group: r.group,
                kind: r.kind,
                namespace: r.namespace,
                name: r.name,
            },
            commit_id: r.commit_id,
            verdict: r.verdict,
            action: r.action,
            fields: r
                .fields
                .into_iter()
                .map(|f| FieldRecord {
                    path: f.path,
                    desired: value(f.desired),
                    live: value(f.live),
                    owner: f.owner,
                })
                .collect(),
            contested_by: r.contested_by,
            detector_failure: r.detector_failure,
            reported_at: crate::store::now(),
        };
        tracing::info!(agent = %who.agent.name, project = %r.project_id, kind = %record.object.kind,
            name = %record.object.name, verdict = %record.verdict, action = %record.action, "drift reported");
        self.ctx
            .drift
            .record(&who.agent.name, &r.project_id, record);
        Ok(Response::new(ReportDriftResponse {}))
    }
}

fn cut(mut v: String) -> String {
    if v.len() > MAX_VALUE_LEN {
        let mut end = MAX_VALUE_LEN;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        v.truncate(end);
        v.push('…');
    }
    v
}

/// `GET /api/v1/agents/{name}/drift`: the agent's latest drift per project and object.
pub fn agent_drift_view(ctx: &Context, agent: &str) -> AgentDrift {
    AgentDrift {
        agent: agent.to_owned(),
        projects: ctx.drift.of(agent),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentDrift {
    pub agent: String,
    pub projects: BTreeMap<String, Vec<DriftRecord>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> DriftRecord {
        DriftRecord {
            object: ObjectId {
                group: String::new(),
                kind: "ConfigMap".into(),
                namespace: "apps".into(),
                name: name.into(),
            },
            commit_id: "c".into(),
            verdict: "drifted".into(),
            action: "reported".into(),
            fields: vec![],
            contested_by: String::new(),
            detector_failure: String::new(),
            reported_at: 0,
        }
    }

    #[test]
    fn the_latest_report_per_object_is_kept_within_the_bound() {
        let log = DriftLog::default();
        log.record("prod", "p", record("a"));
        let mut again = record("a");
        again.action = "corrected".into();
        log.record("prod", "p", again);
        assert_eq!(log.of("prod")["p"].len(), 1);
        assert_eq!(log.of("prod")["p"][0].action, "corrected");
        for i in 0..MAX_OBJECTS_PER_PROJECT + 5 {
            log.record("prod", "p", record(&format!("o{i}")));
        }
        assert_eq!(log.of("prod")["p"].len(), MAX_OBJECTS_PER_PROJECT);
        assert!(log.of("staging").is_empty());
    }
}
