//! Leader election among an agent's replicas, through a Kubernetes Lease (as client-go's
//! leaderelection does): only the leader applies, the others stand by and take over when the
//! leader's lease lapses or is released.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a lease is valid without renewal (client-go's default).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// One replica's candidacy for one lease.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    leases: Api<Lease>,
    lease_name: String,
    identity: String,
    lease_duration: Duration,
}

impl LeaderElection {
    /// `identity` must differ between replicas: the pod name is the natural choice.
    pub fn new(leases: Api<Lease>, lease_name: &str, identity: &str) -> Self {
        Self {
            leases,
            lease_name: lease_name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: DEFAULT_LEASE_DURATION,
        }
    }

    pub fn with_lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// Runs the election until `stop` is cancelled, then releases the lease if held. The receiver
    /// holds whether this replica leads right now.
    pub fn start(
        self,
        stop: CancellationToken,
    ) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Renew well within the lease so one slow request does not lose it.
            let retry = self.lease_duration / 3;
            loop {
                let leading = match self.try_acquire_or_renew().await {
                    Ok(leading) => leading,
                    Err(e) => {
                        tracing::warn!(lease = %self.lease_name, "leader election: {e}");
                        // Unsure means not leading: never apply on a lease that may have lapsed.
                        false
                    }
                };
                tx.send_if_modified(|l| std::mem::replace(l, leading) != leading);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(retry) => {}
                }
            }
            if *tx.borrow() {
                tx.send_replace(false);
                if let Err(e) = self.release().await {
                    tracing::warn!(lease = %self.lease_name, "release the lease: {e}");
                }
            }
        });
        (rx, task)
    }

    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let duration_secs = i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.leases.get_opt(&self.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.lease_name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                // Another replica created it first.
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.identity.as_str());
        if !ours && holder.is_some() && !expired(spec, now) {
            return Ok(false);
        }
        if !ours {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(duration_secs);
        // Replace carries the resourceVersion read above: of two replicas racing for a lapsed
        // lease, only one update succeeds.
        match self
            .leases
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Hands the lease back so a standby takes over at once instead of after the lease lapses.
    async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.leases.get_opt(&self.lease_name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        self.leases
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await
            .map(drop)
    }
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let (Some(renewed), Some(duration)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    let deadline = renewed.0 + jiff_seconds(duration);
    deadline < now
}

fn jiff_seconds(seconds: i32) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::from_secs(i64::from(seconds))
}
