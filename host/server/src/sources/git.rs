//! Blocking Git work through gix: mirroring a remote into the data dir, resolving a ref to a commit,
//! and reading the files of a commit's tree. Callers run these on blocking threads.

use super::SourceError;
use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::protocol::transport::client::blocking_io::http;
use gix::protocol::transport::client::git::blocking_io as daemon;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_config::gitops::GitRef;

/// The git daemon's port when a `git://` URL names none.
const DAEMON_PORT: u16 = 9418;

/// Where the remote's `HEAD` (its default branch) is kept in a mirror.
const MIRROR_HEAD: &str = "refs/tether/remote-head";

/// Credentials for HTTP(S) remotes, read from files when a fetch starts (so rotating the file works).
#[derive(Debug, Clone)]
pub(crate) struct HttpCredentials {
    pub(crate) username: String,
    pub(crate) password_file: PathBuf,
}

/// How one fetch is bounded: the async side sets `interrupt` when `timeout` has passed, and gix checks it
/// between reads; every read and write on the connection is bounded by `timeout` too, so a remote that
/// accepts and then says nothing cannot block the fetch in a read where the flag is never looked at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchBounds<'a> {
    pub(crate) timeout: Duration,
    pub(crate) interrupt: &'a AtomicBool,
}

/// Brings the mirror at `mirror` up to date with `url`: branches, tags and the remote's HEAD.
pub(crate) fn fetch(
    name: &str,
    url: &str,
    mirror: &Path,
    credentials: Option<&HttpCredentials>,
    bounds: FetchBounds<'_>,
) -> Result<(), SourceError> {
    let git = |op: &'static str| move |e| SourceError::git(name, op, e);
    let repo = if mirror.join("HEAD").exists() {
        gix::open(mirror).map_err(|e| SourceError::git(name, "open mirror", e))?
    } else {
        std::fs::create_dir_all(mirror).map_err(|e| SourceError::io(name, mirror, e))?;
        gix::init_bare(mirror).map_err(|e| SourceError::git(name, "create mirror", e))?
    };
    let password = match credentials {
        Some(c) => Some(
            std::fs::read_to_string(&c.password_file)
                .map_err(|e| SourceError::io(name, &c.password_file, e))?
                .trim_end()
                .to_owned(),
        ),
        None => None,
    };
    let remote = repo
        .remote_at(url)
        .map_err(git("remote url"))?
        .with_refspecs(
            [
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
                &format!("+HEAD:{MIRROR_HEAD}"),
            ],
            gix::remote::Direction::Fetch,
        )
        .map_err(git("refspecs"))?;
    if url.starts_with("git://") {
        let transport = git_daemon(name, url, bounds.timeout)?;
        return receive(name, remote.to_connection_with_transport(transport), bounds);
    }
    let mut connection = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(git("connect"))?;
    // HTTP(S): the same bound on every request of the fetch, through the HTTP client gix uses.
    let mut options = repo
        .transport_options(url, None)
        .map_err(git("transport options"))?;
    if let Some(http) = options
        .as_mut()
        .and_then(|o| o.downcast_mut::<http::Options>())
    {
        let timeout = bounds.timeout;
        let client = http::reqwest::Options {
            configure_client: Some(Box::new(move |builder| Ok(builder.timeout(timeout)))),
            ..Default::default()
        };
        http.backend = Some(Arc::new(Mutex::new(client)));
    }
    if let Some(options) = options {
        connection = connection.with_transport_options(options);
    }
    match (credentials, password) {
        (Some(c), Some(password)) => {
            let username = c.username.clone();
            let connection = connection.with_credentials(move |action| {
                Ok(match action {
                    gix::credentials::helper::Action::Get(ctx) => {
                        Some(gix::credentials::protocol::Outcome {
                            identity: gix::sec::identity::Account {
                                username: username.clone(),
                                password: password.clone(),
                                oauth_refresh_token: None,
                            },
                            next: ctx.into(),
                        })
                    }
                    _ => None,
                })
            });
            receive(name, connection, bounds)
        }
        _ => receive(name, connection, bounds),
    }
}

