//! Composes the reply to a mention: which guides its words ask for, and a status that links them.
//!
//! Pure: the decision is a function of the mention and the settings, with no I/O and no clock,
//! so the engine (`mentions`) can record it before sending and tests can feed it anything.
//!
//! # Never an echo
//!
//! A mention is a stranger's text. The reply is built only from fixed templates, the author's
//! `@acct`, and the guides' titles, URLs and topics from the config: it is a function of
//! (acct, linked topics, visibility) alone. So no trick in the mention (markup, entities,
//! invisible characters, quoting the bot) can make the bot say something, link somewhere or
//! mention someone. The `@acct` itself comes from the server, so it is checked to be a plain
//! handle first ([`NoReplyReason::UnusableAcct`]): it is the one piece of outside text we write.
//!
//! # Matching keywords
//!
//! The mention's text is its HTML as a reader sees it ([`html_to_text`]), without `@mentions`
//! ([`mention_text`]), after its content warning (people write "packaging question" there).
//! Text and keywords are then folded alike:
//!
//! - Default-ignorable code points (zero-width spaces and joiners, bidi controls such as
//!   U+202E, soft hyphens, variation selectors, tag characters) are removed: they are
//!   invisible, so `pack` + U+200B + `aging` matches as the reader sees it.
//! - Fullwidth ASCII (`ｐａｃｋａｇｉｎｇ`, typed in CJK input modes) becomes ASCII. That is the
//!   one slice of NFKC we apply: full NFKC needs a normalisation crate the project does not
//!   depend on, and other compatibility forms (mathematical bold letters, circled letters) are
//!   styling nobody uses to ask a question; they get the help reply.
//! - Case: Unicode lower-case, plus the spots where lower-casing is not case folding: `İ` is
//!   `i` (not `i` + a combining dot, which would split the word), `ß`/`ẞ` are `ss`, final `ς`
//!   is `σ`. Turkish dotless `ı` stays its own letter.
//! - Every run of whitespace (any Unicode space, newlines) is one space, so `peer review`
//!   matches across line breaks and no-break spaces.
//!
//! Lookalikes from another script are different letters and do not match (`pаckaging` with a
//! Cyrillic `а` is not `packaging`); nothing is lost by that, since we never echo either way.
//!
//! A keyword matches as whole words: the characters around it must not be word characters
//! (letters, digits, combining marks), so punctuation and `#` around a word do not block it
//! (`#packaging`, `"packaging?"`), while `repackaging` and `packaging2` do not match. `_` is
//! punctuation here, as in `_emphasis_`, `#python_packaging` or `my_package`. A CamelCase
//! hashtag (`#PythonPackaging`) is one word and does not match.
//!
//! Keywords inside a URL (`scheme://` up to the next space, `"`, `<`, `>` or `` ` ``, none
//! of which a URL can hold unencoded) do not count: a link someone shares
//! (`https://github.com/x/packaging-tools`), or our own guide URL quoted back, is not a
//! question. Only URLs with a scheme are skipped, the ones servers turn into links.
//!
//! # Fitting
//!
//! The reply is counted with the server's own rules ([`Counter::fits`]). A reply with guides
//! keeps as many guides as fit: it first gives up the titles (bare URLs, one a line), then
//! drops guides from the end; a help reply drops topics from the end, then falls back to a
//! shorter sentence. If even one guide (or one topic) cannot fit beside the `@acct`, there is
//! no reply ([`NoReplyReason::NothingFits`]).
//!
//! # Content warnings
//!
//! The reply carries none, whatever the mention had: it holds only links to our own guides,
//! nothing that needs a warning, and copying the mention's warning would echo its text.
//!
//! Every step is linear in the mention's length (a keyword search restarts at most once per
//! occurrence of the keyword, and keywords are short, from the config), and nothing indexes by
//! position without a check, so a 100 KB hostile mention is read in one pass and never panics.

use crate::posts::config::{Guide, Visibility};
use crate::text::count::Counter;
use jiff::Timestamp;

/// At most this many guides in one reply (product contract §5).
pub const MAX_GUIDES_PER_REPLY: usize = 3;

