//! Reads and writes the state file: atomic replace, versioned, one daemon at a time.
//!
//! A state file that cannot be read is never overwritten: [`StateStore::load`] refuses it with
//! a message naming the file, and the daemon stops. [`StateStore::save`] writes a temporary
//! file next to `state.json`, flushes it, renames it over `state.json` and flushes the
//! directory, so a crash or an error at any point leaves either the old file or the new one,
//! whole. [`StateStore::lock`] keeps two daemons off one state directory; readers such as
//! `perennial queue` load without it (they only ever see a whole file).
//!
//! A lock only holds while the folder it is in stays: `flock(2)` locks an open file, so once
//! the folder is removed (or renamed away and replaced), a second daemon creates a new lock
//! file in a new folder and locks that. So the store remembers the device and inode of the
//! folder and of the lock file when it locks, and every save first checks that both are still
//! the ones at that path ([`StateError::Replaced`]); the daemon then stops instead of writing
//! beside another one. Each process writes its own temporary file (`state.json.tmp.<pid>`),
//! and stale ones are removed when the lock is taken.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::journal::{journal_lines, parse_journal, JournalEntry, COMPACT_AT, JOURNAL_FILE_NAME};
use super::{State, SCHEMA_VERSION};

/// The file's name inside the state directory.
pub const STATE_FILE_NAME: &str = "state.json";

/// The temporary file a save writes before renaming it over [`STATE_FILE_NAME`] is this,
/// then `.` and the process id ([`StateStore::temp_path`]): two processes never write the
/// same one. Stale ones (a save interrupted by a crash; the bare name, which earlier builds
/// shared between processes) are removed by [`StateStore::lock`].
const TEMP_FILE_PREFIX: &str = "state.json.tmp";

/// The file [`StateStore::lock`] locks. It is never deleted: deleting a lock file races with
/// the next daemon opening it.
const LOCK_FILE_NAME: &str = "lock";

/// What perennial tells the operator about a state file it refuses to use.
const WILL_NOT_OVERWRITE: &str = "perennial will not overwrite it; fix it or move it away";

/// Why the state could not be read or written. Every message names the file or directory.
///
/// The I/O error is part of the message (and not a `source()`), so that printing the error
/// alone tells the operator everything.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state file exists but could not be read (permissions, a directory in its place…).
    #[error("cannot read the state file {}: {error}. {WILL_NOT_OVERWRITE}", path.display())]
    Read { path: PathBuf, error: io::Error },

    /// The state file was read but is not a state this perennial can use.
    #[error("cannot use the state file {}: {detail}. {WILL_NOT_OVERWRITE}", path.display())]
    Corrupt { path: PathBuf, detail: String },

    /// The state file was written by a newer perennial.
    #[error(
        "the state file {} has version {found}, but this perennial understands versions up to \
         {supported}: it was written by a newer perennial. perennial will not overwrite it; \
         upgrade perennial, or move the file away",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u32,
    },

    /// A step of saving failed. `path` is what the step worked on (the directory, the
    /// temporary file). When `step` is [`SaveStep::SyncDirectory`] the new file is already in
    /// place but may not survive a power loss; at every earlier step the previous file is
    /// untouched.
    #[error("cannot save the state: cannot {step} {}: {error}", path.display())]
    Write {
        step: SaveStep,
        path: PathBuf,
        error: io::Error,
    },

    /// The state about to be saved would be refused by the next load (a bug in the caller:
    /// a wrong `version`, a non-finite rotation credit). Nothing was written.
    #[error(
        "not saving the state to {}: it would not load back ({detail}); this is a bug in \
         perennial, please report it",
        path.display()
    )]
    WouldNotLoad { path: PathBuf, detail: String },

    /// Another process holds the state directory's lock.
    #[error(
        "another perennial is running with this state directory: {}; stop it, or give this \
         one another [state] dir",
        dir.display()
    )]
    Locked { dir: PathBuf },

    /// The lock file could not be created or locked (not because someone else holds it).
    #[error("cannot lock the state directory ({}): {error}", path.display())]
    Lock { path: PathBuf, error: io::Error },

    /// The state directory, or its lock file, is no longer the one this process locked: it
    /// was removed, or renamed away and replaced, while perennial ran. Another perennial may
    /// have locked the new one; nothing was written.
    #[error(
        "the state directory {} was replaced or removed under the running perennial ({detail}); \
         another perennial may be using it now. Not saving, and stopping, so that nothing is \
         posted twice: make sure only one perennial runs with this state directory, then \
         start it again",
        dir.display()
    )]
    Replaced { dir: PathBuf, detail: String },
}

