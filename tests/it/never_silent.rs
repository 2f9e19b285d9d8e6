//! Regression tests for what a real GoToSocial and a hostile server found (issue 14): each is
//! a way the account went silent for good, posted twice, or posted what `preview` did not
//! show. The daemon runs against the in-process fake server in paused time; each test is
//! named after the bug it pins.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use perennial::daemon::clock::{Clock, TokioClock};
use perennial::daemon::{self, Controls, RunOptions};
use perennial::posts::config::Visibility;
use perennial::state::{MentionOutcome, SkipReason, StateStore};

use crate::daemon_runs::{fake, ts, Bot, PATIENCE};
use crate::fake_server::{FakeOptions, Fault, Quirk, Route};
use crate::support::Captured;

/// Mentions on, with one guide that "packaging" asks for.
const MENTIONS_WITH_A_GUIDE: &str = "[mentions]\nenabled = true\n\n[[guides]]\ntopic = \"packaging\"\nkeywords = [\"packaging\"]\ntitle = \"Python Package Guide\"\nurl = \"https://www.pyopensci.org/python-package-guide/\"\n";

/// One slot a day at 09:00, no jitter.
const DAILY_0900: &str = "times = [\"09:00\"]\njitter = \"0m\"\ngrace = \"30m\"";

/// A body that becomes a thread of 3 or more at 500 characters.
fn long_body(marker: &str) -> String {
    let sentence = "Reproducible research needs packages that install cleanly, document their API and keep a changelog.";
    format!("Body of {marker}. {}", [sentence; 11].join(" "))
}

#[tokio::test(start_paused = true)]
async fn thread_parts_after_the_first_go_out_unlisted_not_public() {
    for options in [
        FakeOptions::gotosocial().max_characters(500),
        FakeOptions::mastodon(),
    ] {
        let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
        let bot = Bot::new(
            fake(options, &clock),
            DAILY_0900,
            "",
            &[(
                "long/thread",
                "long_posts = \"thread\"",
                &long_body("long/thread"),
            )],
        );
        bot.once(&clock).await;
        let statuses = bot.fake.statuses();
        assert!(statuses.len() >= 3, "a thread: {statuses:#?}");
        assert_eq!(statuses[0].visibility, "public");
        for part in &statuses[1..] {
            assert_eq!(part.visibility, "unlisted", "part {}: {part:#?}", part.id);
        }
        // And exactly what the composer (so `preview`) gives each part.
        let pending_parts = bot.state().history[0].statuses.len();
        assert_eq!(pending_parts, statuses.len());
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_with_a_reset_that_rounds_to_zero_never_spins() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::gotosocial(), &clock),
        DAILY_0900,
        "",
        &[("tips/only", "", "Body of tips/only.")],
    );
    // GoToSocial: X-Ratelimit-Reset in whole seconds, no Retry-After: a wait of 0 s.
    for _ in 0..50 {
        bot.fake.inject(Route::PostStatus, Fault::rate_limited(0));
    }
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    bot.fake.wait_for_requests(Route::PostStatus, 1).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let attempts = bot.fake.requests_to(Route::PostStatus).len();
    // Backoff from 1–2 s doubling: at most 4 tries in 10 s; the spin made all 51 at once.
    assert!(
        (2..=5).contains(&attempts),
        "{attempts} POSTs in the first 10 s"
    );
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
}