/// Everything besides the mention that the reply depends on.
#[derive(Debug, Clone, Copy)]
pub struct ReplySettings<'a> {
    /// In config order: the order guides are offered in.
    pub guides: &'a [Guide],
    /// The most public a reply may be.
    pub reply_visibility: Visibility,
    pub counter: &'a Counter,
}

/// A reply, exactly as it is sent (no content warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub visibility: Visibility,
    /// The mention's status id.
    pub in_reply_to_id: String,
    /// Topics of the guides linked, in config order; empty for the help reply.
    pub topics: Vec<String>,
}

/// A mention of the bot, as a network hands it to the daemon: everything the reply composer
/// and the guards need, whatever the network (a Mastodon notification and its status, a
/// Bluesky notification and its post record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// The notification's id (opaque: a number on Mastodon, a ULID on GoToSocial).
    pub notification_id: String,
    /// When the notification was created (the status's `created_at` when it has none).
    pub created_at: Timestamp,
    /// The mentioning status.
    pub status_id: String,
    /// Its text as a reader sees it (the network has read its HTML or its record), with the
    /// `@mentions` still in.
    pub text: String,
    /// Its `spoiler_text` (plain text), empty when none.
    pub spoiler_text: String,
    /// Its visibility; a value the bot does not know (Akkoma's `local`, ...) is read as
    /// `Direct`, the most private, so a reply is never more public than the mention.
    pub visibility: Visibility,
    /// The status it replies to, if any.
    pub in_reply_to_id: Option<String>,
    /// The account of the status it replies to, if any.
    pub in_reply_to_account_id: Option<String>,
    /// The author.
    pub account_id: String,
    /// The author's `acct`: `user` when local, `user@domain` when remote.
    pub acct: String,
    /// The author's `bot` flag.
    pub bot: bool,
}

/// What to do about one mention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reply(Reply),
    /// e.g. a "thanks!" reply to one of the bot's own statuses with no keyword.
    NoReply(NoReplyReason),
}

/// Why a mention gets no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoReplyReason {
    /// The mention is a reply and asks for no guide: a "thanks!" to one of the bot's
    /// statuses, or talk in a thread the bot is part of (servers add everyone in a thread as
    /// a mention, so the bot is "mentioned" by every reply there).
    ReplyWithoutTopic,
    /// Even the shortest reply is longer than the server allows (a huge `@acct`, a tiny limit).
    NothingFits,
    /// The author's `acct` is not a plain `user` or `user@domain` handle, so writing it would
    /// put outside text in the reply, or mention someone else.
    UnusableAcct,
}

impl NoReplyReason {
    /// A stable name for logs and the state file.
    pub fn as_str(self) -> &'static str {
        match self {
            NoReplyReason::ReplyWithoutTopic => "reply-without-topic",
            NoReplyReason::NothingFits => "nothing-fits",
            NoReplyReason::UnusableAcct => "unusable-acct",
        }
    }
}

/// Decides the reply to `mention`: the guides its words ask for, or the help reply, fitted to
/// the server; or no reply, with the reason.
pub fn compose_reply(mention: &Mention, settings: &ReplySettings) -> Decision {
    if !is_usable_acct(&mention.acct) {
        return Decision::NoReply(NoReplyReason::UnusableAcct);
    }
    let mut text = strip_mentions(&mention.spoiler_text);
    text.push('\n');
    text.push_str(&mention_words(&mention.text));
    let guides = matching_guides(&text, settings.guides);

    let mention_prefix = format!("@{}", mention.acct);
    let fitted = if guides.is_empty() {
        // A mention that is itself a reply gets no help reply, whatever it replies to: in a
        // thread the bot once joined, every reply mentions it (Mastodon adds the thread's
        // participants), so a help reply there would answer people talking to each other.
        if mention.in_reply_to_id.is_some() {
            return Decision::NoReply(NoReplyReason::ReplyWithoutTopic);
        }
        fit_help_reply(&mention_prefix, settings.guides, settings.counter)
    } else {
        fit_guides_reply(&mention_prefix, &guides, settings.counter)
    };
    match fitted {
        Some((text, topics)) => Decision::Reply(Reply {
            text,
            visibility: more_private(mention.visibility, settings.reply_visibility),
            in_reply_to_id: mention.status_id.clone(),
            topics,
        }),
        None => Decision::NoReply(NoReplyReason::NothingFits),
    }
}

