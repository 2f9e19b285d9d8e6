//! Parses one post file (TOML front matter between `+++` lines, then Markdown) into a `Post`, or into every problem found.
//!
//! Parsing is pure: the text comes in as a string and the only question asked of the
//! file system, what a media file is (its real path and size), goes through
//! `PostContext::media_file`, so tests pass literals. Reading files and walking `posts/` is `library.rs`'s job.
//! Line and column numbers are the file's own: the front matter's offset and a BOM are
//! accounted for.

use std::path::{Component, Path, PathBuf};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, Deserializer};
use toml::value::Datetime;
use toml::Spanned;

use crate::posts::config::{is_language_code, normalize_hashtag, LongPosts, Visibility};
use crate::posts::diagnostic::{self, Diagnostic};
use crate::posts::markdown::markdown_to_text;

/// Mastodon's `max_media_attachments`; GoToSocial allows more, but 4 is what every server takes.
pub const MAX_MEDIA: usize = 4;
/// Alt-text limit used until the server says otherwise (`description_limit`: 1500 on
/// Mastodon 4.4+ and GoToSocial).
pub const DEFAULT_ALT_TEXT_LIMIT: usize = 1500;

/// The largest media files the server takes, in bytes, by kind. Mastodon's defaults
/// (`app/models/media_attachment.rb`: `IMAGE_LIMIT = 16.megabytes`, `VIDEO_LIMIT =
/// 99.megabytes`) until the server says otherwise in `/api/v2/instance`
/// (`configuration.media_attachments.image_size_limit` and `video_size_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    pub image_bytes: u64,
    pub video_bytes: u64,
}

impl Default for MediaLimits {
    fn default() -> Self {
        MediaLimits {
            image_bytes: 16 * 1024 * 1024,
            video_bytes: 99 * 1024 * 1024,
        }
    }
}

impl MediaLimits {
    /// The limits a server reports, where it reports them; Mastodon's defaults elsewhere.
    pub fn from_sizes(image: Option<u64>, video: Option<u64>) -> MediaLimits {
        let defaults = MediaLimits::default();
        MediaLimits {
            image_bytes: image.unwrap_or(defaults.image_bytes),
            video_bytes: video.unwrap_or(defaults.video_bytes),
        }
    }

    /// The limit for `path`, by its name: video and audio take the video limit, the rest the
    /// image limit.
    pub fn for_file(&self, path: &Path) -> (u64, &'static str) {
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        match mime.type_() {
            mime_guess::mime::VIDEO | mime_guess::mime::AUDIO => (self.video_bytes, "video"),
            _ => (self.image_bytes, "image"),
        }
    }
}

/// What the file system says of a media file a post names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaFile {
    /// A regular file inside the posts folder: its real path (every symbolic link resolved)
    /// and its size.
    Regular { real_path: PathBuf, bytes: u64 },
    /// Nothing there (or a dangling link).
    Missing,
    /// Its real path lies outside the posts folder: it is, or goes through, a symbolic link
    /// that leads out.
    Outside { real_path: PathBuf },
    /// A folder, a device, a FIFO, a socket: not something to upload.
    NotRegular,
}

impl MediaFile {
    /// For tests and benches that need no file system: every media file exists, as named,
    /// and is small.
    pub fn assume_present(path: &Path) -> MediaFile {
        MediaFile::Regular {
            real_path: path.to_path_buf(),
            bytes: 1,
        }
    }
}

/// Evergreen posts rotate; ad hoc posts go out once at their time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostKind {
    Evergreen,
    Adhoc {
        at: Timestamp,
        /// With `then = "evergreen"`: joins the rotation once it has gone out.
        then_evergreen: bool,
    },
}

impl PostKind {
    pub fn name(&self) -> &'static str {
        match self {
            PostKind::Evergreen => "evergreen",
            PostKind::Adhoc { .. } => "adhoc",
        }
    }
}

/// An image or video attached to a post, with its required description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// The real path (symbolic links resolved), known to be a regular file inside the posts
    /// directory when the post was read.
    pub path: PathBuf,
    pub alt: String,
}

