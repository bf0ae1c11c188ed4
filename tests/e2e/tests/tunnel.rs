//! The reverse tunnel end to end: the real kubectl (built with the local control plane), with a
//! kubeconfig written by the real `tether kubeconfig`, talks to the agent's cluster through
//! tether-server's people's listener (HTTPS), the server's tunnel broker and the agent's pool of Tunnel
//! streams — and hostile or unlucky callers get the answers they should, within bounds.
//!
//! Few tests, each with several checks on one setup: every setup starts a server and agents.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use tether_e2e::tunnel::{
    DEADLINE, Setup, config_map, grant_config_maps, kubectl, kubectl_input, kubectl_ok, localkube,
};
use tether_testkit::cluster;
use tether_testkit::cluster::client_from_kubeconfig;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const IMPERSONATE_ALICE: &str =
    "user_access:\n  access_as: {user: {}}\n  users: [alice]\n  groups: [sre]\n";

const TWO_CONFIG_MAPS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: web, labels: {tier: web}}
data: {value: one}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: db, labels: {tier: db}}
data: {value: two}
";

/// Reads `lines` until one satisfies `want`; what was read on the way.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    want: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await? {
            let done = want(&line);
            seen.push(line);
            if done {
                return Ok(());
            }
        }
        bail!("the output ended")
    })
    .await
    .with_context(|| format!("not seen within {DEADLINE:?}"))??;
    Ok(seen)
}

