//! Figures for BENCHMARKS.md: planning 30 days ahead over 10,000 posts with a year of
//! history; then planning and saving with ten years of history (2 posts a day for 3,650 days
//! over 240 posts, 40 of them removed), the whole history (what perennial kept before issue
//! 15) against the history [`perennial::state::prune`] keeps.
//!
//! Then issue 19 item 4, years of state: a fresh state (nothing sent, no mentions) against ten
//! years lived through the daemon's own upkeep (7,300 posts, two a day, each followed by
//! [`perennial::state::prune`] as the daemon prunes before it plans; 100,000 mentions, each
//! recorded by [`perennial::plan::mentions::record`] with a catch-up completing every
//! `poll_every`), and, for the bound, the same years with no catch-up ever complete (`handled`
//! held only by `MAX_HANDLED`): plan cost, save cost (`StateStore::save`) on the temporary
//! directory's file system and on tmpfs (`/dev/shm`, where fsync costs nothing), and the size
//! of state.json. The states are timed in alternating rounds (`PERENNIAL_BENCH_ROUNDS`, 5 by
//! default) so that load on a shared machine falls on all of them alike.
//!
//! Run: `cargo bench --bench plan` (everything) or `cargo bench --bench plan -- years` (only
//! the fresh against ten years). Prints the median of 10 runs after one warm-up.

use std::path::Path;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use perennial::plan::mentions::{record, MAX_HANDLED};
use perennial::plan::{plan, record_checked, record_entry, seed_for, PlanInput};
use perennial::posts::config::Config;
use perennial::posts::library::Library;
use perennial::posts::post::{parse_post, PostContext, DEFAULT_ALT_TEXT_LIMIT};
use perennial::state::{prune, MentionOutcome, PostReason, Posted, SkipReason, State, StateStore};
use rand::{Rng, SeedableRng};

const POSTS: usize = 10_000;

fn main() {
    if std::env::args().any(|arg| arg == "years") {
        fresh_against_ten_years();
        return;
    }
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
        check_passed_slots(&mut state, &posts, &config, seed, now);
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
    fresh_against_ten_years();
}

/// The median, min and max of 10 timed runs of `f` after one warm-up, in milliseconds.
/// Records the slots that have passed by `now` as checked, as the daemon does after a post.
fn check_passed_slots(
    state: &mut State,
    posts: &[perennial::posts::post::Post],
    config: &Config,
    seed: u64,
    now: Timestamp,
) {
    let input = PlanInput {
        posts,
        schedule: &config.schedule,
        seed,
        state,
        now,
    };
    let checked = plan(&input, now, 0);
    record_checked(state, &checked, now);
}

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

/// The config of the years benches: two slots a day, in America/Denver.
fn years_config() -> Config {
    let source = "[server]\nurl = \"https://fosstodon.org\"\n[posts]\ndir = \"posts\"\n[schedule]\ntimezone = \"America/Denver\"\ntimes = [\"09:30\", \"15:30\"]\njitter = \"10m\"\n";
    Config::parse(Path::new("config.toml"), source).expect("valid config")
}

/// How the years benches read posts (no files: every media file is taken as present).
fn years_context(config: &Config) -> PostContext<'_> {
    PostContext {
        posts_dir: Path::new("posts"),
        timezone: &config.schedule.timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        media_file: &perennial::posts::post::MediaFile::assume_present,
        media_limits: perennial::posts::post::MediaLimits::default(),
    }
}

