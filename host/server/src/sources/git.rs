//! Blocking Git work through gix: mirroring a remote into the data dir, resolving a ref to a commit,
//! and reading the files of a commit's tree. Callers run these on blocking threads.

use super::SourceError;
use gix::ObjectId;
use gix::bstr::ByteSlice;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use tether_config::gitops::GitRef;

/// Where the remote's `HEAD` (its default branch) is kept in a mirror.
const MIRROR_HEAD: &str = "refs/tether/remote-head";

/// Credentials for HTTP(S) remotes, read from files when a fetch starts (so rotating the file works).
#[derive(Debug, Clone)]
pub(crate) struct HttpCredentials {
    pub(crate) username: String,
    pub(crate) password_file: PathBuf,
}

/// Brings the mirror at `mirror` up to date with `url`: branches, tags and the remote's HEAD.
pub(crate) fn fetch(
    name: &str,
    url: &str,
    mirror: &Path,
    credentials: Option<&HttpCredentials>,
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
    let connection = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(git("connect"))?;
    let interrupt = AtomicBool::new(false);
    let prepare = match (credentials, password) {
        (Some(c), Some(password)) => {
            let username = c.username.clone();
            connection
                .with_credentials(move |action| {
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
                })
                .prepare_fetch(gix::progress::Discard, Default::default())
                .map_err(git("list remote refs"))?
                .receive(gix::progress::Discard, &interrupt)
        }
        _ => connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(git("list remote refs"))?
            .receive(gix::progress::Discard, &interrupt),
    };
    prepare.map_err(git("fetch"))?;
    Ok(())
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
/// unless asked for by its exact path).
pub(crate) fn file_at(
    name: &str,
    path: &Path,
    commit: ObjectId,
    file: &str,
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
