//! GetObjectsToSynchronize over real gRPC against repositories served by real `git daemon` and
//! `git http-backend`.

mod common;

use common::{Harness, paths};
use tether_testkit::GitServer;
use tonic::Code;

const MANIFEST: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_event_brings_the_new_commit_to_a_connected_stream() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    repo.write("base/a.yaml", MANIFEST)?
        .write("base/notes.txt", "not a manifest")?
        .write(".hidden/secret.yaml", MANIFEST)?
        .write("base/.hidden/b.yaml", MANIFEST)?;
    let first = repo.commit("first")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: apps, url: '{}'}}\n",
        git.git_url("apps")
    ))
    .await?;
    let token = h.agent("prod", "apps")?;

    let mut sync = h.sync(&token, "apps", &["**/*.{yaml,yml,json}"]).await?;
    let set = sync.next_set().await?;
    assert_eq!(set.commit_id, first);
    assert_eq!(
        paths(&set),
        ["base/a.yaml"],
        "hidden directories and other files are skipped"
    );
    assert_eq!(set.files[0].1.as_ref(), MANIFEST.as_bytes());

    repo.write("base/b.yml", MANIFEST)?.remove("base/a.yaml")?;
    let second = repo.commit("second")?;
    let (status, body) = h.push("apps").await?;
    assert_eq!(status, 202, "{body}");
    let set = sync.next_set().await?;
    assert_eq!(set.commit_id, second);
    assert_eq!(paths(&set), ["base/b.yml"]);
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_picks_up_a_commit_without_notify_over_smart_http() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let repo = git.create_repo("group/apps")?;
    repo.write("a.yaml", MANIFEST)?;
    repo.commit("first")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: group/apps, url: '{}', poll_interval: 100ms}}\n",
        git.http_url("group/apps")
    ))
    .await?;
    let token = h.agent("prod", "group/apps")?;
    let mut sync = h.sync(&token, "group/apps", &["*.yaml"]).await?;
    sync.next_set().await?;
    repo.write("b.yaml", MANIFEST)?;
    let second = repo.commit("second")?;
    let set = sync.next_set().await?;
    assert_eq!(set.commit_id, second);
    assert_eq!(paths(&set), ["a.yaml", "b.yaml"]);
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_watching_one_repository_cause_one_fetch() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    repo.write("a.yaml", MANIFEST)?;
    repo.commit("first")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: apps, url: '{}'}}\n",
        git.git_url("apps")
    ))
    .await?;
    let (one, two) = (h.agent("one", "apps")?, h.agent("two", "apps")?);
    let mut a = h.sync(&one, "apps", &["*.yaml"]).await?;
    let mut b = h.sync(&two, "apps", &["**"]).await?;
    a.next_set().await?;
    b.next_set().await?;
    let fetches = || {
        h.server
            .context()
            .metrics
            .get("tether_server_git_fetches_total", &[("repository", "apps")])
    };
    assert_eq!(
        fetches(),
        1,
        "the second watcher shares the first one's poller"
    );

    let second = repo.commit("second")?;
    h.push("apps").await?;
    assert_eq!(a.next_set().await?.commit_id, second);
    assert_eq!(b.next_set().await?.commit_id, second);
    assert_eq!(fetches(), 2, "one fetch per push, however many watch");
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_repositories_are_read_in_place_at_branches_tags_and_commits() -> anyhow::Result<()> {
    use tether_rpc::gitops::v1::{Ref, r#ref};
    let git = GitServer::start()?;
    let repo = git.create_repo("local")?;
    repo.write("a.yaml", "v: 1\n")?;
    let first = repo.commit("first")?;
    repo.tag("v1")?;
    repo.write("a.yaml", "v: 2\n")?;
    let on_branch = repo.commit_to("release", "on release")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: local, path: '{}'}}\n",
        repo.bare_path().display()
    ))
    .await?;
    let token = h.agent("prod", "local")?;
    let mut client = h.gitops(&token).await?;
    for (git_ref, expected) in [
        (r#ref::Ref::Tag("v1".into()), &first),
        (r#ref::Ref::Branch("release".into()), &on_branch),
        (r#ref::Ref::Commit(first.clone()), &first),
    ] {
        let mut request = common::sync_request("local", &["*.yaml"]);
        request.r#ref = Some(Ref {
            r#ref: Some(git_ref.clone()),
        });
        let mut sync = common::SyncClient::new(
            client
                .get_objects_to_synchronize(request)
                .await?
                .into_inner(),
        );
        let set = sync.next_set().await?;
        assert_eq!(&set.commit_id, expected, "{git_ref:?}");
    }
    // Resuming from the commit the agent has: nothing is sent until the ref moves.
    let mut request = common::sync_request("local", &["*.yaml"]);
    request.r#ref = Some(Ref {
        r#ref: Some(r#ref::Ref::Branch("release".into())),
    });
    request.commit_id = on_branch.clone();
    let mut sync = common::SyncClient::new(
        client
            .get_objects_to_synchronize(request)
            .await?
            .into_inner(),
    );
    let newer = repo.commit_to("release", "newer")?;
    h.push("local").await?;
    let set = sync.next_set().await?;
    assert_eq!(
        set.commit_id, newer,
        "the first set sent is the new commit, not the one the agent has"
    );
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_limit_is_an_error_naming_limit_and_file_and_nothing_partial() -> anyhow::Result<()>
{
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    repo.write("a.yaml", MANIFEST)?;
    repo.write("big/huge.yaml", vec![b'x'; 5 * 1024 * 1024 + 1])?;
    repo.commit("too big")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: apps, path: '{}'}}\n",
        repo.bare_path().display()
    ))
    .await?;
    let token = h.agent("prod", "apps")?;

    let mut sync = h.sync(&token, "apps", &["**/*.yaml"]).await?;
    let status = sync.next_set().await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("big/huge.yaml") && status.message().contains("5 MiB"),
        "{}",
        status.message()
    );
    assert_eq!(sync.messages, 0, "no header or file before the error");

    // Files each under the per-file limit but together over the per-sync limit.
    for i in 0..5 {
        repo.write(&format!("total/{i}.yaml"), vec![b'y'; 4_500_000])?;
    }
    let mut sync = h.sync(&token, "apps", &["total/*.yaml"]).await?;
    repo.commit("too much in total")?;
    h.push("apps").await?;
    // The stream may first get the previous commit (nothing matches there), then the new one.
    let status = loop {
        match sync.next_set().await {
            Ok(set) => assert!(set.files.is_empty(), "a set over the total limit was sent"),
            Err(status) => break status,
        }
    };
    assert!(
        status.message().contains("limit of 20 MiB per sync"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("total/4.yaml"),
        "{}",
        status.message()
    );
    for i in 0..5 {
        repo.remove(&format!("total/{i}.yaml"))?;
    }

    // Selecting only the small file is fine.
    let mut sync = h.sync(&token, "apps", &["*.yaml"]).await?;
    assert_eq!(paths(&sync.next_set().await?), ["a.yaml"]);

    for i in 0..=1000 {
        repo.write(&format!("many/{i:04}.yaml"), "x: 1\n")?;
    }
    repo.remove("big/huge.yaml")?;
    let too_many = repo.commit("too many")?;
    let mut sync = h.sync(&token, "apps", &["many/*.yaml"]).await?;
    h.push("apps").await?;
    // The stream may first get the previous commit (no file matches there), then the new one.
    let status = loop {
        match sync.next_set().await {
            Ok(set) => assert_ne!(set.commit_id, too_many, "a set over the limit was sent"),
            Err(status) => break status,
        }
    };
    assert!(
        status.message().contains("limit of 1000 files"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("many/1000.yaml"),
        "{}",
        status.message()
    );
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_resolve_inside_the_tree_and_are_refused_outside_it() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    repo.write("real/a.yaml", MANIFEST)?;
    for dir in ["links", "escape"] {
        std::fs::create_dir_all(repo.work_path().join(dir))?;
    }
    std::os::unix::fs::symlink("../real/a.yaml", repo.work_path().join("links/inside.yaml"))?;
    std::os::unix::fs::symlink(
        "../../../etc/passwd",
        repo.work_path().join("escape/outside.yaml"),
    )?;
    repo.commit("links")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: apps, path: '{}'}}\n",
        repo.bare_path().display()
    ))
    .await?;
    let token = h.agent("prod", "apps")?;

    let mut sync = h
        .sync(&token, "apps", &["real/*.yaml", "links/*.yaml"])
        .await?;
    let set = sync.next_set().await?;
    assert_eq!(paths(&set), ["links/inside.yaml", "real/a.yaml"]);
    assert_eq!(
        set.files[0].1, set.files[1].1,
        "the link carries its target's content"
    );

    let mut sync = h.sync(&token, "apps", &["**/*.yaml"]).await?;
    let status = sync.next_set().await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("escape/outside.yaml"),
        "{}",
        status.message()
    );
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_read_only_their_config_repository_and_granted_ones() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    for name in ["config", "granted", "private"] {
        let repo = git.create_repo(name)?;
        repo.write("a.yaml", MANIFEST)?;
        repo.commit("first")?;
    }
    let root = git.root().display().to_string();
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: config, path: '{root}/config.git'}}\n  - {{name: granted, path: '{root}/granted.git'}}\n  - {{name: private, path: '{root}/private.git'}}\ngrants:\n  - {{agent: prod, repositories: [granted]}}\n"
    ))
    .await?;
    let token = h.agent("prod", "config")?;
    h.sync(&token, "config", &["*.yaml"])
        .await?
        .next_set()
        .await?;
    h.sync(&token, "granted", &["*.yaml"])
        .await?
        .next_set()
        .await?;
    for repository in ["private", "does-not-exist"] {
        let status = h
            .gitops(&token)
            .await?
            .get_objects_to_synchronize(common::sync_request(repository, &["*.yaml"]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{repository}");
    }
    for glob in ["../*.yaml", "/../x", "a/../../b"] {
        let status = h
            .gitops(&token)
            .await?
            .get_objects_to_synchronize(common::sync_request("config", &[glob]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{glob}");
    }
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_goes_down_keeps_serving_the_last_commit_with_a_failing_status()
-> anyhow::Result<()> {
    use tether_server::sources::{SourceKey, SourceStatus};
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    repo.write("a.yaml", MANIFEST)?;
    let first = repo.commit("first")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: apps, url: '{}'}}\n",
        git.http_url("apps")
    ))
    .await?;
    let token = h.agent("prod", "apps")?;
    let mut sync = h.sync(&token, "apps", &["*.yaml"]).await?;
    assert_eq!(sync.next_set().await?.commit_id, first);

    drop(git); // the Git host is gone
    let mut state = h.server.context().sources.watch(SourceKey {
        repository: "apps".into(),
        git_ref: None,
    })?;
    h.push("apps").await?;
    let failing = state
        .wait_for(|s| matches!(s.status, SourceStatus::Failing { .. }))
        .await?
        .clone();
    assert_eq!(
        failing.commit.map(|c| c.to_string()),
        Some(first.clone()),
        "last known commit kept"
    );

    let (status, body) = h.get("/api/v1/sources").await?;
    assert_eq!(status, 200);
    assert!(
        body.contains("\"state\":\"failing\"") && body.contains(&first),
        "{body}"
    );
    // A new agent stream still gets the last known commit.
    let mut late = h.sync(&token, "apps", &["*.yaml"]).await?;
    assert_eq!(late.next_set().await?.commit_id, first);
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_that_was_never_read_is_unavailable_with_the_reason() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let url = git.git_url("apps");
    drop(git); // nothing listens there any more
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: apps, url: '{url}'}}\n"
    ))
    .await?;
    let token = h.agent("prod", "apps")?;
    let mut sync = h.sync(&token, "apps", &["*.yaml"]).await?;
    let status = sync.next_set().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("repository `apps`"),
        "{}",
        status.message()
    );
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_not_held_up_by_a_client_that_stopped_reading() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    for i in 0..4 {
        repo.write(&format!("{i}.yaml"), vec![b'z'; 1_500_000])?;
    }
    repo.commit("big")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: apps, path: '{}'}}\n",
        repo.bare_path().display()
    ))
    .await?;
    let token = h.agent("prod", "apps")?;
    let idle = h.sync(&token, "apps", &["*.yaml"]).await?; // never read
    // The idle client keeps its HTTP/2 stream open, which would hold a graceful shutdown forever; the
    // grace period bounds it (with the default grace this test takes 10 s). The timeout only turns a
    // hang into a failure.
    let grace = std::time::Duration::from_millis(50);
    tokio::time::timeout(
        tether_server::SHUTDOWN_GRACE,
        h.server.shutdown_within(grace),
    )
    .await?;
    drop(idle);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_watching_the_same_paths_share_one_read_of_each_set() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    repo.write("a.yaml", MANIFEST)?
        .write("sub/b.yaml", MANIFEST)?;
    repo.commit("first")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: apps, path: '{}'}}\n",
        repo.bare_path().display()
    ))
    .await?;
    let reads = || {
        h.server.context().metrics.get(
            "tether_server_sync_set_reads_total",
            &[("repository", "apps")],
        )
    };
    let mut same = Vec::new();
    for agent in ["one", "two", "three"] {
        let token = h.agent(agent, "apps")?;
        // The same globs in another order and repeated are the same paths.
        let globs: &[&str] = match agent {
            "two" => &["sub/*.yaml", "*.yaml"],
            "three" => &["*.yaml", "sub/*.yaml", "*.yaml"],
            _ => &["*.yaml", "sub/*.yaml"],
        };
        let mut sync = h.sync(&token, "apps", globs).await?;
        assert_eq!(paths(&sync.next_set().await?), ["a.yaml", "sub/b.yaml"]);
        same.push(sync);
    }
    assert_eq!(reads(), 1, "three agents, one read");
    let other = h.agent("other", "apps")?;
    let mut different = h.sync(&other, "apps", &["*.yaml"]).await?;
    assert_eq!(paths(&different.next_set().await?), ["a.yaml"]);
    assert_eq!(reads(), 2, "other paths are another set");

    repo.write("sub/c.yaml", MANIFEST)?;
    let second = repo.commit("second")?;
    h.push("apps").await?;
    for sync in &mut same {
        let set = sync.next_set().await?;
        assert_eq!(set.commit_id, second);
        assert_eq!(paths(&set), ["a.yaml", "sub/b.yaml", "sub/c.yaml"]);
    }
    assert_eq!(different.next_set().await?.commit_id, second);
    assert_eq!(
        reads(),
        4,
        "one read per set and commit, however many agents watch"
    );
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_no_agent_asks_for_is_stopped_and_forgotten() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    repo.write("a.yaml", MANIFEST)?;
    repo.commit("first")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: apps, url: '{}'}}\n",
        git.git_url("apps")
    ))
    .await?;
    let token = h.agent("prod", "apps")?;
    let sources = &h.server.context().sources;
    let mut running = sources.running();
    let mut sync = h.sync(&token, "apps", &["*.yaml"]).await?;
    sync.next_set().await?;
    assert_eq!(*running.borrow_and_update(), 1);
    assert_eq!(sources.states().len(), 1);

    drop(sync); // the agent goes away
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        running.wait_for(|n| *n == 0),
    )
    .await??;
    assert!(sources.states().is_empty());
    let fetches = || {
        h.server
            .context()
            .metrics
            .get("tether_server_git_fetches_total", &[("repository", "apps")])
    };
    let before = fetches();
    repo.commit("second")?;
    assert_eq!(h.push("apps").await?.0, 202);
    assert_eq!(fetches(), before, "nothing polls for nobody");
    let (_, body) = h.get("/api/v1/sources").await?;
    assert_eq!(body, "[]");

    // Asking again starts a new poller.
    let mut sync = h.sync(&token, "apps", &["*.yaml"]).await?;
    sync.next_set().await?;
    assert_eq!(*running.borrow_and_update(), 1);
    h.server.shutdown().await;
    Ok(())
}

