//! Figures for BENCHMARKS.md: planning 30 days ahead over 10,000 posts with a year of
//! history; then planning and saving with ten years of history (2 posts a day for 3,650 days
//! over 240 posts, 40 of them removed), the whole history (what perennial kept before issue
//! 15) against the history [`perennial::state::prune`] keeps.
//!
//! Run: `cargo bench --bench plan`. Prints the median of 10 runs after one warm-up.

use std::path::Path;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use perennial::plan::{plan, record_checked, record_entry, seed_for, PlanInput};
use perennial::posts::config::Config;
use perennial::posts::library::Library;
use perennial::posts::post::{parse_post, PostContext, DEFAULT_ALT_TEXT_LIMIT};
use perennial::state::{prune, PostReason, Posted, State, StateStore};

const POSTS: usize = 10_000;

fn main() {
    let source = "[server]\nurl = \"https://fosstodon.org\"\n[posts]\ndir = \"posts\"\n[schedule]\ntimezone = \"America/Denver\"\ntimes = [\"09:30\", \"15:30\"]\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\njitter = \"10m\"\n[schedule.weights]\ncategory-0 = 2\ncategory-1 = 2\ncategory-2 = 1.5\n";
    let config = Config::parse(Path::new("config.toml"), source).expect("valid config");
    let context = PostContext {
        posts_dir: Path::new("posts"),
        timezone: &config.schedule.timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        media_file: &perennial::posts::post::MediaFile::assume_present,
        media_limits: perennial::posts::post::MediaLimits::default(),
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
    ten_years();
}

/// The median, min and max of 10 timed runs of `f` after one warm-up, in milliseconds.
fn time_ms(mut f: impl FnMut()) -> (f64, f64, f64) {
    let mut times: Vec<Duration> = Vec::new();
    for run in 0..11 {
        let start = Instant::now();
        f();
        if run > 0 {
            times.push(start.elapsed());
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
    )
}

/// Ten years of two posts a day: plan 30 days ahead and save, with the whole history and
/// with the pruned one.
fn ten_years() {
    let source = "[server]\nurl = \"https://fosstodon.org\"\n[posts]\ndir = \"posts\"\n[schedule]\ntimezone = \"America/Denver\"\ntimes = [\"09:30\", \"15:30\"]\njitter = \"10m\"\n";
    let config = Config::parse(Path::new("config.toml"), source).expect("valid config");
    let context = PostContext {
        posts_dir: Path::new("posts"),
        timezone: &config.schedule.timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        media_file: &perennial::posts::post::MediaFile::assume_present,
        media_limits: perennial::posts::post::MediaLimits::default(),
    };
    const PRESENT: usize = 200;
    const GONE: usize = 40;
    const DAYS: i64 = 3650;
    let posts: Vec<_> = (0..PRESENT)
        .map(|i| {
            let id = format!("category-{}/post-{i:05}", i % 8);
            let text = format!("+++\ntitle = \"Post {i}\"\n+++\nPost number {i}.\n");
            parse_post(&id, Path::new(&format!("posts/{id}.md")), &text, &context).unwrap()
        })
        .collect();
    let library = Library {
        files: posts
            .iter()
            .map(|post| (post.id.clone(), format!("posts/{}.md", post.id).into()))
            .collect(),
        posts,
        errors: Vec::new(),
    };
    let start: Timestamp = "2027-01-01T16:30:00Z".parse().unwrap();
    let mut whole = State::default();
    for d in 0..DAYS {
        for n in 0..2 {
            let k = (2 * d + n) as usize;
            // The removed posts went out in the first five years.
            let (id, hash) = if d < DAYS / 2 && k.is_multiple_of(6) {
                (
                    format!("removed/post-{:03}", k / 6 % GONE),
                    "sha256:removed".to_string(),
                )
            } else {
                let post = &library.posts[k % PRESENT];
                (post.id.clone(), post.content_hash.clone())
            };
            let slot = start + SignedDuration::from_hours(24 * d + 6 * n);
            whole.history.push(Posted {
                category: id.split('/').next().unwrap().to_string(),
                post: id,
                hash,
                slot,
                at: slot + SignedDuration::from_secs(90),
                reason: PostReason::Slot,
                statuses: vec![format!("{}", 113_000_000_000_000_000u64 + k as u64)],
            });
        }
    }
    let now = whole.history.last().unwrap().at + SignedDuration::from_hours(1);
    whole.rotation.last_slot = Some(whole.history.last().unwrap().slot);
    whole.rotation.checked = Some(now);
    let mut pruned = whole.clone();
    prune(&library, &mut pruned, now);
    let until = now + SignedDuration::from_hours(30 * 24);
    let seed = seed_for(&config.server.url);
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    for (name, state) in [("whole", &whole), ("pruned", &pruned)] {
        let input = PlanInput {
            posts: &library.posts,
            schedule: &config.schedule,
            seed,
            state,
            now,
        };
        let mut entries = 0;
        let (plan_median, plan_min, plan_max) = time_ms(|| {
            entries = plan(&input, until, 1000).entries.len();
        });
        let (save_median, save_min, save_max) = time_ms(|| store.save(state).unwrap());
        let bytes = std::fs::metadata(store.path()).unwrap().len();
        println!(
            "ten years, {name} history: {} entries, state.json {:.0} KB; plan {PRESENT} posts 30 days ahead ({entries} entries): median {plan_median:.2} ms (min {plan_min:.2}, max {plan_max:.2}); save: median {save_median:.2} ms (min {save_min:.2}, max {save_max:.2}) over 10 runs",
            state.history.len(),
            bytes as f64 / 1000.0,
        );
    }
}
