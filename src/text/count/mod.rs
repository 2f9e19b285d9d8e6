//! Counts a status the way the receiving server counts it, so nothing we send is rejected as too long.
//!
//! # The rules, by server software
//!
//! * **Mastodon** (`app/validators/status_length_validator.rb`): the length is the number of
//!   extended grapheme clusters of `spoiler_text + countable_text(text)`, where `countable_text`
//!   replaces every URL found by twitter-text's
//!   `extract_urls_with_indices(text, extract_url_without_protocol: false)` with
//!   `'x' * 23` (`URL_PLACEHOLDER`) and every mention found by Mastodon's own
//!   `Extractor.extract_mentions_or_lists_with_indices` (`app/lib/extractor.rb`, using
//!   `Account::MENTION_RE`) with `"@" + username` (the domain is dropped). The spoiler is
//!   counted literally. Mastodon patches twitter-text's URL regexes in
//!   `config/initializers/twitter_regex.rb` (more protocols, any non-space path character);
//!   the scanner below follows that patched grammar. Edge cases from
//!   `spec/validators/status_length_validator_spec.rb`:
//!   - a URL glued to the word before it (`foohttps://…`) is not a URL: twitter-text's
//!     `valid_url_preceding_chars` forbids an ASCII letter/digit, `@`, `$`, `#` before it;
//!   - a URL longer than 4096 characters is not a URL (`is_valid_domain`,
//!     `MAX_URL_LENGTH = 4096` in twitter-text's `extractor.rb`), so it counts in full;
//!   - a mention whose domain is longer than 253 characters is not a mention
//!     (`Extractor::MAX_DOMAIN_LENGTH`), so it counts in full.
//! * **GoToSocial** (`internal/processing/status/common.go`, `validateStatusContent`):
//!   `len([]rune(status)) + len([]rune(spoiler))`: code points, everything literal.
//! * **Pleroma / Akkoma** (`lib/pleroma/web/common_api/activity_draft.ex`):
//!   `String.length(String.trim(String.trim(status) <> spoiler_text))`: graphemes of the
//!   trimmed text, everything literal. Some versions reject `length == limit`, so
//!   [`Counter::limit`] is one below `max_characters`.
//! * **Generic** (unknown software): code points, everything literal; never below any of the
//!   above except Mastodon's 23 for a URL shorter than 23.
//!
//! # Counting more, never less
//!
//! We cannot run the server's regexes, so wherever this module is unsure whether Mastodon
//! would see a URL (or a mention), it charges the larger of the possible outcomes: a segment
//! is charged `max(literal, 23 + whatever could be left over)`, and a mention we are unsure
//! of is charged literally (a mention only ever makes Mastodon's count smaller). Text is also
//! counted piece by piece (each URL, mention and run of text separately), which can only
//! split grapheme clusters, never merge them, so it never counts less than the server.
//! Grapheme clusters come from `unicode-segmentation` (Unicode 17); Ruby and Elixir may use an
//! older Unicode without rule GB9c (Indic conjuncts), so a conjunct such as `क्ष` is charged
//! one cluster per consonant.
//!
//! # Segments
//!
//! [`Counter::segments`] cuts a text into consecutive segments (grapheme clusters, plus atomic
//! URLs, mentions and hashtags) whose weights add up to exactly [`Counter::count`], so the
//! composer can find cut points with prefix sums. For Pleroma/Akkoma, whose servers trim the
//! text, the leading and trailing whitespace clusters of the text weigh 0: the count of a text
//! is its trimmed count, and the prefix sum up to a cut point is never below the count of the
//! piece before it (the composer never produces leading or trailing whitespace anyway).
//!
//! # Where things are
//!
//! * `scanner.rs`: the one pass over a text that finds the entities and cuts the rest into
//!   grapheme clusters, with its fast paths;
//! * `url.rs`, `mention.rs`, `hashtag.rs`: the grammars of the entities, and what Mastodon
//!   charges for each;
//! * `rules.rs`: what each software counts (its unit, limit, content warning and trimming);
//! * `tables.rs`: the static data (character classes, the TLDs we are sure of).

mod hashtag;
mod mention;
mod rules;
mod scanner;
mod tables;
#[cfg(test)]
mod test_support;
mod url;

use rules::Unit;
use scanner::{BoundedVecSink, Scanner, SumSink, VecSink};

/// What Mastodon charges for a URL unless the server says otherwise
/// (`StatusLengthValidator::URL_PLACEHOLDER_CHARS`).
pub const DEFAULT_CHARACTERS_RESERVED_PER_URL: usize = 23;

pub use crate::posts::config::Software;

/// What a piece of text is, for the purpose of "never cut inside it".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// One grapheme cluster of ordinary text.
    Grapheme,
    /// An http(s) URL, atomic. (Also the other protocols Mastodon links: `gemini://`, `dat://`…)
    Url,
    /// A `@user` or `@user@domain` mention, atomic.
    Mention,
    /// A `#hashtag`, atomic.
    Hashtag,
}

/// One piece of a text with the number of characters the server charges for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Byte range in the text.
    pub start: usize,
    pub end: usize,
    pub weight: usize,
    pub kind: SegmentKind,
}

