//! Leader election on the real API server: one replica leads, a standby takes over when the
//! leader releases its lease or stops renewing it.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tether_agent::leader::LeaderElection;
use tether_testkit::cluster;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A deadline for a leadership change; the wait ends as soon as the change is seen.
const DEADLINE: Duration = Duration::from_secs(30);

async fn until_leading(rx: &mut watch::Receiver<bool>) -> Result<()> {
    tokio::time::timeout(DEADLINE, rx.wait_for(|leading| *leading)).await??;
    Ok(())
}

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get("agent")
        .await?
        .spec
        .and_then(|s| s.holder_identity))
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_releases_its_lease() -> Result<()> {
    let ns = cluster().namespace("leader").await?;
    let leases = Api::<Lease>::namespaced(cluster().admin().await?, ns.name());
    let elect = |id: &str| {
        LeaderElection::new(leases.clone(), "agent", id).with_lease_duration(Duration::from_secs(3))
    };

    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let (mut a, task_a) = elect("replica-a").start(stop_a.clone());
    until_leading(&mut a).await?;
    let (mut b, task_b) = elect("replica-b").start(stop_b.clone());
    assert_eq!(holder(&leases).await?.as_deref(), Some("replica-a"));

    stop_a.cancel();
    task_a.await?;
    assert!(!*a.borrow(), "a stopped replica does not lead");
    until_leading(&mut b).await?;
    assert_eq!(holder(&leases).await?.as_deref(), Some("replica-b"));

    stop_b.cancel();
    task_b.await?;
    assert_eq!(holder(&leases).await?, None, "released on shutdown");
    Ok(())
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_stops_renewing() -> Result<()> {
    let ns = cluster().namespace("leader-lapse").await?;
    let leases = Api::<Lease>::namespaced(cluster().admin().await?, ns.name());
    let elect = |id: &str| {
        LeaderElection::new(leases.clone(), "agent", id).with_lease_duration(Duration::from_secs(2))
    };
    let (mut a, task_a) = elect("replica-a").start(CancellationToken::new());
    until_leading(&mut a).await?;
    let stop_b = CancellationToken::new();
    let (mut b, task_b) = elect("replica-b").start(stop_b.clone());

    // A crashed leader releases nothing: the standby waits for the lease to lapse.
    task_a.abort();
    let _ = task_a.await;
    until_leading(&mut b).await?;
    let lease = leases.get("agent").await?.spec.unwrap_or_default();
    assert_eq!(lease.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(lease.lease_transitions, Some(1));
    stop_b.cancel();
    task_b.await?;
    Ok(())
}
