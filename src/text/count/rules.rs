//! What each server software charges (the rules in the module's header, one function each):
//! its unit, its limit, the content warning, Pleroma's trimming, what Mastodon charges for a
//! URL or a mention, and how many characters a grapheme cluster is.

use unicode_segmentation::UnicodeSegmentation;

use super::tables::is_virama;
use super::Software;

/// What a software counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Graphemes,
    CodePoints,
}

pub(super) fn unit(software: Software) -> Unit {
    match software {
        Software::Mastodon | Software::Pleroma | Software::Akkoma => Unit::Graphemes,
        Software::Gotosocial | Software::Generic => Unit::CodePoints,
    }
}

/// The largest count a status may have and still be accepted (Pleroma/Akkoma: one below max).
pub(super) fn limit(software: Software, max_characters: usize) -> usize {
    match software {
        Software::Pleroma | Software::Akkoma => max_characters.saturating_sub(1),
        Software::Mastodon | Software::Gotosocial | Software::Generic => max_characters,
    }
}

/// What the content warning adds to a status whose text counts `body`.
pub(super) fn spoiler_weight(software: Software, spoiler_text: &str, body: usize) -> usize {
    match software {
        // `[status.spoiler_text, countable_text(status.text)].join`: the spoiler is not
        // passed through `countable_text`, so its URLs and mentions count literally.
        Software::Mastodon => grapheme_len(spoiler_text),
        // `len([]rune(status)) + len([]rune(spoiler))`.
        Software::Gotosocial | Software::Generic => spoiler_text.chars().count(),
        // `String.trim(String.trim(status) <> spoiler_text)`: the text's trailing whitespace
        // is gone before the spoiler is appended; the spoiler loses its trailing whitespace,
        // and its leading whitespace too when the text trims to nothing.
        Software::Pleroma | Software::Akkoma => {
            let spoiler = if body == 0 {
                spoiler_text.trim_matches(is_trimmed_ws)
            } else {
                spoiler_text.trim_end_matches(is_trimmed_ws)
            };
            grapheme_len(spoiler)
        }
    }
}

/// The part of `bytes` the server counts: Pleroma/Akkoma trim the text (clusters wholly
/// before the first or after the second weigh 0); the others count it all.
pub(super) fn counted_span(software: Software, bytes: &[u8]) -> (usize, usize) {
    match software {
        Software::Pleroma | Software::Akkoma => {
            let lead = bytes
                .iter()
                .position(|&b| !is_trimmed_ws_byte(b))
                .unwrap_or(bytes.len());
            let trail = bytes
                .iter()
                .rposition(|&b| !is_trimmed_ws_byte(b))
                .map_or(0, |i| i + 1);
            (lead, trail)
        }
        _ => (0, bytes.len()),
    }
}

/// The whitespace we are sure Elixir's `String.trim` removes (it may remove more, e.g. NBSP:
/// then we count more).
fn is_trimmed_ws(c: char) -> bool {
    c.is_ascii() && is_trimmed_ws_byte(c as u8)
}

fn is_trimmed_ws_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// What Mastodon charges for an entity (every other software charges it literally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Charge {
    /// Its grapheme clusters.
    Literal,
    /// A mention: `@` plus the username.
    Fixed(usize),
    /// A URL Mastodon surely extracts, exactly this span: `characters_reserved_per_url`.
    Reserved,
    /// Unsure: Mastodon extracts nothing here, or a URL starting here and ending at or after
    /// `min_end`. Charged `max(literal, reserved + literal(min_end..end))`.
    Unsure { min_end: usize },
}

