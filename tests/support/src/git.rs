//! Real Git servers for tests: `git daemon` (git://) and `git http-backend` (smart HTTP), both
//! serving one directory of bare repositories, plus work trees to commit and push from.
//!
//! The listening sockets are this process's own, bound before `start` returns, so a test never
//! races a server's start-up. Each git:// connection is handed to `git daemon --inetd` and each
//! HTTP request to `git http-backend` as a CGI program — the same programs a Git host runs.

use std::ffi::OsStr;
use std::net::TcpListener as StdListener;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

/// Serves the bare repositories under one directory over git:// and smart HTTP until dropped.
#[derive(Debug)]
pub struct GitServer {
    root: tempfile::TempDir,
    git_port: u16,
    http_port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl GitServer {
    pub fn start() -> Result<Self> {
        let root = tempfile::Builder::new().prefix("tether-git-").tempdir()?;
        let git = StdListener::bind("127.0.0.1:0")?;
        let http = StdListener::bind("127.0.0.1:0")?;
        let (git_port, http_port) = (git.local_addr()?.port(), http.local_addr()?.port());
        git.set_nonblocking(true)?;
        http.set_nonblocking(true)?;
        let (tx, rx) = oneshot::channel();
        let base = root.path().to_owned();
        // A runtime of its own, so the server works the same under any test runtime (or none).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("git-server".into())
            .spawn(move || runtime.block_on(serve(base, git, http, rx)))?;
        Ok(Self {
            root,
            git_port,
            http_port,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The directory holding the bare repositories.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `git://` URL of repository `name`.
    pub fn git_url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}.git", self.git_port)
    }

    /// Smart HTTP URL of repository `name`.
    pub fn http_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}.git", self.http_port)
    }

