//! Mentions through the whole daemon against the fake server, with paused time: the stream
//! and the catch-up together, crashes around a reply, the guards and the caps, and the
//! hostile corpus.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use perennial::daemon::clock::{Clock, TokioClock};
use perennial::daemon::engine::{Checkpoint, Step};
use perennial::daemon::RunOptions;
use perennial::posts::config::Visibility;
use perennial::state::{MentionOutcome, SkipReason};
use tokio::sync::Notify;

use crate::daemon_runs::{fake, ts, Bot, PATIENCE};
use crate::fake_server::{FakeOptions, FakeServer, Fault, Route, StoredStatus};

const PACKAGING_URL: &str = "https://www.example.org/python-package-guide/";
const REVIEW_URL: &str = "https://www.example.org/software-peer-review/";

/// `[mentions]` and two guides; `mentions`: extra lines for `[mentions]`.
fn mentions_config(mentions: &str) -> String {
    format!(
        "\n[mentions]\nreply_visibility = \"unlisted\"\npoll_every = \"5m\"\n{mentions}\n\n\
         [[guides]]\ntopic = \"packaging\"\nkeywords = [\"package\", \"packaging\", \"pypi\"]\n\
         title = \"Python Package Guide\"\nurl = \"{PACKAGING_URL}\"\n\n\
         [[guides]]\ntopic = \"review\"\nkeywords = [\"review\", \"peer review\"]\n\
         title = \"Software Peer Review Guide\"\nurl = \"{REVIEW_URL}\"\n"
    )
}

/// A bot whose only post goes out at 09:00 each day; the tests run from 10:00, so within
/// a day every status but that one is a reply.
fn bot_with(options: FakeOptions, clock: &TokioClock, mentions: &str) -> Bot {
    Bot::new(
        fake(options, clock),
        "times = [\"09:00\"]\njitter = \"0m\"\ngrace = \"30m\"",
        &mentions_config(mentions),
        &[("tips/one", "", "Body of tips/one.")],
    )
}

fn start_clock() -> TokioClock {
    TokioClock::starting_at(ts("2027-01-04T10:00:00Z"))
}

fn replies(fake: &FakeServer) -> Vec<StoredStatus> {
    fake.statuses()
        .into_iter()
        .filter(|status| status.in_reply_to_id.is_some())
        .collect()
}

/// Waits until the fake server holds `n` replies.
async fn wait_for_replies(fake: &FakeServer, n: usize) -> Vec<StoredStatus> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let replies = replies(fake);
            if replies.len() >= n {
                return replies;
            }
            fake.wait_for_statuses(fake.statuses().len() + 1).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} replies; got {}", replies(fake).len()))
}

/// Lets the daemon work through what it has: paused time advances only when every task
/// is idle, so a long simulated wait ends after everything it could do is done.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

/// Starts the daemon and waits until its stream is open and its first catch-up is done.
async fn start_listening(
    bot: &Bot,
    clock: &TokioClock,
    checkpoint: Option<Checkpoint>,
) -> (
    tokio::task::JoinHandle<Result<(), perennial::daemon::RunError>>,
    perennial::daemon::Controls,
) {
    let started = bot.fake.requests_to(Route::Notifications).len();
    let (handle, controls) = bot.start(clock, RunOptions::default(), checkpoint);
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_stream_count(1))
        .await
        .expect("the daemon opens the stream");
    tokio::time::timeout(
        PATIENCE,
        bot.fake
            .wait_for_requests(Route::Notifications, started + 1),
    )
    .await
    .expect("the daemon catches up");
    (handle, controls)
}

/// A public mention by `acct`, not a reply, from a person. Returns the notification id.
fn ask(fake: &FakeServer, acct: &str, html: &str) -> String {
    fake.add_mention(acct, html, Visibility::Public, None, false)
}

/// Stops the daemon and checks it ended well.
async fn stop(
    handle: tokio::task::JoinHandle<Result<(), perennial::daemon::RunError>>,
    controls: &perennial::daemon::Controls,
) {
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
}

/// How many recorded mentions were skipped for `reason`.
fn skipped(mentions: &perennial::state::MentionsState, reason: SkipReason) -> usize {
    mentions
        .handled
        .iter()
        .filter(|handled| handled.outcome == MentionOutcome::Skipped { reason })
        .count()
}