/// One step of [`StateStore::save`], named in [`StateError::Write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveStep {
    CreateDirectory,
    CreateTemp,
    WriteTemp,
    SyncTemp,
    Rename,
    SyncDirectory,
    /// Appending to the mentions journal.
    AppendJournal,
    /// Flushing the mentions journal to disk.
    SyncJournal,
    /// Emptying the mentions journal once the state file holds what it had.
    EmptyJournal,
}

impl std::fmt::Display for SaveStep {
    /// A verb phrase: "cannot {step} {path}".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SaveStep::CreateDirectory => "create the directory",
            SaveStep::CreateTemp => "create",
            SaveStep::WriteTemp => "write",
            SaveStep::SyncTemp => "flush to disk",
            SaveStep::Rename => "rename into place",
            SaveStep::SyncDirectory => "flush to disk the directory",
            SaveStep::AppendJournal => "append to",
            SaveStep::SyncJournal => "flush to disk",
            SaveStep::EmptyJournal => "empty",
        })
    }
}

/// The file-system operations of one save, in the order [`StateStore::save_with`] calls
/// them. Every default method is the real operation, and [`StateStore::save`] uses the
/// defaults.
///
/// This is the fault-injection seam: a test overrides one method to fail, or to do half its
/// work and then fail, which is what a crash or a full disk at that instant looks like to the
/// files. The methods take `&mut self` so an implementation can count or record calls.
pub trait WriteSteps {
    /// Creates the state directory if it is missing (mode 0700 on Unix).
    fn create_dir(&mut self, dir: &Path) -> io::Result<()> {
        create_private_dir(dir)
    }

    /// Creates the temporary file afresh (mode 0600 on Unix), replacing a stale one.
    fn create_temp(&mut self, temp: &Path) -> io::Result<File> {
        // Removed rather than truncated, so that a stale file's wider mode is not kept.
        match fs::remove_file(temp) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(temp)
    }

    /// Writes the whole new state into the temporary file.
    fn write_temp(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    /// Flushes the temporary file's data to disk.
    fn sync_temp(&mut self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    /// Renames the temporary file over the state file (atomic on POSIX file systems).
    fn rename(&mut self, temp: &Path, state_file: &Path) -> io::Result<()> {
        fs::rename(temp, state_file)
    }

    /// Flushes the directory, so that the rename itself survives a power loss.
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        sync_directory(dir)
    }
}

/// The real operations.
struct RealWriteSteps;

impl WriteSteps for RealWriteSteps {}

/// The state file in its directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    path: PathBuf,
    /// What [`StateStore::lock`] locked, checked before every save (shared by clones).
    locked: Arc<Mutex<Option<LockedIds>>>,
    /// `<dir>/mentions.journal` ([`super::journal`]), open for appending once used (shared by
    /// clones).
    journal: Arc<Mutex<Journal>>,
}

/// The open journal, and how many events it holds.
#[derive(Debug, Default)]
struct Journal {
    file: Option<File>,
    entries: usize,
    /// Known to be absent (removed or never found by this process): no save looks for it.
    absent: bool,
}

/// A file's identity: its device and inode (`stat(2)`'s `st_dev` and `st_ino`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// The state directory and its lock file as they were when the lock was taken.
#[derive(Debug, Clone, Copy)]
struct LockedIds {
    dir: Option<FileId>,
    lock: Option<FileId>,
}

