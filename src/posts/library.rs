//! Loads every post under the posts directory: all good posts, and every problem in the bad ones.
//!
//! Which files are posts: every `*.md` file under the directory, at any depth, except
//! `README.md` (a folder may explain itself to maintainers) and files or folders whose
//! name starts with `.` or `_` (hidden files, editor backups, Zola's `_index.md`).
//! Symbolic links are followed while they stay inside the posts folder; a link that leads
//! out is reported, not read, and a loop is reported, not followed forever.
//!
//! `posts/` arrives by pull request, so everything read here is bounded: only regular files
//! are read (a link to `/proc/self/pagemap` or a FIFO is reported), a post file at most
//! [`MAX_POST_FILE_BYTES`], and a media file is never read here at all ([`media_file`] only
//! looks at what it is).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::posts::config::Config;
use crate::posts::diagnostic::{self, Diagnostic};
use crate::posts::post::{
    parse_post, MediaFile, MediaLimits, Post, PostContext, DEFAULT_ALT_TEXT_LIMIT,
};

/// The largest post file read: a LinkedIn-length post with its front matter is a few KB.
pub const MAX_POST_FILE_BYTES: u64 = 1024 * 1024;

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
    let walk = walk_posts_dir(dir);
    library.errors.extend(walk.errors);
    for path in walk.escapes {
        library.errors.push(
            Diagnostic::at_start(
                &path,
                "this symbolic link leads outside the posts folder; it is not read",
            )
            .with_hint("commit the file or folder itself, not a link to it"),
        );
    }
    for (path, id) in walk.found {
        library.add(path, id, context);
    }
    library.posts.sort_by(|a, b| a.id.cmp(&b.id));
    library.files.sort();
    library
}

impl Library {
    /// Adds the post file at `path`, found by the walk with the id `id`: it is listed in
    /// `files` whatever it holds, then read, and goes to `posts` or its problems to `errors`.
    /// A name that is not UTF-8 is a problem of its own: it cannot be an id.
    fn add(&mut self, path: PathBuf, id: Result<String, ()>, context: &PostContext) {
        let Ok(id) = id else {
            self.errors.push(
                Diagnostic::at_start(
                    &path,
                    "this file's name is not valid UTF-8, so it cannot be a post's id",
                )
                .with_hint("rename it with letters, digits and `-`"),
            );
            return;
        };
        self.files.push((id.clone(), path.clone()));
        match read_post(&id, &path, context) {
            Ok(post) => self.posts.push(post),
            Err(errors) => self.errors.extend(errors),
        }
    }
}

/// What walking the posts folder found, in the walk's order (by file name).
struct Walk {
    /// Each post file with its id (`Err` when a name on the way is not UTF-8).
    found: Vec<(PathBuf, Result<String, ()>)>,
    /// Links that lead out of the posts folder: not followed, each to be reported.
    escapes: Vec<PathBuf>,
    /// Parts of the folder that could not be read (a link loop among them).
    errors: Vec<Diagnostic>,
}

/// Walks `dir` at any depth, following links that stay inside it and skipping ignored names
/// (see the module's documentation); nothing is read but the folders themselves.
fn walk_posts_dir(dir: &Path) -> Walk {
    // Where links must stay: the posts folder's real path.
    let real_root = dir.canonicalize().ok();
    let mut escapes: Vec<PathBuf> = Vec::new();
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| is_entered(entry, real_root.as_deref(), &mut escapes));
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                let path = error.path().unwrap_or(dir).to_path_buf();
                errors.push(Diagnostic::at_start(
                    &path,
                    format!("cannot read this part of the posts folder: {error}"),
                ));
                continue;
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir() || !is_post_file(path) {
            continue;
        }
        if let Some(id) = post_id(dir, path) {
            found.push((path.to_path_buf(), id));
        }
    }
    Walk {
        found,
        escapes,
        errors,
    }
}