/// Ten years of two posts a day: plan 30 days ahead and save, with the whole history and
/// with the pruned one.
fn ten_years() {
    let config = years_config();
    let context = years_context(&config);
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

/// The posts of [`fresh_against_ten_years`]: `count` posts in 8 categories, named from `prefix`.
fn years_posts(
    context: &PostContext,
    prefix: &str,
    count: usize,
) -> Vec<perennial::posts::post::Post> {
    (0..count)
        .map(|i| {
            let id = format!("{prefix}-{}/post-{i:05}", i % 8);
            let text = format!("+++\ntitle = \"Post {i}\"\n+++\nPost number {i}.\n");
            parse_post(&id, Path::new(&format!("posts/{id}.md")), &text, context).unwrap()
        })
        .collect()
}

fn years_library(posts: Vec<perennial::posts::post::Post>) -> Library {
    Library {
        files: posts
            .iter()
            .map(|post| (post.id.clone(), format!("posts/{}.md", post.id).into()))
            .collect(),
        posts,
        errors: Vec::new(),
    }
}

/// The state file's size for `state`, as [`StateStore::save`] writes it (pretty JSON).
fn state_bytes(state: &State) -> usize {
    serde_json::to_vec_pretty(state).unwrap().len() + 1
}

/// Ten years lived by the daemon: two slots a day, planned, recorded and pruned as the daemon
/// does (200 posts, and 40 more that were removed after the first year); 100,000 mentions over the
/// same years, recorded as the daemon records them, with a catch-up completing every five
/// minutes (`poll_every`'s default) when `catch_up` (else never: `handled` is held by
/// `MAX_HANDLED` alone). Returns the state and `now` after two years and after ten; prints the
/// size year by year.
fn live_ten_years(
    config: &Config,
    present: &Library,
    with_removed: &Library,
    catch_up: bool,
) -> ((State, Timestamp), (State, Timestamp)) {
    const DAYS: i64 = 3650;
    const MENTIONS: usize = 100_000;
    const ACCOUNTS: usize = 2_000;
    let poll_every = SignedDuration::from_mins(5);
    let seed = seed_for(&config.server.url);
    let start: Timestamp = "2027-01-01T07:00:00Z".parse().unwrap();
    let end = start + SignedDuration::from_hours(24 * DAYS);
    // The mentions' times, uniform over the years (about 27 a day).
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let span = end.as_second() - start.as_second();
    let mut mention_times: Vec<i64> = (0..MENTIONS)
        .map(|_| start.as_second() + rng.random_range(0..span))
        .collect();
    mention_times.sort();
    let mut mentions = mention_times.into_iter().enumerate().peekable();
    let mut state = State::default();
    let mut sent = 0u64;
    let mut recorded = 0usize;
    let mut two_years = None;
    for d in 0..DAYS {
        let library = if d < 365 { with_removed } else { present };
        let day_start = start + SignedDuration::from_hours(24 * d);
        let day_end = day_start + SignedDuration::from_hours(24);
        // The daemon's upkeep before it plans.
        prune(library, &mut state, day_start);
        let input = PlanInput {
            posts: &library.posts,
            schedule: &config.schedule,
            seed,
            state: &state,
            now: day_start,
        };
        let day_plan = plan(&input, day_end, 8);
        let mut now = day_start;
        for entry in &day_plan.entries {
            // The mentions that came before this post.
            while let Some((n, at)) = mentions.next_if(|(_, at)| *at < entry.at.as_second()) {
                mention(&mut state, n, at, ACCOUNTS, poll_every, catch_up, &mut rng);
                recorded += 1;
            }
            now = entry.at + SignedDuration::from_secs(90);
            let hash = entry
                .post
                .as_ref()
                .and_then(|id| library.posts.iter().find(|post| &post.id == id))
                .map(|post| post.content_hash.clone())
                .unwrap_or_default();
            record_entry(
                &mut state,
                entry,
                &hash,
                now,
                vec![format!("{}", 113_000_000_000_000_000u64 + sent)],
            );
            sent += 1;
            prune(library, &mut state, now);
        }
        check_passed_slots(&mut state, &library.posts, config, seed, now);
        while let Some((n, at)) = mentions.next_if(|(_, at)| *at < day_end.as_second()) {
            mention(&mut state, n, at, ACCOUNTS, poll_every, catch_up, &mut rng);
            recorded += 1;
        }
        if (d + 1) % 365 == 0 {
            println!(
                "  year {:>2}: {sent} posts sent, {recorded} mentions; history {} entries, handled {} mentions, state.json {:.0} KB",
                (d + 1) / 365,
                state.history.len(),
                state.mentions.handled.len(),
                state_bytes(&state) as f64 / 1000.0
            );
        }
        if d + 1 == 2 * 365 {
            let mut state = state.clone();
            let now = state.history.last().unwrap().at + SignedDuration::from_hours(1);
            prune(library, &mut state, now);
            two_years = Some((state, now));
        }
    }
    let now = state.history.last().unwrap().at + SignedDuration::from_hours(1);
    prune(present, &mut state, now);
    (
        two_years.expect("ten years are longer than two"),
        (state, now),
    )
}

/// One mention, `n`th of the years, dealt with at `at` (seconds) as the daemon records it: four
/// in five answered, the rest skipped; a catch-up completes every `poll_every` when `catch_up`.
fn mention(
    state: &mut State,
    n: usize,
    at: i64,
    accounts: usize,
    poll_every: SignedDuration,
    catch_up: bool,
    rng: &mut rand::rngs::StdRng,
) {
    let now = Timestamp::from_second(at).unwrap();
    let poll = poll_every.as_secs();
    if catch_up {
        // The last catch-up began at the last multiple of `poll_every` and read everything.
        state.mentions.caught_up = Some(Timestamp::from_second(at - at.rem_euclid(poll)).unwrap());
    }
    let notification = format!("{}", 40_000_000 + n);
    state.mentions.cursor = Some(notification.clone());
    let outcome = if n % 5 == 4 {
        MentionOutcome::Skipped {
            reason: SkipReason::NothingAsked,
        }
    } else {
        MentionOutcome::Replied {
            status_id: format!("{}", 114_000_000_000_000_000u64 + n as u64),
        }
    };
    let acct = format!(
        "user{}@example{}.social",
        rng.random_range(0..accounts),
        n % 50
    );
    record(
        &mut state.mentions,
        &notification,
        &format!("{}", 113_500_000_000_000_000u64 + n as u64),
        &acct,
        outcome,
        now,
    );
}

/// Median, min and max of `samples`, in milliseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
    )
}