/// A validated post, ready for the planner and the composer.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    /// Path under `posts/` without `.md`, `/`-separated: the name in state, logs and CLI.
    pub id: String,
    /// The file, as it is shown in messages.
    pub file: PathBuf,
    pub title: String,
    pub category: String,
    pub kind: PostKind,
    pub link: Option<String>,
    /// Without `#`.
    pub hashtags: Vec<String>,
    /// Active from this instant (a `from` date means its midnight in the schedule's zone).
    pub active_from: Option<Timestamp>,
    /// Active strictly before this instant (an `until` date means the end of that day).
    pub active_until: Option<Timestamp>,
    pub content_warning: Option<String>,
    /// `None`: the config's default.
    pub language: Option<String>,
    /// `None`: the config's default. Never `Direct`.
    pub visibility: Option<Visibility>,
    pub weight: f64,
    /// The hand-written short version, as plain text.
    pub short: Option<String>,
    /// Line and column of `short` in the file, for messages about it.
    pub short_position: Option<(usize, usize)>,
    /// `None`: the config's default.
    pub long_posts: Option<LongPosts>,
    pub media: Vec<Media>,
    /// The body as plain toot text.
    pub text: String,
    /// SHA-256 of the file's bytes (hex, first 128 bits): the history and the failed-post
    /// list name a version of a post by it, so an edited file counts as a new version.
    pub content_hash: String,
}

impl Post {
    /// Whether the post may go out at `now` according to its `from`/`until` window.
    pub fn is_active_at(&self, now: Timestamp) -> bool {
        self.active_from.is_none_or(|from| from <= now)
            && self.active_until.is_none_or(|until| now < until)
    }
}

/// The hash that names one version of a post file (see [`Post::content_hash`]).
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    // One `format!` for the 16 bytes: the digest's array type prints as lowercase hex, two
    // digits a byte (generic-array 0.14, module `hex`:
    // https://docs.rs/generic-array/0.14.7/generic_array/hex/index.html).
    let first_half = sha2::digest::generic_array::GenericArray::<
        u8,
        sha2::digest::generic_array::typenum::U16,
    >::from_slice(&digest[..16]);
    format!("{first_half:x}")
}

/// What parsing a post needs to know from outside the file.
pub struct PostContext<'a> {
    /// The posts directory: media must stay inside it.
    pub posts_dir: &'a Path,
    /// Dates and local times in front matter are in the schedule's zone.
    pub timezone: &'a TimeZone,
    pub alt_text_limit: usize,
    /// What a media file is ([`crate::posts::library::media_file`] on the real file system).
    pub media_file: &'a dyn Fn(&Path) -> MediaFile,
    pub media_limits: MediaLimits,
}

// The front matter exactly as written. Every value is `Spanned` so a message can point at it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontMatter {
    title: Option<Spanned<String>>,
    category: Option<Spanned<String>>,
    link: Option<Spanned<String>>,
    hashtags: Option<Vec<Spanned<String>>>,
    kind: Option<Spanned<RawKind>>,
    at: Option<Spanned<Datetime>>,
    from: Option<Spanned<Datetime>>,
    until: Option<Spanned<Datetime>>,
    then: Option<Spanned<RawThen>>,
    content_warning: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
    visibility: Option<Spanned<Visibility>>,
    weight: Option<Spanned<f64>>,
    short: Option<Spanned<String>>,
    long_posts: Option<LongPosts>,
    media: Option<Vec<Spanned<RawMedia>>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Evergreen,
    Adhoc,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawThen {
    Evergreen,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMedia {
    file: Spanned<String>,
    alt: Option<Spanned<String>>,
}

/// The parts of a post file: front matter text and where it starts, body and where it starts.
struct Split<'s> {
    front_matter: &'s str,
    front_matter_offset: usize,
    body: &'s str,
}

const FORMAT_HINT: &str = "a post starts with a line `+++`, then TOML such as `title = \"…\"`, then a line `+++`, then the text";

