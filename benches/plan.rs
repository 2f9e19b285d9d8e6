//! Figure for BENCHMARKS.md: planning 30 days ahead over 10,000 posts with a year of history.
//!
//! Run: `cargo bench --bench plan`. Prints the median of 10 runs after one warm-up.

use std::path::Path;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use perennial::config::Config;
use perennial::plan::{plan, record_checked, record_entry, seed_for, PlanInput};
use perennial::post::{parse_post, PostContext, DEFAULT_ALT_TEXT_LIMIT};
use perennial::state::State;

const POSTS: usize = 10_000;

fn main() {
    let source = "[server]\nurl = \"https://fosstodon.org\"\n[posts]\ndir = \"posts\"\n[schedule]\ntimezone = \"America/Denver\"\ntimes = [\"09:30\", \"15:30\"]\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\njitter = \"10m\"\n[schedule.weights]\ncategory-0 = 2\ncategory-1 = 2\ncategory-2 = 1.5\n";
    let config = Config::parse(Path::new("config.toml"), source).expect("valid config");
    let context = PostContext {
        posts_dir: Path::new("posts"),
        timezone: &config.schedule.timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        media_file: &perennial::post::MediaFile::assume_present,
        media_limits: perennial::post::MediaLimits::default(),
    };
    let posts: Vec<_> = (0..POSTS)
        .map(|i| {
            let id = format!("category-{}/post-{i:05}", i % 8);
            let text = format!("+++\ntitle = \"Post {i}\"\n+++\nPost number {i}.\n");
            parse_post(&id, Path::new(&format!("posts/{id}.md")), &text, &context).unwrap()
        })
        .collect();
    // A year of history, as the daemon would have recorded it.
    let mut state = State::default();
    let mut now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let year_end: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    let seed = seed_for(&config.server.url);
    loop {
        let input = PlanInput {
            posts: &posts,
            schedule: &config.schedule,
            seed,
            state: &state,
            now,
        };
        let Some(entry) = plan(&input, year_end, 1).entries.into_iter().next() else {
            break;
        };
        now = entry.at;
        record_entry(&mut state, &entry, "hash", now, vec!["1".into()]);
        let input = PlanInput {
            posts: &posts,
            schedule: &config.schedule,
            seed,
            state: &state,
            now,
        };
        let checked = plan(&input, now, 0);
        record_checked(&mut state, &checked, now);
    }
    let history = state.history.len();
    let until = now + SignedDuration::from_hours(30 * 24);
    let mut times: Vec<Duration> = Vec::new();
    let mut entries = 0;
    for run in 0..11 {
        let input = PlanInput {
            posts: &posts,
            schedule: &config.schedule,
            seed,
            state: &state,
            now,
        };
        let start = Instant::now();
        let result = plan(&input, until, 1000);
        let elapsed = start.elapsed();
        entries = result.entries.len();
        if run > 0 {
            times.push(elapsed);
        }
    }
    times.sort();
    println!(
        "plan: {POSTS} posts, {history} history entries, 30 days ahead ({entries} entries): median {:.2} ms (min {:.2}, max {:.2}) over {} runs",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
        times.len()
    );
}