/// A TCP front for a git daemon: forwards connections until told to go silent, then accepts and never
/// answers (a Git host that hangs). Its tasks and held connections end when it is dropped.
struct Stall {
    addr: std::net::SocketAddr,
    silent: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Stall {
    async fn start(upstream: std::net::SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let silent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = silent.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    connections.spawn(async move {
                        let _held = client;
                        std::future::pending::<()>().await;
                    });
                } else {
                    connections.spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            }
        });
        Ok(Self { addr, silent, task })
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_from_a_remote_that_never_answers_times_out_and_keeps_the_last_commit()
-> anyhow::Result<()> {
    use tether_server::sources::{SourceKey, SourceStatus};
    let git = GitServer::start()?;
    let repo = git.create_repo("apps")?;
    repo.write("a.yaml", MANIFEST)?;
    let first = repo.commit("first")?;
    let upstream: std::net::SocketAddr = git
        .git_url("apps")
        .trim_start_matches("git://")
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()?;
    let stall = Stall::start(upstream).await?;
    let h = Harness::start(&format!(
        "fetch_timeout: 500ms\nrepositories:\n  - {{name: apps, url: 'git://{}/apps.git'}}\n",
        stall.addr
    ))
    .await?;
    let token = h.agent("prod", "apps")?;
    let mut sync = h.sync(&token, "apps", &["*.yaml"]).await?;
    assert_eq!(sync.next_set().await?.commit_id, first);

    stall
        .silent
        .store(true, std::sync::atomic::Ordering::SeqCst);
    repo.commit("second")?;
    let mut state = h.server.context().sources.watch(SourceKey {
        repository: "apps".into(),
        git_ref: None,
    })?;
    h.push("apps").await?;
    // The timeout only turns a hang (the defect) into a failure.
    let failing = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        state.wait_for(|s| matches!(s.status, SourceStatus::Failing { .. })),
    )
    .await??
    .clone();
    let SourceStatus::Failing { error, .. } = &failing.status else {
        unreachable!("waited for failing");
    };
    assert!(
        error.contains("repository `apps`") && error.contains("did not finish within 0.5s"),
        "{error}"
    );
    assert_eq!(
        failing.commit.map(|c| c.to_string()),
        Some(first.clone()),
        "the last commit read is kept"
    );
    assert!(
        h.server.context().metrics.get(
            "tether_server_git_fetch_timeouts_total",
            &[("repository", "apps")]
        ) >= 1
    );
    // Agents still get the last commit.
    let mut late = h.sync(&token, "apps", &["*.yaml"]).await?;
    assert_eq!(late.next_set().await?.commit_id, first);
    drop(state);
    h.server.shutdown().await;
    drop(stall);
    Ok(())
}
