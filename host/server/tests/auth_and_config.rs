//! Tokens, the configuration stream and the agent API over real gRPC.

mod common;

use common::Harness;
use tether_rpc::agent::v1::agent_service_client::AgentServiceClient;
use tether_rpc::agent::v1::{
    AgentMeta, HeartbeatRequest, ProjectStatus, RegisterRequest, StatusReport, SyncResult,
};
use tether_rpc::configuration::v1::{ConfigurationRequest, PluginFileRequest};
use tether_server::store::Store;
use tether_testkit::GitServer;
use tonic::Code;

const CONFIG: &str = ".tether/agents/prod/config.yaml";

async fn config_repo_harness(
    extra: &str,
) -> anyhow::Result<(GitServer, tether_testkit::Repo, Harness)> {
    let git = GitServer::start()?;
    let repo = git.create_repo("config")?;
    repo.write(CONFIG, "gitops:\n  manifest_projects:\n  - id: config\n")?;
    repo.commit("first")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: config, path: '{}'}}\n{extra}",
        repo.bare_path().display()
    ))
    .await?;
    Ok((git, repo, h))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_malformed_and_revoked_tokens_are_unauthenticated_without_detail()
-> anyhow::Result<()> {
    let (_git, _repo, h) = config_repo_harness("").await?;
    let token = h.agent("prod", "config")?;
    let wrong = tether_server::token::generate();
    let wrong = secrecy::ExposeSecret::expose_secret(&wrong.secret).to_owned();
    let mut messages = Vec::new();
    for bad in [wrong.as_str(), "tthr_short", "not a token at all"] {
        let status = h
            .configuration(bad)
            .await?
            .get_configuration(ConfigurationRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{bad}");
        messages.push(status.message().to_owned());
    }
    let status = AgentServiceClient::new(h.channel().await?)
        .heartbeat(HeartbeatRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "no token at all");
    messages.push(status.message().to_owned());
    messages.dedup();
    assert_eq!(
        messages,
        ["unauthenticated"],
        "every failure looks the same"
    );

    // Revocation: the stream that is open ends, and the next call is refused.
    let mut stream = h
        .configuration(&token)
        .await?
        .get_configuration(ConfigurationRequest::default())
        .await?
        .into_inner();
    assert!(stream.message().await?.is_some());
    let id = h.store.tokens(Some("prod"))?[0].id;
    h.store.revoke_token(id, 2)?;
    _repo.write(CONFIG, "gitops: {}\n")?;
    _repo.commit("second")?;
    h.push("config").await?;
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = h
        .configuration(&token)
        .await?
        .get_configuration(ConfigurationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_are_rate_limited_per_source_and_valid_ones_still_pass() -> anyhow::Result<()>
{
    let (_git, _repo, h) = config_repo_harness("auth_failures_per_minute: 3\n").await?;
    let token = h.agent("prod", "config")?;
    let mut agent =
        AgentServiceClient::with_interceptor(h.channel().await?, common::Bearer::new(&token));
    agent.heartbeat(HeartbeatRequest {}).await?;
    let mut bad =
        AgentServiceClient::with_interceptor(h.channel().await?, common::Bearer::new("tthr_guess"));
    for _ in 0..3 {
        assert_eq!(
            bad.heartbeat(HeartbeatRequest {}).await.unwrap_err().code(),
            Code::Unauthenticated
        );
    }
    assert_eq!(
        bad.heartbeat(HeartbeatRequest {}).await.unwrap_err().code(),
        Code::ResourceExhausted
    );
    let unknown = tether_server::token::generate();
    let unknown = secrecy::ExposeSecret::expose_secret(&unknown.secret).to_owned();
    let status =
        AgentServiceClient::with_interceptor(h.channel().await?, common::Bearer::new(&unknown))
            .heartbeat(HeartbeatRequest {})
            .await
            .unwrap_err();
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "an unknown token from the limited source"
    );
    agent
        .heartbeat(HeartbeatRequest {})
        .await
        .map_err(|status| {
            anyhow::anyhow!("a valid token is never refused for what its address did: {status}")
        })?;
    assert_eq!(
        h.server
            .context()
            .metrics
            .get("tether_server_auth_failures_total", &[]),
        3
    );
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_limited_on_its_own_and_never_locks_out_its_neighbours()
-> anyhow::Result<()> {
    let (_git, _repo, h) = config_repo_harness("auth_failures_per_minute: 3\n").await?;
    let revoked = h.agent("prod", "config")?;
    let neighbour = h.agent("staging", "config")?;
    let id = h.store.tokens(Some("prod"))?[0].id;
    h.store.revoke_token(id, 2)?;
    // Both agents call from the same address (as behind a NAT or an ingress).
    let mut prod =
        AgentServiceClient::with_interceptor(h.channel().await?, common::Bearer::new(&revoked));
    for _ in 0..3 {
        assert_eq!(
            prod.heartbeat(HeartbeatRequest {})
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
    }
    assert_eq!(
        prod.heartbeat(HeartbeatRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::ResourceExhausted,
        "the revoked token is limited"
    );
    let mut staging =
        AgentServiceClient::with_interceptor(h.channel().await?, common::Bearer::new(&neighbour));
    for _ in 0..5 {
        staging.heartbeat(HeartbeatRequest {}).await?;
    }
    let unknown = tether_server::token::generate();
    let unknown = secrecy::ExposeSecret::expose_secret(&unknown.secret).to_owned();
    let status =
        AgentServiceClient::with_interceptor(h.channel().await?, common::Bearer::new(&unknown))
            .heartbeat(HeartbeatRequest {})
            .await
            .unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "the revoked token's failures are not counted against its address"
    );
    let metrics = &h.server.context().metrics;
    assert_eq!(metrics.get("tether_server_auth_failures_total", &[]), 4);
    assert_eq!(metrics.get("tether_server_auth_rate_limited_total", &[]), 1);
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_over_the_size_limit_is_refused_from_the_tree_without_being_read()
-> anyhow::Result<()> {
    let (_git, repo, h) = config_repo_harness("").await?;
    let token = h.agent("prod", "config")?;
    let mut stream = h
        .configuration(&token)
        .await?
        .get_configuration(ConfigurationRequest::default())
        .await?
        .into_inner();
    let first = stream.message().await?.expect("first configuration");
    let read = || {
        h.server.context().metrics.get(
            "tether_server_git_read_bytes_total",
            &[("repository", "config")],
        )
    };
    let before = read();
    assert_eq!(
        before,
        i64::try_from(first.config_yaml.len())?,
        "what was read is counted"
    );

    let huge = format!(
        "gitops:\n  manifest_projects:\n  - id: config\n{}",
        "# padding\n".repeat(20_000)
    );
    repo.write(CONFIG, &huge)?;
    repo.commit("too large")?;
    let registry = &h.server.context().registry;
    let mut changes = registry.subscribe();
    h.push("config").await?;
    changes
        .wait_for(|_| {
            registry
                .get("prod")
                .is_some_and(|c| c.configuration.error.is_some())
        })
        .await?;
    let error = registry
        .get("prod")
        .and_then(|c| c.configuration.error)
        .unwrap_or_default();
    assert!(
        error.contains(CONFIG) && error.contains("the limit is 128 KiB"),
        "{error}"
    );
    assert_eq!(read(), before, "the file over the limit was not read");
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_streams_valid_commits_and_keeps_the_last_valid_one() -> anyhow::Result<()>
{
    let (_git, repo, h) = config_repo_harness("").await?;
    let token = h.agent("prod", "config")?;
    let mut client = h.configuration(&token).await?;
    let mut stream = client
        .get_configuration(ConfigurationRequest::default())
        .await?
        .into_inner();
    let first = stream.message().await?.expect("first configuration");
    assert_eq!(first.file, CONFIG);
    assert!(first.config_yaml.contains("manifest_projects"));

    // An invalid commit is not sent; its error is in the agent's status with file, line and key.
    let registry = &h.server.context().registry;
    let mut changes = registry.subscribe();
    repo.write(
        CONFIG,
        "gitops:\n  manifest_projects:\n  - id: config\n    reconcile_timeout: soon\n",
    )?;
    repo.commit("bad duration")?;
    h.push("config").await?;
    changes
        .wait_for(|_| {
            registry
                .get("prod")
                .is_some_and(|c| c.configuration.error.is_some())
        })
        .await?;
    let error = registry
        .get("prod")
        .and_then(|c| c.configuration.error)
        .unwrap_or_default();
    assert!(
        error.contains(&format!("{CONFIG}:4:")) && error.contains("reconcile_timeout"),
        "{error}"
    );
    let (_, body) = h.get("/api/v1/agents/prod").await?;
    assert!(body.contains("reconcile_timeout"), "{body}");

    // A commit that does not touch the (still invalid) file sends nothing either; the fix is sent.
    repo.write("unrelated.txt", "x")?;
    repo.commit("unrelated")?;
    h.push("config").await?;
    repo.write(
        CONFIG,
        "gitops:\n  manifest_projects:\n  - id: config\n    prune: false\n",
    )?;
    let fixed = repo.commit("fixed")?;
    h.push("config").await?;
    let next = stream.message().await?.expect("next configuration");
    assert_eq!(
        next.commit_id, fixed,
        "the invalid and the unrelated commits were skipped"
    );
    assert!(next.config_yaml.contains("prune: false"));
    let (_, body) = h.get("/api/v1/agents/prod").await?;
    assert!(body.contains(&fixed), "{body}");
    assert_eq!(
        h.server
            .context()
            .metrics
            .get("tether_server_configuration_errors_total", &[]),
        2,
        "the bad commit and the unrelated one on top of it"
    );

    // Resuming from the commit the agent has sends nothing until it changes.
    let mut resumed = client
        .get_configuration(ConfigurationRequest {
            commit_id: fixed.clone(),
        })
        .await?
        .into_inner();
    repo.write(CONFIG, "{}\n")?;
    let later = repo.commit("later")?;
    h.push("config").await?;
    assert_eq!(resumed.message().await?.expect("later").commit_id, later);
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_files_are_served_in_chunks_from_the_config_repository() -> anyhow::Result<()> {
    let (_git, repo, h) = config_repo_harness("").await?;
    let plugin: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    repo.write(".tether/plugins/p.wasm", &plugin)?;
    let commit = repo.commit("plugin")?;
    let token = h.agent("prod", "config")?;
    let mut client = h.configuration(&token).await?;
    let mut stream = client
        .get_plugin_file(PluginFileRequest {
            commit_id: commit.clone(),
            path: ".tether/plugins/p.wasm".into(),
        })
        .await?
        .into_inner();
    let mut received = Vec::new();
    while let Some(chunk) = stream.message().await? {
        assert!(chunk.data.len() <= tether_rpc::limits::MAX_CHUNK_SIZE);
        received.extend_from_slice(&chunk.data);
    }
    assert_eq!(received, plugin);
    let status = client
        .get_plugin_file(PluginFileRequest {
            commit_id: commit,
            path: "../../etc/passwd".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_heartbeat_and_status_show_in_the_http_api() -> anyhow::Result<()> {
    let (_git, _repo, h) = config_repo_harness("").await?;
    let token = h.agent("prod", "config")?;
    h.agent("idle", "config")?;
    let (_, body) = h.get("/api/v1/agents").await?;
    let agents: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(agents[1]["name"], "prod");
    assert_eq!(agents[1]["connected"], false);

    let mut agent =
        AgentServiceClient::with_interceptor(h.channel().await?, common::Bearer::new(&token));
    let registered = agent
        .register(RegisterRequest {
            meta: Some(AgentMeta {
                version: "0.1.0".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    assert_eq!(registered.agent_name, "prod");
    agent.heartbeat(HeartbeatRequest {}).await?;
    agent
        .report_status(StatusReport {
            projects: vec![ProjectStatus {
                project_id: "config".into(),
                commit_id: "abc".into(),
                result: SyncResult::Failed.into(),
                message: "1 object failed".into(),
                errors: vec![tether_rpc::agent::v1::ObjectError {
                    kind: "Deployment".into(),
                    namespace: "web".into(),
                    name: "web".into(),
                    message: "field is immutable".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .await?;
    let (status, body) = h.get("/api/v1/agents/prod").await?;
    assert_eq!(status, 200);
    let prod: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(prod["connected"], true, "{body}");
    assert_eq!(prod["meta"]["version"], "0.1.0");
    assert!(prod["last_heartbeat"].as_i64().is_some());
    assert_eq!(prod["projects"][0]["result"], "failed");
    assert_eq!(
        prod["projects"][0]["errors"][0]["message"],
        "field is immutable"
    );
    assert_eq!(h.get("/api/v1/agents/nobody").await?.0, 404);

    let (status, metrics) = h.get("/metrics").await?;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("tether_server_agents_connected 1\n"),
        "{metrics}"
    );
    assert_eq!(h.get("/healthz").await?, (200, "ok\n".to_owned()));
    assert_eq!(h.get("/readyz").await?.0, 200);
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_agent_config_is_read_from_the_gitlab_directory() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let repo = git.create_repo("config")?;
    let gitlab = "gitops:\n  manifest_projects:\n  - id: config\n    paths:\n    - glob: '/manifests/**/*.yaml'\n    inventory_policy: adopt_if_no_inventory\n";
    repo.write(".gitlab/agents/prod/config.yaml", gitlab)?;
    let commit = repo.commit("gitlab config")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: config, path: '{}'}}\n",
        repo.bare_path().display()
    ))
    .await?;
    let token = h.agent("prod", "config")?;
    let mut stream = h
        .configuration(&token)
        .await?
        .get_configuration(ConfigurationRequest::default())
        .await?
        .into_inner();
    let message = stream.message().await?.expect("configuration");
    assert_eq!(message.commit_id, commit);
    assert_eq!(message.file, ".gitlab/agents/prod/config.yaml");
    assert_eq!(message.config_yaml, gitlab);
    h.server.shutdown().await;
    Ok(())
}
