//! Figure for BENCHMARKS.md: composing a 3,000-character post, per second on one core.
//!
//! Run: `cargo bench --bench compose`. Uses the longest kind of bundled text (LinkedIn
//! style, links, hashtags, emoji) repeated to 3,000 characters, Mastodon rules, limit 500,
//! both truncate and thread; reports the median of 5 timed rounds.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use perennial::posts::config::{LongPosts, Visibility};
use perennial::posts::post::{Post, PostKind};
use perennial::text::compose::{compose, FitSettings};
use perennial::text::count::{Counter, Software};

fn main() {
    let paragraph =
        "Ever had an analysis go wrong because a column quietly changed type? 🐼 pandera lets you \
write down what a DataFrame should look like and check real data against it: types, ranges, \
nullability. It went through open peer review with @pyOpenSci, and the docs at \
https://pandera.readthedocs.io/en/stable/ are a great place to start. #Python #OpenScience\n\n";
    let mut text = String::new();
    while text.chars().count() < 3000 {
        text.push_str(paragraph);
    }
    let text: String = text
        .chars()
        .take(3000)
        .collect::<String>()
        .trim()
        .to_string();
    let counter = Counter::new(Software::Mastodon, 500, 23);
    let defaults = vec!["pyOpenSci".to_string()];
    for mode in [LongPosts::Truncate, LongPosts::Thread] {
        let post = Post {
            id: "bench".into(),
            file: PathBuf::from("posts/bench.md"),
            title: "bench".into(),
            category: "bench".into(),
            kind: PostKind::Evergreen,
            link: Some("https://www.pyopensci.org/python-package-guide/".into()),
            hashtags: vec!["DataValidation".into(), "pandas".into()],
            active_from: None,
            active_until: None,
            content_warning: None,
            language: None,
            visibility: None,
            weight: 1.0,
            short: None,
            short_position: None,
            long_posts: Some(mode),
            media: Vec::new(),
            text: text.clone(),
            content_hash: String::new(),
        };
        let settings = FitSettings {
            counter: &counter,
            long_posts: LongPosts::Truncate,
            max_thread: 10,
            default_hashtags: &defaults,
            visibility: Visibility::Public,
            language: "en",
        };
        let statuses = compose(&post, &settings).statuses.len();
        let rounds = 5;
        let per_round = 20_000;
        let mut rates: Vec<f64> = (0..rounds)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..per_round {
                    black_box(compose(black_box(&post), &settings));
                }
                per_round as f64 / start.elapsed().as_secs_f64()
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "compose {mode:?}: 3,000 characters into {statuses} status(es): median {:.0}/s (min {:.0}, max {:.0}) over {rounds} rounds",
            rates[rounds / 2],
            rates[0],
            rates[rounds - 1]
        );
    }
}