/// 10 timed runs of `f` after one warm-up, appended to `samples`.
fn timed_runs(samples: &mut Vec<Duration>, mut f: impl FnMut()) {
    for run in 0..11 {
        let start = Instant::now();
        f();
        if run > 0 {
            samples.push(start.elapsed());
        }
    }
}

/// Issue 19 item 4: plan and save with a fresh state against ten years of posts and mentions.
fn fresh_against_ten_years() {
    let config = years_config();
    let context = years_context(&config);
    let posts = years_posts(&context, "category", 200);
    let removed = years_posts(&context, "removed", 40);
    let present = years_library(posts.clone());
    let with_removed = years_library(posts.into_iter().chain(removed).collect());
    println!("ten years lived, a catch-up every 5 minutes:");
    let lived = std::time::Instant::now();
    let ((two_years, two_years_now), (years, now)) =
        live_ten_years(&config, &present, &with_removed, true);
    println!("  ({:.1} s to live them)", lived.elapsed().as_secs_f64());
    println!(
        "ten years lived, no catch-up ever complete (handled held by MAX_HANDLED = {MAX_HANDLED}):"
    );
    let (_, (no_catch_up, _)) = live_ten_years(&config, &present, &with_removed, false);
    // What the plan needs at the least: each post's newest entry (no year of record).
    let mut newest_only = years.clone();
    let mut newest: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (index, entry) in newest_only.history.iter().enumerate() {
        newest.insert(entry.post.clone(), index);
    }
    let mut index = 0;
    newest_only.history.retain(|entry| {
        index += 1;
        newest[&entry.post] == index - 1
    });
    let fresh = State::default();
    // (name, state, now, posts in the folder)
    let states = [
        ("fresh", &fresh, now, &present),
        ("two years", &two_years, two_years_now, &present),
        ("ten years", &years, now, &present),
        ("ten years, no catch-up", &no_catch_up, now, &present),
        (
            "ten years, newest entry per post only",
            &newest_only,
            now,
            &present,
        ),
    ];
    let seed = seed_for(&config.server.url);
    let disk = tempfile::tempdir().unwrap();
    let shm = Path::new("/dev/shm")
        .is_dir()
        .then(|| tempfile::tempdir_in("/dev/shm").unwrap());
    let rounds: usize = std::env::var("PERENNIAL_BENCH_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(5);
    println!(
        "save on disk in {} and on tmpfs in {}; {rounds} rounds, states alternating; load average before: {}",
        disk.path().display(),
        shm.as_ref()
            .map_or("(no /dev/shm)".to_string(), |dir| dir.path().display().to_string()),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    // [state][plan, save on disk, save on tmpfs]
    let mut samples: Vec<[Vec<Duration>; 3]> = states.iter().map(|_| Default::default()).collect();
    let mut entries = vec![0; states.len()];
    for _ in 0..rounds {
        for (index, (name, state, now, library)) in states.iter().enumerate() {
            let now = *now;
            let until = now + SignedDuration::from_hours(30 * 24);
            let input = PlanInput {
                posts: &library.posts,
                schedule: &config.schedule,
                seed,
                state,
                now,
            };
            timed_runs(&mut samples[index][0], || {
                entries[index] = plan(&input, until, 1000).entries.len();
            });
            let store = StateStore::new(disk.path().join(name.replace([' ', ','], "-")));
            std::fs::create_dir_all(store.path().parent().unwrap()).unwrap();
            timed_runs(&mut samples[index][1], || store.save(state).unwrap());
            if let Some(shm) = &shm {
                let store = StateStore::new(shm.path().join(name.replace([' ', ','], "-")));
                std::fs::create_dir_all(store.path().parent().unwrap()).unwrap();
                timed_runs(&mut samples[index][2], || store.save(state).unwrap());
            }
        }
    }
    println!(
        "load average after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let mut medians = Vec::new();
    for (index, (name, state, _, library)) in states.iter().enumerate() {
        let [plan_samples, disk_samples, shm_samples] = &mut samples[index];
        let plan_ms = summary(plan_samples);
        let disk_ms = summary(disk_samples);
        let shm_ms = if shm_samples.is_empty() {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            summary(shm_samples)
        };
        let bytes = state_bytes(state);
        println!(
            "{name}: history {} entries, handled {} mentions, state.json {:.1} KB; plan {} posts 30 days ahead ({} entries): median {:.3} ms (min {:.3}, max {:.3}); save on disk: median {:.3} ms (min {:.3}, max {:.3}); save on tmpfs: median {:.3} ms (min {:.3}, max {:.3}); over {} runs each",
            state.history.len(),
            state.mentions.handled.len(),
            bytes as f64 / 1000.0,
            library.posts.len(),
            entries[index],
            plan_ms.0, plan_ms.1, plan_ms.2,
            disk_ms.0, disk_ms.1, disk_ms.2,
            shm_ms.0, shm_ms.1, shm_ms.2,
            rounds * 10,
        );
        medians.push((plan_ms.0, disk_ms.0, shm_ms.0, bytes as f64));
    }
    let (fresh_plan, fresh_disk, fresh_shm, fresh_bytes) = medians[0];
    for (index, (name, ..)) in states.iter().enumerate().skip(1) {
        let (plan_ms, disk_ms, shm_ms, bytes) = medians[index];
        println!(
            "{name} / fresh (medians): plan {:.2}, save on disk {:.2}, save on tmpfs {:.2}, state.json {:.1}",
            plan_ms / fresh_plan,
            disk_ms / fresh_disk,
            shm_ms / fresh_shm,
            bytes / fresh_bytes
        );
    }
    // Whether the cost still grows with age once the year of record is full.
    let (two_plan, two_disk, two_shm, two_bytes) = medians[1];
    let (ten_plan, ten_disk, ten_shm, ten_bytes) = medians[2];
    println!(
        "ten years / two years (medians): plan {:.2}, save on disk {:.2}, save on tmpfs {:.2}, state.json {:.2}",
        ten_plan / two_plan,
        ten_disk / two_disk,
        ten_shm / two_shm,
        ten_bytes / two_bytes
    );
}
