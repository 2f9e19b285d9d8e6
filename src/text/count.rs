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

use unicode_segmentation::{GraphemeCursor, UnicodeSegmentation};

/// What Mastodon charges for a URL unless the server says otherwise
/// (`StatusLengthValidator::URL_PLACEHOLDER_CHARS`).
pub const DEFAULT_CHARACTERS_RESERVED_PER_URL: usize = 23;

/// twitter-text `Extractor::MAX_URL_LENGTH`: a longer "URL" is not extracted, so it counts in full.
const MAX_URL_LENGTH: usize = 4096;
/// twitter-text `Extractor::MAX_TCO_SLUG_LENGTH`.
const MAX_TCO_SLUG_LENGTH: usize = 40;
/// Mastodon `Extractor::MAX_DOMAIN_LENGTH`: a mention with a longer domain is not a mention.
const MAX_MENTION_DOMAIN_LENGTH: usize = 253;
/// IDNA ToASCII (libidn, behind twitter-text's `is_valid_domain`) rejects longer labels.
const MAX_LABEL_LENGTH: usize = 63;
/// More host labels than this: we stop analysing and count the URL conservatively.
const MAX_LABELS: usize = 32;

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
        match self.software {
            Software::Pleroma | Software::Akkoma => self.max_characters.saturating_sub(1),
            Software::Mastodon | Software::Gotosocial | Software::Generic => self.max_characters,
        }
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
        match self.software {
            // `[status.spoiler_text, countable_text(status.text)].join`: the spoiler is not
            // passed through `countable_text`, so its URLs and mentions count literally.
            Software::Mastodon => self.count(text) + grapheme_len(spoiler_text),
            // `len([]rune(status)) + len([]rune(spoiler))`.
            Software::Gotosocial | Software::Generic => {
                text.chars().count() + spoiler_text.chars().count()
            }
            // `String.trim(String.trim(status) <> spoiler_text)`: the text's trailing whitespace
            // is gone before the spoiler is appended; the spoiler loses its trailing whitespace,
            // and its leading whitespace too when the text trims to nothing.
            Software::Pleroma | Software::Akkoma => {
                let body = self.count(text);
                let spoiler = if body == 0 {
                    spoiler_text.trim_matches(is_trimmed_ws)
                } else {
                    spoiler_text.trim_end_matches(is_trimmed_ws)
                };
                body + grapheme_len(spoiler)
            }
        }
    }
    /// Whether the server accepts this status's length.
    pub fn fits(&self, text: &str, spoiler_text: &str) -> bool {
        self.count_status(text, spoiler_text) <= self.limit()
    }

    fn unit(&self) -> Unit {
        match self.software {
            Software::Mastodon | Software::Pleroma | Software::Akkoma => Unit::Graphemes,
            Software::Gotosocial | Software::Generic => Unit::CodePoints,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Graphemes,
    CodePoints,
}

/// What Mastodon charges for an entity (every other software charges it literally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charge {
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

#[derive(Debug, Clone, Copy)]
struct Entity {
    start: usize,
    end: usize,
    kind: SegmentKind,
    charge: Charge,
}

/// Outcome of trying to read a top-level domain at the start of a host label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tld {
    /// twitter-text cannot match a TLD here.
    Impossible,
    /// A TLD we know twitter-text's list has, ending at this byte.
    Certain(usize),
    /// Maybe a TLD (not in our list, or an IDN TLD), ending at this byte at the earliest.
    Possible(usize),
}

/// Where segments go: a vector for `segments`, a running sum for `count`.
trait Sink {
    fn push(&mut self, segment: Segment);
    /// The one-byte clusters `start..end`, each weighing `weight`.
    fn ascii_run(&mut self, start: usize, end: usize, weight: usize);
}

struct VecSink<'v>(&'v mut Vec<Segment>);

impl Sink for VecSink<'_> {
    #[inline]
    fn push(&mut self, segment: Segment) {
        self.0.push(segment);
    }
    #[inline]
    fn ascii_run(&mut self, start: usize, end: usize, weight: usize) {
        let kind = SegmentKind::Grapheme;
        self.0.extend((start..end).map(|i| Segment {
            start: i,
            end: i + 1,
            weight,
            kind,
        }));
    }
}

struct SumSink(usize);

impl Sink for SumSink {
    #[inline]
    fn push(&mut self, segment: Segment) {
        self.0 += segment.weight;
    }
    #[inline]
    fn ascii_run(&mut self, start: usize, end: usize, weight: usize) {
        self.0 += (end - start) * weight;
    }
}

/// One pass over a text: finds entities left to right and emits every segment in order.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    unit: Unit,
    mastodon: bool,
    url_weight: usize,
    /// Pleroma/Akkoma trim the text: clusters wholly before `lead` or after `trail` weigh 0.
    lead: usize,
    trail: usize,
    /// "Is there a '.' in the current word before `word_pos`?" (see `word_has_dot_before`).
    word_pos: usize,
    word_dot: bool,
}

impl<'a> Scanner<'a> {
    fn new(counter: &Counter, text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let (lead, trail) = match counter.software {
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
        };
        Scanner {
            text,
            bytes,
            unit: counter.unit(),
            mastodon: counter.software == Software::Mastodon,
            url_weight: counter.characters_reserved_per_url(),
            lead,
            trail,
            word_pos: 0,
            word_dot: false,
        }
    }

    fn run(mut self, sink: &mut impl Sink) {
        let len = self.bytes.len();
        let mut pos = 0; // everything before `pos` has been emitted; `pos` is a cluster boundary
        let mut i = 0;
        loop {
            // Every entity is announced by an ASCII byte: the ':' of "://", '@' or '#'.
            i = find_trigger(self.bytes, i);
            if i >= len {
                break;
            }
            let found = match self.bytes[i] {
                b':' => self.url_at_colon(i, pos),
                b'@' => self.mention_at(i),
                _ => self.hashtag_at(i),
            };
            match found {
                Some(entity) if entity.start >= pos => {
                    // Never cut inside a cluster: widen to the nearest boundaries (a combining
                    // mark after a URL, a prepended mark before it).
                    let start = self.boundary_at_or_before(entity.start);
                    let end = self.boundary_at_or_after(entity.end);
                    self.emit_text(pos, start, sink);
                    let weight = self.entity_weight(&entity, start, end);
                    sink.push(Segment {
                        start,
                        end,
                        weight,
                        kind: entity.kind,
                    });
                    pos = end;
                    i = end;
                }
                _ => i += 1,
            }
        }
        self.emit_text(pos, len, sink);
    }

    /// Emits `text[a..b]` (both cluster boundaries) as grapheme-cluster segments.
    ///
    /// Fast path: between two "simple" characters (ASCII, or see [`is_simple`]) there is
    /// always a cluster boundary (UAX #29: only "\r\n" (GB3) keeps two of them together, and
    /// no rule looks past a simple character), so a simple character followed by a simple one
    /// is a cluster by itself and needs no segmentation tables. Anything else goes to
    /// unicode-segmentation up to the next such pair, which is a guaranteed boundary.
    fn emit_text(&self, a: usize, b: usize, sink: &mut impl Sink) {
        let bytes = self.bytes;
        let text = self.text;
        let (lead, trail) = (self.lead, self.trail);
        let kind = SegmentKind::Grapheme;
        let mut i = a;
        while i < b {
            // ASCII run without '\r': every byte followed by another ASCII byte is a cluster
            // of its own; the run's last byte too unless non-ASCII follows (it may take a mark).
            let r = find_non_ascii_or_cr(bytes, i, b);
            if r > i {
                let stop = if r < b && bytes[r] >= 0x80 { r - 1 } else { r };
                self.ascii_run(i, stop, sink);
                i = stop;
                if i >= b {
                    break;
                }
            }
            if bytes[i] == b'\r' {
                // GB3/GB4: "\r\n" is one cluster, and there is a boundary after it or after
                // a lone '\r' whatever follows.
                let end = if bytes.get(i + 1) == Some(&b'\n') && i + 1 < b {
                    i + 2
                } else {
                    i + 1
                };
                let weight = match self.unit {
                    Unit::CodePoints => end - i,
                    Unit::Graphemes => usize::from(end > lead && i < trail),
                };
                sink.push(Segment {
                    start: i,
                    end,
                    weight,
                    kind,
                });
                i = end;
                continue;
            }
            // One character, then either an ASCII run resumes or the slow path takes over.
            let ch = char_at(text, i).unwrap_or('\0');
            let n = i + ch.len_utf8();
            if is_simple(ch)
                && (n >= b || bytes[n] < 0x80 || is_simple(char_at(text, n).unwrap_or('\0')))
            {
                // Pleroma's trimmed whitespace weighs 0 (non-ASCII is never trimmed).
                let weight = if ch.is_ascii() {
                    usize::from(i >= lead && i < trail)
                } else {
                    1
                };
                sink.push(Segment {
                    start: i,
                    end: n,
                    weight,
                    kind,
                });
                i = n;
                continue;
            }
            let j = next_sure_boundary(text, i, b);
            for (offset, cluster) in text[i..j].grapheme_indices(true) {
                sink.push(self.grapheme(i + offset, i + offset + cluster.len()));
            }
            i = j;
        }
    }

