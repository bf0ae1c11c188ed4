//! The test kit's helpers start the real programs and stop them again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use tether_testkit::{GitServer, Prometheus, Redis};

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t.invalid")
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A plain HTTP/1.0 GET, so the test depends on nothing but the server it checks.
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn git_daemon_and_http_backend_serve_what_was_pushed() {
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("group/manifests").unwrap();
    repo.write("app/config.yaml", "kind: ConfigMap\n").unwrap();
    let first = repo.commit("add config").unwrap();
    repo.tag("v1").unwrap();

    let clones = tempfile::tempdir().unwrap();
    for (name, url) in [
        ("over-git", server.git_url("group/manifests")),
        ("over-http", server.http_url("group/manifests")),
    ] {
        git(clones.path(), &["clone", "--quiet", &url, name]);
        let checkout = clones.path().join(name);
        assert_eq!(
            std::fs::read_to_string(checkout.join("app/config.yaml")).unwrap(),
            "kind: ConfigMap\n",
            "{url}"
        );
        assert_eq!(
            git(&checkout, &["rev-parse", "HEAD"]).trim(),
            first,
            "{url}"
        );
    }

    // A push over smart HTTP lands in the bare repository and is served over git:// too.
    let over_http = clones.path().join("over-http");
    std::fs::write(over_http.join("second.yaml"), "kind: Secret\n").unwrap();
    git(&over_http, &["add", "second.yaml"]);
    git(&over_http, &["commit", "--quiet", "-m", "second"]);
    git(&over_http, &["push", "--quiet", "origin", "HEAD:main"]);
    let pushed = git(&over_http, &["rev-parse", "HEAD"]);
    let remote = git(
        clones.path(),
        &[
            "ls-remote",
            &server.git_url("group/manifests"),
            "refs/heads/main",
            "refs/tags/v1",
        ],
    );
    assert!(
        remote.contains(&format!("{}\trefs/heads/main", pushed.trim())),
        "{remote}"
    );
    assert!(
        remote.contains(&format!("{first}\trefs/tags/v1")),
        "{remote}"
    );
}

#[test]
fn a_missing_repository_is_an_error_not_a_hang() {
    let server = GitServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for url in [server.git_url("nope"), server.http_url("nope")] {
        let out = Command::new("git")
            .current_dir(dir.path())
            .env("GIT_TERMINAL_PROMPT", "0")
            .args(["ls-remote", &url])
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{url} answered for a missing repository"
        );
    }
}

#[test]
fn redis_answers_and_stops_when_dropped() {
    let redis = Redis::start().unwrap();
    let port = redis.port();
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"PING\r\n").unwrap();
    let mut reply = [0u8; 7];
    conn.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+PONG\r\n");
    drop(conn);
    drop(redis);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "redis still listens after drop"
    );
}

#[test]
fn prometheus_is_ready_and_stops_when_dropped() {
    let prometheus = Prometheus::start().unwrap();
    let port = prometheus.port();
    let (status, _) = http_get(port, "/-/ready");
    assert_eq!(status, 200);
    let (status, body) = http_get(port, "/api/v1/status/buildinfo");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["status"], "success");
    assert!(
        info["data"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    drop(prometheus);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "prometheus still listens after drop"
    );
}
