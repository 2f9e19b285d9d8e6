//! Issue 15, items 5, 6 and 8: the state over the years. A renamed post keeps its history; a
//! daemon whose state folder was replaced under it stops; ten years of history stay bounded
//! and plan as the whole history would.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use perennial::daemon::clock::{Clock, TokioClock};
use perennial::daemon::RunOptions;
use perennial::plan::{plan, record_checked, record_entry, seed_for, PlanInput};
use perennial::posts::config::Config;
use perennial::posts::library::Library;
use perennial::posts::post::{parse_post, Post, PostContext, DEFAULT_ALT_TEXT_LIMIT};
use perennial::state::{
    follow_renames, prune, FailedPost, PostReason, Posted, Rename, State, StateError, StateStore,
    KEPT_FOR,
};

use crate::daemon_runs::{fake, ts, Bot, PATIENCE};
use crate::fake_server::{FakeOptions, StoredStatus};
use crate::support::Captured;

const DAILY_0900: &str = "times = [\"09:00\"]\njitter = \"0m\"";

/// Which post a status belongs to (the bodies say "Body of ID.").
fn post_of(status: &StoredStatus) -> String {
    let start = status.text.find("Body of ").expect("a test post") + "Body of ".len();
    let rest = &status.text[start..];
    rest[..rest.find('.').unwrap()].to_string()
}

// ---------------------------------------------------------------------------------------
// Item 5: a renamed post is not a new post.

/// `git mv` of the post that went out last, to another category, then a reload: the next
/// slot takes the post never sent, not the renamed one (which used to count as never sent
/// and went out again at once); the log says so, and the history follows the new id.
#[tokio::test(start_paused = true)]
async fn a_renamed_post_keeps_its_history_and_is_not_posted_again_at_once() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber());
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        DAILY_0900,
        "",
        &[
            ("tips/a", "", "Body of tips/a."),
            ("tips/b", "", "Body of tips/b."),
            ("tips/c", "", "Body of tips/c."),
        ],
    );
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    let statuses = tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(2))
        .await
        .unwrap();
    let first = post_of(&statuses[0]);
    let last = post_of(&statuses[1]);
    let name = last.strip_prefix("tips/").unwrap();
    let renamed = format!("howto/{name}");
    std::fs::create_dir_all(bot.dir.path().join("posts/howto")).unwrap();
    std::fs::rename(
        bot.dir.path().join(format!("posts/{last}.md")),
        bot.dir.path().join(format!("posts/{renamed}.md")),
    )
    .unwrap();
    controls.reload.notify_one();
    let statuses = tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(3))
        .await
        .unwrap();
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
    let third = post_of(&statuses[2]);
    assert_ne!(
        third, last,
        "the renamed post went out again a day after it was sent"
    );
    assert_ne!(third, first);
    let log = captured.text();
    assert_eq!(
        log.matches(&format!("renamed: {last} → {renamed}, keeping its history"))
            .count(),
        1,
        "{log}"
    );
    let state = bot.state();
    let ids: Vec<&str> = state.history.iter().map(|e| e.post.as_str()).collect();
    assert_eq!(ids, [first.as_str(), renamed.as_str(), third.as_str()]);
}

/// A config for the pure tests.
fn config(schedule: &str) -> Config {
    let source = format!(
        "[server]\nurl = \"https://example.social\"\n\n[posts]\ndir = \"posts\"\n\n[schedule]\ntimezone = \"UTC\"\n{schedule}\n"
    );
    Config::parse(Path::new("/srv/perennial/config.toml"), &source).unwrap()
}

/// A post whose text is `body` (the content hash is of the whole file).
fn post_with(config: &Config, id: &str, front_matter: &str, body: &str) -> Post {
    let context = PostContext {
        posts_dir: Path::new("posts"),
        timezone: &config.schedule.timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        media_file: &perennial::posts::post::MediaFile::assume_present,
        media_limits: perennial::posts::post::MediaLimits::default(),
    };
    let source = format!("+++\ntitle = \"A post\"\n{front_matter}\n+++\n{body}\n");
    parse_post(id, Path::new(&format!("posts/{id}.md")), &source, &context)
        .unwrap_or_else(|errors| panic!("test post {id} is invalid: {errors:?}"))
}

fn library(posts: Vec<Post>) -> Library {
    let files = posts
        .iter()
        .map(|post| {
            (
                post.id.clone(),
                PathBuf::from(format!("posts/{}.md", post.id)),
            )
        })
        .collect();
    Library {
        posts,
        errors: Vec::new(),
        files,
    }
}