    /// One-byte clusters `a..e`: weight 1, except Pleroma's trimmed whitespace (before `lead`
    /// or from `trail` on), which weighs 0. Elsewhere `lead` = 0 and `trail` = length.
    fn ascii_run(&self, a: usize, e: usize, sink: &mut impl Sink) {
        let lo = self.lead.clamp(a, e);
        let hi = self.trail.clamp(lo, e);
        if lo > a {
            sink.ascii_run(a, lo, 0);
        }
        if hi > lo {
            sink.ascii_run(lo, hi, 1);
        }
        if e > hi {
            sink.ascii_run(hi, e, 0);
        }
    }

    fn grapheme(&self, a: usize, e: usize) -> Segment {
        let weight = match self.unit {
            Unit::CodePoints if e - a == 1 => 1,
            Unit::CodePoints => self.text[a..e].chars().count(),
            Unit::Graphemes if e <= self.lead || a >= self.trail => 0,
            Unit::Graphemes => cluster_weight(&self.text[a..e]),
        };
        Segment {
            start: a,
            end: e,
            weight,
            kind: SegmentKind::Grapheme,
        }
    }

    fn entity_weight(&self, entity: &Entity, start: usize, end: usize) -> usize {
        let literal = |from: usize| match self.unit {
            Unit::CodePoints => self.text[from..end].chars().count(),
            Unit::Graphemes => grapheme_len(&self.text[from..end]),
        };
        if !self.mastodon {
            return literal(start);
        }
        match entity.charge {
            Charge::Literal => literal(start),
            // Widened at its end means a mark we did not expect: do not trust the mention.
            Charge::Fixed(w) if end == entity.end => w,
            Charge::Fixed(_) => literal(start),
            // The placeholder's 'x's absorb marks on either side, as the URL's ends did.
            Charge::Reserved => self.url_weight,
            Charge::Unsure { min_end } => {
                let rest = literal(min_end.clamp(start, end));
                literal(start).max(self.url_weight + rest)
            }
        }
    }

    // ---------------------------------------------------------------- cluster boundaries

    fn is_boundary(&self, i: usize) -> bool {
        let b = self.bytes;
        if i == 0 || i >= b.len() {
            return true;
        }
        if b[i] < 0x80 && b[i - 1] < 0x80 {
            return !(b[i - 1] == b'\r' && b[i] == b'\n');
        }
        GraphemeCursor::new(i, b.len(), true)
            .is_boundary(self.text, 0)
            .unwrap_or(true)
    }