/// Negotiates and receives the pack on an open connection.
fn receive<T: gix::protocol::transport::client::blocking_io::Transport>(
    name: &str,
    connection: gix::remote::Connection<'_, '_, '_, T>,
    bounds: FetchBounds<'_>,
) -> Result<(), SourceError> {
    let git = |op: &'static str| move |e| SourceError::git(name, op, e);
    connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(git("list remote refs"))?
        .receive(gix::progress::Discard, bounds.interrupt)
        .map_err(git("fetch"))?;
    Ok(())
}

/// A connection to a git daemon whose socket reads and writes time out (gix's own has no read timeout).
fn git_daemon(
    name: &str,
    url: &str,
    timeout: Duration,
) -> Result<daemon::Connection<TcpStream, TcpStream>, SourceError> {
    let parsed = gix::url::parse(url.as_bytes().as_bstr())
        .map_err(|e| SourceError::git(name, "remote url", e))?;
    let host = parsed
        .host()
        .ok_or_else(|| SourceError::git(name, "remote url", "no host"))?
        .to_owned();
    let port = parsed.port;
    let io = |op: &'static str| move |e: std::io::Error| SourceError::git(name, op, e);
    let addr = (host.as_str(), port.unwrap_or(DAEMON_PORT))
        .to_socket_addrs()
        .map_err(io("resolve host"))?
        .next()
        .ok_or_else(|| SourceError::git(name, "resolve host", "no address"))?;
    let read = TcpStream::connect_timeout(&addr, timeout).map_err(io("connect"))?;
    read.set_read_timeout(Some(timeout))
        .map_err(io("connect"))?;
    read.set_write_timeout(Some(timeout))
        .map_err(io("connect"))?;
    let write = read.try_clone().map_err(io("connect"))?;
    Ok(daemon::Connection::new(
        read,
        write,
        gix::protocol::transport::Protocol::V2,
        parsed.path.clone(),
        Some((host, port)),
        gix::protocol::transport::client::git::ConnectMode::Daemon,
        false,
    ))
}

/// The commit `git_ref` points to in the repository at `path`; `None` for the default branch.
pub(crate) fn resolve(
    name: &str,
    path: &Path,
    mirrored: bool,
    git_ref: Option<&GitRef>,
) -> Result<ObjectId, SourceError> {
    let repo = gix::open(path).map_err(|e| SourceError::git(name, "open", e))?;
    let spec = match git_ref {
        None if mirrored => format!("{MIRROR_HEAD}^{{commit}}"),
        None => "HEAD^{commit}".to_owned(),
        Some(GitRef::Branch(b)) => format!("refs/heads/{b}^{{commit}}"),
        Some(GitRef::Tag(t)) => format!("refs/tags/{t}^{{commit}}"),
        Some(GitRef::Commit(c)) => format!("{c}^{{commit}}"),
    };
    let id = repo
        .rev_parse_single(spec.as_bytes().as_bstr())
        .map_err(|_| SourceError::NoSuchRef {
            repository: name.to_owned(),
            git_ref: git_ref.map_or_else(|| "the default branch".to_owned(), ToString::to_string),
        })?;
    Ok(id.detach())
}

/// A file of a tree: its path and how to get its content.
#[derive(Debug, Clone)]
pub struct TreeFileInfo {
    pub path: String,
    pub blob: ObjectId,
    pub size: u64,
    /// For a symbolic link pointing outside the repository: its target. Selecting such a file is an
    /// error; it is listed so that the error can name it.
    pub outside_target: Option<String>,
}