/// The guides whose keywords appear in `text` (see the module docs for the rules), in config
/// order, at most [`MAX_GUIDES_PER_REPLY`].
pub fn matching_guides<'g>(text: &str, guides: &'g [Guide]) -> Vec<&'g Guide> {
    let haystack = without_urls(&fold(text));
    guides
        .iter()
        .filter(|guide| {
            guide
                .keywords
                .iter()
                .any(|k| contains_keyword(&haystack, fold(k).trim_matches(' ')))
        })
        .take(MAX_GUIDES_PER_REPLY)
        .collect()
}

/// The more private of two visibilities (public < unlisted < private < direct), as Mastodon's
/// own client picks a reply's visibility.
pub fn more_private(a: Visibility, b: Visibility) -> Visibility {
    // `Visibility` is declared from most to least public, so its order is exactly this.
    a.max(b)
}

// ---------------------------------------------------------------------------------------
// The reply's text: fixed templates only.

/// The best guides reply that fits, with the topics it links: as many guides as fit, each
/// with its title when they fit, as bare URLs otherwise (a URL costs 23 on Mastodon however
/// long its title would be, and says where it leads).
fn fit_guides_reply(
    mention_prefix: &str,
    guides: &[&Guide],
    counter: &Counter,
) -> Option<(String, Vec<String>)> {
    (1..=guides.len())
        .rev()
        .flat_map(|n| {
            let linked = &guides[..n];
            [
                guides_with_titles(mention_prefix, linked),
                bare_urls(mention_prefix, linked),
            ]
            .map(|text| (text, linked))
        })
        .find(|(text, _)| counter.fits(text, ""))
        .map(|(text, linked)| (text, linked.iter().map(|g| g.topic.clone()).collect()))
}

/// `@acct These guides should help:` and one `Title: URL` line per guide.
fn guides_with_titles(mention_prefix: &str, guides: &[&Guide]) -> String {
    let intro = if guides.len() == 1 {
        "This guide should help:"
    } else {
        "These guides should help:"
    };
    let mut text = format!("{mention_prefix} {intro}");
    for guide in guides {
        text.push('\n');
        text.push_str(&guide.title);
        text.push_str(": ");
        text.push_str(&guide.url);
    }
    text
}

/// `@acct` and one URL per line.
fn bare_urls(mention_prefix: &str, guides: &[&Guide]) -> String {
    let mut text = mention_prefix.to_string();
    for guide in guides {
        text.push('\n');
        text.push_str(&guide.url);
    }
    text
}

/// The best help reply that fits (no topics linked, so the topic list is empty).
fn fit_help_reply(
    mention_prefix: &str,
    guides: &[Guide],
    counter: &Counter,
) -> Option<(String, Vec<String>)> {
    let topics: Vec<&str> = guides.iter().map(|g| g.topic.as_str()).collect();
    let full = (1..=topics.len()).rev().map(|n| {
        format!(
            "{mention_prefix} I can point you to our guides on: {}. Mention me with one of those words.",
            topics[..n].join(", ")
        )
    });
    let short = (1..=topics.len())
        .rev()
        .map(|n| format!("{mention_prefix} Guides: {}", topics[..n].join(", ")));
    full.chain(short)
        .find(|text| counter.fits(text, ""))
        .map(|text| (text, Vec::new()))
}

/// A plain `user` or `user@domain` handle: each part starts and ends with a letter, digit or
/// `_` (a domain with a letter or digit), with only `.`, `-` and those inside. Anything else
/// (spaces, a second `@`, markup, invisible characters) would be outside text in our reply,
/// or a server would read the mention as someone else's.
fn is_usable_acct(acct: &str) -> bool {
    let (user, domain) = match acct.split_once('@') {
        Some((user, domain)) => (user, Some(domain)),
        None => (acct, None),
    };
    let user_ok = user.chars().all(is_handle_char)
        && user.starts_with(|c: char| c.is_alphanumeric() || c == '_')
        && user.ends_with(|c: char| c.is_alphanumeric() || c == '_');
    let domain_ok = domain.is_none_or(|domain| {
        domain
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-'))
            && domain.starts_with(char::is_alphanumeric)
            && domain.ends_with(char::is_alphanumeric)
    });
    user_ok && domain_ok
}

// ---------------------------------------------------------------------------------------
// Reading the mention.

