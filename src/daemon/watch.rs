//! Notices changes under the posts folder and to the config file, so the daemon can reload
//! without a restart.
//!
//! inotify (through `notify`) watches the posts folder recursively, new subfolders included,
//! and the config file's *folder*, not the file: editors and `git` replace a file by writing a
//! new one and renaming it over the old, which a watch on the old file would not see. Events
//! for other names in that folder are dropped.
//!
//! Dropped as well: names under the posts folder that start with `.` (`.git/`, editor swap
//! files), and accesses. Reading a post opens it, and an open is an inotify event: counting it
//! would make every reload trigger the next.
//!
//! Events are debounced: [`ChangeWatcher::changed`] resolves once nothing has happened for
//! [`QUIET_PERIOD`], so a `git pull` that touches thirty files gives one reload; a stream that
//! never pauses still gives one every [`MAX_DELAY`]. Pending changes are kept in a set of
//! paths, so memory stays bounded however long nobody asks.
//!
//! A recursive inotify watch follows the folder's inode, not its name: a posts folder deleted
//! and created again, or swapped in by a rename (what `git checkout` of another tree, rsync or a
//! deploy script does), is a new folder the old watch never sees. So the posts folder's parent
//! is watched too (non-recursively, only the posts folder's own name counts there), and the
//! daemon starts a new watcher after every reload, on the folder the config names then. While
//! the posts folder does not exist, its nearest existing ancestor is watched, and its creation
//! is a change.
//!
//! Watching may fail (the inotify watch limit). The daemon logs the [`WatchError`] and keeps
//! running with SIGHUP as its only reload; the message says so.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// How long nothing must happen before a burst of changes counts as finished.
pub const QUIET_PERIOD: Duration = Duration::from_millis(250);

/// The longest a change waits for quiet before it is reported anyway.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// Watches the posts folder and the config file until dropped.
pub struct ChangeWatcher {
    /// Dropping it stops its inotify thread and removes the watches.
    _watcher: RecommendedWatcher,
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<Changes>,
    /// One stored permit at most, so a change that arrives while nobody waits is not lost.
    wake: Notify,
}

/// What changed since the last [`ChangeWatcher::changed`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    paths: BTreeSet<PathBuf>,
    may_have_missed: bool,
}

impl Changes {
    /// The changed posts and config paths (absolute), created, modified, removed or renamed.
    pub fn paths(&self) -> &BTreeSet<PathBuf> {
        &self.paths
    }

    /// Whether events may have been lost (inotify's queue overflowed, or a new folder could
    /// not be watched), so [`Changes::paths`] may be incomplete: reload everything.
    pub fn may_have_missed(&self) -> bool {
        self.may_have_missed
    }

    fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.may_have_missed
    }
}

/// Why watching could not start. Its message ends with the fallback, for the log.
#[derive(Debug)]
pub struct WatchError {
    path: Option<PathBuf>,
    source: notify::Error,
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "cannot watch {} for changes", path.display())?,
            None => f.write_str("cannot watch for file changes")?,
        }
        match &self.source.kind {
            notify::ErrorKind::MaxFilesWatch => f.write_str(
                ": the inotify watch limit is reached (raise it with `sysctl \
                 fs.inotify.max_user_watches=…`)",
            )?,
            notify::ErrorKind::PathNotFound => f.write_str(": it does not exist")?,
            notify::ErrorKind::Io(error) => write!(f, ": {error}")?,
            notify::ErrorKind::Generic(message) => write!(f, ": {message}")?,
            _ => write!(f, ": {}", self.source)?,
        }
        f.write_str(
            "; posts and config will be reloaded only on SIGHUP (`systemctl reload perennial`)",
        )
    }
}

impl std::error::Error for WatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Which event paths matter. All paths are absolute, as the watches are, so they compare with
/// what inotify reports (the watched path joined with a name).
#[derive(Debug, Clone)]
struct Relevance {
    posts_dir: PathBuf,
    /// The config file as given and, when it is a symlink, its target.
    config_files: Vec<PathBuf>,
}

