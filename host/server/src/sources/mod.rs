//! Git sources: the repositories of the server config, each read in place (a local path) or mirrored
//! into the data dir (a URL), and one poller per (repository, ref) shared by every watcher.
//!
//! A poller publishes the latest commit in a `tokio::sync::watch`; watchers (configuration and gitops
//! streams of any number of agents) subscribe and never touch Git to learn about new commits. Pollers
//! wake every poll interval or at once on [`Sources::notify`] (push endpoints, `tether-server notify`).
//! When the remote fails, the poller backs off with jitter, keeps serving the last known commit and
//! says so in its status. A poller stops, and leaves the map of pollers, when its last watcher is gone.
//!
//! Every fetch is bounded by `fetch_timeout`: past it the fetch is interrupted and the poll fails with
//! an error naming the repository, while the last commit read stays served. A fetch that is still
//! stuck in the background blocks the next fetch of that mirror from starting (never two at once).

mod git;

use crate::metrics::Metrics;
use gix::ObjectId;
use rand::Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_config::gitops::GitRef;
use tether_config::server::{Repository, RepositorySource, ServerConfig};
use tether_rpc::limits::format_size;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use git::TreeFileInfo;

/// First wait after a failed poll; doubles up to the poll interval.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// After this long without a failure, a new failure starts the backoff from the beginning again.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("repository `{0}` is not in the server configuration")]
    UnknownRepository(String),
    #[error("repository `{repository}`: {operation}: {message}")]
    Git {
        repository: String,
        operation: &'static str,
        message: String,
    },
    #[error("repository `{repository}`: {path}: {source}")]
    Io {
        repository: String,
        path: String,
        source: std::io::Error,
    },
    #[error("repository `{repository}` has no {git_ref}")]
    NoSuchRef { repository: String, git_ref: String },
    #[error(
        "repository `{repository}`: file `{path}` is {}; the limit is {}",
        format_size(*size),
        format_size(*limit)
    )]
    TooLarge {
        repository: String,
        path: String,
        size: u64,
        limit: u64,
    },
    #[error("repository `{repository}`: fetch did not finish within {}s; interrupted", timeout.as_secs_f32())]
    FetchTimeout {
        repository: String,
        timeout: Duration,
    },
    #[error(
        "repository `{0}`: the previous fetch (interrupted after its timeout) has not ended yet; not starting another"
    )]
    FetchStillRunning(String),
    #[error("repository `{0}` has not been read yet")]
    NotReady(String),
}

impl SourceError {
    fn git(repository: &str, operation: &'static str, e: impl std::fmt::Display) -> Self {
        SourceError::Git {
            repository: repository.to_owned(),
            operation,
            // gix errors show their whole chain of causes only in the alternate form.
            message: format!("{e:#}"),
        }
    }

    fn io(repository: &str, path: &Path, source: std::io::Error) -> Self {
        SourceError::Io {
            repository: repository.to_owned(),
            path: path.display().to_string(),
            source,
        }
    }
}

/// What a poller knows: the latest commit and how polling goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceState {
    /// The last commit read successfully; kept while the remote fails.
    #[serde(serialize_with = "serialize_commit")]
    pub commit: Option<ObjectId>,
    pub status: SourceStatus,
}

impl SourceState {
    /// The error to give a stream when there is nothing to serve yet and the repository cannot be
    /// read: the stream ends with it instead of leaving the agent waiting (it reconnects with
    /// backoff).
    pub fn never_read(&self) -> Option<&str> {
        match (&self.commit, &self.status) {
            (None, SourceStatus::Failing { error, .. }) => Some(error),
            _ => None,
        }
    }
}

fn serialize_commit<S: serde::Serializer>(c: &Option<ObjectId>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Some(id) => s.serialize_some(&id.to_string()),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SourceStatus {
    Starting,
    Ok,
    /// Polling fails; `commit` is the last one read.
    Failing {
        error: String,
        attempts: u32,
    },
}

/// Which commit of which repository a poller follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceKey {
    pub repository: String,
    pub git_ref: Option<GitRef>,
}

/// A configured repository, ready to read.
#[derive(Debug)]
struct Source {
    config: Repository,
    /// Where gix reads it: the path itself or the mirror.
    git_dir: PathBuf,
    remote: Option<(String, Option<git::HttpCredentials>)>,
    poll_interval: Duration,
    fetch_timeout: Duration,
    /// Serialises fetches into one mirror.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Held by the blocking thread of a fetch for as long as it runs, which can outlast an interrupted
    /// fetch's timeout: a new fetch into the mirror is refused until it is free, never run alongside.
    fetching: Arc<Mutex<()>>,
}

