//! The daemon against the in-process fake server, with paused tokio time: a week of slots,
//! crashes at every step of a thread, faults, downtime and reloads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use perennial::daemon::clock::{Clock, TokioClock};
use perennial::daemon::engine::{Checkpoint, Step};
use perennial::daemon::systemd::Notifier;
use perennial::daemon::{self, Controls, Environment, RunError, RunOptions};
use perennial::network::token::TokenSources;
use perennial::plan::{plan, seed_for, PlanInput};
use perennial::posts::config::Config;
use perennial::state::{State, StateStore};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::fake_server::{FakeOptions, FakeServer, Fault, Route, StoredStatus};

/// Long enough for any simulated wait in these tests (time is paused: it costs nothing).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A bot in a temporary folder: config, posts and state, and the fake server it talks to.
pub(crate) struct Bot {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) fake: FakeServer,
}

impl Bot {
    /// `schedule`: the body of `[schedule]`; `posts`: (id, front matter, body).
    pub(crate) fn new(
        fake: FakeServer,
        schedule: &str,
        extra: &str,
        posts: &[(&str, &str, &str)],
    ) -> Bot {
        let dir = tempfile::tempdir().unwrap();
        // Mentions are off unless a test configures them: a stream with its pings and
        // catch-ups every few minutes would only slow the posting tests' simulated weeks.
        let mentions_off = if extra.contains("[mentions]") {
            ""
        } else {
            "\n[mentions]\nenabled = false\n"
        };
        let config = format!(
            "[server]\nurl = \"{}\"\n\n[posts]\ndir = \"posts\"\nhashtags = []\n{extra}\n{mentions_off}\n[schedule]\ntimezone = \"UTC\"\n{schedule}\n\n[state]\ndir = \"state\"\n",
            fake.url()
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let bot = Bot { dir, fake };
        for (id, front_matter, body) in posts {
            bot.write_post(id, front_matter, body);
        }
        bot
    }

    pub(crate) fn write_post(&self, id: &str, front_matter: &str, body: &str) {
        let path = self.dir.path().join("posts").join(format!("{id}.md"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!("+++\ntitle = \"{id}\"\n{front_matter}\n+++\n{body}\n"),
        )
        .unwrap();
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub(crate) fn state(&self) -> State {
        StateStore::new(self.dir.path().join("state"))
            .load()
            .unwrap()
            .unwrap_or_default()
    }

    pub(crate) fn environment(
        &self,
        clock: &TokioClock,
        checkpoint: Option<Checkpoint>,
    ) -> Environment {
        Environment {
            clock: Arc::new(*clock),
            token_sources: TokenSources {
                credentials_directory: None,
                env_token: Some(self.fake.token()),
                token_file: None,
            },
            state_directory: None,
            notifier: Notifier::disabled(),
            request_timeout: Duration::from_secs(30),
            watch_files: false,
            checkpoint,
            printer: Arc::new(perennial::commands::run::Stdout),
        }
    }

    /// Starts the daemon as a task.
    pub(crate) fn start(
        &self,
        clock: &TokioClock,
        options: RunOptions,
        checkpoint: Option<Checkpoint>,
    ) -> (JoinHandle<Result<(), RunError>>, Controls) {
        let controls = Controls::default();
        let environment = self.environment(clock, checkpoint);
        let config_path = self.config_path();
        let task_controls = controls.clone();
        let handle = tokio::spawn(async move {
            daemon::run(&config_path, options, environment, task_controls).await
        });
        (handle, controls)
    }

    /// Runs `run --once` to the end.
    pub(crate) async fn once(&self, clock: &TokioClock) {
        let (handle, _controls) = self.start(
            clock,
            RunOptions {
                dry_run: false,
                once: true,
            },
            None,
        );
        tokio::time::timeout(PATIENCE, handle)
            .await
            .expect("run --once finishes")
            .expect("the task does not panic")
            .expect("run --once succeeds");
    }

    /// The plan from an empty state at `now`, as post ids.
    pub(crate) fn expected_plan(&self, now: Timestamp, until: Timestamp) -> Vec<String> {
        let config = Config::load(&self.config_path()).unwrap();
        let library = perennial::commands::check::load(&config);
        let state = State::default();
        let input = PlanInput {
            posts: &library.posts,
            schedule: &config.schedule,
            seed: seed_for(&config.server.url),
            state: &state,
            now,
        };
        plan(&input, until, 1000)
            .entries
            .into_iter()
            .filter_map(|entry| entry.post)
            .collect()
    }
}

pub(crate) fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A fake server whose statuses are stamped with `clock`'s time.
pub(crate) fn fake(options: FakeOptions, clock: &TokioClock) -> FakeServer {
    let clock = *clock;
    FakeServer::start(options.with_clock(Arc::new(move || clock.now())))
}

/// Which post a status belongs to (the bodies below say "Body of ID.").
fn post_of(status: &StoredStatus) -> String {
    let start = status.text.find("Body of ").expect("a test post") + "Body of ".len();
    let rest = &status.text[start..];
    rest[..rest.find('.').unwrap()].to_string()
}

const WEEKDAYS: &str = "times = [\"09:00\", \"15:00\"]\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\njitter = \"10m\"\ngrace = \"30m\"";

fn six_posts() -> Vec<(String, String)> {
    [
        "showcase/a",
        "showcase/b",
        "showcase/c",
        "tips/d",
        "tips/e",
        "tips/f",
    ]
    .iter()
    .map(|id| (id.to_string(), format!("Body of {id}.")))
    .collect()
}

#[tokio::test(start_paused = true)]
async fn a_week_of_slots_posts_the_planned_posts_in_order_without_duplicates() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    // Monday 2027-01-04, 00:00 UTC.
    let start = ts("2027-01-04T00:00:00Z");
    let clock = TokioClock::starting_at(start);
    let posts = six_posts();
    let posts: Vec<(&str, &str, &str)> = posts
        .iter()
        .map(|(id, body)| (id.as_str(), "", body.as_str()))
        .collect();
    let bot = Bot::new(fake(FakeOptions::mastodon(), &clock), WEEKDAYS, "", &posts);
    let expected = bot.expected_plan(start, ts("2027-01-09T00:00:00Z"));
    assert_eq!(expected.len(), 10);

    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(10))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "ten statuses in a week: {:#?} {:?}",
                bot.fake.statuses().len(),
                handle.is_finished()
            )
        });
    // Let the weekend pass: nothing more.
    tokio::time::sleep(Duration::from_secs(2 * 24 * 3600)).await;
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();

    let statuses = bot.fake.statuses();
    assert_eq!(statuses.len(), 10, "no duplicate, nothing extra");
    let sent: Vec<String> = statuses.iter().map(post_of).collect();
    assert_eq!(sent, expected);
    // Each went out at its slot (+ jitter ≤ 10 min) on a weekday.
    for status in &statuses {
        let time = status.created_at.to_zoned(jiff::tz::TimeZone::UTC);
        assert!(
            matches!((time.hour(), time.minute()), (9, 0..=10) | (15, 0..=10)),
            "{time}"
        );
    }
    let state = bot.state();
    assert_eq!(state.history.len(), 10);
    assert!(state.pending.is_none());
    assert_eq!(
        state
            .history
            .iter()
            .map(|h| h.statuses[0].clone())
            .collect::<Vec<_>>(),
        statuses.iter().map(|s| s.id.clone()).collect::<Vec<_>>()
    );
    drop(statuses);
}

