//! The one pass over a text: finds the entities (URLs, mentions, hashtags) left to right,
//! cuts the text between them into grapheme clusters, and hands every segment, weighed by
//! the software's rules, to a sink. The grammars of the entities are in `url.rs`,
//! `mention.rs` and `hashtag.rs`; the weights in `rules.rs`.

use unicode_segmentation::{GraphemeCursor, UnicodeSegmentation};

use super::rules::{self, cluster_weight, grapheme_len, Charge, Unit};
use super::tables::is_simple;
use super::url::WordDots;
use super::{Counter, Segment, SegmentKind, Software};

/// An entity one of the grammars found, before it is widened to cluster boundaries.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entity {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) kind: SegmentKind,
    pub(super) charge: Charge,
}

/// Where segments go: a vector for `segments`, a running sum for `count`, a vector that
/// needs only the first ones for `segments_beyond`.
pub(super) trait Sink {
    fn push(&mut self, segment: Segment);
    /// The one-byte clusters `start..end`, each weighing `weight`.
    fn ascii_run(&mut self, start: usize, end: usize, weight: usize);
    /// Whether the sink needs no more segments: the scanner then stops between two of them,
    /// so what it pushed is the start of what it would have pushed.
    #[inline]
    fn done(&self) -> bool {
        false
    }
}

pub(super) struct VecSink<'v>(pub(super) &'v mut Vec<Segment>);

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

/// Segments into a vector until their weights add up to more than `bound`.
pub(super) struct BoundedVecSink<'v> {
    pub(super) out: &'v mut Vec<Segment>,
    pub(super) total: usize,
    pub(super) bound: usize,
}

impl Sink for BoundedVecSink<'_> {
    #[inline]
    fn push(&mut self, segment: Segment) {
        self.total += segment.weight;
        self.out.push(segment);
    }
    #[inline]
    fn ascii_run(&mut self, start: usize, end: usize, weight: usize) {
        self.total += (end - start) * weight;
        VecSink(self.out).ascii_run(start, end, weight);
    }
    #[inline]
    fn done(&self) -> bool {
        self.total > self.bound
    }
}

pub(super) struct SumSink(pub(super) usize);

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
pub(super) struct Scanner<'a> {
    pub(super) text: &'a str,
    pub(super) bytes: &'a [u8],
    unit: Unit,
    mastodon: bool,
    url_weight: usize,
    /// Pleroma/Akkoma trim the text: clusters wholly before `lead` or after `trail` weigh 0.
    lead: usize,
    trail: usize,
    /// Whether the word before a URL has a '.' (see [`WordDots`]).
    pub(super) words: WordDots,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(counter: &Counter, text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let (lead, trail) = rules::counted_span(counter.software, bytes);
        Scanner {
            text,
            bytes,
            unit: counter.unit(),
            mastodon: counter.software == Software::Mastodon,
            url_weight: counter.characters_reserved_per_url(),
            lead,
            trail,
            words: WordDots::default(),
        }
    }

    pub(super) fn run(mut self, sink: &mut impl Sink) {
        let len = self.bytes.len();
        let mut pos = 0; // everything before `pos` has been emitted; `pos` is a cluster boundary
        let mut i = 0;
        loop {
            if sink.done() {
                return;
            }
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
                    if sink.done() {
                        return;
                    }
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
        while i < b && !sink.done() {
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
                i = self.emit_cr(i, b, sink);
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

    /// Emits the '\r' at `i` (before `b`), with the '\n' after it if there is one: GB3/GB4,
    /// "\r\n" is one cluster, and there is a boundary after it or after a lone '\r' whatever
    /// follows. Returns where the next cluster starts.
    #[inline]
    fn emit_cr(&self, i: usize, b: usize, sink: &mut impl Sink) -> usize {
        let end = if self.bytes.get(i + 1) == Some(&b'\n') && i + 1 < b {
            i + 2
        } else {
            i + 1
        };
        let weight = match self.unit {
            Unit::CodePoints => end - i,
            Unit::Graphemes => usize::from(end > self.lead && i < self.trail),
        };
        sink.push(Segment {
            start: i,
            end,
            weight,
            kind: SegmentKind::Grapheme,
        });
        end
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
        entity
            .charge
            .on_mastodon(start, end, entity.end, self.url_weight, literal)
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
}

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

/// The first byte in `from..to` that is non-ASCII or '\r' (or `to`).
fn find_non_ascii_or_cr(bytes: &[u8], from: usize, to: usize) -> usize {
    find_byte(
        bytes,
        (from, to),
        |word| word & HIGH_BITS != 0 || has_byte(word, b'\r'),
        |byte| byte >= 0x80 || byte == b'\r',
    )
}

/// The first byte at or after `from` that is ':', '@' or '#' (or `bytes.len()`).
fn find_trigger(bytes: &[u8], from: usize) -> usize {
    find_byte(
        bytes,
        (from, bytes.len()),
        |word| has_byte(word, b':') || has_byte(word, b'@') || has_byte(word, b'#'),
        |byte| matches!(byte, b':' | b'@' | b'#'),
    )
}

/// The first byte in `from..to` that `wanted` accepts (or `to`), eight bytes at a time while
/// `may_hold` says that none of the eight (as a little-endian `u64`) can be one.
#[inline(always)]
fn find_byte(
    bytes: &[u8],
    (from, to): (usize, usize),
    may_hold: impl Fn(u64) -> bool,
    wanted: impl Fn(u8) -> bool,
) -> usize {
    let mut i = from;
    while i + 8 <= to {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&bytes[i..i + 8]);
        if may_hold(u64::from_le_bytes(chunk)) {
            break;
        }
        i += 8;
    }
    while i < to && !wanted(bytes[i]) {
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

pub(super) fn char_at(text: &str, i: usize) -> Option<char> {
    let b = *text.as_bytes().get(i)?;
    if b < 0x80 {
        return Some(char::from(b));
    }
    text.get(i..)?.chars().next()
}

pub(super) fn prev_char(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// The end of the run of characters from `from` that `keep` accepts.
pub(super) fn run_while(text: &str, from: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut k = from;
    while let Some(c) = char_at(text, k) {
        if !keep(c) {
            break;
        }
        k += c.len_utf8();
    }
    k
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::test_support::{check_row, counter, text};
    use super::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

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
    }
}
