//! Composes a post into the status, or the thread, that goes to the server, fitted to its limit.
//!
//! Pure and deterministic: the same post and settings always give the same statuses, and
//! what `preview` shows is exactly what the daemon sends. The rules (product contract §2):
//!
//! - The full text is the body, then the link if the body lacks it, then the hashtags the
//!   body lacks (the post's own, then hashtags written in the body, then the config's), as
//!   paragraphs. If it fits, it goes as is.
//! - Truncate: a hand-written `short` is used when present and it fits. Otherwise the body
//!   is cut at the last sentence end that fits, or at a word boundary when the sentence cut
//!   would keep less than half of the room, and ends with `…` (` …` after a sentence, so
//!   the full stop stays readable). The link is never dropped; hashtags are dropped from
//!   the end before the body would be cut below half the room. Cuts happen only between
//!   the counter's segments, so never inside a URL, a mention, a hashtag or a grapheme;
//!   a word cut drops a dangling `(`, `:`, `,` (and the like) and an unclosed parenthesis.
//! - Thread: the body is split at sentence ends (at word boundaries inside a sentence too
//!   long for one part) into at most `max_thread` parts, each ending ` (i/n)` and within
//!   the limit with the counter included; the first part carries the link and hashtags;
//!   later parts reply to the previous one, unlisted when the first is public. A body that
//!   needs more parts is truncated in its last part.
//!
//! Every status is finally counted whole with the server's counter; if joining pieces
//! changed how the server reads them (a URL glued to what precedes it), the budget shrinks
//! and the cut is redone, so a composed status never exceeds the limit.

use serde::Serialize;

use crate::posts::config::{Config, LongPosts, Visibility};
use crate::posts::post::Post;
use crate::text::count::{Counter, Segment, SegmentKind};

/// Below this limit most posts lose all but a few words, or cannot be sent at all: a post
/// needs room for a sentence, its link (23 characters on Mastodon, which counts every URL as
/// `characters_reserved_per_url`) and a hashtag. Mastodon's default is 500
/// (<https://docs.joinmastodon.org/entities/Instance/#max_characters>). `check`, `preview`
/// and the daemon at start warn about a smaller limit ([`limit_warning`]).
pub const MIN_SANE_LIMIT: usize = 100;

/// The warning for a limit below [`MIN_SANE_LIMIT`], if `counter`'s is.
pub fn limit_warning(counter: &Counter) -> Option<String> {
    (counter.limit() < MIN_SANE_LIMIT).then(|| {
        format!(
            "the limit is {} characters, below {MIN_SANE_LIMIT}: most posts will be cut to a few words, and a post whose link does not fit is not sent; check `max_characters` in the config (or the server's own limit)",
            counter.limit()
        )
    })
}

/// The server and the defaults a post is fitted to.
#[derive(Debug, Clone)]
pub struct FitSettings<'a> {
    pub counter: &'a Counter,
    /// The config's default; a post's own `long_posts` wins.
    pub long_posts: LongPosts,
    pub max_thread: usize,
    /// Without `#`; added when there is room.
    pub default_hashtags: &'a [String],
    /// The config's default; a post's own `visibility` wins.
    pub visibility: Visibility,
    pub language: &'a str,
}

/// One status exactly as it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub text: String,
    pub spoiler_text: String,
    pub visibility: Visibility,
    pub language: String,
    /// Index of the status this one replies to (the previous part of a thread).
    pub in_reply_to: Option<usize>,
    /// Characters as the server counts them, content warning included.
    pub length: usize,
}

/// How the post was fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    AsIs,
    Short,
    Truncated,
    Thread { parts: usize, truncated: bool },
}

impl std::fmt::Display for Fit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fit::AsIs => write!(f, "as is"),
            Fit::Short => write!(f, "short version"),
            Fit::Truncated => write!(f, "truncated"),
            Fit::Thread {
                parts,
                truncated: false,
            } => write!(f, "thread of {parts}"),
            Fit::Thread {
                parts,
                truncated: true,
            } => write!(f, "thread of {parts}, last part truncated"),
        }
    }
}

/// A problem that does not stop composing but that `check` must report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FitProblem {
    /// The hand-written `short` (with the link) is over the limit; the body was truncated instead.
    ShortTooLong { length: usize, limit: usize },
    /// The composition must not be sent: the limit leaves no room for the text, or for the
    /// link. Always present when it must not; [`FitProblem::Unsendable`] says why.
    NoRoom,
    /// Why the composition must not be sent (next to [`FitProblem::NoRoom`]).
    Unsendable(Unsendable),
}

/// Why a composition must not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsendable {
    /// Status `part` (from 1) of `parts` is over the limit even with the text cut to nothing.
    OverLimit {
        part: usize,
        parts: usize,
        length: usize,
        limit: usize,
        /// What takes the room besides the text ([`beside_text`]).
        beside: String,
    },
    /// The first status does not have the post's link.
    LinkLost { link: String, limit: usize },
    /// A status has nothing of the body: only the link, `…`, hashtags or a part number.
    NoText {
        text: String,
        limit: usize,
        /// What takes the room besides the text ([`beside_text`]).
        beside: String,
    },
}

impl std::fmt::Display for Unsendable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsendable::OverLimit {
                part,
                parts,
                length,
                limit,
                beside,
            } => {
                let which = if *parts == 1 {
                    "the status".to_string()
                } else {
                    format!("part {part} of {parts}")
                };
                write!(
                    f,
                    "this post cannot be sent at the limit of {limit} characters: with its text cut to nothing, {which} is still {length} characters with {beside} alone"
                )
            }
            Unsendable::LinkLost { link, limit } => write!(
                f,
                "this post cannot be sent at the limit of {limit} characters: its link {link} does not fit"
            ),
            Unsendable::NoText {
                text,
                limit,
                beside,
            } => write!(
                f,
                "this post cannot be sent at the limit of {limit} characters: no word of the text fits beside {beside}, so it would go out as {text:?}"
            ),
        }
    }
}