    /// Creates an empty bare repository `name` (default branch `main`) and a work tree cloned
    /// from it.
    pub fn create_repo(&self, name: &str) -> Result<Repo> {
        Repo::create(self.root.path(), name)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    root: PathBuf,
    git: StdListener,
    http: StdListener,
    shutdown: oneshot::Receiver<()>,
) {
    let (Ok(git), Ok(http)) = (
        tokio::net::TcpListener::from_std(git),
        tokio::net::TcpListener::from_std(http),
    ) else {
        return;
    };
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Ok((stream, _)) = git.accept() => {
                let root = root.clone();
                connections.spawn(async move {
                    if let Err(e) = git_daemon_connection(&root, stream).await {
                        tracing::warn!("git daemon connection: {e:#}");
                    }
                });
            }
            Ok((stream, _)) = http.accept() => {
                let root = root.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let root = root.clone();
                        async move { Ok::<_, std::convert::Infallible>(http_backend(&root, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next() => {}
        }
    }
    // Dropping the set aborts in-flight connections; their children are killed on drop.
    connections.shutdown().await;
}

/// Hands one connection to `git daemon --inetd`, as inetd would.
async fn git_daemon_connection(root: &Path, stream: tokio::net::TcpStream) -> Result<()> {
    let stream = stream.into_std()?;
    // The child reads and writes the socket with blocking calls.
    stream.set_nonblocking(false)?;
    let input = OwnedFd::from(stream.try_clone()?);
    let output = OwnedFd::from(stream);
    let mut child = tokio::process::Command::new("git")
        .arg("daemon")
        .arg("--inetd")
        .arg("--export-all")
        .arg("--informative-errors")
        .arg("--enable=receive-pack")
        .arg(format!("--base-path={}", root.display()))
        .arg(root)
        .envs(isolated_git_env())
        .stdin(Stdio::from(input))
        .stdout(Stdio::from(output))
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start git daemon --inetd")?;
    child.wait().await?;
    Ok(())
}

/// Runs `git http-backend` as a CGI program for one request.
async fn http_backend(root: &Path, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match run_cgi(root, req).await {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = Response::new(Full::new(Bytes::from(format!("{e:#}\n"))));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

async fn run_cgi(root: &Path, req: Request<Incoming>) -> Result<Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .envs(isolated_git_env())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        // http-backend refuses pushes from anonymous users.
        .env("REMOTE_USER", "tether-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("start git http-backend")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let write = async move {
        stdin.write_all(&body).await?;
        drop(stdin);
        Ok::<_, std::io::Error>(())
    };
    let (written, output) = tokio::join!(write, child.wait_with_output());
    written?;
    let output = output?;
    parse_cgi_response(&output.stdout).with_context(|| {
        format!(
            "git http-backend: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn parse_cgi_response(raw: &[u8]) -> Result<Response<Full<Bytes>>> {
    let (head, body) = match find(raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match find(raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => bail!("no header block in CGI output"),
        },
    };
    let mut resp = Response::new(Full::new(Bytes::copy_from_slice(body)));
    for line in std::str::from_utf8(head)?.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            *resp.status_mut() = StatusCode::from_bytes(code.as_bytes())?;
        } else {
            resp.headers_mut().append(
                hyper::header::HeaderName::from_bytes(name.as_bytes())?,
                value.parse()?,
            );
        }
    }
    Ok(resp)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Git configuration of the machine or user must not change what a test sees.
fn isolated_git_env() -> [(&'static str, &'static str); 3] {
    [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_TERMINAL_PROMPT", "0"),
    ]
}

/// A bare repository on a [`GitServer`] and a work tree to change it from.
#[derive(Debug)]
pub struct Repo {
    name: String,
    bare: PathBuf,
    work: tempfile::TempDir,
}

impl Repo {
    fn create(root: &Path, name: &str) -> Result<Self> {
        let bare = root.join(format!("{name}.git"));
        if let Some(parent) = bare.parent() {
            std::fs::create_dir_all(parent)?;
        }
        git(root, ["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&bare)
            .run()?;
        let work = tempfile::Builder::new().prefix("tether-work-").tempdir()?;
        git(work.path(), ["init", "--quiet", "--initial-branch=main"]).run()?;
        git(work.path(), ["remote", "add", "origin"])
            .arg(&bare)
            .run()?;
        Ok(Self {
            name: name.to_owned(),
            bare,
            work,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of the bare repository (what a server reads by path).
    pub fn bare_path(&self) -> &Path {
        &self.bare
    }

    /// Path of the work tree.
    pub fn work_path(&self) -> &Path {
        self.work.path()
    }

    /// Writes a file in the work tree, creating its directories.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) -> Result<&Self> {
        let full = self.work.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, contents).with_context(|| format!("write {}", full.display()))?;
        Ok(self)
    }

    /// Removes a file from the work tree.
    pub fn remove(&self, path: &str) -> Result<&Self> {
        let full = self.work.path().join(path);
        std::fs::remove_file(&full).with_context(|| format!("remove {}", full.display()))?;
        Ok(self)
    }

    /// Commits everything in the work tree to `branch` and pushes it; returns the commit id.
    pub fn commit_to(&self, branch: &str, message: &str) -> Result<String> {
        let work = self.work.path();
        git(work, ["add", "--all"]).run()?;
        git(work, ["commit", "--quiet", "--allow-empty", "-m", message]).run()?;
        git(work, ["push", "--quiet", "origin"])
            .arg(format!("HEAD:refs/heads/{branch}"))
            .run()?;
        self.head()
    }

    /// Commits everything in the work tree to `main` and pushes it; returns the commit id.
    pub fn commit(&self, message: &str) -> Result<String> {
        self.commit_to("main", message)
    }

    /// Tags the work tree's HEAD and pushes the tag.
    pub fn tag(&self, tag: &str) -> Result<()> {
        let work = self.work.path();
        git(work, ["tag", tag]).run()?;
        git(work, ["push", "--quiet", "origin"])
            .arg(format!("refs/tags/{tag}"))
            .run()
    }

    /// The work tree's HEAD commit id.
    pub fn head(&self) -> Result<String> {
        let out = git(self.work.path(), ["rev-parse", "HEAD"]).output()?;
        Ok(out.trim().to_owned())
    }
}

/// A `git` invocation with the test identity and no outside configuration.
fn git<I, S>(dir: &Path, args: I) -> GitCommand
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .envs(isolated_git_env())
        .env("GIT_AUTHOR_NAME", "Tether Test")
        .env("GIT_AUTHOR_EMAIL", "test@tether.invalid")
        .env("GIT_COMMITTER_NAME", "Tether Test")
        .env("GIT_COMMITTER_EMAIL", "test@tether.invalid")
        .args(args);
    GitCommand(cmd)
}

struct GitCommand(Command);

impl GitCommand {
    fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.0.arg(arg);
        self
    }

    fn output(mut self) -> Result<String> {
        let out = self.0.output().context("run git")?;
        if !out.status.success() {
            bail!(
                "{:?} failed: {}",
                self.0,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    fn run(self) -> Result<()> {
        self.output().map(drop)
    }
}
