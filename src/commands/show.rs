//! A composed post printed for people: the one printer behind `preview`, `run --dry-run` and
//! `post --dry-run`, so that each shows all that is sent: every status with its length
//! against the limit, visibility, language, content warning and place in the thread, and
//! the media of the first status with file, size and alt text.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use crate::posts::post::{Media, Post};
use crate::text::compose::{Composed, FitProblem};

/// One media file as it is uploaded with the first status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaShown {
    /// The file uploaded.
    pub file: String,
    pub alt: String,
    /// Its size in bytes (`None` when it cannot be read now).
    pub bytes: Option<u64>,
}

impl MediaShown {
    pub fn of(media: &Media) -> Self {
        MediaShown {
            file: shown_path(&media.path),
            alt: media.alt.clone(),
            bytes: std::fs::metadata(&media.path).ok().map(|meta| meta.len()),
        }
    }
}

/// Media attached to the first status of `post`.
pub fn media(post: &Post) -> Vec<MediaShown> {
    post.media.iter().map(MediaShown::of).collect()
}

/// `path` relative to the working directory when it is under it (as a user typed it).
fn shown_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|dir| dir.canonicalize().ok())
        .and_then(|dir| path.strip_prefix(dir).ok().map(Path::to_path_buf));
    relative
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// `48.2 kB`, `1.3 MB`, `512 bytes` (SI units, as the servers state their limits).
pub fn size(bytes: u64) -> String {
    match bytes {
        0..=999 => format!("{bytes} bytes"),
        1_000..=999_999 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

/// Prints `composed` (the composition of `post` at `limit`) under the heading `=== heading`:
/// a `short` that did not fit, why it would not be sent, then each status whole.
pub fn write_composed(
    out: &mut impl Write,
    heading: &str,
    post: &Post,
    composed: &Composed,
    limit: usize,
) -> io::Result<()> {
    writeln!(out, "=== {heading}")?;
    for problem in &composed.problems {
        if let FitProblem::ShortTooLong { .. } = problem {
            writeln!(out, "warning: {problem}")?;
        }
    }
    if let Some(reason) = composed.unsendable() {
        writeln!(out, "error: {reason}; the daemon will not send it")?;
    }
    let parts = composed.statuses.len();
    for (index, status) in composed.statuses.iter().enumerate() {
        writeln!(
            out,
            "--- status {} of {parts}: {}/{limit} characters, {}, {}{}",
            index + 1,
            status.length,
            status.visibility.as_str(),
            status.language,
            status
                .in_reply_to
                .map_or(String::new(), |r| format!(", replies to status {}", r + 1)),
        )?;
        if !status.spoiler_text.is_empty() {
            writeln!(out, "content warning: {}", status.spoiler_text)?;
        }
        writeln!(out, "{}", status.text)?;
        if index == 0 {
            for media in media(post) {
                let bytes = media.bytes.map_or("cannot be read now".to_string(), size);
                writeln!(out, "media: {} ({bytes})", media.file)?;
                writeln!(out, "  alt: {}", media.alt)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(48_210), "48.2 kB");
        assert_eq!(size(1_300_000), "1.3 MB");
    }
}