/// Every regular file of `commit`'s tree outside hidden directories, in path order. Symbolic links are
/// resolved inside the tree: one pointing at a file yields that file's content under the link's path, one
/// pointing outside the tree is marked (selecting it is an error), others (directories, dangling) are
/// skipped.
pub(crate) fn files(
    name: &str,
    path: &Path,
    commit: ObjectId,
) -> Result<Vec<TreeFileInfo>, SourceError> {
    let repo = gix::open(path).map_err(|e| SourceError::git(name, "open", e))?;
    let tree = repo
        .find_commit(commit)
        .map_err(|e| SourceError::git(name, "find commit", e))?
        .tree()
        .map_err(|e| SourceError::git(name, "read tree", e))?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut recorder)
        .map_err(|e| SourceError::git(name, "walk tree", e))?;
    let mut blobs = std::collections::BTreeMap::new();
    let mut links = Vec::new();
    for entry in recorder.records {
        let Ok(file) = entry.filepath.to_str() else {
            continue; // Kubernetes manifests have UTF-8 names; others cannot be selected by a glob either.
        };
        if hidden(file) {
            continue;
        }
        if entry.mode.is_link() {
            links.push((file.to_owned(), entry.oid));
        } else if entry.mode.is_blob() {
            blobs.insert(file.to_owned(), entry.oid);
        }
    }
    let mut out = Vec::with_capacity(blobs.len() + links.len());
    for (file, oid) in &blobs {
        out.push(TreeFileInfo {
            path: file.clone(),
            blob: *oid,
            size: header_size(&repo, name, *oid)?,
            outside_target: None,
        });
    }
    for (link, oid) in links {
        let target = repo
            .find_blob(oid)
            .map_err(|e| SourceError::git(name, "read link", e))?;
        let target = String::from_utf8_lossy(&target.data).into_owned();
        match resolve_link(&link, &target) {
            None => out.push(TreeFileInfo {
                path: link,
                blob: oid,
                size: 0,
                outside_target: Some(target),
            }),
            Some(resolved) => {
                if let Some(oid) = blobs.get(&resolved) {
                    out.push(TreeFileInfo {
                        path: link,
                        blob: *oid,
                        size: header_size(&repo, name, *oid)?,
                        outside_target: None,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn header_size(repo: &gix::Repository, name: &str, oid: ObjectId) -> Result<u64, SourceError> {
    repo.find_header(oid)
        .map(|h| h.size())
        .map_err(|e| SourceError::git(name, "read object header", e))
}

/// The content of a blob.
pub(crate) fn blob(name: &str, path: &Path, oid: ObjectId) -> Result<Vec<u8>, SourceError> {
    let repo = gix::open(path).map_err(|e| SourceError::git(name, "open", e))?;
    let blob = repo
        .find_blob(oid)
        .map_err(|e| SourceError::git(name, "read file", e))?;
    Ok(blob.detach().data)
}

/// The content of the file at `file` in `commit`, if there is one (a regular file, not in a hidden dir
/// unless asked for by its exact path). A file larger than `max_size` is an error, found from the
/// object's header before its content is read.
pub(crate) fn file_at(
    name: &str,
    path: &Path,
    commit: ObjectId,
    file: &str,
    max_size: u64,
) -> Result<Option<Vec<u8>>, SourceError> {
    let repo = gix::open(path).map_err(|e| SourceError::git(name, "open", e))?;
    let tree = repo
        .find_commit(commit)
        .map_err(|e| SourceError::git(name, "find commit", e))?
        .tree()
        .map_err(|e| SourceError::git(name, "read tree", e))?;
    let entry = tree
        .lookup_entry_by_path(file)
        .map_err(|e| SourceError::git(name, "look up file", e))?;
    match entry {
        Some(entry) if entry.mode().is_blob() => {
            let size = header_size(&repo, name, entry.object_id())?;
            if size > max_size {
                return Err(SourceError::TooLarge {
                    repository: name.to_owned(),
                    path: file.to_owned(),
                    size,
                    limit: max_size,
                });
            }
            let blob = repo
                .find_blob(entry.object_id())
                .map_err(|e| SourceError::git(name, "read file", e))?;
            Ok(Some(blob.detach().data))
        }
        _ => Ok(None),
    }
}

/// Whether a path lies in (or is) a hidden file or directory: GitLab skips hidden directories, and
/// `.git*` files are never manifests.
fn hidden(path: &str) -> bool {
    path.split('/').any(|part| part.starts_with('.'))
}

/// Resolves a link's target relative to the link's directory; `None` when it leaves the tree.
fn resolve_link(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_inside_the_tree_only() {
        assert_eq!(
            resolve_link("a/b.yaml", "c.yaml").as_deref(),
            Some("a/c.yaml")
        );
        assert_eq!(
            resolve_link("a/b.yaml", "../c.yaml").as_deref(),
            Some("c.yaml")
        );
        assert_eq!(resolve_link("a/b.yaml", "../../c.yaml"), None);
        assert_eq!(resolve_link("b.yaml", "/etc/passwd"), None);
        assert_eq!(resolve_link("b.yaml", "../x"), None);
    }

    #[test]
    fn hidden_paths_are_recognised() {
        assert!(hidden(".git/config"));
        assert!(hidden("a/.secret/b.yaml"));
        assert!(hidden(".gitlab-ci.yml"));
        assert!(!hidden("a/b.yaml"));
    }
}
