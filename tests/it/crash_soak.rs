//! The crash soak (issue 8): the real `perennial run` binary against the in-process fake
//! server, killed with SIGKILL at random moments and restarted, again and again, while the
//! server injects faults; at the end every post that went out exists exactly once, every
//! thread is whole, every mention has exactly one reply and the state file loads.
//!
//! **Replaying.** Every choice comes from one `StdRng` seeded with `PERENNIAL_SOAK_SEED`
//! (decimal or `0x…`; default [`DEFAULT_SEED`]). All cycle plans are drawn up front, before
//! anything runs, so a seed always gives the same sequence of plans (each is printed); the
//! exact interleaving with the daemon's real-time clock cannot be replayed, the plans can.
//! `PERENNIAL_SOAK_KILLS=N` sets the number of kills (default [`DEFAULT_KILLS`], about 2–3
//! minutes); the longer setting, e.g.
//! `PERENNIAL_SOAK_KILLS=2000 PERENNIAL_SOAK_SEED=7 cargo test --release --test tests crash_soak -- --nocapture`,
//! runs for about 40 minutes. The daemon's log of every run goes to one file, each run
//! headed by its cycle's plan (`PERENNIAL_SOAK_LOG=FILE` keeps it); its tail is printed when
//! something fails.
//!
//! **Setup.** The GoToSocial flavour of the fake server with a 500-character limit: it
//! records but ignores `Idempotency-Key`, so exactly-once rests on perennial's own search of
//! the account's statuses before any resend (Mastodon's key would hide a resend). Slots every
//! second (`grace = "10s"`, no jitter); 300 short posts and 150 long ones that become threads
//! of 3–5 parts (weights 2:1, so a third of the slots are threads). Every post is distinct
//! and a full rotation takes at least 450 s, longer than the 5 minutes' clock skew the
//! search allows, so a post repeated in a long soak cannot be mistaken for its earlier copy.
//! Mentions from distinct accounts, all asking for something or nothing (both get a reply),
//! with caps far above what the soak sends and a day of first-start lookback: every one of
//! them must be answered.
//!
//! **A cycle** starts the daemon (with the cycle's faults queued on the server), waits for
//! its kill trigger, sends SIGKILL, waits for the exit, and removes the faults no request
//! reached. Triggers are events seen by the server, not delays, except one kind:
//! - the n-th `POST /api/v1/statuses` of this run has arrived (races the server's commit
//!   and the daemon's save of the id);
//! - the n-th status of this run is stored (races the daemon's save of the id);
//! - a thread part (a status replying to one of ours) is stored;
//! - a mention is added and its reply request arrives, or its reply is stored;
//! - the search of our own statuses (resuming a post or reply in flight) has started, only
//!   chosen when the state file has something in flight (else: a random delay);
//! - the catch-up `GET /api/v1/notifications`, or the stream's upgrade request, arrives;
//! - `Hang` on posting, on the search or on notifications, and the hung request arrives
//!   (the daemon is killed while waiting for an answer that never comes: a timeout without
//!   waiting 30 s for it), or `HangAfterCommit` on posting and the status is stored;
//! - a random delay of 0.1–3 s after the start.
//!
//! An event trigger that has not fired after [`TRIGGER_PATIENCE`] kills anyway (counted).
//! Each cycle also queues 0–2 faults: 429 (reset in 1–2 s), 500 or 503 on posting, the
//! search, notifications or the credentials check, `DropAfterCommit` on posting, or
//! `drop_streams` shortly after the stream opens; mentions are added while the daemon is
//! down or up.
//!
//! **The end.** A last run without faults goes on until every mention has a reply and
//! nothing is in flight in the state file, then SIGTERM (exit 0 expected). Checked: no two
//! statuses with one `Idempotency-Key`; every history entry's statuses exist, each in one
//! entry only, replying each to the one before, with every part `(i/n)` of its thread, and
//! the text of the post it names; no (post, slot) twice, rotation slots in increasing order
//! (no flood of late slots); every status on the server is in the history or is a reply to
//! a mention; every mention has exactly one reply, addressed to its author; no post failed;
//! the token is in no log. The summary line gives the figures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use perennial::posts::config::Visibility;
use perennial::state::{MentionOutcome, PostReason, State, StateStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::process::Child;

use crate::fake_server::{FakeOptions, FakeServer, Fault, Route, StoredStatus};
use crate::support::sigterm;

/// The seed when `PERENNIAL_SOAK_SEED` is unset.
pub const DEFAULT_SEED: u64 = 0x5eed_2026;
/// Kills when `PERENNIAL_SOAK_KILLS` is unset.
pub const DEFAULT_KILLS: usize = 110;
/// An event trigger that has not fired by then kills anyway.
const TRIGGER_PATIENCE: Duration = Duration::from_secs(12);
/// A generous bound for what must happen (an exit after SIGKILL, the final run's work).
const BOUND: Duration = Duration::from_secs(180);

const SHORT_POSTS: usize = 300;
const LONG_POSTS: usize = 150;

// ---------------------------------------------------------------------------------------
// The plan of a cycle, drawn up front from the seed.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Trigger {
    /// The n-th post request of the run arrived.
    PostRequest(usize),
    /// The n-th status of the run is stored.
    StatusStored(usize),
    /// A thread part (replying to one of ours) is stored.
    ThreadPart,
    /// A mention is added; its reply request arrived.
    ReplyRequest,
    /// A mention is added; its reply is stored.
    ReplyStored,
    /// The search of our own statuses started (something was in flight).
    Lookup,
    /// A catch-up request arrived.
    Notifications,
    /// The stream's upgrade request arrived.
    StreamOpen,
    /// `Hang` on the next post request, which arrived.
    HangPost,
    /// `HangAfterCommit` on the next post request; its status is stored.
    HangAfterCommit,
    /// `Hang` on the next search, which arrived (only with something in flight).
    HangLookup,
    /// `Hang` on the next catch-up, which arrived.
    HangNotifications,
    /// A delay after the start, in milliseconds.
    Delay(u64),
}

