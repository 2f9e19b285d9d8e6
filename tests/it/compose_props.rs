//! Property tests of the composer over random text: whatever the body, every status fits
//! under its server's counter, the link is in the first status, no URL or grapheme is cut,
//! a thread keeps every word in order, and the same input gives the same output.

use std::path::PathBuf;

use perennial::posts::config::{LongPosts, Visibility};
use perennial::posts::post::{Post, PostKind};
use perennial::text::compose::{compose, Composed, Fit, FitProblem, FitSettings};
use perennial::text::count::{Counter, Software};
use proptest::prelude::*;
use unicode_segmentation::UnicodeSegmentation;

const URLS: &[&str] = &[
    "https://www.pyopensci.org/python-package-guide/",
    "https://example.org/a/b?q=1&r=two#frag",
    "https://en.wikipedia.org/wiki/Python_(programming_language)",
    "http://münchen.de/straße",
    "https://github.com/pyOpenSci/software-submission/issues/42",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z]{1,12}",
        1 => "[A-Z][a-z]{0,8}",
        1 => prop::sample::select(vec!["café", "naïve", "日本語", "مرحبا", "שלום", "e\u{301}"]).prop_map(String::from),
        1 => prop::sample::select(vec!["👩‍👩‍👧", "👍🏽", "🇩🇪", "🌱", "✨"]).prop_map(String::from),
        1 => prop::sample::select(URLS.to_vec()).prop_map(String::from),
        1 => prop::sample::select(vec!["@alice", "@bob@fosstodon.org", "#Python", "#OpenScience"]).prop_map(String::from),
        1 => prop::sample::select(vec!["(see", "this)", "note:", "a,", "well;"]).prop_map(String::from),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        " ", " ", " ", " ", ". ", "! ", "? ", ", ", "\n", "\n\n", ".\n\n",
    ])
}

fn body() -> impl Strategy<Value = String> {
    prop::collection::vec((piece(), separator()), 1..120).prop_map(|pieces| {
        let mut text = String::new();
        for (word, sep) in pieces {
            text.push_str(&word);
            text.push_str(sep);
        }
        text.trim().to_string()
    })
}

fn software() -> impl Strategy<Value = Software> {
    prop::sample::select(vec![
        Software::Mastodon,
        Software::Gotosocial,
        Software::Pleroma,
        Software::Akkoma,
        Software::Generic,
    ])
}

fn make_post(
    text: String,
    link: Option<String>,
    tags: Vec<String>,
    long_posts: Option<LongPosts>,
    cw: Option<String>,
) -> Post {
    Post {
        id: "p".into(),
        file: PathBuf::from("posts/p.md"),
        title: "t".into(),
        category: "c".into(),
        kind: PostKind::Evergreen,
        link,
        hashtags: tags,
        active_from: None,
        active_until: None,
        content_warning: cw,
        language: None,
        visibility: None,
        weight: 1.0,
        short: None,
        short_position: None,
        long_posts,
        media: Vec::new(),
        text,
        content_hash: String::new(),
    }
}

/// The words of a status that contain a URL.
fn urls_in(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace())
        .filter(|word| word.contains("://"))
        .collect()
}

fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

fn is_subsequence(needle: &[&str], haystack: &[&str]) -> bool {
    let mut it = haystack.iter();
    needle.iter().all(|w| it.any(|h| h == w))
}