    fn boundary_at_or_before(&self, i: usize) -> usize {
        if self.is_boundary(i) {
            return i;
        }
        GraphemeCursor::new(i, self.bytes.len(), true)
            .prev_boundary(self.text, 0)
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    fn boundary_at_or_after(&self, i: usize) -> usize {
        if self.is_boundary(i) {
            return i;
        }
        let len = self.bytes.len();
        GraphemeCursor::new(i, len, true)
            .next_boundary(self.text, 0)
            .ok()
            .flatten()
            .unwrap_or(len)
    }

    // ---------------------------------------------------------------- URLs

    /// A URL candidate whose "://" starts at `colon`.
    fn url_at_colon(&mut self, colon: usize, pos: usize) -> Option<Entity> {
        let b = self.bytes;
        if b.get(colon + 1) != Some(&b'/') || b.get(colon + 2) != Some(&b'/') {
            return None;
        }
        let start = protocol_start(b, colon)?;
        if start < pos {
            return None;
        }
        self.url_at(start, colon + 3)
    }

    /// Follows Mastodon's patched twitter-text `valid_url` regex
    /// (`config/initializers/twitter_regex.rb` + twitter-text `rb/lib/twitter-text/regex.rb`):
    /// `preceding-char (protocol://) domain (:port)? (/path)? (?query)?`.
    fn url_at(&mut self, start: usize, host_start: usize) -> Option<Entity> {
        let text = self.text;
        let b = self.bytes;

        // Host labels: runs of domain characters plus '-' and '_' (`valid_subdomain`),
        // separated by single dots.
        let mut labels = [(0usize, 0usize); MAX_LABELS];
        let mut n = 0;
        let mut overflow = false;
        let mut k = host_start;
        loop {
            let label_start = k;
            while let Some(c) = char_at(text, k) {
                if !is_label_char(c) {
                    break;
                }
                k += c.len_utf8();
            }
            if k == label_start {
                break;
            }
            if n < MAX_LABELS {
                labels[n] = (label_start, k);
                n += 1;
            } else {
                overflow = true;
            }
            if b.get(k) == Some(&b'.') && char_at(text, k + 1).is_some_and(is_label_char) {
                k += 1;
            } else {
                break;
            }
        }
        if n == 0 {
            return None; // "https://" followed by nothing host-like: plain text
        }
        let host_end = k;

        // `valid_domain` is `subdomain* domain_name tld`; the regex tries the most labels first,
        // so Mastodon's domain ends at the TLD of the *last* label that can be one, provided
        // every label before it is a valid subdomain and the one just before it a valid
        // domain name (no '_').
        let mut certain: Option<(usize, usize)> = None; // (label index, TLD end)
        let mut possible_after_certain = false;
        let mut earliest_tld_end: Option<usize> = None;
        let mut subdomains_ok = true;
        for idx in 1..n {
            let domain_label = labels[idx - 1];
            if subdomains_ok && label_is_valid(text, domain_label, false) {
                match self.tld(labels[idx]) {
                    Tld::Impossible => {}
                    Tld::Certain(end) => {
                        certain = Some((idx, end));
                        possible_after_certain = false;
                        earliest_tld_end.get_or_insert(end);
                    }
                    Tld::Possible(end) => {
                        possible_after_certain |= certain.is_some();
                        earliest_tld_end.get_or_insert(end);
                    }
                }
            }
            subdomains_ok &= label_is_valid(text, domain_label, true);
            if !subdomains_ok {
                break;
            }
        }

        // Our widest reading of the URL is the whole host, then port, path and query. A span
        // Mastodon might not read as one URL stops before any protocol inside it, so that one
        // gets judged on its own (Mastodon would see it if this one is not a URL).

        // twitter-text `valid_url_preceding_chars`: no ASCII letter or digit, '@', '$', '#'
        // (or their full-width forms) right before the URL. `foohttps://…` is no URL.
        let glued = prev_char(text, start).is_some_and(blocks_url);
        if glued || (earliest_tld_end.is_none() && !overflow) {
            // No TLD anywhere (`https://localhost/…`) or glued: Mastodon counts it literally.
            return Some(Entity {
                start,
                end: self.widest_end(host_start, host_end),
                kind: SegmentKind::Url,
                charge: Charge::Literal,
            });
        }

        if !overflow && !possible_after_certain {
            if let Some((idx, tld_end)) = certain {
                if !self.word_has_dot_before(start)
                    && domain_is_plain_ascii(b, &labels[..=idx], tld_end)
                {
                    let end = self.tail(tld_end);
                    // twitter-text: a t.co URL keeps only `https://t.co/slug` (slug ≤ 40).
                    if b[host_start..tld_end].eq_ignore_ascii_case(b"t.co")
                        && b.get(tld_end) == Some(&b'/')
                        && b.get(tld_end + 1).is_some_and(u8::is_ascii_alphanumeric)
                    {
                        let mut slug_end = tld_end + 1;
                        while slug_end < b.len() && b[slug_end].is_ascii_alphanumeric() {
                            slug_end += 1;
                        }
                        if slug_end - tld_end - 1 > MAX_TCO_SLUG_LENGTH {
                            return Some(Entity {
                                start,
                                end,
                                kind: SegmentKind::Url,
                                charge: Charge::Literal,
                            });
                        }
                        return Some(Entity {
                            start,
                            end: slug_end,
                            kind: SegmentKind::Url,
                            charge: Charge::Reserved,
                        });
                    }
                    // `is_valid_domain`: longer than 4096 characters is not a URL.
                    let charge = if end - start > MAX_URL_LENGTH
                        && text[start..end].chars().count() > MAX_URL_LENGTH
                    {
                        Charge::Literal
                    } else {
                        Charge::Reserved
                    };
                    return Some(Entity {
                        start,
                        end,
                        kind: SegmentKind::Url,
                        charge,
                    });
                }
            }
        }

        // Unsure. Mastodon's URL, if any, ends no earlier than after the earliest TLD it could
        // pick (after the last certain one, since it prefers more labels).
        let min_end = if overflow {
            host_start
        } else if let Some((_, tld_end)) = certain {
            self.tail(tld_end)
        } else {
            self.tail(earliest_tld_end.unwrap_or(host_start))
        };
        Some(Entity {
            start,
            end: self.widest_end(host_start, host_end),
            kind: SegmentKind::Url,
            charge: Charge::Unsure { min_end },
        })
    }

    /// twitter-text `valid_gTLD` / `valid_ccTLD` (each followed by `(?=[^0-9a-z@+-]|$)`) or
    /// `valid_punycode` (`xn--[0-9a-z]+`), read at the start of a label.
    fn tld(&self, (label_start, label_end): (usize, usize)) -> Tld {
        let b = self.bytes;
        let Some(first) = char_at(self.text, label_start) else {
            return Tld::Impossible;
        };
        if first.is_ascii_alphabetic() {
            if label_end - label_start > 4
                && b[label_start..label_start + 4].eq_ignore_ascii_case(b"xn--")
                && b[label_start + 4].is_ascii_alphanumeric()
            {
                let mut e = label_start + 4;
                while e < label_end && b[e].is_ascii_alphanumeric() {
                    e += 1;
                }
                // Punycode always matches, but IDNA may still reject it: not certain.
                return Tld::Possible(e);
            }
            // A TLD from the list must be followed by something other than a letter, digit,
            // '@', '+' or '-', so only the maximal run of letters can be it.
            let mut e = label_start;
            while e < label_end && b[e].is_ascii_alphabetic() {
                e += 1;
            }
            if !tld_lookahead_ok(self.text, e) {
                return Tld::Impossible;
            }
            if is_known_tld(&b[label_start..e]) {
                Tld::Certain(e)
            } else {
                Tld::Possible(e)
            }
        } else if !first.is_ascii() {
            // An IDN TLD ("みんな", "рф") could end anywhere in the label.
            Tld::Possible(label_start + first.len_utf8())
        } else {
            Tld::Impossible // digits, '-', '_': no TLD starts so
        }
    }

    /// After the domain: `(?::(\d+))?(/path)?(\?query)?`.
    fn tail(&self, mut i: usize) -> usize {
        let b = self.bytes;
        if b.get(i) == Some(&b':') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        if b.get(i) == Some(&b'/') {
            i = self.path(i + 1);
        }
        if b.get(i) == Some(&b'?') {
            if let Some(end) = self.query(i + 1) {
                i = end;
            }
        }
        i
    }

    /// Mastodon's `valid_url_path` (twitter_regex.rb): any run of path characters
    /// `[^\p{White_Space}<>()?]` and balanced parentheses (Wikipedia's `/Foo_(bar)`), ending
    /// on a path-ending character (so a trailing `.`, `,`, `!`, `)` … stays outside) or on a
    /// parenthesised group of twitter-text's original, narrower path characters (that is the
    /// `valid_url_balanced_parens` interpolated into `valid_url_path_ending_chars` before
    /// Mastodon redefines it). `start` is just after the '/'; the '/' alone is a path.
    fn path(&self, start: usize) -> usize {
        let mut j = start;
        let mut last = start;
        while let Some(c) = char_at(self.text, j) {
            if c == '(' {
                match self.balanced_parens(j) {
                    Some((end, ends_path)) => {
                        j = end;
                        if ends_path {
                            last = end;
                        }
                    }
                    None => break, // an unbalanced '(' ends the URL
                }
                continue;
            }
            if !is_path_char(c) {
                break;
            }
            j += c.len_utf8();
            if is_path_end_char(c) {
                last = j;
            }
        }
        last
    }

    /// `\( (?: G+ | G* \( G+ \) G* ) \)`: up to one nested level. Returns the end and whether
    /// the group is also made of twitter-text's original path characters (may end a path).
    fn balanced_parens(&self, open: usize) -> Option<(usize, bool)> {
        let b = self.bytes;
        let run = |from: usize| -> (usize, bool) {
            let mut k = from;
            let mut original = true;
            while let Some(c) = char_at(self.text, k) {
                if !is_path_char(c) {
                    break;
                }
                original &= is_original_path_char(c);
                k += c.len_utf8();
            }
            (k, original)
        };
        let (k1, o1) = run(open + 1);
        if b.get(k1) == Some(&b')') && k1 > open + 1 {
            return Some((k1 + 1, o1));
        }
        if b.get(k1) == Some(&b'(') {
            let (k2, o2) = run(k1 + 1);
            if k2 == k1 + 1 || b.get(k2) != Some(&b')') {
                return None;
            }
            let (k3, o3) = run(k2 + 1);
            if b.get(k3) != Some(&b')') {
                return None;
            }
            return Some((k3 + 1, o1 && o2 && o3));
        }
        None
    }

    /// `\?` then query characters, backed off to the last query-ending character
    /// (so `?q=1.` keeps the '.' outside). `None` if there is no ending character.
    fn query(&self, start: usize) -> Option<usize> {
        let mut j = start;
        let mut last = None;
        while let Some(c) = char_at(self.text, j) {
            if !is_query_char(c) {
                break;
            }
            j += c.len_utf8();
            if is_query_end_char(c) {
                last = Some(j);
            }
        }
        last
    }

    /// The whole host, then port, path and query, but stopping before any protocol inside.
    fn widest_end(&self, host_start: usize, host_end: usize) -> usize {
        self.cut_before_inner_protocol(host_start, self.tail(host_end))
    }

    /// The start of the first protocol (`https://`…) strictly inside `from..to`, or `to`.
    fn cut_before_inner_protocol(&self, from: usize, to: usize) -> usize {
        let b = self.bytes;
        let mut c = from;
        while c < to {
            if b[c] == b':' && b.get(c + 1) == Some(&b'/') && b.get(c + 2) == Some(&b'/') {
                if let Some(s) = protocol_start(b, c) {
                    if s >= from {
                        return s;
                    }
                }
            }
            c += 1;
        }
        to
    }

    /// Whether the word holding `s` has a '.' before `s`. If not, no earlier URL match of
    /// twitter-text (with or without protocol: every domain has a '.') can have swallowed the
    /// text at `s`: matches cannot cross ASCII whitespace, U+0085, '<' or '>' (neither path,
    /// query nor domain characters).
    fn word_has_dot_before(&mut self, s: usize) -> bool {
        let b = self.bytes;
        // Scan back from `s` to the word's start, or to the previous query's position, whose
        // answer still holds if no boundary lies in between.
        let floor = if s >= self.word_pos { self.word_pos } else { 0 };
        let mut i = s;
        let dot = loop {
            if i == floor {
                break floor != 0 && self.word_dot;
            }
            i -= 1;
            match b[i] {
                b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b'<' | b'>' => break false,
                0x85 if i > 0 && b[i - 1] == 0xC2 => break false,
                b'.' => break true,
                _ => {}
            }
        };
        self.word_pos = s;
        self.word_dot = dot;
        dot
    }

    // ---------------------------------------------------------------- mentions

    /// Mastodon's `Account::MENTION_RE`
    /// `(?<![=/[:word:]])@((USERNAME_RE)(?:@[[:word:]]+([.-]+[[:word:]]+)*)?)` with
    /// `USERNAME_RE = [a-z0-9_]+([.-]+[a-z0-9_]+)*` (case-insensitive), then the extractor's
    /// checks: not followed by '@', a Latin accent or "://" (twitter-text `end_mention_match`),
    /// domain at most 253 characters (`MAX_DOMAIN_LENGTH`).
    fn mention_at(&self, at: usize) -> Option<Entity> {
        let text = self.text;
        let b = self.bytes;
        let mut sure = true;
        if let Some(p) = prev_char(text, at) {
            if p.is_ascii() {
                if p.is_ascii_alphanumeric() || matches!(p, '_' | '=' | '/') {
                    return None;
                }
            } else if p.is_alphanumeric() {
                return None; // a word character: no mention (literal is always safe anyway)
            } else if !(p.is_whitespace() || is_common_punctuation(p)) {
                sure = false; // maybe a mark or connector, i.e. [[:word:]]: count literally
            }
        }
        let username_run = |from: usize| {
            let mut k = from;
            while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
                k += 1;
            }
            k
        };
        let mut end = username_run(at + 1);
        if end == at + 1 {
            return None;
        }
        end = extend_dotted(b, end, username_run);
        let username_end = end;
        let mut domain = None;
        if b.get(end) == Some(&b'@') {
            let domain_start = end + 1;
            let first = word_run(text, domain_start);
            if first > domain_start {
                end = extend_dotted(b, first, |from| word_run(text, from));
                domain = Some((domain_start, end));
            }
        }
        let after = &text[end..];
        if let Some(c) = after.chars().next() {
            if c == '@' || c == '＠' || is_latin_accent(c) || after.starts_with("://") {
                return None;
            }
        }
        let charge = match domain {
            None => Charge::Literal, // "@user" costs what it is
            Some((domain_start, domain_end)) => {
                let too_long =
                    text[domain_start..domain_end].chars().count() > MAX_MENTION_DOMAIN_LENGTH;
                if too_long || !sure || domain_may_continue(text, domain_end) {
                    Charge::Literal
                } else {
                    Charge::Fixed(username_end - at) // '@' + ASCII username
                }
            }
        };
        Some(Entity {
            start: at,
            end,
            kind: SegmentKind::Mention,
            charge,
        })
    }