/// Removes `@user` and `@user@domain` mentions, read as Mastodon reads them
/// (`Account::MENTION_RE`), after removing invisible characters: an `@` not preceded by a word character, `=` or `/`, then a
/// username, then optionally `@` and a domain; trailing `.` and `-` are not part of either.
/// The mention's words: its text (as a reader sees it: [`crate::text::html::html_to_text`] of
/// a Mastodon status) without invisible characters (so `@` + a zero-width space + `name` is
/// read as the mention a reader sees), with `@user` and `@user@domain` mentions removed and
/// the ends trimmed.
pub fn mention_words(text: &str) -> String {
    strip_mentions(text)
}

fn strip_mentions(text: &str) -> String {
    let visible: String = text.chars().filter(|&c| !is_default_ignorable(c)).collect();
    let text = visible.as_str();
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<char> = None;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let mention_len = if c == '@'
            && !previous.is_some_and(|p| is_word_char(p) || matches!(p, '_' | '=' | '/'))
        {
            mention_length(rest)
        } else {
            0
        };
        let taken = if mention_len > 0 {
            mention_len
        } else {
            out.push(c);
            c.len_utf8()
        };
        previous = rest[..taken].chars().next_back();
        rest = &rest[taken..];
    }
    out.trim().to_string()
}

/// Byte length of the mention at the start of `text` (which starts with `@`), or 0 if none.
fn mention_length(text: &str) -> usize {
    let handle_part = |s: &str| -> usize {
        if !s.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            return 0;
        }
        let run = s
            .char_indices()
            .find(|&(_, c)| !is_handle_char(c))
            .map_or(s.len(), |(i, _)| i);
        s[..run].trim_end_matches(['.', '-']).len()
    };
    let user = handle_part(&text[1..]);
    if user == 0 {
        return 0;
    }
    let after_user = 1 + user;
    let domain = match text[after_user..].strip_prefix('@') {
        Some(rest) => handle_part(rest),
        None => 0,
    };
    if domain > 0 {
        after_user + 1 + domain
    } else {
        after_user
    }
}

/// Letters, digits and combining marks: what a keyword must not touch on either side.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// What a username or domain in a mention is made of (Mastodon: `[[:word:]]`, `.`, `-`).
fn is_handle_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The combining diacritics blocks, so `cafe` + U+0301 is one word. (Marks of other scripts
/// that are not already alphabetic are rare enough not to need the full table.)
fn is_combining_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// Unicode's Default_Ignorable_Code_Point: characters that render as nothing.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// The text as keyword matching sees it (module docs, "Matching keywords"): invisible
/// characters removed, fullwidth ASCII narrowed, case folded, whitespace runs as one space.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_default_ignorable(c) {
            continue;
        }
        let c = match c {
            // Fullwidth forms of `!` to `~` sit at a fixed offset from ASCII.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else if c == 'İ' {
            out.push('i');
        } else {
            for lower in c.to_lowercase() {
                match lower {
                    'ß' => out.push_str("ss"),
                    'ς' => out.push('σ'),
                    other => out.push(other),
                }
            }
        }
    }
    out
}

