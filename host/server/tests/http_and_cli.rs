//! The push endpoints of each Git host and the `tether-server` command line.

mod common;

use common::{Harness, http, paths};
use secrecy::SecretString;
use std::process::Command;
use tether_testkit::GitServer;

const MANIFEST: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_github_and_gitea_push_events_wake_the_poller_only_when_signed() -> anyhow::Result<()>
{
    let git = GitServer::start()?;
    let repo = git.create_repo("group/apps")?;
    repo.write("a.yaml", MANIFEST)?;
    repo.commit("first")?;
    let secrets = tempfile::tempdir()?;
    for (file, secret) in [
        ("gitlab", "gl-token"),
        ("github", "gh-secret"),
        ("gitea", "gt-secret"),
    ] {
        std::fs::write(secrets.path().join(file), secret)?;
    }
    let url = git.git_url("group/apps");
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: group/apps, url: '{url}'}}\nwebhooks:\n  gitlab_token_file: {0}/gitlab\n  github_secret_file: {0}/github\n  gitea_secret_file: {0}/gitea\n",
        secrets.path().display()
    ))
    .await?;
    let token = h.agent("prod", "group/apps")?;
    let mut sync = h.sync(&token, "group/apps", &["*.yaml"]).await?;
    sync.next_set().await?;
    let addr = h.server.http_addr;

    // GitLab names the project by path; a wrong token is refused and wakes nothing.
    let gitlab = serde_json::to_vec(&serde_json::json!({
        "object_kind": "push",
        "project": {"path_with_namespace": "group/apps", "git_http_url": "https://gitlab.example/group/apps.git"}
    }))?;
    let refused = http(
        addr,
        "POST",
        "/api/v1/push/gitlab",
        &[("x-gitlab-token", "wrong")],
        &gitlab,
    )
    .await?;
    assert_eq!(refused.0, 401);
    let second = repo.commit("second")?;
    let accepted = http(
        addr,
        "POST",
        "/api/v1/push/gitlab",
        &[("x-gitlab-token", "gl-token")],
        &gitlab,
    )
    .await?;
    assert_eq!(accepted.0, 202, "{}", accepted.1);
    assert_eq!(sync.next_set().await?.commit_id, second);

    // GitHub names it by clone URL here (matched against the configured URL), signed with HMAC-SHA256.
    let github = serde_json::to_vec(
        &serde_json::json!({"repository": {"full_name": "o/other", "clone_url": url}}),
    )?;
    let signature = tether_server::push::sign(&SecretString::from("gh-secret".to_owned()), &github);
    let wrong = tether_server::push::sign(&SecretString::from("nope".to_owned()), &github);
    assert_eq!(
        http(
            addr,
            "POST",
            "/api/v1/push/github",
            &[("x-hub-signature-256", &wrong)],
            &github
        )
        .await?
        .0,
        401
    );
    let third = repo.commit("third")?;
    let accepted = http(
        addr,
        "POST",
        "/api/v1/push/github",
        &[("x-hub-signature-256", &signature)],
        &github,
    )
    .await?;
    assert_eq!(accepted.0, 202, "{}", accepted.1);
    assert_eq!(sync.next_set().await?.commit_id, third);

    // Gitea sends the bare hex HMAC.
    let gitea =
        serde_json::to_vec(&serde_json::json!({"repository": {"full_name": "group/apps"}}))?;
    let signature = tether_server::push::sign(&SecretString::from("gt-secret".to_owned()), &gitea);
    let fourth = repo.commit("fourth")?;
    let accepted = http(
        addr,
        "POST",
        "/api/v1/push/gitea",
        &[("x-gitea-signature", &signature["sha256=".len()..])],
        &gitea,
    )
    .await?;
    assert_eq!(accepted.0, 202, "{}", accepted.1);
    assert_eq!(sync.next_set().await?.commit_id, fourth);

    // The generic endpoint has no secret here: it is off. An unknown repository is 404.
    assert_eq!(h.push("group/apps").await?.0, 404);
    let unknown = serde_json::to_vec(&serde_json::json!({"repository": {"full_name": "x/y"}}))?;
    let signature =
        tether_server::push::sign(&SecretString::from("gt-secret".to_owned()), &unknown);
    let answer = http(
        addr,
        "POST",
        "/api/v1/push/gitea",
        &[("x-gitea-signature", &signature[7..])],
        &unknown,
    )
    .await?;
    assert_eq!(answer.0, 404);
    assert_eq!(
        h.server.context().metrics.get(
            "tether_server_notifications_total",
            &[("repository", "group/apps")]
        ),
        3,
        "only the three signed events woke the poller"
    );
    h.server.shutdown().await;
    Ok(())
}