struct Poller {
    /// Tells this poller from a later one of the same key when it removes itself.
    id: u64,
    state: watch::Sender<SourceState>,
    wake: Arc<Notify>,
}

/// Running pollers by key, and their number for observers.
#[derive(Default)]
struct Pollers {
    running: Mutex<HashMap<SourceKey, Poller>>,
    count: watch::Sender<usize>,
}

impl Pollers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SourceKey, Poller>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Removes the poller `id` of `key`, unless a newer poller took its place already.
    fn remove(&self, key: &SourceKey, id: u64) {
        let mut running = self.lock();
        if running.get(key).is_some_and(|p| p.id == id) {
            running.remove(key);
        }
        self.count.send_replace(running.len());
    }
}

/// The repositories and their pollers.
pub struct Sources {
    sources: HashMap<String, Arc<Source>>,
    pollers: Arc<Pollers>,
    next_poller: AtomicU64,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("repositories", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl Sources {
    /// The repositories of `config`; mirrors go under `<data_dir>/mirrors`.
    pub fn new(config: &ServerConfig, metrics: Arc<Metrics>) -> Self {
        let mirrors = config.data_dir.join("mirrors");
        let sources = config
            .repositories
            .iter()
            .map(|repo| {
                let (git_dir, remote) = match &repo.source {
                    RepositorySource::Path(path) => (path.clone(), None),
                    RepositorySource::Url {
                        url,
                        username,
                        password_file,
                    } => {
                        let credentials = password_file.as_ref().map(|file| git::HttpCredentials {
                            username: username.clone().unwrap_or_else(|| "tether".to_owned()),
                            password_file: file.clone(),
                        });
                        (
                            mirrors.join(mirror_dir_name(&repo.name)),
                            Some((url.clone(), credentials)),
                        )
                    }
                };
                let source = Source {
                    config: repo.clone(),
                    git_dir,
                    remote,
                    poll_interval: repo.poll_interval.unwrap_or(config.poll_interval),
                    fetch_timeout: config.fetch_timeout,
                    fetch_lock: tokio::sync::Mutex::new(()),
                    fetching: Arc::new(Mutex::new(())),
                };
                (repo.name.clone(), Arc::new(source))
            })
            .collect();
        Self {
            sources,
            pollers: Arc::new(Pollers::default()),
            next_poller: AtomicU64::new(0),
            metrics,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    pub fn contains(&self, repository: &str) -> bool {
        self.sources.contains_key(repository)
    }

    /// Follows `key`, starting its poller unless one runs already.
    pub fn watch(&self, key: SourceKey) -> Result<watch::Receiver<SourceState>, SourceError> {
        let source = self
            .sources
            .get(&key.repository)
            .ok_or_else(|| SourceError::UnknownRepository(key.repository.clone()))?
            .clone();
        let mut pollers = self.pollers.lock();
        if let Some(poller) = pollers.get(&key)
            && !poller.state.is_closed()
        {
            return Ok(poller.state.subscribe());
        }
        let id = self.next_poller.fetch_add(1, Ordering::Relaxed);
        let (state, receiver) = watch::channel(SourceState {
            commit: None,
            status: SourceStatus::Starting,
        });
        let wake = Arc::new(Notify::new());
        let task = PollTask {
            source,
            key: key.clone(),
            state: state.clone(),
            wake: wake.clone(),
            metrics: self.metrics.clone(),
            cancel: self.cancel.child_token(),
        };
        let registry = self.pollers.clone();
        let stopped = key.clone();
        self.tracker.spawn(async move {
            task.run().await;
            registry.remove(&stopped, id);
        });
        pollers.insert(key, Poller { id, state, wake });
        self.pollers.count.send_replace(pollers.len());
        Ok(receiver)
    }

    /// Wakes every poller of `repository` at once. Returns whether the repository is known.
    pub fn notify(&self, repository: &str) -> bool {
        if !self.sources.contains_key(repository) {
            return false;
        }
        self.metrics.inc(
            "tether_server_notifications_total",
            &[("repository", repository)],
        );
        let pollers = self.pollers.lock();
        for (key, poller) in pollers.iter() {
            if key.repository == repository {
                poller.wake.notify_one();
            }
        }
        true
    }

    /// Finds the configured repository whose name or URL matches one of `candidates` (push payloads
    /// name a repository by path or by clone URL).
    pub fn find(&self, candidates: &[&str]) -> Option<String> {
        let trim = |s: &str| s.trim_end_matches('/').trim_end_matches(".git").to_owned();
        self.sources.values().find_map(|s| {
            let url = s.remote.as_ref().map(|(url, _)| trim(url));
            candidates
                .iter()
                .any(|c| *c == s.config.name || url.as_deref() == Some(trim(c).as_str()))
                .then(|| s.config.name.clone())
        })
    }

    /// The number of running pollers, changing as they start and stop.
    pub fn running(&self) -> watch::Receiver<usize> {
        self.pollers.count.subscribe()
    }

    /// Latest state of every running poller (HTTP API).
    pub fn states(&self) -> Vec<(SourceKey, SourceState)> {
        let pollers = self.pollers.lock();
        pollers
            .iter()
            .filter(|(_, p)| !p.state.is_closed())
            .map(|(k, p)| (k.clone(), p.state.borrow().clone()))
            .collect()
    }

    /// The files of `commit` in `repository`, in path order, with their sizes (content read separately).
    pub async fn files(
        &self,
        repository: &str,
        commit: ObjectId,
    ) -> Result<Vec<TreeFileInfo>, SourceError> {
        let source = self.source(repository)?;
        let name = repository.to_owned();
        blocking(move || git::files(&name, &source.git_dir, commit)).await
    }

    /// The content of one blob.
    pub async fn blob(&self, repository: &str, blob: ObjectId) -> Result<Vec<u8>, SourceError> {
        let source = self.source(repository)?;
        let name = repository.to_owned();
        let content = blocking(move || git::blob(&name, &source.git_dir, blob)).await?;
        self.count_read(repository, content.len());
        Ok(content)
    }

    /// The file at `path` in `commit`, if there is one; a file over `max_size` is
    /// [`SourceError::TooLarge`] and is not read.
    pub async fn file_at(
        &self,
        repository: &str,
        commit: ObjectId,
        path: &str,
        max_size: u64,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        let source = self.source(repository)?;
        let (name, path) = (repository.to_owned(), path.to_owned());
        let content =
            blocking(move || git::file_at(&name, &source.git_dir, commit, &path, max_size)).await?;
        if let Some(content) = &content {
            self.count_read(repository, content.len());
        }
        Ok(content)
    }

    /// File content read from Git: what the limits checked from the tree keep small.
    fn count_read(&self, repository: &str, bytes: usize) {
        self.metrics.add(
            "tether_server_git_read_bytes_total",
            &[("repository", repository)],
            i64::try_from(bytes).unwrap_or(i64::MAX),
        );
    }

    fn source(&self, repository: &str) -> Result<Arc<Source>, SourceError> {
        self.sources
            .get(repository)
            .cloned()
            .ok_or_else(|| SourceError::UnknownRepository(repository.to_owned()))
    }

    /// Stops every poller and waits for them.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(SourceError::Git {
            repository: String::new(),
            operation: "blocking task",
            message: e.to_string(),
        })
    })
}