    // ---------------------------------------------------------------- hashtags

    /// Roughly Mastodon's `Tag::HASHTAG_RE` (`(?<![=/)\p{Alnum}])#` then word characters and
    /// the separators `_ · ・ ZWNJ`, with a letter somewhere). Hashtags count literally
    /// everywhere; they are only atomic for cutting.
    fn hashtag_at(&self, at: usize) -> Option<Entity> {
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

// -------------------------------------------------------------------- helpers

/// The first position after the character at `from` (and at most `b`) where a simple
/// character follows a simple character (not "\r\n"): a cluster boundary whatever came before.
fn next_sure_boundary(text: &str, from: usize, b: usize) -> usize {
    let mut chars = text[from..b].char_indices();
    let Some((_, first)) = chars.next() else {
        return b;
    };
    let mut prev_simple = is_simple(first);
    let mut prev_cr = first == '\r';
    for (offset, c) in chars {
        let simple = is_simple(c);
        if prev_simple && simple && !(prev_cr && c == '\n') {
            return from + offset;
        }
        prev_simple = simple;
        prev_cr = c == '\r';
    }
    b
}

/// The first byte in `from..to` that is non-ASCII or '\r' (or `to`), eight bytes at a time.
fn find_non_ascii_or_cr(bytes: &[u8], from: usize, to: usize) -> usize {
    let mut i = from;
    while i + 8 <= to {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&bytes[i..i + 8]);
        let word = u64::from_le_bytes(chunk);
        if word & HIGH_BITS != 0 || has_byte(word, b'\r') {
            break;
        }
        i += 8;
    }
    while i < to && bytes[i] < 0x80 && bytes[i] != b'\r' {
        i += 1;
    }
    i
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `word` equals `byte` (the classic "has zero byte" test on `word ^ byte`).
#[inline]
fn has_byte(word: u64, byte: u8) -> bool {
    let x = word ^ (LOW_BITS * u64::from(byte));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS != 0
}

/// The first byte at or after `from` that is ':', '@' or '#' (or `bytes.len()`), eight
/// bytes at a time.
fn find_trigger(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i + 8 <= bytes.len() {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&bytes[i..i + 8]);
        let word = u64::from_le_bytes(chunk);
        if has_byte(word, b':') || has_byte(word, b'@') || has_byte(word, b'#') {
            break;
        }
        i += 8;
    }
    while i < bytes.len() && !matches!(bytes[i], b':' | b'@' | b'#') {
        i += 1;
    }
    i
}

/// Characters that are never joined to a neighbouring simple character: no UAX #29 rule
/// keeps two of them in one cluster ("\r\n" aside). They have Grapheme_Cluster_Break Other
/// (or Control), are not Prepend (GB9b), Extend, ZWJ or SpacingMark (GB9, GB9a), Regional
/// Indicators (GB12/13) or Hangul jamo/syllables (GB6-8). Emoji qualify: GB11 joins an emoji
/// only after a ZWJ, which is not simple. Common scripts only (Latin, Greek, Cyrillic, Hebrew
/// and Arabic letters, punctuation, CJK, kana, full-width forms, emoji); anything else takes
/// the slow path. Checked exhaustively against unicode-segmentation by `simple_chars_stand_alone`.
const SIMPLE_RANGES: [(u32, u32); 31] = [
    (0x00, 0x7F),
    (0xA0, 0xA8),
    (0xAA, 0xAC),
    (0xAF, 0x2FF),
    (0x370, 0x482),
    (0x48A, 0x52F),
    (0x5D0, 0x5EA),
    (0x5EF, 0x5F4),
    (0x620, 0x64A),
    (0x660, 0x66F),
    (0x671, 0x6D5),
    (0x1E00, 0x1EFF),
    (0x2010, 0x2027),
    (0x2030, 0x205F),
    (0x20A0, 0x20C0),
    (0x2600, 0x27BF),
    (0x3000, 0x3029),
    (0x3030, 0x303F),
    (0x3041, 0x3096),
    (0x309B, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xFF01, 0xFF9D),
    (0x1F300, 0x1F3FA), // 1F3FB-1F3FF (skin tones) are Extend
    (0x1F400, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F900, 0x1F9FF),
    (0x1FA70, 0x1FAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2EBEF),
    (0x30000, 0x3134F),
];

/// `SIMPLE_RANGES` below U+10000 as a bitmap (8 KiB): one load per character.
const SIMPLE_BMP: [u64; 1024] = {
    let mut bits = [0u64; 1024];
    let mut r = 0;
    while r < SIMPLE_RANGES.len() {
        let (lo, hi) = SIMPLE_RANGES[r];
        let mut cp = lo;
        while cp <= hi && cp < 0x10000 {
            bits[(cp >> 6) as usize] |= 1 << (cp & 63);
            cp += 1;
        }
        r += 1;
    }
    bits
};

#[inline]
fn is_simple(c: char) -> bool {
    let cp = c as u32;
    if cp < 0x10000 {
        return SIMPLE_BMP[(cp >> 6) as usize] >> (cp & 63) & 1 != 0;
    }
    SIMPLE_RANGES[23..]
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

/// Grapheme clusters of `s` as the servers count them (see [`cluster_weight`]).
fn grapheme_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.is_ascii() {
        return b.len() - b.windows(2).filter(|w| w == b"\r\n").count();
    }
    s.graphemes(true).map(cluster_weight).sum()
}

/// One cluster's weight: 1, plus one per Indic conjunct joined by rule GB9c (Unicode 15.1),
/// which Ruby's and Elixir's older Unicode tables may not apply: count the consonant after a
/// virama as its own cluster, erring on the high side.
fn cluster_weight(cluster: &str) -> usize {
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

fn is_virama(c: char) -> bool {
    matches!(
        c as u32,
        0x094D
            | 0x09CD
            | 0x0A4D
            | 0x0ACD
            | 0x0B4D
            | 0x0BCD
            | 0x0C4D
            | 0x0CCD
            | 0x0D3B
            | 0x0D3C
            | 0x0D4D
            | 0x0DCA
            | 0x1039
            | 0x103A
            | 0x17D2
            | 0x1A60
            | 0x1B44
            | 0x1BAA
            | 0x1BAB
            | 0xA8C4
            | 0xA953
            | 0xA9C0
            | 0xAAF6
            | 0x10A3F
            | 0x11046
            | 0x1107F
            | 0x110B9
            | 0x11133
            | 0x111C0
            | 0x11235
            | 0x112EA
            | 0x1134D
            | 0x11442
            | 0x114C2
            | 0x115BF
            | 0x1163F
            | 0x116B6
            | 0x1172B
            | 0x11839
            | 0x1193D
            | 0x1193E
            | 0x119E0
            | 0x11A34
            | 0x11A47
            | 0x11A99
            | 0x11C3F
            | 0x11D45
            | 0x11D97
            | 0x11F41
            | 0x11F42
    )
}

/// The whitespace we are sure Elixir's `String.trim` removes (it may remove more, e.g. NBSP:
/// then we count more).
fn is_trimmed_ws(c: char) -> bool {
    c.is_ascii() && is_trimmed_ws_byte(c as u8)
}

fn is_trimmed_ws_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

fn char_at(text: &str, i: usize) -> Option<char> {
    let b = *text.as_bytes().get(i)?;
    if b < 0x80 {
        return Some(char::from(b));
    }
    text.get(i..)?.chars().next()
}

fn prev_char(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// Mastodon's protocols (`((?:https?|dat|dweb|ipfs|ipns|ssb|gopher|gemini)://)`,
/// case-insensitive): the start of the one ending right before `colon`.
fn protocol_start(bytes: &[u8], colon: usize) -> Option<usize> {
    const PROTOCOLS: [&[u8]; 9] = [
        b"https", b"http", b"gopher", b"gemini", b"dweb", b"ipfs", b"ipns", b"dat", b"ssb",
    ];
    PROTOCOLS
        .iter()
        .find(|p| colon >= p.len() && bytes[colon - p.len()..colon].eq_ignore_ascii_case(p))
        .map(|p| colon - p.len())
}

/// twitter-text `valid_url_preceding_chars` is `[^A-Z0-9@＠$#＃\uFFFE\uFEFF\uFFFF]` (case-
/// insensitive, so also U+017F and U+212A, which fold to 's' and 'k').
fn blocks_url(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '@' | '$'
                | '#'
                | '＠'
                | '＃'
                | '\u{FFFE}'
                | '\u{FEFF}'
                | '\u{FFFF}'
                | '\u{17F}'
                | '\u{212A}'
        )
}

/// twitter-text `DOMAIN_VALID_CHARS`: anything but ASCII punctuation, spaces and controls,
/// directional marks, U+FFFE/FEFF/FFFF and the Unicode spaces.
fn is_domain_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    !matches!(
        c as u32,
        0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069
            | 0xFFFE | 0xFEFF | 0xFFFF
            | 0x85 | 0xA0 | 0x1680 | 0x180E | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
    )
}

fn is_label_char(c: char) -> bool {
    is_domain_char(c) || c == '-' || c == '_'
}

/// `valid_subdomain` label: starts and ends with a domain character; `valid_domain_name`
/// (`allow_underscore == false`) also has no '_'.
fn label_is_valid(text: &str, (start, end): (usize, usize), allow_underscore: bool) -> bool {
    let label = &text[start..end];
    let ok_ends = label.chars().next().is_some_and(is_domain_char)
        && label.chars().next_back().is_some_and(is_domain_char);
    ok_ends && (allow_underscore || !label.contains('_'))
}

/// For a certain reading we also need IDNA ToASCII (in `is_valid_domain`) to succeed, which we
/// can only promise for plain LDH labels of at most 63 characters.
fn domain_is_plain_ascii(bytes: &[u8], labels: &[(usize, usize)], tld_end: usize) -> bool {
    let last = labels.len() - 1;
    labels.iter().enumerate().all(|(i, &(start, end))| {
        let end = if i == last { tld_end } else { end };
        end - start <= MAX_LABEL_LENGTH
            && bytes[start..end]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// `(?=[^0-9a-z@+-]|$)` under Ruby's case-insensitive matching.
fn tld_lookahead_ok(text: &str, i: usize) -> bool {
    match char_at(text, i) {
        None => true,
        Some(c) if c.is_ascii() => !(c.is_ascii_alphanumeric() || matches!(c, '@' | '+' | '-')),
        Some(c) => !matches!(c, '\u{17F}' | '\u{212A}'),
    }
}

const PATH: u8 = 1;
const PATH_END: u8 = 2;
const QUERY: u8 = 4;
const QUERY_END: u8 = 8;

/// The classes below for ASCII, precomputed (the URL scanners' inner loops).
const ASCII_URL_CLASS: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8 as char;
        let alnum = c.is_ascii_alphanumeric();
        let space = matches!(c, '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' ');
        let path = !space && !matches!(c, '<' | '>' | '(' | ')' | '?');
        let path_end = path
            && !matches!(
                c,
                '!' | '*'
                    | '"'
                    | '\''
                    | ';'
                    | ':'
                    | '='
                    | ','
                    | '.'
                    | '$'
                    | '%'
                    | '['
                    | ']'
                    | '~'
                    | '&'
                    | '|'
                    | '@'
            );
        let query = alnum
            || matches!(
                c,
                '!' | '?'
                    | '*'
                    | '\''
                    | '('
                    | ')'
                    | ';'
                    | ':'
                    | '&'
                    | '='
                    | '+'
                    | '$'
                    | '/'
                    | '%'
                    | '#'
                    | '['
                    | ']'
                    | '-'
                    | '_'
                    | '.'
                    | ','
                    | '~'
                    | '|'
                    | '@'
                    | '^'
            );
        let query_end = alnum || matches!(c, '_' | '&' | '=' | '#' | '/' | '-');
        table[i] = (path as u8 * PATH)
            | (path_end as u8 * PATH_END)
            | (query as u8 * QUERY)
            | (query_end as u8 * QUERY_END);
        i += 1;
    }
    table
};

/// `[^\p{White_Space}<>()?]`
fn is_path_char(c: char) -> bool {
    if c.is_ascii() {
        return ASCII_URL_CLASS[c as usize] & PATH != 0;
    }
    !c.is_whitespace()
}

/// `[^\p{White_Space}()?!*"'「」<>;:=,.$%\[\]~&|@]`
fn is_path_end_char(c: char) -> bool {
    if c.is_ascii() {
        return ASCII_URL_CLASS[c as usize] & PATH_END != 0;
    }
    is_path_char(c)
        && !matches!(
            c,
            '!' | '*'
                | '"'
                | '\''
                | '「'
                | '」'
                | ';'
                | ':'
                | '='
                | ','
                | '.'
                | '$'
                | '%'
                | '['
                | ']'
                | '~'
                | '&'
                | '|'
                | '@'
        )
}

/// twitter-text's original `valid_general_url_path_chars` (ASCII set, Cyrillic, dashes, Latin
/// accents). Narrower than the real set only makes our URL end earlier, which is safe.
fn is_original_path_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || "!*';:=+,.$/%#[]_~&|@-".contains(c);
    }
    is_latin_accent(c) || matches!(c as u32, 0x0400..=0x052F | 0x2010..=0x2015)
}

/// Mastodon's `valid_url_query_chars`: `[a-z0-9!?*'();:&=+$/%#\[\]\-_.,~|@\^]` or UCHARS.
fn is_query_char(c: char) -> bool {
    if c.is_ascii() {
        return ASCII_URL_CLASS[c as usize] & QUERY != 0;
    }
    is_uchar(c)
}

/// Mastodon's `valid_url_query_ending_chars`: `[a-z0-9_&=#/\-]` or UCHARS.
fn is_query_end_char(c: char) -> bool {
    if c.is_ascii() {
        return ASCII_URL_CLASS[c as usize] & QUERY_END != 0;
    }
    is_uchar(c)
}

/// Mastodon's `UCHARS` (RFC 3987 ucschar plus private use).
fn is_uchar(c: char) -> bool {
    let cp = c as u32;
    matches!(cp, 0xA0..=0xD7FF | 0xE000..=0xF8FF | 0xF900..=0xFDCF | 0xFDF0..=0xFFEF)
        || (cp >= 0x10000 && (cp & 0xFFFF) <= 0xFFFD && !(0xE0000..=0xE0FFF).contains(&cp))
}

/// twitter-text `LATIN_ACCENTS`.
fn is_latin_accent(c: char) -> bool {
    matches!(
        c as u32,
        0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0xFF | 0x100..=0x24F | 0x253..=0x254 | 0x256..=0x257 | 0x259 | 0x25B
            | 0x263 | 0x268 | 0x26F | 0x272 | 0x289 | 0x28B | 0x2BB | 0x300..=0x36F | 0x1E00..=0x1EFF
    )
}

/// A subset of Ruby's `[[:word:]]` (letters, marks, numbers, connector punctuation): Rust's
/// alphanumerics minus the enclosed letters that are Alphabetic but symbols. Being a subset,
/// a mention we read is never longer than Mastodon's.
fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    c.is_alphanumeric() && !matches!(c as u32, 0x24B6..=0x24E9 | 0x1F130..=0x1F189)
}