fn tether_server(
    config: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<(bool, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_tether-server"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

#[test]
fn agents_and_tokens_are_administered_from_the_command_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {}/data\nmax_tokens_per_agent: 2\nrepositories:\n  - {{name: config, path: /srv/config.git}}\n",
            dir.path().display()
        ),
    )?;
    let (ok, out, err) = tether_server(
        &config,
        &["agent", "register", "prod", "--config-repository", "config"],
    )?;
    assert!(ok, "{err}");
    assert!(out.contains("registered agent prod"), "{out}");
    let (ok, _, err) = tether_server(
        &config,
        &["agent", "register", "dev", "--config-repository", "nope"],
    )?;
    assert!(!ok && err.contains("`nope`"), "{err}");
    let (_, out, _) = tether_server(&config, &["agent", "list"])?;
    assert!(out.contains("prod") && out.contains("config"), "{out}");

    let (ok, out, err) =
        tether_server(&config, &["token", "create", "prod", "--description", "ci"])?;
    assert!(ok, "{err}");
    let secret = out
        .lines()
        .find(|l| l.starts_with("tthr_"))
        .expect("token printed")
        .to_owned();
    assert!(tether_server(&config, &["token", "create", "prod"])?.0);
    let (ok, _, err) = tether_server(&config, &["token", "create", "prod"])?;
    assert!(
        !ok && err.contains("limit"),
        "third active token refused: {err}"
    );

    let (_, list, _) = tether_server(&config, &["token", "list", "--agent", "prod"])?;
    assert!(
        list.contains("ci") && !list.contains(&secret[5..]),
        "{list}"
    );
    let (ok, out, err) = tether_server(&config, &["token", "revoke", "1"])?;
    assert!(ok && out.contains("revoked token 1"), "{err}");
    assert!(
        tether_server(&config, &["token", "create", "prod"])?.0,
        "revoking frees a slot"
    );
    let db = std::fs::read(dir.path().join("data/tether.db"))?;
    assert!(
        !String::from_utf8_lossy(&db).contains(&secret[5..]),
        "only the hash is stored"
    );
    Ok(())
}