impl std::fmt::Display for FitProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitProblem::ShortTooLong { length, limit } => write!(
                f,
                "`short` is {length} characters with the link, over the limit of {limit}; the body will be truncated instead"
            ),
            FitProblem::NoRoom => write!(
                f,
                "this post cannot be sent: the limit leaves no room for its text"
            ),
            FitProblem::Unsendable(reason) => reason.fmt(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub statuses: Vec<Status>,
    pub fit: Fit,
    pub problems: Vec<FitProblem>,
}

impl Composed {
    /// Why this composition must not be sent, when it must not: a status is over the limit,
    /// the first lacks the post's link, or a status has nothing of the text (a lone `…` or
    /// only the link posted publicly is worse than nothing). The daemon and `perennial post`
    /// fail such a post with this message instead of sending it.
    pub fn unsendable(&self) -> Option<String> {
        self.problems
            .iter()
            .find(|problem| matches!(problem, FitProblem::Unsendable(_)))
            .or_else(|| {
                self.problems
                    .iter()
                    .find(|problem| matches!(problem, FitProblem::NoRoom))
            })
            .map(ToString::to_string)
    }
}

/// Composes `post` for the server described by `settings`. A composition that must not be
/// sent carries [`FitProblem::NoRoom`] and the reason ([`Composed::unsendable`]).
pub fn compose(post: &Post, settings: &FitSettings) -> Composed {
    let body_tags = body_hashtags(&post.text);
    let mut composed = compose_unchecked(post, settings, &body_tags);
    if let Some(reason) = unsendable_reason(&composed, post, settings.counter, &body_tags) {
        if !composed.problems.contains(&FitProblem::NoRoom) {
            composed.problems.push(FitProblem::NoRoom);
        }
        composed.problems.push(FitProblem::Unsendable(reason));
    }
    composed
}

/// The one check of every composition, whichever way it was fitted; `body_tags` are the
/// hashtags written in the post's body ([`body_hashtags`]).
fn unsendable_reason(
    composed: &Composed,
    post: &Post,
    counter: &Counter,
    body_tags: &[String],
) -> Option<Unsendable> {
    let limit = counter.limit();
    let parts = composed.statuses.len();
    if let Some((i, status)) = composed
        .statuses
        .iter()
        .enumerate()
        .find(|(_, status)| status.length > limit)
    {
        return Some(Unsendable::OverLimit {
            part: i + 1,
            parts,
            length: status.length,
            limit,
            beside: beside_text(post, composed),
        });
    }
    let link = post.link.as_deref();
    if let (Some(link), Some(first)) = (link, composed.statuses.first()) {
        if !first.text.contains(link) {
            return Some(Unsendable::LinkLost {
                link: link.to_string(),
                limit,
            });
        }
    }
    // A body that is nothing but its link may go out as the link (its author wrote it so).
    if !has_text(&post.text, link, body_tags) {
        return None;
    }
    composed
        .statuses
        .iter()
        .find(|status| !has_text(&status.text, link, body_tags))
        .map(|status| Unsendable::NoText {
            text: status.text.clone(),
            limit,
            beside: beside_text(post, composed),
        })
}

