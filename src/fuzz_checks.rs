//! The fuzz targets' bodies: one function per target that takes any bytes, runs one input
//! path of the crate and asserts its invariants (a failed assertion is a panic, which the
//! fuzzer reports as a crash).
//!
//! They live in the library, not in `fuzz/`, so that `tests/it/fuzz_regressions.rs` runs the
//! very same checks over the seed corpora and every crash input kept in `fuzz/regressions/`
//! with a plain `cargo test` on the stable toolchain. Not part of the public API.
//!
//! Only what the code promises is asserted (module docs and ARCHITECTURE.md):
//!
//! - [`post`] and [`config`]: no panic; every problem points at a line and column that exist
//!   in the file; a post that parses holds no invalid state (a media path outside the posts
//!   folder, `direct` visibility, an empty title…); a parsed post composes within the limit
//!   for several servers (as [`compose`] checks), a parsed config's guides give a reply that
//!   fits.
//! - [`markdown`]: the text has no surrounding whitespace, no line ending in whitespace, never
//!   two blank lines in a row, and no `<` that the input wrote as an HTML tag (a `<` can only
//!   come from text, code, a link's URL or an entity).
//! - [`mention`]: a status's HTML as text is trimmed, has no `\r`, tab, form feed or NUL
//!   (newlines come only from breaks), and, for HTML made of escaped text and ordinary tags,
//!   is exactly that text (tags dropped, text kept); the reply composed for any mention fits
//!   the server and is the reply to a plain mention by the same author asking for the same
//!   topics, so nothing of the mention comes back.
//! - [`compose`]: every status is counted as its server counts it and is within the limit
//!   (unless the composer reported `NoRoom`), the link is in the first status, a thread has
//!   2 to `max_thread` parts numbered ` (i/n)` each replying to the previous one, and the same
//!   input gives the same statuses.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use pulldown_cmark::{Event, Options, Parser, Tag};

use crate::network::mastodon::Mention;
use crate::posts::config::{normalize_hashtag, Config, Guide, LongPosts, Visibility};
use crate::posts::diagnostic::{decode_utf8, Diagnostic};
use crate::posts::markdown::markdown_to_text;
use crate::posts::post::{
    parse_post, Post, PostContext, PostKind, DEFAULT_ALT_TEXT_LIMIT, MAX_MEDIA,
};
use crate::text::compose::{self as composer, Composed, Fit, FitProblem, FitSettings};
use crate::text::count::{Counter, Software};
use crate::text::html::html_to_text;
use crate::text::reply::{compose_reply, mention_words, Decision, NoReplyReason, ReplySettings};

/// Separates the fields of a structured input (`compose`, `mention`): U+001E RECORD SEPARATOR.
pub const FIELD_SEPARATOR: char = '\u{1e}';

/// The servers statuses are fitted to: Mastodon's and GoToSocial's default 500, Pleroma's
/// one-below rule, a generic server, and tiny limits where the content warning and link
/// crowd the text out.
const SERVERS: &[(Software, usize)] = &[
    (Software::Mastodon, 500),
    (Software::Gotosocial, 500),
    (Software::Pleroma, 500),
    (Software::Generic, 140),
    (Software::Mastodon, 60),
    (Software::Gotosocial, 60),
];

fn counters() -> Vec<Counter> {
    SERVERS
        .iter()
        .map(|&(software, limit)| Counter::new(software, limit, 23))
        .collect()
}