fn word_run(text: &str, from: usize) -> usize {
    let mut k = from;
    while let Some(c) = char_at(text, k) {
        if !is_word_char(c) {
            break;
        }
        k += c.len_utf8();
    }
    k
}

/// `X([.-]+X)*` after a first run ending at `end`.
fn extend_dotted(bytes: &[u8], mut end: usize, run: impl Fn(usize) -> usize) -> usize {
    loop {
        let mut d = end;
        while d < bytes.len() && (bytes[d] == b'.' || bytes[d] == b'-') {
            d += 1;
        }
        if d == end {
            return end;
        }
        let r = run(d);
        if r == d {
            return end;
        }
        end = r;
    }
}

/// Whether Mastodon's `[[:word:]]` might read further than we did (a non-ASCII character we
/// did not take, right after the domain or after `[.-]+`).
fn domain_may_continue(text: &str, end: usize) -> bool {
    let rest = text[end..].trim_start_matches(['.', '-']);
    rest.chars()
        .next()
        .is_some_and(|c| !c.is_ascii() && !c.is_whitespace() && !is_common_punctuation(c))
}

/// Non-ASCII punctuation that is surely not `[[:word:]]`.
fn is_common_punctuation(c: char) -> bool {
    matches!(
        c,
        '“' | '”'
            | '‘'
            | '’'
            | '«'
            | '»'
            | '„'
            | '‚'
            | '‹'
            | '›'
            | '「'
            | '」'
            | '『'
            | '』'
            | '（'
            | '）'
            | '【'
            | '】'
            | '、'
            | '。'
            | '，'
            | '：'
            | '；'
            | '！'
            | '？'
            | '…'
            | '—'
            | '–'
            | '·'
            | '•'
    )
}