/// The `@name` words of a status's text.
fn mentioned(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace())
        .filter(|word| word.starts_with('@') && word.len() > 1)
        .map(str::to_string)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_mention_by_stream_gets_one_reply_with_the_right_guide() {
    let clock = start_clock();
    let bot = bot_with(FakeOptions::mastodon(), &clock, "");
    let (handle, controls) = start_listening(&bot, &clock, None).await;

    let notification = ask(&bot.fake, "alice@example.org", "<p><span class=\"h-card\"><a href=\"https://example.social/@bot\" class=\"u-url mention\">@<span>bot</span></a></span> how do I package my Python code?</p>");
    let status = bot.fake.status_of_notification(&notification).unwrap();
    let replies = wait_for_replies(&bot.fake, 1).await;
    settle().await;
    stop(handle, &controls).await;

    assert_eq!(self::replies(&bot.fake).len(), 1, "exactly one reply");
    let reply = &replies[0];
    assert_eq!(reply.in_reply_to_id.as_deref(), Some(status.as_str()));
    assert!(
        reply.text.starts_with("@alice@example.org"),
        "{}",
        reply.text
    );
    assert!(reply.text.contains(PACKAGING_URL), "{}", reply.text);
    assert!(!reply.text.contains(REVIEW_URL), "{}", reply.text);
    assert_eq!(
        reply.visibility, "unlisted",
        "never more public than reply_visibility"
    );
    assert_eq!(
        mentioned(&reply.text),
        BTreeSet::from(["@alice@example.org".to_string()])
    );
    let state = bot.state();
    assert!(state.mentions.pending.is_empty());
    assert!(state.mentions.handled.iter().any(|handled| handled.notification
        == notification
        && matches!(&handled.outcome, MentionOutcome::Replied { status_id } if *status_id == reply.id)));
}

#[tokio::test(start_paused = true)]
async fn a_direct_mention_gets_a_direct_reply() {
    let clock = start_clock();
    let bot = bot_with(FakeOptions::gotosocial(), &clock, "");
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    bot.fake.add_mention(
        "bob",
        "<p>@bot how does peer review work?</p>",
        Visibility::Direct,
        None,
        false,
    );
    let replies = wait_for_replies(&bot.fake, 1).await;
    stop(handle, &controls).await;
    assert_eq!(replies[0].visibility, "direct");
    assert!(replies[0].text.starts_with("@bob"), "{}", replies[0].text);
    assert!(replies[0].text.contains(REVIEW_URL), "{}", replies[0].text);
}

#[tokio::test(start_paused = true)]
async fn the_same_mention_by_stream_and_by_catch_up_gets_one_reply() {
    let clock = start_clock();
    let bot = bot_with(FakeOptions::mastodon(), &clock, "");
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    let polls = bot.fake.requests_to(Route::Notifications).len();

    ask(
        &bot.fake,
        "carol@example.org",
        "<p>@bot where is the packaging guide?</p>",
    );
    wait_for_replies(&bot.fake, 1).await;
    // Two periodic catch-ups later, the mention has been read by REST as well.
    tokio::time::sleep(Duration::from_secs(11 * 60)).await;
    assert!(
        bot.fake.requests_to(Route::Notifications).len() >= polls + 2,
        "the periodic catch-up ran"
    );
    // And a reconnect (which catches up too).
    bot.fake.drop_streams();
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    stop(handle, &controls).await;

    assert_eq!(replies(&bot.fake).len(), 1);
    let state = bot.state();
    assert!(state.mentions.cursor.is_some(), "the cursor moved past it");
}