/// Found against a real GoToSocial: its 429 on the read of the newest own status just before
/// sending was taken for a broken read, and the post was sent into the limit (a second 429).
/// A server that asks us to wait is waited for before anything is sent; and its whole-second
/// reset is waited out one second past, so the retry does not land inside the window.
#[tokio::test(start_paused = true)]
async fn a_429_on_the_read_before_sending_is_waited_out_before_posting() {
    let clock = TokioClock::starting_at(ts("2027-01-04T08:59:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::gotosocial(), &clock),
        DAILY_0900,
        "",
        &[("tips/only", "", "Body of tips/only.")],
    );
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    // Connecting reads the own statuses once (can the token read them?); the next read is
    // the one just before sending at 09:00.
    bot.fake.wait_for_requests(Route::OwnStatuses, 1).await;
    bot.fake
        .inject_quirk(Route::OwnStatuses, Quirk::gotosocial_rate_limited(30));
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(1))
        .await
        .expect("the post goes out after the wait");
    assert_eq!(
        bot.fake.requests_to(Route::PostStatus).len(),
        1,
        "nothing was sent into the limit"
    );
    assert!(
        clock.now() >= ts("2027-01-04T09:00:31Z"),
        "the whole-second reset was waited out one second past: {}",
        clock.now()
    );
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_of_a_trillion_seconds_neither_panics_nor_stops_the_bot() {
    for retry_after in [1_000_000_000_000u64, u64::MAX, 1_796_354_000] {
        let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
        let bot = Bot::new(
            fake(FakeOptions::mastodon(), &clock),
            "times = [\"09:00\", \"15:00\"]\njitter = \"0m\"\ngrace = \"30m\"",
            "",
            &[
                ("tips/a", "", "Body of tips/a."),
                ("tips/b", "", "Body of tips/b."),
            ],
        );
        bot.fake.inject(
            Route::PostStatus,
            Fault::RateLimited {
                reset_after: Duration::ZERO,
                retry_after_secs: Some(retry_after),
            },
        );
        let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
        // The wait is capped at an hour: the 09:00 post goes out by 10:00 at the latest, or
        // its slot is given up and 15:00 posts.
        tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(1))
            .await
            .expect("a post goes out");
        assert!(
            clock.now() <= ts("2027-01-04T15:01:00Z"),
            "{retry_after}: {}",
            clock.now()
        );
        controls.shutdown.cancel();
        handle.await.unwrap().unwrap();
    }
}

/// Issue 14 item 2, the reply side: `Retry-After: 1796354000` (an epoch sent as seconds) on a
/// reply stopped every later reply for the life of the process, and `2^64-1` on the
/// notifications panicked in `Instant` addition. Each wait is capped at an hour.
#[tokio::test(start_paused = true)]
async fn an_absurd_retry_after_on_a_reply_or_the_notifications_does_not_stop_replying() {
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        DAILY_0900,
        MENTIONS_WITH_A_GUIDE,
        &[],
    );
    let started = clock.now();
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_stream_count(1))
        .await
        .expect("the daemon listens");
    for (route, seconds) in [
        (Route::PostStatus, 1_796_354_000),
        (Route::Notifications, u64::MAX),
    ] {
        bot.fake.inject(
            route,
            Fault::RateLimited {
                reset_after: Duration::ZERO,
                retry_after_secs: Some(seconds),
            },
        );
    }
    for n in 0..2 {
        bot.fake.add_mention(
            &format!("user{n}@example.org"),
            "<p>@bot how does packaging work?</p>",
            Visibility::Public,
            None,
            false,
        );
    }
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(2))
        .await
        .expect("both mentions are answered");
    assert!(
        clock.now().duration_since(started) <= SignedDuration::from_hours(2),
        "answered only at {}",
        clock.now()
    );
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_older_identical_status_is_not_taken_for_the_post_after_an_unsent_503() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::gotosocial(), &clock),
        DAILY_0900,
        "",
        &[("tips/only", "", "Body of tips/only.")],
    );
    bot.once(&clock).await;
    assert_eq!(bot.fake.statuses().len(), 1);
    // A second state folder (a fresh install, a restored backup) posts the same text a
    // minute later; its first POST is answered 503 by a proxy that never forwarded it.
    std::fs::remove_dir_all(bot.dir.path().join("state")).unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    bot.fake.inject(
        Route::PostStatus,
        Fault::Unavailable503 {
            retry_after_secs: None,
        },
    );
    bot.once(&clock).await;
    let statuses = bot.fake.statuses();
    assert_eq!(
        statuses.len(),
        2,
        "the post went out again, not recorded as the old status"
    );
    let state = bot.state();
    assert_eq!(state.history.len(), 1);
    assert_eq!(state.history[0].statuses, vec![statuses[1].id.clone()]);
}

/// A clock `ahead` of tokio's paused one.
#[derive(Debug)]
struct AheadClock {
    clock: TokioClock,
    ahead: SignedDuration,
}

impl Clock for AheadClock {
    fn now(&self) -> Timestamp {
        self.clock.now() + self.ahead
    }
}