fn posted(post: &Post, id: &str, at: &str) -> Posted {
    Posted {
        post: id.to_string(),
        hash: post.content_hash.clone(),
        slot: ts(at),
        at: ts(at),
        reason: PostReason::Slot,
        category: "tips".to_string(),
        statuses: vec!["1".to_string()],
    }
}

#[test]
fn a_rename_moves_the_history_and_the_failed_entry_and_nothing_ambiguous_moves() {
    let config = config(DAILY_0900);
    let moved = post_with(&config, "howto/a", "", "Text of a.");
    let refused = post_with(&config, "howto/r", "", "Text of r.");
    let mut state = State::default();
    state
        .history
        .push(posted(&moved, "tips/a", "2027-01-04T09:00:00Z"));
    state
        .history
        .push(posted(&moved, "tips/a", "2027-02-04T09:00:00Z"));
    state.failed.insert(
        "tips/r".to_string(),
        FailedPost {
            hash: refused.content_hash.clone(),
            at: ts("2027-01-05T09:00:00Z"),
            message: "too long".to_string(),
            settings: None,
        },
    );
    let lib = library(vec![moved.clone(), refused.clone()]);
    let renames = follow_renames(&lib, &mut state);
    assert_eq!(
        renames,
        [
            Rename {
                from: "tips/a".to_string(),
                to: "howto/a".to_string()
            },
            Rename {
                from: "tips/r".to_string(),
                to: "howto/r".to_string()
            }
        ]
    );
    assert!(state.history.iter().all(|entry| entry.post == "howto/a"));
    assert_eq!(state.history.len(), 2);
    assert_eq!(state.failed.keys().collect::<Vec<_>>(), ["howto/r"]);
    // Done once: nothing more to move.
    assert!(follow_renames(&lib, &mut state).is_empty());

    // Two new posts with the same text: neither is taken for the old one.
    let twin = post_with(&config, "events/a", "", "Text of a.");
    let mut state = State::default();
    state
        .history
        .push(posted(&moved, "tips/a", "2027-01-04T09:00:00Z"));
    let before = state.clone();
    assert!(follow_renames(&library(vec![moved.clone(), twin]), &mut state).is_empty());
    assert_eq!(state, before);

    // The old id is still a post file (here with problems): a copy, not a rename.
    let mut lib = library(vec![moved.clone()]);
    lib.files
        .push(("tips/a".to_string(), PathBuf::from("posts/tips/a.md")));
    assert!(follow_renames(&lib, &mut state).is_empty());
    assert_eq!(state, before);

    // Edited as well as renamed: a new post.
    let edited = post_with(&config, "howto/a", "", "Text of a, edited.");
    assert!(follow_renames(&library(vec![edited]), &mut state).is_empty());
    assert_eq!(state, before);

    // The hash of an older entry does not count: only the newest version sent.
    let mut state = before.clone();
    let older = post_with(&config, "tips/a", "", "Older text of a.");
    state
        .history
        .push(posted(&older, "tips/a", "2027-03-04T09:00:00Z"));
    let unchanged = state.clone();
    assert!(follow_renames(&library(vec![moved.clone()]), &mut state).is_empty());
    assert_eq!(state, unchanged);

    // Two old ids last sent with the same text: which one it was is unknown.
    let mut state = before.clone();
    state
        .history
        .push(posted(&moved, "misc/a", "2027-01-06T09:00:00Z"));
    let unchanged = state.clone();
    assert!(follow_renames(&library(vec![moved]), &mut state).is_empty());
    assert_eq!(state, unchanged);
}

/// `perennial queue` shows the plan the daemon will follow: a renamed post keeps its place.
#[test]
fn queue_plans_a_renamed_post_with_its_history() {
    let config = config(DAILY_0900);
    let a = post_with(&config, "tips/a", "", "Text of a.");
    let b = post_with(&config, "tips/b", "", "Text of b.");
    let mut state = State::default();
    // b went out yesterday as tips/old-b, a the day before.
    state
        .history
        .push(posted(&a, "tips/a", "2027-01-04T09:00:00Z"));
    state
        .history
        .push(posted(&b, "tips/old-b", "2027-01-05T09:00:00Z"));
    state.rotation.last_slot = Some(ts("2027-01-05T09:00:00Z"));
    state.rotation.checked = Some(ts("2027-01-05T09:00:01Z"));
    let lib = library(vec![a, b]);
    let args = perennial::commands::cli::QueueArgs {
        days: 2,
        json: true,
        from: None,
    };
    let report = perennial::commands::queue::queue_report(
        &config,
        &lib,
        &state,
        ts("2027-01-05T12:00:00Z"),
        &args,
    );
    let planned: Vec<_> = report
        .entries
        .iter()
        .filter_map(|entry| entry.post.clone())
        .collect();
    assert_eq!(planned, ["tips/a", "tips/b"]);
}