/// A server's counting rule and limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    software: Software,
    characters_reserved_per_url: usize,
    max_characters: usize,
}

impl Counter {
    /// `characters_reserved_per_url` is what the server reports in
    /// `configuration.statuses`; 0 (not reported) means Mastodon's default, 23.
    pub fn new(
        software: Software,
        max_characters: usize,
        characters_reserved_per_url: usize,
    ) -> Self {
        Counter {
            software,
            characters_reserved_per_url,
            max_characters,
        }
    }
    pub fn software(&self) -> Software {
        self.software
    }
    pub fn max_characters(&self) -> usize {
        self.max_characters
    }
    /// What one URL costs on Mastodon (only Mastodon applies it).
    pub fn characters_reserved_per_url(&self) -> usize {
        if self.characters_reserved_per_url == 0 {
            DEFAULT_CHARACTERS_RESERVED_PER_URL
        } else {
            self.characters_reserved_per_url
        }
    }
    /// The largest count a status may have and still be accepted (Pleroma/Akkoma: one below max).
    pub fn limit(&self) -> usize {
        rules::limit(self.software, self.max_characters)
    }
    /// The text split into segments whose weights add up to `count(text)`.
    pub fn segments(&self, text: &str) -> Vec<Segment> {
        let mut out = Vec::new();
        self.segments_into(text, &mut out);
        out
    }
    /// Like [`Counter::segments`], reusing `out`'s allocation (it is cleared first).
    pub fn segments_into(&self, text: &str, out: &mut Vec<Segment>) {
        out.clear();
        out.reserve(text.len());
        Scanner::new(self, text).run(&mut VecSink(out));
    }
    /// The first segments of `text`, the same as [`Counter::segments`] gives, at least
    /// until their weights add up to more than `bound` (all of them when `text` weighs no
    /// more); and whether they are all of them.
    pub fn segments_beyond(&self, text: &str, bound: usize) -> (Vec<Segment>, bool) {
        let mut out = Vec::with_capacity(text.len());
        Scanner::new(self, text).run(&mut BoundedVecSink {
            out: &mut out,
            total: 0,
            bound,
        });
        // Segments cover the text without gaps, so the scanner stopped early exactly when
        // the last one ends before the text does.
        let all = out.last().is_none_or(|last| last.end == text.len());
        (out, all)
    }
    /// Characters the server charges for `text` alone.
    pub fn count(&self, text: &str) -> usize {
        match self.unit() {
            // Entities and clusters never change a code-point count: every weight is literal.
            Unit::CodePoints => text.chars().count(),
            Unit::Graphemes => {
                let mut total = SumSink(0);
                Scanner::new(self, text).run(&mut total);
                total.0
            }
        }
    }
    /// Characters the server charges for a status: its text plus its content warning.
    pub fn count_status(&self, text: &str, spoiler_text: &str) -> usize {
        self.status_weight(self.count(text), spoiler_text)
    }
    /// [`Counter::count_status`] of a status whose text counts `body` ([`Counter::count`]).
    pub fn status_weight(&self, body: usize, spoiler_text: &str) -> usize {
        body + rules::spoiler_weight(self.software, spoiler_text, body)
    }
    /// Whether the server accepts this status's length.
    pub fn fits(&self, text: &str, spoiler_text: &str) -> bool {
        self.count_status(text, spoiler_text) <= self.limit()
    }

    fn unit(&self) -> Unit {
        rules::unit(self.software)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::test_support::{assert_segments_consistent, counter, text, ALL};
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn segments_cover_and_sum_to_count(t in text()) {
            for software in ALL {
                assert_segments_consistent(&counter(software), &t);
            }
        }

        #[test]
        fn segments_of_any_unicode_are_consistent(t in any::<String>()) {
            for software in ALL {
                assert_segments_consistent(&counter(software), &t);
            }
        }

        #[test]
        fn count_is_deterministic(t in text()) {
            for software in ALL {
                let c = counter(software);
                prop_assert_eq!(c.count(&t), c.count(&t));
                prop_assert_eq!(c.segments(&t), c.segments(&t));
            }
        }

        /// GoToSocial and Generic count code points; Pleroma never more than that; Mastodon
        /// never more than code points plus one URL charge per URL segment, and never more
        /// than code points when there is no "://" at all.
        #[test]
        fn counts_compare(t in text()) {
            let chars = t.chars().count();
            prop_assert_eq!(counter(Software::Gotosocial).count(&t), chars);
            prop_assert_eq!(counter(Software::Generic).count(&t), chars);
            prop_assert!(counter(Software::Pleroma).count(&t) <= chars);
            prop_assert_eq!(counter(Software::Pleroma).count(&t), counter(Software::Akkoma).count(&t));
            let m = counter(Software::Mastodon);
            let urls = m.segments(&t).iter().filter(|s| s.kind == SegmentKind::Url).count();
            prop_assert!(m.count(&t) <= chars + 23 * urls);
            if !t.contains("://") {
                prop_assert!(m.count(&t) <= chars);
            }
        }
    }
}