/// What a composition of `post` holds besides its text, in words: only what it has (a post
/// with no content warning is never told that its content warning takes the room).
fn beside_text(post: &Post, composed: &Composed) -> String {
    let mut things = Vec::new();
    if post.link.is_some() {
        things.push("the link");
    }
    if post
        .content_warning
        .as_deref()
        .is_some_and(|cw| !cw.is_empty())
    {
        things.push("the content warning");
    }
    if composed
        .statuses
        .iter()
        .any(|status| status.text.contains(" #"))
    {
        things.push("the hashtags");
    }
    if composed.statuses.len() > 1 {
        things.push("the part number");
    }
    match things.as_slice() {
        [] => "the ellipsis".to_string(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Whether `text` has a word besides `link`, `…`, a thread part's number and hashtags that
/// are not among `body_tags` (the ones the body itself has count as its text).
fn has_text(text: &str, link: Option<&str>, body_tags: &[String]) -> bool {
    let is_text = |word: &str| {
        let word = word.trim_matches('…');
        let part_number = word.starts_with('(')
            && word.ends_with(')')
            && word[1..word.len() - 1]
                .split('/')
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let added_tag = word
            .strip_prefix('#')
            .is_some_and(|tag| !body_tags.iter().any(|t| same_tag(t, tag)));
        !word.is_empty() && !part_number && !added_tag
    };
    // The words of `text` with each `link` replaced by a space are the words of the pieces
    // between the links (no word spans a link): no copy of the text is needed. A link with
    // no whitespace lies inside one word wherever it is, so it is looked for word by word,
    // only as far as the first word of text.
    match link {
        Some(link) if !link.is_empty() && !link.contains(char::is_whitespace) => {
            text.split_whitespace().any(|word| {
                if word.contains(link) {
                    word.split(link)
                        .flat_map(str::split_whitespace)
                        .any(is_text)
                } else {
                    is_text(word)
                }
            })
        }
        Some(link) => text
            .split(link)
            .flat_map(str::split_whitespace)
            .any(is_text),
        None => text.split_whitespace().any(is_text),
    }
}

/// Whether two hashtags (without `#`) are the same, ignoring case as `str::to_lowercase`
/// does; ASCII ones without allocating.
fn same_tag(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

fn compose_unchecked(post: &Post, settings: &FitSettings, body_tags: &[String]) -> Composed {
    let counter = settings.counter;
    let envelope = Envelope::new(post, settings);
    let body = post.text.as_str();
    let link = post.link.as_deref();
    let candidates = hashtag_candidates(post, body_tags, settings.default_hashtags);
    let room = counter.limit().saturating_sub(envelope.spoiler_weight);

    // 1. As is. The body is segmented once, for every way of fitting it: whole for a
    // thread, else only as far as a status can reach (see `Text`).
    let long_posts = post.long_posts.unwrap_or(settings.long_posts);
    let may_thread = long_posts == LongPosts::Thread && settings.max_thread >= 2;
    let text = Text::new(body, counter, (!may_thread).then_some(room));
    if let Some(full) = as_is(&text, link, &candidates, room, counter) {
        let length = counter.count(&full);
        return envelope.single(full, length, Fit::AsIs, Vec::new());
    }

    // A thread keeps the whole body, with its own hashtags: the first part adds only the
    // ones the body lacks.
    if may_thread {
        let thread_tags = missing_tags(body, &candidates);
        let max_thread = settings.max_thread;
        if let Some((parts, truncated)) =
            thread(&text, link, &thread_tags, room, max_thread, counter)
        {
            return envelope.thread(parts, truncated);
        }
    }

    // 2. The hand-written short version.
    let mut problems = Vec::new();
    if let Some(short) = &post.short {
        match fit_short(short, link, &candidates, room, counter) {
            Ok(text) => {
                let length = counter.count(&text);
                return envelope.single(text, length, Fit::Short, problems);
            }
            Err(bare_length) => problems.push(FitProblem::ShortTooLong {
                length: bare_length + envelope.spoiler_weight,
                limit: counter.limit(),
            }),
        }
    }

    // 3. Truncate the body.
    let (text, length) = truncate(&text, link, &candidates, room, counter);
    if length > room || text_is_only_link(&text, link) {
        problems.push(FitProblem::NoRoom);
    }
    envelope.single(text, length, Fit::Truncated, problems)
}

/// What every status of a post shares (its content warning, visibility and language), and
/// the statuses made with it.
struct Envelope<'a> {
    counter: &'a Counter,
    spoiler: String,
    /// What the content warning costs inside a status; not `count(spoiler)`: Mastodon counts
    /// a spoiler's URLs literally and Pleroma trims it differently once joined to the text.
    spoiler_weight: usize,
    visibility: Visibility,
    language: String,
}

impl<'a> Envelope<'a> {
    fn new(post: &Post, settings: &FitSettings<'a>) -> Self {
        let counter = settings.counter;
        let spoiler = post.content_warning.clone().unwrap_or_default();
        let spoiler_weight = counter.count_status(".", &spoiler) - counter.count_status(".", "");
        Envelope {
            counter,
            spoiler,
            spoiler_weight,
            visibility: post.visibility.unwrap_or(settings.visibility),
            language: post
                .language
                .clone()
                .unwrap_or_else(|| settings.language.to_string()),
        }
    }

    /// A status of `text`, which counts `length` ([`Counter::count`]).
    fn status(
        &self,
        text: String,
        length: usize,
        in_reply_to: Option<usize>,
        visibility: Visibility,
    ) -> Status {
        Status {
            length: self.counter.status_weight(length, &self.spoiler),
            text,
            spoiler_text: self.spoiler.clone(),
            visibility,
            language: self.language.clone(),
            in_reply_to,
        }
    }

    /// The post as one status of `text`, which counts `length` ([`Counter::count`]).
    fn single(&self, text: String, length: usize, fit: Fit, problems: Vec<FitProblem>) -> Composed {
        Composed {
            statuses: vec![self.status(text, length, None, self.visibility)],
            fit,
            problems,
        }
    }

    /// The post as a thread: later parts reply to the previous one, unlisted when the first
    /// is public.
    fn thread(&self, parts: Vec<String>, truncated: bool) -> Composed {
        let count = parts.len();
        let later_visibility = if self.visibility == Visibility::Public {
            Visibility::Unlisted
        } else {
            self.visibility
        };
        let statuses = parts
            .into_iter()
            .enumerate()
            .map(|(i, text)| {
                let length = self.counter.count(&text);
                if i == 0 {
                    self.status(text, length, None, self.visibility)
                } else {
                    self.status(text, length, Some(i - 1), later_visibility)
                }
            })
            .collect();
        Composed {
            statuses,
            fit: Fit::Thread {
                parts: count,
                truncated,
            },
            problems: Vec::new(),
        }
    }
}

/// The full text (the body, the link if the body lacks it, the hashtags it lacks), if it
/// fits as is. The whole text is counted only when the body alone does not already exceed
/// the room (appending paragraphs never makes it shorter).
fn as_is(
    text: &Text,
    link: Option<&str>,
    candidates: &[String],
    room: usize,
    counter: &Counter,
) -> Option<String> {
    if text.total_weight() > room {
        return None;
    }
    let body = text.body;
    let full = assemble(
        body,
        link_if_absent(body, link),
        &missing_tags(body, candidates),
        "",
    );
    (counter.count(&full) <= room).then_some(full)
}

/// The hand-written `short` with the link and as many hashtags as fit; or, when the short
/// and the link alone are over `room`, their length.
fn fit_short(
    short: &str,
    link: Option<&str>,
    candidates: &[String],
    room: usize,
    counter: &Counter,
) -> Result<String, usize> {
    let link_part = link_if_absent(short, link);
    let tags = missing_tags(short, candidates);
    let bare = assemble(short, link_part, &[], "");
    let bare_length = counter.count(&bare);
    if bare_length > room {
        return Err(bare_length);
    }
    Ok((0..=tags.len())
        .rev()
        .map(|k| assemble(short, link_part, &tags[..k], ""))
        .find(|text| counter.count(text) <= room)
        .unwrap_or(bare))
}

fn text_is_only_link(text: &str, link: Option<&str>) -> bool {
    link.is_some_and(|link| text.trim() == link || text.trim() == "…")
}

/// The hashtags that may be added, in the order they are dropped last to first: the post's
/// own, then those written in the body (kept when the body is cut), then the config's.
/// `in_body` are the hashtags written in the body ([`body_hashtags`]).
fn hashtag_candidates(post: &Post, in_body: &[String], defaults: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in post.hashtags.iter().chain(in_body).chain(defaults) {
        if !tags.iter().any(|t| same_tag(t, tag)) {
            tags.push(tag.clone());
        }
    }
    tags
}

/// Hashtags written in the text, without `#`, in order. Looks only at each `#`.
fn body_hashtags(text: &str) -> Vec<String> {
    let mut tags = Vec::new();
    for (i, _) in text.match_indices('#') {
        let glued = text[..i]
            .chars()
            .next_back()
            .is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '/' || p == '#');
        if glued {
            continue;
        }
        let rest = &text[i + 1..];
        let length = rest
            .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .unwrap_or(rest.len());
        let tag = &rest[..length];
        if !tag.is_empty() && !tag.chars().all(|ch| ch.is_ascii_digit()) {
            tags.push(tag.to_string());
        }
    }
    tags
}

/// The candidates that `text` does not already contain as hashtags (case-insensitive).
fn missing_tags(text: &str, candidates: &[String]) -> Vec<String> {
    let present = body_hashtags(text);
    candidates
        .iter()
        .filter(|tag| !present.iter().any(|t| same_tag(t, tag)))
        .cloned()
        .collect()
}

fn link_if_absent<'a>(text: &str, link: Option<&'a str>) -> Option<&'a str> {
    link.filter(|link| !text.contains(link))
}