impl Charge {
    /// Mastodon's weight of an entity found ending at `found_end`, widened to the cluster
    /// boundaries `start..end`; `literal(from)` counts `from..end` as it is.
    pub(super) fn on_mastodon(
        self,
        start: usize,
        end: usize,
        found_end: usize,
        url_weight: usize,
        literal: impl Fn(usize) -> usize,
    ) -> usize {
        match self {
            Charge::Literal => literal(start),
            // Widened at its end means a mark we did not expect: do not trust the mention.
            Charge::Fixed(w) if end == found_end => w,
            Charge::Fixed(_) => literal(start),
            // The placeholder's 'x's absorb marks on either side, as the URL's ends did.
            Charge::Reserved => url_weight,
            Charge::Unsure { min_end } => {
                let rest = literal(min_end.clamp(start, end));
                literal(start).max(url_weight + rest)
            }
        }
    }
}

/// Grapheme clusters of `s` as the servers count them (see [`cluster_weight`]).
pub(super) fn grapheme_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.is_ascii() {
        return b.len() - b.windows(2).filter(|w| w == b"\r\n").count();
    }
    s.graphemes(true).map(cluster_weight).sum()
}

/// One cluster's weight: 1, plus one per Indic conjunct joined by rule GB9c (Unicode 15.1),
/// which Ruby's and Elixir's older Unicode tables may not apply: count the consonant after a
/// virama as its own cluster, erring on the high side.
pub(super) fn cluster_weight(cluster: &str) -> usize {
    if cluster.len() < 6 {
        return 1; // fewer than two 3-byte characters: no conjunct
    }
    let mut extra = 0;
    let mut after_virama = false;
    for c in cluster.chars() {
        if is_virama(c) {
            after_virama = true;
        } else if after_virama && !matches!(c, '\u{200C}' | '\u{200D}') {
            extra += 1;
            after_virama = false;
        }
    }
    1 + extra
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{counter, ALL};
    use super::super::{Counter, Software};

    #[test]
    fn spoiler_counts() {
        for software in ALL {
            let c = counter(software);
            assert_eq!(c.count_status("hello", "CW: spoilers"), 17, "{software:?}");
        }
        // Mastodon does not shorten URLs in the content warning
        let m = counter(Software::Mastodon);
        assert_eq!(m.count_status("", "https://example.com/long/path/here"), 34);
        assert_eq!(m.count_status("https://example.com/long/path/here", ""), 23);
        // Mastodon's spec: 250 + 251 is over 500
        assert!(!m.fits(&"b".repeat(251), &"a".repeat(250)));
        assert!(m.fits(&"b".repeat(250), &"a".repeat(250)));
        // Pleroma: trim(trim("hi ") <> " cw ") = "hi cw"
        let p = counter(Software::Pleroma);
        assert_eq!(p.count_status("hi ", " cw "), 5);
        // text trims to nothing: the spoiler's leading spaces go too
        assert_eq!(p.count_status("   ", "  cw  "), 2);
        // GoToSocial: code points of both
        let g = counter(Software::Gotosocial);
        assert_eq!(g.count_status("\u{1F44D}\u{1F3FD}", "e\u{301}"), 4);
    }

    #[test]
    fn limits() {
        let p = Counter::new(Software::Pleroma, 5000, 23);
        assert_eq!(p.limit(), 4999);
        assert!(p.fits(&"a".repeat(4999), ""));
        assert!(!p.fits(&"a".repeat(5000), ""));
        assert_eq!(Counter::new(Software::Akkoma, 5000, 23).limit(), 4999);
        assert_eq!(Counter::new(Software::Pleroma, 0, 23).limit(), 0);
        let m = Counter::new(Software::Mastodon, 500, 23);
        assert_eq!(m.limit(), 500);
        assert!(m.fits(&"a".repeat(500), ""));
        assert!(!m.fits(&"a".repeat(501), ""));
        assert_eq!(Counter::new(Software::Gotosocial, 5000, 25).limit(), 5000);
        // a fork reserving more per URL
        assert_eq!(
            Counter::new(Software::Mastodon, 500, 30).count("https://example.com/"),
            30
        );
        assert_eq!(
            Counter::new(Software::Mastodon, 500, 0).count("https://example.com/"),
            23
        );
    }
}
