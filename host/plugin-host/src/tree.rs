//! The source tree a renderer sees at `/src`: only directories, regular files and symlinks.
//!
//! Anything else — a FIFO, a socket, a device — would block the host thread that opens it in
//! wasmtime's WASI implementation beyond any timer's reach (opening a FIFO waits for a writer). A
//! tree from Git never holds one (the agent writes regular files only), but `tether render` reads a
//! local directory. Such files are left out, not refused: when a tree holds one, the plugin sees a
//! copy of the tree without them (regular files hard-linked where the file system allows, copied
//! otherwise; symlinks recreated as they are) and the render gets a warning per file left out.
//! A tree without one — every tree in the agent — is handed over as it is, after one walk.

use crate::text;
use std::path::{Path, PathBuf};

/// Most non-regular files named one by one in warnings; the rest are counted.
const NAMED_SKIPPED: usize = 20;

/// The directory to preopen for a call, and what was left out of it.
#[derive(Debug)]
pub(crate) struct SourceTree {
    path: PathBuf,
    /// The filtered copy, removed when the call is over.
    _copy: Option<tempfile::TempDir>,
    /// Tree-relative paths of the files left out.
    pub(crate) skipped: Vec<String>,
}

impl SourceTree {
    /// Walk `dir`; when it holds a non-regular file, build the filtered copy.
    pub(crate) fn prepare(dir: &Path) -> Result<Self, String> {
        let walk = Walk::of(dir)?;
        if walk.special.is_empty() {
            return Ok(SourceTree {
                path: dir.to_path_buf(),
                _copy: None,
                skipped: Vec::new(),
            });
        }
        let copy = tempfile::Builder::new()
            .prefix("tether-src-")
            .tempdir()
            .map_err(|e| format!("cannot make a copy without its special files: {e}"))?;
        for entry in &walk.entries {
            let to = copy.path().join(&entry.relative);
            let from = dir.join(&entry.relative);
            let made = match entry.kind {
                Kind::Dir => std::fs::create_dir(&to),
                // A hard link shares the inode, which stays a regular file whatever happens to the
                // name in the original tree afterwards.
                Kind::File => {
                    std::fs::hard_link(&from, &to).or_else(|_| std::fs::copy(&from, &to).map(drop))
                }
                Kind::Symlink => std::fs::read_link(&from)
                    .and_then(|target| std::os::unix::fs::symlink(target, &to)),
            };
            made.map_err(|e| {
                format!(
                    "cannot copy `{}` into a tree without special files: {e}",
                    shown(&entry.relative)
                )
            })?;
        }
        Ok(SourceTree {
            path: copy.path().to_path_buf(),
            _copy: Some(copy),
            skipped: walk.special.iter().map(|p| shown(p)).collect(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// One warning per file left out (the first [`NAMED_SKIPPED`]), then one counting the rest.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self
            .skipped
            .iter()
            .take(NAMED_SKIPPED)
            .map(|path| {
                format!(
                    "`{path}` is not a regular file (a FIFO, socket or device); it was left out of \
                     the source tree"
                )
            })
            .collect();
        if self.skipped.len() > NAMED_SKIPPED {
            warnings.push(format!(
                "{} more files that are not regular files were left out of the source tree",
                self.skipped.len() - NAMED_SKIPPED
            ));
        }
        warnings
    }
}

fn shown(relative: &Path) -> String {
    text::guest_text(&relative.display().to_string(), text::PATH_CAP)
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Dir,
    File,
    Symlink,
}

#[derive(Debug)]
struct Entry {
    relative: PathBuf,
    kind: Kind,
}

/// Everything under a tree, parents before children, and its non-regular files apart.
#[derive(Debug, Default)]
struct Walk {
    entries: Vec<Entry>,
    special: Vec<PathBuf>,
}

impl Walk {
    /// Iterative, so that a deep tree costs heap, not stack.
    fn of(root: &Path) -> Result<Self, String> {
        let mut walk = Walk::default();
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            let current = root.join(&relative);
            let entries = std::fs::read_dir(&current)
                .map_err(|e| format!("cannot list {}: {e}", current.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("cannot list {}: {e}", current.display()))?;
                let path = relative.join(entry.file_name());
                // `file_type` does not follow symlinks: a symlink is kept as one, whatever it
                // points at.
                let kind = entry
                    .file_type()
                    .map_err(|e| format!("cannot read {}: {e}", root.join(&path).display()))?;
                let kind = if kind.is_dir() {
                    pending.push(path.clone());
                    Kind::Dir
                } else if kind.is_file() {
                    Kind::File
                } else if kind.is_symlink() {
                    Kind::Symlink
                } else {
                    walk.special.push(path);
                    continue;
                };
                // A directory is recorded before it is listed: parents come before children.
                walk.entries.push(Entry {
                    relative: path,
                    kind,
                });
            }
        }
        Ok(walk)
    }
}