fn text_of(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

// ---------------------------------------------------------------------------------------
// Post files.

/// A post file's bytes, as `library.rs` reads them: decoded, parsed, and when it is a post,
/// composed for every server.
pub fn post(data: &[u8]) {
    let file = Path::new("posts/tips/fuzz.md");
    let source = match decode_utf8(file, data.to_vec()) {
        Ok(source) => source,
        Err(diagnostic) => {
            // The bad byte is located in the file as a lossy decoder shows it.
            check_located(&[diagnostic], file, &String::from_utf8_lossy(data));
            return;
        }
    };
    let posts_dir = Path::new("posts");
    let context = PostContext {
        posts_dir,
        timezone: timezone(),
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        // Any name exists except those saying otherwise, so both answers are explored.
        media_file: &|path: &Path| {
            if path.to_string_lossy().contains("missing") {
                crate::posts::post::MediaFile::Missing
            } else {
                crate::posts::post::MediaFile::assume_present(path)
            }
        },
        media_limits: crate::posts::post::MediaLimits::default(),
    };
    match parse_post("tips/fuzz", file, &source, &context) {
        Err(problems) => {
            assert!(!problems.is_empty(), "a rejected post names no problem");
            check_located(&problems, file, &source);
        }
        Ok(post) => {
            check_valid_post(&post, posts_dir);
            let defaults = vec!["pyOpenSci".to_string()];
            for counter in counters() {
                for long_posts in [LongPosts::Truncate, LongPosts::Thread] {
                    let settings = FitSettings {
                        counter: &counter,
                        long_posts,
                        max_thread: 4,
                        default_hashtags: &defaults,
                        visibility: Visibility::Public,
                        language: "en",
                    };
                    check_composed(&post, &settings);
                }
            }
        }
    }
}

fn timezone() -> &'static TimeZone {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    ZONE.get_or_init(|| TimeZone::get("Europe/Berlin").expect("the bundled tzdb has Berlin"))
}

/// Every problem points inside `source`: a line that exists and a column at most one past
/// that line's last character.
fn check_located(problems: &[Diagnostic], file: &Path, source: &str) {
    let lines: Vec<&str> = source.split('\n').collect();
    for problem in problems {
        assert_eq!(problem.file, file, "{problem}");
        assert!(
            problem.line >= 1 && problem.line <= lines.len(),
            "line {} of {}: {problem}",
            problem.line,
            lines.len()
        );
        let characters = lines[problem.line - 1].chars().count();
        assert!(
            problem.column >= 1 && problem.column <= characters + 1,
            "column {} on a line of {characters} characters: {problem}",
            problem.column
        );
        assert!(
            !problem.message.trim().is_empty(),
            "a problem with no message"
        );
    }
}

/// What `post.rs` promises of a post it accepted: no invalid state can be built.
fn check_valid_post(post: &Post, posts_dir: &Path) {
    assert!(!post.title.trim().is_empty(), "empty title");
    assert!(!post.text.is_empty(), "a post with no text");
    assert!(
        !post.category.is_empty()
            && !post
                .category
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()),
        "bad category {:?}",
        post.category
    );
    assert_ne!(post.visibility, Some(Visibility::Direct));
    assert!(
        post.weight.is_finite() && post.weight > 0.0,
        "{}",
        post.weight
    );
    if let Some(link) = &post.link {
        let url = url::Url::parse(link).expect("an accepted link parses");
        assert!(matches!(url.scheme(), "http" | "https") && url.host().is_some());
        assert!(!link.chars().any(char::is_whitespace), "{link:?}");
    }
    for tag in &post.hashtags {
        assert_eq!(normalize_hashtag(tag).as_deref(), Some(tag.as_str()));
    }
    if let Some(cw) = &post.content_warning {
        assert!(!cw.trim().is_empty(), "empty content warning");
    }
    if let Some(short) = &post.short {
        assert!(!short.is_empty(), "empty short");
    }
    if let (Some(from), Some(until)) = (post.active_from, post.active_until) {
        assert!(from < until, "window {from}..{until}");
    }
    if let PostKind::Adhoc { at, .. } = post.kind {
        assert!(post.active_from.is_none_or(|from| from <= at));
        assert!(post.active_until.is_none_or(|until| at < until));
    }
    assert!(post.media.len() <= MAX_MEDIA, "{} media", post.media.len());
    for media in &post.media {
        assert!(
            stays_inside(&media.path, posts_dir),
            "media path {} leaves {}",
            media.path.display(),
            posts_dir.display()
        );
        let alt = media.alt.chars().count();
        assert!(
            alt > 0 && alt <= DEFAULT_ALT_TEXT_LIMIT,
            "alt text of {alt}"
        );
    }
}