/// The identity of `metadata`'s file; `None` where the platform has no inodes.
fn file_id(metadata: &fs::Metadata) -> Option<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

/// Held while a daemon owns the state directory; the lock is released when it is dropped
/// (or when the process dies).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// The state directory to use: systemd's `$STATE_DIRECTORY` (pass `std::env::var_os`'s
/// answer) when it is set and not empty, otherwise `configured` (the config's `[state] dir`,
/// already resolved against the config file's folder).
///
/// systemd joins several `StateDirectory=` entries with `:`; the first non-empty one is
/// taken.
pub fn resolve_state_dir(env_state_directory: Option<&OsStr>, configured: &Path) -> PathBuf {
    env_state_directory
        .and_then(|value| std::env::split_paths(value).find(|dir| !dir.as_os_str().is_empty()))
        .unwrap_or_else(|| configured.to_path_buf())
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let path = dir.join(STATE_FILE_NAME);
        StateStore {
            dir,
            path,
            locked: Arc::default(),
            journal: Arc::default(),
        }
    }

    /// The mentions journal, `<dir>/mentions.journal`.
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE_NAME)
    }

    /// Appends `entries` to the mentions journal ([`super::journal`]); with `flush`, they are
    /// on disk when this returns (and so is every event appended before them). The caller
    /// has applied them to its state already.
    pub fn append(&self, entries: &[JournalEntry], flush: bool) -> Result<(), StateError> {
        self.check_still_locked()?;
        let path = self.journal_path();
        let failed = |step: SaveStep| {
            let path = path.clone();
            move |error: io::Error| StateError::Write { step, path, error }
        };
        let lines = journal_lines(entries).map_err(|error| StateError::WouldNotLoad {
            path: path.clone(),
            detail: error.to_string(),
        })?;
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        if journal.file.is_none() {
            let mut options = OpenOptions::new();
            options.append(true).create(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            journal.file = Some(
                options
                    .open(&path)
                    .map_err(failed(SaveStep::AppendJournal))?,
            );
        }
        let file = journal.file.as_mut().expect("opened above");
        file.write_all(&lines)
            .map_err(failed(SaveStep::AppendJournal))?;
        if flush {
            file.sync_data().map_err(failed(SaveStep::SyncJournal))?;
        }
        journal.entries += entries.len();
        Ok(())
    }

    /// Appends outcomes to the journal without a flush of their own (the next flushed
    /// append carries them), and folds the journal into the state file, `state` saved whole,
    /// once it holds [`COMPACT_AT`] events. `state` has the entries applied already.
    pub fn append_outcomes(
        &self,
        entries: &[JournalEntry],
        state: &State,
    ) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.append(entries, false)?;
        if self.journaled() >= COMPACT_AT {
            self.save(state)?;
        }
        Ok(())
    }

    /// How many events were appended to the journal since the state file was last saved by
    /// this store.
    pub fn journaled(&self) -> usize {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
    }

    /// Empties the journal after a save: the state file now holds what it had. Flushed, so
    /// that a power cut cannot bring old events back (replaying them would be harmless, but
    /// the journal would only grow).
    fn empty_journal(&self) -> Result<(), StateError> {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.journal_path();
        let failed = |step: SaveStep| {
            let path = path.clone();
            move |error: io::Error| StateError::Write { step, path, error }
        };
        match &journal.file {
            Some(file) => {
                if journal.entries > 0 {
                    file.set_len(0).map_err(failed(SaveStep::EmptyJournal))?;
                    file.sync_all().map_err(failed(SaveStep::EmptyJournal))?;
                }
            }
            None if journal.absent => {}
            // Not opened by this process: an earlier run's journal, replayed by the load
            // this save follows, or none. Looked for once.
            None => {
                match fs::remove_file(&path) {
                    Ok(()) => sync_directory(&self.dir).map_err(failed(SaveStep::EmptyJournal))?,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(failed(SaveStep::EmptyJournal)(error)),
                }
                journal.absent = true;
            }
        }
        journal.entries = 0;
        Ok(())
    }

    /// The journal's events, or none when there is no journal.
    fn read_journal(&self) -> Result<Vec<JournalEntry>, StateError> {
        let path = self.journal_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(StateError::Read { path, error }),
        };
        let replayed = parse_journal(&bytes).map_err(|detail| StateError::Corrupt {
            path: path.clone(),
            detail,
        })?;
        if replayed.torn_tail {
            tracing::warn!(path = %path.display(), "the mentions journal ends in a line cut short (a crash while it was written); ignoring that line");
        }
        Ok(replayed.entries)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file, `<dir>/state.json`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file this process writes a save to, `<dir>/state.json.tmp.<pid>`. If a
    /// directory is in the way (nothing perennial makes), `.1`, `.2`… is added instead, so a
    /// stray directory never fails every save.
    pub fn temp_path(&self) -> PathBuf {
        let base = format!("{TEMP_FILE_PREFIX}.{}", std::process::id());
        let mut candidate = self.dir.join(&base);
        for n in 1..=16 {
            match fs::symlink_metadata(&candidate) {
                Ok(metadata) if metadata.is_dir() => {
                    candidate = self.dir.join(format!("{base}.{n}"));
                }
                _ => break,
            }
        }
        candidate
    }

    /// Reads the state, with the mentions journal replayed onto it. `Ok(None)` only when
    /// there is neither a state file nor a journal yet; a file that exists but cannot be used
    /// is an error, and is left as it is.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                // A journal written before the first save.
                let entries = self.read_journal()?;
                if entries.is_empty() {
                    return Ok(None);
                }
                let mut state = State::default();
                for entry in entries {
                    state.mentions.apply(entry);
                }
                return Ok(Some(state));
            }
            Err(error) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    error,
                })
            }
        };
        match parse_state(&bytes) {
            Ok(mut state) => {
                for entry in self.read_journal()? {
                    state.mentions.apply(entry);
                }
                Ok(Some(state))
            }
            Err(Refusal::Corrupt(detail)) => Err(StateError::Corrupt {
                path: self.path.clone(),
                detail,
            }),
            Err(Refusal::TooNew { found }) => Err(StateError::TooNew {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            }),
        }
    }

    /// Replaces the state file atomically; see [`StateStore::save_with`].
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        self.save_with(state, &mut RealWriteSteps)
    }

    /// Replaces the state file atomically, doing each file-system step through `steps`
    /// ([`StateStore::save`] passes the real operations; tests pass ones that fail).
    ///
    /// The state is first serialized and parsed back as [`StateStore::load`] would, so a
    /// file the next start would refuse is never written. On an error before the rename the
    /// previous `state.json` is untouched and the temporary file is removed.
    ///
    /// When this store holds the lock, the directory and its lock file must still be the
    /// ones it locked ([`StateError::Replaced`]), checked before anything is written.
    pub fn save_with(&self, state: &State, steps: &mut dyn WriteSteps) -> Result<(), StateError> {
        self.check_still_locked()?;
        let bytes = self.serialize_checked(state)?;
        let temp = self.temp_path();
        let result = self.replace(&bytes, &temp, steps);
        if result.is_err() {
            // Best effort: a leftover is harmless (the next save replaces it).
            let _ = fs::remove_file(&temp);
        }
        result?;
        self.empty_journal()
    }

    /// Takes the exclusive lock on `<dir>/lock` (creating the directory if needed), or fails
    /// at once if another process holds it. Remembers the directory's and the lock file's
    /// identity for the checks before each save, and removes stale temporary files.
    pub fn lock(&self) -> Result<StateLock, StateError> {
        create_private_dir(&self.dir).map_err(|error| StateError::Lock {
            path: self.dir.clone(),
            error,
        })?;
        let path = self.dir.join(LOCK_FILE_NAME);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|error| StateError::Lock {
            path: path.clone(),
            error,
        })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked {
                    dir: self.dir.clone(),
                })
            }
            Err(fs::TryLockError::Error(error)) => return Err(StateError::Lock { path, error }),
        }
        let lock_error = |path: &Path| {
            let path = path.to_path_buf();
            move |error: io::Error| StateError::Lock { path, error }
        };
        let ids = LockedIds {
            dir: file_id(&fs::metadata(&self.dir).map_err(lock_error(&self.dir))?),
            lock: file_id(&file.metadata().map_err(lock_error(&path))?),
        };
        *self.locked.lock().unwrap_or_else(|e| e.into_inner()) = Some(ids);
        // Also checks that `<dir>/lock` is still the file just locked (it may have been
        // replaced between opening and locking).
        self.check_still_locked()?;
        self.remove_stale_temps();
        Ok(StateLock { _file: file })
    }

    /// Fails when this store locked its directory and the directory or the lock file at its
    /// path is no longer the one it locked (removed, or renamed away and replaced).
    fn check_still_locked(&self) -> Result<(), StateError> {
        let Some(locked) = *self.locked.lock().unwrap_or_else(|e| e.into_inner()) else {
            return Ok(());
        };
        let replaced = |detail: String| StateError::Replaced {
            dir: self.dir.clone(),
            detail,
        };
        let lock_path = self.dir.join(LOCK_FILE_NAME);
        let checks = [
            (
                &self.dir,
                locked.dir,
                fs::metadata(&self.dir),
                "the directory",
            ),
            (
                &lock_path,
                locked.lock,
                fs::symlink_metadata(&lock_path),
                "its lock file",
            ),
        ];
        for (path, id, metadata, what) in checks {
            match metadata {
                Ok(metadata) if file_id(&metadata) == id => {}
                Ok(_) => {
                    return Err(replaced(format!(
                        "{what} {} is another one than the one locked at start",
                        path.display()
                    )))
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(replaced(format!("{what} {} is gone", path.display())))
                }
                Err(error) => {
                    return Err(replaced(format!(
                        "cannot look at {what} {}: {error}",
                        path.display()
                    )))
                }
            }
        }
        Ok(())
    }

    /// Removes temporary files left by interrupted saves (this process's, other processes'
    /// and the shared name older versions used), and empty directories of those names. Only
    /// called while holding the lock: no other perennial is saving into this directory.
    /// Best effort: a leftover is harmless.
    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let ours = name == TEMP_FILE_PREFIX
                || name
                    .strip_prefix(TEMP_FILE_PREFIX)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|rest| {
                        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    });
            if !ours {
                continue;
            }
            let path = entry.path();
            let removed = match entry.file_type() {
                Ok(kind) if kind.is_dir() => fs::remove_dir(&path),
                _ => fs::remove_file(&path),
            };
            match removed {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), "removed a stale temporary state file")
                }
                Err(error) => {
                    tracing::debug!(path = %path.display(), %error, "cannot remove a stale temporary state file")
                }
            }
        }
    }

    /// Pretty JSON with a final newline, refused if [`parse_state`] would refuse it.
    fn serialize_checked(&self, state: &State) -> Result<Vec<u8>, StateError> {
        let would_not_load = |detail: String| StateError::WouldNotLoad {
            path: self.path.clone(),
            detail,
        };
        let mut bytes =
            serde_json::to_vec_pretty(state).map_err(|error| would_not_load(error.to_string()))?;
        bytes.push(b'\n');
        match parse_state(&bytes) {
            Ok(_) => Ok(bytes),
            Err(Refusal::Corrupt(detail)) => Err(would_not_load(detail)),
            Err(Refusal::TooNew { found }) => Err(would_not_load(format!(
                "version {found} is newer than this perennial's {SCHEMA_VERSION}"
            ))),
        }
    }

    fn replace(
        &self,
        bytes: &[u8],
        temp: &Path,
        steps: &mut dyn WriteSteps,
    ) -> Result<(), StateError> {
        let failed = |step: SaveStep, path: &Path| {
            let path = path.to_path_buf();
            move |error: io::Error| StateError::Write { step, path, error }
        };
        steps
            .create_dir(&self.dir)
            .map_err(failed(SaveStep::CreateDirectory, &self.dir))?;
        let mut file = steps
            .create_temp(temp)
            .map_err(failed(SaveStep::CreateTemp, temp))?;
        steps
            .write_temp(&mut file, bytes)
            .map_err(failed(SaveStep::WriteTemp, temp))?;
        steps
            .sync_temp(&file)
            .map_err(failed(SaveStep::SyncTemp, temp))?;
        drop(file);
        steps
            .rename(temp, &self.path)
            .map_err(failed(SaveStep::Rename, temp))?;
        steps
            .sync_dir(&self.dir)
            .map_err(failed(SaveStep::SyncDirectory, &self.dir))
    }
}