fn spawn_kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> Result<tokio::process::Child> {
    Ok(tokio::process::Command::new(localkube()?)
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_through_the_tunnel() -> Result<()> {
    let setup = Setup::start(&[("prod", IMPERSONATE_ALICE)]).await?;
    let agent = setup.agent("prod").await?;
    let ns = setup.ns.name().to_owned();
    grant_config_maps(&ns, "alice").await?;
    let (_, token) = setup.person("alice", &[], None)?;
    let kubeconfig = setup.kubeconfig("prod", &token).await?;

    // Server-side apply, get, and a list by label selector.
    let applied = kubectl_input(
        &kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(TWO_CONFIG_MAPS),
    )
    .await?;
    ensure!(applied.0, "apply failed: {}", applied.2);
    assert_eq!(
        applied.1,
        "configmap/web serverside-applied\nconfigmap/db serverside-applied\n"
    );
    let value = kubectl_ok(
        &kubeconfig,
        &["get", "configmap", "web", "-o", "jsonpath={.data.value}"],
    )
    .await?;
    assert_eq!(value, "one");
    let managers = kubectl_ok(
        &kubeconfig,
        &[
            "get",
            "configmap",
            "web",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    )
    .await?;
    assert_eq!(managers, "kubectl", "server-side apply recorded kubectl");
    let selected = kubectl_ok(
        &kubeconfig,
        &["get", "configmaps", "-l", "tier=web", "-o", "name"],
    )
    .await?;
    assert_eq!(selected, "configmap/web\n");
    let selected = kubectl_ok(
        &kubeconfig,
        &["get", "configmaps", "-l", "tier in (web,db)", "-o", "name"],
    )
    .await?;
    assert_eq!(selected, "configmap/db\nconfigmap/web\n");

    // A watch streams: an object created after it started arrives as an event.
    let mut watch = spawn_kubectl(&kubeconfig, &["get", "configmaps", "-w", "-o", "name"])?;
    let mut lines = BufReader::new(watch.stdout.take().context("stdout")?).lines();
    read_until(&mut lines, |l| l == "configmap/web").await?;
    kubectl_ok(
        &kubeconfig,
        &["create", "configmap", "late", "--from-literal=a=b"],
    )
    .await?;
    read_until(&mut lines, |l| l == "configmap/late").await?;
    kubectl_ok(&kubeconfig, &["delete", "configmap", "late"]).await?;
    watch.kill().await?;

    // Delete, and the API server's NotFound as kubectl shows it.
    let deleted = kubectl_ok(&kubeconfig, &["delete", "configmap", "db"]).await?;
    assert!(deleted.starts_with("configmap \"db\" deleted"), "{deleted}");
    let (ok, _, err) = kubectl(&kubeconfig, &["get", "configmap", "db"]).await?;
    assert!(!ok);
    assert!(
        err.contains("Error from server (NotFound): configmaps \"db\" not found"),
        "{err}"
    );

    // Discovery and OpenAPI v3.
    let resources = kubectl_ok(&kubeconfig, &["api-resources", "--api-group="]).await?;
    assert!(
        resources
            .lines()
            .any(|l| l.starts_with("configmaps ") && l.contains("ConfigMap")),
        "{resources}"
    );
    let explained = kubectl_ok(&kubeconfig, &["explain", "configmap.data"]).await?;
    assert!(explained.contains("FIELD: data"), "{explained}");
    assert!(explained.contains("<map[string]string>"), "{explained}");

    // The cluster's RBAC decides: alice may not read Secrets, and kubectl says so as usual.
    let (ok, _, err) = kubectl(&kubeconfig, &["get", "secrets"]).await?;
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "Error from server (Forbidden): secrets is forbidden: User \"tether:user:alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{ns}\""
        )),
        "{err}"
    );
    agent.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_people_with_live_tokens_get_through_and_as_themselves() -> Result<()> {
    let setup = Setup::start(&[
        ("prod", IMPERSONATE_ALICE),
        ("staging", ""),
        ("absent", IMPERSONATE_ALICE),
    ])
    .await?;
    let agent = setup.agent("prod").await?;
    let ns = setup.ns.name().to_owned();
    grant_config_maps(&ns, "alice").await?;
    let forbidden = |err: &str, why: &str| {
        assert!(err.contains("Error from server (Forbidden)"), "{err}");
        assert!(err.contains(why), "{why} not in: {err}");
    };

    // Not granted by user_access: 403 naming the grant.
    let (_, bob) = setup.person("bob", &["dev"], None)?;
    let (ok, _, err) = kubectl(
        &setup.kubeconfig("prod", &bob).await?,
        &["get", "configmaps"],
    )
    .await?;
    assert!(!ok);
    forbidden(
        &err,
        "user `bob` (groups [\"dev\"]) is not granted agent `prod`",
    );
    // Granted through a group: the proxy lets carol through, the cluster's RBAC decides.
    let (_, carol) = setup.person("carol", &["sre"], None)?;
    let (ok, _, err) = kubectl(
        &setup.kubeconfig("prod", &carol).await?,
        &["get", "configmaps"],
    )
    .await?;
    assert!(!ok);
    forbidden(&err, "User \"tether:user:carol\" cannot list resource");
    // A token limited to another agent, and an agent whose configuration grants nobody.
    let (_, staging_only) = setup.person("alice", &[], Some("staging"))?;
    let (ok, _, err) = kubectl(
        &setup.kubeconfig("prod", &staging_only).await?,
        &["get", "configmaps"],
    )
    .await?;
    assert!(!ok);
    forbidden(
        &err,
        "of user `alice` is for agent `staging` only, not `prod`",
    );
    let (_, alice) = setup.person("alice", &[], None)?;
    let (ok, _, err) = kubectl(
        &setup.kubeconfig("staging", &alice).await?,
        &["get", "configmaps"],
    )
    .await?;
    assert!(!ok);
    forbidden(
        &err,
        "agent `staging` grants nobody: its configuration has no user_access",
    );

    // The caller's impersonation is stripped: as system:masters listing Secrets of kube-system would
    // succeed; alice stays tether:user:alice.
    let alice_config = setup.kubeconfig("prod", &alice).await?;
    kubectl_ok(&alice_config, &["get", "configmaps"]).await?;
    let (ok, _, err) = kubectl(
        &alice_config,
        &[
            "--as",
            "system:admin",
            "--as-group",
            "system:masters",
            "get",
            "secrets",
            "-n",
            "kube-system",
        ],
    )
    .await?;
    assert!(!ok);
    forbidden(
        &err,
        "User \"tether:user:alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"kube-system\"",
    );
    let path = "/k8s-proxy/agents/prod/api/v1/namespaces/kube-system/secrets";
    let bearer = format!("Bearer {alice}");
    let (status, text) = setup
        .request(
            "GET",
            path,
            &[
                ("Authorization", bearer.as_str()),
                ("Impersonate-User", "system:admin"),
                ("Impersonate-Group", "system:masters"),
                ("X-Remote-User", "system:admin"),
                ("X-Remote-Group", "system:masters"),
            ],
            b"",
        )
        .await?;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("tether:user:alice"), "{text}");

    // A revoked token is refused on the very next request.
    let (id, revoked) = setup.person("alice", &[], None)?;
    let revoked_config = setup.kubeconfig("prod", &revoked).await?;
    kubectl_ok(&revoked_config, &["get", "configmaps"]).await?;
    setup.users.revoke_token(id, tether_server::store::now())?;
    let (ok, _, err) = kubectl(&revoked_config, &["get", "configmaps"]).await?;
    assert!(!ok);
    assert!(
        err.contains("error: You must be logged in to the server"),
        "{err}"
    );
    // An expired one too: a token that expires in two seconds works, then no longer.
    let expires_at = tether_server::store::now() + 2;
    let (_, expiring) = setup.person_until("alice", &[], None, expires_at)?;
    let bearer = format!("Bearer {expiring}");
    let auth = [("Authorization", bearer.as_str())];
    let namespaces = format!("/k8s-proxy/agents/prod/api/v1/namespaces/{ns}/configmaps");
    let (status, text) = setup.request("GET", &namespaces, &auth, b"").await?;
    assert_eq!(status, 200, "{text}");
    let mut every = tokio::time::interval(Duration::from_millis(50));
    let refused = tokio::time::timeout(DEADLINE, async {
        loop {
            every.tick().await;
            let (status, text) = setup.request("GET", &namespaces, &auth, b"").await?;
            if status != 200 {
                return anyhow::Ok((status, text, tether_server::store::now()));
            }
        }
    })
    .await??;
    assert_eq!(refused.0, 401, "{}", refused.1);
    assert!(
        refused.2 <= expires_at + 1,
        "refused only at {}, expired at {expires_at}",
        refused.2
    );

    // An agent granted but not connected: 503 after the bounded wait, saying so.
    let start = Instant::now();
    let (status, text) = setup
        .request(
            "GET",
            "/k8s-proxy/agents/absent/api/v1/namespaces",
            &[("Authorization", format!("Bearer {alice}").as_str())],
            b"",
        )
        .await?;
    let waited = start.elapsed();
    assert_eq!(status, 503, "{text}");
    assert!(
        text.contains("agent `absent` is not connected (no tunnel within 5s)"),
        "{text}"
    );
    let wait = tether_server::users::proxy::TUNNEL_WAIT;
    assert!(
        waited >= wait && waited < wait + Duration::from_secs(5),
        "answered after {waited:?}"
    );
    agent.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}