/// TLDs we are sure twitter-text's list (`conformance/tld_lib.yml`) has had for years, in
/// ASCII order. A TLD missing here is not "no TLD", only "unsure", so it costs a little more.
#[rustfmt::skip]
const KNOWN_TLDS: &[&str] = &[
    "ac", "academy", "ad", "ae", "aero", "af", "ag", "agency", "ai", "airforce", "al", "am", "amsterdam",
    "ao", "app", "aq", "ar", "army", "art", "as", "asia", "at", "au", "auction", "audio", "aw", "ax", "az",
    "ba", "baby", "band", "bank", "bar", "barcelona", "bayern", "bb", "bd", "be", "beer", "berlin", "best",
    "bf", "bg", "bh", "bi", "bike", "bio", "biz", "bj", "black", "blog", "blue", "bm", "bn", "bo", "br",
    "brussels", "bs", "bt", "budapest", "build", "business", "buzz", "bw", "by", "bz", "ca", "cafe", "camera",
    "camp", "capetown", "capital", "cards", "care", "career", "careers", "casa", "cash", "cat", "cc", "cd",
    "center", "cf", "cg", "ch", "chat", "church", "ci", "city", "ck", "cl", "click", "clinic", "clothing",
    "cloud", "club", "cm", "cn", "co", "coach", "codes", "coffee", "college", "com", "community", "company",
    "computer", "consulting", "cool", "coop", "cr", "credit", "cu", "cv", "cw", "cx", "cy", "cymru", "cz",
    "dance", "date", "dating", "de", "deals", "design", "dev", "digital", "directory", "dj", "dk", "dm", "do",
    "dog", "domains", "download", "durban", "dz", "earth", "ec", "edu", "education", "ee", "eg", "email",
    "energy", "engineering", "er", "es", "estate", "et", "eu", "events", "exchange", "expert", "express",
    "family", "fans", "farm", "fashion", "fi", "film", "finance", "fish", "fit", "fitness", "fj", "fk", "fm",
    "fo", "football", "forum", "foundation", "fr", "fund", "fyi", "ga", "gallery", "game", "games", "garden",
    "gd", "ge", "gf", "gg", "gh", "gi", "gift", "gifts", "gl", "global", "gm", "gmbh", "gn", "gold", "golf",
    "gov", "gp", "gq", "gr", "graphics", "green", "group", "gs", "gt", "gu", "guide", "guru", "gw", "gy",
    "hamburg", "haus", "health", "help", "hk", "hm", "hn", "holiday", "horse", "host", "hosting", "house",
    "hr", "ht", "hu", "id", "ie", "il", "im", "in", "industries", "info", "ink", "institute", "int",
    "international", "io", "iq", "ir", "is", "istanbul", "it", "je", "jm", "jo", "jobs", "joburg", "jp", "ke",
    "kg", "kh", "ki", "kitchen", "kiwi", "km", "kn", "koeln", "kp", "kr", "kw", "ky", "kyoto", "kz", "la",
    "land", "lat", "law", "lawyer", "lb", "lc", "legal", "lgbt", "li", "life", "limited", "link", "live",
    "lk", "lol", "london", "love", "lr", "ls", "lt", "ltd", "lu", "lv", "ly", "ma", "madrid", "management",
    "market", "marketing", "mc", "md", "me", "media", "melbourne", "men", "menu", "mg", "mh", "mil", "mk",
    "ml", "mm", "mn", "mo", "mobi", "moe", "money", "moscow", "movie", "mp", "mq", "mr", "ms", "mt", "mu",
    "museum", "mv", "mw", "mx", "my", "mz", "na", "nagoya", "name", "nc", "ne", "net", "network", "new",
    "news", "nf", "ng", "ngo", "ni", "ninja", "nl", "no", "np", "nr", "nrw", "nu", "nyc", "nz", "okinawa",
    "om", "one", "ong", "onl", "online", "ooo", "org", "osaka", "pa", "page", "paris", "partners", "parts",
    "party", "pe", "pet", "pf", "pg", "ph", "photo", "photography", "photos", "pics", "pictures", "pink",
    "pizza", "pk", "pl", "place", "plus", "pm", "pn", "post", "pr", "press", "pro", "properties", "property",
    "ps", "pt", "pub", "pw", "py", "qa", "quebec", "quest", "re", "realty", "recipes", "red", "rent",
    "rentals", "repair", "report", "rest", "restaurant", "review", "reviews", "ro", "rocks", "rs", "ru",
    "ruhr", "run", "rw", "ryukyu", "sa", "saarland", "sale", "sarl", "sb", "sc", "school", "science", "scot",
    "sd", "se", "security", "services", "sg", "sh", "shiksha", "shoes", "shop", "si", "site", "sk", "sl",
    "sm", "sn", "so", "soccer", "social", "software", "solutions", "space", "sr", "srl", "st", "store",
    "stream", "studio", "study", "style", "supply", "support", "sv", "swiss", "sx", "sy", "sydney", "systems",
    "sz", "tattoo", "tax", "taxi", "tc", "td", "team", "tech", "technology", "tel", "tennis", "tf", "tg",
    "th", "theater", "theatre", "tickets", "tips", "tirol", "tj", "tk", "tl", "tm", "tn", "to", "today",
    "tokyo", "tools", "top", "tours", "town", "toys", "tr", "trade", "training", "travel", "tt", "tube", "tv",
    "tw", "tz", "ua", "ug", "uk", "university", "uno", "us", "uy", "uz", "va", "vacations", "vc", "ve",
    "vegas", "ventures", "vet", "vg", "vi", "video", "vip", "vision", "vlaanderen", "vn", "vodka", "vote",
    "voting", "vu", "wales", "wang", "watch", "webcam", "website", "wedding", "wf", "wien", "wiki", "win",
    "wine", "work", "works", "world", "ws", "wtf", "xin", "xxx", "xyz", "ye", "yoga", "yokohama", "yt", "za",
    "zm", "zone", "zuerich", "zw",
];

/// A TLD packed big-endian into a `u128` (zero-padded), so that integer order is string order.
const fn tld_key(tld: &[u8]) -> u128 {
    let mut key = 0u128;
    let mut i = 0;
    while i < 16 {
        key <<= 8;
        if i < tld.len() {
            key |= tld[i].to_ascii_lowercase() as u128;
        }
        i += 1;
    }
    key
}

const KNOWN_TLD_KEYS: [u128; KNOWN_TLDS.len()] = {
    let mut keys = [0u128; KNOWN_TLDS.len()];
    let mut i = 0;
    while i < keys.len() {
        keys[i] = tld_key(KNOWN_TLDS[i].as_bytes());
        i += 1;
    }
    keys
};

