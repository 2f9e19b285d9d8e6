//! Mentions as Mastodon finds them (`Account::MENTION_RE` in `app/models/account.rb`, used by
//! `Extractor.extract_mentions_or_lists_with_indices` in `app/lib/extractor.rb`), and what it
//! charges for one: `@` plus the username, the domain dropped.

use super::rules::Charge;
use super::scanner::{prev_char, run_while, Entity, Scanner};
use super::tables::{is_common_punctuation, is_latin_accent, is_word_char};
use super::SegmentKind;

/// Mastodon `Extractor::MAX_DOMAIN_LENGTH`: a mention with a longer domain is not a mention.
const MAX_MENTION_DOMAIN_LENGTH: usize = 253;

impl Scanner<'_> {
    /// Mastodon's `Account::MENTION_RE`
    /// `(?<![=/[:word:]])@((USERNAME_RE)(?:@[[:word:]]+([.-]+[[:word:]]+)*)?)` with
    /// `USERNAME_RE = [a-z0-9_]+([.-]+[a-z0-9_]+)*` (case-insensitive), then the extractor's
    /// checks: not followed by '@', a Latin accent or "://" (twitter-text `end_mention_match`),
    /// domain at most 253 characters (`MAX_DOMAIN_LENGTH`).
    pub(super) fn mention_at(&self, at: usize) -> Option<Entity> {
        let sure = self.mention_may_follow(at)?;
        let text = self.text;
        let b = self.bytes;
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
        if ends_no_mention(&text[end..]) {
            return None;
        }
        let charge = match domain {
            None => Charge::Literal, // "@user" costs what it is
            Some(domain) if !sure || self.domain_is_doubtful(domain) => Charge::Literal,
            Some(_) => Charge::Fixed(username_end - at), // '@' + ASCII username
        };
        Some(Entity {
            start: at,
            end,
            kind: SegmentKind::Mention,
            charge,
        })
    }

    /// `MENTION_RE`'s lookbehind `(?<![=/[:word:]])` on the character before the '@' at `at`:
    /// `None` if no mention can start here, else whether we are sure that character is no
    /// `[[:word:]]`.
    fn mention_may_follow(&self, at: usize) -> Option<bool> {
        let Some(p) = prev_char(self.text, at) else {
            return Some(true);
        };
        if p.is_ascii() {
            let blocks = p.is_ascii_alphanumeric() || matches!(p, '_' | '=' | '/');
            return (!blocks).then_some(true);
        }
        if p.is_alphanumeric() {
            return None; // a word character: no mention (literal is always safe anyway)
        }
        // Otherwise maybe a mark or connector, i.e. [[:word:]]: then count literally.
        Some(p.is_whitespace() || is_common_punctuation(p))
    }

    /// Whether Mastodon may not see the mention's domain `start..end` as we do: longer than
    /// `MAX_DOMAIN_LENGTH`, or perhaps read further.
    fn domain_is_doubtful(&self, (start, end): (usize, usize)) -> bool {
        self.text[start..end].chars().count() > MAX_MENTION_DOMAIN_LENGTH
            || domain_may_continue(self.text, end)
    }
}

/// twitter-text `end_mention_match`: a mention followed by '@', a Latin accent or "://" is no
/// mention.
fn ends_no_mention(after: &str) -> bool {
    after
        .chars()
        .next()
        .is_some_and(|c| c == '@' || c == '＠' || is_latin_accent(c) || after.starts_with("://"))
}

fn word_run(text: &str, from: usize) -> usize {
    run_while(text, from, is_word_char)
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::test_support::{check_row, counter};
    use super::super::Software;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

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