#[derive(Debug, Clone, PartialEq)]
enum PlannedFault {
    Inject(Route, Fault),
    /// `drop_streams`, this many milliseconds after the stream opened.
    DropStreams(u64),
}

#[derive(Debug, Clone)]
struct CyclePlan {
    trigger: Trigger,
    faults: Vec<PlannedFault>,
    /// A mention added before the daemon starts (read by the start's catch-up).
    mention_while_down: bool,
    /// The delay used instead of a trigger that cannot fire (nothing in flight).
    fallback_ms: u64,
}

impl fmt::Display for CyclePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trigger {:?}", self.trigger)?;
        for fault in &self.faults {
            match fault {
                PlannedFault::Inject(route, fault) => write!(f, ", {route:?}: {fault:?}")?,
                PlannedFault::DropStreams(ms) => write!(f, ", drop_streams after {ms} ms")?,
            }
        }
        if self.mention_while_down {
            f.write_str(", a mention while down")?;
        }
        Ok(())
    }
}

fn draw_trigger(rng: &mut StdRng) -> Trigger {
    let table: [(u32, Trigger); 13] = [
        (14, Trigger::PostRequest(rng.random_range(1..=4))),
        (12, Trigger::StatusStored(rng.random_range(1..=4))),
        (12, Trigger::ThreadPart),
        (8, Trigger::ReplyRequest),
        (6, Trigger::ReplyStored),
        (8, Trigger::Lookup),
        (5, Trigger::Notifications),
        (4, Trigger::StreamOpen),
        (6, Trigger::HangPost),
        (6, Trigger::HangAfterCommit),
        (2, Trigger::HangLookup),
        (2, Trigger::HangNotifications),
        (15, Trigger::Delay(rng.random_range(100..=3000))),
    ];
    let total: u32 = table.iter().map(|(w, _)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (weight, trigger) in table {
        if pick < weight {
            return trigger;
        }
        pick -= weight;
    }
    unreachable!("the pick is below the total")
}

fn draw_fault(rng: &mut StdRng) -> PlannedFault {
    let reset = rng.random_range(1..=2);
    match rng.random_range(0..12) {
        0 => PlannedFault::Inject(Route::PostStatus, Fault::rate_limited(reset)),
        1 => PlannedFault::Inject(Route::PostStatus, Fault::InternalError),
        2 => PlannedFault::Inject(
            Route::PostStatus,
            Fault::Unavailable503 {
                retry_after_secs: Some(1),
            },
        ),
        3..=5 => PlannedFault::Inject(Route::PostStatus, Fault::DropAfterCommit),
        6 => PlannedFault::Inject(Route::OwnStatuses, Fault::InternalError),
        7 => PlannedFault::Inject(Route::OwnStatuses, Fault::rate_limited(reset)),
        8 => PlannedFault::Inject(Route::Notifications, Fault::InternalError),
        9 => PlannedFault::Inject(Route::Notifications, Fault::rate_limited(reset)),
        10 => PlannedFault::Inject(Route::VerifyCredentials, Fault::InternalError),
        _ => PlannedFault::DropStreams(rng.random_range(0..=500)),
    }
}

fn draw_plans(seed: u64, kills: usize) -> Vec<CyclePlan> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..kills)
        .map(|_| {
            let trigger = draw_trigger(&mut rng);
            let fault_count = rng.random_range(0..=2);
            let faults = (0..fault_count).map(|_| draw_fault(&mut rng)).collect();
            CyclePlan {
                trigger,
                faults,
                mention_while_down: rng.random_bool(0.3),
                fallback_ms: rng.random_range(100..=3000),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The bot's files.

fn write_bot(dir: &Path, server_url: &str) {
    let config = format!(
        r#"[server]
url = "{server_url}"

[posts]
dir = "posts"
hashtags = []
long_posts = "thread"
max_thread = 5

[schedule]
timezone = "UTC"
every = "1s"
grace = "10s"
repeat_after = "1d"

[schedule.weights]
short = 2
long = 1

[mentions]
per_account_per_hour = 1000
per_hour = 10000
first_start_lookback = "1d"
poll_every = "10s"

[[guides]]
topic = "packaging"
keywords = ["packaging", "package", "build"]
title = "Package guide"
url = "https://example.org/package-guide/"

[[guides]]
topic = "peer review"
keywords = ["review", "submit"]
title = "Peer review guide"
url = "https://example.org/peer-review/"

[state]
dir = "state"
"#
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    std::fs::create_dir_all(dir.join("posts/short")).unwrap();
    std::fs::create_dir_all(dir.join("posts/long")).unwrap();
    for k in 0..SHORT_POSTS {
        std::fs::write(
            dir.join(format!("posts/short/p{k:03}.md")),
            format!(
                "+++\ntitle = \"short {k}\"\n+++\n{}\n",
                post_opening("short", k)
            ),
        )
        .unwrap();
    }
    for k in 0..LONG_POSTS {
        // 3 to 5 parts of 500 characters.
        let sentences = 9 + (k % 3) * 4;
        let mut body = post_opening("long", k);
        for j in 0..sentences {
            body.push_str(&format!(
                " Sentence {j} of this long post explains one more step of packaging, \
                 testing and publishing scientific Python code."
            ));
            if j % 4 == 3 {
                body.push_str("\n\n");
            }
        }
        std::fs::write(
            dir.join(format!("posts/long/p{k:03}.md")),
            format!("+++\ntitle = \"long {k}\"\n+++\n{body}\n"),
        )
        .unwrap();
    }
}

/// The first sentence of a post: unique, and what its first status starts with.
fn post_opening(category: &str, k: usize) -> String {
    format!("Soak {category} post number {k} speaking.")
}

// ---------------------------------------------------------------------------------------
// The daemon process.

fn spawn_daemon(dir: &Path, fake: &FakeServer, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir)
        .arg("run")
        .env("PERENNIAL_TOKEN", fake.token())
        .env("PERENNIAL_LOG", "info")
        .env_remove("RUST_LOG")
        .env_remove("STATE_DIRECTORY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("the perennial binary starts")
}

fn log_line(log: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn load_state(dir: &Path) -> Option<State> {
    StateStore::new(dir.join("state"))
        .load()
        .expect("the state file is always readable")
}

/// Waits until `condition` holds on the server (checked after every change).
async fn until(fake: &FakeServer, mut condition: impl FnMut(&FakeServer) -> bool) {
    let mut seen = fake.change_count();
    loop {
        if condition(fake) {
            return;
        }
        seen = fake.wait_for_change(seen).await;
    }
}

fn is_reply_key(key: Option<&str>) -> bool {
    key.is_some_and(|key| key.starts_with("perennial-reply-"))
}

// ---------------------------------------------------------------------------------------
// The soak.

/// What was in flight in the state file right after a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KilledDuring {
    /// A post intent none of whose parts is recorded.
    PostStarting,
    /// A thread with some parts recorded, not all.
    MidThread,
    /// A reply intent.
    Reply,
    /// Nothing in flight.
    Idle,
}

#[derive(Default)]
struct Figures {
    kills: usize,
    triggers: BTreeMap<String, usize>,
    fallbacks: usize,
    faults_queued: BTreeMap<String, usize>,
    faults_unreached: usize,
    stream_drops: usize,
    killed_during: BTreeMap<String, usize>,
    mentions: usize,
}

struct Soak {
    fake: FakeServer,
    dir: tempfile::TempDir,
    log: PathBuf,
    figures: Figures,
}

impl Soak {
    fn add_mention(&mut self) -> String {
        let n = self.figures.mentions;
        self.figures.mentions += 1;
        let asks = [
            "how do I build a package for my code?",
            "hello there!",
            "can I submit my tool for review?",
        ][n % 3];
        self.fake.add_mention(
            &format!("user{n}@example.org"),
            &format!(
                "<p><span class=\"h-card\"><a href=\"{}/@perennial\" class=\"u-url mention\">@<span>perennial</span></a></span> {asks}</p>",
                self.fake.url()
            ),
            Visibility::Public,
            None,
            false,
        )
    }

    async fn cycle(&mut self, number: usize, plan: &CyclePlan) {
        let fake = self.fake.clone();
        if plan.mention_while_down {
            self.add_mention();
        }
        let in_flight = load_state(self.dir.path())
            .is_some_and(|state| state.pending.is_some() || !state.mentions.pending.is_empty());
        let trigger = match plan.trigger {
            Trigger::Lookup | Trigger::HangLookup if !in_flight => Trigger::Delay(plan.fallback_ms),
            trigger => trigger,
        };
        let line = format!("cycle {number}: {plan} (fires on {trigger:?})");
        println!("{line}");
        log_line(&self.log, &format!("===== {line}"));
        for fault in &plan.faults {
            let name = match fault {
                PlannedFault::Inject(route, fault) => {
                    fake.inject(*route, fault.clone());
                    format!("{route:?} {}", fault_name(fault))
                }
                PlannedFault::DropStreams(_) => "drop_streams".to_string(),
            };
            *self.figures.faults_queued.entry(name).or_default() += 1;
        }
        match trigger {
            Trigger::HangPost => fake.inject(Route::PostStatus, Fault::Hang),
            Trigger::HangAfterCommit => fake.inject(Route::PostStatus, Fault::HangAfterCommit),
            Trigger::HangLookup => fake.inject(Route::OwnStatuses, Fault::Hang),
            Trigger::HangNotifications => fake.inject(Route::Notifications, Fault::Hang),
            _ => {}
        }
        // A trigger's own fault comes after the cycle's faults on the same route: the
        // requests those take go first.
        let queued_on = |route: Route| {
            plan.faults
                .iter()
                .filter(|f| matches!(f, PlannedFault::Inject(r, _) if *r == route))
                .count()
        };
        let commits_ahead = plan
            .faults
            .iter()
            .filter(|f| **f == PlannedFault::Inject(Route::PostStatus, Fault::DropAfterCommit))
            .count();
        let posts_before = fake.requests_to(Route::PostStatus).len();
        let statuses_before = fake.statuses().len();
        let lookups_before = fake.requests_to(Route::OwnStatuses).len();
        let notifications_before = fake.requests_to(Route::Notifications).len();
        let streams_before = fake.requests_to(Route::Streaming).len();

        let mut child = spawn_daemon(self.dir.path(), &fake, &self.log);
        let stream_dropper = plan.faults.iter().find_map(|fault| match fault {
            PlannedFault::DropStreams(ms) => Some(*ms),
            _ => None,
        });
        let dropper = stream_dropper.map(|ms| {
            let fake = fake.clone();
            tokio::spawn(async move {
                until(&fake, |f| {
                    f.requests_to(Route::Streaming).len() > streams_before
                })
                .await;
                fake.wait_for_stream_count(1).await;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                fake.drop_streams();
            })
        });
        let mention = match trigger {
            Trigger::ReplyRequest | Trigger::ReplyStored => Some(self.add_mention()),
            _ => None,
        };
        let mention_status = mention.and_then(|id| fake.status_of_notification(&id));

        let fire = async {
            match trigger {
                Trigger::PostRequest(n) => {
                    until(&fake, |f| {
                        f.requests_to(Route::PostStatus).len() >= posts_before + n
                    })
                    .await
                }
                Trigger::StatusStored(n) => {
                    until(&fake, |f| f.statuses().len() >= statuses_before + n).await
                }
                Trigger::ThreadPart => {
                    until(&fake, |f| {
                        let statuses = f.statuses();
                        let ours: HashSet<&str> = statuses.iter().map(|s| s.id.as_str()).collect();
                        statuses[statuses_before.min(statuses.len())..]
                            .iter()
                            .any(|s| {
                                s.in_reply_to_id
                                    .as_deref()
                                    .is_some_and(|id| ours.contains(id))
                            })
                    })
                    .await
                }
                Trigger::ReplyRequest => {
                    until(&fake, |f| {
                        f.requests_to(Route::PostStatus)[posts_before..]
                            .iter()
                            .any(|r| is_reply_key(r.idempotency_key.as_deref()))
                    })
                    .await
                }
                Trigger::ReplyStored => {
                    until(&fake, |f| {
                        f.statuses().iter().any(|s| {
                            s.in_reply_to_id.is_some() && s.in_reply_to_id == mention_status
                        })
                    })
                    .await
                }
                Trigger::Lookup => {
                    until(&fake, |f| {
                        f.requests_to(Route::OwnStatuses).len() > lookups_before
                    })
                    .await
                }
                Trigger::HangLookup => {
                    let n = lookups_before + queued_on(Route::OwnStatuses);
                    until(&fake, |f| f.requests_to(Route::OwnStatuses).len() > n).await
                }
                Trigger::Notifications => {
                    until(&fake, |f| {
                        f.requests_to(Route::Notifications).len() > notifications_before
                    })
                    .await
                }
                Trigger::HangNotifications => {
                    let n = notifications_before + queued_on(Route::Notifications);
                    until(&fake, |f| f.requests_to(Route::Notifications).len() > n).await
                }
                Trigger::StreamOpen => {
                    until(&fake, |f| {
                        f.requests_to(Route::Streaming).len() > streams_before
                    })
                    .await
                }
                Trigger::HangPost => {
                    let n = posts_before + queued_on(Route::PostStatus);
                    until(&fake, |f| f.requests_to(Route::PostStatus).len() > n).await
                }
                Trigger::HangAfterCommit => {
                    // Its status is stored after those of the cycle's drops after commit.
                    let n = statuses_before + commits_ahead;
                    until(&fake, |f| f.statuses().len() > n).await
                }
                Trigger::Delay(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            }
        };
        let fired = tokio::select! {
            fired = tokio::time::timeout(TRIGGER_PATIENCE, fire) => fired.is_ok(),
            status = child.wait() => panic!(
                "cycle {number}: the daemon exited by itself ({status:?}); its log:\n{}",
                log_tail(&self.log)
            ),
        };
        child.start_kill().expect("SIGKILL is sent");
        let status = tokio::time::timeout(BOUND, child.wait())
            .await
            .expect("a killed daemon exits")
            .unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "cycle {number}: killed by SIGKILL, not exited by itself: {status:?}\n{}",
            log_tail(&self.log)
        );
        if let Some(dropper) = dropper {
            dropper.abort();
            if dropper.await.is_ok() {
                self.figures.stream_drops += 1;
            }
        }
        let unreached = fake.clear_faults();
        let planned_unreached = unreached
            .iter()
            .filter(|(route, fault)| {
                plan.faults
                    .iter()
                    .any(|f| f == &PlannedFault::Inject(*route, fault.clone()))
            })
            .count();
        self.figures.faults_unreached += planned_unreached;
        self.figures.kills += 1;
        let trigger_name = format!("{trigger:?}")
            .split('(')
            .next()
            .unwrap_or_default()
            .to_string();
        *self.figures.triggers.entry(trigger_name).or_default() += 1;
        if !fired {
            self.figures.fallbacks += 1;
            println!("cycle {number}: the trigger did not fire within {TRIGGER_PATIENCE:?}; killed anyway");
        }
        let state = load_state(self.dir.path());
        let during = match &state {
            Some(state) if !state.mentions.pending.is_empty() => KilledDuring::Reply,
            Some(State {
                pending: Some(intent),
                ..
            }) => {
                if intent.parts.iter().any(|p| p.status_id.is_some()) {
                    KilledDuring::MidThread
                } else {
                    KilledDuring::PostStarting
                }
            }
            _ => KilledDuring::Idle,
        };
        *self
            .figures
            .killed_during
            .entry(format!("{during:?}"))
            .or_default() += 1;
    }

    /// The last run: no faults, until every mention has a reply and nothing is in flight;
    /// then SIGTERM, which must exit 0. Runs again when SIGTERM left something in flight.
    async fn finish(&mut self) {
        let fake = self.fake.clone();
        assert!(fake.clear_faults().is_empty());
        for attempt in 0..3 {
            log_line(&self.log, &format!("===== final run {attempt}"));
            let mut child = spawn_daemon(self.dir.path(), &fake, &self.log);
            let dir = self.dir.path().to_path_buf();
            let done = async {
                until(&fake, |f| {
                    let statuses = f.statuses();
                    let answered = f.notifications().iter().all(|n| {
                        statuses
                            .iter()
                            .any(|s| s.in_reply_to_id.is_some() && s.in_reply_to_id == n.status_id)
                    });
                    answered
                        && load_state(&dir).is_some_and(|state| {
                            state.pending.is_none() && state.mentions.pending.is_empty()
                        })
                })
                .await
            };
            tokio::select! {
                result = tokio::time::timeout(BOUND, done) => result.unwrap_or_else(|_| panic!(
                    "the final run did not answer every mention and finish what was in flight \
                     within {BOUND:?}; its log:\n{}",
                    log_tail(&self.log)
                )),
                status = child.wait() => panic!(
                    "the final run exited by itself ({status:?}); its log:\n{}",
                    log_tail(&self.log)
                ),
            }
            assert!(sigterm(child.id().unwrap()));
            let status = tokio::time::timeout(BOUND, child.wait())
                .await
                .expect("SIGTERM stops the daemon")
                .unwrap();
            assert_eq!(
                status.code(),
                Some(0),
                "SIGTERM exits 0\n{}",
                log_tail(&self.log)
            );
            let state = load_state(self.dir.path()).expect("a state file");
            if state.pending.is_none() && state.mentions.pending.is_empty() {
                return;
            }
            println!("SIGTERM came with something in flight; running once more");
        }
        panic!("three final runs each stopped with something in flight");
    }
}

fn fault_name(fault: &Fault) -> &'static str {
    match fault {
        Fault::RateLimited { .. } => "429",
        Fault::InternalError => "500",
        Fault::Unavailable503 { .. } => "503",
        Fault::Hang => "hang",
        Fault::HangAfterCommit => "hang after commit",
        Fault::DropAfterCommit => "drop after commit",
        Fault::Status { .. } => "status",
    }
}

// ---------------------------------------------------------------------------------------
// The verdict.

/// What the checks found; every list must be empty.
#[derive(Debug, Default)]
struct Findings {
    duplicates: Vec<String>,
    losses: Vec<String>,
    other: Vec<String>,
}

struct Totals {
    posts: usize,
    threads: usize,
    thread_parts: usize,
    replies: usize,
}

/// `(i/n)` at the end of a thread part.
fn part_number(text: &str) -> Option<(usize, usize)> {
    let inner = text.trim_end().strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let (i, n) = inner[open + 1..].split_once('/')?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

fn check(fake: &FakeServer, state: &State) -> (Findings, Totals) {
    let mut findings = Findings::default();
    let statuses = fake.statuses();
    let by_id: HashMap<&str, &StoredStatus> = statuses.iter().map(|s| (s.id.as_str(), s)).collect();

    // (a) No two statuses sent with one Idempotency-Key (one per post, slot and part; one
    // per reply intent).
    let mut keys: HashMap<&str, Vec<&str>> = HashMap::new();
    for status in &statuses {
        match status.idempotency_key.as_deref() {
            Some(key) => keys.entry(key).or_default().push(&status.id),
            None => findings
                .other
                .push(format!("status {} was sent without a key", status.id)),
        }
    }
    for (key, ids) in &keys {
        if ids.len() > 1 {
            findings
                .duplicates
                .push(format!("{} statuses with key {key}: {ids:?}", ids.len()));
        }
    }

    // (b), (c) The history: each entry's statuses exist, belong to it alone, form the whole
    // thread in order, and carry its post's text.
    let mut accounted: HashMap<&str, usize> = HashMap::new();
    let mut post_slots: HashSet<(&str, jiff::Timestamp)> = HashSet::new();
    let mut last_slot: Option<jiff::Timestamp> = None;
    let mut threads = 0;
    let mut thread_parts = 0;
    for (index, entry) in state.history.iter().enumerate() {
        let name = format!("history[{index}] {} slot {}", entry.post, entry.slot);
        if !post_slots.insert((entry.post.as_str(), entry.slot)) {
            findings
                .duplicates
                .push(format!("{name}: the same post and slot twice"));
        }
        if entry.reason == PostReason::Slot {
            if last_slot.is_some_and(|last| entry.slot <= last) {
                findings.other.push(format!(
                    "{name}: a slot not after the previous one ({last_slot:?})"
                ));
            }
            last_slot = Some(entry.slot);
        }
        for id in &entry.statuses {
            *accounted.entry(id.as_str()).or_default() += 1;
        }
        let parts: Vec<Option<&&StoredStatus>> = entry
            .statuses
            .iter()
            .map(|id| by_id.get(id.as_str()))
            .collect();
        if parts.is_empty() || parts.iter().any(Option::is_none) {
            findings.losses.push(format!(
                "{name}: statuses missing on the server: {:?}",
                entry.statuses
            ));
            continue;
        }
        let parts: Vec<&StoredStatus> = parts.into_iter().map(|p| *p.unwrap()).collect();
        let (category, number) = entry
            .post
            .split_once("/p")
            .and_then(|(c, k)| Some((c, k.parse::<usize>().ok()?)))
            .expect("a soak post id");
        if !parts[0].text.starts_with(&post_opening(category, number)) {
            findings.other.push(format!(
                "{name}: its first status is another post's: {:?}",
                parts[0].text
            ));
        }
        if parts[0].in_reply_to_id.is_some() {
            findings
                .other
                .push(format!("{name}: its first status replies to something"));
        }
        for pair in parts.windows(2) {
            if pair[1].in_reply_to_id.as_deref() != Some(pair[0].id.as_str()) {
                findings.other.push(format!(
                    "{name}: status {} does not reply to the part before it ({})",
                    pair[1].id, pair[0].id
                ));
            }
        }
        match part_number(&parts[0].text) {
            Some((1, n)) => {
                threads += 1;
                thread_parts += parts.len();
                if parts.len() != n {
                    findings
                        .losses
                        .push(format!("{name}: {} parts of a thread of {n}", parts.len()));
                }
                for (i, part) in parts.iter().enumerate() {
                    if part_number(&part.text) != Some((i + 1, n)) {
                        findings.other.push(format!(
                            "{name}: part {} is not ({}/{n})",
                            part.id,
                            i + 1
                        ));
                    }
                }
            }
            _ if category == "long" => findings
                .other
                .push(format!("{name}: a long post that is not a thread")),
            _ if parts.len() != 1 => findings
                .other
                .push(format!("{name}: a short post in {} statuses", parts.len())),
            _ => {}
        }
    }
    for (id, count) in &accounted {
        if *count > 1 {
            findings
                .duplicates
                .push(format!("status {id} is in {count} history entries"));
        }
    }

    // (d) Every mention has exactly one reply, to its author.
    let mut replies = 0;
    let mention_statuses: HashMap<String, String> = fake
        .notifications()
        .into_iter()
        .filter_map(|n| Some((n.status_id?, n.from_acct)))
        .collect();
    for (status_id, acct) in &mention_statuses {
        let answers: Vec<&StoredStatus> = statuses
            .iter()
            .filter(|s| s.in_reply_to_id.as_deref() == Some(status_id.as_str()))
            .collect();
        match answers.len() {
            0 => findings
                .losses
                .push(format!("the mention {status_id} by {acct} has no reply")),
            1 => {
                replies += 1;
                if !answers[0].text.starts_with(&format!("@{acct}")) {
                    findings.other.push(format!(
                        "the reply {} is not addressed to @{acct}: {:?}",
                        answers[0].id, answers[0].text
                    ));
                }
            }
            n => findings.duplicates.push(format!(
                "the mention {status_id} by {acct} has {n} replies: {:?}",
                answers.iter().map(|s| &s.id).collect::<Vec<_>>()
            )),
        }
    }
    for handled in &state.mentions.handled {
        if let MentionOutcome::Replied { status_id } = &handled.outcome {
            let found = by_id
                .get(status_id.as_str())
                .is_some_and(|s| s.in_reply_to_id.as_deref() == Some(handled.status.as_str()));
            if !found {
                findings.other.push(format!(
                    "the state says mention {} was answered by {status_id}, which is not its reply on the server",
                    handled.notification
                ));
            }
        }
    }

    // (c) Every status on the server is a post in the history or a reply to a mention.
    for status in &statuses {
        let is_reply = status
            .in_reply_to_id
            .as_deref()
            .is_some_and(|id| mention_statuses.contains_key(id));
        if !is_reply && !accounted.contains_key(status.id.as_str()) {
            // A second copy also shows under its key; a lone one is a post the state lost.
            findings.other.push(format!(
                "status {} ({:?}) is in no history entry",
                status.id,
                status.text.chars().take(60).collect::<String>()
            ));
        }
    }
    if !state.failed.is_empty() {
        findings
            .other
            .push(format!("posts marked failed: {:?}", state.failed));
    }
    let totals = Totals {
        posts: state.history.len(),
        threads,
        thread_parts,
        replies,
    };
    (findings, totals)
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_it_never_double_posts_loses_a_part_or_misses_a_mention() {
    let seed = env_number("PERENNIAL_SOAK_SEED").unwrap_or(DEFAULT_SEED);
    let kills = env_number("PERENNIAL_SOAK_KILLS").map_or(DEFAULT_KILLS, |n| n as usize);
    println!(
        "crash soak: seed {seed:#x}, {kills} kills (PERENNIAL_SOAK_SEED, PERENNIAL_SOAK_KILLS)"
    );
    let started = Instant::now();
    let fake = FakeServer::start(FakeOptions::gotosocial().max_characters(500));
    let dir = tempfile::tempdir().unwrap();
    write_bot(dir.path(), &fake.url());
    // `PERENNIAL_SOAK_LOG=FILE` keeps the daemon's log after the test.
    let log = std::env::var_os("PERENNIAL_SOAK_LOG")
        .map_or_else(|| dir.path().join("daemon.log"), PathBuf::from);
    let _ = std::fs::remove_file(&log);
    let mut soak = Soak {
        fake: fake.clone(),
        dir,
        log,
        figures: Figures::default(),
    };
    for (number, plan) in draw_plans(seed, kills).iter().enumerate() {
        soak.cycle(number, plan).await;
    }
    soak.finish().await;

    let state = load_state(soak.dir.path()).expect("the state file loads");
    let (findings, totals) = check(&fake, &state);
    let logs = std::fs::read_to_string(&soak.log).unwrap();
    let figures = &soak.figures;
    let faults_applied: usize =
        figures.faults_queued.values().sum::<usize>() - figures.faults_unreached;
    println!(
        "crash soak summary: seed {seed:#x}, kills {}, killed during {:?}, triggers {:?} ({} fell back to a kill at {TRIGGER_PATIENCE:?}), \
         faults queued {:?} ({} reached, {} unreached; stream drops done {}), posts {}, threads {} ({} parts), \
         statuses {}, mentions {}, replies {}, duplicates {}, losses {}, other problems {}, duration {:.0?}",
        figures.kills,
        figures.killed_during,
        figures.triggers,
        figures.fallbacks,
        figures.faults_queued,
        faults_applied,
        figures.faults_unreached,
        figures.stream_drops,
        totals.posts,
        totals.threads,
        totals.thread_parts,
        fake.statuses().len(),
        figures.mentions,
        totals.replies,
        findings.duplicates.len(),
        findings.losses.len(),
        findings.other.len(),
        started.elapsed(),
    );
    assert!(
        findings.duplicates.is_empty() && findings.losses.is_empty() && findings.other.is_empty(),
        "seed {seed:#x}: {findings:#?}\nthe daemon's log (last lines):\n{}",
        log_tail(&soak.log)
    );
    assert!(figures.kills >= kills);
    assert!(
        totals.threads > 0 && totals.replies > 0 && totals.posts > 0,
        "the soak posted, threaded and replied"
    );
    assert!(
        !logs.contains(&fake.token()),
        "the token never appears in the logs"
    );
}

// ---------------------------------------------------------------------------------------
// Regressions found by the soak.

/// Found by the soak (seed 0x5eed2026, cycle 0 and every cycle where a post waited): when
/// the next entry fell due while a post was still being sent (here: waiting out a 429),
/// the daemon took it for "nothing planned", marked the slots up to now as dealt with and
/// slept 6 hours; an ad hoc post due meanwhile was then more than `grace` late, and lost.
#[tokio::test(start_paused = true)]
async fn an_entry_that_falls_due_while_a_post_waits_is_still_posted() {
    use crate::daemon_runs::{fake, ts, Bot};
    use perennial::daemon::clock::TokioClock;
    use perennial::daemon::RunOptions;

    let clock = TokioClock::starting_at(ts("2027-01-04T08:59:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "times = [\"09:00\"]\ngrace = \"30m\"",
        "",
        &[
            ("tips/slot", "", "The slot's post."),
            (
                "news/adhoc",
                "kind = \"adhoc\"\nat = 2027-01-04T09:01:00Z",
                "The ad hoc post.",
            ),
        ],
    );
    // The slot's post waits two minutes for the rate limit: the ad hoc post falls due meanwhile.
    bot.fake.inject(Route::PostStatus, Fault::rate_limited(120));
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    let statuses = tokio::time::timeout(Duration::from_secs(3600), bot.fake.wait_for_statuses(2))
        .await
        .expect("the ad hoc post goes out within the hour, not 6 hours later");
    assert!(
        statuses[0].text.starts_with("The slot's post."),
        "{statuses:?}"
    );
    assert!(
        statuses[1].text.starts_with("The ad hoc post."),
        "{statuses:?}"
    );
    assert!(
        statuses[1].created_at <= ts("2027-01-04T09:05:00Z"),
        "right after the slot's post: {}",
        statuses[1].created_at
    );
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
}