/// `text` (already folded) with every `scheme://…` URL replaced by one space. The URL ends
/// at a space or at a character a URL cannot hold unencoded (`"`, `<`, `>`, `` ` ``), so
/// `<a href="https://x">packaging</a>` written out as text keeps its word.
fn without_urls(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // `text[..copied]` is dealt with
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let separator = search + found;
        // Scheme characters are ASCII, so walking bytes back stops on a char boundary.
        let mut start = separator;
        while start > copied
            && (bytes[start - 1].is_ascii_alphanumeric()
                || matches!(bytes[start - 1], b'+' | b'.' | b'-'))
        {
            start -= 1;
        }
        if start == separator {
            // `://` with no scheme before it is not a link.
            search = separator + 3;
            continue;
        }
        let end = text[separator..]
            .find([' ', '"', '<', '>', '`'])
            .map_or(text.len(), |i| separator + i);
        out.push_str(&text[copied..start]);
        out.push(' ');
        copied = end;
        search = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether the folded `keyword` occurs in the folded `haystack` as whole words. Each
/// occurrence inside a longer word is skipped by one character and the search goes on, so an
/// overlapping whole-word occurrence behind it is still found.
fn contains_keyword(haystack: &str, keyword: &str) -> bool {
    let Some(first) = keyword.chars().next() else {
        return false; // an all-invisible keyword would match everywhere
    };
    let needs_start_boundary = is_word_char(first);
    let needs_end_boundary = keyword.chars().next_back().is_some_and(is_word_char);
    let mut from = 0;
    while let Some(found) = haystack[from..].find(keyword) {
        let start = from + found;
        let end = start + keyword.len();
        let start_ok = !needs_start_boundary
            || !haystack[..start]
                .chars()
                .next_back()
                .is_some_and(is_word_char);
        let end_ok =
            !needs_end_boundary || !haystack[end..].chars().next().is_some_and(is_word_char);
        if start_ok && end_ok {
            return true;
        }
        from = start + first.len_utf8();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guide(topic: &str, keywords: &[&str]) -> Guide {
        Guide {
            topic: topic.to_string(),
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            title: format!("{topic} guide"),
            url: format!("https://guides.example/{}", topic.replace(' ', "-")),
        }
    }

    fn test_guides() -> Vec<Guide> {
        vec![
            guide(
                "packaging",
                &["packaging", "package", "pyproject.toml", "pypi"],
            ),
            guide("peer review", &["peer review", "review"]),
            guide("reviewing", &["reviewer", "become a reviewer"]),
            guide("tutorials", &["how do i start", "tutorial"]),
            guide("streets", &["straße"]),
            guide("greek", &["λόγος"]),
            guide("c++", &["c++"]),
        ]
    }

    /// The topics `text` asks for, joined by `,`; "" when none.
    #[track_caller]
    fn check(text: &str, expected: &str) {
        let guides = test_guides();
        let topics: Vec<&str> = matching_guides(text, &guides)
            .iter()
            .map(|g| g.topic.as_str())
            .collect();
        assert_eq!(topics.join(","), expected, "topics for {text:?}");
    }

    #[track_caller]
    fn check_text(html: &str, expected: &str) {
        assert_eq!(
            mention_words(&crate::text::html::html_to_text(html)),
            expected,
            "text of {html:?}"
        );
    }

    #[test]
    fn whole_words_case_insensitive() {
        check("How do I package my Python code?", "packaging");
        check("PACKAGING", "packaging");
        check("Packaging.", "packaging");
        check("(packaging)", "packaging");
        check("\"package\"?!", "packaging");
        check("package's docs", "packaging");
        check("repackaging", "");
        check("packaging2 and packages", "");
        check("prepackage", "");
        check("packaging_tools my_package _pypi_", "packaging");
        check("packaging_tools", "packaging");
        check("nothing here", "");
        check("", "");
    }

    #[test]
    fn multi_word_keywords_span_any_whitespace() {
        check("how does peer review work?", "peer review");
        check("peer\n\n  review", "peer review");
        check("peer\u{a0}review", "peer review");
        check("peer\u{3000}review", "peer review");
        check("how do\ti start", "tutorials");
        check("I want to become a reviewer", "reviewing");
        check("peerreview", "");
        check("reviewers", "");
        check("how do i started", "");
    }

    #[test]
    fn hashtags_and_punctuation_count_as_words() {
        check("#packaging", "packaging");
        check("#Packaging #PeerReview", "packaging");
        check("#PythonPackaging", "");
        check("**packaging**", "packaging");
        check("[packaging](https://example.org)", "packaging");
        check("pyproject.toml", "packaging");
        check("what is c++?", "c++");
        check("abc++", "");
    }

    #[test]
    fn at_most_three_in_config_order() {
        check(
            "tutorial review package reviewer straße",
            "packaging,peer review,reviewing",
        );
        check("c++ tutorial", "tutorials,c++");
    }

    #[test]
    fn overlapping_occurrence_inside_a_word_is_skipped() {
        // The first `peer review` sits in `xpeer review`; the one after it is whole.
        check("xpeer peer review", "peer review");
        check("review", "peer review");
        check("reviewing reviewed review", "peer review");
    }

    #[test]
    fn unicode_case_folding() {
        check("STRASSE", "streets");
        check("Straße", "streets");
        check("STRAẞE", "streets");
        check("ΛΌΓΟΣ", "greek");
        check("λόγος", "greek");
        check("PACKAGİNG", "packaging");
        // Turkish dotless ı is another letter.
        check("packagıng", "");
        check("ｐａｃｋａｇｉｎｇ", "packaging");
        check("ＰＡＣＫＡＧＥ", "packaging");
    }

    #[test]
    fn invisible_characters_are_ignored() {
        check("pack\u{200b}aging", "packaging");
        check("\u{202e}packaging\u{202c}", "packaging");
        check("pack\u{00ad}age", "packaging");
        check("\u{2066}peer\u{2069} \u{200d}review", "peer review");
        check("package\u{fe0f}", "packaging");
        check("re\u{200b}packaging", "");
    }

    #[test]
    fn lookalikes_and_marks_do_not_match() {
        check("p\u{430}ckaging", ""); // Cyrillic а
        check("pac\u{1d0b}aging", "");
        check("package\u{301}", ""); // a combining acute makes it another word
        check("𝐩𝐚𝐜𝐤𝐚𝐠𝐢𝐧𝐠", ""); // mathematical bold is not folded
    }

    #[test]
    fn keywords_inside_urls_do_not_count() {
        check("see https://github.com/x/packaging-tools", "");
        check("HTTPS://example.org/?q=peer+review", "");
        check("https://example.org/packaging package", "packaging");
        check("link:https://example.org/packaging", "");
        check("(https://example.org/packaging)", "");
        check("://packaging", "packaging");
        check("www.example.org/packaging", "packaging");
        check("<a href=\"https://example.org\">packaging</a>", "packaging");
        check("`https://example.org/x`packaging", "packaging");
    }

    #[test]
    fn text_drops_markup_and_mentions() {
        check_text(
            r#"<p><span class="h-card"><a href="https://example.org/@bot" class="u-url mention">@<span>bot</span></a></span> how do I package?</p>"#,
            "how do I package?",
        );
        check_text(
            "<p>@bot@example.org hi @carol, and @dave.</p>",
            "hi , and .",
        );
        check_text("<p>@\u{200b}packaging @.dot</p>", "@.dot");
        check_text("<p>pack\u{200b}age\u{202e}</p>", "package");
        check_text(
            "<p>&lt;script&gt; &amp; &#112;ackaging</p>",
            "<script> & packaging",
        );
        check_text(
            "<p>mail me at me@example.org</p>",
            "mail me at me@example.org",
        );
        check_text("<p>@ alone and @@ and @.</p>", "@ alone and @@ and @.");
        check_text("<p>a=@b /@c</p>", "a=@b /@c");
        check_text("<p>@packaging@packaging.example</p>", "");
        check_text("", "");
    }

    #[test]
    fn usable_accts() {
        for good in [
            "alice",
            "a_b",
            "alice@example.org",
            "x.y-z@sub.example",
            "名前@例え.jp",
        ] {
            assert!(is_usable_acct(good), "{good:?} is usable");
        }
        for bad in [
            "",
            "@alice",
            "alice@",
            "alice@@example.org",
            "alice@example.org@evil.example",
            "alice bob",
            "alice\u{202e}",
            "alice.",
            ".alice",
            "alice@example.org.",
            "<b>alice</b>",
            "alice\nhttps://evil.example",
        ] {
            assert!(!is_usable_acct(bad), "{bad:?} is not usable");
        }
    }

    #[test]
    fn visibility_order() {
        use Visibility::*;
        let all = [Public, Unlisted, Private, Direct];
        for (i, &a) in all.iter().enumerate() {
            for (j, &b) in all.iter().enumerate() {
                assert_eq!(more_private(a, b), all[i.max(j)], "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn hundred_kilobytes_is_fast_and_safe() {
        let guides = test_guides();
        let near_misses = "xpeer review".repeat(100_000 / 12) + " peer review";
        assert_eq!(matching_guides(&near_misses, &guides).len(), 1);
        let urls = "a://".repeat(25_000);
        assert!(matching_guides(&urls, &guides).is_empty());
        let ats = "@".repeat(50_000) + &"@a".repeat(25_000);
        let _ = mention_words(&ats);
        let invisible = "\u{200b}".repeat(30_000);
        assert!(matching_guides(&invisible, &guides).is_empty());
    }
}
