//! Post files: every invalid fixture gives exactly its expected messages; valid fixtures give
//! their expected plain text and fields.

use std::path::Path;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use perennial::posts::config::{LongPosts, Visibility};
use perennial::posts::library::read_post;
use perennial::posts::post::{parse_post, Post, PostContext, PostKind, DEFAULT_ALT_TEXT_LIMIT};

use crate::support::{assert_all_match, assert_paired, fixtures, render_without_file};

const INVALID: &str = "tests/data/posts/invalid";
const VALID: &str = "tests/data/posts/valid";

fn denver() -> TimeZone {
    TimeZone::get("America/Denver").unwrap()
}

fn read_fixture(
    dir: &str,
    path: &Path,
) -> Result<Post, Vec<perennial::posts::diagnostic::Diagnostic>> {
    let timezone = denver();
    let context = PostContext {
        posts_dir: Path::new(dir),
        timezone: &timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        media_file: &|p: &Path| perennial::posts::library::media_file(Path::new(dir), p),
        media_limits: perennial::posts::post::MediaLimits::default(),
    };
    let id = path.file_stem().unwrap().to_str().unwrap();
    read_post(id, path, &context)
}

#[test]
fn every_invalid_post_fixture_gives_exactly_its_expected_messages() {
    assert_paired(INVALID, "md", "expected");
    let results = fixtures(INVALID, "md")
        .into_iter()
        .map(|path| {
            let actual = match read_fixture(INVALID, &path) {
                Ok(post) => format!("parsed without error: {}\n", post.id),
                Err(errors) => {
                    for error in &errors {
                        assert_eq!(error.file, path, "messages name the file itself");
                    }
                    render_without_file(&errors)
                }
            };
            let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
            (path.display().to_string(), actual, expected)
        })
        .collect();
    assert_all_match(results);
}

#[test]
fn every_valid_post_fixture_renders_its_expected_text() {
    assert_paired(VALID, "md", "txt");
    let results = fixtures(VALID, "md")
        .into_iter()
        .map(|path| {
            let actual = match read_fixture(VALID, &path) {
                Ok(post) => format!("{}\n", post.text),
                Err(errors) => format!("errors:\n{}", render_without_file(&errors)),
            };
            let expected = std::fs::read_to_string(path.with_extension("txt")).unwrap();
            (path.display().to_string(), actual, expected)
        })
        .collect();
    assert_all_match(results);
}

#[test]
fn a_post_with_every_field_keeps_each_value() {
    let post = read_fixture(VALID, Path::new("tests/data/posts/valid/every-field.md")).unwrap();
    assert_eq!(post.id, "every-field");
    assert_eq!(post.title, "Packaging sprint");
    assert_eq!(post.category, "events");
    assert_eq!(
        post.kind,
        PostKind::Adhoc {
            at: "2026-09-28T22:00:00Z".parse().unwrap(),
            then_evergreen: true
        }
    );
    assert_eq!(
        post.link.as_deref(),
        Some("https://www.pyopensci.org/events/")
    );
    assert_eq!(post.hashtags, ["Python", "OpenScience"]);
    // `from` is midnight in Denver (UTC-6 in September); `until` is the end of its day.
    assert_eq!(
        post.active_from,
        Some("2026-09-01T06:00:00Z".parse().unwrap())
    );
    assert_eq!(
        post.active_until,
        Some("2026-10-01T06:00:00Z".parse().unwrap())
    );
    assert_eq!(post.content_warning.as_deref(), Some("long thread"));
    assert_eq!(post.language.as_deref(), Some("es"));
    assert_eq!(post.visibility, Some(Visibility::Unlisted));
    assert_eq!(post.weight, 2.5);
    assert_eq!(
        post.short.as_deref(),
        Some("Sprint today: join us (https://www.pyopensci.org/events/)")
    );
    assert_eq!(post.long_posts, Some(LongPosts::Thread));
    assert_eq!(post.media.len(), 1);
    assert_eq!(post.media[0].alt, "A single red pixel.");
    // The real path: every link resolved, known to be inside the posts folder.
    assert_eq!(
        post.media[0].path,
        Path::new("tests/data/posts/valid/images/pixel.png")
            .canonicalize()
            .unwrap()
    );
    assert!(post.is_active_at("2026-09-15T12:00:00Z".parse().unwrap()));
    assert!(!post.is_active_at("2026-10-01T06:00:00Z".parse::<Timestamp>().unwrap()));
}

#[test]
fn a_wall_clock_at_is_read_in_the_schedule_time_zone() {
    let post = read_fixture(VALID, Path::new("tests/data/posts/valid/local-time.md")).unwrap();
    // 2027-01-20 09:00 in Denver is UTC-7 (standard time).
    let expected: Timestamp = "2027-01-20T16:00:00Z".parse().unwrap();
    assert!(matches!(post.kind, PostKind::Adhoc { at, then_evergreen: false } if at == expected));
}

/// A context for posts given as strings: `posts/` as the folder, every media file present.
fn in_memory_context(timezone: &TimeZone) -> PostContext<'_> {
    PostContext {
        posts_dir: Path::new("posts"),
        timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        media_file: &perennial::posts::post::MediaFile::assume_present,
        media_limits: perennial::posts::post::MediaLimits::default(),
    }
}

#[test]
fn category_defaults_to_the_parent_folder() {
    let timezone = denver();
    let context = in_memory_context(&timezone);
    let source = "+++\ntitle = \"x\"\n+++\nHello.\n";
    let nested = parse_post(
        "tips/deep/one",
        Path::new("posts/tips/deep/one.md"),
        source,
        &context,
    );
    assert_eq!(nested.unwrap().category, "deep");
    let top = parse_post("one", Path::new("posts/one.md"), source, &context);
    assert_eq!(top.unwrap().category, "posts");
}

#[test]
fn crlf_and_bom_keep_line_numbers_right() {
    let timezone = denver();
    let context = in_memory_context(&timezone);
    let source = "\u{feff}+++\r\ntitle = \"x\"\r\n\r\nvisibility = \"loud\"\r\n+++\r\nHello.\r\n";
    let errors = parse_post("a", Path::new("a.md"), source, &context).unwrap_err();
    assert_eq!((errors[0].line, errors[0].column), (4, 14));
    let good = "\u{feff}+++\r\ntitle = \"x\"\r\n+++\r\nHello\r\nworld.\r\n";
    assert_eq!(
        parse_post("a", Path::new("a.md"), good, &context)
            .unwrap()
            .text,
        "Hello world."
    );
}

#[test]
fn content_hash_is_the_first_128_bits_of_sha256_in_lowercase_hex() {
    // SHA-256 of "abc" (FIPS 180-2, appendix B.1) and of the empty message (NIST's
    // SHAVS byte-oriented vectors, SHA256ShortMsg.rsp, Len = 0).
    assert_eq!(
        perennial::posts::post::content_hash(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223"
    );
    assert_eq!(
        perennial::posts::post::content_hash(b""),
        "e3b0c44298fc1c149afbf4c8996fb924"
    );
}