/// `body`, then `link` and the hashtags as their own paragraphs, then `suffix`.
fn assemble(body: &str, link: Option<&str>, tags: &[String], suffix: &str) -> String {
    let mut text = body.to_string();
    if let Some(link) = link {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(link);
    }
    if !tags.is_empty() {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        for (i, tag) in tags.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push('#');
            text.push_str(tag);
        }
    }
    text.push_str(suffix);
    text
}

/// Weight of what `assemble` adds after the body for `link` and `tags` (separators included).
fn tail_weight(counter: &Counter, link: Option<&str>, tags: &[String]) -> usize {
    let tail = assemble("", link, tags, "");
    if tail.is_empty() {
        0
    } else {
        counter.count(&tail) + 2
    }
}

/// How many of `candidates` to keep: hashtags are dropped from the end before the text
/// budget (`room` less the link, the kept tags and `reserved`) falls below half of `text_room`.
fn hashtags_kept(
    counter: &Counter,
    link: Option<&str>,
    candidates: &[String],
    room: usize,
    reserved: usize,
    text_room: usize,
) -> usize {
    (0..=candidates.len())
        .rev()
        .find(|&k| {
            let budget =
                room.saturating_sub(tail_weight(counter, link, &candidates[..k]) + reserved);
            k == 0 || budget * 2 >= text_room
        })
        .unwrap_or(0)
}

/// The body cut to fit with the link (always) and as many hashtags as the half-room rule
/// allows, with its length (`counter.count`).
fn truncate(
    text: &Text,
    link: Option<&str>,
    candidates: &[String],
    room: usize,
    counter: &Counter,
) -> (String, usize) {
    let body = text.body;
    let link_weight = tail_weight(counter, link, &[]);
    let body_room = room.saturating_sub(link_weight);
    let mut shrink = 0;
    loop {
        let chosen = hashtags_kept(counter, link, candidates, room, shrink, body_room);
        let tags = &candidates[..chosen];
        let budget = room.saturating_sub(tail_weight(counter, link, tags) + shrink);
        let kept = text.cut(0, budget, true, false);
        let kept_text = kept.render(body);
        // Hashtags and the link that the kept text already has are not repeated.
        let tail_tags = missing_tags(&kept_text, tags);
        let composed = assemble(&kept_text, link_if_absent(&kept_text, link), &tail_tags, "");
        let length = counter.count(&composed);
        if length <= room || budget == 0 {
            return (composed, length);
        }
        shrink += length - room;
    }
}

/// Splits the body into thread parts; returns the parts (counter included) and whether the
/// last part had to be truncated, or `None` when no thread of two or more parts can be made
/// (then the post is truncated instead).
fn thread(
    text: &Text,
    link: Option<&str>,
    candidates: &[String],
    room: usize,
    max_thread: usize,
    counter: &Counter,
) -> Option<(Vec<String>, bool)> {
    debug_assert!(text.whole);
    // No part holds more than `room`, so fewer parts than this can never do.
    let at_least = text.total_weight().div_ceil(room.max(1)).max(2);
    for n in at_least..=max_thread {
        // Cut between paragraphs and list items where that needs no more parts; else as
        // before, with a part that goes on inside an item marked.
        for prefer_lines in [true, false] {
            if let Some(parts) = pack(
                text,
                link,
                candidates,
                room,
                (n, prefer_lines),
                counter,
                false,
            ) {
                return Some((parts, false));
            }
        }
    }
    pack(
        text,
        link,
        candidates,
        room,
        (max_thread, false),
        counter,
        true,
    )
    .filter(|parts| parts.len() >= 2)
    .map(|parts| (parts, true))
}

/// Greedy packing into at most `n` parts; `None` if the body does not fit in `n` parts
/// (unless `truncate_last`, which cuts the last part instead).
fn pack(
    text: &Text,
    link: Option<&str>,
    candidates: &[String],
    room: usize,
    (n, prefer_lines): (usize, bool),
    counter: &Counter,
    truncate_last: bool,
) -> Option<Vec<String>> {
    let suffix_weight = |i: usize| counter.count(&part_suffix(i, n));
    // Hashtags in the first part: dropped from the end before they take more than half.
    let first_room = room.saturating_sub(tail_weight(counter, link, &[]) + suffix_weight(1));
    let chosen = hashtags_kept(
        counter,
        link,
        candidates,
        room,
        suffix_weight(1),
        first_room,
    );
    let tags = &candidates[..chosen];
    let first_tail = tail_weight(counter, link, tags);
    let continued_weight = counter.count(CONTINUED_ITEM);
    let mut shrink = 0;
    loop {
        // The room for part `i`'s text: less its link and hashtags (the first), its `• … `
        // (one that goes on inside a list item), its number, and what a try too long showed.
        let budget = |i: usize, inside_item: bool| {
            let tail = if i == 1 { first_tail } else { 0 };
            let prefix = if inside_item { continued_weight } else { 0 };
            room.saturating_sub(tail + prefix + suffix_weight(i) + shrink)
        };
        let cuts = cut_parts(text, budget, (n, prefer_lines), truncate_last)?;
        if cuts.len() < 2 && !truncate_last {
            // A one-part "thread" means the body fits once hashtags are dropped: that is a
            // truncation, not a thread.
            return None;
        }
        match render_parts(text, &cuts, link, tags, room, counter) {
            Ok(parts) => return Some(parts),
            Err(excess) => {
                shrink += excess;
                if shrink > room {
                    return None;
                }
            }
        }
    }
}