/// Why a state file's bytes are refused, before the file's path is attached.
enum Refusal {
    Corrupt(String),
    TooNew { found: u64 },
}

/// The bytes of a state file → the current schema's [`State`]. Pure.
fn parse_state(bytes: &[u8]) -> Result<State, Refusal> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        Refusal::Corrupt(format!(
            "it is not UTF-8 text (invalid byte at offset {})",
            error.valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Err(Refusal::Corrupt("it is empty".to_string()));
    }

    // The version is read on its own first: a newer file is refused as newer, not for the
    // fields this build does not know, and an older one must be migrated before the strict
    // parse below. The object check matters: serde's derived `Deserialize` would take a
    // top-level array as the struct's fields in order.
    // Only `version` is kept from this first read (the rest is skipped without building a
    // tree): every save parses its own output, and a year of history should not cost a
    // second copy of the state in memory.
    #[derive(serde::Deserialize)]
    struct VersionProbe {
        #[serde(default)]
        version: Option<serde_json::Value>,
    }
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        // Checked first: serde's derived `Deserialize` would accept an array.
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(json_refusal)?;
        return Err(Refusal::Corrupt("it is not a JSON object".to_string()));
    }
    let probe: VersionProbe = serde_json::from_str(text).map_err(json_refusal)?;
    let version = match &probe.version {
        None => return Err(Refusal::Corrupt("it has no `version`".to_string())),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| Refusal::Corrupt(format!("`version` is {value}, not a whole number")))?,
    };
    if version == 0 {
        return Err(Refusal::Corrupt(
            "`version` is 0, which no perennial writes".to_string(),
        ));
    }
    if version > u64::from(SCHEMA_VERSION) {
        return Err(Refusal::TooNew { found: version });
    }

    // Migrations go here: when SCHEMA_VERSION becomes 2, a version 1 document is upgraded
    // one version at a time, then deserialized into `State`. There are none yet: version 1
    // is the first schema. The current version is parsed from the text again, so that its
    // errors keep their line and column.
    serde_json::from_str::<State>(text).map_err(json_refusal)
}

/// A serde_json error as "<what> at line L, column C: <message>".
fn json_refusal(error: serde_json::Error) -> Refusal {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Eof => "truncated JSON",
        Category::Syntax => "invalid JSON",
        Category::Data | Category::Io => "unexpected content",
    };
    let full = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&position).unwrap_or(&full);
    // serde_json counts a position just past a line break as column 0.
    Refusal::Corrupt(format!(
        "{what} at line {}, column {}: {message}",
        error.line(),
        error.column().max(1)
    ))
}

/// Creates `dir` and its missing parents (mode 0700 on Unix), then flushes each new entry's
/// parent, so that a state saved into a new directory survives a power loss.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|ancestor| !ancestor.as_os_str().is_empty() && !ancestor.exists())
        .map(Path::to_path_buf)
        .collect();
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    for created in &missing {
        match created.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_directory(parent)?,
            _ => sync_directory(Path::new("."))?,
        }
    }
    Ok(())
}

/// Flushes a directory's entries to disk. Windows cannot open a directory as a file, and
/// its renames are journaled by NTFS, so there it does nothing.
fn sync_directory(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