impl Relevance {
    fn is_relevant(&self, path: &Path) -> bool {
        if self.config_files.iter().any(|config| config == path) {
            return true;
        }
        // A folder on the way to the posts folder appeared, went or was renamed (only seen
        // while the posts folder is missing, through the watch on an ancestor).
        if self.posts_dir.starts_with(path) && path != self.posts_dir {
            return self.posts_dir.parent() != Some(path);
        }
        match path.strip_prefix(&self.posts_dir) {
            Ok(inside) => !inside.components().any(|component| match component {
                Component::Normal(name) => name.as_encoded_bytes().starts_with(b"."),
                _ => false,
            }),
            Err(_) => false,
        }
    }
}

/// Whether an event of this kind can change what the daemon loads. Accesses cannot, except
/// the close of a file that was open for writing.
fn kind_counts(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

/// Starts watching `posts_dir` (recursively) and `config_file` (through its folder).
pub fn watch(posts_dir: &Path, config_file: &Path) -> Result<ChangeWatcher, WatchError> {
    let absolute = |path: &Path| {
        std::path::absolute(path).map_err(|error| WatchError {
            path: Some(path.to_path_buf()),
            source: notify::Error::io(error),
        })
    };
    let posts_dir = absolute(posts_dir)?;
    let config_file = absolute(config_file)?;
    let mut config_files = vec![config_file.clone()];
    if let Ok(target) = config_file.canonicalize() {
        if target != config_file {
            config_files.push(target);
        }
    }
    let relevance = Relevance {
        posts_dir: posts_dir.clone(),
        config_files: config_files.clone(),
    };

    let shared = Arc::new(Shared {
        pending: Mutex::new(Changes::default()),
        wake: Notify::new(),
    });
    let handler_shared = Arc::clone(&shared);
    let mut watcher = notify::recommended_watcher(move |event| {
        handle_event(event, &relevance, &handler_shared);
    })
    .map_err(|source| WatchError { path: None, source })?;

    let watch_path = |watcher: &mut RecommendedWatcher, path: &Path, mode| {
        watcher.watch(path, mode).map_err(|source| WatchError {
            path: Some(path.to_path_buf()),
            source,
        })
    };
    if posts_dir.is_dir() {
        watch_path(&mut watcher, &posts_dir, RecursiveMode::Recursive)?;
    }
    // The posts folder's parent, or its nearest existing ancestor while it is missing.
    let mut anchor = posts_dir.parent().unwrap_or(Path::new("/"));
    while !anchor.is_dir() {
        anchor = anchor.parent().unwrap_or(Path::new("/"));
    }
    let mut folders: Vec<&Path> = vec![anchor];
    watch_path(&mut watcher, anchor, RecursiveMode::NonRecursive)?;
    for config in &config_files {
        let folder = config.parent().unwrap_or(Path::new("/"));
        // Inside the posts folder it is watched already, and a second, non-recursive watch
        // on the same folder would stop new subfolders there from being watched.
        if folder.starts_with(&posts_dir) || folders.contains(&folder) {
            continue;
        }
        watch_path(&mut watcher, folder, RecursiveMode::NonRecursive)?;
        folders.push(folder);
    }
    tracing::debug!(
        "watching {} and {} for changes",
        posts_dir.display(),
        config_file.display()
    );
    Ok(ChangeWatcher {
        _watcher: watcher,
        shared,
    })
}

/// Runs on `notify`'s thread.
fn handle_event(event: notify::Result<Event>, relevance: &Relevance, shared: &Shared) {
    let mut may_have_missed = false;
    let mut paths = Vec::new();
    match event {
        Ok(event) if event.need_rescan() => {
            tracing::warn!("the file system reported lost events; reloading everything");
            may_have_missed = true;
        }
        Ok(event) => {
            if !kind_counts(&event.kind) {
                return;
            }
            paths.extend(
                event
                    .paths
                    .into_iter()
                    .filter(|path| relevance.is_relevant(path)),
            );
            if paths.is_empty() {
                return;
            }
        }
        Err(error) => {
            let hint = match error.kind {
                notify::ErrorKind::MaxFilesWatch => {
                    " (the inotify watch limit is reached: new folders under the posts folder \
                     are not watched until it is raised with `sysctl \
                     fs.inotify.max_user_watches=…` and perennial restarted; SIGHUP still \
                     reloads)"
                }
                _ => "",
            };
            tracing::warn!("watching for changes: {error}{hint}; reloading to be safe");
            may_have_missed = true;
        }
    }
    {
        let mut pending = shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending.paths.extend(paths);
        pending.may_have_missed |= may_have_missed;
    }
    shared.wake.notify_one();
}

impl ChangeWatcher {
    /// Resolves when something changed, once the changes have been quiet for
    /// [`QUIET_PERIOD`] (or have gone on for [`MAX_DELAY`]), with what changed. Cancel-safe:
    /// a change seen by a call that was dropped is reported by the next one.
    pub async fn changed(&mut self) -> Changes {
        loop {
            while self.pending_is_empty() {
                self.shared.wake.notified().await;
            }
            let give_up_waiting_for_quiet = tokio::time::Instant::now() + MAX_DELAY;
            loop {
                tokio::select! {
                    _ = self.shared.wake.notified() => {}
                    _ = tokio::time::sleep(QUIET_PERIOD) => break,
                    _ = tokio::time::sleep_until(give_up_waiting_for_quiet) => break,
                }
            }
            let changes = std::mem::take(
                &mut *self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            if !changes.is_empty() {
                return changes;
            }
        }
    }

    fn pending_is_empty(&self) -> bool {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

impl fmt::Debug for ChangeWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeWatcher").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relevance() -> Relevance {
        Relevance {
            posts_dir: PathBuf::from("/srv/repo/posts"),
            config_files: vec![
                PathBuf::from("/etc/perennial/config.toml"),
                PathBuf::from("/srv/repo/config.toml"),
            ],
        }
    }

    #[test]
    fn relevant_paths() {
        let relevance = relevance();
        let check = |path: &str| relevance.is_relevant(Path::new(path));
        assert!(check("/srv/repo/posts/tips/a.md"));
        assert!(check("/srv/repo/posts/images/a.png"));
        assert!(check("/srv/repo/posts"));
        assert!(check("/etc/perennial/config.toml"));
        assert!(check("/srv/repo/config.toml"));
        assert!(!check("/srv/repo/posts/.git/index"));
        assert!(!check("/srv/repo/posts/tips/.a.md.swp"));
        assert!(!check("/srv/repo/posts/.hidden/a.md"));
        assert!(!check("/etc/perennial/config.toml.tmp"));
        assert!(!check("/etc/perennial/state.json"));
        assert!(!check("/srv/repo/posts-old/a.md"));
        // The posts folder's own events, seen through the watch on its parent: it was
        // deleted, created or renamed. Its parent's own events are not changes; a folder
        // further up appearing is (the posts folder is missing and may be on its way).
        assert!(check("/srv/repo/posts"));
        assert!(!check("/srv/repo"));
        assert!(check("/srv"));
        assert!(!check("/srv/repo/.git"));

        // Only names inside the posts folder count, not the folders above it.
        let under_a_dot_folder = Relevance {
            posts_dir: PathBuf::from("/home/bot/.local/share/perennial/posts"),
            config_files: vec![],
        };
        assert!(under_a_dot_folder
            .is_relevant(Path::new("/home/bot/.local/share/perennial/posts/a.md")));
    }

    #[test]
    fn dropping_the_watcher_ends_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let watcher = watch(dir.path(), &dir.path().join("config.toml")).unwrap();
        // The handler on notify's thread holds the only other reference; it goes when the
        // thread ends.
        let shared = Arc::downgrade(&watcher.shared);
        drop(watcher);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while shared.strong_count() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the watcher thread still runs"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn accesses_do_not_count_except_a_write_closing() {
        use notify::event::{CreateKind, ModifyKind, RemoveKind};
        assert!(!kind_counts(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!kind_counts(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(kind_counts(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(kind_counts(&EventKind::Create(CreateKind::File)));
        assert!(kind_counts(&EventKind::Modify(ModifyKind::Any)));
        assert!(kind_counts(&EventKind::Remove(RemoveKind::Folder)));
    }
}