// ---------------------------------------------------------------------------------------
// Item 6: a daemon whose state folder was replaced stops.

/// The state folder is removed under a running daemon and a second daemon starts with a new
/// one: the first stops with exit 1 and a clear error at its next save (before it sends the
/// next post), so the two never post the same slot or write the same files.
#[tokio::test(start_paused = true)]
async fn a_daemon_whose_state_folder_was_replaced_stops_with_exit_1_before_posting_again() {
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        DAILY_0900,
        "",
        &[
            ("tips/a", "", "Body of tips/a."),
            ("tips/b", "", "Body of tips/b."),
        ],
    );
    let (first, first_controls) = bot.start(&clock, RunOptions::default(), None);
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(1))
        .await
        .unwrap();
    let state_dir = bot.dir.path().join("state");
    std::fs::remove_dir_all(&state_dir).unwrap();
    // A second daemon: it finds no state (and no lock) and starts afresh.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let (second, second_controls) = bot.start(&clock, RunOptions::default(), None);
    let result = tokio::time::timeout(PATIENCE, first)
        .await
        .expect("the first daemon stops")
        .unwrap();
    let error = result.expect_err("the first daemon stops with an error");
    assert_eq!(error.exit_code(), 1, "{error}");
    assert!(
        matches!(
            &error,
            perennial::daemon::RunError::State(StateError::Replaced { dir, .. }) if *dir == state_dir
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("was replaced or removed under the running perennial"),
        "{message}"
    );
    // The second goes on alone: one status per slot from then on.
    let statuses = tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(3))
        .await
        .unwrap();
    second_controls.shutdown.cancel();
    first_controls.shutdown.cancel();
    second.await.unwrap().unwrap();
    let day_two = statuses
        .iter()
        .filter(|status| status.created_at >= ts("2027-01-05T08:00:00Z"))
        .filter(|status| status.created_at < ts("2027-01-06T08:00:00Z"))
        .count();
    assert_eq!(day_two, 1, "{statuses:#?}");
    let leftovers: Vec<_> = std::fs::read_dir(&state_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---------------------------------------------------------------------------------------
// Item 8: ten years of history.

/// Posts and their lives: post `i` is in the folder from day `born` to day `gone` (never
/// gone: `None`). Ad hoc posts appear 30 days before their `at`.
struct Life {
    post: Post,
    born: i64,
    gone: Option<i64>,
}

const DAYS: i64 = 3650;

fn start_of_simulation() -> Timestamp {
    ts("2027-01-04T00:00:00Z")
}

fn day(n: i64) -> Timestamp {
    start_of_simulation() + SignedDuration::from_hours(24 * n)
}

/// 3 categories of evergreen posts coming and going over ten years, some posts refused by
/// the server, and an ad hoc post every 45 days (every other one joining the rotation).
fn lives(config: &Config) -> Vec<Life> {
    let mut lives = Vec::new();
    for i in 0..90i64 {
        let category = ["tips", "showcase", "events"][(i % 3) as usize];
        let id = format!("{category}/post-{i:03}");
        let born = (i / 9) * 365 - 30;
        let gone = (i % 4 != 0).then_some(born + 365 * (2 + i % 3));
        lives.push(Life {
            post: post_with(config, &id, "", &format!("Text of {id}.")),
            born,
            gone,
        });
    }
    for n in 1..(DAYS / 45) {
        let at = day(n * 45) + SignedDuration::from_hours(12);
        let id = format!("news/adhoc-{n:03}");
        let then = if n % 2 == 0 {
            "then = \"evergreen\"\n"
        } else {
            ""
        };
        let front = format!(
            "kind = \"adhoc\"\nat = {}\n{then}",
            at.strftime("%Y-%m-%dT%H:%M:%SZ")
        );
        lives.push(Life {
            post: post_with(config, &id, &front, &format!("Text of {id}.")),
            born: n * 45 - 30,
            gone: Some(n * 45 + if n % 2 == 0 { 400 } else { 60 }),
        });
    }
    lives
}

fn alive_on(lives: &[Life], day: i64) -> Library {
    library(
        lives
            .iter()
            .filter(|life| life.born <= day && life.gone.is_none_or(|gone| day < gone))
            .map(|life| life.post.clone())
            .collect(),
    )
}

fn input<'a>(
    config: &'a Config,
    lib: &'a Library,
    state: &'a State,
    now: Timestamp,
) -> PlanInput<'a> {
    PlanInput {
        posts: &lib.posts,
        schedule: &config.schedule,
        seed: seed_for(&config.server.url),
        state,
        now,
    }
}