#[tokio::test(start_paused = true)]
async fn a_local_clock_six_minutes_ahead_does_not_post_twice_after_a_drop_after_commit() {
    // The server's clock is the true one; ours is 6 minutes ahead.
    let server_clock = TokioClock::starting_at(ts("2027-01-04T08:54:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::gotosocial(), &server_clock),
        DAILY_0900,
        "",
        &[("tips/only", "", "Body of tips/only.")],
    );
    bot.fake.inject(Route::PostStatus, Fault::DropAfterCommit);
    let environment = perennial::daemon::Environment {
        clock: Arc::new(AheadClock {
            clock: server_clock,
            ahead: SignedDuration::from_mins(6),
        }),
        ..bot.environment(&server_clock, None)
    };
    let config_path = bot.config_path();
    let options = RunOptions {
        dry_run: false,
        once: true,
    };
    tokio::time::timeout(
        PATIENCE,
        daemon::run(&config_path, options, environment, Controls::default()),
    )
    .await
    .expect("run --once ends")
    .expect("run --once succeeds");
    assert_eq!(bot.fake.statuses().len(), 1, "GoToSocial got the post once");
    assert_eq!(bot.state().history.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_404_401_403_or_redirect_on_posting_fails_no_post_and_posting_resumes() {
    for status in [404u16, 401, 403, 302, 307] {
        let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
        let bot = Bot::new(
            fake(FakeOptions::gotosocial(), &clock),
            "times = [\"09:00\", \"15:00\"]\njitter = \"0m\"\ngrace = \"30m\"",
            "",
            &[
                ("tips/a", "", "Body of tips/a."),
                ("tips/b", "", "Body of tips/b."),
                ("tips/c", "", "Body of tips/c."),
            ],
        );
        // The whole 09:00 slot's grace long, every POST is refused.
        for _ in 0..30 {
            bot.fake.inject(Route::PostStatus, Fault::Status { status });
        }
        let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
        tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(1))
            .await
            .expect("posting resumes");
        let state = bot.state();
        assert!(
            state.failed.is_empty(),
            "HTTP {status} failed posts: {:?}",
            state.failed
        );
        controls.shutdown.cancel();
        handle.await.unwrap().unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_clock_once_a_day_ahead_does_not_silence_the_bot() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        DAILY_0900,
        "",
        &[
            ("tips/a", "", "Body of tips/a."),
            ("tips/b", "", "Body of tips/b."),
        ],
    );
    // A run with the clock a day ahead wrote its times in the future.
    let store = StateStore::new(bot.dir.path().join("state"));
    let mut state = perennial::state::State::default();
    state.rotation.last_slot = Some(ts("2027-01-05T09:00:00Z"));
    state.rotation.checked = Some(ts("2027-01-05T09:00:10Z"));
    store.save(&state).unwrap();
    bot.once(&clock).await;
    assert_eq!(bot.fake.statuses().len(), 1, "today's 09:00 slot posts");
}

#[tokio::test(start_paused = true)]
async fn a_pending_post_whose_search_keeps_failing_holds_back_only_itself() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::gotosocial(), &clock),
        "times = [\"09:00\", \"15:00\"]\njitter = \"0m\"\ngrace = \"30m\"",
        "",
        &[
            ("tips/a", "", "Body of tips/a."),
            ("tips/b", "", "Body of tips/b."),
        ],
    );
    // The first post's answer is lost, and the own-status search fails for the rest of the
    // day: it cannot be told whether the post went out.
    // (Injected once the daemon has connected: connecting reads the own statuses too, and
    // a failing read there only delays the start.)
    bot.fake.inject(Route::PostStatus, Fault::DropAfterCommit);
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    bot.fake.wait_for_requests(Route::PostStatus, 1).await;
    for _ in 0..5000 {
        bot.fake.inject(Route::OwnStatuses, Fault::InternalError);
    }
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(2))
        .await
        .expect("the 15:00 slot (or a later one) still posts");
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
    let statuses = bot.fake.statuses();
    assert_ne!(
        statuses[0].text, statuses[1].text,
        "the unverifiable post was not sent again"
    );
    assert!(
        statuses[1].created_at <= ts("2027-01-04T15:30:00Z"),
        "the 15:00 slot posted, not a later one: {}",
        statuses[1].created_at
    );
}