/// Splits off the front matter. `source` may start with a BOM (accepted and skipped).
fn split_front_matter<'s>(file: &Path, source: &'s str) -> Result<Split<'s>, Diagnostic> {
    let bom = if source.starts_with('\u{feff}') { 3 } else { 0 };
    let text = &source[bom..];
    if text.trim().is_empty() {
        return Err(Diagnostic::at_start(file, "the file is empty").with_hint(FORMAT_HINT));
    }
    let mut lines = line_spans(text);
    let (first_start, first_end) = lines.next().expect("non-empty text has a line");
    if text[first_start..first_end].trim_end() != "+++" {
        return Err(Diagnostic::at_offset(
            file,
            source,
            bom,
            "the file does not start with front matter (a line `+++`)",
        )
        .with_hint(FORMAT_HINT));
    }
    let front_matter_offset = bom + first_end;
    for (start, end) in lines {
        if text[start..end].trim_end() == "+++" {
            // `end` is already past the closing line's newline.
            return Ok(Split {
                front_matter: &text[first_end..start],
                front_matter_offset,
                body: &text[end..],
            });
        }
    }
    Err(Diagnostic::at_offset(
        file,
        source,
        bom,
        "the front matter is never closed: no second `+++` line",
    )
    .with_hint("add a line `+++` after the last front-matter key, before the text"))
}

/// (start, end) byte offsets of each line; `end` is after the line's `\n` (if any).
fn line_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let end = text[start..]
            .find('\n')
            .map_or(text.len(), |i| start + i + 1);
        let line = (start, end);
        start = end;
        Some(line)
    })
}

/// Parses the post `id` whose file is `file` with content `source`.
pub fn parse_post(
    id: &str,
    file: &Path,
    source: &str,
    context: &PostContext,
) -> Result<Post, Vec<Diagnostic>> {
    let split = split_front_matter(file, source).map_err(|d| vec![d])?;
    let (raw, key_errors) = deserialize_key_by_key::<RawFrontMatter>(split.front_matter);
    let mut checker = Checker {
        file,
        source,
        base: split.front_matter_offset,
        errors: key_errors
            .iter()
            .map(|error| {
                diagnostic::from_toml_error(file, source, split.front_matter_offset, error)
            })
            .collect(),
    };
    // The keys that deserialized are still checked, so one pass reports everything.
    let post = raw.and_then(|raw| checker.post(id, raw, split.body, context));
    checker.errors.sort_by_key(|d| (d.line, d.column));
    match post {
        Some(post) if checker.errors.is_empty() => Ok(post),
        _ => Err(checker.errors),
    }
}

/// Deserializes a table whose fields are all optional one key at a time, so that every bad
/// key is reported rather than only the first one serde meets. Gives the value built from
/// the good keys (none after a syntax error) and the errors of the bad ones.
fn deserialize_key_by_key<T: DeserializeOwned>(text: &str) -> (Option<T>, Vec<toml::de::Error>) {
    let (table, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        return (None, syntax_errors);
    }
    // Most files are valid: all keys at once first, key by key only to find the bad ones.
    // With every field optional and each read on its own, the whole table deserializes
    // exactly when each of its keys does, so the result is the same. Deserializing takes
    // the table, so a bad file is parsed a second time rather than every file's table
    // copied.
    if let Ok(value) = T::deserialize(Deserializer::from(table)) {
        return (Some(value), Vec::new());
    }
    let (table, _) = DeTable::parse_recoverable(text);
    let span = table.span();
    let mut good = DeTable::new();
    let mut errors = Vec::new();
    for (key, value) in table.into_inner() {
        let mut single = DeTable::new();
        single.insert(key.clone(), value.clone());
        match T::deserialize(Deserializer::from(Spanned::new(span.clone(), single))) {
            Ok(_) => {
                good.insert(key, value);
            }
            Err(error) => errors.push(error),
        }
    }
    match T::deserialize(Deserializer::from(Spanned::new(span, good))) {
        Ok(value) => (Some(value), errors),
        Err(error) => {
            errors.push(error);
            (None, errors)
        }
    }
}

