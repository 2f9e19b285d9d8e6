//! Figure for BENCHMARKS.md: loading and checking 10,000 generated posts of about 2 KB.
//!
//! Run: `cargo bench --bench load_posts`. Prints the median of 5 runs (after one warm-up, so
//! the page cache is hot as it is for a daemon reloading `posts/`).

use std::path::Path;
use std::time::{Duration, Instant};

use perennial::posts::library::load_library;
use perennial::posts::post::{PostContext, DEFAULT_ALT_TEXT_LIMIT};

const POSTS: usize = 10_000;

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let posts_dir = dir.path().join("posts");
    let mut bytes = 0;
    for i in 0..POSTS {
        let folder = posts_dir.join(format!("category-{}", i % 8));
        std::fs::create_dir_all(&folder).unwrap();
        let text = generated_post(i);
        bytes += text.len();
        std::fs::write(folder.join(format!("post-{i:05}.md")), text).unwrap();
    }
    let timezone = jiff::tz::TimeZone::get("America/Denver").unwrap();
    let context = PostContext {
        posts_dir: &posts_dir,
        timezone: &timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        media_file: &|path: &Path| perennial::posts::library::media_file(&posts_dir, path),
        media_limits: perennial::posts::post::MediaLimits::default(),
    };
    let mut times: Vec<Duration> = Vec::new();
    for run in 0..6 {
        let start = Instant::now();
        let library = load_library(&context);
        let elapsed = start.elapsed();
        assert_eq!(library.posts.len(), POSTS, "{:?}", library.errors.first());
        if run > 0 {
            times.push(elapsed);
        }
    }
    times.sort();
    println!(
        "load_posts: {POSTS} posts, {:.1} MB, median {:.3} s (min {:.3} s, max {:.3} s) over {} runs",
        bytes as f64 / 1e6,
        times[times.len() / 2].as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        times.len()
    );
}

/// A realistic ~2 KB post: front matter with most keys, Markdown with links, a list, emphasis.
fn generated_post(i: usize) -> String {
    let mut body = String::new();
    while body.len() < 1800 {
        body.push_str(&format!(
            "Post {i} talks about **packaging** and _testing_ with [the guide](https://www.pyopensci.org/python-package-guide/?p={i}). \
             Reviewers check docs, tests and usability; editors keep the process kind and moving. #Python #OpenScience\n\n\
             - a list item with `code`\n- another item\n\n"
        ));
    }
    format!(
        "+++\ntitle = \"Generated post {i}\"\nlink = \"https://example.org/{i}\"\nhashtags = [\"Python\", \"OpenScience\"]\n\
         from = 2026-01-01\nuntil = 2027-12-31\nweight = 1.5\nlanguage = \"en\"\n+++\n{body}"
    )
}