#[tokio::test(start_paused = true)]
async fn mentions_are_answered_while_a_post_waits_out_a_503_with_retry_after() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::gotosocial(), &clock),
        DAILY_0900,
        MENTIONS_WITH_A_GUIDE,
        &[("tips/only", "", "Body of tips/only.")],
    );
    // GoToSocial at start-up: 503 with Retry-After: 120.
    bot.fake.inject(
        Route::PostStatus,
        Fault::Unavailable503 {
            retry_after_secs: Some(120),
        },
    );
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    bot.fake.wait_for_requests(Route::PostStatus, 1).await;
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_stream_count(1))
        .await
        .expect("the daemon listens");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let asked = clock.now();
    bot.fake.add_mention(
        "alice@example.org",
        "<p>@bot how does packaging work?</p>",
        Visibility::Public,
        None,
        false,
    );
    let statuses = tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(2))
        .await
        .expect("the reply and the post");
    let reply = statuses
        .iter()
        .find(|status| status.in_reply_to_id.is_some())
        .expect("a reply");
    let waited = reply.created_at.duration_since(asked);
    assert!(
        waited < SignedDuration::from_secs(30),
        "the reply waited {waited:#} behind the post's retry"
    );
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn refused_replies_count_against_the_caps_and_pause_replying() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    // The fake refuses anything over 20 characters; the config makes the composer believe 500.
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon().max_characters(20), &clock),
        DAILY_0900,
        "[mentions]\nenabled = true\nper_hour = 10\nper_account_per_hour = 100\n\n[[guides]]\ntopic = \"packaging\"\nkeywords = [\"packaging\"]\ntitle = \"Python Package Guide\"\nurl = \"https://www.pyopensci.org/python-package-guide/\"\n",
        &[],
    );
    let config = std::fs::read_to_string(bot.config_path()).unwrap();
    std::fs::write(
        bot.config_path(),
        config.replacen("url = ", "max_characters = 500\nurl = ", 1),
    )
    .unwrap();
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_stream_count(1))
        .await
        .expect("the daemon listens");
    for n in 0..200 {
        bot.fake.add_mention(
            &format!("user{n}@example.org"),
            "<p>@bot how does packaging work?</p>",
            Visibility::Public,
            None,
            false,
        );
    }
    tokio::time::sleep(Duration::from_secs(3000)).await;
    let attempts = bot.fake.requests_to(Route::PostStatus).len();
    assert!(
        (1..=10).contains(&attempts),
        "{attempts} reply POSTs refused in 50 minutes, over per_hour = 10"
    );
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
    let state = bot.state();
    let refused = state
        .mentions
        .handled
        .iter()
        .filter(|handled| {
            handled.outcome
                == MentionOutcome::Skipped {
                    reason: SkipReason::Refused,
                }
        })
        .count();
    assert_eq!(refused, attempts, "each refused attempt is recorded");
}

/// Issue 14 item 10: a server or proxy that echoes the `Authorization` header in its refusal
/// must not put the token in `state.json` (`failed[].message`).
#[tokio::test(start_paused = true)]
async fn a_token_echoed_in_a_refusal_is_kept_out_of_the_state_file() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        DAILY_0900,
        "",
        &[("tips/only", "", "Body of tips/only.")],
    );
    bot.fake
        .inject_quirk(Route::PostStatus, Quirk::EchoAuthorization { status: 422 });
    bot.once(&clock).await;
    let state = bot.state();
    let failed = state.failed.values().next().expect("the post failed");
    assert!(failed.message.contains("[redacted]"), "{failed:?}");
    let text = std::fs::read_to_string(bot.dir.path().join("state/state.json")).unwrap();
    assert!(!text.contains(&bot.fake.token()), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_limit_too_small_for_the_link_fails_the_post_instead_of_posting_an_ellipsis() {
    for limit in [1usize, 10] {
        let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
        let bot = Bot::new(
            fake(FakeOptions::mastodon(), &clock),
            DAILY_0900,
            "",
            &[(
                "tips/only",
                "link = \"https://www.pyopensci.org/python-package-guide/\"",
                "Body of tips/only, which is long enough to need cutting at any small limit.",
            )],
        );
        let config = std::fs::read_to_string(bot.config_path()).unwrap();
        std::fs::write(
            bot.config_path(),
            config.replace("url = ", &format!("max_characters = {limit}\nurl = ")),
        )
        .unwrap();
        bot.once(&clock).await;
        assert!(
            bot.fake.statuses().is_empty(),
            "at {limit}: {:?}",
            bot.fake.statuses()
        );
        let state = bot.state();
        let failed = state.failed.get("tips/only").expect("the post is failed");
        assert!(
            failed.message.contains("cannot be sent"),
            "{}",
            failed.message
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_daemon_keeps_what_it_learnt_of_the_server_for_offline_commands() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::gotosocial().max_characters(700), &clock),
        DAILY_0900,
        "",
        &[("tips/only", "", "Body of tips/only.")],
    );
    bot.once(&clock).await;
    let seen = bot.state().server.expect("the server is remembered");
    assert_eq!(seen.software, perennial::text::count::Software::Gotosocial);
    assert_eq!(seen.max_characters, 700);
    assert_eq!(seen.url, bot.fake.url().trim_end_matches('/'));
}

#[tokio::test(start_paused = true)]
async fn sigterm_mid_thread_stops_after_the_part_in_flight_and_the_rest_resumes() {
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::gotosocial().max_characters(500), &clock),
        DAILY_0900,
        "",
        &[(
            "long/thread",
            "long_posts = \"thread\"",
            &long_body("long/thread"),
        )],
    );
    let controls = Controls::default();
    let stop = controls.shutdown.clone();
    // SIGTERM arrives while part 1 is on the wire.
    let checkpoint: perennial::daemon::engine::Checkpoint = Arc::new(move |step| {
        if step == perennial::daemon::engine::Step::BeforePart(0) {
            stop.cancel();
        }
        false
    });
    let environment = bot.environment(&clock, Some(checkpoint));
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        daemon::run(
            &bot.config_path(),
            RunOptions::default(),
            environment,
            controls,
        ),
    )
    .await
    .expect("it stops at once, not after the whole thread");
    result.unwrap();
    assert_eq!(bot.fake.statuses().len(), 1, "the part in flight, no more");
    let pending = bot.state().pending.expect("the thread stays in flight");
    assert!(pending.parts[0].status_id.is_some());
    assert!(pending.parts[1].status_id.is_none());
    // The next run finishes it without a duplicate.
    bot.once(&clock).await;
    let statuses = bot.fake.statuses();
    assert_eq!(statuses.len(), pending.parts.len());
    assert_eq!(
        statuses[1].in_reply_to_id.as_deref(),
        Some(&*statuses[0].id)
    );
}