/// ` (i/n)`, the number a thread part ends with.
fn part_suffix(i: usize, n: usize) -> String {
    format!(" ({i}/{n})")
}

/// The body cut greedily into at most `n` parts, part `i` holding at most `budget(i,
/// inside_item)`, each with whether it starts inside a list item (it then starts with
/// `• … `); `None` if the body does not fit in `n` parts (unless `truncate_last`, which
/// cuts the last part instead).
fn cut_parts(
    text: &Text,
    budget: impl Fn(usize, bool) -> usize,
    (n, prefer_lines): (usize, bool),
    truncate_last: bool,
) -> Option<Vec<(Cut, bool)>> {
    let mut cuts = Vec::new();
    let mut start = text.skip_space(0);
    for i in 1..=n {
        if start >= text.segments.len() {
            break;
        }
        let inside_item = i > 1 && text.inside_list_item(start);
        let last = i == n;
        let cut = text.cut(
            start,
            budget(i, inside_item),
            last && truncate_last,
            prefer_lines,
        );
        if cut.end_segment <= start {
            // Not even one word fits in this part (a URL longer than the limit under a
            // literal counter): stop here, or give up on this number of parts.
            if truncate_last {
                break;
            }
            return None;
        }
        let finished = cut.end_segment >= text.segments.len();
        start = text.skip_space(cut.end_segment);
        cuts.push((cut, inside_item));
        if finished || start >= text.segments.len() {
            break;
        }
        if last && !truncate_last {
            return None;
        }
    }
    Some(cuts)
}

/// The thread parts of `cuts`, numbered, the first with the link and the `tags` it lacks;
/// or, at the first part over `room`, by how much it is over.
fn render_parts(
    text: &Text,
    cuts: &[(Cut, bool)],
    link: Option<&str>,
    tags: &[String],
    room: usize,
    counter: &Counter,
) -> Result<Vec<String>, usize> {
    let count = cuts.len();
    let mut parts = Vec::with_capacity(count);
    for (index, (cut, inside_item)) in cuts.iter().enumerate() {
        let i = index + 1;
        let part_text = match inside_item {
            true => format!("{CONTINUED_ITEM}{}", cut.render(text.body)),
            false => cut.render(text.body),
        };
        let part = if i == 1 {
            let tags = missing_tags(&part_text, tags);
            assemble(
                &part_text,
                link_if_absent(&part_text, link),
                &tags,
                &part_suffix(i, count),
            )
        } else {
            assemble(&part_text, None, &[], &part_suffix(i, count))
        };
        let length = counter.count(&part);
        if length > room {
            return Err(length - room);
        }
        parts.push(part);
    }
    Ok(parts)
}

/// A body with its segments and their running weights, for finding cut points fast.
///
/// Segmented with a bound, it may hold only the first segments, weighing more than the
/// bound together: enough for [`as_is`] (the body is over the room) and for [`Text::cut`]
/// from the start with a budget within the bound (a piece that fits ends before the last
/// segment held). A thread needs them all.
struct Text<'a> {
    body: &'a str,
    /// Whether `segments` are all of the body's.
    whole: bool,
    segments: Vec<Segment>,
    /// `before[i]`: total weight of segments `0..i`.
    before: Vec<usize>,
}

/// A piece of the body from segment `start_segment` to `end_segment` (exclusive).
#[derive(Debug, Clone, Copy)]
struct Cut {
    start_byte: usize,
    end_byte: usize,
    end_segment: usize,
    ending: Ending,
}

/// Where a piece may end, the last of each kind that fits (segment indices).
#[derive(Debug, Default)]
struct LastEnds {
    /// After a sentence end.
    sentence: Option<usize>,
    /// After a sentence end that also ends a paragraph or a list item.
    line: Option<usize>,
    /// At a word boundary.
    word: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The piece runs to the end of the body.
    Complete,
    /// Cut after a sentence end.
    Sentence,
    /// Cut at a word boundary.
    Word,
    /// Cut after a sentence end inside a thread: no ellipsis, the next part goes on.
    Continue,
}

impl Cut {
    fn render(&self, body: &str) -> String {
        let kept = body[self.start_byte..self.end_byte].trim_end();
        match self.ending {
            Ending::Complete | Ending::Continue => kept.to_string(),
            // A sentence that already trails off needs no second ellipsis.
            Ending::Sentence if kept.ends_with("...") || kept.ends_with('…') => kept.to_string(),
            Ending::Sentence => format!("{kept} …"),
            Ending::Word => format!("{kept}…"),
        }
    }
}

/// The start of a thread part that goes on with a list item the part before cut: the reader
/// sees that it continues an item, not a new paragraph.
const CONTINUED_ITEM: &str = "• … ";

const SENTENCE_END: &[char] = &['.', '!', '?', '…', '。', '！', '？'];
const CLOSERS: &[char] = &['"', '\'', ')', ']', '”', '’', '»'];
const DANGLING: &[char] = &[
    '(', '[', '{', ':', ',', ';', '-', '–', '—', '/', '&', '“', '‘', '«', '"', '\'',
];

impl<'a> Text<'a> {
    /// `body` segmented whole, or with `bound` only as far as [`Text`] says.
    fn new(body: &'a str, counter: &Counter, bound: Option<usize>) -> Self {
        let (segments, whole) = match bound {
            Some(bound) => counter.segments_beyond(body, bound),
            None => (counter.segments(body), true),
        };
        let mut before = Vec::with_capacity(segments.len() + 1);
        let mut total = 0;
        before.push(0);
        for segment in &segments {
            total += segment.weight;
            before.push(total);
        }
        Text {
            body,
            whole,
            segments,
            before,
        }
    }

    /// The body's weight; for a body held only in part, the part's, which is over the bound.
    fn total_weight(&self) -> usize {
        self.before[self.segments.len()]
    }

    fn segment_text(&self, i: usize) -> &str {
        &self.body[self.segments[i].start..self.segments[i].end]
    }

