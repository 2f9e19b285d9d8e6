//! Hashtags as Mastodon finds them (`Tag::HASHTAG_RE` in `app/models/tag.rb`). They count
//! literally everywhere; they are only atomic for cutting.

use super::rules::Charge;
use super::scanner::{char_at, prev_char, Entity, Scanner};
use super::url::protocol_start;
use super::SegmentKind;

impl Scanner<'_> {
    /// Roughly Mastodon's `Tag::HASHTAG_RE` (`(?<![=/)\p{Alnum}])#` then word characters and
    /// the separators `_ · ・ ZWNJ`, with a letter somewhere). Hashtags count literally
    /// everywhere; they are only atomic for cutting.
    pub(super) fn hashtag_at(&self, at: usize) -> Option<Entity> {
        let text = self.text;
        if let Some(p) = prev_char(text, at) {
            if p.is_alphanumeric() || matches!(p, '=' | '/' | ')') {
                return None;
            }
        }
        let first = char_at(text, at + 1)?;
        if !(first.is_alphanumeric() || first == '_') {
            return None;
        }
        let mut k = at + 1;
        let mut last_word = k;
        let mut has_letter = false;
        for c in text[at + 1..].chars() {
            if c.is_alphanumeric() || c == '_' {
                k += c.len_utf8();
                last_word = k;
                has_letter |= c.is_alphabetic();
            } else if matches!(c, '\u{B7}' | '\u{30FB}' | '\u{200C}') {
                k += c.len_utf8();
            } else {
                break;
            }
        }
        if !has_letter {
            return None;
        }
        let mut end = last_word;
        // Mastodon's `extract_hashtags_with_indices`: "#foohttps://…" is the tag "foo". We
        // give up any protocol (not only "https?") so the URL scanner still judges it: after
        // a non-ASCII letter ("#cafégemini://…") twitter-text does see a URL.
        if text[end..].starts_with("://") {
            if let Some(protocol) = protocol_start(self.bytes, end) {
                if protocol <= at + 1 {
                    return None; // "#https://…": no tag, a glued URL
                }
                end = protocol;
            }
        }
        Some(Entity {
            start: at,
            end,
            kind: SegmentKind::Hashtag,
            charge: Charge::Literal,
        })
    }
}