#[tokio::test(start_paused = true)]
async fn twenty_mentions_while_the_stream_is_down_are_all_answered_once_after_reconnect() {
    let clock = start_clock();
    let bot = bot_with(FakeOptions::mastodon(), &clock, "");
    let (handle, controls) = start_listening(&bot, &clock, None).await;

    // The stream goes down and stays down while twenty mentions arrive.
    bot.fake.inject(
        Route::Streaming,
        Fault::Unavailable503 {
            retry_after_secs: None,
        },
    );
    bot.fake.drop_streams();
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_stream_count(0))
        .await
        .unwrap();
    let mut statuses = BTreeSet::new();
    for i in 0..20 {
        let notification = ask(
            &bot.fake,
            &format!("user{i}@example.org"),
            "<p>@bot how do I publish to PyPI?</p>",
        );
        statuses.insert(bot.fake.status_of_notification(&notification).unwrap());
    }
    let replies = wait_for_replies(&bot.fake, 20).await;
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_stream_count(1))
        .await
        .expect("the stream is back");
    settle().await;
    stop(handle, &controls).await;

    let replies_now = self::replies(&bot.fake);
    assert_eq!(replies_now.len(), 20, "each once: {replies:#?}");
    let answered: BTreeSet<String> = replies_now
        .iter()
        .map(|reply| reply.in_reply_to_id.clone().unwrap())
        .collect();
    assert_eq!(answered, statuses);
}