/// Whether `path` is `dir` followed by components that never climb above it (read lexically,
/// as the daemon joins them). Written apart from `post.rs`'s check on purpose.
fn stays_inside(path: &Path, dir: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(dir) else {
        return false;
    };
    let mut depth: Vec<&std::ffi::OsStr> = Vec::new();
    for component in rest.components() {
        match component {
            Component::Normal(name) => depth.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    !depth.is_empty()
}

// ---------------------------------------------------------------------------------------
// The config file.

/// A config file's bytes, as `Config::load` reads them; a config that loads has guides
/// that give a reply within its server's limit, when one fits at all.
pub fn config(data: &[u8]) {
    let path = Path::new("/etc/perennial/config.toml");
    let source = match decode_utf8(path, data.to_vec()) {
        Ok(source) => source,
        Err(diagnostic) => {
            check_located(&[diagnostic], path, &String::from_utf8_lossy(data));
            return;
        }
    };
    let config = match Config::parse(path, &source) {
        Ok(config) => config,
        Err(problems) => {
            assert!(!problems.is_empty(), "a rejected config names no problem");
            check_located(&problems, path, &source);
            return;
        }
    };
    assert!((1..=20).contains(&config.posts.max_thread));
    assert_ne!(config.posts.visibility, Visibility::Direct);
    for tag in &config.posts.hashtags {
        assert_eq!(normalize_hashtag(tag).as_deref(), Some(tag.as_str()));
    }
    for guide in &config.guides {
        assert!(!guide.topic.is_empty() && !guide.title.is_empty());
        assert!(!guide.keywords.is_empty());
        for keyword in &guide.keywords {
            assert!(!keyword.is_empty() && keyword.trim() == keyword);
            assert_eq!(keyword.to_lowercase(), *keyword);
        }
    }
    let counter = Counter::new(
        Software::Mastodon,
        config.server.max_characters.unwrap_or(500),
        23,
    );
    let settings = ReplySettings {
        guides: &config.guides,
        reply_visibility: config.mentions.reply_visibility,
        counter: &counter,
    };
    let asking = config
        .guides
        .iter()
        .map(|g| g.keywords[0].as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for html in [format!("<p>{asking}</p>"), "<p>hello</p>".to_string()] {
        let mention = plain_mention("alice@example.org", &html, Visibility::Public);
        if let Decision::Reply(reply) = compose_reply(&mention, &settings) {
            assert!(counter.fits(&reply.text, ""), "{:?}", reply.text);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Markdown.

/// A post body through the Markdown renderer.
pub fn markdown(data: &[u8]) {
    let source = text_of(data);
    let text = markdown_to_text(&source);
    assert_eq!(text.trim(), text, "surrounding whitespace");
    assert!(
        !text.contains("\n\n\n"),
        "two blank lines in a row: {text:?}"
    );
    for line in text.split('\n') {
        assert_eq!(line.trim_end(), line, "a line ends in whitespace: {text:?}");
    }
    let allowed = angle_brackets_not_from_tags(&source);
    let found = text.matches('<').count();
    assert!(
        found <= allowed,
        "{found} `<` in the text but at most {allowed} can come from anything but a tag: {text:?}"
    );
}

/// An upper bound on the `<` the renderer may write: those of text, code, link URLs and
/// footnote labels (entities already decoded by the parser), and in raw HTML only a `<` that
/// starts no tag, or one an entity (`&lt;`, `&#60;`…) decodes to.
fn angle_brackets_not_from_tags(source: &str) -> usize {
    let source = source.replace("\r\n", "\n").replace('\r', "\n");
    let options =
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES;
    let count = |s: &str| s.matches('<').count();
    let mut allowed = 0;
    for event in Parser::new_ext(&source, options) {
        allowed += match &event {
            Event::Text(s)
            | Event::Code(s)
            | Event::InlineMath(s)
            | Event::DisplayMath(s)
            | Event::FootnoteReference(s) => count(s),
            Event::Start(Tag::Link { dest_url, .. }) => count(dest_url),
            Event::Start(Tag::FootnoteDefinition(label)) => count(label),
            Event::Html(html) | Event::InlineHtml(html) => {
                let not_tags = html
                    .match_indices('<')
                    .filter(|(i, _)| {
                        let after = &html[i + 1..];
                        let starts_tag = after
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic() || "/!?".contains(c));
                        !(starts_tag && after.contains('>'))
                    })
                    .count();
                not_tags + html.matches('&').count()
            }
            _ => 0,
        };
    }
    allowed
}

// ---------------------------------------------------------------------------------------
// Mentions.

/// A stranger's mention: `acct`, `spoiler` and `html` separated by [`FIELD_SEPARATOR`] (with
/// fewer fields, the last is the HTML and the spoiler comes before it). Its HTML as text, and
/// the reply to it for each server, as a new mention and as a reply in a thread.
pub fn mention(data: &[u8]) {
    let input = text_of(data);
    let fields: Vec<&str> = input.splitn(3, FIELD_SEPARATOR).collect();
    let (acct, spoiler, html) = match fields[..] {
        [acct, spoiler, html] => (acct, spoiler, html),
        [spoiler, html] => ("alice@example.org", spoiler, html),
        _ => ("alice@example.org", "", input.as_str()),
    };

    let text = html_to_text(html);
    assert_eq!(text.trim(), text, "surrounding whitespace");
    assert!(
        !text.contains(['\r', '\t', '\u{c}', '\0']),
        "raw whitespace or NUL in {text:?}"
    );
    let words = mention_words(&text);
    assert_eq!(words.trim(), words);
    check_html_model(html);

    let guides = bundled_guides();
    for counter in counters() {
        let settings = ReplySettings {
            guides,
            reply_visibility: Visibility::Unlisted,
            counter: &counter,
        };
        for in_reply_to in [None, Some("bot-status-1")] {
            for visibility in [Visibility::Public, Visibility::Direct] {
                let mut mention = plain_mention(acct, html, visibility);
                mention.spoiler_text = spoiler.to_string();
                mention.in_reply_to_id = in_reply_to.map(str::to_string);
                check_reply(&mention, &settings);
            }
        }
    }
}

fn plain_mention(acct: &str, html: &str, visibility: Visibility) -> Mention {
    Mention {
        notification_id: "n1".into(),
        created_at: Timestamp::UNIX_EPOCH,
        status_id: "s1".into(),
        text: html_to_text(html),
        spoiler_text: String::new(),
        visibility,
        in_reply_to_id: None,
        in_reply_to_account_id: None,
        account_id: "a1".into(),
        acct: acct.into(),
        bot: false,
    }
}

/// The bundled `config.toml`'s guides (its first keywords are whole words no other guide's
/// keyword matches, which [`check_reply`]'s plain mention relies on).
fn bundled_guides() -> &'static [Guide] {
    static GUIDES: OnceLock<Vec<Guide>> = OnceLock::new();
    GUIDES.get_or_init(|| {
        let source = include_str!("../config.toml");
        Config::parse(Path::new("config.toml"), source)
            .expect("the bundled config.toml is valid")
            .guides
    })
}

/// The reply fits, links at most 3 guides in config order, and equals the reply to a plain
/// mention by the same author asking for the same topics: nothing of the mention comes back.
fn check_reply(mention: &Mention, settings: &ReplySettings) {
    let decision = compose_reply(mention, settings);
    assert_eq!(
        decision,
        compose_reply(mention, settings),
        "not deterministic"
    );
    let reply = match decision {
        Decision::Reply(reply) => reply,
        Decision::NoReply(NoReplyReason::ReplyWithoutTopic) => {
            assert!(
                mention.in_reply_to_id.is_some(),
                "a new mention was ignored"
            );
            return;
        }
        Decision::NoReply(_) => return,
    };
    let counter = settings.counter;
    assert!(
        counter.fits(&reply.text, ""),
        "{} > {}: {:?}",
        counter.count(&reply.text),
        counter.limit(),
        reply.text
    );
    assert!(reply.topics.len() <= 3);
    assert!(
        !reply.topics.is_empty() || mention.in_reply_to_id.is_none(),
        "a help reply to a reply"
    );
    assert!(reply.visibility >= mention.visibility);
    assert!(reply.visibility >= settings.reply_visibility);
    assert_eq!(reply.in_reply_to_id, mention.status_id);
    let positions: Vec<usize> = reply
        .topics
        .iter()
        .map(|topic| {
            settings
                .guides
                .iter()
                .position(|g| &g.topic == topic)
                .expect("a topic of a guide")
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "not in config order"
    );
    let prefix = format!("@{}", mention.acct);
    assert!(
        reply.text.starts_with(&format!("{prefix} "))
            || reply.text.starts_with(&format!("{prefix}\n")),
        "{:?}",
        reply.text
    );

    let asking: Vec<&str> = positions
        .iter()
        .map(|&i| settings.guides[i].keywords[0].as_str())
        .collect();
    let html = if asking.is_empty() {
        "<p>hello</p>".to_string()
    } else {
        format!("<p>{}</p>", asking.join(" "))
    };
    let mut plain = plain_mention(&mention.acct, &html, mention.visibility);
    plain.in_reply_to_id = if asking.is_empty() {
        None
    } else {
        mention.in_reply_to_id.clone()
    };
    match compose_reply(&plain, settings) {
        Decision::Reply(expected) => {
            assert_eq!(reply.text, expected.text, "the reply echoes the mention");
            assert_eq!(reply.topics, expected.topics);
        }
        other => panic!("a plain mention asking for {asking:?} gets {other:?}"),
    }
}

/// Tag names the model below avoids: elements whose content is not markup (the naive state
/// switch: `title`, `textarea`, `plaintext`, `script`, `style`, `xmp`…) or is hidden.
const NOT_ORDINARY: &[&str] = &[
    "textarea",
    "title",
    "plaintext",
    "script",
    "style",
    "iframe",
    "xmp",
    "noembed",
    "noframe",
    "noframes",
    "noscript",
    "template",
];

/// Builds HTML from the input's pieces, separated by U+001F: even pieces are text (escaped),
/// odd ones become an ordinary start or end tag with the piece as an attribute. The text read
/// from it is exactly the pieces' text, whitespace aside: tags dropped, text kept.
fn check_html_model(input: &str) {
    let mut html = String::new();
    let mut expected = String::new();
    for (i, piece) in input.split('\u{1f}').enumerate() {
        if i % 2 == 0 {
            html.push_str(&escape_html(piece));
            expected.push_str(piece);
            continue;
        }
        let mut name: String = piece
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(10)
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() || NOT_ORDINARY.contains(&name.as_str()) {
            name = "span".into();
        }
        if piece.len() % 2 == 0 {
            html.push_str(&format!("<{name} title=\"{}\">", escape_html(piece)));
        } else {
            html.push_str(&format!("</{name}>"));
        }
    }
    let squeeze = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '\0')
            .collect()
    };
    let text = html_to_text(&html);
    assert_eq!(
        squeeze(&text),
        squeeze(&expected),
        "from {html:?} the text {text:?}"
    );
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---------------------------------------------------------------------------------------
// The composer.

/// A post built from the input: a first byte of settings (long posts, `max_thread`, a
/// content warning or not), then body, `short`, content warning, link and hashtags separated
/// by [`FIELD_SEPARATOR`]. The body is taken as the post's text as is (the composer promises
/// to fit any text); the other fields are made valid as `post.rs` would require. Composed for
/// every server.
pub fn compose(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let input = text_of(rest);
    let mut fields = input.split(FIELD_SEPARATOR);
    let body = fields.next().unwrap_or_default().to_string();
    let short = fields
        .next()
        .map(markdown_to_text)
        .filter(|s| !s.is_empty());
    let content_warning = fields
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty() && flags & 0x10 != 0)
        .map(str::to_string);
    let link = fields.next().and_then(valid_link);
    let mut hashtags: Vec<String> = Vec::new();
    for tag in fields.next().unwrap_or_default().split_whitespace() {
        if let Some(tag) = normalize_hashtag(tag) {
            if !hashtags
                .iter()
                .any(|t| t.to_lowercase() == tag.to_lowercase())
            {
                hashtags.push(tag);
            }
        }
    }
    let long_posts = match flags & 0x3 {
        0 => None,
        1 => Some(LongPosts::Truncate),
        _ => Some(LongPosts::Thread),
    };
    let post = Post {
        id: "tips/fuzz".into(),
        file: PathBuf::from("posts/tips/fuzz.md"),
        title: "fuzz".into(),
        category: "tips".into(),
        kind: PostKind::Evergreen,
        link,
        hashtags,
        active_from: None,
        active_until: None,
        content_warning,
        language: None,
        visibility: None,
        weight: 1.0,
        short,
        short_position: None,
        long_posts,
        media: Vec::new(),
        text: body,
        content_hash: String::new(),
    };
    let max_thread = 1 + usize::from((flags >> 2) & 0x3) * 3; // 1, 4, 7 or 10
    let defaults = vec!["pyOpenSci".to_string(), "OpenScience".to_string()];
    for counter in counters() {
        let settings = FitSettings {
            counter: &counter,
            long_posts: if flags & 0x20 != 0 {
                LongPosts::Thread
            } else {
                LongPosts::Truncate
            },
            max_thread,
            default_hashtags: &defaults,
            visibility: if flags & 0x40 != 0 {
                Visibility::Unlisted
            } else {
                Visibility::Public
            },
            language: "en",
        };
        check_composed(&post, &settings);
    }
}

/// The field as a link `post.rs` would accept, else `https://example.org/` and the field.
fn valid_link(field: &str) -> Option<String> {
    let accept = |text: &str| {
        url::Url::parse(text).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && !text.chars().any(char::is_whitespace)
        })
    };
    let field = field.trim();
    if field.is_empty() {
        return None;
    }
    if accept(field) {
        return Some(field.to_string());
    }
    let path: String = field.chars().filter(|c| !c.is_whitespace()).collect();
    let link = format!("https://example.org/{path}");
    accept(&link).then_some(link)
}

/// Composes `post` and checks every promise of `compose.rs`.
fn check_composed(post: &Post, settings: &FitSettings) {
    let composed = composer::compose(post, settings);
    assert_eq!(
        composed,
        composer::compose(post, settings),
        "not deterministic"
    );
    let Composed {
        statuses,
        fit,
        problems,
    } = &composed;
    let counter = settings.counter;
    let no_room = problems.contains(&FitProblem::NoRoom);
    let spoiler = post.content_warning.clone().unwrap_or_default();
    assert!(!statuses.is_empty(), "nothing to send");
    for status in statuses {
        let length = counter.count_status(&status.text, &status.spoiler_text);
        assert_eq!(status.length, length, "{:?}", status.text);
        assert!(
            no_room || length <= counter.limit(),
            "{length} > {} on {:?} without NoRoom: {:?} (cw {:?})",
            counter.limit(),
            counter.software(),
            status.text,
            status.spoiler_text
        );
        assert_eq!(status.spoiler_text, spoiler);
    }
    if let (Some(link), false) = (&post.link, no_room) {
        assert!(
            statuses[0].text.contains(link.as_str()),
            "the link is missing: {:?}",
            statuses[0].text
        );
    }
    match *fit {
        Fit::Thread { parts, .. } => {
            assert_eq!(parts, statuses.len());
            assert!(
                (2..=settings.max_thread).contains(&parts),
                "a thread of {parts} with max_thread {}",
                settings.max_thread
            );
            for (i, status) in statuses.iter().enumerate() {
                let suffix = format!(" ({}/{parts})", i + 1);
                assert!(status.text.ends_with(&suffix), "{:?}", status.text);
                assert_eq!(status.in_reply_to, i.checked_sub(1));
            }
        }
        Fit::AsIs | Fit::Short | Fit::Truncated => {
            assert_eq!(statuses.len(), 1);
            assert_eq!(statuses[0].in_reply_to, None);
        }
    }
}