    #[inline]
    fn is_space(&self, i: usize) -> bool {
        let segment = &self.segments[i];
        if segment.kind != SegmentKind::Grapheme {
            return false;
        }
        match self.body.as_bytes()[segment.start..segment.end] {
            // Most segments are one ASCII character: `char::is_whitespace` is true for
            // exactly these among them (U+0009 to U+000D and U+0020).
            [byte] => matches!(byte, b'\t'..=b'\r' | b' '),
            _ => self.segment_text(i).chars().all(char::is_whitespace),
        }
    }

    fn skip_space(&self, mut i: usize) -> usize {
        while i < self.segments.len() && self.is_space(i) {
            i += 1;
        }
        i
    }

    fn byte_at(&self, segment: usize) -> usize {
        self.segments
            .get(segment)
            .map_or(self.body.len(), |s| s.start)
    }

    /// Whether segment `i` is inside a list item's line (`• ` or `3. `), not at its start.
    fn inside_list_item(&self, i: usize) -> bool {
        let at = self.byte_at(i);
        let line_start = self.body[..at].rfind('\n').map_or(0, |n| n + 1);
        let line = self.body[line_start..at].trim_start();
        let item = line.starts_with("• ")
            || line
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        item && !self.body[line_start..at].trim().is_empty()
    }

    /// Whether a cut right before segment `i` ends a line: a paragraph or a list item.
    fn line_end_before(&self, i: usize) -> bool {
        i < self.segments.len() && self.is_space(i) && self.segment_text(i).contains('\n')
    }

    /// Whether a cut right before segment `i` (i > start) ends a sentence or a paragraph.
    fn sentence_end_before(&self, i: usize) -> bool {
        let next_is_space = i >= self.segments.len() || self.is_space(i);
        if !next_is_space || i == 0 {
            return false;
        }
        let mut j = i - 1;
        if i < self.segments.len() && self.segment_text(i).contains('\n') {
            // A paragraph end, unless it introduces what follows ("…as follows:").
            let last = self.segment_text(j);
            return !(self.segments[j].kind == SegmentKind::Grapheme
                && last.chars().all(|c| DANGLING.contains(&c)));
        }
        while j > 0
            && self.segments[j].kind == SegmentKind::Grapheme
            && self.segment_text(j).chars().all(|c| CLOSERS.contains(&c))
        {
            j -= 1;
        }
        self.segments[j].kind == SegmentKind::Grapheme
            && self
                .segment_text(j)
                .chars()
                .all(|c| SENTENCE_END.contains(&c))
    }

    /// The longest piece from segment `start` that weighs at most `budget` (ellipsis
    /// included when `may_truncate` and the piece does not reach the end), ending at a
    /// sentence end when that keeps at least half of the budget, else at a word boundary.
    /// Without `may_truncate` (thread parts before the last) the piece ends at a sentence
    /// end, or at a word boundary only when no sentence end fits, and carries no ellipsis.
    ///
    /// With `prefer_lines` (thread parts), a piece ends between paragraphs or list items
    /// rather than inside one when that keeps at least half of the budget.
    fn cut(&self, start: usize, budget: usize, may_truncate: bool, prefer_lines: bool) -> Cut {
        let n = self.segments.len();
        let weight = |end: usize| self.before[end] - self.before[start];
        debug_assert!(self.whole || (start == 0 && weight(n) > budget));
        let start_byte = self.byte_at(start);
        // Everything left fits.
        if weight(n) <= budget {
            return Cut {
                start_byte,
                end_byte: self.body.len(),
                end_segment: n,
                ending: Ending::Complete,
            };
        }
        let ends = self.last_ends_within(start, budget, may_truncate);
        let keeps_enough = |end: usize| weight(end) * 2 >= budget;
        let best_sentence = match ends.line {
            Some(line) if prefer_lines && !may_truncate && keeps_enough(line) => Some(line),
            _ => ends.sentence,
        };
        // Every sentence end that fits is also a word boundary that fits, so `ends.word`
        // is `None` only when nothing fits at all. Without `may_truncate` the next part goes
        // on: no ellipsis.
        let (end, ending) = match (best_sentence, ends.word) {
            (_, None) => (start, Ending::Word),
            (Some(s), Some(_)) if !may_truncate => (s, Ending::Continue),
            (_, Some(w)) if !may_truncate => (w, Ending::Continue),
            (Some(s), Some(_)) if keeps_enough(s) => (s, Ending::Sentence),
            (_, Some(w)) => (w, Ending::Word),
        };
        let end = if ending == Ending::Word {
            self.tidy_word_cut(start, end)
        } else {
            end
        };
        Cut {
            start_byte,
            end_byte: self.byte_at(end),
            end_segment: end,
            ending,
        }
    }

    /// The last sentence end, paragraph or list item end, and word boundary after segment
    /// `start` that fit in `budget` with the ellipsis a truncation there would add (` …` after
    /// a sentence, `…` after a word) when `may_truncate`.
    fn last_ends_within(&self, start: usize, budget: usize, may_truncate: bool) -> LastEnds {
        let sentence_cost = if may_truncate { 2 } else { 0 };
        let word_cost = if may_truncate { 1 } else { 0 };
        let mut ends = LastEnds::default();
        let n = self.segments.len();
        // `is_space(end - 1)`, carried from one `end` to the next.
        let mut space_before = start < n && self.is_space(start);
        for end in start + 1..=n {
            let w = self.before[end] - self.before[start];
            if w + word_cost > budget {
                break;
            }
            let space = end < n && self.is_space(end);
            let after_space = std::mem::replace(&mut space_before, space);
            let at_boundary = end == n || space;
            if !at_boundary || after_space {
                continue;
            }
            if w + sentence_cost <= budget && self.sentence_end_before(end) {
                ends.sentence = Some(end);
                if self.line_end_before(end) {
                    ends.line = Some(end);
                }
            }
            ends.word = Some(end);
        }
        ends
    }