/// A directory name for a mirror that is unique per repository name and still readable.
fn mirror_dir_name(name: &str) -> String {
    use sha2::Digest;
    let readable: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    format!("{readable}-{}.git", &digest[..12])
}

/// The wait after `attempts` consecutive failures: exponential from [`BACKOFF_INITIAL`], capped at
/// `cap`, with ±25 % jitter so many pollers of one dead host do not retry in step.
pub fn backoff(attempts: u32, cap: Duration, jitter: f64) -> Duration {
    let exp = BACKOFF_INITIAL.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    let base = exp.min(cap);
    base.mul_f64(1.0 + 0.25 * jitter.clamp(-1.0, 1.0))
}

/// One poller's loop.
struct PollTask {
    source: Arc<Source>,
    key: SourceKey,
    state: watch::Sender<SourceState>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
}

impl PollTask {
    async fn run(self) {
        let mut attempts = 0u32;
        let mut last_failure: Option<tokio::time::Instant> = None;
        loop {
            match self.poll().await {
                Ok(commit) => {
                    attempts = 0;
                    self.state.send_if_modified(|state| {
                        let changed =
                            state.commit != Some(commit) || state.status != SourceStatus::Ok;
                        state.commit = Some(commit);
                        state.status = SourceStatus::Ok;
                        changed
                    });
                }
                Err(_) if self.cancel.is_cancelled() => return,
                Err(e) => {
                    let now = tokio::time::Instant::now();
                    if last_failure.is_some_and(|t| {
                        now.duration_since(t) > BACKOFF_RESET_AFTER + self.source.poll_interval
                    }) {
                        attempts = 0;
                    }
                    last_failure = Some(now);
                    attempts += 1;
                    self.metrics.inc(
                        "tether_server_git_poll_errors_total",
                        &[("repository", &self.key.repository)],
                    );
                    tracing::warn!(repository = %self.key.repository, attempts, "polling failed: {e}");
                    self.state.send_modify(|state| {
                        state.status = SourceStatus::Failing {
                            error: e.to_string(),
                            attempts,
                        };
                    });
                }
            }
            let wait = if attempts == 0 {
                self.source.poll_interval
            } else {
                backoff(
                    attempts,
                    self.source.poll_interval,
                    rand::rng().random_range(-1.0..=1.0),
                )
            };
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = self.state.closed() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Fetches (for a remote) and resolves the ref.
    async fn poll(&self) -> Result<ObjectId, SourceError> {
        let source = self.source.clone();
        let name = self.key.repository.clone();
        if let Some((url, credentials)) = &source.remote {
            // Pollers of several refs of one repository share the mirror: one fetch at a time.
            let _guard = source.fetch_lock.lock().await;
            self.metrics
                .inc("tether_server_git_fetches_total", &[("repository", &name)]);
            let started = tokio::time::Instant::now();
            self.fetch(url, credentials.as_ref()).await?;
            tracing::debug!(repository = %self.key.repository, elapsed = ?started.elapsed(), "fetched");
        }
        let git_ref = self.key.git_ref.clone();
        let mirrored = source.remote.is_some();
        let started = tokio::time::Instant::now();
        let resolved =
            blocking(move || git::resolve(&name, &source.git_dir, mirrored, git_ref.as_ref()))
                .await;
        tracing::debug!(repository = %self.key.repository, elapsed = ?started.elapsed(), "resolved");
        resolved
    }

    /// One fetch into the mirror, interrupted at `fetch_timeout` or at shutdown.
    async fn fetch(
        &self,
        url: &str,
        credentials: Option<&git::HttpCredentials>,
    ) -> Result<(), SourceError> {
        let source = &self.source;
        let interrupt = Arc::new(AtomicBool::new(false));
        let (url, credentials, dir, name, fetching, flag, timeout) = (
            url.to_owned(),
            credentials.cloned(),
            source.git_dir.clone(),
            self.key.repository.clone(),
            source.fetching.clone(),
            interrupt.clone(),
            source.fetch_timeout,
        );
        let fetch = blocking(move || {
            let _running = match fetching.try_lock() {
                Ok(running) => running,
                // A fetch that panicked left nothing running.
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    return Err(SourceError::FetchStillRunning(name));
                }
            };
            let bounds = git::FetchBounds {
                timeout,
                interrupt: &flag,
            };
            git::fetch(&name, &url, &dir, credentials.as_ref(), bounds)
        });
        let started = tokio::time::Instant::now();
        tokio::select! {
            fetched = tokio::time::timeout(timeout, fetch) => match fetched {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) if started.elapsed() < timeout => Err(e),
                // A socket or HTTP timeout is the same timeout seen from the fetch's side.
                Ok(Err(_)) | Err(_) => {
                    interrupt.store(true, Ordering::Relaxed);
                    self.metrics.inc(
                        "tether_server_git_fetch_timeouts_total",
                        &[("repository", &self.key.repository)],
                    );
                    Err(SourceError::FetchTimeout {
                        repository: self.key.repository.clone(),
                        timeout,
                    })
                }
            },
            () = self.cancel.cancelled() => {
                interrupt.store(true, Ordering::Relaxed);
                Err(SourceError::NotReady(self.key.repository.clone()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let cap = Duration::from_secs(300);
        assert_eq!(backoff(1, cap, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, cap, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(5, cap, 0.0), Duration::from_secs(16));
        assert_eq!(backoff(30, cap, 0.0), cap);
        assert_eq!(backoff(1, cap, 1.0), Duration::from_millis(1250));
        assert_eq!(backoff(1, cap, -1.0), Duration::from_millis(750));
        assert_eq!(
            backoff(3, Duration::from_secs(2), 0.0),
            Duration::from_secs(2),
            "never beyond the interval"
        );
    }

    #[test]
    fn mirror_names_are_unique_and_safe() {
        let a = mirror_dir_name("group/app");
        let b = mirror_dir_name("group_app");
        assert_ne!(a, b);
        assert!(!a.contains('/'));
        assert!(mirror_dir_name("../../etc").starts_with("______etc-"));
    }
}
