//! perennial side by side with ananas (the Python Mastodon bot framework) doing the same
//! work: answer "how do I package my Python code?" with the packaging guide's link,
//! unlisted, in reply to the mention. Two targets (`--target fake|gotosocial|both`; by
//! default both when `PERENNIAL_GTS_URL` is set, else fake):
//!
//! * **fake**: for each bot, a fresh in-process fake server (Mastodon flavour, 127.0.0.1);
//!   mentions are pushed into it and replies read from its memory;
//! * **gotosocial**: a real GoToSocial (`.ci/gotosocial start DIR`, rate limit off):
//!   `alice` mentions `bot` with `POST /api/v1/statuses`, and the bench sees each reply on
//!   alice's own streaming websocket (every reply mentions her). Besides the two bots it
//!   measures the server's floor: an in-process replier that posts the reply the moment the
//!   mention shows on the bot's stream, with no bot logic (`support/gotosocial.rs`).
//!
//! For each bot:
//!
//! 1. idle memory: `VmRSS` once the bot has its stream open and has been quiet for 3 s;
//! 2. one at a time: a mention is pushed, the clock runs until its reply is stored (fake) or
//!    seen (gotosocial); N times (p50, p99). On gotosocial also from the server's answer to
//!    alice's post, which leaves out the time the server took to store the mention;
//! 3. a burst: B mentions pushed at once (gotosocial: as fast as the server takes them, 8
//!    requests at a time); time from the first mention to the last reply, each one's
//!    latency (queueing included), and the peak resident memory (`VmHWM`). On gotosocial
//!    also when the server had stored the last of the mentions (no reply can come before it)
//!    and the last reply after that.
//!
//! perennial is the release binary (`perennial run`, the bundled config with the caps off,
//! as in `benches/mentions.rs`); it reads the websocket stream. ananas is
//! `bench/ananas_bot.py` under the given Python (ananas reads Mastodon's HTTP streaming,
//! server-sent events, which the fake server also serves; on GoToSocial, which serves only
//! the websocket, `bench/ananas_gts.py` points it at the bench's relay). A reply that has not
//! come within the bound is counted as missing, never waited for forever.
//!
//! Run: `bench/compare.sh` (makes bench/.venv and installs bench/requirements.txt), or
//! `cargo bench --bench compare -- --python bench/.venv/bin/python [--target T] [--runs N]
//! [--mentions N] [--burst B] [--only perennial|ananas]`. `--runs 2` runs the bots
//! alternately (perennial, ananas, perennial, ananas; on gotosocial the floor after each
//! pair). `--mentions` defaults to 1,000 on fake and 200 on gotosocial (so that its p99 is a
//! percentile, not the one slowest of 50), `--burst` to `--mentions` on fake and 100 on
//! gotosocial. The Python may also come from `$ANANAS_PYTHON`.

#[path = "../tests/it/fake_server.rs"]
#[allow(dead_code, unused_imports)]
mod fake_server;
#[path = "support/gotosocial.rs"]
mod gotosocial;
#[path = "support/mod.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fake_server::{FakeOptions, FakeServer};
use futures_util::StreamExt;
use gotosocial::{Floor, Gts, Mention, SseAdapter, Watcher, BURST_IN_FLIGHT};
use perennial::posts::config::Visibility;
use support::{caps_off, perennial_run, proc_status_field, sigterm};

/// How long the whole burst, and the start-up, may take.
const BOUND: Duration = Duration::from_secs(120);
/// How long one reply may take in the one-at-a-time round before it counts as missing.
const ONE_BOUND: Duration = Duration::from_secs(10);
/// How long a connected bot is left alone before its idle memory is read.
const QUIET: Duration = Duration::from_secs(3);
/// How many of the slowest one-at-a-time mentions on GoToSocial are shown with their times.
const SLOWEST: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bot {
    Perennial,
    Ananas,
    /// The server's floor (GoToSocial only): an in-process replier with no bot logic.
    Floor,
}

impl Bot {
    fn name(self) -> &'static str {
        match self {
            Bot::Perennial => "perennial",
            Bot::Ananas => "ananas",
            Bot::Floor => "floor",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Fake,
    GoToSocial,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Fake => "fake",
            Target::GoToSocial => "gotosocial",
        }
    }
}

