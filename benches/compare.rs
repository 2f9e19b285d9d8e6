//! perennial side by side with ananas (the Python Mastodon bot framework) doing the same
//! work against the same in-process fake server: answer "how do I package my Python
//! code?" with the packaging guide's link, unlisted, in reply to the mention.
//!
//! For each bot, on a fresh fake server (Mastodon flavour, 127.0.0.1):
//!
//! 1. idle memory: `VmRSS` once the bot has its stream open and has been quiet for 3 s;
//! 2. one at a time: a mention is pushed, the clock runs until its reply is stored; 1,000
//!    times (p50, p99);
//! 3. a burst: 1,000 mentions pushed at once; time until the last reply, each one's
//!    latency (queueing included), and the peak resident memory (`VmHWM`).
//!
//! perennial is the release binary (`perennial run`, the bundled config with the caps off,
//! as in `benches/mentions.rs`); it reads the websocket stream. ananas is
//! `bench/ananas_bot.py` under the given Python (ananas reads Mastodon's HTTP streaming,
//! server-sent events, which the fake server also serves). A reply that has not come within
//! the bound is counted as missing, never waited for forever.
//!
//! Run: `bench/compare.sh` (makes bench/.venv and installs bench/requirements.txt), or
//! `cargo bench --bench compare -- --python bench/.venv/bin/python [--runs N]
//! [--mentions N] [--only perennial|ananas]`. `--runs 2` runs the bots alternately
//! (perennial, ananas, perennial, ananas). The Python may also come from `$ANANAS_PYTHON`.

#[path = "../tests/it/fake_server.rs"]
#[allow(dead_code, unused_imports)]
mod fake_server;
#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fake_server::{FakeOptions, FakeServer};
use perennial::posts::config::Visibility;
use support::{caps_off, perennial_run, proc_status_field, sigterm};

/// How long the whole burst, and the start-up, may take.
const BOUND: Duration = Duration::from_secs(120);
/// How long one reply may take in the one-at-a-time round before it counts as missing.
const ONE_BOUND: Duration = Duration::from_secs(10);
/// How long a connected bot is left alone before its idle memory is read.
const QUIET: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bot {
    Perennial,
    Ananas,
}

impl Bot {
    fn name(self) -> &'static str {
        match self {
            Bot::Perennial => "perennial",
            Bot::Ananas => "ananas",
        }
    }
}

struct Args {
    python: Option<PathBuf>,
    runs: usize,
    mentions: usize,
    only: Option<Bot>,
}

fn args() -> Args {
    let mut args = Args {
        python: std::env::var_os("ANANAS_PYTHON").map(PathBuf::from),
        runs: 1,
        mentions: 1000,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--python" => args.python = Some(PathBuf::from(value("--python"))),
            "--runs" => args.runs = value("--runs").parse().expect("--runs N"),
            "--mentions" => args.mentions = value("--mentions").parse().expect("--mentions N"),
            "--only" => {
                args.only = Some(match value("--only").as_str() {
                    "perennial" => Bot::Perennial,
                    "ananas" => Bot::Ananas,
                    other => panic!("--only perennial|ananas, not {other}"),
                })
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

/// What one run of one bot measured.
struct Figures {
    bot: Bot,
    idle_rss_kib: u64,
    one_by_one: Vec<Duration>,
    one_by_one_missing: usize,
    burst: Vec<Duration>,
    burst_missing: usize,
    burst_total: Duration,
    peak_kib: u64,
    duplicates: usize,
    /// The text of the reply to the first mention, for checking both bots say the same.
    first_reply: String,
    /// How the reply to the first mention was posted.
    first_reply_visibility: String,
}

struct Running {
    child: tokio::process::Child,
    pid: u32,
    dir: tempfile::TempDir,
}

fn start(bot: Bot, fake: &FakeServer, python: Option<&Path>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("bot.log")).unwrap();
    let mut command = match bot {
        Bot::Perennial => {
            // The bundled config and guides, with the caps off.
            let config = caps_off(fake.bundled_config());
            std::fs::write(dir.path().join("config.toml"), &config).unwrap();
            let mut command = perennial_run(&fake.token());
            command.env("RUST_LOG", "warn");
            command
        }
        Bot::Ananas => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let template = std::fs::read_to_string(root.join("bench/ananas_bot.cfg.in")).unwrap();
            let config = template
                .replace("@URL@", &fake.url())
                .replace("@TOKEN@", &fake.token());
            let config_path = dir.path().join("ananas_bot.cfg");
            std::fs::write(&config_path, config).unwrap();
            let python = python.expect(
                "ananas needs a Python with ananas installed: --python PATH or $ANANAS_PYTHON \
                 (bench/compare.sh makes bench/.venv)",
            );
            let mut command = tokio::process::Command::new(python);
            command
                .arg(root.join("bench/ananas_bot.py"))
                .arg(&config_path)
                .env("PYTHONUNBUFFERED", "1");
            command
        }
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

async fn measure(bot: Bot, mentions: usize, python: Option<&Path>) -> Figures {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let mut running = start(bot, &fake, python);
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
            let mut arrivals: Vec<(Option<String>, Instant)> = Vec::with_capacity(mentions);
            while arrivals.len() < mentions {
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
    let mut pushed = HashMap::with_capacity(mentions);
    for index in 0..mentions {
        let at = Instant::now();
        pushed.insert(mention(&fake, mentions + index), at);
    }
    let arrivals = watcher.await.unwrap();
    let mut burst = Vec::with_capacity(mentions);
    let mut answered = std::collections::HashSet::new();
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
    let burst_missing = mentions - burst.len();
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

    // Stop it (SIGTERM, as systemd would), then make sure it is gone.
    sigterm(pid);
    if tokio::time::timeout(Duration::from_secs(10), running.child.wait())
        .await
        .is_err()
    {
        let _ = running.child.kill().await;
    }
    sort_all(Figures {
        bot,
        idle_rss_kib,
        one_by_one,
        one_by_one_missing,
        burst,
        burst_missing,
        burst_total,
        peak_kib,
        duplicates,
        first_reply,
        first_reply_visibility,
    })
}

fn sort_all(mut figures: Figures) -> Figures {
    figures.one_by_one.sort();
    figures.burst.sort();
    figures
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}

fn ms(value: f64) -> String {
    if value >= 1000.0 {
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
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let python = args.python.as_deref().map(absolute);
    let bots: Vec<Bot> = [Bot::Perennial, Bot::Ananas]
        .into_iter()
        .filter(|bot| args.only.is_none_or(|only| only == *bot))
        .collect();
    let mentions = args.mentions;
    let mut all = Vec::new();
    for run in 1..=args.runs {
        for &bot in &bots {
            let figures = measure(bot, mentions, python.as_deref()).await;
            print!("run {run}: ");
            report(&figures);
            all.push((run, figures));
        }
    }

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
        for (run, f) in &all {
            println!(
                "  run {run} {}: {:?} {}",
                f.bot.name(),
                f.first_reply,
                f.first_reply_visibility
            );
        }
    }

    println!(
        "\n| bot | run | idle memory (VmRSS) | one at a time p50 | p99 | replied | burst of {mentions}: all replied in | burst p50 / p99 | replied | peak memory (VmHWM) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (run, f) in &all {
        println!(
            "| {} | {run} | {} | {} | {} | {}/{mentions} | {} | {} / {} | {}/{mentions} | {} |",
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
        );
    }
}