/// Resident memory of this process (the server and the agents run in it).
fn resident_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .context("no VmRSS")?
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_slow_and_many_callers_stay_within_bounds() -> Result<()> {
    let setup =
        Setup::start(&[("prod", IMPERSONATE_ALICE), ("staging", IMPERSONATE_ALICE)]).await?;
    let prod = setup.agent("prod").await?;
    let staging = setup.agent("staging").await?;
    let ns = setup.ns.name().to_owned();
    grant_config_maps(&ns, "alice").await?;
    let (_, token) = setup.person("alice", &[], None)?;
    let bearer = format!("Bearer {token}");
    let auth = ("Authorization", bearer.as_str());
    let configmaps = format!("/k8s-proxy/agents/prod/api/v1/namespaces/{ns}/configmaps");

    // Oversized headers: hyper's bound, 431.
    let huge = "x".repeat(512 * 1024);
    let (status, text) = setup
        .request("GET", &configmaps, &[auth, ("X-Huge", huge.as_str())], b"")
        .await?;
    assert_eq!(status, 431, "{text:.300}");
    // An oversized body announced by its length: 413 before any of it is read.
    let (status, text) = setup
        .request(
            "POST",
            &configmaps,
            &[auth, ("Content-Length", "9437184")],
            b"",
        )
        .await?;
    assert_eq!(status, 413, "{text}");
    // One sent in chunks without a length: refused once it passes the limit.
    let mut stream = setup.connect().await?;
    stream
        .write_all(
            format!(
                "POST {configmaps} HTTP/1.1\r\nHost: x\r\n{}: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                auth.0, auth.1
            )
            .as_bytes(),
        )
        .await?;
    let (mut read, mut write) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..200 {
            let head = format!("{:x}\r\n", chunk.len());
            if write.write_all(head.as_bytes()).await.is_err()
                || write.write_all(&chunk).await.is_err()
                || write.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, read.read_to_end(&mut answer)).await?;
    writer.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.300}");
    assert!(
        answer.contains("over the limit of 8388608 bytes"),
        "{answer}"
    );

    // A slow client holding a watch: what the cluster sends waits in bounded buffers (the agent
    // stops reading the API server), and other requests go on meanwhile.
    let watch_path = format!("{configmaps}?watch=true&labelSelector=size%3Dbig");
    let mut slow = setup.connect().await?;
    slow.write_all(
        format!(
            "GET {watch_path} HTTP/1.1\r\nHost: x\r\n{}: {}\r\n\r\n",
            auth.0, auth.1
        )
        .as_bytes(),
    )
    .await?;
    let mut first = [0u8; 12];
    tokio::time::timeout(DEADLINE, slow.read_exact(&mut first)).await??;
    assert_eq!(&first, b"HTTP/1.1 200");
    // The fast watcher is kubectl, in its own process: only the server's and the agents' memory
    // is this process's.
    let prod_config = setup.kubeconfig("prod", &token).await?;
    let mut fast = spawn_kubectl(
        &prod_config,
        &["get", "configmaps", "-l", "size=big", "-w", "-o", "name"],
    )?;
    let mut fast_lines = BufReader::new(fast.stdout.take().context("stdout")?).lines();
    let admin = Api::<ConfigMap>::namespaced(cluster().admin().await?, &ns);
    admin
        .create(
            &PostParams::default(),
            &config_map("big-start", &[("size", "big")]),
        )
        .await?;
    read_until(&mut fast_lines, |l| l == "configmap/big-start").await?;
    let before = resident_bytes()?;
    const BIG: usize = 48;
    let megabyte = "m".repeat(1024 * 1024 - 1024);
    for i in 0..BIG {
        let mut cm = config_map(&format!("big-{i:02}"), &[("size", "big")]);
        cm.data = Some([("blob".to_owned(), megabyte.clone())].into());
        admin.create(&PostParams::default(), &cm).await?;
    }
    // Every event has passed through the agent: the fast watcher has them all.
    let last = format!("configmap/big-{:02}", BIG - 1);
    read_until(&mut fast_lines, |l| l == last).await?;
    let grown = resident_bytes()?.saturating_sub(before);
    assert!(
        grown < 24 * 1024 * 1024,
        "{BIG} MiB went to a client that reads nothing, and memory grew by {} MiB",
        grown / (1024 * 1024)
    );
    let quick = Instant::now();
    kubectl_ok(&prod_config, &["get", "configmap", "big-00", "-o", "name"]).await?;
    assert!(
        quick.elapsed() < Duration::from_secs(10),
        "{:?}",
        quick.elapsed()
    );
    fast.kill().await?;
    drop(slow);
    admin
        .delete_collection(
            &kube::api::DeleteParams::default(),
            &kube::api::ListParams::default().labels("size=big"),
        )
        .await?;

    // A thousand requests at once to one agent: each answered by the cluster or refused with a
    // Status, the agent's pool within its maximum, and the other agent as quick as ever.
    let max_total = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampler = {
        let (mut busy, stats, max_total) = (
            prod.tunnel_pool.busy(),
            prod.tunnel_pool.clone(),
            max_total.clone(),
        );
        tokio::spawn(async move {
            while busy.changed().await.is_ok() {
                max_total.fetch_max(stats.total(), std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    admin
        .create(&PostParams::default(), &config_map("small", &[]))
        .await?;
    let tunnelled = client_from_kubeconfig(&prod_config).await?;
    let fast_api = Api::<ConfigMap>::namespaced(tunnelled.clone(), &ns);
    let flood = (0..1000).map(|_| {
        let api = fast_api.clone();
        async move { api.get("small").await }
    });
    let flood = tokio::spawn(futures::future::join_all(flood));
    let mut busy = prod.tunnel_pool.busy();
    tokio::time::timeout(DEADLINE, busy.wait_for(|n| *n >= 50))
        .await
        .context("the flood never reached the agent")??;
    let staging_config = setup.kubeconfig("staging", &token).await?;
    let other = Instant::now();
    kubectl_ok(
        &staging_config,
        &["get", "configmap", "small", "-o", "name"],
    )
    .await?;
    let other = other.elapsed();
    let results = tokio::time::timeout(DEADLINE, flood).await??;
    let (mut answered, mut refused) = (0, 0);
    for result in results {
        match result {
            Ok(_) => answered += 1,
            // Ours (503, no stream within the wait) or the API server's own limit (429).
            Err(kube::Error::Api(status)) if matches!(status.code, 429 | 503) => refused += 1,
            Err(e) => bail!("a request of the flood failed uncleanly: {e}"),
        }
    }
    assert_eq!(answered + refused, 1000);
    assert!(answered >= 100, "only {answered} of 1000 answered");
    assert!(
        prod.tunnel_pool.total() <= tether_agent::tunnel::MAX_STREAMS,
        "{}",
        prod.tunnel_pool.total()
    );
    assert!(
        other < Duration::from_secs(5),
        "the other agent took {other:?} during the flood"
    );

    // A person leaving mid-watch cancels the agent's call and frees its stream.
    let mut busy = prod.tunnel_pool.busy();
    tokio::time::timeout(DEADLINE, busy.wait_for(|n| *n == 0)).await??;
    let mut leaving = setup.connect().await?;
    leaving
        .write_all(
            format!(
                "GET {configmaps}?watch=true HTTP/1.1\r\nHost: x\r\n{}: {}\r\n\r\n",
                auth.0, auth.1
            )
            .as_bytes(),
        )
        .await?;
    tokio::time::timeout(DEADLINE, leaving.read_exact(&mut first)).await??;
    assert_eq!(&first, b"HTTP/1.1 200");
    assert_eq!(*busy.borrow(), 1, "the watch holds one stream of the pool");
    drop(leaving);
    tokio::time::timeout(DEADLINE, busy.wait_for(|n| *n == 0))
        .await
        .context("the agent's call was not cancelled")??;

    // The agent going away mid-watch ends the person's stream as an API server ends a watch:
    // the chunked body is terminated, and kubectl's watch stops instead of hanging.
    let mut raw_watch = setup.connect().await?;
    raw_watch
        .write_all(
            format!(
                "GET {configmaps}?watch=true HTTP/1.1\r\nHost: x\r\n{}: {}\r\nConnection: close\r\n\r\n",
                auth.0, auth.1
            )
            .as_bytes(),
        )
        .await?;
    let mut kubectl_watch =
        spawn_kubectl(&prod_config, &["get", "configmaps", "-w", "-o", "name"])?;
    let mut lines = BufReader::new(kubectl_watch.stdout.take().context("stdout")?).lines();
    read_until(&mut lines, |l| l == "configmap/small").await?;
    tokio::time::timeout(DEADLINE, busy.wait_for(|n| *n == 2)).await??;
    prod.shutdown().await;
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(DEADLINE, raw_watch.read_to_end(&mut rest))
        .await
        .context("the watch did not end with the agent")?;
    // Without TLS close_notify the end of the body is what counts.
    if rest.is_empty() {
        ended?;
    }
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest:.300}");
    assert!(
        rest.ends_with("\r\n0\r\n\r\n"),
        "not a complete chunked body: {rest}"
    );
    tokio::time::timeout(DEADLINE, kubectl_watch.wait())
        .await
        .context("kubectl get -w did not stop with the agent")??;
    drop(tunnelled);
    sampler.abort();
    let max_total = max_total.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        max_total <= tether_agent::tunnel::MAX_STREAMS,
        "the pool reached {max_total} streams"
    );
    staging.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}