/// The bound after pruning: every entry of the last [`KEPT_FOR`] (two slots a day plus an ad
/// hoc post every 45 days) and two per post in the folder.
fn bound(lib: &Library) -> usize {
    let kept_days = KEPT_FOR.as_hours() as usize / 24 + 1;
    2 * kept_days + kept_days / 45 + 1 + 2 * lib.files.len()
}

/// Ten years of two slots a day (7,300 posts) with posts coming and going: the pruned state
/// stays under a bound that does not grow with the years, and the pruned state plans exactly
/// what the whole history plans (every slot of one day in thirty, and 60 days ahead yearly).
#[test]
fn ten_years_of_history_stay_bounded_and_plan_as_the_whole_history() {
    let config = config("times = [\"09:00\", \"15:00\"]\njitter = \"10m\"");
    let lives = lives(&config);
    let mut whole = State::default();
    let mut pruned = State::default();
    let mut largest = 0;
    let mut sent = 0;
    let mut last_now = day(0);
    for d in 0..DAYS {
        let lib = alive_on(&lives, d);
        // A post the server refused, then removed from the folder: its `failed` entry.
        for life in &lives {
            if life.gone == Some(d) && life.post.id.ends_with('5') {
                let failed = FailedPost {
                    hash: life.post.content_hash.clone(),
                    at: day(d),
                    message: "refused".to_string(),
                    settings: None,
                };
                whole.failed.insert(life.post.id.clone(), failed.clone());
                pruned.failed.insert(life.post.id.clone(), failed);
            }
        }
        // The day's slots and ad hoc posts, planned once (the planner carries each entry's
        // outcome to the next, as recording it would) and recorded in order.
        let mut now = day(d);
        let day_plan = plan(&input(&config, &lib, &pruned, now), day(d + 1), 8);
        // Planning with the whole history costs a pass over it: one day in thirty is
        // compared (and the next 60 days once a year, below).
        if d % 30 == 0 {
            let expected = plan(&input(&config, &lib, &whole, now), day(d + 1), 8);
            assert_eq!(day_plan, expected, "day {d}");
        }
        for entry in &day_plan.entries {
            now = now.max(entry.at);
            let hash = entry
                .post
                .as_ref()
                .and_then(|id| lib.posts.iter().find(|p| &p.id == id))
                .map(|p| p.content_hash.clone())
                .unwrap_or_default();
            for state in [&mut whole, &mut pruned] {
                record_entry(state, entry, &hash, now, vec![format!("{sent}")]);
            }
            sent += 1;
        }
        // As the daemon does once it has dealt with what was due: nothing before now is
        // reported as missed again.
        let checked = plan(&input(&config, &lib, &pruned, now), now, 0);
        for state in [&mut whole, &mut pruned] {
            record_checked(state, &checked, now);
        }
        prune(&lib, &mut pruned, now);
        last_now = now;
        largest = largest.max(pruned.history.len());
        assert!(
            pruned.history.len() <= bound(&lib),
            "day {d}: {} entries",
            pruned.history.len()
        );
        // Ahead: the next 60 days are planned the same.
        if d % 365 == 0 {
            let ahead = day(d + 60);
            assert_eq!(
                plan(&input(&config, &lib, &pruned, now), ahead, 1000),
                plan(&input(&config, &lib, &whole, now), ahead, 1000),
                "day {d}"
            );
        }
    }
    assert!(whole.history.len() > 7300, "{}", whole.history.len());
    let last = alive_on(&lives, DAYS);
    assert!(pruned.history.len() <= bound(&last));
    assert!(largest < 1000, "{largest}");
    // Refused posts long gone are forgotten; the whole state keeps them all.
    assert!(
        pruned.failed.len() < whole.failed.len(),
        "{:?}",
        pruned.failed
    );
    assert!(pruned
        .failed
        .values()
        .all(|failed| failed.at >= last_now - KEPT_FOR));
    eprintln!(
        "ten years: {sent} posts sent; history {} entries whole, {} pruned (at most {largest}); failed {} whole, {} pruned",
        whole.history.len(),
        pruned.history.len(),
        whole.failed.len(),
        pruned.failed.len()
    );
}

