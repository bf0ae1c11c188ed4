//! Leader election among an agent's replicas, through a Kubernetes Lease (as client-go's
//! leaderelection does): only the leader applies, the others stand by and take over when the
//! leader's lease lapses or is released.
//!
//! Whether a lease lapsed is judged on this replica's own monotonic clock, as client-go does: a
//! standby notes when it last saw the lease record change and takes over only once it has seen no
//! change for the lease duration. The holder's `renewTime` is never compared with the local wall
//! clock, so a holder whose clock runs ahead is not kept forever, and one whose clock runs behind
//! is not usurped while it renews. The leader itself stops leading when a renewal fails or does not
//! finish within two thirds of the lease (client-go's renew deadline), and gitops cancels a sync in
//! flight the moment it does.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
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
    /// The lease record as last read and when (local monotonic time) it last changed.
    observed: Option<(ObservedRecord, Instant)>,
}

/// What identifies one renewal of a lease: any change means its holder is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ObservedRecord {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    acquire_time: Option<Timestamp>,
    transitions: Option<i32>,
    duration_seconds: Option<i32>,
}

impl ObservedRecord {
    fn of(spec: &LeaseSpec) -> Self {
        Self {
            holder: spec.holder_identity.clone(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions,
            duration_seconds: spec.lease_duration_seconds,
        }
    }
}

impl LeaderElection {
    /// `identity` must differ between replicas: the pod name is the natural choice.
    pub fn new(leases: Api<Lease>, lease_name: &str, identity: &str) -> Self {
        Self {
            leases,
            lease_name: lease_name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: DEFAULT_LEASE_DURATION,
            observed: None,
        }
    }

    pub fn with_lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// Runs the election until `stop` is cancelled, then releases the lease if held. The receiver
    /// holds whether this replica leads right now.
    pub fn start(
        mut self,
        stop: CancellationToken,
    ) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Renew well within the lease so one slow request does not lose it.
            let retry = self.lease_duration / 3;
            // client-go's RenewDeadline (10 s of a 15 s lease): a renewal that hangs longer must
            // not leave this replica "leading" past its lease.
            let renew_deadline = self.lease_duration * 2 / 3;
            loop {
                let attempt = tokio::time::timeout(renew_deadline, self.attempt()).await;
                let leading = match attempt {
                    Ok(Ok(leading)) => leading,
                    Ok(Err(e)) => {
                        tracing::warn!(lease = %self.lease_name, "leader election: {e}");
                        // Unsure means not leading: never apply on a lease that may have lapsed.
                        false
                    }
                    Err(_) => {
                        tracing::warn!(lease = %self.lease_name, "leader election: no answer within {renew_deadline:?}");
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

    /// One round of the election: acquire the lease if it is free or lapsed (by this replica's
    /// observation), renew it if held; whether this replica holds it afterwards.
    pub async fn attempt(&mut self) -> Result<bool, kube::Error> {
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
        let observed_at = self.observe(spec);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.identity.as_str());
        if !ours && holder.is_some() && !lapsed(spec, observed_at, Instant::now()) {
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

impl LeaderElection {
    /// Records the lease as read; returns when (locally) its record last changed.
    fn observe(&mut self, spec: &LeaseSpec) -> Instant {
        let record = ObservedRecord::of(spec);
        match &self.observed {
            Some((seen, at)) if *seen == record => *at,
            _ => {
                let now = Instant::now();
                self.observed = Some((record, now));
                now
            }
        }
    }
}

/// Whether a lease unchanged since `observed_at` (local monotonic time) has lapsed at `now`:
/// client-go's `observedTime + leaseDuration < now`, never the holder's `renewTime`.
fn lapsed(spec: &LeaseSpec, observed_at: Instant, now: Instant) -> bool {
    let Some(seconds) = spec.lease_duration_seconds else {
        return true;
    };
    let duration = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    observed_at + duration < now
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    fn spec(renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some("other".into()),
            lease_duration_seconds: Some(10),
            renew_time: Some(MicroTime(renewed)),
            ..Default::default()
        }
    }

    #[test]
    fn expiry_follows_the_local_observation_not_the_holders_clock() {
        let now = Timestamp::now();
        let hour = SignedDuration::from_hours(1);
        let observed_at = Instant::now();
        let after = |seconds| observed_at + Duration::from_secs(seconds);
        // A renewTime an hour ahead (holder's clock fast) or behind (slow) says nothing: what
        // counts is how long this replica has seen the record unchanged.
        for renewed in [now + hour, now - hour, now] {
            let spec = spec(renewed);
            assert!(!lapsed(&spec, observed_at, observed_at), "{renewed}");
            assert!(!lapsed(&spec, observed_at, after(9)), "{renewed}");
            assert!(lapsed(&spec, observed_at, after(11)), "{renewed}");
        }
    }
}
