//! The gitops feature's server part: `GetObjectsToSynchronize`. Checks what the agent may read, follows
//! the (repository, ref) poller, and sends a complete set of files — or an error naming the limit and
//! the file — whenever the commit changes.
//!
//! Limits are checked from the tree (object header sizes) before any content is read, and a set is read
//! once however many agents watch the same repository, commit and paths: [`ReadSets`] hands them one
//! `Arc`, kept alive while any of them is on that commit.

use crate::auth::agent_of;
use crate::context::Context;
use crate::sources::{SourceKey, SourceState};
use bytes::Bytes;
use gix::ObjectId;
use globset::{GlobSet, GlobSetBuilder};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use tether_config::gitops::{GitRef, build_glob};
use tether_rpc::gitops::v1::gitops_service_server::{GitopsService, GitopsServiceServer};
use tether_rpc::gitops::v1::{ObjectsToSynchronizeRequest, ObjectsToSynchronizeResponse, r#ref};
use tether_rpc::limits::{MAX_FILE_SIZE, MAX_FILES, MAX_PATHS, MAX_TOTAL_SIZE, format_size};
use tether_rpc::sync_stream::encode_set;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Why a set of files cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("file `{path}` is {}; the limit is {} per file", format_size(*size), format_size(MAX_FILE_SIZE))]
    FileTooLarge { path: String, size: u64 },
    #[error(
        "the selected files total more than the limit of {} per sync (reached at `{path}`)",
        format_size(MAX_TOTAL_SIZE)
    )]
    TotalTooLarge { path: String },
    #[error("more than the limit of {MAX_FILES} files per sync are selected (reached at `{path}`)")]
    TooManyFiles { path: String },
    #[error("symbolic link `{path}` points outside the repository (`{target}`)")]
    SymlinkOutside { path: String, target: String },
    #[error(transparent)]
    Source(#[from] crate::sources::SourceError),
}