fn check(composed: &Composed, post: &Post, counter: &Counter) -> Result<(), TestCaseError> {
    let no_room = composed.problems.contains(&FitProblem::NoRoom);
    for status in &composed.statuses {
        let length = counter.count_status(&status.text, &status.spoiler_text);
        prop_assert_eq!(length, status.length);
        if !no_room {
            prop_assert!(
                length <= counter.limit(),
                "{} > {}: {:?}",
                length,
                counter.limit(),
                status.text
            );
        }
        // Every URL in a status is whole: it is one of the input URLs, maybe followed by
        // punctuation or the ")" of the text around it.
        for url in urls_in(&status.text) {
            let start = url.find("http").unwrap();
            let url = &url[start..];
            prop_assert!(
                URLS.iter()
                    .chain(post.link.as_deref().iter())
                    .any(|known| url.starts_with(known)),
                "cut URL {:?} in {:?}",
                url,
                status.text
            );
        }
    }
    if let Some(link) = &post.link {
        prop_assert!(
            composed.statuses[0].text.contains(link.as_str()),
            "link missing: {:?}",
            composed.statuses[0].text
        );
    }
    match composed.fit {
        Fit::Truncated => {
            // The kept text is a prefix of the body that ends on a grapheme boundary.
            let text = &composed.statuses[0].text;
            if let Some(cut) = text.find('…') {
                let kept = text[..cut].trim_end();
                prop_assert!(post.text.starts_with(kept), "not a prefix: {:?}", kept);
                let boundary = post
                    .text
                    .grapheme_indices(true)
                    .any(|(i, _)| i == kept.len())
                    || kept.len() == post.text.len();
                prop_assert!(boundary, "cut inside a grapheme: {:?}", kept);
            }
        }
        Fit::Thread {
            truncated: false,
            parts,
        } => {
            prop_assert_eq!(parts, composed.statuses.len());
            let all: Vec<&str> = composed
                .statuses
                .iter()
                .flat_map(|s| words(&s.text))
                .collect();
            prop_assert!(
                is_subsequence(&words(&post.text), &all),
                "a word is lost or out of order"
            );
            for (i, status) in composed.statuses.iter().enumerate() {
                let suffix = format!(" ({}/{})", i + 1, parts);
                prop_assert!(status.text.ends_with(&suffix), "{:?}", status.text);
                prop_assert_eq!(status.in_reply_to, i.checked_sub(1));
            }
        }
        _ => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn every_composed_status_fits_and_keeps_urls_graphemes_and_words(
        text in body(),
        with_link in any::<bool>(),
        link_index in 0..URLS.len(),
        tags in prop::collection::vec("[A-Z][a-z]{2,10}", 0..4),
        thread in any::<bool>(),
        cw in prop::option::weighted(0.2, "[a-z ]{1,30}"),
        software in software(),
        limit in 80usize..700,
        max_thread in 1usize..6,
    ) {
        let link = with_link.then(|| URLS[link_index].to_string());
        let long_posts = Some(if thread { LongPosts::Thread } else { LongPosts::Truncate });
        let post = make_post(text, link, tags, long_posts, cw);
        let counter = Counter::new(software, limit, 23);
        let defaults = vec!["pyOpenSci".to_string()];
        let settings = FitSettings {
            counter: &counter,
            long_posts: LongPosts::Truncate,
            max_thread,
            default_hashtags: &defaults,
            visibility: Visibility::Public,
            language: "en",
        };
        let composed = compose(&post, &settings);
        check(&composed, &post, &counter)?;
        prop_assert_eq!(&composed, &compose(&post, &settings), "not deterministic");
    }
}

/// What is left of `text` once the link, `…`, a thread part's ` (i/n)` and whitespace are
/// taken out.
fn besides_link_and_ellipsis(text: &str, link: Option<&str>) -> String {
    let mut rest = text.to_string();
    if let Some(link) = link {
        rest = rest.replace(link, "");
    }
    let rest = match (rest.rfind(" ("), rest.ends_with(')')) {
        (Some(open), true)
            if rest[open + 2..rest.len() - 1]
                .split('/')
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            rest[..open].to_string()
        }
        _ => rest,
    };
    rest.chars()
        .filter(|c| *c != '…' && !c.is_whitespace())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    /// Issue 14, item 11: at any limit from 1 to 600, under every counter, a composition is
    /// either sendable (every status fits, the first keeps the link, each has text besides
    /// the link and `…`), or `unsendable()` says why it must not be sent.
    #[test]
    fn at_any_limit_a_composition_is_sendable_or_unsendable_says_why(
        text in body(),
        with_link in any::<bool>(),
        link_index in 0..URLS.len(),
        tags in prop::collection::vec("[A-Z][a-z]{2,10}", 0..4),
        thread in any::<bool>(),
        cw in prop::option::weighted(0.2, "[a-z ]{1,30}"),
        software in software(),
        limit in 1usize..=600,
        max_thread in 1usize..6,
    ) {
        let link = with_link.then(|| URLS[link_index].to_string());
        let long_posts = Some(if thread { LongPosts::Thread } else { LongPosts::Truncate });
        let post = make_post(text, link, tags, long_posts, cw);
        let counter = Counter::new(software, limit, 23);
        let defaults = vec!["pyOpenSci".to_string()];
        let settings = FitSettings {
            counter: &counter,
            long_posts: LongPosts::Truncate,
            max_thread,
            default_hashtags: &defaults,
            visibility: Visibility::Public,
            language: "en",
        };
        let composed = compose(&post, &settings);
        if let Some(reason) = composed.unsendable() {
            prop_assert!(!reason.trim().is_empty());
            return Ok(());
        }
        let link = post.link.as_deref();
        let body_has_text = !besides_link_and_ellipsis(&post.text, link).is_empty();
        for status in &composed.statuses {
            prop_assert!(
                status.length <= counter.limit(),
                "sent over the limit: {} > {}: {:?}",
                status.length,
                counter.limit(),
                status.text
            );
            prop_assert!(
                !body_has_text || !besides_link_and_ellipsis(&status.text, link).is_empty(),
                "sent with nothing but the link and `…`: {:?}",
                status.text
            );
        }
        if let Some(link) = link {
            prop_assert!(
                composed.statuses[0].text.contains(link),
                "sent without the link: {:?}",
                composed.statuses[0].text
            );
        }
    }
}
