//! What each server software charges beyond its unit: Mastodon's charge for an entity, how
//! many characters a grapheme cluster is, and the whitespace Pleroma/Akkoma trim.

use unicode_segmentation::UnicodeSegmentation;

use super::tables::is_virama;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Graphemes,
    CodePoints,
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

/// The whitespace we are sure Elixir's `String.trim` removes (it may remove more, e.g. NBSP:
/// then we count more).
pub(super) fn is_trimmed_ws(c: char) -> bool {
    c.is_ascii() && is_trimmed_ws_byte(c as u8)
}

pub(super) fn is_trimmed_ws_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}