impl SyncError {
    fn status(&self) -> Status {
        match self {
            SyncError::Source(e) => Status::unavailable(e.to_string()),
            other => Status::failed_precondition(other.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gitops {
    ctx: Arc<Context>,
    sets: Arc<ReadSets>,
}

impl Gitops {
    pub fn server(ctx: Arc<Context>) -> GitopsServiceServer<Self> {
        GitopsServiceServer::new(Self {
            ctx,
            sets: Arc::new(ReadSets::default()),
        })
    }
}

/// The files of one set, as sent.
pub type Files = Arc<Vec<(String, Bytes)>>;

/// What a set is read for: the commit stands for the ref it was resolved from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SetKey {
    repository: String,
    commit: ObjectId,
    /// The requested globs, sorted and without duplicates.
    globs: Vec<String>,
}

/// A set being read or read: whoever asks while it is read waits for the same read.
type SharedSet = Arc<tokio::sync::OnceCell<Files>>;

/// Sets in use, shared by every stream that wants the same one. The map holds them weakly: a set lives
/// while a stream holds it (the last set each stream sent), and its entry is dropped after it.
#[derive(Debug, Default)]
pub struct ReadSets {
    sets: Mutex<HashMap<SetKey, Weak<tokio::sync::OnceCell<Files>>>>,
}

impl ReadSets {
    /// The shared set of `key`, read by `read` unless someone has it already or is reading it.
    async fn get_or_read<F>(&self, key: SetKey, read: F) -> Result<(SharedSet, Files), SyncError>
    where
        F: Future<Output = Result<Files, SyncError>>,
    {
        let shared = {
            let mut sets = self
                .sets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            sets.retain(|_, set| set.strong_count() > 0);
            match sets.get(&key).and_then(Weak::upgrade) {
                Some(shared) => shared,
                None => {
                    let shared = SharedSet::default();
                    sets.insert(key, Arc::downgrade(&shared));
                    shared
                }
            }
        };
        // A failed read is not kept: the next stream tries again (limit errors come from the tree and
        // cost no content reads).
        let files = shared.get_or_try_init(|| read).await?.clone();
        Ok((shared, files))
    }

    /// Sets alive now.
    pub fn len(&self) -> usize {
        self.sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|set| set.strong_count() > 0)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

type SyncStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<ObjectsToSynchronizeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl GitopsService for Gitops {
    type GetObjectsToSynchronizeStream = SyncStream;

    async fn get_objects_to_synchronize(
        &self,
        request: Request<ObjectsToSynchronizeRequest>,
    ) -> Result<Response<SyncStream>, Status> {
        let who = agent_of(&request)?;
        let request = request.into_inner();
        let repository = request.project_id;
        if !self.ctx.may_read(&who.agent, &repository) {
            // The same answer for unknown and forbidden repositories: no probing for names.
            return Err(Status::permission_denied(format!(
                "agent `{}` may not read repository `{repository}`",
                who.agent.name
            )));
        }
        let git_ref = match request.r#ref.and_then(|r| r.r#ref) {
            None => None,
            Some(r#ref::Ref::Branch(b)) => Some(GitRef::Branch(b)),
            Some(r#ref::Ref::Tag(t)) => Some(GitRef::Tag(t)),
            Some(r#ref::Ref::Commit(c)) => Some(GitRef::Commit(c.to_ascii_lowercase())),
        };
        let globs = glob_set(request.paths.iter().map(|p| p.glob.as_str()))?;
        let mut patterns: Vec<String> = request.paths.into_iter().map(|p| p.glob).collect();
        patterns.sort();
        patterns.dedup();
        let last = parse_commit(&request.commit_id)?;
        let state = self
            .ctx
            .sources
            .watch(SourceKey {
                repository: repository.clone(),
                git_ref,
            })
            .map_err(|e| Status::internal(e.to_string()))?;
        let (tx, rx) = mpsc::channel(16);
        let stream = SyncTask {
            ctx: self.ctx.clone(),
            sets: self.sets.clone(),
            repository,
            globs,
            patterns,
            last,
            held: None,
            token_id: who.token_id,
            tx,
        };
        self.ctx.tracker.spawn(stream.run(state));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Parses a commit id from a request; empty means none.
pub(crate) fn parse_commit(text: &str) -> Result<Option<ObjectId>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    ObjectId::from_hex(text.as_bytes())
        .map(Some)
        .map_err(|_| Status::invalid_argument("commit_id must be a full hex commit id"))
}

/// The selectors of a request as one matcher; refused when they could leave the repository.
fn glob_set<'a>(globs: impl ExactSizeIterator<Item = &'a str>) -> Result<GlobSet, Status> {
    if globs.len() > MAX_PATHS {
        return Err(Status::invalid_argument(format!(
            "{} paths requested; the limit is {MAX_PATHS} paths",
            globs.len()
        )));
    }
    let mut builder = GlobSetBuilder::new();
    let mut any = false;
    for glob in globs {
        // The agent's engine and normalisation, so both agree on what a glob selects.
        builder.add(build_glob(glob).map_err(Status::invalid_argument)?);
        any = true;
    }
    if !any {
        return Err(Status::invalid_argument(format!(
            "no paths requested (GitLab's default is `{}`)",
            tether_config::gitops::DEFAULT_GLOB
        )));
    }
    builder
        .build()
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

/// One agent's stream.
struct SyncTask {
    ctx: Arc<Context>,
    sets: Arc<ReadSets>,
    repository: String,
    globs: GlobSet,
    /// The globs as requested, sorted: part of the shared set's key.
    patterns: Vec<String>,
    last: Option<ObjectId>,
    /// The set last sent, so streams on the same commit share it instead of reading it again.
    held: Option<SharedSet>,
    token_id: i64,
    tx: mpsc::Sender<Result<ObjectsToSynchronizeResponse, Status>>,
}

impl SyncTask {
    async fn send(&self, message: Result<ObjectsToSynchronizeResponse, Status>) -> bool {
        self.ctx.send(&self.tx, message).await
    }

    async fn run(mut self, mut state: watch::Receiver<SourceState>) {
        loop {
            let (current, never_read) = {
                let state = state.borrow_and_update();
                (state.commit, state.never_read().map(str::to_owned))
            };
            if let Some(error) = never_read {
                self.send(Err(Status::unavailable(error))).await;
                return;
            }
            if let Some(commit) = current
                && Some(commit) != self.last
            {
                if !self.ctx.token_active(self.token_id).await {
                    self.send(Err(crate::auth::unauthenticated())).await;
                    return;
                }
                let key = SetKey {
                    repository: self.repository.clone(),
                    commit,
                    globs: self.patterns.clone(),
                };
                match self.sets.get_or_read(key, self.collect(commit)).await {
                    Ok((shared, files)) => {
                        self.held = Some(shared);
                        for message in encode_set(&commit.to_string(), &files) {
                            if !self.send(Ok(message)).await {
                                return;
                            }
                        }
                        self.ctx.metrics.inc(
                            "tether_server_sync_sets_total",
                            &[("repository", &self.repository)],
                        );
                        self.last = Some(commit);
                    }
                    Err(e) => {
                        if !matches!(e, SyncError::Source(_)) {
                            self.ctx.metrics.inc(
                                "tether_server_sync_limit_errors_total",
                                &[("repository", &self.repository)],
                            );
                        }
                        self.send(Err(e.status())).await;
                        return;
                    }
                }
            }
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                () = self.tx.closed() => return,
                () = self.ctx.cancel.cancelled() => return,
                () = tokio::time::sleep(crate::context::TOKEN_RECHECK) => {
                    if !self.ctx.token_active(self.token_id).await {
                        self.send(Err(crate::auth::unauthenticated())).await;
                        return;
                    }
                }
            }
        }
    }

    /// The selected files of `commit`, all limits checked from the tree before any content is read.
    async fn collect(&self, commit: ObjectId) -> Result<Files, SyncError> {
        let listed = self.ctx.sources.files(&self.repository, commit).await?;
        let mut selected = Vec::new();
        let mut total = 0u64;
        for file in listed.into_iter().filter(|f| self.globs.is_match(&f.path)) {
            if let Some(target) = file.outside_target {
                return Err(SyncError::SymlinkOutside {
                    path: file.path,
                    target,
                });
            }
            if selected.len() == MAX_FILES {
                return Err(SyncError::TooManyFiles { path: file.path });
            }
            if file.size > MAX_FILE_SIZE {
                return Err(SyncError::FileTooLarge {
                    path: file.path,
                    size: file.size,
                });
            }
            total += file.size;
            if total > MAX_TOTAL_SIZE {
                return Err(SyncError::TotalTooLarge { path: file.path });
            }
            selected.push(file);
        }
        self.ctx.metrics.inc(
            "tether_server_sync_set_reads_total",
            &[("repository", &self.repository)],
        );
        let mut files = Vec::with_capacity(selected.len());
        for file in selected {
            let content = self.ctx.sources.blob(&self.repository, file.blob).await?;
            files.push((file.path, Bytes::from(content)));
        }
        Ok(Arc::new(files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_gitlabs() {
        let set = glob_set(["/**/*.{yaml,yml,json}"].into_iter()).unwrap();
        assert!(set.is_match("a.yaml"));
        assert!(set.is_match("a/b/c.json"));
        assert!(!set.is_match("a/b/c.txt"));
        let set = glob_set(["team1/app1/*.yaml"].into_iter()).unwrap();
        assert!(set.is_match("team1/app1/x.yaml"));
        assert!(
            !set.is_match("team1/app1/sub/x.yaml"),
            "`*` does not cross directories"
        );
    }

    #[test]
    fn globs_that_leave_the_repository_are_refused() {
        for bad in ["../x/*.yaml", "a/../../b", "//etc/passwd"] {
            let e = glob_set([bad].into_iter()).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad}");
        }
        let many: Vec<String> = (0..=MAX_PATHS).map(|i| format!("p{i}/*.yaml")).collect();
        let e = glob_set(many.iter().map(String::as_str)).unwrap_err();
        assert!(
            e.message().contains("limit is 100 paths"),
            "{}",
            e.message()
        );
        assert!(glob_set(std::iter::empty()).is_err());
    }
}
