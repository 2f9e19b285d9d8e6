//! Static data: which characters are what, and the TLDs we are sure of.
//!
//! Every table here is a fact about a public grammar or list, checked by a test below:
//! UAX #29 cluster boundaries (`SIMPLE_RANGES`, viramas), twitter-text's and Mastodon's URL
//! character classes (`rb/lib/twitter-text/regex.rb`, `config/initializers/twitter_regex.rb`),
//! Ruby's `[[:word:]]` as mentions use it (`app/models/account.rb`), and twitter-text's TLD list
//! (`conformance/tld_lib.yml`). The grammars that combine them are in `url.rs`, `mention.rs` and
//! `hashtag.rs`.

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
pub(super) fn is_simple(c: char) -> bool {
    let cp = c as u32;
    if cp < 0x10000 {
        return SIMPLE_BMP[(cp >> 6) as usize] >> (cp & 63) & 1 != 0;
    }
    SIMPLE_RANGES[23..]
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

pub(super) fn is_virama(c: char) -> bool {
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

/// twitter-text `valid_url_preceding_chars` is `[^A-Z0-9@＠$#＃\uFFFE\uFEFF\uFFFF]` (case-
/// insensitive, so also U+017F and U+212A, which fold to 's' and 'k').
pub(super) fn blocks_url(c: char) -> bool {
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
pub(super) fn is_domain_char(c: char) -> bool {
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

pub(super) fn is_label_char(c: char) -> bool {
    is_domain_char(c) || c == '-' || c == '_'
}

const PATH: u8 = 1;
const PATH_END: u8 = 2;
const QUERY: u8 = 4;
const QUERY_END: u8 = 8;

/// ASCII punctuation a path may hold but not end on (`valid_url_path_ending_chars` leaves it
/// out); the non-ASCII ones are in [`is_path_end_char`].
const PATH_INNER_PUNCTUATION: &[u8] = b"!*\"';:=,.$%[]~&|@";
/// The ASCII punctuation of Mastodon's `valid_url_query_chars`.
const QUERY_PUNCTUATION: &[u8] = b"!?*'();:&=+$/%#[]-_.,~|@^";
/// The ASCII punctuation of Mastodon's `valid_url_query_ending_chars`.
const QUERY_END_PUNCTUATION: &[u8] = b"_&=#/-";

/// Whether `set` holds `byte` (usable in a `const`).
const fn holds(set: &[u8], byte: u8) -> bool {
    let mut i = 0;
    while i < set.len() {
        if set[i] == byte {
            return true;
        }
        i += 1;
    }
    false
}

/// The classes below for ASCII, precomputed (the URL scanners' inner loops).
const ASCII_URL_CLASS: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        let alnum = b.is_ascii_alphanumeric();
        let space = holds(b"\t\n\x0B\x0C\r ", b);
        let path = !space && !holds(b"<>()?", b);
        let path_end = path && !holds(PATH_INNER_PUNCTUATION, b);
        let query = alnum || holds(QUERY_PUNCTUATION, b);
        let query_end = alnum || holds(QUERY_END_PUNCTUATION, b);
        table[i] = (path as u8 * PATH)
            | (path_end as u8 * PATH_END)
            | (query as u8 * QUERY)
            | (query_end as u8 * QUERY_END);
        i += 1;
    }
    table
};

/// `[^\p{White_Space}<>()?]`
pub(super) fn is_path_char(c: char) -> bool {
    if c.is_ascii() {
        return ASCII_URL_CLASS[c as usize] & PATH != 0;
    }
    !c.is_whitespace()
}

/// `[^\p{White_Space}()?!*"'「」<>;:=,.$%\[\]~&|@]`
pub(super) fn is_path_end_char(c: char) -> bool {
    if c.is_ascii() {
        return ASCII_URL_CLASS[c as usize] & PATH_END != 0;
    }
    is_path_char(c) && !matches!(c, '「' | '」')
}

/// twitter-text's original `valid_general_url_path_chars` (ASCII set, Cyrillic, dashes, Latin
/// accents). Narrower than the real set only makes our URL end earlier, which is safe.
pub(super) fn is_original_path_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || "!*';:=+,.$/%#[]_~&|@-".contains(c);
    }
    is_latin_accent(c) || matches!(c as u32, 0x0400..=0x052F | 0x2010..=0x2015)
}

/// Mastodon's `valid_url_query_chars`: `[a-z0-9!?*'();:&=+$/%#\[\]\-_.,~|@\^]` or UCHARS.
pub(super) fn is_query_char(c: char) -> bool {
    if c.is_ascii() {
        return ASCII_URL_CLASS[c as usize] & QUERY != 0;
    }
    is_uchar(c)
}

/// Mastodon's `valid_url_query_ending_chars`: `[a-z0-9_&=#/\-]` or UCHARS.
pub(super) fn is_query_end_char(c: char) -> bool {
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
pub(super) fn is_latin_accent(c: char) -> bool {
    matches!(
        c as u32,
        0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0xFF | 0x100..=0x24F | 0x253..=0x254 | 0x256..=0x257 | 0x259 | 0x25B
            | 0x263 | 0x268 | 0x26F | 0x272 | 0x289 | 0x28B | 0x2BB | 0x300..=0x36F | 0x1E00..=0x1EFF
    )
}

/// A subset of Ruby's `[[:word:]]` (letters, marks, numbers, connector punctuation): Rust's
/// alphanumerics minus the enclosed letters that are Alphabetic but symbols. Being a subset,
/// a mention we read is never longer than Mastodon's.
pub(super) fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    c.is_alphanumeric() && !matches!(c as u32, 0x24B6..=0x24E9 | 0x1F130..=0x1F189)
}

/// Non-ASCII punctuation that is surely not `[[:word:]]`.
pub(super) fn is_common_punctuation(c: char) -> bool {
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
pub(super) fn is_known_tld(candidate: &[u8]) -> bool {
    candidate.len() <= 16 && KNOWN_TLD_KEYS.binary_search(&tld_key(candidate)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_segmentation::UnicodeSegmentation;

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
}
