//! Reads and writes the state file: atomic replace, versioned, one daemon at a time.
//! (Being written; the API below is fixed.)

use std::path::{Path, PathBuf};

use super::State;

/// The file's name inside the state directory.
pub const STATE_FILE_NAME: &str = "state.json";

/// Why the state could not be read or written. The message names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{0}")]
    Other(String),
}

/// The state file in its directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    path: PathBuf,
}

/// Held while a daemon owns the state directory.
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let path = dir.join(STATE_FILE_NAME);
        StateStore { dir, path }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `None` when there is no state file yet.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        todo!()
    }

    pub fn save(&self, _state: &State) -> Result<(), StateError> {
        todo!()
    }
}