/// A post that becomes a 3-part thread at 500 characters.
fn thread_post() -> String {
    let sentence = "Reproducible research needs packages that install cleanly, document their API and keep a changelog.";
    format!("Body of long/thread. {}", [sentence; 11].join(" "))
}

/// Every step of sending a 3-part thread.
fn thread_steps() -> Vec<Step> {
    let mut steps = vec![Step::IntentSaved];
    for part in 0..3 {
        steps.extend([
            Step::BeforePart(part),
            Step::Accepted(part),
            Step::Recorded(part),
        ]);
    }
    steps
}

/// Crashes (aborts) the daemon at `step`, restarts it, and checks that each part exists
/// exactly once, as a thread, and that the history records it once.
async fn crash_at(step: Step, options: FakeOptions) {
    let start = ts("2027-01-04T08:59:00Z");
    let clock = TokioClock::starting_at(start);
    let body = thread_post();
    let bot = Bot::new(
        fake(options, &clock),
        "times = [\"09:00\"]\njitter = \"0m\"\ngrace = \"30m\"",
        "long_posts = \"thread\"",
        &[("long/thread", "", &body)],
    );
    let reached = Arc::new(Notify::new());
    let signal = reached.clone();
    let checkpoint: Checkpoint = Arc::new(move |at: Step| {
        if at == step {
            signal.notify_one();
            true
        } else {
            false
        }
    });
    let (handle, _controls) = bot.start(&clock, RunOptions::default(), Some(checkpoint));
    tokio::time::timeout(PATIENCE, reached.notified())
        .await
        .unwrap_or_else(|_| panic!("{step:?} is reached"));
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());

    // Restart a minute later and let it finish.
    tokio::time::sleep(Duration::from_secs(60)).await;
    bot.once(&clock).await;

    let statuses = bot.fake.statuses();
    assert_eq!(statuses.len(), 3, "{step:?}: {statuses:#?}");
    assert_eq!(statuses[0].in_reply_to_id, None, "{step:?}");
    assert_eq!(
        statuses[1].in_reply_to_id.as_ref(),
        Some(&statuses[0].id),
        "{step:?}"
    );
    assert_eq!(
        statuses[2].in_reply_to_id.as_ref(),
        Some(&statuses[1].id),
        "{step:?}"
    );
    let texts: std::collections::BTreeSet<&str> =
        statuses.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts.len(), 3, "{step:?}: three different parts");
    let state = bot.state();
    assert_eq!(state.history.len(), 1, "{step:?}");
    assert_eq!(
        state.history[0].statuses,
        statuses.iter().map(|s| s.id.clone()).collect::<Vec<_>>()
    );
    assert!(state.pending.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_step_of_a_thread_leaves_one_copy_of_each_part_gotosocial() {
    // GoToSocial ignores Idempotency-Key: only the look at our own statuses prevents duplicates.
    for step in thread_steps() {
        crash_at(step, FakeOptions::gotosocial().max_characters(500)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_step_of_a_thread_leaves_one_copy_of_each_part_mastodon() {
    for step in thread_steps() {
        crash_at(step, FakeOptions::mastodon()).await;
    }
}

/// One post due at 09:00 on Monday; `fault` hits the first attempt to post it.
async fn one_post_with_fault(
    route: Route,
    fault: Fault,
    options: FakeOptions,
) -> (Bot, TokioClock) {
    // `run --once` exactly at the slot.
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(options, &clock),
        "times = [\"09:00\"]\njitter = \"0m\"\ngrace = \"30m\"",
        "",
        &[("tips/only", "", "Body of tips/only.")],
    );
    bot.fake.inject(route, fault);
    bot.once(&clock).await;
    (bot, clock)
}

#[tokio::test(start_paused = true)]
async fn a_connection_dropped_after_the_server_stored_the_status_does_not_duplicate_it() {
    for options in [FakeOptions::mastodon(), FakeOptions::gotosocial()] {
        let (bot, _) =
            one_post_with_fault(Route::PostStatus, Fault::DropAfterCommit, options).await;
        assert_eq!(bot.fake.statuses().len(), 1);
        assert_eq!(bot.state().history.len(), 1);
        // It looked before resending.
        assert!(!bot.fake.requests_to(Route::OwnStatuses).is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_request_times_out_and_the_post_goes_out_once() {
    let (bot, clock) =
        one_post_with_fault(Route::PostStatus, Fault::Hang, FakeOptions::gotosocial()).await;
    let statuses = bot.fake.statuses();
    assert_eq!(statuses.len(), 1);
    // After the 30 s timeout, a look at our statuses, and a backoff of a few seconds.
    let sent = statuses[0].created_at;
    assert!(
        sent >= ts("2027-01-04T09:00:30Z") && sent < ts("2027-01-04T09:02:00Z"),
        "{sent}"
    );
    assert!(clock.now() >= sent);
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_until_the_reset() {
    let (bot, _) = one_post_with_fault(
        Route::PostStatus,
        Fault::rate_limited(120),
        FakeOptions::mastodon(),
    )
    .await;
    let statuses = bot.fake.statuses();
    assert_eq!(statuses.len(), 1);
    let sent = statuses[0].created_at;
    assert!(
        sent >= ts("2027-01-04T09:02:00Z") && sent < ts("2027-01-04T09:03:00Z"),
        "{sent}"
    );
    // One refused attempt, one accepted: no hammering while waiting.
    assert_eq!(bot.fake.requests_to(Route::PostStatus).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_500_is_retried() {
    let (bot, _) = one_post_with_fault(
        Route::PostStatus,
        Fault::InternalError,
        FakeOptions::mastodon(),
    )
    .await;
    assert_eq!(bot.fake.statuses().len(), 1);
    assert_eq!(bot.state().history.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_post_is_marked_failed_and_the_slot_takes_the_next_post() {
    // Mastodon at 500: the fake refuses anything longer; make the composer believe 5000.
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let long = format!("Body of tips/long. {}", "word ".repeat(300));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "times = [\"09:00\"]\njitter = \"0m\"\ngrace = \"30m\"",
        "",
        &[
            ("tips/long", "", &long),
            ("tips/short", "", "Body of tips/short."),
        ],
    );
    // The config's override: the composer fits to 5000, the server refuses over 500.
    let config = std::fs::read_to_string(bot.config_path()).unwrap();
    std::fs::write(
        bot.config_path(),
        config
            .replace("[posts]", "[posts]\n")
            .replace("url = ", "max_characters = 5000\nurl = "),
    )
    .unwrap();
    let expected = bot.expected_plan(clock.now(), ts("2027-01-04T10:00:00Z"));
    bot.once(&clock).await;
    let statuses = bot.fake.statuses();
    assert_eq!(statuses.len(), 1, "the slot is not lost");
    let state = bot.state();
    if expected[0] == "tips/long" {
        assert_eq!(post_of(&statuses[0]), "tips/short");
        let failed = &state.failed["tips/long"];
        assert!(
            failed.message.contains("character limit"),
            "{}",
            failed.message
        );
    } else {
        assert_eq!(post_of(&statuses[0]), "tips/short");
    }
}

#[tokio::test(start_paused = true)]
async fn three_days_of_downtime_give_no_burst() {
    let clock = TokioClock::starting_at(ts("2027-01-04T08:59:00Z"));
    let posts = six_posts();
    let posts: Vec<(&str, &str, &str)> = posts
        .iter()
        .map(|(id, body)| (id.as_str(), "", body.as_str()))
        .collect();
    let bot = Bot::new(fake(FakeOptions::mastodon(), &clock), WEEKDAYS, "", &posts);
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(1))
        .await
        .unwrap();
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
    // Down until Thursday 09:05 (past six slots, the last within grace), then back.
    let down_until = ts("2027-01-07T09:20:00Z");
    tokio::time::sleep(perennial::daemon::clock::until(clock.now(), down_until)).await;
    bot.once(&clock).await;
    let statuses = bot.fake.statuses();
    assert_eq!(statuses.len(), 2, "one catch-up at most: {statuses:#?}");
    assert!(statuses[1].created_at >= down_until);
    // And the rotation goes on from there, without repeating the catch-up.
    let state = bot.state();
    let last_slot = state.rotation.last_slot.unwrap();
    assert!(last_slot >= ts("2027-01-07T09:00:00Z") && last_slot < ts("2027-01-07T09:20:00Z"));
}

#[tokio::test(start_paused = true)]
async fn a_reload_with_a_broken_post_keeps_the_rest_and_picks_up_a_new_post() {
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "times = [\"09:00\"]\njitter = \"0m\"",
        "",
        &[
            ("tips/a", "", "Body of tips/a."),
            ("tips/b", "", "Body of tips/b."),
        ],
    );
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(1))
        .await
        .unwrap();
    // A broken file and a new good one, then SIGHUP (the reload request).
    std::fs::write(
        bot.dir.path().join("posts/tips/broken.md"),
        "+++\ntitle = \n+++\nBody of tips/broken.\n",
    )
    .unwrap();
    bot.write_post("tips/new", "", "Body of tips/new.");
    controls.reload.notify_one();
    let statuses = tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(3))
        .await
        .unwrap();
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
    let sent: Vec<String> = statuses.iter().map(post_of).collect();
    // The new post is never-posted, so it comes before the remaining old one... unless
    // the remaining old one was never posted either; both precede any repeat.
    assert!(sent[1..].contains(&"tips/new".to_string()), "{sent:?}");
    assert!(!sent.contains(&"tips/broken".to_string()));
}

#[tokio::test(start_paused = true)]
async fn a_broken_config_on_reload_keeps_the_old_one() {
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "times = [\"09:00\"]\njitter = \"0m\"",
        "",
        &[("tips/a", "", "Body of tips/a.")],
    );
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(1))
        .await
        .unwrap();
    std::fs::write(bot.config_path(), "[server]\nurl = 12\n").unwrap();
    controls.reload.notify_one();
    let statuses = tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(2))
        .await
        .unwrap();
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(statuses.len(), 2, "still posting on the old schedule");
}

#[tokio::test(start_paused = true)]
async fn a_wrong_token_stops_with_exit_code_78_and_never_shows_the_token() {
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "times = [\"09:00\"]",
        "",
        &[("tips/a", "", "Body of tips/a.")],
    );
    let mut environment = bot.environment(&clock, None);
    environment.token_sources.env_token = Some("not-the-right-secret-token".into());
    let error = daemon::run(
        &bot.config_path(),
        RunOptions::default(),
        environment,
        Controls::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.exit_code(), 78);
    let message = format!("{error} {error:?}");
    assert!(!message.contains("not-the-right-secret-token"), "{message}");
    assert!(message.contains("perennial login"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_needs_no_token_and_writes_no_state() {
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "times = [\"09:00\"]\njitter = \"0m\"",
        "",
        &[("tips/a", "", "Body of tips/a.")],
    );
    let mut environment = bot.environment(&clock, None);
    environment.token_sources.env_token = None;
    let options = RunOptions {
        dry_run: true,
        once: false,
    };
    let controls = Controls::default();
    let task_controls = controls.clone();
    let config_path = bot.config_path();
    let handle = tokio::spawn(async move {
        daemon::run(&config_path, options, environment, task_controls).await
    });
    tokio::time::sleep(Duration::from_secs(3 * 24 * 3600)).await;
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
    assert!(bot.fake.statuses().is_empty());
    assert!(
        bot.fake.requests().is_empty(),
        "a dry run does not talk to the server"
    );
    assert!(!bot.dir.path().join("state/state.json").exists());
}

#[tokio::test(start_paused = true)]
async fn media_are_uploaded_with_their_alt_text_and_attached_to_the_first_part() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon().media_processing_polls(2), &clock),
        "times = [\"09:00\"]\njitter = \"0m\"",
        "",
        &[(
            "showcase/pic",
            "[[media]]\nfile = \"images/pic.png\"\nalt = \"A chart of downloads per month\"",
            "Body of showcase/pic.",
        )],
    );
    let images = bot.dir.path().join("posts/showcase/images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(
        images.join("pic.png"),
        b"\x89PNG\r\n\x1a\nnot really an image",
    )
    .unwrap();
    bot.once(&clock).await;
    let statuses = bot.fake.statuses();
    assert_eq!(statuses.len(), 1);
    let media = bot.fake.media();
    assert_eq!(media.len(), 1);
    assert_eq!(media[0].description, "A chart of downloads per month");
    assert_eq!(statuses[0].media_ids, vec![media[0].id.clone()]);
}

#[tokio::test(start_paused = true)]
async fn a_server_failing_past_grace_misses_the_slot_instead_of_posting_late() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "times = [\"09:00\"]\njitter = \"0m\"\ngrace = \"30m\"",
        "",
        &[
            ("tips/a", "", "Body of tips/a."),
            ("tips/b", "", "Body of tips/b."),
        ],
    );
    for _ in 0..200 {
        bot.fake.inject(Route::PostStatus, Fault::InternalError);
    }
    bot.once(&clock).await;
    assert!(bot.fake.statuses().is_empty());
    assert!(
        clock.now() >= ts("2027-01-04T09:30:00Z"),
        "it kept trying within grace"
    );
    let attempts = bot.fake.requests_to(Route::PostStatus).len();
    // Exponential backoff to 5 minutes: a few dozen tries in half an hour at most.
    assert!(
        (5..=30).contains(&attempts),
        "backoff, not hammering: {attempts}"
    );
    let state = bot.state();
    assert!(state.pending.is_none());
    assert!(state.history.is_empty());
    // Run again: the slot is not tried again, late.
    bot.once(&clock).await;
    assert_eq!(bot.fake.requests_to(Route::PostStatus).len(), attempts);
}

