//! Leader election on the real API server: one replica leads, a standby takes over when the
//! leader releases its lease or stops renewing it, expiry is judged by this replica's own clock
//! whatever the holder's clock says, and a sync stops writing when leadership is lost mid-sync.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::json;
use tether_agent::gitops::{DesiredObject, InventoryId, SyncOptions, Synchronizer};
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

/// A lease held by `holder` whose clock reads `renewed` (skewed against this machine's).
async fn skewed_lease(
    leases: &Api<Lease>,
    holder: &str,
    renewed: Timestamp,
    seconds: i32,
) -> Result<()> {
    leases
        .create(
            &PostParams::default(),
            &Lease {
                metadata: ObjectMeta {
                    name: Some("agent".into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(holder.into()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(MicroTime(renewed)),
                    renew_time: Some(MicroTime(renewed)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            },
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_holder_whose_clock_runs_ahead_still_loses_a_lease_it_stopped_renewing() -> Result<()> {
    let ns = cluster().namespace("leader-ahead").await?;
    let leases = Api::<Lease>::namespaced(cluster().admin().await?, ns.name());
    // The holder wrote a renewTime an hour into our future, then died. Compared with the local
    // clock the lease would look valid for an hour; observed locally it lapses after 2 s.
    skewed_lease(
        &leases,
        "ahead",
        Timestamp::now() + SignedDuration::from_hours(1),
        2,
    )
    .await?;
    let stop = CancellationToken::new();
    let (mut rx, task) = LeaderElection::new(leases.clone(), "agent", "standby")
        .with_lease_duration(Duration::from_secs(2))
        .start(stop.clone());
    until_leading(&mut rx).await?;
    assert_eq!(holder(&leases).await?.as_deref(), Some("standby"));
    stop.cancel();
    task.await?;
    Ok(())
}

#[tokio::test]
async fn a_holder_whose_clock_runs_behind_is_not_usurped_while_it_renews() -> Result<()> {
    let ns = cluster().namespace("leader-behind").await?;
    let leases = Api::<Lease>::namespaced(cluster().admin().await?, ns.name());
    // Alive, renewing, but its clock is an hour slow: every renewTime looks long expired here.
    let behind = Timestamp::now() - SignedDuration::from_hours(1);
    skewed_lease(&leases, "behind", behind, 15).await?;
    let mut standby = LeaderElection::new(leases.clone(), "agent", "standby");
    assert!(
        !standby.attempt().await?,
        "first sight of a lease is no lapse"
    );
    for renewal in 1..=3 {
        let mut lease = leases.get("agent").await?;
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.renew_time = Some(MicroTime(behind + SignedDuration::from_secs(renewal)));
        leases
            .replace("agent", &PostParams::default(), &lease)
            .await?;
        assert!(!standby.attempt().await?, "renewal {renewal}");
        assert_eq!(holder(&leases).await?.as_deref(), Some("behind"));
    }
    Ok(())
}

fn stuck_deployment() -> Result<DesiredObject> {
    // No node matches its selector: it never becomes available, so the sync waits for its
    // health (up to reconcile_timeout) before it would prune.
    DesiredObject::from_json(
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "stuck"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "stuck"}},
                "template": {
                    "metadata": {"labels": {"app": "stuck"}},
                    "spec": {
                        "nodeSelector": {"no-such": "node"},
                        "containers": [{"name": "c", "image": "registry.invalid/c:1"}]
                    }
                }
            }
        }),
        "stuck.yaml:1",
    )
    .map_err(anyhow::Error::msg)
}

#[tokio::test]
async fn losing_the_lease_mid_sync_stops_the_sync_before_it_prunes() -> Result<()> {
    let ns = cluster().namespace("leader-midsync").await?;
    let client = cluster().admin().await?;
    let leases = Api::<Lease>::namespaced(client.clone(), ns.name());
    let stop = CancellationToken::new();
    let (mut leading, task) = LeaderElection::new(leases.clone(), "agent", "replica-a")
        .with_lease_duration(Duration::from_secs(3))
        .start(stop.clone());
    until_leading(&mut leading).await?;

    let mut options = SyncOptions::new(InventoryId::new("agent", "app"), ns.name());
    options.default_namespace = ns.name().to_owned();
    options.reconcile_timeout = Duration::from_secs(600);
    let sync = Synchronizer::new(client.clone(), options);
    let old = DesiredObject::from_json(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old"}}),
        "old.yaml:1",
    )
    .map_err(anyhow::Error::msg)?;
    assert!(sync.sync(vec![old]).await.is_success());

    // The next commit replaces `old` by a Deployment that never gets healthy; while the sync
    // waits for it, another replica takes the lease.
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns.name());
    let steal = async {
        tokio::time::timeout(
            DEADLINE,
            await_condition(deployments.clone(), "stuck", |d: Option<&Deployment>| {
                d.is_some()
            }),
        )
        .await??;
        loop {
            let mut lease = leases.get("agent").await?;
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.holder_identity = Some("replica-b".into());
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            spec.lease_duration_seconds = Some(600);
            match leases
                .replace("agent", &PostParams::default(), &lease)
                .await
            {
                Ok(_) => return anyhow::Ok(()),
                // Raced with replica-a's renewal: read again.
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let stuck = stuck_deployment()?;
    let (synced, stolen) = tokio::time::timeout(DEADLINE, async {
        tokio::join!(sync.sync_while_leading(vec![stuck], leading.clone()), steal)
    })
    .await
    .map_err(|_| anyhow::anyhow!("the sync went on after the lease was lost"))?;
    stolen?;
    assert!(synced.is_none(), "interrupted, not finished: {synced:?}");
    assert!(!*leading.borrow());
    let config_maps = Api::<ConfigMap>::namespaced(client, ns.name());
    assert!(
        config_maps.get_opt("old").await?.is_some(),
        "not pruned by a replica that lost the lease"
    );
    stop.cancel();
    task.await?;
    Ok(())
}