#[tokio::test(start_paused = true)]
async fn one_broken_config_edit_is_logged_once_though_reloaded_twice() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber());
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        DAILY_0900,
        "",
        &[("tips/only", "", "Body of tips/only.")],
    );
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    bot.fake.wait_for_requests(Route::Instance, 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let config = std::fs::read_to_string(bot.config_path()).unwrap();
    std::fs::write(bot.config_path(), format!("{config}\nunknown_key = 1\n")).unwrap();
    // The watcher and a SIGHUP both see the one edit.
    for _ in 0..3 {
        controls.reload.notify_one();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
    let log = captured.text();
    assert_eq!(
        log.matches("the configuration has problems").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("unknown_key").count(), 1, "{log}");
}

#[tokio::test(start_paused = true)]
async fn slots_passed_while_a_post_was_retried_are_not_called_missed_while_stopped() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber());
    let clock = TokioClock::starting_at(ts("2027-01-04T09:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "every = \"5m\"\njitter = \"0m\"\ngrace = \"10m\"",
        "",
        &[
            (
                "long/thread",
                "long_posts = \"thread\"",
                &long_body("long/thread"),
            ),
            ("tips/b", "", "Body of tips/b."),
        ],
    );
    // Once the thread's first part is out, the rest waits out 40 minutes of 503s (a thread
    // already started is always finished): eight slots pass meanwhile.
    let server = bot.fake.clone();
    let checkpoint: perennial::daemon::engine::Checkpoint = Arc::new(move |step| {
        if step == perennial::daemon::engine::Step::Recorded(0) {
            for _ in 0..12 {
                server.inject(
                    Route::PostStatus,
                    Fault::Unavailable503 {
                        retry_after_secs: Some(200),
                    },
                );
            }
        }
        false
    });
    // The daemon ran before: the last check was a minute ago.
    let mut state = perennial::state::State::default();
    state.rotation.last_slot = Some(ts("2027-01-04T08:55:00Z"));
    state.rotation.checked = Some(ts("2027-01-04T08:59:00Z"));
    StateStore::new(bot.dir.path().join("state"))
        .save(&state)
        .unwrap();
    let (handle, controls) = bot.start(&clock, RunOptions::default(), Some(checkpoint));
    let parts = long_body("long/thread").len() / 400 + 1;
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(parts + 1))
        .await
        .unwrap();
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
    let log = captured.text();
    assert!(
        !log.contains("while the daemon was not running"),
        "the daemon was running: {log}"
    );
    assert!(log.contains("while the daemon was busy"), "{log}");
}
