//! Loads every post under the posts directory: all good posts, and every problem in the bad ones.
//!
//! Which files are posts: every `*.md` file under the directory, at any depth, except
//! `README.md` (a folder may explain itself to maintainers) and files or folders whose
//! name starts with `.` or `_` (hidden files, editor backups, Zola's `_index.md`).
//! Symbolic links are followed; a loop is reported, not followed forever.

use std::path::{Path, PathBuf};

use crate::diagnostic::{self, Diagnostic};
use crate::post::{parse_post, Post, PostContext};

/// The result of loading a posts directory.
#[derive(Debug, Default)]
pub struct Library {
    /// Sorted by id.
    pub posts: Vec<Post>,
    /// Every problem, in file order; a post with any problem is not in `posts`.
    pub errors: Vec<Diagnostic>,
    /// Every post file found, good or bad, as (id, file), sorted by id.
    pub files: Vec<(String, PathBuf)>,
}

/// Loads the posts under `context.posts_dir`.
pub fn load_library(context: &PostContext) -> Library {
    let mut library = Library::default();
    let dir = context.posts_dir;
    if !dir.is_dir() {
        library.errors.push(
            Diagnostic::at_start(dir, "the posts directory does not exist or is not a folder")
                .with_hint("create it, or set `dir` in the [posts] section of the config"),
        );
        return library;
    }
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !is_ignored_name(entry.file_name()));
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                let path = error.path().unwrap_or(dir).to_path_buf();
                library.errors.push(Diagnostic::at_start(
                    &path,
                    format!("cannot read this part of the posts folder: {error}"),
                ));
                continue;
            }
        };
        let path = entry.path();
        if !entry.file_type().is_file() || !is_post_file(path) {
            continue;
        }
        let Some(id) = post_id(dir, path) else {
            continue;
        };
        library.files.push((id.clone(), path.to_path_buf()));
        match read_post(&id, path, context) {
            Ok(post) => library.posts.push(post),
            Err(errors) => library.errors.extend(errors),
        }
    }
    library.posts.sort_by(|a, b| a.id.cmp(&b.id));
    library.files.sort();
    library
}

/// Reads and parses one post file.
pub fn read_post(id: &str, path: &Path, context: &PostContext) -> Result<Post, Vec<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|error| {
        vec![Diagnostic::at_start(
            path,
            format!("cannot read the file: {error}"),
        )]
    })?;
    let source = diagnostic::decode_utf8(path, bytes).map_err(|d| vec![d])?;
    parse_post(id, path, &source, context)
}

fn is_ignored_name(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') || name.starts_with('_')
}

fn is_post_file(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "md")
        && !path
            .file_name()
            .is_some_and(|name| name.eq_ignore_ascii_case("README.md"))
}

/// `posts/a/b.md` → `a/b`, always with `/`.
fn post_id(dir: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(dir).ok()?.with_extension("");
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}