#[test]
fn check_config_names_file_line_and_key_and_help_explains_every_flag() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "listen:\n  grpc: '127.0.0.1:1'\n  htp: x\n")?;
    let (ok, _, err) = tether_server(&bad, &["check-config", bad.to_str().unwrap_or_default()])?;
    assert!(!ok);
    assert!(
        err.contains(&format!("{}:3:", bad.display())) && err.contains("htp"),
        "{err}"
    );
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "poll_interval: 1m\n")?;
    let (ok, out, err) =
        tether_server(&good, &["check-config", good.to_str().unwrap_or_default()])?;
    assert!(ok && out.contains("ok"), "{err}");

    for args in [
        &["--help"][..],
        &["token", "create", "--help"],
        &["agent", "register", "--help"],
        &["notify", "--help"],
    ] {
        let (ok, out, _) = tether_server(&good, args)?;
        assert!(ok, "{args:?}");
        let lines: Vec<&str> = out.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let flag = line.trim_start();
            if !(flag.starts_with("--") || flag.starts_with("-c,")) {
                continue;
            }
            // clap puts the help after the flag, or on the next line when the flag is long.
            let same_line = flag
                .split_once("  ")
                .is_some_and(|(_, d)| !d.trim().is_empty());
            let next_line = lines.get(i + 1).is_some_and(|next| {
                let text = next.trim_start();
                !text.is_empty()
                    && !text.starts_with('-')
                    && next.len() - text.len() > line.len() - flag.len()
            });
            assert!(
                same_line || next_line,
                "{args:?}: flag without help text: {line}"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_from_a_git_hook_wakes_the_running_server() -> anyhow::Result<()> {
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
    let mut sync = h.sync(&token, "apps", &["*.yaml"]).await?;
    sync.next_set().await?;
    repo.write("b.yaml", MANIFEST)?;
    let second = repo.commit("second")?;

    let config = h.data.path().join("cli.yaml");
    std::fs::write(
        &config,
        format!(
            "webhooks: {{secret_file: {}}}\n",
            h.data.path().join("webhook-secret").display()
        ),
    )?;
    let url = format!("http://{}", h.server.http_addr);
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        tether_server(&config, &["notify", "apps", "--url", &url])
    })
    .await??;
    assert!(ok, "{err}");
    assert!(out.contains("notified apps"), "{out}");
    let set = sync.next_set().await?;
    assert_eq!(set.commit_id, second);
    assert_eq!(paths(&set), ["a.yaml", "b.yaml"]);
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_tokens_are_administered_over_http_with_the_admin_token() -> anyhow::Result<()> {
    use tether_rpc::agent::v1::HeartbeatRequest;
    use tether_rpc::agent::v1::agent_service_client::AgentServiceClient;
    let git = GitServer::start()?;
    let repo = git.create_repo("config")?;
    repo.commit("empty")?;
    let secrets = tempfile::tempdir()?;
    std::fs::write(secrets.path().join("admin"), "admin-secret\n")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: config, path: '{}'}}\napi: {{admin_token_file: {}/admin}}\n",
        repo.bare_path().display(),
        secrets.path().display()
    ))
    .await?;
    let addr = h.server.http_addr;
    let admin = [
        ("authorization", "Bearer admin-secret"),
        ("content-type", "application/json"),
    ];
    assert_eq!(http(addr, "GET", "/api/v1/agents", &[], b"").await?.0, 401);
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/v1/agents",
            &[("authorization", "Bearer wrong")],
            b""
        )
        .await?
        .0,
        401
    );

    let body = br#"{"name": "prod", "config_repository": "config"}"#;
    let (status, answer) = http(addr, "POST", "/api/v1/agents", &admin, body).await?;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        http(addr, "POST", "/api/v1/agents", &admin, body).await?.0,
        409,
        "registered once"
    );

    let (status, answer) = http(
        addr,
        "POST",
        "/api/v1/agents/prod/tokens",
        &admin,
        br#"{"description": "http"}"#,
    )
    .await?;
    assert_eq!(status, 201, "{answer}");
    let created: serde_json::Value = serde_json::from_str(&answer)?;
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    assert!(token.starts_with("tthr_"), "{answer}");
    let mut agent =
        AgentServiceClient::with_interceptor(h.channel().await?, common::Bearer::new(&token));
    agent.heartbeat(HeartbeatRequest {}).await?;

    let (_, list) = http(addr, "GET", "/api/v1/tokens?agent=prod", &admin, b"").await?;
    assert!(
        list.contains("\"description\":\"http\"") && !list.contains(&token[5..]),
        "{list}"
    );
    let id = created["id"].as_i64().unwrap_or_default();
    let (status, _) = http(addr, "DELETE", &format!("/api/v1/tokens/{id}"), &admin, b"").await?;
    assert_eq!(status, 200);
    let status = agent.heartbeat(HeartbeatRequest {}).await.unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Unauthenticated,
        "revoked over HTTP: refused on the next call"
    );
    h.server.shutdown().await;

    // Without an admin token nobody can use the API, reads included, and the answer says what to set.
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: config, path: '{}'}}\napi: {{}}\n",
        repo.bare_path().display()
    ))
    .await?;
    let json = [("content-type", "application/json")];
    let (status, answer) = http(h.server.http_addr, "GET", "/api/v1/agents", &[], b"").await?;
    assert_eq!(status, 401);
    assert!(answer.contains("api.admin_token_file"), "{answer}");
    assert_eq!(
        http(h.server.http_addr, "POST", "/api/v1/agents", &json, body)
            .await?
            .0,
        401
    );
    h.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_read_needs_the_admin_token_and_health_and_push_do_not() -> anyhow::Result<()> {
    let git = GitServer::start()?;
    let repo = git.create_repo("config")?;
    repo.commit("empty")?;
    let h = Harness::start(&format!(
        "repositories:\n  - {{name: config, path: '{}'}}\n",
        repo.bare_path().display()
    ))
    .await?;
    h.agent("prod", "config")?;
    let addr = h.server.http_addr;
    for path in [
        "/api/v1/agents",
        "/api/v1/agents/prod",
        "/api/v1/tokens",
        "/api/v1/tokens?agent=prod",
        "/api/v1/sources",
    ] {
        let (status, body) = http(addr, "GET", path, &[], b"").await?;
        assert_eq!(status, 401, "{path} without a token: {body}");
        assert!(!body.contains("prod"), "{path} shows nothing: {body}");
        let wrong = http(addr, "GET", path, &[("authorization", "Bearer nope")], b"").await?;
        assert_eq!(wrong.0, 401, "{path} with a wrong token");
        let (status, body) = h.get(path).await?;
        assert_eq!(status, 200, "{path} with the admin token: {body}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(http(addr, "GET", path, &[], b"").await?.0, 200, "{path}");
    }
    assert_eq!(
        h.push("config").await?.0,
        202,
        "push endpoints verify signatures instead"
    );
    h.server.shutdown().await;
    Ok(())
}
