//! What the tests of the counter share: a counter for each software, the consistency every
//! segmentation must have, and generators of texts that exercise the scanner.

use proptest::prelude::*;

use super::{Counter, Software};

pub(super) const ALL: [Software; 5] = [
    Software::Mastodon,
    Software::Gotosocial,
    Software::Pleroma,
    Software::Akkoma,
    Software::Generic,
];

pub(super) fn counter(software: Software) -> Counter {
    Counter::new(software, 500, 23)
}

/// Segments are contiguous, non-empty, on char boundaries, cover the text, and add up to `count`.
pub(super) fn assert_segments_consistent(c: &Counter, text: &str) {
    let segments = c.segments(text);
    let mut at = 0;
    for s in &segments {
        assert_eq!(
            s.start,
            at,
            "{:?}: gap or overlap at {at} in {text:?}: {segments:?}",
            c.software()
        );
        assert!(s.end > s.start, "empty segment in {text:?}");
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        at = s.end;
    }
    assert_eq!(at, text.len(), "segments do not cover {text:?}");
    let sum: usize = segments.iter().map(|s| s.weight).sum();
    assert_eq!(
        sum,
        c.count(text),
        "{:?}: weights vs count for {text:?}",
        c.software()
    );
}

pub(super) fn check(software: Software, text: &str, expected: usize) {
    let c = counter(software);
    assert_eq!(c.count(text), expected, "{software:?} count of {text:?}");
    assert_segments_consistent(&c, text);
}

/// (text, Mastodon, GoToSocial (= Generic), Pleroma (= Akkoma)).
pub(super) fn check_row(text: &str, mastodon: usize, gotosocial: usize, pleroma: usize) {
    check(Software::Mastodon, text, mastodon);
    check(Software::Gotosocial, text, gotosocial);
    check(Software::Generic, text, gotosocial);
    check(Software::Pleroma, text, pleroma);
    check(Software::Akkoma, text, pleroma);
}

/// Pieces that exercise the scanner: URLs, mentions, hashtags, clusters, odd spaces.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9]{1,8}",
        3 => Just(" ".to_string()),
        2 => prop::sample::select(vec![
            "https://", "http://", "gemini://", "HTTPS://", "example.com", "münchen.de", "t.co/", "a.zz",
            "localhost", ".", "/", "?q=1&r=2", "#frag", "(", ")", "wiki/Foo_(bar)", "#", "@", "alice",
            "#café", "#tag", "dat://", "ssb://", "@bob", "·", "://",
            "@bob@example.social", ":8080", ",", "!", "?", "\"", "<", ">", "'", "=", "-", "_", "xn--p1ai",
        ])
        .prop_map(str::to_string),
        2 => prop::sample::select(vec![
            "\u{1F469}", "\u{200D}", "\u{1F3FD}", "\u{1F1E9}", "\u{1F1EA}", "e\u{301}", "\u{301}", "\u{915}",
            "\u{94D}", "\u{937}", "日本", "مرحبا", "\u{5E9}\u{5B8}", "\u{600}", "\u{FE0F}", "\u{85}", "\u{A0}",
            "\u{17F}", "\u{2028}", "\r", "\n", "\r\n", "\t", "é", "「", "」", "\u{E0067}", "\u{1F3F4}",
        ])
        .prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
    ]
}

pub(super) fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..40).prop_map(|pieces| pieces.concat())
}