struct Checker<'a> {
    file: &'a Path,
    source: &'a str,
    /// Byte offset of the front matter in `source`: spans are relative to it.
    base: usize,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error<T>(&mut self, at: &Spanned<T>, message: String, hint: &str) {
        let mut diagnostic =
            Diagnostic::at_offset(self.file, self.source, self.base + at.span().start, message);
        if !hint.is_empty() {
            diagnostic = diagnostic.with_hint(hint);
        }
        self.errors.push(diagnostic);
    }

    /// An error about the front matter as a whole: pointed at the opening `+++`.
    fn error_at_front_matter(&mut self, message: String, hint: &str) {
        let opening = self.source.starts_with('\u{feff}') as usize * 3;
        self.errors
            .push(Diagnostic::at_offset(self.file, self.source, opening, message).with_hint(hint));
    }

    fn non_empty(&mut self, raw: &Spanned<String>, key: &str, hint: &str) -> Option<String> {
        let text = raw.get_ref().trim();
        if text.is_empty() {
            self.error(raw, format!("`{key}` is empty"), hint);
            None
        } else {
            Some(text.to_string())
        }
    }

    /// Checks every key of the front matter and the body, recording a problem for each bad
    /// one; gives the post when the keys it cannot do without (`title`, `category`, `kind`)
    /// are good. [`parse_post`] sorts the problems by place, keeping the order of the checks
    /// here among problems at the same place.
    fn post(
        &mut self,
        id: &str,
        raw: RawFrontMatter,
        body: &str,
        context: &PostContext,
    ) -> Option<Post> {
        let title = self.title(raw.title.as_ref());
        let category = match &raw.category {
            Some(category) => self.category(category),
            None => Some(default_category(id, context.posts_dir)),
        };
        let link = raw.link.as_ref().and_then(|link| self.link(link));
        let hashtags = self.hashtags(raw.hashtags.as_deref().unwrap_or_default());
        let timing = self.timing(&raw, context.timezone);
        let content_warning = raw
            .content_warning
            .as_ref()
            .and_then(|cw| self.content_warning(cw));
        let language = raw.language.as_ref().and_then(|l| self.language(l));
        let visibility = raw.visibility.as_ref().and_then(|v| self.visibility(v));
        let weight = raw
            .weight
            .as_ref()
            .map_or(1.0, |weight| self.weight(weight));
        let short = raw.short.as_ref().and_then(|short| self.short(short));
        let media = self.media(raw.media.as_deref().unwrap_or_default(), id, context);
        let text = self.text(body);
        Some(Post {
            content_hash: content_hash(self.source.as_bytes()),
            id: id.to_string(),
            file: self.file.to_path_buf(),
            title: title?,
            category: category?,
            kind: timing.kind?,
            link,
            hashtags,
            active_from: timing.active_from,
            active_until: timing.active_until,
            content_warning,
            language,
            visibility,
            weight,
            short,
            short_position: raw.short.as_ref().map(|short| {
                diagnostic::line_and_column(self.source, self.base + short.span().start)
            }),
            long_posts: raw.long_posts,
            media,
            text,
        })
    }

    /// `title` is required and must say something; it is for maintainers and never posted.
    fn title(&mut self, raw: Option<&Spanned<String>>) -> Option<String> {
        let Some(title) = raw else {
            self.error_at_front_matter(
                "the post has no `title`".into(),
                "add `title = \"…\"` to the front matter; it is for maintainers and never posted",
            );
            return None;
        };
        self.non_empty(
            title,
            "title",
            "a few words for maintainers; it is never posted",
        )
    }

    /// When the post may go out: its kind (with `at` for an ad hoc post) and its
    /// `from`/`until` window, each checked, then checked against each other: a window that
    /// ends before it starts, or an `at` outside the window, means the post never goes out.
    fn timing(&mut self, raw: &RawFrontMatter, timezone: &TimeZone) -> Timing {
        let kind = self.kind(raw, timezone);
        let active_from = raw
            .from
            .as_ref()
            .and_then(|from| self.instant(from, "from", timezone, DayEdge::Start));
        let active_until = raw
            .until
            .as_ref()
            .and_then(|until| self.instant(until, "until", timezone, DayEdge::End));
        if let (Some(from), Some(until), Some(raw_until)) = (active_from, active_until, &raw.until)
        {
            if until <= from {
                self.error(
                    raw_until,
                    "`until` is before `from`: the post could never go out".into(),
                    "swap the two dates, or fix the one that is wrong",
                );
            }
        }
        if let (Some(PostKind::Adhoc { at, .. }), Some(raw_at)) = (kind, &raw.at) {
            let outside = active_from.is_some_and(|from| at < from)
                || active_until.is_some_and(|until| at >= until);
            if outside {
                self.error(
                    raw_at,
                    "`at` is outside the post's `from`/`until` window: it would never go out"
                        .into(),
                    "move `at` inside the window, or widen the window",
                );
            }
        }
        Timing {
            kind,
            active_from,
            active_until,
        }
    }

    /// A content warning, when set, must say what it warns of: an empty one hides the post
    /// behind nothing.
    fn content_warning(&mut self, raw: &Spanned<String>) -> Option<String> {
        self.non_empty(
            raw,
            "content_warning",
            "remove it, or say what the post is about, e.g. \"eye contact\"",
        )
    }

    /// The post's language: an ISO 639 code, as the server takes it.
    fn language(&mut self, raw: &Spanned<String>) -> Option<String> {
        if is_language_code(raw.get_ref()) {
            return Some(raw.get_ref().clone());
        }
        self.error(
            raw,
            format!("`{}` is not a language code", raw.get_ref()),
            "use a two- or three-letter ISO 639 code such as \"en\" or \"es\"",
        );
        None
    }

    /// The post's visibility: anything but `direct`, which would mention nobody and so reach
    /// nobody.
    fn visibility(&mut self, raw: &Spanned<Visibility>) -> Option<Visibility> {
        if *raw.get_ref() != Visibility::Direct {
            return Some(*raw.get_ref());
        }
        self.error(
            raw,
            "a post cannot be `direct`: it would reach nobody".into(),
            "use public, unlisted or private",
        );
        None
    }

    /// How often the post comes round in its category: a finite number above 0. A bad one is
    /// reported and the default, 1.0, stands in (the post is refused anyway).
    fn weight(&mut self, raw: &Spanned<f64>) -> f64 {
        let weight = *raw.get_ref();
        if weight.is_finite() && weight > 0.0 {
            return weight;
        }
        self.error(
            raw,
            format!("`weight` must be above 0, not {weight}"),
            "1.0 is the default; 2.0 makes the post come round twice as often",
        );
        1.0
    }

    /// The hand-written short version as plain text; it must not be empty once the Markdown
    /// is gone.
    fn short(&mut self, raw: &Spanned<String>) -> Option<String> {
        let text = markdown_to_text(raw.get_ref());
        if !text.is_empty() {
            return Some(text);
        }
        self.error(
            raw,
            "`short` is empty".into(),
            "remove it, or write the short version",
        );
        None
    }

    /// The body as plain toot text; a post with no text is reported where the text should
    /// start, after the closing `+++`.
    fn text(&mut self, body: &str) -> String {
        let text = markdown_to_text(body);
        if text.is_empty() {
            let offset = self.source.len() - body.len();
            self.errors.push(
                Diagnostic::at_offset(self.file, self.source, offset, "the post has no text")
                    .with_hint("write the post below the closing `+++` line"),
            );
        }
        text
    }

    fn category(&mut self, raw: &Spanned<String>) -> Option<String> {
        let category = raw.get_ref().trim();
        if category.is_empty()
            || category
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            self.error(
                raw,
                format!("`{category}` is not a category name"),
                "use lowercase words joined by -, e.g. \"package-showcase\"",
            );
            None
        } else {
            Some(category.to_string())
        }
    }

    fn link(&mut self, raw: &Spanned<String>) -> Option<String> {
        let text = raw.get_ref().trim();
        match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                if text.chars().any(char::is_whitespace) {
                    self.error(
                        raw,
                        "a link cannot contain spaces".into(),
                        "encode spaces as %20",
                    );
                    return None;
                }
                Some(text.to_string())
            }
            _ => {
                self.error(
                    raw,
                    format!("`{text}` is not an http(s) URL"),
                    "write the full address, e.g. \"https://www.pyopensci.org/\"",
                );
                None
            }
        }
    }

    fn hashtags(&mut self, raw: &[Spanned<String>]) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        for tag in raw {
            match normalize_hashtag(tag.get_ref()) {
                Some(normal)
                    if tags
                        .iter()
                        .any(|t| t.to_lowercase() == normal.to_lowercase()) =>
                {
                    self.error(tag, format!("`{normal}` is listed twice"), "remove one");
                }
                Some(normal) => tags.push(normal),
                None => self.error(
                    tag,
                    format!("`{}` is not a hashtag", tag.get_ref()),
                    "letters, digits and _ only, not only digits, e.g. \"OpenScience\"",
                ),
            }
        }
        tags
    }

    fn kind(&mut self, raw: &RawFrontMatter, timezone: &TimeZone) -> Option<PostKind> {
        let adhoc = raw
            .kind
            .as_ref()
            .is_some_and(|k| *k.get_ref() == RawKind::Adhoc);
        if !adhoc {
            if let Some(at) = &raw.at {
                self.error(
                    at,
                    "`at` is only for ad hoc posts".into(),
                    "add `kind = \"adhoc\"` to post it once at that time, or remove `at`",
                );
            }
            if let Some(then) = &raw.then {
                self.error(
                    then,
                    "`then` is only for ad hoc posts".into(),
                    "evergreen posts are already in the rotation: remove `then`",
                );
            }
            return Some(PostKind::Evergreen);
        }
        let then_evergreen = raw.then.is_some();
        match &raw.at {
            None => {
                let kind = raw.kind.as_ref().expect("adhoc implies kind is set");
                self.error(
                    kind,
                    "an ad hoc post needs `at`, the time it goes out".into(),
                    "add `at = YYYY-MM-DDTHH:MM:SS` with the time it goes out (in the schedule's time zone, or with an offset such as `-06:00`)",
                );
                None
            }
            Some(at) => {
                if at.get_ref().date.is_none() || at.get_ref().time.is_none() {
                    self.error(
                        at,
                        "`at` needs a date and a time".into(),
                        "write `at = YYYY-MM-DDTHH:MM:SS`, a date and time (no quotes)",
                    );
                    return None;
                }
                let at = self.instant(at, "at", timezone, DayEdge::Start)?;
                Some(PostKind::Adhoc { at, then_evergreen })
            }
        }
    }

    /// A TOML date or datetime as an instant. A date alone is the start (or the end) of that
    /// day, and a datetime without offset is wall-clock time, both in the schedule's zone.
    fn instant(
        &mut self,
        raw: &Spanned<Datetime>,
        key: &str,
        timezone: &TimeZone,
        edge: DayEdge,
    ) -> Option<Timestamp> {
        let value = raw.get_ref();
        let text = value.to_string();
        let parsed = match (value.date, value.time, value.offset) {
            (Some(_), Some(_), Some(_)) => text.parse::<Timestamp>().ok(),
            (Some(_), Some(_), None) => text
                .parse::<jiff::civil::DateTime>()
                .ok()
                .and_then(|dt| dt.to_zoned(timezone.clone()).ok())
                .map(|z| z.timestamp()),
            (Some(_), None, None) => text.parse::<jiff::civil::Date>().ok().and_then(|date| {
                let day = match edge {
                    DayEdge::Start => date,
                    DayEdge::End => date.tomorrow().ok()?,
                };
                day.to_zoned(timezone.clone()).ok().map(|z| z.timestamp())
            }),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                raw,
                format!("`{key}` must be a date or a date and time, not `{text}`"),
                "write a date, YYYY-MM-DD, or a date and time, YYYY-MM-DDTHH:MM:SS with an optional offset such as -06:00 (no quotes)",
            );
        }
        parsed
    }

    /// The `[[media]]` entries: at most [`MAX_MEDIA`], each with alt text and a file inside
    /// the posts folder that the server takes. Every entry is checked, so one pass reports
    /// every problem; an entry with any problem is left out.
    fn media(&mut self, raw: &[Spanned<RawMedia>], id: &str, context: &PostContext) -> Vec<Media> {
        if raw.len() > MAX_MEDIA {
            self.error(
                &raw[MAX_MEDIA],
                format!(
                    "at most {MAX_MEDIA} media per post, this one has {}",
                    raw.len()
                ),
                "remove the extra [[media]] entries",
            );
        }
        let post_folder = Path::new(id).parent().unwrap_or(Path::new(""));
        let mut media = Vec::new();
        for item in raw {
            let alt = self.alt(item, context.alt_text_limit);
            let file = &item.get_ref().file;
            let Some(path) = self.media_path(file, post_folder, context.posts_dir) else {
                continue;
            };
            let Some(real_path) = self.media_on_disk(file, &path, context) else {
                continue;
            };
            if let Some(alt) = alt {
                media.push(Media {
                    path: real_path,
                    alt,
                });
            }
        }
        media
    }

    /// A media entry's alt text, trimmed: required for accessibility, not empty, and within
    /// the server's limit (a text over it is reported but kept, as the post is refused anyway).
    fn alt(&mut self, item: &Spanned<RawMedia>, limit: usize) -> Option<String> {
        let Some(alt) = &item.get_ref().alt else {
            self.error(
                item,
                "this media has no `alt` text".into(),
                "add `alt = \"…\"` describing what the image shows: alt text is required for accessibility",
            );
            return None;
        };
        let text = alt.get_ref().trim();
        if text.is_empty() {
            self.error(
                alt,
                "`alt` is empty".into(),
                "describe what the image shows",
            );
            return None;
        }
        let length = text.chars().count();
        if length > limit {
            self.error(
                alt,
                format!("the alt text is {length} characters, over the server's limit of {limit}"),
                "shorten it; put long explanations in the post itself",
            );
        }
        Some(text.to_string())
    }

    /// Where a media `file` is: relative to the post's folder, and by its name alone never
    /// above the posts folder (where symbolic links lead is [`Self::media_on_disk`]'s question).
    fn media_path(
        &mut self,
        file: &Spanned<String>,
        post_folder: &Path,
        posts_dir: &Path,
    ) -> Option<PathBuf> {
        let relative = Path::new(file.get_ref().trim());
        let inside = !relative.as_os_str().is_empty()
            && relative.is_relative()
            && stays_inside(&post_folder.join(relative));
        if !inside {
            self.error(
                file,
                format!("`{}` is not a path inside the posts folder", file.get_ref()),
                "give a path relative to this post's folder, e.g. \"images/logo.png\"",
            );
            return None;
        }
        Some(posts_dir.join(post_folder).join(relative))
    }

    /// What the file system says of the media file at `path` (through
    /// [`PostContext::media_file`]): its real path when it is a regular file inside the posts
    /// folder and within the server's size limit for its kind; otherwise a problem, and `None`.
    fn media_on_disk(
        &mut self,
        file: &Spanned<String>,
        path: &Path,
        context: &PostContext,
    ) -> Option<PathBuf> {
        let name = file.get_ref();
        let (message, hint) = match (context.media_file)(path) {
            MediaFile::Regular { real_path, bytes } => {
                let (limit, kind) = context.media_limits.for_file(path);
                if bytes <= limit {
                    return Some(real_path);
                }
                (
                    format!(
                        "`{name}` is {}, over the server's limit of {} for an {kind}",
                        megabytes(bytes),
                        megabytes(limit)
                    ),
                    "make it smaller (resize or compress it)",
                )
            }
            MediaFile::Missing => (
                format!("media file `{}` not found", path.display()),
                "the path is relative to this post's folder; check the name and that the file is committed",
            ),
            // The target is not named: it is outside, and may be a secret.
            MediaFile::Outside { .. } => (
                format!("`{name}` leads outside the posts folder through a symbolic link"),
                "media must be files inside the posts folder: commit the file itself, not a link to it",
            ),
            MediaFile::NotRegular => (
                format!("`{name}` is not a regular file"),
                "name an image or video file",
            ),
        };
        self.error(file, message, hint);
        None
    }
}

/// When a post may go out, as [`Checker::timing`] found it: `kind` is `None` when it is bad.
struct Timing {
    kind: Option<PostKind>,
    active_from: Option<Timestamp>,
    active_until: Option<Timestamp>,
}

#[derive(Clone, Copy)]
enum DayEdge {
    Start,
    End,
}

/// `bytes` in MB (10^6), one decimal.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Whether a relative path never climbs above its starting folder (`a/../b` is fine, `../b` not).
fn stays_inside(path: &Path) -> bool {
    let mut depth = 0usize;
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// The parent folder's name; for a file directly in `posts/`, the posts folder's own name.
fn default_category(id: &str, posts_dir: &Path) -> String {
    match id.rsplit_once('/') {
        Some((folder, _)) => folder.rsplit('/').next().unwrap_or(folder).to_string(),
        None => posts_dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "posts".to_string()),
    }
}