struct Args {
    python: Option<PathBuf>,
    runs: usize,
    mentions: Option<usize>,
    burst: Option<usize>,
    only: Option<Bot>,
    targets: Vec<Target>,
}

fn args() -> Args {
    let gts_set = std::env::var("PERENNIAL_GTS_URL").is_ok_and(|url| !url.is_empty());
    let mut args = Args {
        python: std::env::var_os("ANANAS_PYTHON").map(PathBuf::from),
        runs: 1,
        mentions: None,
        burst: None,
        only: None,
        targets: if gts_set {
            vec![Target::Fake, Target::GoToSocial]
        } else {
            vec![Target::Fake]
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--python" => args.python = Some(PathBuf::from(value("--python"))),
            "--runs" => args.runs = value("--runs").parse().expect("--runs N"),
            "--mentions" => {
                args.mentions = Some(value("--mentions").parse().expect("--mentions N"))
            }
            "--burst" => args.burst = Some(value("--burst").parse().expect("--burst B")),
            "--only" => {
                args.only = Some(match value("--only").as_str() {
                    "perennial" => Bot::Perennial,
                    "ananas" => Bot::Ananas,
                    other => panic!("--only perennial|ananas, not {other}"),
                })
            }
            "--target" => {
                args.targets = match value("--target").as_str() {
                    "fake" => vec![Target::Fake],
                    "gotosocial" => vec![Target::GoToSocial],
                    "both" => vec![Target::Fake, Target::GoToSocial],
                    other => panic!("--target fake|gotosocial|both, not {other}"),
                }
            }
            // What `cargo bench` adds.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// A path given on the command line: as is when it exists from here, else from the
/// repository's root (cargo runs benches from there, a user may not). Made absolute
/// without resolving symbolic links (a venv's `python` is one, and must stay the venv's).
fn absolute(path: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = if path.is_absolute() || path.exists() {
        path.to_path_buf()
    } else {
        root.join(path)
    };
    std::path::absolute(path).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

fn finite(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

/// `/proc/loadavg`'s three load averages (1, 5 and 15 minutes).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".to_string())
}

const MENTION_HTML: &str = "<p><span class=\"h-card\"><a class=\"u-url mention\" href=\"https://example.social/@bot\">@<span>bot</span></a></span> how do I package my Python code?</p>";

/// Pushes mention `index` (from `user{index}@example.org`); returns the mentioning
/// status's id, which the reply must answer.
fn mention(fake: &FakeServer, index: usize) -> String {
    let notification = fake.add_mention(
        &format!("user{index}@example.org"),
        MENTION_HTML,
        Visibility::Public,
        None,
        false,
    );
    fake.status_of_notification(&notification)
        .expect("a mention has a status")
}

/// One of the slowest one-at-a-time mentions on GoToSocial, with wall-clock times to match
/// against the server's log (`gts.log`, UTC on this machine).
struct Slow {
    latency: Duration,
    mention: String,
    sent: jiff::Timestamp,
    /// How long alice's `POST /api/v1/statuses` took.
    stored_after: Duration,
    /// When the floor saw the mention on the bot's stream, after alice's request went out.
    floor_saw_after: Option<Duration>,
    reply_seen: jiff::Timestamp,
}

/// What one run of one bot measured.
struct Figures {
    bot: Bot,
    /// `None` for the floor, which runs inside the bench.
    idle_rss_kib: Option<u64>,
    one_by_one: Vec<Duration>,
    one_by_one_missing: usize,
    /// GoToSocial: each one-at-a-time reply from the server's answer to alice's post (the
    /// mention stored), so without the time the server took to take alice's post, which no
    /// bot can shorten.
    one_by_one_stored: Vec<Duration>,
    burst: Vec<Duration>,
    burst_missing: usize,
    burst_total: Duration,
    /// GoToSocial: from the burst's first request to the server storing the last of alice's
    /// mentions. No reply can come before it, so it bounds every bot's burst from below.
    burst_pushed: Option<Duration>,
    peak_kib: Option<u64>,
    duplicates: usize,
    /// The text of the reply to the first mention, for checking both bots say the same.
    first_reply: String,
    /// How the reply to the first mention was posted.
    first_reply_visibility: String,
    /// `/proc/loadavg` before the bot started and after it stopped.
    load_start: String,
    load_end: String,
    /// GoToSocial: how long each of alice's one-at-a-time mentions took to post.
    mention_posts: Vec<Duration>,
    /// GoToSocial, the floor: from alice's request to the mention on the bot's stream.
    delivered: Vec<Duration>,
    /// GoToSocial: alice's posts that met a 429 or 503 first and waited it out.
    retries: usize,
    slowest: Vec<Slow>,
}

struct Running {
    child: tokio::process::Child,
    pid: u32,
    dir: tempfile::TempDir,
}

/// What a bot is started against.
struct Server {
    url: String,
    token: String,
    /// The bundled config aimed at the server (perennial's).
    perennial_config: String,
    /// GoToSocial: the bench's server-sent-events relay, for ananas's stream.
    ananas_streaming: Option<String>,
}

fn start(bot: Bot, server: &Server, python: Option<&Path>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("bot.log")).unwrap();
    let mut command = match bot {
        Bot::Perennial => {
            // The bundled config and guides, with the caps off.
            let config = caps_off(server.perennial_config.clone());
            std::fs::write(dir.path().join("config.toml"), &config).unwrap();
            let mut command = perennial_run(&server.token);
            command.env("RUST_LOG", "warn");
            command
        }
        Bot::Ananas => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let template = std::fs::read_to_string(root.join("bench/ananas_bot.cfg.in")).unwrap();
            let mut config = template
                .replace("@URL@", &server.url)
                .replace("@TOKEN@", &server.token);
            let mut script = root.join("bench/ananas_bot.py");
            if let Some(streaming) = &server.ananas_streaming {
                // The same bot, its stream read from the relay (bench/ananas_gts.py).
                let class = "class = ananas_bot.GuideBot";
                assert!(config.contains(class), "the template names the bot's class");
                config = config.replace(class, "class = ananas_gts.GtsGuideBot");
                config.push_str(&format!("streaming_base = {streaming}\n"));
                script = root.join("bench/ananas_gts.py");
            }
            let config_path = dir.path().join("ananas_bot.cfg");
            std::fs::write(&config_path, config).unwrap();
            let python = python.expect(
                "ananas needs a Python with ananas installed: --python PATH or $ANANAS_PYTHON \
                 (bench/compare.sh makes bench/.venv)",
            );
            let mut command = tokio::process::Command::new(python);
            command
                .arg(script)
                .arg(&config_path)
                .env("PYTHONUNBUFFERED", "1");
            command
        }
        Bot::Floor => unreachable!("the floor runs inside the bench"),
    };
    let child = command
        .current_dir(dir.path())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bot.name()));
    let pid = child.id().unwrap();
    Running { child, pid, dir }
}