#[tokio::test(start_paused = true)]
async fn a_weekend_of_waiting_tells_systemd_what_is_next_once() {
    // Friday 2027-01-08 16:00 UTC, after the day's last slot: the next is Monday 09:00, and
    // the daemon wakes every few hours on the way.
    let clock = TokioClock::starting_at(ts("2027-01-08T16:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        WEEKDAYS,
        "",
        &[("tips/a", "", "Body of tips/a.")],
    );
    let socket_dir = tempfile::tempdir().unwrap();
    let socket_path = socket_dir.path().join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_nonblocking(true).unwrap();
    let environment = Environment {
        notifier: Notifier::for_socket(&socket_path),
        ..bot.environment(&clock, None)
    };
    let config_path = bot.config_path();
    let options = RunOptions {
        dry_run: false,
        once: false,
    };
    let handle = tokio::spawn(async move {
        daemon::run(&config_path, options, environment, Controls::default()).await
    });
    // Monday 08:00: 64 hours of waiting.
    tokio::time::sleep(Duration::from_secs(64 * 3600)).await;
    assert!(!handle.is_finished(), "the daemon is still running");
    handle.abort();

    let mut statuses = Vec::new();
    let mut buffer = vec![0u8; 4096];
    while let Ok(length) = socket.recv(&mut buffer) {
        let message = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if let Some(status) = message.strip_prefix("STATUS=") {
            statuses.push(status.to_string());
        }
    }
    assert_eq!(
        statuses.len(),
        1,
        "one status line for one unchanged plan: {statuses:?}"
    );
    assert!(
        statuses[0].starts_with("next: tips/a at Mon 2027-01-11 09:"),
        "{statuses:?}"
    );
    assert!(bot.fake.statuses().is_empty());
}
