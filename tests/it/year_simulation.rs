//! One year of the real daemon (issue 8, "prove it"): the bundled config and posts plus 500
//! generated posts, posted by `daemon::run` to the in-process fake server with paused tokio
//! time, from Monday 2027-11-29 to Tuesday 2028-11-28 (America/Denver). Everything is the
//! real code: the clock, slots, jitter, DST, the blackout, the rotation, composing
//! (truncation, threads, media), publishing and the state file.
//!
//! The assertions are computed from what the fake server stored (its `created_at` follows
//! the paused clock) and the state file, against expectations derived here from the
//! schedule and the post files, never by calling the planner:
//! - the slot posts are exactly the year's slots (weekdays × {09:30, 15:30} Denver time,
//!   minus the blackout), each at its nominal time plus at most the jitter, one per slot;
//! - no two slot posts are closer than the smallest gap between slots minus the jitter;
//! - each category's share of the slot posts is within 2 points of its weight's share;
//! - no post repeats within `repeat_after` while any post in the rotation had not gone
//!   out within it (ARCHITECTURE.md's rule, stricter than "in its category");
//! - every post went out inside its `from`/`until` window;
//! - the two US DST changes move the UTC time of the posts and not their wall-clock time;
//! - each ad hoc post went out once, at its `at`;
//! - every status on the server belongs to exactly one history entry (nothing doubled).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use jiff::civil::{date, Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned};
use perennial::daemon::clock::TokioClock;
use perennial::daemon::RunOptions;
use perennial::posts::config::{Config, LongPosts};
use perennial::posts::post::{parse_post, Post, PostContext, PostKind};
use perennial::state::{PostReason, Posted};

use crate::daemon_runs::{fake, Bot, PATIENCE};
use crate::fake_server::{status_length, FakeOptions, Flavour, StoredStatus};

const ZONE: &str = "America/Denver";
/// The bundled schedule, written out here so the expectations do not come from the code
/// under test (the test checks the loaded config says the same).
const TIMES: [(i8, i8); 2] = [(9, 30), (15, 30)];
const JITTER: SignedDuration = SignedDuration::from_mins(10);
const REPEAT_AFTER: SignedDuration = SignedDuration::from_hours(30 * 24);
const BLACKOUT: (Date, Date) = (date(2027, 12, 24), date(2028, 1, 2));
const WEIGHTS: [(&str, f64); 4] = [
    ("package-showcase", 2.0),
    ("volunteer-spotlight", 2.0),
    ("packaging-tips", 1.5),
    ("who-we-are", 1.0),
];
/// The first day simulated (a Monday) and the day after the last.
const FIRST_DAY: Date = date(2027, 11, 29);
const END_DAY: Date = date(2028, 11, 28);
/// Generated posts per category (500 in all). who-we-are stays small so that its posts
/// come round again during the year (and its weight-2 post more often than the others);
/// each category still always has a post not sent within 30 days, so every category
/// takes part in every slot and the shares can be compared with the weights.
const GENERATED: [(&str, usize); 4] = [
    ("package-showcase", 190),
    ("volunteer-spotlight", 190),
    ("packaging-tips", 110),
    ("who-we-are", 10),
];
/// How long publishing may take after the daemon decides to post (media uploads are polled
/// while the server processes them): `created_at` may be this much after the slot's time.
const SEND_ALLOWANCE: SignedDuration = SignedDuration::from_secs(60);

fn zone() -> TimeZone {
    TimeZone::get(ZONE).unwrap()
}

fn local(day: Date, (hour, minute): (i8, i8)) -> Zoned {
    day.at(hour, minute, 0, 0).to_zoned(zone()).unwrap()
}

/// The year's slots (nominal times), from the calendar alone.
fn expected_slots() -> Vec<Timestamp> {
    let mut slots = Vec::new();
    let mut day = FIRST_DAY;
    while day < END_DAY {
        let weekday = !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
        let blackout = BLACKOUT.0 <= day && day <= BLACKOUT.1;
        if weekday && !blackout {
            slots.extend(TIMES.iter().map(|time| local(day, *time).timestamp()));
        }
        day = day.tomorrow().unwrap();
    }
    slots
}