fn log_tail(running: &Running) -> String {
    let log = std::fs::read_to_string(running.dir.path().join("bot.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Stops a bot (SIGTERM, as systemd would), then makes sure it is gone.
async fn stop(running: &mut Running) {
    sigterm(running.pid);
    if tokio::time::timeout(Duration::from_secs(10), running.child.wait())
        .await
        .is_err()
    {
        let _ = running.child.kill().await;
    }
}

async fn measure(bot: Bot, mentions: usize, burst_size: usize, python: Option<&Path>) -> Figures {
    let load_start = load_average();
    let fake = FakeServer::start(FakeOptions::mastodon());
    let server = Server {
        url: fake.url(),
        token: fake.token(),
        perennial_config: fake.bundled_config(),
        ananas_streaming: None,
    };
    let mut running = start(bot, &server, python);
    let pid = running.pid;
    if tokio::time::timeout(BOUND, fake.wait_for_stream_count(1))
        .await
        .is_err()
    {
        panic!(
            "{} did not open its stream within {BOUND:?}; its log ends:\n{}",
            bot.name(),
            log_tail(&running)
        );
    }
    tokio::time::sleep(QUIET).await;
    let idle_rss_kib = proc_status_field(pid, "VmRSS");

    // 1. One at a time.
    let mut one_by_one = Vec::with_capacity(mentions);
    let mut one_by_one_missing = 0;
    for index in 0..mentions {
        let seen = fake.statuses().len();
        let start = Instant::now();
        let status_id = mention(&fake, index);
        let replied = tokio::time::timeout(ONE_BOUND, async {
            let mut n = seen + 1;
            loop {
                let statuses = fake.wait_for_statuses(n).await;
                if statuses[seen..]
                    .iter()
                    .any(|s| s.in_reply_to_id.as_deref() == Some(status_id.as_str()))
                {
                    break;
                }
                n = statuses.len() + 1;
            }
        })
        .await;
        match replied {
            Ok(()) => one_by_one.push(start.elapsed()),
            Err(_) => one_by_one_missing += 1,
        }
    }

    // 2. A burst. The watcher stamps each new reply as it is stored.
    let already = fake.statuses().len();
    let deadline = tokio::time::Instant::now() + BOUND;
    let watcher = {
        let fake = fake.clone();
        tokio::spawn(async move {
            let mut arrivals: Vec<(Option<String>, Instant)> = Vec::with_capacity(burst_size);
            while arrivals.len() < burst_size {
                let n = already + arrivals.len() + 1;
                let Ok(statuses) =
                    tokio::time::timeout_at(deadline, fake.wait_for_statuses(n)).await
                else {
                    break;
                };
                let now = Instant::now();
                for status in &statuses[already + arrivals.len()..] {
                    arrivals.push((status.in_reply_to_id.clone(), now));
                }
            }
            arrivals
        })
    };
    let start = Instant::now();
    let mut pushed = HashMap::with_capacity(burst_size);
    for index in 0..burst_size {
        let at = Instant::now();
        pushed.insert(mention(&fake, mentions + index), at);
    }
    let arrivals = watcher.await.unwrap();
    let mut burst = Vec::with_capacity(burst_size);
    let mut answered = HashSet::new();
    let mut last = start;
    for (reply_to, arrived) in &arrivals {
        let Some(reply_to) = reply_to else { continue };
        if let Some(at) = pushed.get(reply_to) {
            if answered.insert(reply_to.clone()) {
                burst.push(arrived.duration_since(*at));
                last = last.max(*arrived);
            }
        }
    }
    let burst_missing = burst_size - burst.len();
    let burst_total = last.duration_since(start);
    let peak_kib = proc_status_field(pid, "VmHWM");

    // Every reply answers a mention, once.
    let statuses = fake.statuses();
    let mut per_mention: HashMap<&str, usize> = HashMap::new();
    for status in &statuses {
        if let Some(id) = &status.in_reply_to_id {
            *per_mention.entry(id.as_str()).or_default() += 1;
        }
    }
    let duplicates = per_mention.values().map(|n| n - 1).sum();
    let first_mention = fake
        .notifications()
        .first()
        .and_then(|n| n.status_id.clone());
    let first = statuses
        .iter()
        .find(|s| s.in_reply_to_id.is_some() && s.in_reply_to_id == first_mention);
    let first_reply = first.map(|s| s.text.clone()).unwrap_or_default();
    let first_reply_visibility = first.map(|s| s.visibility.clone()).unwrap_or_default();

    stop(&mut running).await;
    sort_all(Figures {
        bot,
        idle_rss_kib: Some(idle_rss_kib),
        one_by_one,
        one_by_one_missing,
        one_by_one_stored: Vec::new(),
        burst,
        burst_missing,
        burst_total,
        burst_pushed: None,
        peak_kib: Some(peak_kib),
        duplicates,
        first_reply,
        first_reply_visibility,
        load_start,
        load_end: load_average(),
        mention_posts: Vec::new(),
        delivered: Vec::new(),
        retries: 0,
        slowest: Vec::new(),
    })
}

/// The same rounds against a real GoToSocial: alice mentions the bot through the API, and
/// alice's stream tells when each reply is there.
async fn measure_gts(
    bot: Bot,
    gts: &Gts,
    mentions: usize,
    burst_size: usize,
    python: Option<&Path>,
) -> Figures {
    let load_start = load_average();
    // Nothing from earlier runs for a catch-up to answer.
    gts.clear_bot_notifications().await;
    let mut watcher = Watcher::start(gts).await;
    let log_from = gts.log_len();
    let mut running = None;
    let mut floor = None;
    let mut adapter = None;
    match bot {
        Bot::Floor => floor = Some(Floor::start(gts).await),
        Bot::Perennial | Bot::Ananas => {
            if bot == Bot::Ananas {
                adapter = Some(SseAdapter::start(gts).await);
            }
            let server = Server {
                url: gts.url.clone(),
                token: gts.bot_token.clone(),
                perennial_config: gts.bundled_config(),
                ananas_streaming: adapter.as_ref().map(|a| a.url.clone()),
            };
            running = Some(start(bot, &server, python));
        }
    }
    if !gts
        .wait_for_bot_stream(log_from, tokio::time::Instant::now() + BOUND)
        .await
    {
        panic!(
            "{} did not open its stream on GoToSocial within {BOUND:?}; its log ends:\n{}",
            bot.name(),
            running.as_ref().map(log_tail).unwrap_or_default()
        );
    }
    tokio::time::sleep(QUIET).await;
    let idle_rss_kib = running.as_ref().map(|r| proc_status_field(r.pid, "VmRSS"));

    // 1. One at a time: the next mention once the reply to this one is seen (or not within
    //    ONE_BOUND of the mention's request).
    let mut one_by_one = Vec::with_capacity(mentions);
    let mut one_by_one_missing = 0;
    let mut one_by_one_stored = Vec::with_capacity(mentions);
    let mut mention_posts = Vec::with_capacity(mentions);
    let mut delivered = Vec::new();
    let mut retries = 0;
    let mut slowest = Vec::new();
    let mut ours: Vec<String> = Vec::with_capacity(mentions + burst_size);
    for _ in 0..mentions {
        let mention = gts.mention().await;
        let deadline = tokio::time::Instant::from_std(mention.sent.at) + ONE_BOUND;
        let replied = watcher.wait_for(&mention.id, deadline).await;
        let floor_saw = floor.as_ref().and_then(|f| f.seen(&mention.id));
        mention_posts.push(mention.stored - mention.sent.at);
        retries += mention.retries;
        if let Some(seen) = floor_saw {
            delivered.push(seen.at - mention.sent.at);
        }
        match replied {
            Some(seen) => {
                let latency = seen.at - mention.sent.at;
                one_by_one.push(latency);
                one_by_one_stored.push(seen.at.saturating_duration_since(mention.stored));
                slowest.push(Slow {
                    latency,
                    mention: mention.id.clone(),
                    sent: mention.sent.wall,
                    stored_after: mention.stored - mention.sent.at,
                    floor_saw_after: floor_saw.map(|s| s.at - mention.sent.at),
                    reply_seen: seen.wall,
                });
                slowest.sort_by_key(|slow| std::cmp::Reverse(slow.latency));
                slowest.truncate(SLOWEST);
            }
            None => one_by_one_missing += 1,
        }
        ours.push(mention.id);
    }

    // 2. A burst: all pushed as fast as the server takes them, BURST_IN_FLIGHT requests at a
    //    time; each one's clock starts when its own request goes out.
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start) + BOUND;
    let pushed: Vec<Mention> = futures_util::stream::iter(0..burst_size)
        .map(|_| gts.mention())
        .buffer_unordered(BURST_IN_FLIGHT)
        .collect()
        .await;
    let ids: Vec<String> = pushed.iter().map(|m| m.id.clone()).collect();
    watcher.wait_for_all(&ids, deadline).await;
    let peak_kib = running.as_ref().map(|r| proc_status_field(r.pid, "VmHWM"));
    let mut burst = Vec::with_capacity(burst_size);
    let mut last = start;
    for mention in &pushed {
        retries += mention.retries;
        if let Some(seen) = watcher.first_reply(&mention.id) {
            burst.push(seen.at - mention.sent.at);
            last = last.max(seen.at);
        }
    }
    let burst_missing = burst_size - burst.len();
    let burst_total = last.duration_since(start);
    let burst_pushed = pushed.iter().map(|m| m.stored.duration_since(start)).max();
    ours.extend(ids);

    // Every reply answers a mention, once: as the server stored them.
    let mut first_reply = String::new();
    let mut first_reply_visibility = String::new();
    let mut duplicates = 0;
    if let Some(oldest) = ours.iter().min() {
        let ours: HashSet<&str> = ours.iter().map(String::as_str).collect();
        let statuses = gts.bot_statuses_after(oldest).await;
        let mut per_mention: HashMap<&str, usize> = HashMap::new();
        for status in &statuses {
            if let Some(id) = status["in_reply_to_id"].as_str() {
                if ours.contains(id) {
                    *per_mention.entry(id).or_default() += 1;
                }
            }
        }
        duplicates = per_mention.values().map(|n| n - 1).sum();
        for (mention, replies) in per_mention.iter().filter(|(_, n)| **n > 1) {
            println!(
                "  {} replied {replies} times to mention {mention}",
                bot.name()
            );
        }
        // The oldest reply to the oldest mention.
        if let Some(first) = statuses
            .iter()
            .rev()
            .find(|s| s["in_reply_to_id"].as_str() == Some(oldest.as_str()))
        {
            first_reply = gts.source_text(first["id"].as_str().unwrap()).await;
            first_reply_visibility = first["visibility"].as_str().unwrap_or("").to_string();
        }
    }

    if let Some(running) = &mut running {
        stop(running).await;
        if duplicates > 0 {
            // The bot's own account of it (perennial logs at warn here).
            println!("  {}'s log ends:\n{}", bot.name(), log_tail(running));
        }
    }
    drop(floor);
    drop(adapter);
    drop(watcher);
    sort_all(Figures {
        bot,
        idle_rss_kib,
        one_by_one,
        one_by_one_missing,
        one_by_one_stored,
        burst,
        burst_missing,
        burst_total,
        burst_pushed,
        peak_kib,
        duplicates,
        first_reply,
        first_reply_visibility,
        load_start,
        load_end: load_average(),
        mention_posts,
        delivered,
        retries,
        slowest,
    })
}

fn sort_all(mut figures: Figures) -> Figures {
    figures.one_by_one.sort();
    figures.one_by_one_stored.sort();
    figures.burst.sort();
    figures.mention_posts.sort();
    figures.delivered.sort();
    figures
}

fn mb(kib: Option<u64>) -> String {
    match kib {
        Some(kib) => format!("{:.1} MB", kib as f64 * 1024.0 / 1e6),
        None => "—".to_string(),
    }
}

fn ms(value: f64) -> String {
    if value.is_nan() {
        "—".to_string()
    } else if value >= 1000.0 {
        format!("{:.2} s", value / 1000.0)
    } else {
        format!("{value:.2} ms")
    }
}

fn report(figures: &Figures) {
    let f = figures;
    println!(
        "{}: idle {} | one at a time: {} replied, {} missing, p50 {}, p99 {} | burst: {} replied, {} missing, all in {:.2} s, p50 {}, p99 {} | peak {} | duplicate replies {}",
        f.bot.name(),
        mb(f.idle_rss_kib),
        f.one_by_one.len(),
        f.one_by_one_missing,
        ms(percentile(&f.one_by_one, 0.50)),
        ms(percentile(&f.one_by_one, 0.99)),
        f.burst.len(),
        f.burst_missing,
        f.burst_total.as_secs_f64(),
        ms(percentile(&f.burst, 0.50)),
        ms(percentile(&f.burst, 0.99)),
        mb(f.peak_kib),
        f.duplicates,
    );
    println!(
        "  load average (1, 5, 15 min): {} at the start, {} at the end",
        f.load_start, f.load_end
    );
    if !f.mention_posts.is_empty() {
        println!(
            "  alice's POST /api/v1/statuses (inside every latency): p50 {}, p99 {}{}",
            ms(percentile(&f.mention_posts, 0.50)),
            ms(percentile(&f.mention_posts, 0.99)),
            if f.retries > 0 {
                format!("; {} answers 429/503 waited out", f.retries)
            } else {
                String::new()
            }
        );
    }
    if let Some(pushed) = f.burst_pushed {
        println!(
            "  the burst's last mention stored by the server {:.2} s after its first request went out (no reply can come sooner); the last reply {:.2} s after that",
            pushed.as_secs_f64(),
            f.burst_total.saturating_sub(pushed).as_secs_f64(),
        );
    }
    if !f.delivered.is_empty() {
        println!(
            "  the mention on the bot's stream, after alice's request went out: p50 {}, p99 {}",
            ms(percentile(&f.delivered, 0.50)),
            ms(percentile(&f.delivered, 0.99)),
        );
    }
    for (index, slow) in f.slowest.iter().enumerate() {
        println!(
            "  {} {}: mention {} sent {}, stored after {}{}, reply seen {}",
            if index == 0 { "slowest:" } else { "        " },
            ms(slow.latency.as_secs_f64() * 1000.0),
            slow.mention,
            slow.sent.strftime("%H:%M:%S%.3f"),
            ms(slow.stored_after.as_secs_f64() * 1000.0),
            slow.floor_saw_after
                .map(|d| format!(
                    ", on the bot's stream after {}",
                    ms(d.as_secs_f64() * 1000.0)
                ))
                .unwrap_or_default(),
            slow.reply_seen.strftime("%H:%M:%S%.3f"),
        );
    }
}

/// The first mention's reply, which must be the same from every bot and run.
fn check_replies(all: &[(usize, Figures)]) {
    let replies: Vec<(&str, &str)> = all
        .iter()
        .map(|(_, f)| (f.first_reply.as_str(), f.first_reply_visibility.as_str()))
        .collect();
    let same = replies.windows(2).all(|pair| pair[0] == pair[1]);
    println!(
        "\nreply to the first mention ({}): {:?}, {}",
        if same {
            "the same from every bot and run"
        } else {
            "NOT THE SAME for every bot and run"
        },
        replies.first().map(|r| r.0).unwrap_or_default(),
        replies.first().map(|r| r.1).unwrap_or_default(),
    );
    if !same {
        for (run, f) in all {
            println!(
                "  run {run} {}: {:?} {}",
                f.bot.name(),
                f.first_reply,
                f.first_reply_visibility
            );
        }
    }
}

fn table(all: &[(usize, Figures)], mentions: usize, burst_size: usize) {
    println!(
        "\n| bot | run | idle memory (VmRSS) | one at a time p50 | p99 | replied | burst of {burst_size}: all replied in | burst p50 / p99 | replied | peak memory (VmHWM) | load average at start → end |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (run, f) in all {
        println!(
            "| {} | {run} | {} | {} | {} | {}/{mentions} | {} | {} / {} | {}/{burst_size} | {} | {} → {} |",
            f.bot.name(),
            mb(f.idle_rss_kib),
            ms(percentile(&f.one_by_one, 0.50)),
            ms(percentile(&f.one_by_one, 0.99)),
            f.one_by_one.len(),
            if f.burst_missing == 0 {
                format!("{:.2} s", f.burst_total.as_secs_f64())
            } else {
                format!("not within {} s", BOUND.as_secs())
            },
            ms(percentile(&f.burst, 0.50)),
            ms(percentile(&f.burst, 0.99)),
            f.burst.len(),
            mb(f.peak_kib),
            f.load_start,
            f.load_end,
        );
    }
}

/// How a figure is compared.
#[derive(Clone, Copy)]
enum Unit {
    /// KiB, shown in MB; a ratio, no distance (the floor has no process of its own).
    Memory,
    /// Milliseconds; a ratio, and the distance from the floor.
    Time,
}

/// perennial beside ananas and the floor for one run: each figure, perennial's ratio to
/// ananas (under 1: perennial is smaller or quicker) and perennial's distance from the floor.
fn comparison(target: Target, run: usize, all: &[(usize, Figures)]) {
    let of = |bot: Bot| {
        all.iter()
            .find(|(r, f)| *r == run && f.bot == bot)
            .map(|(_, f)| f)
    };
    let (perennial, ananas, floor) = (of(Bot::Perennial), of(Bot::Ananas), of(Bot::Floor));
    if perennial.is_none() {
        return;
    }
    type Figure = fn(&Figures) -> Option<f64>;
    let rows: [(&str, Unit, Figure); 10] = [
        ("idle memory (VmRSS)", Unit::Memory, |f| {
            f.idle_rss_kib.map(|k| k as f64)
        }),
        ("one at a time p50", Unit::Time, |f| {
            finite(percentile(&f.one_by_one, 0.50))
        }),
        ("one at a time p99", Unit::Time, |f| {
            finite(percentile(&f.one_by_one, 0.99))
        }),
        (
            "one at a time p50, from the mention stored",
            Unit::Time,
            |f| finite(percentile(&f.one_by_one_stored, 0.50)),
        ),
        (
            "one at a time p99, from the mention stored",
            Unit::Time,
            |f| finite(percentile(&f.one_by_one_stored, 0.99)),
        ),
        ("burst: first mention to last reply", Unit::Time, |f| {
            (f.burst_missing == 0 && !f.burst.is_empty())
                .then_some(f.burst_total.as_secs_f64() * 1000.0)
        }),
        (
            "burst: last mention stored to last reply",
            Unit::Time,
            |f| {
                let pushed = f.burst_pushed?;
                (f.burst_missing == 0 && !f.burst.is_empty())
                    .then_some(f.burst_total.saturating_sub(pushed).as_secs_f64() * 1000.0)
            },
        ),
        ("burst p50", Unit::Time, |f| {
            finite(percentile(&f.burst, 0.50))
        }),
        ("burst p99", Unit::Time, |f| {
            finite(percentile(&f.burst, 0.99))
        }),
        ("peak memory (VmHWM)", Unit::Memory, |f| {
            f.peak_kib.map(|k| k as f64)
        }),
    ];
    let show = |unit: Unit, value: Option<f64>| match (unit, value) {
        (_, None) => "—".to_string(),
        (Unit::Memory, Some(kib)) => mb(Some(kib as u64)),
        (Unit::Time, Some(value)) => ms(value),
    };
    println!(
        "\n{} run {run}: perennial against ananas{}",
        target.name(),
        if floor.is_some() {
            " and the server's floor"
        } else {
            ""
        }
    );
    println!("| figure | perennial | ananas | floor | perennial ÷ ananas | perennial − floor |");
    println!("|---|---|---|---|---|---|");
    for (name, unit, figure) in rows {
        let p = perennial.and_then(figure);
        let a = ananas.and_then(figure);
        let f = floor.and_then(figure);
        let ratio = match (p, a) {
            (Some(p), Some(a)) if a > 0.0 => format!("{:.2}×", p / a),
            _ => "—".to_string(),
        };
        let distance = match (unit, p, f) {
            (Unit::Time, Some(p), Some(f)) => {
                let d = p - f;
                format!("{}{}", if d < 0.0 { "−" } else { "+" }, ms(d.abs()))
            }
            _ => "—".to_string(),
        };
        println!(
            "| {name} | {} | {} | {} | {ratio} | {distance} |",
            show(unit, p),
            show(unit, a),
            show(unit, f),
        );
    }
    let counts = |f: Option<&Figures>, count: fn(&Figures) -> String| {
        f.map(count).unwrap_or_else(|| "—".to_string())
    };
    let missing: fn(&Figures) -> String =
        |f| format!("{} + {}", f.one_by_one_missing, f.burst_missing);
    let duplicates: fn(&Figures) -> String = |f| f.duplicates.to_string();
    println!(
        "| missing (one at a time + burst) | {} | {} | {} | | |",
        counts(perennial, missing),
        counts(ananas, missing),
        counts(floor, missing)
    );
    println!(
        "| duplicate replies | {} | {} | {} | | |",
        counts(perennial, duplicates),
        counts(ananas, duplicates),
        counts(floor, duplicates)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let python = args.python.as_deref().map(absolute);
    let bots: Vec<Bot> = [Bot::Perennial, Bot::Ananas]
        .into_iter()
        .filter(|bot| args.only.is_none_or(|only| only == *bot))
        .collect();
    for (index, &target) in args.targets.iter().enumerate() {
        if index > 0 {
            println!();
        }
        let (mentions, burst_size) = match target {
            Target::Fake => {
                let mentions = args.mentions.unwrap_or(1000);
                (mentions, args.burst.unwrap_or(mentions))
            }
            Target::GoToSocial => (args.mentions.unwrap_or(200), args.burst.unwrap_or(100)),
        };
        let gts = match target {
            Target::Fake => {
                println!(
                    "== target fake: a fresh in-process fake server (Mastodon flavour) for each \
                     bot; {mentions} mentions one at a time, a burst of {burst_size} =="
                );
                None
            }
            Target::GoToSocial => {
                let gts =
                    Gts::from_env().unwrap_or_else(|why| panic!("--target gotosocial: {why}"));
                let version = gts.check().await;
                println!(
                    "== target gotosocial: GoToSocial {version} at {} (rate limit off); alice \
                     mentions bot; {mentions} mentions one at a time, a burst of {burst_size} \
                     ({BURST_IN_FLIGHT} requests at a time) ==",
                    gts.url
                );
                Some(gts)
            }
        };
        let mut all = Vec::new();
        for run in 1..=args.runs {
            let mut order = bots.clone();
            if gts.is_some() {
                order.push(Bot::Floor);
            }
            for &bot in &order {
                let figures = match &gts {
                    None => measure(bot, mentions, burst_size, python.as_deref()).await,
                    Some(gts) => {
                        measure_gts(bot, gts, mentions, burst_size, python.as_deref()).await
                    }
                };
                print!("run {run}: ");
                report(&figures);
                all.push((run, figures));
            }
        }
        check_replies(&all);
        table(&all, mentions, burst_size);
        for run in 1..=args.runs {
            comparison(target, run, &all);
        }
    }
}