/// Crashes the daemon at `step` of a reply, restarts it, and checks there is exactly one.
async fn crash_around_a_reply(step: Step, options: FakeOptions) {
    let clock = start_clock();
    let bot = bot_with(options, &clock, "");
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
    let (handle, _controls) = start_listening(&bot, &clock, Some(checkpoint)).await;
    let notification = bot.fake.add_mention(
        "dave@example.org",
        "<p>@bot any tips on packaging?</p>",
        Visibility::Unlisted,
        None,
        false,
    );
    tokio::time::timeout(PATIENCE, reached.notified())
        .await
        .unwrap_or_else(|_| panic!("{step:?} is reached"));
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    let pending = bot.state().mentions.pending;
    assert_eq!(pending.len(), 1, "the intent was saved");
    assert_eq!(pending[0].notification, notification);

    tokio::time::sleep(Duration::from_secs(60)).await;
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    settle().await;
    stop(handle, &controls).await;

    let replies = replies(&bot.fake);
    assert_eq!(replies.len(), 1, "{step:?}: {replies:#?}");
    let state = bot.state();
    assert!(state.mentions.pending.is_empty(), "{step:?}");
    let records: Vec<_> = state
        .mentions
        .handled
        .iter()
        .filter(|handled| handled.notification == notification)
        .collect();
    assert_eq!(records.len(), 1, "{step:?}: {records:#?}");
    assert_eq!(
        records[0].outcome,
        MentionOutcome::Replied {
            status_id: replies[0].id.clone()
        },
        "{step:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_intent_and_send_gives_one_reply() {
    crash_around_a_reply(Step::ReplyIntentSaved, FakeOptions::mastodon()).await;
    crash_around_a_reply(Step::ReplyIntentSaved, FakeOptions::gotosocial()).await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_send_before_recording_gives_one_reply() {
    // GoToSocial ignores Idempotency-Key: only the search of our own statuses prevents the
    // duplicate there.
    crash_around_a_reply(Step::ReplyAccepted, FakeOptions::gotosocial()).await;
    crash_around_a_reply(Step::ReplyAccepted, FakeOptions::mastodon()).await;
}

#[tokio::test(start_paused = true)]
async fn bots_thanks_and_the_own_account_get_no_reply_and_unknown_types_are_skipped() {
    let clock = start_clock();
    let bot = bot_with(FakeOptions::mastodon(), &clock, "");
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    let from_bot = bot.fake.add_mention(
        "otherbot@bots.example",
        "<p>@bot packaging packaging packaging</p>",
        Visibility::Public,
        None,
        true,
    );
    let thanks = bot.fake.add_mention(
        "erin@example.org",
        "<p>@bot thanks!</p>",
        Visibility::Public,
        Some("1"),
        false,
    );
    bot.fake.add_notification_of_type("severed_relationships");
    bot.fake.add_notification_of_type("moderation_warning");
    bot.fake.add_notification_of_type("something_new_in_2030");
    // A question after all of them is still answered: nothing above stopped the daemon.
    ask(
        &bot.fake,
        "frank@example.org",
        "<p>@bot how do I submit a package for review?</p>",
    );
    let replies = wait_for_replies(&bot.fake, 1).await;
    // Past a catch-up and a reconnect: still one reply.
    tokio::time::sleep(Duration::from_secs(6 * 60)).await;
    bot.fake.drop_streams();
    settle().await;
    stop(handle, &controls).await;

    assert_eq!(self::replies(&bot.fake).len(), 1);
    assert!(replies[0].text.starts_with("@frank@example.org"));
    let state = bot.state();
    let outcome_of = |notification: &str| {
        state
            .mentions
            .handled
            .iter()
            .find(|handled| handled.notification == notification)
            .map(|handled| handled.outcome.clone())
    };
    assert_eq!(
        outcome_of(&from_bot),
        Some(MentionOutcome::Skipped {
            reason: SkipReason::Bot
        })
    );
    assert_eq!(
        outcome_of(&thanks),
        Some(MentionOutcome::Skipped {
            reason: SkipReason::NothingAsked
        })
    );
}

#[tokio::test(start_paused = true)]
async fn bots_are_answered_when_ignore_bots_is_off() {
    let clock = start_clock();
    let bot = bot_with(FakeOptions::mastodon(), &clock, "ignore_bots = false");
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    bot.fake.add_mention(
        "helperbot@bots.example",
        "<p>@bot packaging?</p>",
        Visibility::Public,
        None,
        true,
    );
    wait_for_replies(&bot.fake, 1).await;
    stop(handle, &controls).await;
}

#[tokio::test(start_paused = true)]
async fn first_start_with_100_old_mentions_answers_none_of_them() {
    let clock = start_clock();
    let bot = bot_with(
        FakeOptions::mastodon(),
        &clock,
        "first_start_lookback = \"1h\"",
    );
    for i in 0..100 {
        ask(
            &bot.fake,
            &format!("old{i}@example.org"),
            "<p>@bot how do I package my code?</p>",
        );
    }
    // Three hours later the bot starts for the first time.
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    settle().await;
    assert_eq!(replies(&bot.fake).len(), 0, "no reply to any old mention");
    // A new mention is answered.
    ask(
        &bot.fake,
        "new@example.org",
        "<p>@bot how do I package my code?</p>",
    );
    let replies = wait_for_replies(&bot.fake, 1).await;
    // And a restart answers none of the old ones either.
    stop(handle, &controls).await;
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    settle().await;
    stop(handle, &controls).await;

    assert_eq!(self::replies(&bot.fake).len(), 1);
    assert!(replies[0].text.starts_with("@new@example.org"));
    let state = bot.state();
    let too_old = skipped(&state.mentions, SkipReason::TooOld);
    assert!(too_old > 0, "old mentions are recorded: {too_old}");
}

#[tokio::test(start_paused = true)]
async fn a_thousand_mentions_from_one_account_get_the_per_account_cap() {
    let clock = start_clock();
    let bot = bot_with(
        FakeOptions::mastodon(),
        &clock,
        "per_account_per_hour = 3\nper_hour = 60",
    );
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    for _ in 0..1000 {
        ask(&bot.fake, "flood@example.org", "<p>@bot packaging?</p>");
    }
    wait_for_replies(&bot.fake, 3).await;
    // Everything read (the stream, then catch-ups), within the hour: still three.
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    assert_eq!(replies(&bot.fake).len(), 3);
    // Recorded as skipped (and saved by the catch-ups since).
    let capped = skipped(&bot.state().mentions, SkipReason::AccountCap);
    assert_eq!(capped, 997);
    // An hour later the same account may ask again, and gets an answer; the 997 skipped
    // are not queued for later.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        replies(&bot.fake).len(),
        3,
        "skipped mentions are not answered later"
    );
    ask(&bot.fake, "flood@example.org", "<p>@bot packaging?</p>");
    wait_for_replies(&bot.fake, 4).await;
    settle().await;
    stop(handle, &controls).await;
    assert_eq!(replies(&bot.fake).len(), 4);
    // Once behind the cursor and out of the caps' hour, the records are trimmed.
    let state = bot.state();
    assert!(
        state.mentions.handled.len() < 10,
        "trimmed: {}",
        state.mentions.handled.len()
    );
}

#[tokio::test(start_paused = true)]
async fn the_overall_hourly_cap_holds_across_a_restart() {
    let clock = start_clock();
    let bot = bot_with(
        FakeOptions::mastodon(),
        &clock,
        "per_account_per_hour = 3\nper_hour = 10",
    );
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    for i in 0..6 {
        ask(
            &bot.fake,
            &format!("a{i}@example.org"),
            "<p>@bot review?</p>",
        );
    }
    wait_for_replies(&bot.fake, 6).await;
    stop(handle, &controls).await;
    // Restarted within the hour: four more at most.
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    for i in 0..10 {
        ask(
            &bot.fake,
            &format!("b{i}@example.org"),
            "<p>@bot review?</p>",
        );
    }
    wait_for_replies(&bot.fake, 10).await;
    settle().await;
    stop(handle, &controls).await;
    assert_eq!(replies(&bot.fake).len(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_refused_reply_is_recorded_and_a_rate_limited_one_waits() {
    let clock = start_clock();
    let bot = bot_with(FakeOptions::mastodon(), &clock, "");
    let (handle, controls) = start_listening(&bot, &clock, None).await;

    bot.fake.inject(Route::PostStatus, Fault::rate_limited(120));
    let started = clock.now();
    ask(&bot.fake, "gina@example.org", "<p>@bot packaging?</p>");
    let replies = wait_for_replies(&bot.fake, 1).await;
    assert!(
        replies[0].created_at >= started + jiff::SignedDuration::from_secs(120),
        "sent after the reset: {}",
        replies[0].created_at
    );
    settle().await;
    stop(handle, &controls).await;
    assert_eq!(self::replies(&bot.fake).len(), 1);
}

/// Every mention of the hostile corpus through the daemon: no crash, at most one reply
/// each, nobody mentioned but the author, and the state file still loads.
#[tokio::test(start_paused = true)]
async fn the_hostile_corpus_through_the_daemon() {
    let clock = start_clock();
    let bot = bot_with(
        FakeOptions::mastodon(),
        &clock,
        "per_account_per_hour = 1000\nper_hour = 10000\nignore_bots = true",
    );
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    let corpus = crate::mention_corpus::hostile_corpus();
    assert!(corpus.len() >= 50);
    let mut authors = std::collections::HashMap::new();
    for (index, entry) in corpus.iter().enumerate() {
        let acct = format!("hostile{index}@example.org");
        let notification = crate::mention_corpus::add_to_fake(&bot.fake, entry, &acct);
        let status = bot.fake.status_of_notification(&notification).unwrap();
        authors.insert(status, (acct, entry.name.clone()));
    }
    // Through a stream drop and two catch-ups.
    settle().await;
    bot.fake.drop_streams();
    tokio::time::sleep(Duration::from_secs(11 * 60)).await;
    stop(handle, &controls).await;

    let replies = replies(&bot.fake);
    let mut answered = BTreeSet::new();
    for reply in &replies {
        let to = reply.in_reply_to_id.clone().unwrap();
        let (acct, name) = authors.get(&to).expect("a reply to a corpus mention");
        assert!(answered.insert(to.clone()), "{name}: one reply at most");
        assert_eq!(
            mentioned(&reply.text),
            BTreeSet::from([format!("@{acct}")]),
            "{name}: only the author: {}",
            reply.text
        );
    }
    assert!(!replies.is_empty(), "some corpus mentions ask for a guide");
    let state = bot.state();
    assert!(state.mentions.pending.is_empty());
}

/// Regression: an account with no notification at all on the first start had no cursor
/// afterwards, so the next catch-up read only the newest page (80) and a burst of 100 while
/// the stream was down lost 20.
#[tokio::test(start_paused = true)]
async fn a_hundred_mentions_while_the_stream_is_down_after_a_first_start_with_none() {
    let clock = start_clock();
    let bot = bot_with(
        FakeOptions::gotosocial(),
        &clock,
        "per_account_per_hour = 3\nper_hour = 1000",
    );
    let (handle, controls) = start_listening(&bot, &clock, None).await;
    assert!(bot.fake.notifications().is_empty());
    bot.fake.inject(
        Route::Streaming,
        Fault::Unavailable503 {
            retry_after_secs: None,
        },
    );
    bot.fake.drop_streams();
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_stream_count(0))
        .await
        .unwrap();
    for i in 0..100 {
        ask(
            &bot.fake,
            &format!("burst{i}@example.org"),
            "<p>@bot review?</p>",
        );
    }
    wait_for_replies(&bot.fake, 100).await;
    settle().await;
    stop(handle, &controls).await;
    assert_eq!(replies(&bot.fake).len(), 100);
}