/// A deterministic generator of filler text (no `rand`: the test's input must not
/// depend on a crate's algorithm).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % below as u64) as usize
    }
}

const SENTENCES: [&str; 8] = [
    "Good packaging makes research code easier to install, cite and reuse.",
    "A short README with one working example saves every new user an afternoon.",
    "Tests that run on every pull request catch the mistakes we all make.",
    "Our community reviewers read the docs as a newcomer would and say where they got lost.",
    "Version numbers that follow a clear rule tell users what an update may break.",
    "Volunteers keep this community going, one review and one question at a time.",
    "A changelog is a letter to your future users: tell them what changed and why.",
    "Open peer review is kind, concrete and public, so everyone can learn from it.",
];

/// Markers that tie a status back to its generated post.
fn marker(index: usize) -> String {
    format!("Generated post {index:03}.")
}

/// What a generated post is: (category, index within the 500, front matter, body).
struct Generated {
    category: &'static str,
    index: usize,
    front_matter: String,
    body: String,
}

fn generated_posts() -> Vec<Generated> {
    let mut rng = Lcg(0x5eed_2026);
    let mut posts = Vec::new();
    let mut index = 0;
    for (category, count) in GENERATED {
        for n in 0..count {
            let mut front_matter = format!("title = \"Generated {index:03}\"\n");
            // Long enough to be cut to 500 (the bundled `long_posts = "truncate"`), or,
            // for some, to become a thread.
            let thread = index % 50 == 17;
            let long = thread || index % 7 == 3;
            let sentences = if long {
                14 + rng.next(8)
            } else {
                2 + rng.next(4)
            };
            if thread {
                front_matter.push_str("long_posts = \"thread\"\n");
            }
            // A few seasonal posts with a `from`/`until` window inside the year.
            if index % 40 == 5 && category != "who-we-are" {
                let from = FIRST_DAY
                    .checked_add(((index * 37) % 330) as i64 * 1.day())
                    .unwrap();
                let until = from.checked_add(30.days()).unwrap();
                front_matter.push_str(&format!("from = {from}\nuntil = {until}\n"));
            }
            // The first who-we-are post comes round twice as often as the others.
            if category == "who-we-are" && n == 0 {
                front_matter.push_str("weight = 2.0\n");
            }
            if category == "package-showcase" && n % 30 == 1 {
                front_matter.push_str("weight = 0.5\n");
            }
            let mut body = format!("{} ", marker(index));
            for _ in 0..sentences {
                body.push_str(SENTENCES[rng.next(SENTENCES.len())]);
                body.push(' ');
            }
            posts.push(Generated {
                category,
                index,
                front_matter,
                body: body.trim_end().to_string(),
            });
            index += 1;
        }
    }
    posts
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The bundled config aimed at the fake server, its posts folder the bot's own copy,
/// mentions off.
fn write_config(bot: &Bot) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundled_posts = format!("dir = {:?}", root.join("posts").display().to_string());
    let config = bot.fake.bundled_config();
    assert!(config.contains(&bundled_posts) && config.contains("enabled = true"));
    let config = config
        .replace(&bundled_posts, "dir = \"posts\"")
        .replace("enabled = true", "enabled = false");
    std::fs::write(bot.config_path(), config).unwrap();
}

/// One post that went out, as the server shows it.
struct Sent<'a> {
    entry: &'a Posted,
    /// The first part's `created_at`.
    at: Timestamp,
    post: &'a Post,
}