/// `candidate` is a run of ASCII letters (no NUL, which would pack like padding).
fn is_known_tld(candidate: &[u8]) -> bool {
    candidate.len() <= 16 && KNOWN_TLD_KEYS.binary_search(&tld_key(candidate)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Software; 5] = [
        Software::Mastodon,
        Software::Gotosocial,
        Software::Pleroma,
        Software::Akkoma,
        Software::Generic,
    ];

    fn counter(software: Software) -> Counter {
        Counter::new(software, 500, 23)
    }

    /// Segments are contiguous, non-empty, on char boundaries, cover the text, and add up to `count`.
    fn assert_segments_consistent(c: &Counter, text: &str) {
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

    fn check(software: Software, text: &str, expected: usize) {
        let c = counter(software);
        assert_eq!(c.count(text), expected, "{software:?} count of {text:?}");
        assert_segments_consistent(&c, text);
    }

    /// (text, Mastodon, GoToSocial (= Generic), Pleroma (= Akkoma)).
    fn check_row(text: &str, mastodon: usize, gotosocial: usize, pleroma: usize) {
        check(Software::Mastodon, text, mastodon);
        check(Software::Gotosocial, text, gotosocial);
        check(Software::Generic, text, gotosocial);
        check(Software::Pleroma, text, pleroma);
        check(Software::Akkoma, text, pleroma);
    }

    #[test]
    fn unicode_table() {
        let rows: &[(&str, usize, usize, usize)] = &[
            ("", 0, 0, 0),
            ("hello world", 11, 11, 11),
            // family: woman ZWJ woman ZWJ girl = 5 code points, one cluster (GB11)
            ("\u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}", 1, 5, 1),
            // thumbs up + skin tone modifier (Extend)
            ("\u{1F44D}\u{1F3FD}", 1, 2, 1),
            // two flags: regional indicators pair up (GB12/13)
            ("\u{1F1E9}\u{1F1EA}\u{1F1EB}\u{1F1F7}", 2, 4, 2),
            // transgender flag, Mastodon's own spec case: one character
            ("\u{1F3F3}\u{FE0F}\u{200D}\u{26A7}\u{FE0F}", 1, 5, 1),
            // e + combining acute
            ("e\u{301}", 1, 2, 1),
            ("cafe\u{301} au lait", 12, 13, 12),
            ("日本語のテキスト", 8, 8, 8),
            // Arabic: 5 + space + 7 letters, no marks
            ("مرحبا بالعالم", 13, 13, 13),
            // Hebrew with points: shin+qamats+shin dot, lamed, vav+holam, final mem
            ("\u{5E9}\u{5B8}\u{5C1}\u{5DC}\u{5D5}\u{5B9}\u{5DD}", 4, 7, 4),
            // CR LF is one cluster (GB3), two code points
            ("a\r\nb", 3, 4, 3),
            // Devanagari conjunct ka+virama+ssa: one cluster since Unicode 15.1 (GB9c), two
            // before; we charge two (Ruby/Elixir may be older), never one.
            ("\u{915}\u{94D}\u{937}", 2, 3, 2),
            ("#rust is fun", 12, 12, 12),
            // Pleroma trims; the others count the spaces
            ("  hello  ", 9, 9, 5),
            ("\r\n hi \t", 6, 7, 2),
        ];
        for &(text, m, g, p) in rows {
            check_row(text, m, g, p);
        }
    }

    #[test]
    fn url_table() {
        let a476 = "a".repeat(476);
        let b30 = "b".repeat(30);
        let spaced = format!("{a476} http://{b30}.com/example");
        let glued = format!("{a476}http://{b30}.com/example");
        let long_spec = format!("http://example.com/valid?{}", "#foo?".repeat(1000));
        let at_limit = format!("https://example.com/{}", "a".repeat(4076));
        let over_limit = format!("https://example.com/{}", "a".repeat(4077));
        let rows: Vec<(&str, usize, usize)> = vec![
            // (text, Mastodon, literal code points = graphemes here)
            // "see " + URL (8 + 11 + 5 + 8 = 32 literal)
            ("see https://example.com/path?q=1&r=2", 27, 36),
            // fragment is part of the path: 8 + 11 + 15
            ("https://example.com/page#section-2", 23, 34),
            // balanced parentheses inside, the unbalanced outer ')' outside: 1 + 23 + 1
            ("(https://en.wikipedia.org/wiki/Foo_(bar))", 25, 41),
            // trailing '.', '!', ')', '?' are not part of the URL (8 + 11 + 17 = 36, + 1)
            ("Visit https://example.com/foo.", 30, 30),
            ("https://example.com/some/longer/path!", 24, 37),
            ("https://example.com/some/longer/path)", 24, 37),
            ("https://example.com/some/longer/path?", 24, 37),
            ("https://example.com/some/longer/path,", 24, 37),
            // query ending in '.': the '.' is outside: 8 + 11 + 7 + 15, + 1
            ("https://example.com/search?q=rust&lang=en.", 24, 42),
            ("https://example.com:8443/admin/panel/settings", 23, 45),
            ("HTTPS://EXAMPLE.COM/SOME/LONG/PATH", 23, 34),
            // IDN: Mastodon gives 23 if libidn accepts the domain, else 20; we charge the larger
            ("https://münchen.de/x", 23, 20),
            // glued to the word before: twitter-text does not extract it, literal even when short
            ("foohttps://example.com/a", 24, 24),
            ("xhttps://a.co", 13, 13),
            // glued to a non-ASCII letter is *not* glued for twitter-text: "mixed: 日本" + 23
            ("mixed: 日本https://example.com/a/b/c/d/e/f/g", 32, 42),
            ("مرحبا https://example.com", 29, 25),
            // Mastodon also links gemini:// (twitter_regex.rb)
            ("gemini://a.io", 23, 13),
            // unknown TLD: maybe a URL (23), maybe literal (12): charge 23
            ("https://a.zz", 23, 12),
            // unknown TLD, long: literal 38 ≥ 23
            ("https://example.notatld/some/long/path", 38, 38),
            // "evil" may or may not be a TLD: 23 + ".evil/path" (10) > literal 29
            ("https://example.com.evil/path", 33, 29),
            // no TLD at all: not a URL for twitter-text
            ("https://localhost:8080/x", 24, 24),
            // t.co keeps only the slug: 23 + "/def"
            ("https://t.co/abc/def", 27, 20),
            // a URL inside a URL's path is part of it
            (
                "https://web.archive.org/web/2020/https://example.com/",
                23,
                53,
            ),
            // a protocol-less "example.com/…" swallows the https URL: all literal (12 + 38)
            ("example.com/https://example.org/long/path/to/thing", 50, 50),
            // Mastodon's spec: spaced URL counts 23, glued counts in full
            (&spaced, 500, 526),
            (&glued, 525, 525),
            // Mastodon's spec: overly long URL (5024 chars, > 4096) counts in full, plus the '?'
            (&long_spec, 5025, 5025),
            // exactly 4096 characters is still a URL; 4097 is not
            (&at_limit, 23, 4096),
            (&over_limit, 4097, 4097),
        ];
        for (text, mastodon, literal) in rows {
            check_row(text, mastodon, literal, literal);
        }
    }

    #[test]
    fn mention_table() {
        let b249 = "b".repeat(249);
        let b254 = "b".repeat(254);
        let at_253 = format!("@alice@{b249}.com"); // domain: 253 characters
        let at_258 = format!("@alice@{b254}.com"); // domain: 258 characters
        let spec = format!("{} @alice@{}.com", "a".repeat(475), "b".repeat(30));
        let rows: Vec<(&str, usize, usize)> = vec![
            // "@alice" + " hi"; literal 21 + 3
            ("@alice@example.social hi", 9, 24),
            ("@bob hi", 7, 7),
            ("@Bob.Smith@mastodon.example.org", 10, 31),
            // after '/' or '=' it is no mention (MENTION_RE lookbehind)
            ("x/@alice@example.social", 23, 23),
            ("a=@alice@example.social", 23, 23),
            // followed by '@': rejected by end_mention_match
            ("@alice@example.social@x", 23, 23),
            (&at_253, 6, 260),
            // Mastodon's spec: overly long domain counts both parts
            (&at_258, 265, 265),
            // Mastodon's spec: 475 + " " + "@alice"
            (&spec, 482, 517),
        ];
        for (text, mastodon, literal) in rows {
            check_row(text, mastodon, literal, literal);
        }
    }

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

    #[test]
    fn segment_kinds_and_spans() {
        let text = "see https://example.com/x and @alice@example.social #tag.";
        let c = counter(Software::Mastodon);
        let entities: Vec<(SegmentKind, &str, usize)> = c
            .segments(text)
            .into_iter()
            .filter(|s| s.kind != SegmentKind::Grapheme)
            .map(|s| (s.kind, &text[s.start..s.end], s.weight))
            .collect();
        assert_eq!(
            entities,
            vec![
                (SegmentKind::Url, "https://example.com/x", 23),
                (SegmentKind::Mention, "@alice@example.social", 6),
                (SegmentKind::Hashtag, "#tag", 4),
            ]
        );
        let wiki = "(https://en.wikipedia.org/wiki/Foo_(bar))";
        let url: Vec<&str> = c
            .segments(wiki)
            .iter()
            .filter(|s| s.kind == SegmentKind::Url)
            .map(|s| &wiki[s.start..s.end])
            .collect();
        assert_eq!(url, vec!["https://en.wikipedia.org/wiki/Foo_(bar)"]);
        // URLs are atomic for every software, even where they count literally
        let g = counter(Software::Gotosocial);
        let seg = g.segments("go https://example.com/x now");
        assert_eq!(
            seg.iter()
                .filter(|s| s.kind == SegmentKind::Url)
                .map(|s| s.weight)
                .collect::<Vec<_>>(),
            vec![21]
        );
        // Pleroma: leading/trailing whitespace weighs 0
        let p = counter(Software::Pleroma);
        let weights: Vec<usize> = p.segments("  hi  ").iter().map(|s| s.weight).collect();
        assert_eq!(weights, vec![0, 0, 1, 1, 0, 0]);
        // a combining mark after a URL stays with it (never cut inside a cluster)
        let marked = "https://example.com\u{301} x";
        let seg = c.segments(marked);
        assert_eq!(
            &marked[seg[0].start..seg[0].end],
            "https://example.com\u{301}"
        );
        assert_eq!(c.count(marked), 25);
        // a glued hashtag before a URL: Mastodon's tag is "foo", the URL is glued (literal)
        assert_eq!(c.count("#foohttps://example.com/x"), 25);
        // but after a non-ASCII letter the URL is not glued: "#café" + 23
        assert_eq!(c.count("#cafégemini://a.io"), 28);
        assert_eq!(
            counter(Software::Gotosocial).count("#cafégemini://a.io"),
            18
        );
        assert_eq!(c.count("#https://example.com/x"), 22);
    }

    #[test]
    fn simple_chars_stand_alone() {
        // The fast path's premise: between two simple characters there is always a cluster
        // boundary, whatever precedes them. So a simple character must not be Prepend,
        // Extend, ZWJ or SpacingMark (probe "a{c}a"), a Regional Indicator, or Hangul that
        // pairs with L, V or LV jamo/syllables.
        let count = |s: &str| s.graphemes(true).count();
        assert!(SIMPLE_RANGES.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(SIMPLE_RANGES[..23].iter().all(|r| r.1 < 0x10000));
        assert!(SIMPLE_RANGES[23..].iter().all(|r| r.0 >= 0x10000));
        let mut checked = 0;
        for cp in 0u32..0x110000 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let in_ranges = SIMPLE_RANGES
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&cp));
            assert_eq!(is_simple(c), in_ranges, "U+{cp:04X}");
            if !in_ranges || c == '\r' || c == '\n' {
                continue;
            }
            checked += 1;
            for (probe, expected) in [
                (format!("{c}{c}"), 2),
                (format!("a{c}a"), 3),
                (format!("\u{4E00}{c}\u{1F600}"), 3),
                (format!("\u{1F600}{c}\u{915}"), 3),
                (format!("\u{1F1E6}{c}\u{1F1E6}"), 3),
                (format!("\u{1100}{c}\u{1161}"), 3),
                (format!("\u{AC00}{c}\u{11A8}"), 3),
            ] {
                assert_eq!(count(&probe), expected, "U+{cp:04X} in {probe:?}");
            }
        }
        assert!(checked > 90_000, "{checked}");
    }

    #[test]
    fn ascii_url_classes_match_the_regexes() {
        for b in 0u8..128 {
            let c = char::from(b);
            let path = !c.is_whitespace() && !"<>()?".contains(c);
            assert_eq!(is_path_char(c), path, "{c:?}");
            assert_eq!(
                is_path_end_char(c),
                path && !"()?!*\"'<>;:=,.$%[]~&|@".contains(c),
                "{c:?}"
            );
            let alnum = c.is_ascii_alphanumeric();
            assert_eq!(
                is_query_char(c),
                alnum || "!?*'();:&=+$/%#[]-_.,~|@^".contains(c),
                "{c:?}"
            );
            assert_eq!(is_query_end_char(c), alnum || "_&=#/-".contains(c), "{c:?}");
        }
    }

    #[test]
    fn known_tlds_sorted_lowercase() {
        assert!(
            KNOWN_TLDS.windows(2).all(|w| w[0] < w[1]),
            "KNOWN_TLDS must be sorted and unique"
        );
        assert!(KNOWN_TLDS
            .iter()
            .all(|t| t.bytes().all(|b| b.is_ascii_lowercase()) && t.len() <= 16));
        assert!(is_known_tld(b"COM") && is_known_tld(b"social") && !is_known_tld(b"notatld"));
        assert!(KNOWN_TLD_KEYS.windows(2).all(|w| w[0] < w[1]));
        assert!(KNOWN_TLDS.iter().all(|t| is_known_tld(t.as_bytes())));
        assert!(!is_known_tld(b"") && !is_known_tld(b"comm"));
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

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 0..40).prop_map(|pieces| pieces.concat())
    }

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

        /// The composer may cut at any segment boundary: each one is a cluster boundary of
        /// the whole text, and each Grapheme segment is exactly one cluster.
        #[test]
        fn segment_boundaries_are_cluster_boundaries(t in text()) {
            let c = counter(Software::Mastodon);
            for s in c.segments(&t) {
                let mut cursor = GraphemeCursor::new(s.start, t.len(), true);
                prop_assert!(cursor.is_boundary(&t, 0).unwrap(), "cut inside a cluster at {} in {:?}", s.start, t);
                if s.kind == SegmentKind::Grapheme {
                    prop_assert_eq!(t[s.start..s.end].graphemes(true).count(), 1, "{:?}", &t[s.start..s.end]);
                }
            }
        }

        /// A protocol twitter-text may read as a URL start (not glued to an ASCII word, a
        /// host character after "://") is always inside a Url segment, never in a hashtag,
        /// a mention or plain text, so Mastodon's 23 is never missed.
        #[test]
        fn url_starts_are_never_swallowed(t in text()) {
            let segs = counter(Software::Mastodon).segments(&t);
            let b = t.as_bytes();
            for (colon, _) in t.match_indices("://") {
                let Some(start) = protocol_start(b, colon) else { continue };
                if prev_char(&t, start).is_some_and(blocks_url) || !char_at(&t, colon + 3).is_some_and(is_label_char) {
                    continue;
                }
                let seg = segs.iter().find(|s| s.start <= start && start < s.end).unwrap();
                prop_assert_eq!(seg.kind, SegmentKind::Url, "protocol at {} in {:?}: {:?}", start, t, seg);
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

        /// A plain spaced URL with a known TLD is one URL segment charged 23 on Mastodon,
        /// however long, and counted literally elsewhere.
        #[test]
        fn plain_urls_cost_23(host in "[a-z][a-z0-9]{0,20}", tld in prop::sample::select(vec!["com", "org", "social", "de"]), path in "[a-zA-Z0-9/_-]{0,60}", words in "[a-z]{1,10}") {
            let url = format!("https://{host}.{tld}/{path}");
            let t = format!("{words} {url} {words}");
            let m = counter(Software::Mastodon);
            let segs = m.segments(&t);
            let url_segs: Vec<&Segment> = segs.iter().filter(|s| s.kind == SegmentKind::Url).collect();
            prop_assert_eq!(url_segs.len(), 1);
            prop_assert_eq!(&t[url_segs[0].start..url_segs[0].end], url.as_str());
            prop_assert_eq!(m.count(&t), 2 * words.len() + 2 + 23);
            prop_assert_eq!(counter(Software::Gotosocial).count(&t), t.chars().count());
        }

        /// Mastodon never charges a mention more than its literal length.
        #[test]
        fn mentions_never_cost_more(user in "[a-z0-9_]{1,15}", domain in "[a-z]{1,20}\\.[a-z]{2,6}") {
            let t = format!("hi @{user}@{domain}!");
            let m = counter(Software::Mastodon);
            prop_assert!(m.count(&t) <= t.chars().count());
            prop_assert_eq!(m.count(&t), 3 + 1 + user.len() + 1);
        }
    }
}