/// Whether the walk goes into `entry` (or looks at it, for a file): not for an ignored name,
/// nor for a symbolic link whose real path is outside `real_root`, which is added to
/// `escapes` when it would have mattered (a folder or a post file).
fn is_entered(
    entry: &walkdir::DirEntry,
    real_root: Option<&Path>,
    escapes: &mut Vec<PathBuf>,
) -> bool {
    if entry.depth() == 0 {
        return true;
    }
    if is_ignored_name(entry.file_name()) {
        return false;
    }
    if !entry.path_is_symlink() {
        return true;
    }
    let inside = match (real_root, entry.path().canonicalize()) {
        (Some(root), Ok(real)) => real.starts_with(root),
        _ => false,
    };
    if !inside && (entry.file_type().is_dir() || is_post_file(entry.path())) {
        escapes.push(entry.path().to_path_buf());
    }
    inside
}

/// Reads and parses one post file: a regular file of at most [`MAX_POST_FILE_BYTES`].
pub fn read_post(id: &str, path: &Path, context: &PostContext) -> Result<Post, Vec<Diagnostic>> {
    let bytes = read_bounded(path).map_err(|d| vec![d])?;
    let source = diagnostic::decode_utf8(path, bytes).map_err(|d| vec![d])?;
    parse_post(id, path, &source, context)
}

/// The bytes of `path`, when it is a regular file (after links) of at most
/// [`MAX_POST_FILE_BYTES`]; the read itself stops one byte past the limit, so a file that
/// grows while it is read costs no more.
fn read_bounded(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let cannot = |error: std::io::Error| {
        Diagnostic::at_start(path, format!("cannot read the file: {error}"))
    };
    // Opening a FIFO for reading would block until a writer comes: look first.
    let metadata = std::fs::metadata(path).map_err(cannot)?;
    if !metadata.is_file() {
        return Err(Diagnostic::at_start(
            path,
            "this is not a regular file (a device, a FIFO or a socket); it is not read",
        )
        .with_hint("a post is a Markdown file committed to the repository"));
    }
    let too_large = || {
        Diagnostic::at_start(
            path,
            format!(
                "this file is larger than {} KiB, far more than a post needs; it is not read",
                MAX_POST_FILE_BYTES / 1024
            ),
        )
        .with_hint("a post is a few KB of text; put images in [[media]]")
    };
    if metadata.len() > MAX_POST_FILE_BYTES {
        return Err(too_large());
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_POST_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_POST_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// What the media file at `path` is, on the real file system: its real path (links resolved)
/// must lie inside the real `posts_dir`, and it must be a regular file. Nothing is read.
pub fn media_file(posts_dir: &Path, path: &Path) -> MediaFile {
    let Ok(real_path) = path.canonicalize() else {
        return MediaFile::Missing;
    };
    let inside = posts_dir
        .canonicalize()
        .is_ok_and(|root| real_path.starts_with(root));
    if !inside {
        return MediaFile::Outside { real_path };
    }
    match std::fs::metadata(&real_path) {
        Ok(metadata) if metadata.is_file() => MediaFile::Regular {
            real_path,
            bytes: metadata.len(),
        },
        Ok(_) => MediaFile::NotRegular,
        Err(_) => MediaFile::Missing,
    }
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

/// `posts/a/b.md` → `a/b`, always with `/`; `Err` when a name on the way is not UTF-8 (two
/// such names would become the same id).
fn post_id(dir: &Path, path: &Path) -> Option<Result<String, ()>> {
    let relative = path.strip_prefix(dir).ok()?.with_extension("");
    let parts: Result<Vec<&str>, ()> = relative
        .components()
        .map(|c| c.as_os_str().to_str().ok_or(()))
        .collect();
    Some(parts.map(|parts| parts.join("/")))
}
/// The posts of the configured folder, checked against the media size limits given.
pub fn load_configured(config: &Config, media_limits: MediaLimits) -> Library {
    let posts_dir = &config.posts.dir;
    let context = PostContext {
        posts_dir,
        timezone: &config.schedule.timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        media_file: &|path: &Path| media_file(posts_dir, path),
        media_limits,
    };
    load_library(&context)
}