#[tokio::test(start_paused = true)]
async fn a_year_of_the_bundled_posts_and_500_more_keeps_every_schedule_and_rotation_promise() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let wall = std::time::Instant::now();
    let start = local(FIRST_DAY, (0, 0)).timestamp();
    let end = local(END_DAY, (0, 0)).timestamp();
    let clock = TokioClock::starting_at(start);
    let bot = Bot {
        dir: tempfile::tempdir().unwrap(),
        fake: fake(FakeOptions::mastodon(), &clock),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let posts_dir = bot.dir.path().join("posts");
    copy_dir(&root.join("posts"), &posts_dir);
    let generated = generated_posts();
    assert_eq!(generated.len(), 500);
    for post in &generated {
        let path = posts_dir
            .join(post.category)
            .join(format!("gen-{:03}.md", post.index));
        std::fs::write(
            path,
            format!("+++\n{}+++\n{}\n", post.front_matter, post.body),
        )
        .unwrap();
    }
    write_config(&bot);

    // The loaded config is the schedule written out above.
    let config = Config::load(&bot.config_path()).unwrap();
    let schedule = &config.schedule;
    assert_eq!(schedule.timezone_name, ZONE);
    assert_eq!(
        (schedule.jitter, schedule.repeat_after),
        (JITTER, REPEAT_AFTER)
    );
    assert_eq!(
        schedule
            .blackout
            .iter()
            .map(|b| (b.first, b.last))
            .collect::<Vec<_>>(),
        vec![BLACKOUT]
    );
    for (category, weight) in WEIGHTS {
        assert_eq!(schedule.weight_of(category), weight);
    }
    let library = perennial::commands::check::load(&config);
    assert!(library.errors.is_empty(), "{:?}", library.errors);
    let bundled_count = library.posts.len() - generated.len();
    let posts: HashMap<&str, &Post> = library.posts.iter().map(|p| (p.id.as_str(), p)).collect();

    // The year, in simulated time.
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    let year = Duration::try_from(end.duration_since(start)).unwrap();
    tokio::time::sleep(year).await;
    assert!(!handle.is_finished(), "the daemon is still running");
    controls.shutdown.cancel();
    tokio::time::timeout(PATIENCE, handle)
        .await
        .expect("the daemon stops")
        .expect("the task does not panic")
        .expect("the daemon ran without error");

    let statuses = bot.fake.statuses();
    let state = bot.state();
    assert!(state.pending.is_none(), "nothing left in flight");
    assert!(state.failed.is_empty(), "{:?}", state.failed);

    // Every status belongs to exactly one history entry, and every history entry's
    // statuses are on the server: no double post, nothing recorded that did not go out.
    let by_id: HashMap<&str, &StoredStatus> = statuses.iter().map(|s| (s.id.as_str(), s)).collect();
    let recorded: Vec<&str> = state
        .history
        .iter()
        .flat_map(|entry| entry.statuses.iter().map(String::as_str))
        .collect();
    assert_eq!(
        recorded.iter().copied().collect::<BTreeSet<_>>().len(),
        recorded.len()
    );
    assert_eq!(
        recorded.iter().copied().collect::<BTreeSet<_>>(),
        by_id.keys().copied().collect::<BTreeSet<_>>(),
        "the server's statuses are the recorded ones"
    );
    let mut sent: Vec<Sent> = Vec::new();
    let mut threads = 0;
    let mut truncated = 0;
    let max_characters = bot.fake.options().max_characters;
    for entry in &state.history {
        let post = posts[entry.post.as_str()];
        let parts: Vec<&StoredStatus> =
            entry.statuses.iter().map(|id| by_id[id.as_str()]).collect();
        // A thread is a chain of replies; every part fits.
        for pair in parts.windows(2) {
            assert_eq!(pair[1].in_reply_to_id.as_deref(), Some(pair[0].id.as_str()));
        }
        assert_eq!(parts[0].in_reply_to_id, None);
        for part in &parts {
            assert!(
                status_length(Flavour::Mastodon, &part.text, &part.spoiler_text) <= max_characters
            );
        }
        if parts.len() > 1 {
            threads += 1;
            assert_eq!(post.long_posts, Some(LongPosts::Thread), "{}", post.id);
        } else if parts[0].text.contains('…') && post.short.is_none() {
            truncated += 1;
        }
        // The server's text is the post's: generated posts carry their marker.
        if let Some(index) = post
            .id
            .rsplit_once("/gen-")
            .and_then(|(_, n)| n.parse::<usize>().ok())
        {
            assert!(parts[0].text.starts_with(&marker(index)), "{}", post.id);
        }
        sent.push(Sent {
            entry,
            at: parts[0].created_at,
            post,
        });
    }
    assert!(threads >= 5, "{threads} threads");
    assert!(truncated >= 20, "{truncated} truncated posts");

    // Ad hoc posts: each once, at its `at` (all three bundled ones fall in the year).
    let adhoc: Vec<&Post> = library
        .posts
        .iter()
        .filter(|p| matches!(p.kind, PostKind::Adhoc { .. }))
        .collect();
    assert_eq!(adhoc.len(), 3);
    for post in &adhoc {
        let PostKind::Adhoc { at, .. } = post.kind else {
            unreachable!()
        };
        assert!(start < at && at < end);
        let times: Vec<&Sent> = sent
            .iter()
            .filter(|s| s.entry.reason == PostReason::Adhoc && s.post.id == post.id)
            .collect();
        assert_eq!(times.len(), 1, "{} goes out once", post.id);
        let delay = times[0].at.duration_since(at);
        assert!(
            delay >= SignedDuration::ZERO && delay <= SEND_ALLOWANCE,
            "{} at {} for {at}",
            post.id,
            times[0].at
        );
    }
    assert!(sent.iter().all(|s| s.entry.reason != PostReason::Manual));

    // Slot posts: exactly the year's slots, each at its time plus at most the jitter.
    let slot_posts: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.entry.reason == PostReason::Slot)
        .collect();
    let slots = expected_slots();
    // Every check below adds what it finds here, so that one run shows all that is wrong.
    let mut problems: Vec<String> = Vec::new();
    let mut max_send_delay = SignedDuration::ZERO;
    let mut max_late = SignedDuration::ZERO;
    let mut nominals = Vec::new();
    for post in &slot_posts {
        let day = post.at.to_zoned(zone()).date();
        let nominal = TIMES
            .iter()
            .map(|time| local(day, *time).timestamp())
            .find(|nominal| {
                let late = post.at.duration_since(*nominal);
                late >= SignedDuration::ZERO && late <= JITTER + SEND_ALLOWANCE
            });
        let Some(nominal) = nominal else {
            problems.push(format!(
                "{} at {} is not in a slot",
                post.post.id,
                post.at.to_zoned(zone())
            ));
            continue;
        };
        if post.entry.slot != nominal {
            problems.push(format!(
                "{} recorded for slot {} but sent in the slot of {nominal}",
                post.post.id, post.entry.slot
            ));
        }
        max_late = max_late.max(post.at.duration_since(nominal));
        max_send_delay = max_send_delay.max(post.at.duration_since(post.entry.at).abs());
        nominals.push(nominal);
    }
    let distinct: BTreeSet<Timestamp> = nominals.iter().copied().collect();
    if distinct.len() != nominals.len() {
        problems.push(format!(
            "{} slot posts share a slot",
            nominals.len() - distinct.len()
        ));
    }
    let missing: Vec<Zoned> = slots
        .iter()
        .filter(|slot| !distinct.contains(slot))
        .map(|slot| slot.to_zoned(zone()))
        .collect();
    let extra: Vec<Zoned> = distinct
        .iter()
        .filter(|slot| !slots.contains(slot))
        .map(|slot| slot.to_zoned(zone()))
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        problems.push(format!(
            "{} slots without a post: {missing:?}; {} posts outside the slots: {extra:?}",
            missing.len(),
            extra.len()
        ));
    }
    if slot_posts.len() != slots.len() {
        problems.push(format!(
            "{} slot posts for {} slots",
            slot_posts.len(),
            slots.len()
        ));
    }
    if state.rotation.last_slot != slots.last().copied() {
        problems.push(format!(
            "the last slot dealt with is {:?}",
            state.rotation.last_slot
        ));
    }

    // No two slot posts closer than the schedule allows: the smallest gap between two
    // slots, less the jitter (the first may be late by the jitter, the second on time)
    // and the time a send may take.
    let min_slot_gap = slots
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .min()
        .unwrap();
    let allowed_gap = min_slot_gap - JITTER - SEND_ALLOWANCE;
    let mut times: Vec<Timestamp> = slot_posts.iter().map(|s| s.at).collect();
    times.sort();
    let min_gap = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .min()
        .unwrap();
    if min_gap < allowed_gap {
        problems.push(format!(
            "two slot posts {min_gap:#} apart (at least {allowed_gap:#} allowed)"
        ));
    }

    // Category shares of the rotation: each weighted category's slot posts over all slot
    // posts, against its weight over the sum of the weights (the ad hoc categories are
    // outside the rotation, except `events`' sprint for two weeks after it went out, when
    // it has nothing unsent within 30 days and so never takes part).
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for post in &slot_posts {
        *counts.entry(post.entry.category.as_str()).or_default() += 1;
    }
    let total_weight: f64 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut max_deviation: f64 = 0.0;
    let mut shares = Vec::new();
    for (category, weight) in WEIGHTS {
        let share = counts.get(category).copied().unwrap_or(0) as f64 / slot_posts.len() as f64;
        let target = weight / total_weight;
        max_deviation = max_deviation.max((share - target).abs());
        shares.push(format!(
            "{category} {:.2} % (target {:.2} %)",
            share * 100.0,
            target * 100.0
        ));
    }
    if max_deviation > 0.02 {
        problems.push(format!(
            "shares off by {:.2} points: {shares:?}",
            max_deviation * 100.0
        ));
    }
    let weighted: BTreeSet<&str> = WEIGHTS.iter().map(|(c, _)| *c).collect();
    for (category, count) in &counts {
        if !weighted.contains(category) {
            problems.push(format!("{count} slots went to {category}"));
        }
    }

    // Windows: every post went out inside its `from`/`until` (ad hoc posts at their `at`,
    // which parsing requires to be inside the window).
    for s in &sent {
        if !s.post.is_active_at(s.at) {
            problems.push(format!(
                "{} went out at {}, outside its window",
                s.post.id, s.at
            ));
        }
    }
    let timeline: Vec<(&Post, Timestamp)> = sent.iter().map(|s| (s.post, s.at)).collect();
    let repeats = check_repeats(&timeline, &library.posts, REPEAT_AFTER);
    problems.extend(repeats.early.iter().cloned());
    if repeats.count == 0 {
        problems.push("no post came round again in a year".into());
    }
    let mut sends: HashMap<&str, usize> = HashMap::new();
    for s in &sent {
        *sends.entry(s.post.id.as_str()).or_default() += 1;
    }
    // Per-post weight: the weight-2 who-we-are post comes round more often than any
    // weight-1 post of its category.
    let who: Vec<&&Post> = posts
        .values()
        .filter(|p| p.category == "who-we-are")
        .collect();
    let heavy = who
        .iter()
        .find(|p| p.weight == 2.0)
        .expect("a weight-2 post");
    let most_light = who
        .iter()
        .filter(|p| p.weight == 1.0)
        .map(|p| sends.get(p.id.as_str()).copied().unwrap_or(0))
        .max()
        .unwrap();
    let heavy_sends = sends.get(heavy.id.as_str()).copied().unwrap_or(0);
    if heavy_sends <= most_light {
        problems.push(format!(
            "{} (weight 2) went out {heavy_sends} times, a weight-1 post of its category {most_light}",
            heavy.id
        ));
    }

    // DST: the Friday before and the Monday after each change have their two posts at
    // 09:30 and 15:30 local time (+ jitter), and the UTC offset changed between them.
    let mut dst_lines = Vec::new();
    for (day, offset_hours) in [
        (date(2028, 3, 10), -7),
        (date(2028, 3, 13), -6),
        (date(2028, 11, 3), -6),
        (date(2028, 11, 6), -7),
    ] {
        let on_day: Vec<Zoned> = slot_posts
            .iter()
            .map(|s| s.at.to_zoned(zone()))
            .filter(|z| z.date() == day)
            .collect();
        if on_day.len() != 2 {
            problems.push(format!("DST: {day} has {} posts: {on_day:?}", on_day.len()));
        }
        for (zoned, (hour, minute)) in on_day.iter().zip(TIMES) {
            let wall = zoned.time();
            let earliest = Time::constant(hour, minute, 0, 0);
            let utc_hour = i32::from(zoned.with_time_zone(TimeZone::UTC).hour());
            if zoned.offset().seconds() != offset_hours * 3600
                || !(earliest <= wall && wall <= earliest + JITTER + SEND_ALLOWANCE)
                || utc_hour != i32::from(hour) - offset_hours
            {
                problems.push(format!(
                    "DST: {zoned} should be {earliest} + jitter at UTC{offset_hours:+}"
                ));
            }
        }
        dst_lines.push(format!(
            "{day}: {}",
            on_day
                .iter()
                .map(|z| format!("{} ({}Z)", z.time(), z.with_time_zone(TimeZone::UTC).time()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for sunday in [date(2028, 3, 12), date(2028, 11, 5)] {
        if sent.iter().any(|s| s.at.to_zoned(zone()).date() == sunday) {
            problems.push(format!("DST: a post on Sunday {sunday}"));
        }
    }

    println!(
        "year simulation: {} posts ({bundled_count} bundled + 500 generated), {} slots, {} slot posts, {} ad hoc, {} statuses ({threads} threads, {truncated} truncated)",
        library.posts.len(),
        slots.len(),
        slot_posts.len(),
        sent.len() - slot_posts.len(),
        statuses.len()
    );
    // The seed of jitter and tie-breaks is a hash of the server's URL, whose port is
    // free-chosen: each run is a different (equally valid) year.
    println!("server {} (the plan's seed)", bot.fake.url());
    println!("shares: {}", shares.join("; "));
    println!(
        "max share deviation {:.2} points; repeats {} (shortest {}), early repeats {}; weight-2 post {heavy_sends} sends vs at most {most_light}",
        max_deviation * 100.0,
        repeats.count,
        repeats
            .shortest
            .map_or("none".to_string(), |d| format!("{d:#}")),
        repeats.early.len()
    );
    println!(
        "min gap between slot posts {min_gap:#} (allowed {allowed_gap:#}); latest slot post {max_late:#} after its slot's nominal time; max created_at - recorded send {max_send_delay:#}"
    );
    println!("DST: {}", dst_lines.join("; "));
    println!("wall-clock time {:.1?}", wall.elapsed());
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// What [`check_repeats`] found.
struct Repeats {
    /// Sends of a post that had gone out before.
    count: usize,
    shortest: Option<SignedDuration>,
    /// Repeats within `repeat_after` while another post could have gone out.
    early: Vec<String>,
}

/// Walks a timeline of sends (oldest first): a post may go out again within
/// `repeat_after` only when no post that could take the slot (evergreen, or ad hoc with
/// `then = "evergreen"` after its `at`; inside its window) had been left unsent for
/// `repeat_after` (ARCHITECTURE.md: "only when no category has one do all take part").
fn check_repeats(
    timeline: &[(&Post, Timestamp)],
    posts: &[Post],
    repeat_after: SignedDuration,
) -> Repeats {
    let mut last_sent: HashMap<&str, Timestamp> = HashMap::new();
    let mut repeats = Repeats {
        count: 0,
        shortest: None,
        early: Vec::new(),
    };
    for (post, at) in timeline {
        if let Some(previous) = last_sent.get(post.id.as_str()) {
            let since = at.duration_since(*previous);
            repeats.count += 1;
            repeats.shortest = Some(repeats.shortest.map_or(since, |d| d.min(since)));
            if since < repeat_after {
                let alternative = posts.iter().find(|other| {
                    let in_rotation = match other.kind {
                        PostKind::Evergreen => true,
                        PostKind::Adhoc {
                            at: own,
                            then_evergreen,
                        } => then_evergreen && *at > own,
                    };
                    in_rotation
                        && other.is_active_at(*at)
                        && last_sent
                            .get(other.id.as_str())
                            .is_none_or(|last| at.duration_since(*last) >= repeat_after)
                });
                if let Some(alternative) = alternative {
                    repeats.early.push(format!(
                        "{} again after {since:#} at {at} while {} was unsent for {repeat_after:#}",
                        post.id, alternative.id
                    ));
                }
            }
        }
        last_sent.insert(post.id.as_str(), *at);
    }
    repeats
}

/// A post parsed from `front_matter` (dates in the schedule's zone).
fn synthetic_post(id: &str, front_matter: &str) -> Post {
    let zone = zone();
    let context = PostContext {
        posts_dir: Path::new("/posts"),
        timezone: &zone,
        alt_text_limit: 1500,
        media_file: &|_| perennial::posts::post::MediaFile::Missing,
        media_limits: perennial::posts::post::MediaLimits::default(),
    };
    let source = format!("+++\ntitle = \"{id}\"\n{front_matter}+++\nBody.\n");
    parse_post(id, Path::new(&format!("/posts/{id}.md")), &source, &context).unwrap()
}

/// The year's repeat check on timelines made up here: it must be able to fail.
#[test]
fn the_repeat_check_flags_a_repeat_within_30_days_only_while_another_post_was_unsent() {
    let a = synthetic_post("tips/a", "");
    let b = synthetic_post("tips/b", "");
    // In its window only until the end of Tuesday 5 January.
    let c = synthetic_post("who/c", "until = 2027-01-05\n");
    // Joins the rotation after its `at` (Wednesday 20 January).
    let d = synthetic_post(
        "events/d",
        "kind = \"adhoc\"\nat = 2027-01-20T10:00:00-07:00\nthen = \"evergreen\"\n",
    );
    let posts = vec![a.clone(), b.clone(), c.clone(), d.clone()];
    let monday: Timestamp = "2027-01-04T16:30:00Z".parse().unwrap();
    let days = |n: i64| monday + SignedDuration::from_hours(24 * n);

    // b was never sent: repeating a after 10 days is early.
    let found = check_repeats(&[(&a, monday), (&a, days(10))], &posts, REPEAT_AFTER);
    assert_eq!(
        (found.count, found.shortest),
        (1, Some(SignedDuration::from_hours(240)))
    );
    assert_eq!(found.early.len(), 1);
    assert!(found.early[0].contains("tips/b"), "{:?}", found.early);

    // Everything that could go out on the 14th went out within 30 days (c's window has
    // closed, d has not gone out yet): the repeat is allowed.
    let found = check_repeats(
        &[(&a, monday), (&b, days(1)), (&a, days(10))],
        &posts,
        REPEAT_AFTER,
    );
    assert_eq!(found.count, 1);
    assert!(found.early.is_empty(), "{:?}", found.early);

    // On the 24th d has joined the rotation unsent: the repeat is early.
    let found = check_repeats(
        &[(&a, monday), (&b, days(1)), (&a, days(20))],
        &posts,
        REPEAT_AFTER,
    );
    assert_eq!(found.early.len(), 1);
    assert!(found.early[0].contains("events/d"), "{:?}", found.early);

    // After `repeat_after` a repeat is always fine.
    let found = check_repeats(&[(&a, monday), (&a, days(31))], &posts, REPEAT_AFTER);
    assert_eq!(found.count, 1);
    assert!(found.early.is_empty());
}