/// Ten years of history as an older perennial left it (7,300 entries, 40 posts of which 20
/// are gone, refused posts long gone): the daemon prunes it at start, saves, and plans
/// what the whole history plans.
#[tokio::test(start_paused = true)]
async fn the_daemon_prunes_ten_years_of_history_and_plans_the_same() {
    let now = ts("2037-01-05T12:00:00Z");
    let clock = TokioClock::starting_at(now);
    let present: Vec<String> = (0..20).map(|i| format!("tips/p{i:02}")).collect();
    let posts: Vec<(String, String)> = present
        .iter()
        .map(|id| (id.clone(), format!("Body of {id}.")))
        .collect();
    let posts: Vec<(&str, &str, &str)> = posts
        .iter()
        .map(|(id, body)| (id.as_str(), "", body.as_str()))
        .collect();
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "times = [\"09:00\", \"15:00\"]\njitter = \"0m\"",
        "",
        &posts,
    );
    let config = Config::load(&bot.config_path()).unwrap();
    let lib = perennial::commands::check::load(&config);
    assert_eq!(lib.posts.len(), 20);
    let mut whole = State::default();
    let gone: Vec<String> = (0..20).map(|i| format!("old/q{i:02}")).collect();
    for d in 0..DAYS {
        for (n, hour) in [(0, 9), (1, 15)] {
            let k = (2 * d + n) as usize;
            // The gone posts went out in the first five years only.
            let id = if d < DAYS / 2 && k.is_multiple_of(2) {
                &gone[k / 2 % 20]
            } else {
                &present[k % 20]
            };
            let hash = lib
                .posts
                .iter()
                .find(|post| &post.id == id)
                .map_or("sha256:gone".to_string(), |post| post.content_hash.clone());
            let slot = ts("2027-01-05T00:00:00Z") + SignedDuration::from_hours(24 * d + hour);
            whole.history.push(Posted {
                post: id.clone(),
                hash,
                slot,
                at: slot + SignedDuration::from_secs(2),
                reason: PostReason::Slot,
                category: "tips".to_string(),
                statuses: vec![format!("{k}")],
            });
        }
    }
    for (i, id) in gone.iter().enumerate().take(5) {
        whole.failed.insert(
            id.clone(),
            FailedPost {
                hash: "sha256:gone".to_string(),
                at: ts("2028-01-01T00:00:00Z") + SignedDuration::from_hours(24 * i as i64),
                message: "refused".to_string(),
                settings: None,
            },
        );
    }
    let last_slot = whole.history.last().unwrap().slot;
    whole.rotation.last_slot = Some(last_slot);
    whole.rotation.checked = Some(last_slot + SignedDuration::from_secs(3));
    assert_eq!(whole.history.len(), 7300);
    let store = StateStore::new(bot.dir.path().join("state"));
    store.save(&whole).unwrap();
    let whole_size = std::fs::metadata(store.path()).unwrap().len();

    bot.once(&clock).await;
    assert!(bot.fake.statuses().is_empty(), "nothing was due");
    let saved = bot.state();
    let saved_size = std::fs::metadata(store.path()).unwrap().len();
    // A year and a month of two posts a day, and nothing of the gone posts older than that.
    assert!(
        saved.history.len() <= 2 * 401 + 2 * 20,
        "{} entries kept",
        saved.history.len()
    );
    assert!(saved.failed.is_empty(), "{:?}", saved.failed);
    assert!(
        saved_size * 5 < whole_size,
        "{saved_size} of {whole_size} bytes"
    );
    // The plan for the next month is the whole history's.
    let mut expected_state = whole.clone();
    expected_state.rotation = saved.rotation.clone();
    let until = now + SignedDuration::from_hours(30 * 24);
    let later = clock.now();
    assert_eq!(
        plan(&input(&config, &lib, &saved, later), until, 1000),
        plan(&input(&config, &lib, &expected_state, later), until, 1000)
    );
}