    /// Moves a word cut back past dangling punctuation and an unclosed parenthesis.
    fn tidy_word_cut(&self, start: usize, mut end: usize) -> usize {
        loop {
            let before = end;
            while end > start
                && self.segments[end - 1].kind == SegmentKind::Grapheme
                && self
                    .segment_text(end - 1)
                    .chars()
                    .all(|c| c.is_whitespace() || DANGLING.contains(&c))
            {
                end -= 1;
            }
            // An unclosed `(` or `[`: cut before it.
            let mut depth: i32 = 0;
            let mut unclosed: Option<usize> = None;
            for i in (start..end).rev() {
                if self.segments[i].kind != SegmentKind::Grapheme {
                    continue;
                }
                match self.segment_text(i) {
                    ")" | "]" => depth += 1,
                    "(" | "[" if depth == 0 => {
                        unclosed = Some(i);
                        break;
                    }
                    "(" | "[" => depth -= 1,
                    _ => {}
                }
            }
            if let Some(open) = unclosed {
                if open > start {
                    end = open;
                }
            }
            if end == before {
                return end;
            }
        }
    }
}

/// The fitting settings of `config` for `counter`.
pub fn fit_settings<'a>(config: &'a Config, counter: &'a Counter) -> FitSettings<'a> {
    FitSettings {
        counter,
        long_posts: config.posts.long_posts,
        max_thread: config.posts.max_thread,
        default_hashtags: &config.posts.hashtags,
        visibility: config.posts.visibility,
        language: &config.posts.language,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::posts::post::{parse_post, PostContext};
    use crate::text::count::Software;

    fn post(front_matter: &str, body: &str) -> Post {
        let timezone = jiff::tz::TimeZone::UTC;
        let context = PostContext {
            posts_dir: Path::new("posts"),
            timezone: &timezone,
            alt_text_limit: 1500,
            media_file: &crate::posts::post::MediaFile::assume_present,
            media_limits: crate::posts::post::MediaLimits::default(),
        };
        let source = format!("+++\ntitle = \"t\"\n{front_matter}\n+++\n{body}\n");
        parse_post("tips/p", Path::new("posts/tips/p.md"), &source, &context).unwrap()
    }

    /// Composes with literal code-point counting (easy to reason about) and `limit`.
    fn generic(post: &Post, limit: usize, defaults: &[&str]) -> Composed {
        let counter = Counter::new(Software::Generic, limit, 23);
        let defaults: Vec<String> = defaults.iter().map(|s| s.to_string()).collect();
        let settings = FitSettings {
            counter: &counter,
            long_posts: LongPosts::Truncate,
            max_thread: 5,
            default_hashtags: &defaults,
            visibility: Visibility::Public,
            language: "en",
        };
        compose(post, &settings)
    }

    fn texts(composed: &Composed) -> Vec<&str> {
        composed.statuses.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn a_post_that_fits_gets_its_link_and_missing_hashtags_appended() {
        let p = post(
            "link = \"https://ex.org/a\"\nhashtags = [\"Python\", \"Science\"]",
            "Hello #python world.",
        );
        let c = generic(&p, 500, &["pyOpenSci"]);
        assert_eq!(c.fit, Fit::AsIs);
        assert_eq!(
            texts(&c),
            ["Hello #python world.\n\nhttps://ex.org/a\n\n#Science #pyOpenSci"]
        );
        assert_eq!(c.statuses[0].length, c.statuses[0].text.chars().count());
    }

    #[test]
    fn a_link_already_in_the_body_is_not_repeated() {
        let p = post("link = \"https://ex.org/a\"", "See https://ex.org/a today.");
        assert_eq!(
            texts(&generic(&p, 500, &[])),
            ["See https://ex.org/a today."]
        );
    }

    #[test]
    fn truncation_cuts_at_the_last_sentence_end_and_keeps_the_link() {
        let p = post(
            "link = \"https://ex.org/a\"",
            "A first sentence that is fairly long. Then a second sentence that will not fit.",
        );
        // Body budget 60 - (2 + 16) = 42: the first sentence (37) and " …" fit, and keep
        // more than half of 42.
        let c = generic(&p, 60, &[]);
        assert_eq!(c.fit, Fit::Truncated);
        assert_eq!(
            texts(&c),
            ["A first sentence that is fairly long. …\n\nhttps://ex.org/a"]
        );
        // Budget 72 - 18 = 54: a sentence cut still wins over the longer word cut.
        let c = generic(&p, 72, &[]);
        assert_eq!(
            texts(&c),
            ["A first sentence that is fairly long. …\n\nhttps://ex.org/a"]
        );
        // Budget 40 - 18 = 22: the sentence does not fit, a word cut does.
        let c = generic(&p, 40, &[]);
        // "A first sentence that" is 21, and the ellipsis makes 22.
        assert_eq!(texts(&c), ["A first sentence that…\n\nhttps://ex.org/a"]);
    }

    #[test]
    fn a_sentence_that_trails_off_gets_no_second_ellipsis() {
        let p = post(
            "",
            "Hatch, flit, pdm... Then a long sentence about the choice that will not fit here.",
        );
        assert_eq!(texts(&generic(&p, 30, &[])), ["Hatch, flit, pdm..."]);
    }

    #[test]
    fn a_word_cut_is_used_when_the_sentence_cut_keeps_too_little() {
        let p = post(
            "",
            "Short. Then a very long sentence follows with many words that go on and on and on.",
        );
        let c = generic(&p, 40, &[]);
        // "…follows" is 40, and the ellipsis would make 41.
        assert_eq!(texts(&c), ["Short. Then a very long sentence…"]);
    }

    #[test]
    fn a_word_cut_leaves_no_dangling_punctuation_or_open_parenthesis() {
        let p = post(
            "",
            "We use these tools: hatch, pdm, and flit (see the guide at length) plus more words.",
        );
        let c = generic(&p, 22, &[]);
        assert_eq!(texts(&c), ["We use these tools…"]);
        let c = generic(&p, 50, &[]);
        assert_eq!(texts(&c), ["We use these tools: hatch, pdm, and flit…"]);
    }

    #[test]
    fn hashtags_are_dropped_from_the_end_before_the_body_goes_below_half_the_room() {
        let body = "One two three four five six seven eight nine ten eleven twelve.";
        let p = post("hashtags = [\"Alpha\", \"Beta\", \"Gamma\"]", body);
        // Room 60: all tags (2 + 19) leave 39 >= 30 for the body.
        let c = generic(&p, 60, &[]);
        assert_eq!(
            texts(&c),
            ["One two three four five six seven…\n\n#Alpha #Beta #Gamma"]
        );
        // Room 40: all tags would leave 19 < 20; two tags (2 + 12) leave 26.
        let c = generic(&p, 40, &[]);
        assert_eq!(texts(&c), ["One two three four five…\n\n#Alpha #Beta"]);
    }

    #[test]
    fn a_short_version_is_used_when_it_fits_and_reported_when_it_does_not() {
        let p = post(
            "short = \"Brief.\"\nlink = \"https://ex.org\"",
            "A long body that will not fit in thirty characters at all.",
        );
        let c = generic(&p, 40, &[]);
        assert_eq!(c.fit, Fit::Short);
        assert_eq!(texts(&c), ["Brief.\n\nhttps://ex.org"]);
        let c = generic(&p, 20, &[]);
        assert_eq!(c.fit, Fit::Truncated);
        assert_eq!(
            c.problems,
            [FitProblem::ShortTooLong {
                length: 22,
                limit: 20
            }]
        );
        assert!(c.statuses[0].length <= 20);
    }

    #[test]
    fn a_thread_numbers_its_parts_and_replies_to_the_previous_one() {
        let p = post(
            "long_posts = \"thread\"\nlink = \"https://ex.org\"\nhashtags = [\"Py\"]",
            "Alpha beta gamma. Delta epsilon zeta. Eta theta iota. Kappa lambda mu.",
        );
        let c = generic(&p, 50, &[]);
        assert_eq!(
            c.fit,
            Fit::Thread {
                parts: 3,
                truncated: false
            }
        );
        assert_eq!(
            texts(&c),
            [
                "Alpha beta gamma.\n\nhttps://ex.org\n\n#Py (1/3)",
                "Delta epsilon zeta. Eta theta iota. (2/3)",
                "Kappa lambda mu. (3/3)",
            ]
        );
        let visibility: Vec<Visibility> = c.statuses.iter().map(|s| s.visibility).collect();
        assert_eq!(
            visibility,
            [
                Visibility::Public,
                Visibility::Unlisted,
                Visibility::Unlisted
            ]
        );
        let replies: Vec<Option<usize>> = c.statuses.iter().map(|s| s.in_reply_to).collect();
        assert_eq!(replies, [None, Some(0), Some(1)]);
    }

    #[test]
    fn a_thread_longer_than_max_thread_is_truncated_in_its_last_part() {
        let body = "One one one. Two two two. Three three three. Four four four. Five five five.";
        let p = post("long_posts = \"thread\"", body);
        let counter = Counter::new(Software::Generic, 25, 23);
        let settings = FitSettings {
            counter: &counter,
            long_posts: LongPosts::Truncate,
            max_thread: 2,
            default_hashtags: &[],
            visibility: Visibility::Private,
            language: "en",
        };
        let c = compose(&p, &settings);
        assert_eq!(
            c.fit,
            Fit::Thread {
                parts: 2,
                truncated: true
            }
        );
        assert_eq!(texts(&c), ["One one one. (1/2)", "Two two two. … (2/2)"]);
        // A private thread stays private.
        assert!(c
            .statuses
            .iter()
            .all(|s| s.visibility == Visibility::Private));
    }

    #[test]
    fn mastodon_counts_urls_as_23_so_more_text_fits() {
        let link = format!("https://ex.org/{}", "x".repeat(80));
        let p = post(&format!("link = \"{link}\""), &"word ".repeat(100));
        let counter = Counter::new(Software::Mastodon, 500, 23);
        let settings = FitSettings {
            counter: &counter,
            long_posts: LongPosts::Truncate,
            max_thread: 5,
            default_hashtags: &[],
            visibility: Visibility::Public,
            language: "en",
        };
        let c = compose(&p, &settings);
        assert!(c.statuses[0].text.ends_with(&link));
        assert!(c.statuses[0].length <= 500);
        // The literal text is longer than 500: the URL counted as 23.
        assert!(c.statuses[0].text.chars().count() > 500);
    }

    #[test]
    fn an_absurd_limit_gives_a_composition_that_says_why_it_must_not_be_sent() {
        let p = post(
            "link = \"https://ex.org/a\"",
            "A first sentence that is fairly long. Then a second one.",
        );
        // Limit 10: not even the link fits.
        let c = generic(&p, 10, &[]);
        let reason = c.unsendable().expect("must not be sent");
        assert!(
            reason.contains("cannot be sent at the limit of 10 characters"),
            "{reason}"
        );
        // Limit 19: the link fits, but no word beside it ("…" and the link).
        let c = generic(&p, 19, &[]);
        let reason = c.unsendable().unwrap();
        assert!(reason.contains("no word of the text fits"), "{reason}");
        // It names what is there, and nothing the post does not have.
        assert!(reason.contains("fits beside the link, so"), "{reason}");
        assert!(!reason.contains("content warning"), "{reason}");
        // Without a link, limit 1 would be a lone "…".
        let p = post("", "Hello there, this is long.");
        let c = generic(&p, 1, &[]);
        assert!(c.unsendable().is_some(), "{:?}", texts(&c));
        // At a sane limit, nothing to say.
        assert_eq!(generic(&p, 100, &[]).unsendable(), None);
    }

    #[test]
    fn the_content_warning_counts_against_the_limit() {
        let p = post(
            "content_warning = \"0123456789\"",
            "Alpha beta gamma delta epsilon zeta eta theta.",
        );
        let c = generic(&p, 40, &[]);
        assert!(c.statuses[0].length <= 40);
        assert_eq!(c.statuses[0].spoiler_text, "0123456789");
        assert_eq!(
            c.statuses[0].length,
            c.statuses[0].text.chars().count() + 10
        );
    }
}
